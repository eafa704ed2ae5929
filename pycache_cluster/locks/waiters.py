"""Waiting without a herd: a FIFO of clients waiting for a lock, kept on the name's first
owner, which sees the lease's releases (every release frees every owner) and knows when its
copy of the lease runs out.

A client told BUSY asks the first owner `lock wait <name> <token> <max_ms>` on a connection
of its own. The wait answers FREE at once when this owner's lease is not (or no longer) the
one the client saw; otherwise the waiter queues, and each release or expiry here wakes the
head only, which then acquires through the quorum as usual. Best effort, never relied on for
safety: if the woken head does not take the lock within the grace (--lock-wait-grace), the
next one is woken too (which may reorder the queue: the two race); a
waiter whose owner is slow or gone gives up after max_ms and simply tries again; a woken
waiter that loses a race queues again at the tail.
"""
from __future__ import annotations

import asyncio
from collections import deque


class Waiters:
    """The queues of one node, over its lock table."""

    def __init__(self, table, clock, grace: float = 0.25):
        self.table = table
        self.clock = clock
        self.grace = grace      # seconds a woken head has to take the lock
        self._queues: dict[bytes, deque[asyncio.Future]] = {}
        self._timers: dict[bytes, asyncio.TimerHandle] = {}
        self.waits = self.woken = 0

    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def wait(self, name: bytes, token: int, max_wait: float) -> bytes:
        holder, held, left, _ = self.table.inspect(name, self.clock())
        if not holder or held != token:
            return b"FREE\r\n"
        fut = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(name, deque())
        queue.append(fut)
        self.waits += 1
        if name not in self._timers:
            self._arm(name, left)
        try:
            async with asyncio.timeout(max_wait):
                await fut
            return b"FREE\r\n"
        except TimeoutError:
            return b"WAITED\r\n"
        finally:
            if fut in queue:
                queue.remove(fut)
            if not queue and self._queues.get(name) is queue:
                del self._queues[name]
                timer = self._timers.pop(name, None)
                if timer is not None:
                    timer.cancel()

    def freed(self, name: bytes) -> None:
        """The lease on `name` was released here (or ran out): wake the head."""
        queue = self._queues.get(name)
        while queue and queue[0].done():
            queue.popleft()
        if not queue:
            return
        queue.popleft().set_result(None)
        self.woken += 1
        if queue:
            self._arm(name, self.grace)

    def _arm(self, name: bytes, delay: float) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later(max(delay, 0.0) + 0.001, self._check, name)

    def _check(self, name: bytes) -> None:
        self._timers.pop(name, None)
        if name not in self._queues:
            return
        holder, _, left, _ = self.table.inspect(name, self.clock())
        if holder:
            self._arm(name, left)       # held (again, or renewed): wait for its end
        else:
            self.freed(name)
