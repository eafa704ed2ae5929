"""Hinted handoff: the replicas' writes an owner missed, kept here and replayed once it answers.

A replica's write that fails (the owner timed out, refused, or was unreachable) is kept as
the exact request the owner should have applied (`ms ... E<version>`, `md ... E<version>`,
`touch`): replaying it later is safe because replicas apply versioned writes last-write-wins,
so a hint that arrives after newer writes changes nothing. Hints are bounded in count and
bytes; past the bound the oldest are dropped (counted) and anti-entropy is what repairs.
Replay runs every second for owners that are members of the ring again, a batch at a time.
"""
from __future__ import annotations

import asyncio
import collections
import logging

from pycache_cluster.cluster import wire

log = logging.getLogger(__name__)

#: Requests replayed to one owner per round, pipelined on its link.
REPLAY_BATCH = 256
REPLAY_INTERVAL = 1.0


class Hints:
    """Missed writes per owner name, oldest first."""

    def __init__(self, max_count: int = 100_000, max_bytes: int = 64 << 20):
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.pending: dict[str, collections.deque[bytes]] = {}
        self.count = 0
        self.bytes = 0
        self.queued = self.replayed = self.dropped = 0
        self._task: asyncio.Task | None = None

    def add(self, owner: str, request: bytes) -> None:
        self.pending.setdefault(owner, collections.deque()).append(request)
        self.count += 1
        self.bytes += len(request)
        self.queued += 1
        while self.count > self.max_count or self.bytes > self.max_bytes:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        owner = max(self.pending, key=lambda o: len(self.pending[o]))
        request = self.pending[owner].popleft()
        if not self.pending[owner]:
            del self.pending[owner]
        self.count -= 1
        self.bytes -= len(request)
        self.dropped += 1

    def drop(self, owner: str) -> int:
        """The owner is gone for good (`cluster forget`): its hints go, counted dropped."""
        queue = self.pending.pop(owner, None)
        if not queue:
            return 0
        self.count -= len(queue)
        self.bytes -= sum(map(len, queue))
        self.dropped += len(queue)
        return len(queue)

    def start(self, links) -> None:
        """links(owner) -> the owner's Link when it is a ring member now, else None."""
        self._task = asyncio.ensure_future(self._run(links))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, links) -> None:
        while True:
            await asyncio.sleep(REPLAY_INTERVAL)
            for owner in list(self.pending):
                link = links(owner)
                if link is not None:
                    await self.replay(owner, link)

    async def replay(self, owner: str, link) -> int:
        """Sends up to a batch of the owner's hints; returns how many it took."""
        queue = self.pending.get(owner)
        if not queue:
            return 0
        batch = [queue[i] for i in range(min(REPLAY_BATCH, len(queue)))]
        replies = await asyncio.gather(*(link.call_all(r)[0] for r in batch),
                                       return_exceptions=True)
        done = 0
        for reply in replies:
            if wire.status(reply) in wire.SETTLED:
                done += 1
            else:
                break       # keep order: what follows waits for the next round
        for request in batch[:done]:
            # While the batch was out, add() may have dropped the oldest hints (counted
            # there): only what is still at the head is the batch's.
            if queue and queue[0] is request:
                queue.popleft()
                self.count -= 1
                self.bytes -= len(request)
        self.replayed += done
        if not queue and self.pending.get(owner) is queue:
            del self.pending[owner]
        if done:
            log.info("replayed %d hint(s) to %s", done, owner)
        return done

    def counters(self, members=()) -> dict[str, int]:
        """members: the ring's names now; hints for them are the ones replay will deliver
        (an owner that was declared dead keeps its hints until it is back)."""
        live = sum(len(q) for owner, q in self.pending.items() if owner in members)
        return {"hints_pending": self.count, "hints_pending_members": live,
                "hints_pending_bytes": self.bytes,
                "hints_queued": self.queued, "hints_replayed": self.replayed,
                "hints_dropped": self.dropped}
