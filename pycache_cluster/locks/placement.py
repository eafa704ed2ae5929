"""Where a lock lives: its name's owners on the lock ring, and when this node may vote for it.

The lock ring is the cache's ring function (cluster/ring.py) over a different member set:
every member that became active and did not leave, dead ones included. Failure detection
therefore never moves a lock: a dead or partitioned owner keeps its names and costs them
availability, never a second holder, and both sides of a partition count majorities of the
same owners. Only deliberate changes move locks: a join (the joiner is quarantined, having
just started) and a graceful leave. A grant needs a majority of the name's first N owners
(N = --replicas), the coordinator and every granting owner on the same lock ring (equal
checksums: nodes whose views differ refuse each other, which fails safe).

After a change, a node that became an owner of a name must not vote for it until every lease
granted under the replaced ring has expired: for `window` = max_ttl * (1 + rho) after a ring
is retired, this node votes only for names it also owned in that ring, so a majority of new
owners contains a majority's worth of old ones. A node that was alone in its ring (it just
started) and meets others does not vote until it has copied a peer's lock ring and `window`
has passed: their leases are unknown to it, and so are members that died before it met them
(gossip does not pass on the dead, and forgets them), without which its owners would differ
from everyone's. Without gossip a node owns every name alone. A member that died for good leaves only by
`cluster forget` (cluster/admin.py), a deliberate change like a leave. Not handled: two
established multi-node clusters merged into one.
"""
from __future__ import annotations

import asyncio
import logging
import math

from pycache_cluster.cluster._link import PeerError
from pycache_cluster.cluster.ring import Ring
from pycache_cluster.gossip import State, Status

log = logging.getLogger(__name__)

NO_RING = b"-"


class Placement:
    """Owners and vote eligibility of lock names, for one node."""

    def __init__(self, cluster, replicas: int, window: float, clock, table,
                 follow_failures: bool = False):
        self.cluster = cluster
        self.replicas = replicas
        self.window = window
        self.clock = clock
        self.table = table      # quarantined when this node meets a cluster it was not in
        # Unsafe on purpose (a negative control): owners follow the cache's ring, which
        # failure detection changes.
        self.follow_failures = follow_failures
        self.ring = Ring(cluster.ring.vnodes) if cluster is not None else None
        self._retired: list[tuple[float, Ring]] = []    # (retired at, ring), oldest first
        self._copying: asyncio.Task | None = None
        if cluster is not None:
            self.refresh()

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

    def queue_owner(self, owners: list[str]) -> str | None:
        """The first owner gossip sees alive, where waiters queue (the first owner may be
        dead yet keep its names); None for this node without a ring, or none alive."""
        if self._ring() is None:
            return None
        return next((n for n in owners if self.cluster.routes.addresses.get(n)), None)

    def queue(self, owners: list[str]) -> bytes:
        """host:port of queue_owner(); "-" when there is none."""
        node = self.queue_owner(owners)
        if node is None:
            return b"-"
        addr = self.cluster.routes.addresses[node]
        return b"%s:%d" % (addr[0].encode(), addr[1])

    def majority(self, owners: list[str]) -> int:
        return len(owners) // 2 + 1

    def may_vote(self, name: bytes) -> bool:
        me = self.name
        if me not in self.owners(name):
            return False
        horizon = self.clock() - self.window
        self._retired = [(t, r) for t, r in self._retired if t > horizon]
        return all(me in r.owners(name, self.replicas) for _, r in self._retired)

    def refresh(self) -> None:
        """Called when the cache's ring changed. Takes in members that became active and
        drops those that left; a member that died stays (its names wait for it)."""
        old = dict(self.ring.weights)
        gone = self._gone()
        weights = {n: w for n, w in old.items() if n not in gone}
        for m in self.cluster.members():
            if m.name not in gone and m.meta.status == Status.ACTIVE:
                weights[m.name] = m.meta.weight
        self._install(weights)
        if set(old) <= {self.name} and len(weights) > 1 and not self.follow_failures:
            log.info("lock ring: met %d other member(s); not voting until their lock ring is "
                     "copied and %.1fs have passed", len(weights) - 1, self.window)
            self.table.quarantine_until = math.inf
            self.close()
            self._copying = asyncio.ensure_future(self._copy(self.clock() + self.window))

    def members(self) -> bytes:
        """This node's lock ring, for a peer that just met it (`lock members`)."""
        return b"MEMBERS%s\r\n" % b"".join(b" %s:%d" % (n.encode(), w)
                                          for n, w in sorted(self.ring.weights.items()))

    def close(self) -> None:
        if self._copying is not None:
            self._copying.cancel()
            self._copying = None

    async def _copy(self, until: float) -> None:
        """Adds the members of the first peer's lock ring that answers (retrying every half
        second), then lets this node vote from `until` on."""
        while True:
            for node, addr in list(self.cluster.routes.addresses.items()):
                if node == self.name:
                    continue
                try:
                    async with asyncio.timeout(1.0):
                        reply = await self.cluster.pool.link(node, *addr).call(
                            b"lock members\r\n")
                except (TimeoutError, PeerError, OSError) as exc:
                    log.debug("lock members from %s: %s", node, exc)
                    continue
                if not reply.startswith(b"MEMBERS"):
                    continue
                gone, weights = self._gone(), dict(self.ring.weights)
                for part in reply.split()[1:]:
                    try:
                        name, _, weight = part.decode().rpartition(":")
                    except UnicodeDecodeError:      # a garbled entry is no member
                        continue
                    if name not in gone and name not in weights and weight.isascii() and \
                            weight.isdigit():
                        weights[name] = int(weight)
                self._install(weights)
                self.table.quarantine_until = until
                self._copying = None
                log.info("lock ring copied from %s", node)
                return
            await asyncio.sleep(0.5)

    def _gone(self) -> set[str]:
        """Members that left or are leaving, and those `cluster forget` dropped: the only
        ones the lock ring drops."""
        return {m.name for m in self.cluster.members()
                if m.state == State.LEFT or m.meta.status == Status.LEAVING} | \
            self.cluster.forgotten

    def _install(self, weights: dict[str, int]) -> None:
        old = dict(self.ring.weights)
        if not self.ring.update(weights):
            return
        if old:
            self._retired.append((self.clock(), Ring(self.ring.vnodes, old)))
        log.info("lock ring: %d member(s), checksum %s", len(weights), self.ring.checksum)

    def size(self) -> int:
        """Members of the ring lock owners are drawn from (1 without gossip)."""
        ring = self._ring()
        return len(ring.weights) if ring is not None else 1

    def _ring(self) -> Ring | None:
        c = self.cluster
        if c is None:
            return None
        ring = c.ring if self.follow_failures else self.ring
        return ring if ring.weights else None
