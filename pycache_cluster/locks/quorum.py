"""The coordinator's side of a lock: asks every owner of a name at once, counts a majority.

Any node coordinates (the client may talk to any); the owners are asked over the peer links,
this node's own table directly. A request to an owner that does not answer within `timeout`
counts as a refusal, and is released afterwards (it may have been granted).

Acquire, per LOCKS.md: t0 on the monotonic clock; propose token = the wall clock in
microseconds (so tokens keep increasing across restarts that lose the tables, as long as the
clock does not step back); an owner that knows a higher token says so (LOW/HELD/...) and, if
no other holder is valid, one retry proposes max(highest) + 1. Success iff a majority granted
the same token and validity = ttl * (1 - rho) - elapsed - margin is still positive. On
failure every owner is told to free what this attempt may hold.
"""
from __future__ import annotations

import asyncio
import logging
import time

from pycache_cluster.cluster._link import PeerError
from pycache_cluster.locks.placement import Placement

log = logging.getLogger(__name__)

#: Seconds of validity given up to what the clocks and the scheduler may hide.
MARGIN = 0.002


def wall_token() -> int:
    return time.time_ns() // 1000


class LockQuorum:
    """Runs acquire, renew and release for clients of this node."""

    def __init__(self, placement: Placement, replica, rho: float, clock=time.monotonic):
        self.placement = placement
        self.replica = replica      # this node's own replica: replica.answer(args) -> bytes
        self.rho = rho
        self.clock = clock
        self.acquired = self.busy = self.unavailable = self.lost = 0

    def timeout(self, ttl: float) -> float:
        # Short, so a dead or paused owner costs little of the lease; never below what a
        # loaded loopback round trip takes.
        return min(max(ttl * 0.05, 0.1), 1.0)

    async def acquire(self, name: bytes, owner: bytes, ttl: float) -> bytes:
        t0 = self.clock()
        owners = self.placement.owners(name)
        need = self.placement.majority(owners)
        token, tried = wall_token(), []
        answers: list[tuple[bytes, int]] = []
        for _ in range(2):
            tried.append(token)
            answers = await self._grant_all(owners, name, owner, token, ttl)
            if sum(v == b"GRANTED" for v, _ in answers) >= need:
                validity = ttl * (1 - self.rho) - (self.clock() - t0) - MARGIN
                if validity > 0:
                    self.acquired += 1
                    return b"LOCKED %d %d\r\n" % (token, int(validity * 1000))
                break
            highest = max(h for _, h in answers)
            if any(v == b"HELD" for v, _ in answers) or highest < token:
                break
            token = highest + 1
        self._free_all(owners, name, owner, tried)
        return self._refusal(name, answers, need)

    async def renew(self, name: bytes, owner: bytes, token: int, ttl: float) -> bytes:
        t0 = self.clock()
        owners = self.placement.owners(name)
        need = self.placement.majority(owners)
        answers = await self._grant_all(owners, name, owner, token, ttl)
        if sum(v == b"GRANTED" for v, _ in answers) >= need:
            validity = ttl * (1 - self.rho) - (self.clock() - t0) - MARGIN
            if validity > 0:
                return b"LOCKED %d %d\r\n" % (token, int(validity * 1000))
        if any(v in (b"HELD", b"LOW") for v, _ in answers):
            self.lost += 1
            return b"LOST\r\n"
        return self._refusal(name, answers, need)

    async def release(self, name: bytes, owner: bytes, token: int) -> bytes:
        """Frees every owner; the owner where waiters queue last, since its free wakes the
        head: the head's grants then find the lease freed on every other owner too (freed
        all at once, a grant could meet the old lease on a majority, fail, and its clean-up
        free wake the next waiter as well)."""
        owners = self.placement.owners(name)
        line = b"lock free %s %s %d\r\n" % (name, owner, token)
        queue = self.placement.queue_owner(owners)
        first = [o for o in owners if o != queue]
        replies = list(await asyncio.gather(*(self.ask(o, line, 1.0) for o in first)))
        if queue is not None:
            replies.append(await self.ask(queue, line, 1.0))
        freed = sum(r.startswith(b"FREED") for r in replies)
        return b"RELEASED %d %d\r\n" % (freed, len(owners))

    def _refusal(self, name: bytes, answers: list[tuple[bytes, int]], need: int) -> bytes:
        if any(v == b"HELD" for v, _ in answers):
            self.busy += 1
            return b"BUSY %d %s\r\n" % (max(h for _, h in answers),
                                       self.placement.queue(self.placement.owners(name)))
        self.unavailable += 1
        why = b",".join(sorted({v for v, _ in answers if v != b"GRANTED"}))
        return b"UNAVAILABLE %d %d %s\r\n" % (sum(v == b"GRANTED" for v, _ in answers),
                                              need, why)

    async def _grant_all(self, owners, name, owner, token, ttl) -> list[tuple[bytes, int]]:
        line = b"lock grant %s %s %d %d %s\r\n" % (name, owner, token, round(ttl * 1000),
                                                   self.placement.checksum())
        replies = await asyncio.gather(*(self.ask(o, line, self.timeout(ttl))
                                         for o in owners))
        return [_verdict(r) for r in replies]

    def _free_all(self, owners, name, owner, tokens) -> None:
        for token in tokens:
            for o in owners:
                asyncio.ensure_future(self.ask(o, b"lock free %s %s %d\r\n"
                                                % (name, owner, token), 1.0))

    async def ask(self, node: str, line: bytes, timeout: float) -> bytes:
        if node == self.placement.name:
            return self.replica.answer(line.split())
        cluster = self.placement.cluster
        addr = cluster.routes.addresses.get(node)
        if addr is None:
            return b"ERROR no address\r\n"
        try:
            fut = cluster.pool.link(node, *addr).call(line)
            async with asyncio.timeout(timeout):
                return await fut
        except asyncio.CancelledError:
            raise
        except (TimeoutError, PeerError, OSError) as exc:  # one missing vote
            log.debug("lock request to %s: %s", node, exc)
            return b"TIMEOUT\r\n" if isinstance(exc, TimeoutError) else b"ERROR\r\n"


def _verdict(reply: bytes) -> tuple[bytes, int]:
    """(GRANTED|HELD|LOW|QUARANTINE|NOT_OWNER|RING|FULL|TIMEOUT|ERROR, highest known)."""
    parts = reply.split()
    if not parts:
        return b"ERROR", 0
    high = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return parts[0], high
