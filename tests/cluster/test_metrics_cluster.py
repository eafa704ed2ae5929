"""The metrics of cluster members (three node processes on 127.0.0.170-172, N=2 W=2): ring,
gossip, routing, replication and per-peer families, moving with the traffic."""
from __future__ import annotations

import pytest
from helpers.cluster import owned_keys, wait_for
from helpers.metrics import families, scrape, value
from helpers.servers import free_port

HOSTS = 170


@pytest.fixture(scope="module")
def mfleet(request, tmp_path_factory):
    from cluster.conftest import Fleet
    fleet = Fleet(tmp_path_factory, HOSTS, 3, "--replicas", "2", "--write-quorum", "2")
    # One metrics port for all three (each node has its own address), none of their ports.
    taken = {p for n in fleet for p in (n.port, n.gossip_port)}
    port = next(p for p in iter(lambda: free_port(f"127.0.0.{HOSTS}"), None) if p not in taken)
    for n in fleet:
        n._flags += ["--metrics-port", str(port)]
    request.addfinalizer(fleet.stop)
    fleet.start()
    fleet.mport = port
    return fleet


def _scrape(node, port):
    return scrape(node.host, port)


def test_ring_and_gossip(mfleet):
    epochs = set()
    for node in mfleet:
        s = _scrape(node, mfleet.mport)
        assert value(s, "pycache_ring_nodes") == 3
        assert value(s, "pycache_ring_owner") == 1
        epochs.add(value(s, "pycache_ring_epoch"))
        assert value(s, "pycache_gossip_members", state="alive") == 3
        assert value(s, "pycache_replicas") == 2
        assert value(s, "pycache_write_quorum") == 2
        shares = [value(s, "pycache_ring_share_ratio", member=m.name) for m in mfleet]
        assert abs(sum(shares) - 1) < 1e-6
        assert value(s, "pycache_gossip_packets_sent_total") > 0
        assert value(s, "pycache_gossip_sent_bytes_total") > 0
    assert epochs and min(epochs) >= 1


def test_families_types(mfleet):
    fams = families(mfleet[0].host, mfleet.mport)
    for name, kind in (("pycache_ring_epoch", "gauge"), ("pycache_forwarded_requests", "counter"),
                       ("pycache_replica_writes_sent", "counter"),
                       ("pycache_quorum_failures", "counter"),
                       ("pycache_read_repairs", "counter"), ("pycache_hints_pending", "gauge"),
                       ("pycache_hints_queued", "counter"),
                       ("pycache_peer_requests_sent", "counter"),
                       ("pycache_gossip_probes", "counter")):
        assert fams[name].type == kind, name


def test_replication_and_peer_counters_move(mfleet):
    entry = mfleet[0]
    # Keys whose first owner is another node: node 0 forwards them or replicates them.
    keys = owned_keys(mfleet, 1, 20, prefix="mx")
    before = [_scrape(n, mfleet.mport) for n in mfleet]
    with entry.conn() as c:
        for k in keys:
            assert c.call(b"set %s 0 0 1\r\nv\r\n" % k) == b"STORED\r\n"
    after = [_scrape(n, mfleet.mport) for n in mfleet]

    def total(samples, name, **labels):
        return sum(value(s, name, **labels) for s in samples)

    sent = total(after, "pycache_replica_writes_sent_total") \
        - total(before, "pycache_replica_writes_sent_total")
    acked = total(after, "pycache_replica_writes_acked_total") \
        - total(before, "pycache_replica_writes_acked_total")
    # Each of the 20 writes reached its second owner (W = N = 2).
    assert sent >= 20 and acked >= 20
    peer = mfleet[1].name
    moved = value(after[0], "pycache_peer_requests_sent_total", peer=peer) \
        - value(before[0], "pycache_peer_requests_sent_total", peer=peer)
    assert moved >= 20
    assert value(after[0], "pycache_peer_links_ready", peer=peer) >= 1
    assert value(after[0], "pycache_peer_requests_waiting", peer=peer) == 0


def test_served_requests_count_on_the_owner(mfleet):
    keys = owned_keys(mfleet, 2, 5, prefix="my")
    owner = mfleet[2]

    def served():
        return value(_scrape(owner, mfleet.mport), "pycache_peer_requests_served_total")

    start = served()
    with mfleet[0].conn() as c:
        for k in keys:
            c.call(b"get %s\r\n" % k)
    wait_for(lambda: served() >= start + 5, 10, "the owner counting the forwarded reads")


def test_ring_checksums_hand_over_anti_entropy_and_locks(mfleet):
    from pycache_cluster.ops.cluster_metrics import checksum_value

    seen = [_scrape(n, mfleet.mport) for n in mfleet]
    checksum = mfleet[0].stats("cluster")["ring_checksum"]
    lock_checksum = mfleet[0].stats("locks")["lock_ring_checksum"]
    for s in seen:
        # Members that agree export the same number (a rule compares max and min).
        assert value(s, "pycache_ring_checksum") == checksum_value(str(checksum))
        assert value(s, "pycache_lock_ring_checksum") == checksum_value(str(lock_checksum))
        assert value(s, "pycache_lock_ring_nodes") == 3
        assert value(s, "pycache_handover_running") == 0
        assert value(s, "pycache_handover_walks_total") >= 0
        assert value(s, "pycache_anti_entropy_rounds_total") >= 0
        assert value(s, "pycache_hints_pending_bytes") == 0
    fams = families(mfleet[0].host, mfleet.mport)
    for name, kind in (("pycache_handover_keys_sent", "counter"),
                       ("pycache_anti_entropy_keys_pushed", "counter"),
                       ("pycache_lock_grants", "counter"), ("pycache_lock_quarantined", "gauge"),
                       ("pycache_hints_dropped", "counter"), ("pycache_ring_checksum", "gauge")):
        assert fams[name].type == kind, name
    # The numbers are those `stats cluster` and `stats locks` answer.
    node = mfleet[1]
    cl, locks, s = node.stats("cluster"), node.stats("locks"), _scrape(node, mfleet.mport)
    assert value(s, "pycache_handover_keys_sent_total") == cl["handover_keys_sent"]
    assert value(s, "pycache_lock_grants_total") == locks["lock_grants"]
