"""A cluster member's metric families: ring, routing, replication, hints, hand-over,
anti-entropy, peers, gossip and locks.

The same figures `stats cluster`, `stats gossip` and `stats locks` answer, read at scrape
time through the pairs those commands are made of (cluster/commands.py, locks/service.py,
gossip/memberlist.py), so where a counter lives inside the node does not matter here;
per-peer families carry a `peer` label with the member's name, so a slow or failing peer
shows as one series. Ring checksums are exported as numbers (their first 13 hex digits, exact
in a float) so that a rule can compare members: max != min means two rings.
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# `stats cluster` name -> (metric, kind, help).
ROUTING = {
    "forwarded": ("pycache_forwarded_requests", "c",
                  "Requests sent to the key's owner instead of answered here."),
    "fanout_batches": ("pycache_fanout_batches", "c",
                       "Multi-key reads split into one batch per owner."),
    "peer_requests_served": ("pycache_peer_requests_served", "c",
                             "Requests served for other members over peer links."),
    "replicas": ("pycache_replicas", "g", "Owners per key (N)."),
    "write_quorum": ("pycache_write_quorum", "g", "Owners acknowledging a write (W)."),
    "read_quorum": ("pycache_read_quorum", "g", "Owners a read asks (R)."),
    "replica_writes_sent": ("pycache_replica_writes_sent", "c",
                            "Copies of writes sent to other owners."),
    "replica_writes_acked": ("pycache_replica_writes_acked", "c",
                             "Copies of writes other owners applied."),
    "replica_writes_failed": ("pycache_replica_writes_failed", "c",
                              "Copies of writes other owners did not apply (kept as hints)."),
    "quorum_failures": ("pycache_quorum_failures", "c",
                        "Reads or writes that heard fewer owners than their quorum."),
    "read_repairs": ("pycache_read_repairs", "c", "Stale owners repaired by a read."),
    "hints_pending_bytes": ("pycache_hints_pending_bytes", "g", "Bytes of the kept writes."),
    "hints_pending_members": ("pycache_hints_pending_members", "g",
                              ("Kept writes for owners that are ring members now (replayed "
                              "within a second or two).")),
    "hints_queued": ("pycache_hints_queued", "c", "Writes kept as hints."),
    "hints_replayed": ("pycache_hints_replayed", "c", "Hints delivered to their owner."),
    "hints_dropped": ("pycache_hints_dropped", "c",
                      "Hints dropped over the limits or for a forgotten owner."),
    "handover_running": ("pycache_handover_running", "g",
                         "1 while a hand-over walk runs after a ring change."),
    "handover_walks": ("pycache_handover_walks", "c", "Hand-over walks finished."),
    "handover_keys_sent": ("pycache_handover_keys_sent", "c",
                           "Keys a hand-over sent to their new owners."),
    "handover_bytes_sent": ("pycache_handover_bytes_sent", "c", "Bytes hand-overs sent."),
    "handover_keys_dropped": ("pycache_handover_keys_dropped", "c",
                              "Keys dropped here once their new owners held them."),
    "handover_failures": ("pycache_handover_failures", "c",
                          "Keys a hand-over could not deliver (the walk is retried)."),
    "anti_entropy_rounds": ("pycache_anti_entropy_rounds", "c",
                            "Anti-entropy rounds finished with a peer."),
    "anti_entropy_buckets_differing": ("pycache_anti_entropy_buckets_differing", "c",
                                       "Hash-range buckets found different from a peer's."),
    "anti_entropy_keys_pushed": ("pycache_anti_entropy_keys_pushed", "c",
                                 "Keys sent to a peer that held an older version."),
    "anti_entropy_failures": ("pycache_anti_entropy_failures", "c",
                              "Anti-entropy rounds that failed."),
    "anti_entropy_bytes": ("pycache_anti_entropy_bytes", "c", "Bytes anti-entropy exchanged."),
}

# `stats locks` name -> (metric, kind, help).
LOCKS = {
    "lock_entries": ("pycache_lock_entries", "g", "Lock names in this node's table."),
    "lock_limit": ("pycache_lock_limit", "g", "Lock names the table may hold (--lock-limit)."),
    "lock_quarantined": ("pycache_lock_quarantined", "g",
                         "1 while this node does not vote (after a start or a ring change)."),
    "lock_ring_nodes": ("pycache_lock_ring_nodes", "g",
                        "Members of the lock ring, dead ones included."),
    "lock_grants": ("pycache_lock_grants", "c", "Leases this node granted as an owner."),
    "lock_refusals": ("pycache_lock_refusals", "c", "Grants this node refused as an owner."),
    "lock_releases": ("pycache_lock_releases", "c", "Leases released on this node."),
    "lock_acquired": ("pycache_lock_acquired", "c", "Acquisitions coordinated here that won."),
    "lock_busy": ("pycache_lock_busy", "c", "Acquisitions coordinated here told BUSY."),
    "lock_unavailable": ("pycache_lock_unavailable", "c",
                         "Acquisitions coordinated here without a majority of owners."),
    "lock_lost": ("pycache_lock_lost", "c", "Renewals that found the lease lost."),
    "lock_waiting": ("pycache_lock_waiting", "g", "Clients queued in lock wait here."),
    "lock_waits": ("pycache_lock_waits", "c", "lock wait requests served."),
    "lock_wakeups": ("pycache_lock_wakeups", "c", "Waiters woken by a release or expiry."),
}


def checksum_value(checksum: str) -> float:
    """A ring checksum (16 hex digits) as a number Prometheus can compare: 52 bits of it."""
    try:
        return float(int(checksum[:13], 16))
    except ValueError:
        return 0.0      # "-": no ring


def _families(pairs: dict, table: dict):
    for key, (name, kind, text) in table.items():
        if key in pairs:
            family = CounterMetricFamily if kind == "c" else GaugeMetricFamily
            yield family(name, text, value=float(pairs[key]))


# PeerPool per-peer counter -> (metric, kind, help).
PEER = {
    "requests": ("pycache_peer_requests_sent", "c", "Requests sent to the peer."),
    "replies": ("pycache_peer_replies_received", "c", "Replies received from the peer."),
    "failed": ("pycache_peer_request_failures", "c", "Requests the peer never answered."),
    "timeouts": ("pycache_peer_request_timeouts", "c", "Requests that outlived the timeout."),
    "connects": ("pycache_peer_connects", "c", "Links opened to the peer."),
    "waiting": ("pycache_peer_requests_waiting", "g", "Requests awaiting the peer's reply."),
}


def cluster_families(cluster):
    """Metric families of one node's Cluster component (cluster/component.py)."""
    pairs = dict(cluster.commands.pairs())
    ring = cluster.ring
    yield GaugeMetricFamily("pycache_ring_epoch", "Ring changes seen by this node.",
                            value=pairs["ring_epoch"])
    yield GaugeMetricFamily("pycache_ring_nodes", "Members owning keys.",
                            value=pairs["ring_nodes"])
    yield GaugeMetricFamily("pycache_ring_owner", "1 when this node owns keys.",
                            value=pairs["ring_owner"])
    yield GaugeMetricFamily("pycache_ring_checksum", "This node's ring checksum, its first 52 "
                            "bits as a number: members that agree show the same value.",
                            value=checksum_value(pairs["ring_checksum"]))
    shares = ring.shares() if ring.weights else {}
    share = GaugeMetricFamily("pycache_ring_share_ratio", "Fraction of the keys each member "
                              "owns first.", labels=["member"])
    for name, fraction in sorted(shares.items()):
        share.add_metric([name], fraction)
    yield share
    yield from _families(pairs, ROUTING)
    yield from _peers(cluster)
    yield from _hints(cluster)
    yield from _gossip(cluster)


def lock_families(locks):
    """Metric families of the node's Locks component (locks/service.py)."""
    pairs = dict(locks.pairs())
    yield from _families(pairs, LOCKS)
    yield GaugeMetricFamily("pycache_lock_ring_checksum", "This node's lock ring checksum as "
                            "a number (see pycache_ring_checksum).",
                            value=checksum_value(pairs["lock_ring_checksum"]))


def _peers(cluster):
    pool = cluster.pool
    families = {}
    for counter, (name, kind, text) in PEER.items():
        family = CounterMetricFamily if kind == "c" else GaugeMetricFamily
        families[counter] = family(name, text, labels=["peer"])
    ready = GaugeMetricFamily("pycache_peer_links_ready", "Open links to the peer.",
                              labels=["peer"])
    for peer_name, peer in sorted(pool.peers.items()) if pool is not None else ():
        for counter, value in peer.counters().items():
            if counter in families:
                families[counter].add_metric([peer_name], value)
        ready.add_metric([peer_name], sum(link.state == "ready" for link in peer.links))
    return [*families.values(), ready]


def _hints(cluster):
    pending = GaugeMetricFamily("pycache_hints_pending", "Writes kept for an owner that "
                                "missed them, by owner.", labels=["peer"])
    for owner, queue in sorted(cluster.hints.pending.items()):
        pending.add_metric([owner], len(queue))
    return [pending]


def _gossip(cluster):
    from pycache_cluster.gossip.memberlist import COUNTERS

    ml = cluster.membership.memberlist
    if ml is None:
        return
    st = ml.stats()
    members = GaugeMetricFamily("pycache_gossip_members", "Members by state, as this node "
                                "sees them.", labels=["state"])
    for key, value in st.items():
        if key.startswith("members_"):
            members.add_metric([key[len("members_"):]], value)
    yield members
    yield GaugeMetricFamily("pycache_gossip_health_score", "Lifeguard's local health "
                            "(0 healthy; higher stretches timeouts).", value=st["health_score"])
    yield GaugeMetricFamily("pycache_gossip_incarnation", "This member's incarnation.",
                            value=st["incarnation"])
    yield GaugeMetricFamily("pycache_gossip_broadcast_queue", "Broadcasts waiting to be "
                            "piggybacked.", value=st["broadcast_queue"])
    for key, text in COUNTERS.items():
        yield CounterMetricFamily(f"pycache_gossip_{key}", text[:1].upper() + text[1:] + ".",
                                  value=st.get(key, 0))
    yield CounterMetricFamily("pycache_gossip_sent_bytes", "Gossip bytes sent.",
                              value=st["bytes_sent"])
    yield CounterMetricFamily("pycache_gossip_received_bytes", "Gossip bytes received.",
                              value=st["bytes_received"])
