"""A cluster member's metric families: ring, routing, replication, hints, peers and gossip.

The same counters `stats cluster` and `stats gossip` answer (cluster/commands.py,
gossip/memberlist.py), read at scrape time; per-peer families carry a `peer` label with the
member's name, so a slow or failing peer shows as one series.
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# State attribute of the protocol's ServerState -> (metric, kind, help).
ROUTING = {
    "forwarded": ("pycache_forwarded_requests", "c",
                  "Requests sent to the key's owner instead of answered here."),
    "fanout_batches": ("pycache_fanout_batches", "c",
                       "Multi-key reads split into one batch per owner."),
    "peer_requests": ("pycache_peer_requests_served", "c",
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
}

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
    st = cluster.state
    ring = cluster.ring
    yield GaugeMetricFamily("pycache_ring_epoch", "Ring changes seen by this node.",
                            value=ring.epoch)
    yield GaugeMetricFamily("pycache_ring_nodes", "Members owning keys.",
                            value=len(ring.weights))
    yield GaugeMetricFamily("pycache_ring_owner", "1 when this node owns keys.",
                            value=1 if cluster.name in ring.weights else 0)
    shares = ring.shares() if ring.weights else {}
    share = GaugeMetricFamily("pycache_ring_share_ratio", "Fraction of the keys each member "
                              "owns first.", labels=["member"])
    for name, fraction in sorted(shares.items()):
        share.add_metric([name], fraction)
    yield share
    for attr, (name, kind, text) in ROUTING.items():
        family = CounterMetricFamily if kind == "c" else GaugeMetricFamily
        yield family(name, text, value=getattr(st, attr))
    yield from _peers(cluster)
    yield from _hints(cluster)
    yield from _gossip(cluster)


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
    hints = cluster.hints
    c = hints.counters(cluster.router.addresses if cluster.router else ())
    pending = GaugeMetricFamily("pycache_hints_pending", "Writes kept for an owner that "
                                "missed them, by owner.", labels=["peer"])
    for owner, queue in sorted(hints.pending.items()):
        pending.add_metric([owner], len(queue))
    return [pending,
            GaugeMetricFamily("pycache_hints_pending_bytes", "Bytes of the kept writes.",
                              value=c["hints_pending_bytes"]),
            CounterMetricFamily("pycache_hints_queued", "Writes kept as hints.",
                                value=c["hints_queued"]),
            CounterMetricFamily("pycache_hints_replayed", "Hints delivered to their owner.",
                                value=c["hints_replayed"]),
            CounterMetricFamily("pycache_hints_dropped", "Hints dropped over the limits.",
                                value=c["hints_dropped"])]


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
