"""Where a lock lives: its name's owners on the ring, and when this node may vote for it.

A lock's owners are the first N nodes of the cache's ring for its name (N = --replicas); a
grant needs a majority of them, all routing with the same ring (equal checksums). Failure
detection does change the ring, so a node that becomes an owner of a name (because an owner
died or left, or the ring grew) must not vote for it until every lease granted under the
rings it replaced has expired: for `window` = max_ttl * (1 + rho) after a ring is retired,
this node votes only for names it also owned in that ring. A majority of new owners then
always contains a majority's worth of old ones, so any two granting majorities intersect.
A node that has no ring (gossip off) owns every name alone.

Assumption (README): members' ring views converge within max_ttl; a node that keeps routing
with a retired ring for longer could grant beside the new owners.
"""
from __future__ import annotations

import logging

from pycache_cluster.cluster.ring import Ring

log = logging.getLogger(__name__)

NO_RING = b"-"


class Placement:
    """Owners and vote eligibility of lock names, for one node."""

    def __init__(self, cluster, replicas: int, window: float, clock):
        self.cluster = cluster
        self.replicas = replicas
        self.window = window
        self.clock = clock
        self._retired: list[tuple[float, Ring]] = []    # (retired at, ring), oldest first

    @property
    def name(self) -> str:
        return self.cluster.name if self.cluster is not None else ""

    def checksum(self) -> bytes:
        ring = self._ring()
        return ring.checksum.encode() if ring is not None else NO_RING

    def owners(self, name: bytes) -> list[str]:
        ring = self._ring()
        if ring is None:
            return [self.name]
        return ring.owners(name, self.replicas)

    def address(self, node: str) -> bytes:
        """host:port of a node's client port; "-" for this node without a ring."""
        addr = self.cluster.router.addresses.get(node) if self._ring() is not None else None
        return b"%s:%d" % (addr[0].encode(), addr[1]) if addr else b"-"

    def majority(self, owners: list[str]) -> int:
        return len(owners) // 2 + 1

    def may_vote(self, name: bytes) -> bool:
        me = self.name
        if me not in self.owners(name):
            return False
        horizon = self.clock() - self.window
        self._retired = [(t, r) for t, r in self._retired if t > horizon]
        return all(me in r.owners(name, self.replicas) for _, r in self._retired)

    def retired(self, weights: dict[str, int]) -> None:
        """The cluster replaced the ring of these weights (called before routing moves on)."""
        if not weights:
            return
        self._retired.append((self.clock(), Ring(self.cluster.ring.vnodes, weights)))
        log.info("ring change: lock names new to this node wait %.1fs before it votes",
                 self.window)

    def _ring(self) -> Ring | None:
        c = self.cluster
        if c is None or not c.ring.weights:
            return None
        return c.ring
