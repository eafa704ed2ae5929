"""Routes: keeps the coordinator's routes in step with the ring, and the few
requests that go to every member (flush_all).

Which node serves a key is the ring's answer; this module turns each new ring into what the
request path reads natively: a ring snapshot, this node's slot in it, and one link per other
slot (the coordinator, cluster/_coord.pyx, takes them in one step). No sockets here: links
come from the PeerPool.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from pycache_cluster.cluster import _ring, wire
from pycache_cluster.cluster.peers import PeerPool
from pycache_cluster.cluster.ring import Ring

log = logging.getLogger(__name__)


class Routes:
    """Installs rings into one coordinator and broadcasts to the ring's other members."""

    def __init__(self, coord, store, pool: PeerPool, self_name: str,
                 side_pool: PeerPool | None = None):
        self.coord = coord
        self.store = store
        self.pool = pool
        self.side_pool = side_pool
        self.self_name = self_name
        self.addresses: dict[str, tuple[str, int]] = {}
        self.snapshot: _ring.RingSnapshot | None = None

    def install(self, ring: Ring, addresses: dict[str, tuple[str, int]]) -> None:
        """Routes by `ring` from now on. addresses: client (host, port) of every ring node."""
        names = ring.nodes
        self.addresses = {n: addresses[n] for n in names}
        if not names:
            self.uninstall()
            return
        positions, slots = ring.arrays()
        snapshot = _ring.RingSnapshot(positions, slots, names, ring.zone_slots())
        links = [None if n == self.self_name else self.pool.link(n, *self.addresses[n])
                 for n in names]
        side = None if self.side_pool is None else [
            None if n == self.self_name else self.side_pool.link(n, *self.addresses[n])
            for n in names]
        self_slot = names.index(self.self_name) if self.self_name in names else -1
        self.coord.install(snapshot, self_slot, links, side)
        self.snapshot = snapshot
        others = {n for n in names if n != self.self_name}
        self.pool.keep_only(others)
        if self.side_pool is not None:
            self.side_pool.keep_only(others)
        log.info("ring epoch %d: %d node(s), checksum %s", ring.epoch, len(names),
                 ring.checksum)

    def uninstall(self) -> None:
        self.coord.uninstall()
        self.snapshot = None

    def others(self) -> list[str]:
        return [n for n in self.addresses if n != self.self_name]

    def flush_all(self, delay: int, version: int = 0) -> Awaitable[bytes]:
        """Every other ring member runs `flush_all <delay>` (this node already has). The
        requests are queued now, on every link, so that they keep their place among the
        requests the client sent before and after. Answers OK once all did; otherwise the
        members that did not, in one SERVER_ERROR line."""
        # The version cut-off is this node's, so that what it writes next is newer on every
        # member (a member's own clock may be a little ahead).
        request = wire.flush_request(delay, version)
        calls = {n: self.pool.link(n, *self.addresses[n]).call_all(request)
                 for n in self.others()}
        for futures in calls.values():
            for future in futures:
                future.add_done_callback(self._observe_cutoff)
        return self._flushed(calls)

    def _observe_cutoff(self, future: asyncio.Future) -> None:
        # "OK c<cut-off>": this node's next writes must be newer than that. Taken as each
        # reply lands, not by the client's awaiting task: a client that hangs up cancels it.
        if not future.cancelled() and future.exception() is None:
            reply = future.result()
            if isinstance(reply, bytes) and (cutoff := wire.flush_cutoff(reply)):
                self.store.observe(cutoff)

    async def _flushed(self, calls: dict[str, list[asyncio.Future]]) -> bytes:
        failed = []
        for name, futures in calls.items():
            replies = await asyncio.gather(*futures, return_exceptions=True)
            if any(not (isinstance(r, bytes) and r.startswith(b"OK")) for r in replies):
                failed.append(name)
                log.warning("flush_all on %s: %s", name, replies)
        if not failed:
            return b"OK\r\n"
        return b"SERVER_ERROR flush_all failed on " + ",".join(failed).encode() + b"\r\n"
