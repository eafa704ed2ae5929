"""The membership state machine, driven through real packets on the simulated network.

Probing is slowed to a crawl here so that only the injected messages change states.
"""

import os

import pytest

from pycache_cluster.gossip import messages as m
from pycache_cluster.gossip.envelope import Envelope
from pycache_cluster.gossip.keyring import Keyring
from pycache_cluster.gossip.reply import members_lines, members_reply, parse_members, stats_reply
from pycache_cluster.gossip.state import NodeMeta, State, Status

FAKE = ("10.99.0.1", 7946)
QUIET = {"probe_interval": 1000.0, "probe_timeout": 500.0, "push_pull_interval": 0}


@pytest.fixture
def quiet(sim_cluster):
    c = sim_cluster(4, **QUIET)
    c.run(1.0)
    return c


def inject(c, to, *msgs, envelope=None):
    env = envelope or Envelope(None)
    c.net.send_packet(FAKE, c.addrs[to], env.seal(m.encode_payload(list(msgs))))
    c.run(0.5)


def view(c, observer, name):
    mb = c.members[observer].member(name)
    return (mb.state, mb.incarnation) if mb else None


def ghost_alive(inc, host="10.9.9.9", meta=b""):
    return m.Alive(inc, "ghost", host, 7946, meta)


def test_alive_about_a_new_member_is_a_join_that_spreads(quiet):
    seen = quiet.watch("join", "ghost")
    inject(quiet, "n0", ghost_alive(3))
    assert {view(quiet, n, "ghost") for n in quiet.live()} == {(State.ALIVE, 3)}
    assert set(seen) == set(quiet.live())


def test_incarnation_ordering_of_alive_suspect_dead(quiet):
    inject(quiet, "n0", ghost_alive(3))
    inject(quiet, "n0", m.Suspect(2, "ghost", "n1"))  # older: ignored
    assert view(quiet, "n0", "ghost") == (State.ALIVE, 3)
    inject(quiet, "n0", m.Suspect(3, "ghost", "n1"))
    assert view(quiet, "n0", "ghost") == (State.SUSPECT, 3)
    inject(quiet, "n0", ghost_alive(3))  # same incarnation does not clear a suspicion
    assert view(quiet, "n0", "ghost") == (State.SUSPECT, 3)
    inject(quiet, "n0", ghost_alive(4))  # a refutation does
    assert view(quiet, "n0", "ghost") == (State.ALIVE, 4)
    inject(quiet, "n0", m.Dead(3, "ghost", "n1"))  # stale death
    assert view(quiet, "n0", "ghost") == (State.ALIVE, 4)
    left = quiet.watch("dead", "ghost")
    inject(quiet, "n0", m.Dead(4, "ghost", "n1"))
    assert {view(quiet, n, "ghost") for n in quiet.live()} == {(State.DEAD, 4)}
    assert set(left) == set(quiet.live())
    inject(quiet, "n0", ghost_alive(4))  # dead is final for that incarnation
    assert view(quiet, "n0", "ghost") == (State.DEAD, 4)
    back = quiet.watch("join", "ghost")
    inject(quiet, "n0", ghost_alive(5))
    assert view(quiet, "n0", "ghost") == (State.ALIVE, 5) and "n0" in back


def test_news_about_unknown_members_is_ignored(quiet):
    inject(quiet, "n0", m.Suspect(1, "nobody", "n1"), m.Dead(1, "nobody", "n1"))
    assert view(quiet, "n0", "nobody") is None


def test_dead_sent_by_the_member_itself_means_left(quiet):
    inject(quiet, "n0", ghost_alive(1))
    seen = quiet.watch("left", "ghost")
    inject(quiet, "n0", m.Dead(1, "ghost", "ghost"))
    assert view(quiet, "n1", "ghost") == (State.LEFT, 1) and "n1" in seen


def test_suspected_member_refutes_with_a_higher_incarnation(quiet):
    before = quiet.members["n2"].local_member.incarnation
    inject(quiet, "n0", m.Suspect(before, "n2", "n1"))
    quiet.run(2.0)
    after = quiet.members["n2"].local_member.incarnation
    assert after > before
    assert {view(quiet, n, "n2") for n in quiet.live()} == {(State.ALIVE, after)}
    assert quiet.members["n2"].stats()["refutations"] == 1


def test_member_declared_dead_refutes_and_stays_in(quiet):
    inc = quiet.members["n3"].local_member.incarnation
    inject(quiet, "n3", m.Dead(inc + 5, "n3", "n1"))
    assert quiet.members["n3"].local_member.incarnation == inc + 6
    quiet.run(2.0)
    assert {view(quiet, n, "n3")[0] for n in quiet.live()} == {State.ALIVE}


def test_second_process_claiming_a_live_name_is_refused(quiet):
    inject(quiet, "n0", ghost_alive(1))
    inject(quiet, "n0", ghost_alive(9, host="10.8.8.8"))
    assert quiet.members["n0"].member("ghost").host == "10.9.9.9"
    assert quiet.members["n0"].stats()["address_conflicts"] == 1


def test_a_dead_name_can_be_reclaimed_from_a_new_address(quiet):
    inject(quiet, "n0", ghost_alive(7), m.Dead(7, "ghost", "n1"))
    inject(quiet, "n0", ghost_alive(0, host="10.8.8.8"))
    ghost = quiet.members["n0"].member("ghost")
    assert (ghost.host, ghost.state) == ("10.8.8.8", State.ALIVE)


def test_metadata_update_reaches_everyone_as_an_update_event(quiet):
    seen = quiet.watch("update", "n1")
    quiet.members["n1"].update_meta(status=Status.ACTIVE, weight=3, tags={"zone": "b"})
    quiet.run(2.0)
    assert set(seen) == set(quiet.live()) - {"n1"}
    meta = quiet.members["n3"].member("n1").meta
    assert (meta.status, meta.weight, meta.tags) == (Status.ACTIVE, 3, {"zone": "b"})


def test_oversized_metadata_is_refused(quiet):
    with pytest.raises(ValueError):
        quiet.members["n1"].update_meta(tags={"k": "v" * 600})


def test_packet_too_big_for_udp_goes_over_tcp(sim_cluster):
    c = sim_cluster(3, udp_buffer_size=120, **QUIET)
    c.run(1.0)
    c.members["n0"].update_meta(tags={"rack": "r" * 80})
    c.run(2.0)
    assert c.members["n2"].member("n0").meta.tags == {"rack": "r" * 80}
    assert c.members["n0"].stats()["packets_via_tcp"] > 0


def test_forged_and_replayed_packets_are_dropped_and_counted(sim_cluster):
    key = os.urandom(32)
    c = sim_cluster(3, keyring=Keyring([key]), **QUIET)
    c.run(1.0)
    captured = []
    real_send = c.net.send_packet
    c.net.send_packet = lambda src, dst, data: (captured.append((src, dst, data)),
                                                real_send(src, dst, data))
    c.members["n0"].update_meta(weight=2)
    c.run(1.0)
    c.net.send_packet = real_send
    src, dst, data = captured[0]
    victim = next(n for n, a in c.addrs.items() if a == dst)
    before = c.members[victim].stats()
    c.net.send_packet(src, dst, data)  # replay, byte for byte
    forged = bytearray(data)
    forged[-1] ^= 0x40
    c.net.send_packet(src, dst, bytes(forged))
    outsider = Envelope(Keyring([os.urandom(32)]), wall_clock=lambda: c.wall_clock_epoch)
    inject(c, victim, ghost_alive(1), envelope=outsider)
    inject(c, victim, ghost_alive(1))  # clear text into a keyed cluster
    after = c.members[victim].stats()
    assert after["dropped_replay"] - before["dropped_replay"] == 1
    assert after["dropped_auth"] - before["dropped_auth"] == 3
    assert view(c, victim, "ghost") is None


def test_members_reply_format(quiet):
    inject(quiet, "n0", ghost_alive(2), m.Suspect(2, "ghost", "n1"))
    lines = members_lines(quiet.members["n0"].members())
    assert lines[0] == "MEMBER ghost 10.9.9.9:7946 suspect 2"
    assert lines[1].startswith("MEMBER n0 ") and lines[1].endswith(" alive 0")
    assert lines[-1] == "END" and len(lines) == 6
    reply = members_reply(quiet.members["n0"].members())
    assert reply.endswith(b"END\r\n") and reply.count(b"\r\n") == 6
    parsed = parse_members(lines)
    assert parsed["ghost"] == ("10.9.9.9", 7946, State.SUSPECT, 2)
    assert members_lines([]) == ["END"]


def test_stats_names_for_stats_gossip(quiet):
    stats = quiet.members["n0"].stats()
    for name in ("members_alive", "members_suspect", "members_dead", "members_left",
                 "incarnation", "health_score", "probes", "packets_sent", "bytes_sent",
                 "dropped_auth", "dropped_replay", "refutations", "push_pulls"):
        assert name in stats
    assert stats["members_alive"] == 4
    assert stats_reply({"probes": 3}) == b"STAT probes 3\r\nEND\r\n"


def test_meta_round_trip_and_defaults():
    meta = NodeMeta("10.0.0.1", 11211, Status.LEAVING, 2, {"a": "b"})
    assert NodeMeta.decode(meta.encode()) == meta
    assert NodeMeta.decode(b"") == NodeMeta()
