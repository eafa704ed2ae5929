"""The asyncio lock API: the same protocol and rules as client.py/lease.py, for one event loop.

    locks = AsyncLockClient(["127.0.0.1:11211"])
    async with locks.lock("orders", ttl=10, auto_renew=True) as held:
        await storage.write(data, fence=held.token)

With auto_renew, a watchdog task renews every ttl/3; when it cannot renew before the lease
runs out it sets `lost`, calls `on_lost`, and cancels the body of the `async with`, which then
raises LockLost instead of CancelledError: code past its lease stops at its next await.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Self

from pycache_cluster.locks.client import MARGIN, _address
from pycache_cluster.locks.lease import (
    WAIT_MAX,
    LockLost,
    LockNotOwned,
    LockTimeout,
    QuorumUnavailable,
)


class AsyncLockClient:
    """One connection at a time to one of `addresses`; requests take turns on it."""

    def __init__(self, addresses, rho: float = 0.01, io_timeout: float = 5.0):
        self.addresses = [_address(a) for a in addresses]
        random.shuffle(self.addresses)
        self.rho, self.io_timeout = rho, io_timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._mutex = asyncio.Lock()

    def lock(self, name: str | bytes, ttl: float = 10.0, **options) -> AsyncLease:
        return AsyncLease(self, name.encode() if isinstance(name, str) else name, ttl,
                          **options)

    async def call(self, line: bytes) -> list[bytes]:
        async with self._mutex:
            last: OSError | None = None
            for _ in range(len(self.addresses)):
                try:
                    async with asyncio.timeout(self.io_timeout):
                        return await self._exchange(line)
                except (OSError, TimeoutError) as exc:
                    last = exc if isinstance(exc, OSError) else OSError(str(exc) or "timeout")
                    self._close()
                    self.addresses.append(self.addresses.pop(0))
            raise last or OSError("no address")

    async def _exchange(self, line: bytes) -> list[bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self.addresses[0])
        reader, writer = self._streams
        writer.write(line)
        reply = await reader.readuntil(b"\r\n")
        return reply.split()

    async def wait(self, address: bytes, name: bytes, token: int, seconds: float) -> bytes:
        """As LockClient.wait: FREE, WAITED, or b"" when the first owner was not reached."""
        addr = self.addresses[0] if address == b"-" else _address(address.decode())
        writer = None
        try:
            async with asyncio.timeout(seconds + self.io_timeout):
                reader, writer = await asyncio.open_connection(*addr)
                writer.write(b"lock wait %s %d %d\r\n" % (name, token, int(seconds * 1000)))
                return (await reader.readuntil(b"\r\n")).strip()
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            return b""
        finally:
            if writer is not None:
                writer.close()

    def _close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        self._streams = None

    async def close(self) -> None:
        async with self._mutex:
            self._close()


class AsyncLease:
    """As lease.Lease (same options and attributes), with coroutines."""

    def __init__(self, client: AsyncLockClient, name: bytes, ttl: float,
                 timeout: float | None = None, blocking: bool = True,
                 auto_renew: bool = False, max_hold: float | None = None, on_lost=None):
        self.client, self.name, self.ttl = client, name, ttl
        self.timeout, self.blocking = timeout, blocking
        self.auto_renew, self.max_hold, self.on_lost = auto_renew, max_hold, on_lost
        self.owner, self.token, self.valid_until, self.acquired_at = b"", 0, 0.0, 0.0
        self.held = False
        self.lost = asyncio.Event()
        self._watchdog: asyncio.Task | None = None
        self._body: asyncio.Task | None = None
        self._cancelled_body = False

    def _ms(self, ttl: float) -> int:
        return max(1, round(ttl * 1000))

    def _validity(self, t0: float, ttl: float) -> float:
        return t0 + ttl * (1 - self.client.rho) - MARGIN

    async def acquire(self) -> bool:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        backoff = 0.005
        self.owner = os.urandom(8).hex().encode()     # for every attempt, as Lease does
        while True:
            t0 = time.monotonic()
            try:
                reply = await self.client.call(b"lock acquire %s %s %d\r\n"
                                               % (self.name, self.owner, self._ms(self.ttl)))
            except OSError as exc:
                reply = [b"UNAVAILABLE", str(exc).encode()]
            if reply[:1] == [b"LOCKED"]:
                if time.monotonic() < self._validity(t0, self.ttl):
                    self.token, self.acquired_at = int(reply[1]), t0
                    self.valid_until = self._validity(t0, self.ttl)
                    self.held = True
                    self.lost.clear()
                    if self.auto_renew:
                        self._watchdog = asyncio.ensure_future(self._watch())
                    return True
                await self._send_release(int(reply[1]))
            if not self.blocking:
                if reply[:1] == [b"BUSY"]:
                    return False
                raise QuorumUnavailable(b" ".join(reply).decode(errors="replace"))
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise LockTimeout(b" ".join(reply).decode(errors="replace"))
            if reply[:1] == [b"BUSY"] and len(reply) == 3:
                budget = WAIT_MAX if deadline is None else min(WAIT_MAX, deadline - now)
                await self.client.wait(reply[2], self.name, int(reply[1]), budget)
                if time.monotonic() - now >= backoff:
                    backoff = 0.005
                    continue
            pause = backoff * random.uniform(0.5, 1.5)
            await asyncio.sleep(pause if deadline is None else min(pause, deadline - now))
            backoff = min(backoff * 2, 0.1, self.ttl / 4)

    async def extend(self, ttl: float | None = None) -> float:
        if not self.held:
            raise LockNotOwned(f"lock {self.name!r} is not held")
        ttl = self.ttl if ttl is None else ttl
        t0 = time.monotonic()
        reply = await self.client.call(b"lock renew %s %s %d %d\r\n"
                                       % (self.name, self.owner, self.token, self._ms(ttl)))
        if reply[:1] == [b"LOCKED"]:
            self.valid_until = max(self.valid_until, self._validity(t0, ttl))
            return self.valid_until
        if reply[:1] == [b"LOST"]:
            self._lose()
            raise LockLost(f"lock {self.name!r} token {self.token} was taken over")
        raise QuorumUnavailable(b" ".join(reply).decode(errors="replace"))

    async def release(self) -> None:
        was, self.held = self.held, False
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if not was:
            raise LockNotOwned(f"lock {self.name!r} is not held")
        # Shielded: a release cancelled halfway still reaches the node.
        await asyncio.shield(self._send_release(self.token))

    async def _send_release(self, token: int) -> None:
        try:
            await self.client.call(b"lock release %s %s %d\r\n" % (self.name, self.owner, token))
        except OSError:
            pass    # the lease runs out by itself

    def _lose(self) -> None:
        if self.held:
            self.held = False
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost(self)
            if self._body is not None and not self._body.done():
                self._cancelled_body = True
                self._body.cancel()

    async def _watch(self) -> None:
        while self.held:
            await asyncio.sleep(self.ttl / 3)
            now = time.monotonic()
            if now >= self.valid_until:
                return self._lose()
            if self.max_hold is not None and now - self.acquired_at >= self.max_hold:
                await asyncio.sleep(self.valid_until - now)
                return self._lose()
            try:
                await self.extend()
            except LockLost:
                return None
            except (QuorumUnavailable, OSError):
                continue

    async def __aenter__(self) -> Self:
        if not await self.acquire():
            raise LockTimeout(f"lock {self.name!r} is held by another")
        self._body = asyncio.current_task()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self._body = None
        if self._cancelled_body and exc_type is asyncio.CancelledError:
            asyncio.current_task().uncancel()
            raise LockLost(f"lock {self.name!r} token {self.token} was lost while held")
        if self.held:
            await self.release()
        elif self.lost.is_set() and exc_type is None:
            raise LockLost(f"lock {self.name!r} token {self.token} was lost while held")
