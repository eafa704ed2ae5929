"""Hand-over: data follows the ring. After every ring change a node walks its store (the
resumable scan cursor, a bounded step per loop turn) and sends each key it holds to the owners
that did not own it before, as the replicas' versioned writes (`ms ... E<version>`, applied
last-write-wins, so copies from several senders or a late replay change nothing). Keys this
node no longer owns go to every new owner (one of them may have missed a write) and are
dropped once all acknowledged them, without a tombstone.

The same walk covers a member joining (it receives its share), leaving (it sends everything
it holds before it goes) and dying (the survivors bring its keys back to N copies). A walk
compares the ring now with the ring as of the last walk that finished, so a change during a
walk restarts it without losing what the interrupted one had not sent; a walk with failed
sends is retried. Shortly after a walk, one more walk over the same ring sends away what
arrived meanwhile for keys this node does not own (a read repair or a write from a node
whose ring was a moment behind), so every key ends up on exactly its owners.
"""
from __future__ import annotations

import asyncio
import logging
import time

import mmh3

from pycache_cluster.cluster import _ring, wire
from pycache_cluster.cluster.ring import Ring

log = logging.getLogger(__name__)

#: Items per scan step: one step's pushes go out pipelined and are awaited together.
STEP = 256
#: Seconds after a walk before the walk that sends away late arrivals (or retries).
SETTLE_DELAY = 2.0


#: What places keys, besides vnodes: (name -> weight, name -> zone).
Placement = tuple[dict[str, int], dict[str, str]]


def placement(ring: Ring) -> Placement:
    return dict(ring.weights), dict(ring.zones)


class Lookup:
    """A ring's owner lookup by the native snapshot the request path uses: the walk asks two
    rings about every key the node holds, and the Python lookup costs ten times more."""

    def __init__(self, ring: Ring):
        self.placement = placement(ring)
        names = ring.nodes
        self.snapshot = _ring.RingSnapshot(*ring.arrays(), names, ring.zone_slots()) \
            if names else None

    def owners(self, key: bytes, n: int) -> list[str]:
        return self.snapshot.owners(key, n) if self.snapshot is not None else []


class HandOver:
    """Walks the store after ring changes; `stats cluster` shows its counters."""

    def __init__(self, cluster, rate: int = 0):
        self.cluster = cluster
        self.rate = rate                # bytes per second, 0: as fast as the links take them
        self.base: Placement | None = None      # the ring as of the last finished walk
        self.task: asyncio.Task | None = None
        self._again_timer: asyncio.TimerHandle | None = None
        self.keys_sent = self.bytes_sent = self.keys_dropped = self.failures = 0
        self.walks_done = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def ring_changed(self) -> None:
        """The ring now differs from the one the last walk finished with: walk again."""
        now = placement(self.cluster.ring)
        if self.base is None:
            self.base = now             # a node that just started holds nothing to send
            return
        self._start(self.base, now, settle=True)

    def _start(self, before: Placement, after: Placement, settle: bool) -> None:
        if self.task is not None:
            self.task.cancel()
        self.idle.clear()
        vnodes = self.cluster.ring.vnodes
        self.task = asyncio.ensure_future(self._walk(Lookup(Ring(vnodes, *before)),
                                                     Lookup(Ring(vnodes, *after)), settle))

    def _again(self, after: Placement) -> None:
        if self.task is None and placement(self.cluster.ring) == after:
            self._start(self.base, after, settle=False)

    async def wait(self, timeout: float) -> bool:
        """True once no walk is running (a leaving node waits for its last one)."""
        try:
            async with asyncio.timeout(timeout):
                await self.idle.wait()
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self._again_timer is not None:
            self._again_timer.cancel()      # no walk may start once the node stops
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _walk(self, before: Lookup, after: Lookup, settle: bool) -> None:
        store, me, n = self.cluster.state.store, self.cluster.name, self.cluster.config.replicas
        start, sent0, dropped0 = time.monotonic(), self.keys_sent, self.keys_dropped
        log.info("hand-over: walking the store for ring epoch %d", self.cluster.ring.epoch)
        cursor, complete = 0, True
        while True:
            cursor, items = store.scan(cursor, STEP)
            complete &= await self._step(items, before, after, me, n)
            if cursor == 0:
                break
            await asyncio.sleep(0)      # one step per loop turn: requests go first
        if complete:
            self.base = after.placement
        self.walks_done += 1
        self.task = None
        self.idle.set()
        if settle or not complete:
            self._again_timer = asyncio.get_running_loop().call_later(
                SETTLE_DELAY, self._again, after.placement)
        log.info("hand-over: done in %.2f s: %d key(s) sent, %d dropped%s",
                 time.monotonic() - start, self.keys_sent - sent0,
                 self.keys_dropped - dropped0, "" if complete else " (some sends failed)")

    async def _step(self, items, before: Lookup, after: Lookup, me: str, n: int) -> bool:
        pending = []
        nbytes = 0
        for item in items:
            now = after.owners(item.key, n)
            leaving = me not in now
            was = before.owners(item.key, n)
            targets = [o for o in now if o != me and (leaving or o not in was)]
            if not targets:
                continue
            request = wire.push_request(item)
            hv = mmh3.hash(item.key, 0, signed=False)
            futures = []
            for owner in targets:
                link = self.cluster.member_link(owner)
                if link is None:
                    continue
                futures.append(link.call_key(request, hv))
                nbytes += len(request)
            pending.append((item, futures, leaving, len(futures) == len(targets)))
        ok = True
        for item, futures, leaving, all_sent in pending:
            replies = await asyncio.gather(*futures, return_exceptions=True)
            acked = all_sent and all(wire.status(r) in wire.HELD for r in replies)
            self.keys_sent += 1
            if not acked:
                self.failures += 1
                ok = False
            elif leaving and self.cluster.state.store.forget(item.key, item.version):
                self.keys_dropped += 1
        self.bytes_sent += nbytes
        if self.rate and nbytes:
            await asyncio.sleep(nbytes / self.rate)
        return ok

    def counters(self) -> dict[str, int]:
        return {"handover_running": int(self.task is not None),
                "handover_walks": self.walks_done, "handover_keys_sent": self.keys_sent,
                "handover_bytes_sent": self.bytes_sent,
                "handover_keys_dropped": self.keys_dropped,
                "handover_failures": self.failures}
