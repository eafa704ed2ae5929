"""`pycache-cluster status` against three real node processes (127.0.0.173-175): its JSON
checked field by field against what each node answers itself, its screen captured, --watch,
and a member killed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.cluster import wait_for
from helpers.servers import REPO, start_node

pytestmark = pytest.mark.python_logic

HOSTS = 173
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def sfleet(request, tmp_path_factory):
    from cluster.conftest import Fleet
    fleet = Fleet(tmp_path_factory, HOSTS, 3, "-m", "32", "--replicas", "2",
                  "--write-quorum", "2", "--read-quorum", "1")
    request.addfinalizer(fleet.stop)
    fleet.start()
    with fleet[0].conn() as c:
        for i in range(30):
            assert c.call(b"set st%d 0 0 3\r\nabc\r\n" % i) == b"STORED\r\n"
        for i in range(30):
            c.call(b"get st%d\r\n" % i)
        for i in range(5):
            c.call(b"get absent%d\r\n" % i)
    return fleet


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pycache_cluster", "status", *args],
                          check=False, capture_output=True, text=True, timeout=30, cwd=REPO)


def status(node, *flags: str) -> subprocess.CompletedProcess:
    return cli("--node", f"{node.host}:{node.port}", "--interval", "0.2", *flags)


def ring_of(node) -> dict[str, tuple[str, float]]:
    out = {}
    for line in node.call(b"cluster ring\r\n").decode().splitlines():
        parts = line.split()
        if parts[0] == "NODE":
            out[parts[1]] = (parts[2], float(parts[4].split("=")[1]))
    return out


def test_json_field_by_field(sfleet):
    r = status(sfleet[1], "--json")
    assert r.returncode == 0, r.stderr
    view = json.loads(r.stdout)
    assert view["cluster"] is True
    assert view["node"] == f"{sfleet[1].host}:{sfleet[1].port}"
    cl = sfleet[1].stats("cluster")
    assert view["ring"] == {"epoch": cl["ring_epoch"], "checksum": cl["ring_checksum"],
                            "vnodes": cl["ring_vnodes"], "nodes": 3}
    assert view["replication"] == {"replicas": 2, "write_quorum": 2, "read_quorum": 1}
    ring = ring_of(sfleet[1])
    assert [m["name"] for m in view["members"]] == sorted(n.name for n in sfleet)
    for node in sfleet:
        m = next(m for m in view["members"] if m["name"] == node.name)
        st = node.stats("")
        ncl = node.stats("cluster")
        assert m["state"] == "alive"
        assert m["address"] == f"{node.host}:{node.port}" == ring[node.name][0]
        assert m["gossip_address"] == node.addr
        assert m["share"] == ring[node.name][1]
        assert m["weight"] == 1
        assert m["reachable"] is True and m["error"] is None
        assert m["items"] == st["curr_items"]
        assert m["bytes"] == st["bytes"]
        assert m["limit_bytes"] == 32 * MIB == st["limit_maxbytes"]
        assert m["memory_ratio"] == round(st["bytes"] / (32 * MIB), 4)
        hits, misses = st["get_hits"], st["get_misses"]
        assert m["hit_ratio"] == (round(hits / (hits + misses), 4) if hits + misses else None)
        assert m["evictions"] == 0
        assert m["hints_pending"] == 0 and m["hints_pending_bytes"] == 0
        assert m["ops_per_sec"] is not None and m["ops_per_sec"] >= 0
        assert m["ring_epoch"] == ncl["ring_epoch"]
        assert m["version"] == st["pycache_version"]
    # 30 keys on two owners each.
    assert sum(m["items"] for m in view["members"]) == 60 == view["totals"]["items"]
    assert view["totals"]["members"] == view["totals"]["reachable"] == 3
    assert view["totals"]["limit_bytes"] == 3 * 32 * MIB
    hit = [m["hit_ratio"] for m in view["members"] if m["hit_ratio"] is not None]
    assert hit and all(0 <= x <= 1 for x in hit)


def test_screen(sfleet):
    r = status(sfleet[0])
    assert r.returncode == 0, r.stderr
    screen = r.stdout
    assert "N=2 W=2 R=1" in screen
    assert "3 owners" in screen
    for node in sfleet:
        row = next(line for line in screen.splitlines() if node.name in line)
        assert "alive" in row and f"{node.host}:{node.port}" in row
        assert "/ 32.0 MiB" in row
    assert "total (3/3 up)" in screen
    for head in ("share", "items", "memory", "hit ratio", "ops/s", "evictions", "hints"):
        assert head in screen


def test_watch_redraws_with_rates(sfleet):
    proc = subprocess.Popen([sys.executable, "-m", "pycache_cluster", "status", "--node",
                             f"{sfleet[2].host}:{sfleet[2].port}", "--watch", "--json",
                             "--interval", "0.2"], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    try:
        views = [json.loads(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(10)
    for view in views:
        assert len(view["members"]) == 3
        assert all(m["ops_per_sec"] is not None for m in view["members"])


def test_single_node_without_gossip():
    node = start_node("-m", "16")
    try:
        r = cli("--node", f"127.0.0.1:{node.port}", "--json", "--interval", "0.1")
        view = json.loads(r.stdout)
        assert view["cluster"] is False and view["ring"] is None
        assert view["replication"] is None
        (m,) = view["members"]
        assert m["address"] == f"127.0.0.1:{node.port}" and m["share"] == 1.0
        assert m["limit_bytes"] == 16 * MIB
    finally:
        node.stop()


def test_unreachable_address_fails_cleanly():
    r = cli("--node", "127.0.0.199:1")
    assert r.returncode == 2 and "cannot ask 127.0.0.199:1" in r.stderr


def test_a_killed_member_is_listed_not_served(sfleet):
    # Last in the module: the fleet loses a member.
    victim = sfleet[2]
    victim.kill()

    def shown_down():
        view = json.loads(status(sfleet[0], "--json").stdout)
        m = next(m for m in view["members"] if m["name"] == victim.name)
        return not m["reachable"] and m["error"] and view["totals"]["reachable"] == 2

    wait_for(shown_down, 30, "the killed member shown unreachable")
