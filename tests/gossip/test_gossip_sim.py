"""Whole clusters in the simulator: convergence, detection, leave, rejoin, and no false positives."""

import math
import os

from pycache_cluster.gossip import config
from pycache_cluster.gossip.keyring import Keyring
from pycache_cluster.gossip.sim import main as sim_main
from pycache_cluster.gossip.sim import scenario, soak
from pycache_cluster.gossip.state import State


def all_see(c, name, state):
    return all(c.states_seen_by(o).get(name) == state for o in c.live() if o != name)


def test_cold_start_every_member_joins_through_one_seed(sim_cluster):
    c = sim_cluster()
    for i in range(12):
        c.add(f"n{i}")
    for i in range(1, 12):
        c.join(f"n{i}", ["n0"])
    c.run(10.0)
    names = {f"n{i}" for i in range(12)}
    for o in names:
        assert {n for n, s in c.states_seen_by(o).items() if s == State.ALIVE} == names


def test_crash_is_detected_by_everyone_without_false_positives(sim_cluster):
    c = sim_cluster(10)
    c.run(2.0)
    seen = c.watch("dead", "n3")
    c.crash("n3")
    c.run(30.0, lambda: len(seen) == 9)
    assert set(seen) == set(c.live())
    assert c.false_dead == []


def test_graceful_leave_is_seen_as_left(sim_cluster):
    c = sim_cluster(10)
    c.run(2.0)
    c.leave("n4")
    c.run(5.0)
    assert all_see(c, "n4", State.LEFT)
    assert c.false_dead == []


def test_restarted_member_rejoins_with_a_higher_incarnation(sim_cluster):
    c = sim_cluster(8)
    c.run(2.0)
    c.crash("n5")
    c.run(30.0, lambda: all_see(c, "n5", State.DEAD))
    assert all_see(c, "n5", State.DEAD)
    dead_inc = c.members["n0"].member("n5").incarnation
    c.add("n5", c.addrs["n5"])
    c.join("n5", ["n0"])
    c.run(5.0)
    assert all_see(c, "n5", State.ALIVE)
    assert {c.members[o].member("n5").incarnation for o in c.live()} == {
        c.members["n5"].local_member.incarnation}
    assert c.members["n5"].local_member.incarnation > dead_inc


def test_member_with_the_wrong_key_is_never_admitted(sim_cluster):
    c = sim_cluster(5, keyring=Keyring([os.urandom(32)]))
    c.run(1.0)
    intruder = c.add("intruder", keyring=Keyring([os.urandom(32)]))
    answered = []
    intruder.join_nowait([c.addrs["n0"], c.addrs["n1"]], answered.append)
    c.run(10.0)
    assert answered == [0]
    assert all("intruder" not in c.states_seen_by(o) for o in c.live() if o != "intruder")
    assert [mb.name for mb in intruder.members()] == ["intruder"]
    assert sum(c.members[o].stats()["dropped_auth"] for o in ("n0", "n1")) >= 2


def test_keyed_cluster_converges_in_the_middle_of_a_key_rotation(sim_cluster):
    old, new = os.urandom(32), os.urandom(32)
    # Rotation step 1 done everywhere (new key installed as secondary), step 2 (promote it)
    # done on n4 only: n4 encrypts with the new key, the others still with the old one.
    c = sim_cluster(keyring=Keyring([old, new]))
    for i in range(4):
        c.add(f"n{i}")
    c.add("n4", keyring=Keyring([new, old]))
    for i in range(1, 5):
        c.join(f"n{i}", ["n0"])
    c.run(5.0)
    for name in c.live():
        assert all_see(c, name, State.ALIVE)
    assert sum(c.members[o].stats()["dropped_auth"] for o in c.live()) == 0
    assert c.false_dead == []


def test_anti_entropy_alone_spreads_an_update(sim_cluster):
    # Gossip off, and packets too small to piggyback anything: only anti-entropy can carry
    # this update.
    c = sim_cluster(6, push_pull_interval=2.0, gossip_nodes=0, udp_buffer_size=40)
    c.run(1.0)
    c.members["n1"].update_meta(weight=7)
    c.run(20.0)
    assert {c.members[o].member("n1").meta.weight for o in c.live()} == {7}


def test_no_false_dead_with_loss_and_slow_members():
    row = soak("lan", config.lan(), 60, 0.10, 0.05, 10.0, 300.0, seed=3)
    assert row.false_dead == 0


def test_scenario_reaches_everyone():
    row = scenario("lan", config.lan(), 40, 0.10, seed=5)
    for phase in (row.update, row.join, row.leave, row.crash):
        assert all(math.isfinite(t) for t in phase)
    assert row.false_dead == 0


def test_simulator_cli_prints_a_table(capsys):
    assert sim_main(["--nodes", "20", "--configs", "lan,memberlist", "--loss", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| config |") and len(out) == 9 and out[4] == ""
    assert out[2].startswith("| lan | 20 | 0% | 0% | 1 |")
    assert out[3].startswith("| memberlist | 20 | 0% | 0% | 1 |")
    # The worst figures of each configuration beside their goals.
    assert out[5].startswith("| config | worst crash")
    assert out[7].startswith("| lan | ") and "≤ 5.0 s" in out[7]
    assert out[8].startswith("| memberlist | ")


def test_simulator_cli_overrides_settings_one_row_group_each(capsys):
    assert sim_main(["--nodes", "12", "--configs", "lan", "--loss", "0", "--seeds", "2",
                     "--set", "", "--set", "probe_interval=0.3,suspicion_confirmations=2"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out[:out.index("")] if line.startswith("| lan")]
    assert [r.split(" | ")[0] for r in rows] == ["| lan"] * 2 + [
        "| lan probe_interval=0.3 suspicion_confirmations=2"] * 2
    assert [r.split(" | ")[4] for r in rows] == ["1", "2", "1", "2"]


def test_member_with_a_bad_network_slows_itself_down_instead_of_accusing_others(sim_cluster):
    c = sim_cluster(10)
    c.net.set_link_loss(c.addrs["n0"], 0.5)
    peak = 0
    for _ in range(60):
        c.run(1.0)
        peak = max(peak, c.members["n0"].health_score)
    probes = {n: ml.stats()["probes"] for n, ml in c.members.items()}
    healthy = sorted(v for n, v in probes.items() if n != "n0")
    assert peak >= 4
    assert probes["n0"] < healthy[len(healthy) // 2] / 2  # its probe period stretched
    assert c.false_dead == []
