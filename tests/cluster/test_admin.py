"""Administering a cluster as an operator does, against three real nodes (127.0.0.231-233,
N=2, W=1): `check` and `status` exit codes, `cluster repair` mending a planted disagreement,
`cluster forget` of a member killed for good (its lock names granted again, its keys on two
owners), refused for a live member, and a remote `cluster leave` after which a one-node ring
with N=2 is an error. The tests run in order on one fleet, as one story."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cluster.replicas import PeerView, copies, owners
from helpers.cluster import wait_for
from helpers.servers import REPO, start_node

from pycache_cluster.cluster.ring import DEFAULT_VNODES, Ring
from pycache_cluster.gossip import State

pytestmark = pytest.mark.python_logic

BASE = 231
KEYS = [b"adm%d" % i for i in range(60)]


@pytest.fixture(scope="module")
def afleet(request, tmp_path_factory):
    from cluster.conftest import Fleet
    fleet = Fleet(tmp_path_factory, BASE, 3, "-A", "--replicas", "2", "--write-quorum", "1",
                  "--lock-max-ttl", "1", "--anti-entropy-interval", "0")
    request.addfinalizer(fleet.stop)
    fleet.start()
    with fleet[0].conn() as c:
        for key in KEYS:
            assert c.call(b"set %s 0 0 2\r\nv1\r\n" % key) == b"STORED\r\n"
    return fleet


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pycache_cluster", *args], check=False,
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def at(node) -> list[str]:
    return ["--node", f"{node.host}:{node.port}"]


def test_a_whole_cluster_checks_clean(afleet):
    r = tool("check", *at(afleet[1]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("[OK] 3 member(s) agree on ring ")
    assert tool("status", *at(afleet[0]), "--interval", "0.1").returncode == 0
    doc = json.loads(tool("check", *at(afleet[2]), "--json").stdout)
    assert doc["exit"] == 0
    checksums = {m["ring_checksum"] for m in doc["view"]["members"]}
    assert checksums == {afleet[0].stats("cluster")["ring_checksum"]}
    assert all(m["handover"]["running"] == 0 for m in doc["view"]["members"])


def test_repair_mends_a_planted_disagreement_now(afleet):
    key = KEYS[0]
    first, second = owners(afleet, key)
    (_, version), _ = copies(afleet, key, [first, second])
    with PeerView(afleet, first) as view:       # only one owner gets the newer value
        assert view.write(b"ms %s 2 E%d\r\nv2\r\n" % (key, version + 1000)).startswith(b"HD")
    assert copies(afleet, key, [second])[0][0] == b"v1"
    # No periodic rounds here (interval 0): only the command mends it.
    assert afleet[first].call(b"cluster repair\r\n") == b"OK\r\n"
    wait_for(lambda: copies(afleet, key, [second])[0] == (b"v2", version + 1000), 10,
             "the other owner repaired")
    assert afleet[first].stats("cluster")["anti_entropy_rounds"] >= 2
    with afleet[0].conn() as c:     # between members only
        assert c.call(b"cluster forgotten c232\r\n") == \
            b"CLIENT_ERROR cluster forgotten is for cluster peers\r\n"


def _lock_name_owned_by(fleet, a: str, b: str) -> bytes:
    ring = Ring(DEFAULT_VNODES, {n.name: 1 for n in fleet.nodes})
    return next(name for name in (b"lk%d" % i for i in range(1000))
                if set(ring.owners(name, 2)) == {a, b})


def test_forget_a_member_dead_for_good(afleet):
    a, b, dead = afleet[0], afleet[1], afleet[2]
    name = _lock_name_owned_by(afleet, a.name, dead.name)
    dead.kill()
    afleet.wait_converged([a, b])
    wait_for(lambda: a.members().get(dead.name, (None,) * 4)[2] == State.DEAD, 30,
             "the killed member declared dead")
    r = tool("check", *at(a))
    assert r.returncode == 1, r.stdout
    assert f"[WARNING] member {dead.name} is dead" in r.stdout
    # One of the name's two owners is dead: no majority, and nothing moves it.
    assert a.call(b"lock acquire %s me 500\r\n" % name).startswith(b"UNAVAILABLE")
    assert a.call(b"cluster forget %s\r\n" % b.name.encode()) == \
        b"CLIENT_ERROR member c232 is alive: only a member dead for good can be forgotten\r\n"
    assert a.call(b"cluster forget %s\r\n" % a.name.encode()).startswith(
        b"CLIENT_ERROR cannot forget this node")
    assert a.call(b"cluster forget nobody\r\n") == b"CLIENT_ERROR no member nobody\r\n"
    r = tool("forget", *at(a), dead.name)
    assert (r.returncode, r.stdout) == (0, "OK\n"), r.stderr
    for node in (a, b):
        locks = node.stats("locks")
        assert locks["lock_ring_nodes"] == 2, locks
    assert a.stats("locks")["lock_ring_checksum"] == b.stats("locks")["lock_ring_checksum"]
    # The name's new owners vote once leases of the old ring ran out (1 s x 1.01 here).
    wait_for(lambda: a.call(b"lock acquire %s me 500\r\n" % name).startswith(b"LOCKED"), 15,
             "the lock granted by its new owners")
    # Every key is on both survivors, the dead member's ranges included.
    for key in KEYS:
        got = copies(afleet, key, [0, 1])
        assert all(c is not None for c in got), (key, got)
    wait_for(lambda: tool("check", *at(b)).returncode == 0, 20, "check clean again",
             detail=lambda: tool("check", *at(b)).stdout)


def test_leave_needs_A_on_the_node_that_leaves(tmp_path):
    from helpers.servers import free_port
    node = start_node("--gossip-port", str(free_port(udp=True)), "--gossip-preset", "local")
    try:
        r = tool("leave", "--node", f"127.0.0.1:{node.port}")
        assert (r.returncode, r.stdout) == (1, "ERROR: shutdown not enabled\n")
        assert node.alive()
    finally:
        node.stop()


def test_remote_leave_then_a_one_node_ring_is_an_error(afleet):
    a, b = afleet[0], afleet[1]
    r = tool("leave", *at(a), b.name, "--wait", "--timeout", "60")
    assert (r.returncode, r.stdout) == (0, "OK\n"), r.stderr
    assert b.server.proc.wait(30) == 0          # a graceful leave ends the process cleanly
    wait_for(lambda: a.stats("cluster")["ring_nodes"] == 1, 20, "a alone on the ring")
    with a.conn() as c:                         # handed over before it went
        for key in KEYS:
            assert c.call(b"get %s\r\n" % key).startswith(b"VALUE "), key
    r = tool("check", *at(a))
    assert r.returncode == 2, r.stdout
    assert "[ERR] the ring has 1 node(s) but N=2" in r.stdout
    assert tool("status", *at(a), "--interval", "0.1").returncode == 2
