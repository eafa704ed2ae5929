"""The Cluster node component: gossip membership feeds the ring, the ring feeds routing.

    Membership (gossip) --events--> Cluster.refresh --> Ring (epoch, checksum)
                                                    --> Routes.install --> ClusterCoordinator
                                                        (native snapshot + peer links)

Started after the protocol server (a member that gossips already serves), stopped before it:
the leave is announced first, then routing stops and the links close, and the server drains
its clients. Ring owners are the members gossip sees alive (or suspect: not yet dead) whose
status is active; joining and leaving members own nothing, and a member drops out when the
failure detector declares it dead or it leaves.
"""
from __future__ import annotations

import asyncio
import logging
import time

import mmh3

from pycache_cluster.cluster._coord import ClusterCoordinator
from pycache_cluster.cluster.admin import Admin
from pycache_cluster.cluster.antientropy import ROUND_TIMEOUT, AntiEntropy
from pycache_cluster.cluster.commands import Commands
from pycache_cluster.cluster.handover import HandOver
from pycache_cluster.cluster.handshake import Handshake
from pycache_cluster.cluster.hints import Hints
from pycache_cluster.cluster.membership import Membership
from pycache_cluster.cluster.peers import PeerPool
from pycache_cluster.cluster.ring import Ring, check_zone
from pycache_cluster.cluster.routes import Routes
from pycache_cluster.config import Config
from pycache_cluster.gossip import Listener, Member, State, Status

log = logging.getLogger(__name__)

#: Membership events within this many seconds rebuild the ring once.
REFRESH_DELAY = 0.02
#: Seconds after a ring change during which a conditional write this node runs as a key's
#: first owner, on a key it holds nothing of, first fetches the other owners' copies: the
#: hand-overs that bring it keys take about this long (cluster/_fill.pxi).
FILL_WINDOW = 10.0
#: After its hand-over a leaving node goes on routing the peers' requests that still come
#: (their rings name it until gossip tells them), until none came for this long...
LINGER_QUIET = 0.3
#: ...or for at most this long.
LINGER_MAX = 3.0


class Cluster(Listener):
    """Owns membership, ring, peer links and routing for one node."""

    def __init__(self, config: Config):
        self.config = config
        self.membership = Membership(config, listener=self)
        self.name = self.membership.name
        self.ring = Ring(config.vnodes)
        self.commands = Commands(self)
        self.handshake = Handshake(self.name, self.membership.keyring)
        self.state = None
        self.pool: PeerPool | None = None
        #: Links for anti-entropy's exchanges, whose replies take a walk of the peer's store:
        #: on the forwarding links they held requests up and tripped the forward timeout.
        self.bulk_pool: PeerPool | None = None
        self.side_pool: PeerPool | None = None
        self.routes: Routes | None = None
        self.coord: ClusterCoordinator | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._warned: set[str] = set()
        self._installed = False     # a ring with this node in it was installed once
        self.hints = Hints()
        self.handover = HandOver(self, config.handover_rate)
        self.anti_entropy = AntiEntropy(self, config.anti_entropy_interval
                                        if config.replicas > 1 else 0)
        #: Called (no arguments) after the ring changed: the lock placement reads the members
        #: then, to follow joins and leaves.
        self.ring_listeners: list = []
        #: Members `cluster forget` dropped for good (cluster/admin.py): the lock ring leaves
        #: them out until gossip hears them alive again. The lock placement, once started.
        self.forgotten: set[str] = set()
        self.lock_placement = None
        self.admin = Admin(self)

    async def start(self, node) -> None:
        self.state = node.state
        # Versions from the hybrid clock, with this node's bits, and deletes leave
        # tombstones (csrc/pc_store.h, cluster mode), whatever N is: with N = 1 too a key's
        # copies meet (a hand-over's copy, a write forwarded by a node whose ring is newer)
        # and the newer one must win, which per-node counters cannot tell.
        node.store.set_replicated(mmh3.hash(self.name.encode(), 0, signed=False) & 1023,
                                  self.config.tombstone_ttl)
        self.pool = PeerPool(self.handshake, self.config.forward_timeout,
                             self.config.peer_links,
                             ssl=node.tls.client if node.tls is not None else None)
        self.bulk_pool = PeerPool(self.handshake, ROUND_TIMEOUT, 1,
                                  ssl=node.tls.client if node.tls is not None else None)
        #: Links for fills' fetches (cluster/_fill.pxi): never behind a stalled request.
        self.side_pool = PeerPool(self.handshake, self.config.forward_timeout, 1,
                                  ssl=node.tls.client if node.tls is not None else None)
        self.coord = ClusterCoordinator(
            node.state, self.config.replicas, self.config.write_quorum,
            self.config.read_quorum, on_hint=self.hint, broadcast_flush=self.flush_all)
        self.routes = Routes(self.coord, node.store, self.pool, self.name, self.side_pool)
        ext = node.state.extensions
        ext.add_command(b"cluster", self.commands.cluster_command)
        ext.add_stats(b"cluster", self.commands.stats)
        node.cluster = self
        tags = {"vnodes": str(self.config.vnodes)}
        if self.config.zone:
            tags["zone"] = self.config.zone
        await self.membership.start(node, tags=tags)
        self.refresh()
        self.hints.start(self.member_link)
        self.anti_entropy.start()

    async def stop(self, node) -> None:
        await self.leave(node)
        await self.membership.stop(node)
        await self.hints.stop()
        await self.handover.stop()
        await self.anti_entropy.stop()
        if self._refresh is not None:
            self._refresh.cancel()
        self.routes.uninstall()
        self.pool.close()
        self.side_pool.close()
        self.bulk_pool.close()
        node.cluster = None
        node.state.extensions.remove_command(b"cluster")
        node.state.extensions.remove_stats(b"cluster")

    async def leave(self, node=None) -> None:
        """A graceful leave (the node's first step in stopping, while it still serves): this
        node stops taking writes and owning keys (the others see it leaving), sends every
        key it holds to its owners, routes on what peers still send it meanwhile, then goes.
        Bounded by --leave-timeout. Taking no write from the start is what makes the walk
        complete: a write taken after the walk passed its key would leave with this node."""
        ml = self.membership.memberlist
        if self.coord.leaving or ml is None or self.routes is None or \
                len(self.ring.weights) < 2:
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.coord.leaving = True
        ml.update_meta(status=Status.LEAVING)
        self.refresh()
        if await self.handover.wait(self.config.leave_timeout):
            log.info("left the ring after handing over in %.2f s", loop.time() - start)
        else:
            log.warning("leave: hand-over unfinished after %.0f s; going anyway",
                        self.config.leave_timeout)
        await self._linger(min(start + self.config.leave_timeout, loop.time() + LINGER_MAX))

    async def _linger(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        seen, quiet_since = self.coord.rerouted, loop.time()
        while loop.time() < deadline and loop.time() - quiet_since < LINGER_QUIET:
            await asyncio.sleep(0.05)
            if self.coord.rerouted != seen:
                seen, quiet_since = self.coord.rerouted, loop.time()

    # -- membership events (on the loop) -----------------------------------------------------

    def on_join(self, member: Member) -> None:
        self._schedule()

    def on_leave(self, member: Member) -> None:
        self._schedule()

    def on_update(self, member: Member) -> None:
        self._schedule()

    def _schedule(self) -> None:
        if self._refresh is None and self.routes is not None:
            self._refresh = asyncio.get_running_loop().call_later(REFRESH_DELAY, self.refresh)

    def members(self) -> list[Member]:
        ml = self.membership.memberlist
        return ml.members() if ml is not None else []

    def refresh(self) -> None:
        """Rebuilds the ring from what gossip says now; reinstalls routing if it changed."""
        self._refresh = None
        weights, addresses, zones = {}, {}, {}
        members = self.members()
        self.forgotten -= {m.name for m in members if m.state in (State.ALIVE, State.SUSPECT)}
        for m in members:
            if m.state not in (State.ALIVE, State.SUSPECT) or m.meta.status != Status.ACTIVE:
                continue
            vnodes = m.meta.tags.get("vnodes")
            if vnodes != str(self.config.vnodes) and m.name not in self._warned:
                self._warned.add(m.name)
                log.warning("member %s routes with vnodes=%s, this node with %d: their rings "
                            "differ (give every node the same --vnodes)", m.name, vnodes,
                            self.config.vnodes)
            weights[m.name] = m.meta.weight
            addresses[m.name] = (m.meta.client_host, m.meta.client_port)
            zone = m.meta.tags.get("zone", "")
            try:
                zones[m.name] = check_zone(zone)
            except ValueError:
                if m.name not in self._warned:
                    self._warned.add(m.name)
                    log.warning("member %s names zone %r, not a zone name: placed in none",
                                m.name, zone)
        changed = self.ring.update(weights, zones)
        if changed:
            if self.name in weights:
                # A node that just started holds nothing: its window spans a few
                # anti-entropy rounds too (a restart before the others saw it die moves no
                # keys to it; anti-entropy and read repair bring them).
                window = FILL_WINDOW if self._installed else \
                    max(FILL_WINDOW, 3 * self.config.anti_entropy_interval)
                self._installed = True
                self.coord.fill_until = time.monotonic_ns() + int(window * 1e9)
            for listener in self.ring_listeners:
                listener()
        if changed or addresses != self.routes.addresses:
            self.routes.install(self.ring, addresses)
            self.bulk_pool.keep_only(set(self.routes.others()))
        if changed:
            self.handover.ring_changed()

    def member_link(self, name: str):
        addr = self.routes.addresses.get(name)
        if addr is None or name == self.name:
            return None
        return self.pool.link(name, *addr)

    def bulk_link(self, name: str):
        addr = self.routes.addresses.get(name)
        if addr is None or name == self.name:
            return None
        return self.bulk_pool.link(name, *addr)

    # -- what the protocol asks of the cluster -----------------------------------------------

    def hint(self, owner: str, request: bytes, why: bytes) -> None:
        """A replica's write the owner did not take: kept for when it is back."""
        self.hints.add(owner, request)

    def flush_all(self, delay: int, version: int = 0):
        """Queued to every other member now; an awaitable of the client's reply."""
        return self.routes.flush_all(delay, version)
