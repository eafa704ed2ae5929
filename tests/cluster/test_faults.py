"""Faults between real nodes: a peer killed or stopped mid-pipeline costs bounded time and
errors for its keys only, replies keep their order, other clients keep being served; nodes
with different rings never bounce a request; only a proven peer skips routing."""
import os
import re
import signal
import socket
import threading
import time

import pytest
from helpers.cluster import owned_keys, wait_for
from helpers.wire import Conn

from pycache_cluster.cluster.handshake import Handshake
from pycache_cluster.gossip import Keyring

TIMEOUT = 1.0


def pipeline(keys):
    """A set and a get per key, then a fence; and the owner of each key's replies."""
    req = b"".join(b"set %s 0 0 2\r\nv%d\r\nget %s\r\n" % (k, i % 10, k)
                   for i, k in enumerate(keys))
    return req + b"mn\r\n"


def replies(data: bytes) -> list[bytes]:
    """Splits a reply stream into one reply per request of `pipeline`."""
    out = re.findall(rb"STORED\r\n|SERVER_ERROR [^\r]*\r\n|VALUE \S+ 0 2\r\n..\r\nEND\r\n|END\r\n"
                     rb"|MN\r\n", data, re.DOTALL)
    assert b"".join(out) == data, data
    return out


def read_all(conn: Conn, limit: float) -> tuple[list[bytes], float]:
    """The replies up to the next MN, and how long they took."""
    start = time.monotonic()
    conn.sock.settimeout(limit)
    data = conn.read_until(b"MN\r\n")
    return replies(data), time.monotonic() - start


def keep_serving(node, keys, stop: threading.Event, lat: list):
    """Another client, on keys of live owners, timing each request."""
    with node.conn(timeout=10) as c:
        while not stop.is_set():
            for k in keys:
                t = time.monotonic()
                c.expect(b"set %s 0 0 1\r\nx\r\nget %s\r\n" % (k, k),
                         b"STORED\r\nVALUE %s 0 1\r\nx\r\nEND\r\n" % k)
                lat.append(time.monotonic() - t)


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_a_peer_dying_mid_pipeline_costs_bounded_errors_for_its_keys_only(make_fleet, fault):
    # One owner per key: forwarding alone, without replicas to fall back on.
    fleet = make_fleet(81 if fault == "kill" else 84, 3, "--forward-timeout", str(TIMEOUT),
                       "--replicas", "1", "--write-quorum", "1")
    fleet.start()
    a, victim = fleet[0], fleet[2]
    mine = owned_keys(fleet, 0, 40, "m") + owned_keys(fleet, 1, 40, "b")
    theirs = owned_keys(fleet, 2, 40, "v")
    keys = [k for pair in zip(mine[:40], mine[40:], theirs, strict=True) for k in pair]
    stop, lat = threading.Event(), []
    bystander = threading.Thread(target=keep_serving, args=(a, mine[:3] + mine[40:43], stop,
                                                            lat))
    bystander.start()
    try:
        with a.conn(timeout=30) as c:
            c.send(pipeline(keys[:60]))
            if fault == "kill":
                victim.kill()
            else:
                os.kill(victim.proc.pid, signal.SIGSTOP)
            c.send(pipeline(keys[60:]))
            first, t1 = read_all(c, 10)
            second, t2 = read_all(c, 10)
        got = first + second
        # Every request answered, in order, within the forward timeout plus slack.
        assert len(got) == 2 * len(keys) + 2 and t1 + t2 < TIMEOUT + 5
        for i, k in enumerate(keys):
            k_set, k_get = got[2 * i + (i >= 60)], got[2 * i + 1 + (i >= 60)]
            if k in theirs:
                assert k_set == b"STORED\r\n" or k_set.startswith(b"SERVER_ERROR ")
                assert k_get.startswith(b"VALUE") or k_get == b"END\r\n"
            else:
                assert k_set == b"STORED\r\n"
                assert k_get == b"VALUE %s 0 2\r\nv%d\r\nEND\r\n" % (k, i % 10)
        errors = [r for r in got if r.startswith(b"SERVER_ERROR")]
        assert errors, "the victim's keys must fail while it cannot answer"
        # A stopped peer times out, unless failure detection (about as quick) drops it first.
        reasons = (b"timed out", b"left the ring") if fault == "stop" else (b"peer c8",)
        assert all(any(r in e for r in reasons) for e in errors), errors
    finally:
        stop.set()
        bystander.join(30)
        if fault == "stop":
            os.kill(victim.proc.pid, signal.SIGCONT)
    # The other client was never held up by the dead peer.
    assert lat and max(lat) < TIMEOUT
    if fault == "stop":
        # Back from SIGSTOP: its keys are served through the others again.
        def served():
            return a.call(b"set %s 0 0 1\r\nz\r\nget %s\r\n" % (theirs[0], theirs[0])) == \
                b"STORED\r\nVALUE %s 0 1\r\nz\r\nEND\r\n" % theirs[0]
        wait_for(served, 30, "the stopped peer's keys served again")
    else:
        # Once gossip declares it dead, its keys belong to the survivors.
        fleet.wait_converged(fleet.nodes[:2])
        assert a.call(b"set %s 0 0 1\r\nz\r\nget %s\r\n" % (theirs[0], theirs[0])) == \
            b"STORED\r\nVALUE %s 0 1\r\nz\r\nEND\r\n" % theirs[0]


def test_nodes_that_disagree_about_the_ring_forward_at_most_once(make_fleet):
    """Two nodes built with different vnodes own keys differently: a request A thinks is
    B's goes to B once; B answers it, or (a write B thinks is A's, a read of a key B does
    not hold) routes it on to A once, marked, and A answers it from its own store instead of
    sending it back. Every key written through A reads back through A."""
    fleet = make_fleet(87, 2, "--replicas", "1", "--write-quorum", "1")
    fleet.nodes[1]._flags += ["--vnodes", "7"]
    seeds = [fleet[0].addr]
    fleet[0].start()
    fleet[1].start(join=seeds)
    wait_for(lambda: all(n.stats("cluster").get("ring_nodes") == 2 for n in fleet.nodes), 30,
             "both nodes see a two-node ring")
    a, b = fleet[0], fleet[1]
    served = b.stats("cluster")["peer_requests_served"]     # the lock ring's copy, say
    keys = [b"split:%d" % i for i in range(300)]
    with a.conn() as c:
        for k in keys:
            c.expect(b"set %s 0 0 1\r\ny\r\n" % k, b"STORED\r\n")
        out = c.call(b"get " + b" ".join(keys) + b"\r\n")
    assert out.count(b"VALUE ") == len(keys)
    sa, sb = a.stats("cluster"), b.stats("cluster")
    assert sa["ring_checksum"] != sb["ring_checksum"]
    assert 0 < sa["forwarded"] <= 2 * len(keys)
    # What B routed on, it routed on once: A answered each from its store.
    assert 0 < sb["forwarded"] == sb["peer_requests_rerouted"] <= sa["forwarded"]
    # (The lock service may copy b's lock ring meanwhile: one more peer request.)
    assert sa["forwarded"] <= sb["peer_requests_served"] - served <= sa["forwarded"] + 1


def test_only_a_proven_peer_connection_is_answered_without_routing(make_fleet):
    fleet = make_fleet(89, 2, "--replicas", "1", "--write-quorum", "1")
    fleet.start()
    a = fleet[0]
    remote = owned_keys(fleet, 1, 1, "auth")[0]
    keyring = Keyring.from_file(str(fleet.key_file))
    with a.conn() as c:
        c.expect(b"cluster auth 00\r\n", b"CLIENT_ERROR authentication failed\r\n")
        assert c.call(b"cluster peer mallory 0011\r\n").startswith(b"PEER c89 ")
        c.expect(b"cluster auth " + b"ab" * 32 + b"\r\n",
                 b"CLIENT_ERROR authentication failed\r\n")
        before = a.stats("cluster")["forwarded"]
        c.expect(b"set %s 0 0 1\r\nr\r\n" % remote, b"STORED\r\n")
        assert a.stats("cluster")["forwarded"] == before + 1        # routed: not a peer
    # With the key, the handshake makes the connection a peer: answered here, not routed.
    hs = Handshake("honest", keyring)
    with a.conn() as c:
        hello, session = hs.hello("c89")
        answer = hs.on_line(session, c.call(hello))
        assert hs.on_line(session, c.call(answer)) is True
        before = a.stats("cluster")["forwarded"]
        c.expect(b"get %s\r\n" % remote, b"END\r\n")        # this node does not hold it
        assert a.stats("cluster")["forwarded"] == before
    # A node that is not the one expected, or without the key, is refused by the link side.
    with a.conn() as c:
        hello, session = Handshake("x", keyring).hello("someone-else")
        with pytest.raises(Exception, match="expected peer someone-else"):
            Handshake("x", keyring).on_line(session, c.call(hello))
        hello, session = Handshake("x", None).hello("c89")
        with pytest.raises(Exception, match="has a cluster key"):
            Handshake("x", None).on_line(session, c.call(hello))


def test_a_client_closing_with_forwarded_requests_in_flight_leaks_nothing(fleet3):
    remote = owned_keys(fleet3, 1, 50, "gone")
    node = fleet3[0]

    def connections() -> int:
        # Ours (this stats request) and the peers' links to this node.
        return int(re.search(rb"STAT curr_connections (\d+)",
                             node.call(b"stats\r\n")).group(1))

    before = connections()
    for _ in range(20):
        s = socket.create_connection((node.host, node.port))
        s.sendall(b"".join(b"set %s 0 0 1\r\nq\r\nget %s\r\n" % (k, k) for k in remote))
        s.close()
    # The node keeps serving and holds no connection or waiting request for them.
    def settled():
        return node.stats("cluster")["peer_requests_waiting"] == 0 and connections() <= before
    wait_for(settled, 10, "no connection or request left behind")
    assert node.call(b"get %s\r\n" % remote[0]) == b"VALUE %s 0 1\r\nq\r\nEND\r\n" % remote[0]


def test_a_write_held_behind_a_read_is_answered_after_the_ring_drops_its_owner(make_fleet):
    """A write waits for the read of its key ahead of it; the key's owner stops, gossip
    drops it from the ring, and only then does the read fail and the write go. The write was
    routed by the old ring: it must fail as its owner's requests do, and the node serve on.
    (It looked its owner up by slot number in the new ring: past its end, the write's reply
    never came; on this node's own slot, the node crashed.)"""
    fleet = make_fleet(213, 3, "--forward-timeout", "30")
    fleet.start()
    a, victim = fleet[0], fleet[2]
    key = next(k for k in owned_keys(fleet, 2, 50, "held")
               if a.name.encode() not in a.call(b"cluster owners " + k + b"\r\n"))
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        with a.conn(timeout=40) as c:
            c.send(b"get " + key + b"\r\nadd " + key + b" 0 0 1\r\nx\r\nversion\r\n")
            out = c.read_until(b"VERSION ")
        assert re.fullmatch(rb"END\r\nSERVER_ERROR [^\r]+\r\nVERSION ", out), out
        assert a.server.alive() and a.call(b"version\r\n").startswith(b"VERSION ")
        assert b"nodes=2 " in a.call(b"cluster ring\r\n")
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
