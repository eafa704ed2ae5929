"""The asyncio client's connections to one node: pipelined, replies matched in request order.

memcached answers the requests of a connection in the order it received them, so one
connection serves any number of concurrent tasks: a request is written at once and its parser
queued; data from the node completes the parsers at the head of the queue. That is fewer
connections and system calls than one connection per request in flight, and requests from one
client to one node stay in order (a noreply write is then seen by the next read). A node gets
`connections` such pipes (default 1); a key always uses the same one, so per key the order
holds whatever their number.

A request that times out leaves its connection's replies unaccounted for, so the connection
is dropped and every request still waiting on it fails (TimeoutError); so do they if the node
closes it (MemcacheUnexpectedCloseError). The next request reconnects.
"""
from __future__ import annotations

import asyncio
import functools
from collections import deque

from pymemcache.exceptions import MemcacheUnexpectedCloseError, MemcacheUnknownError

from pycache_cluster.client.errors import NodeUnreachable
from pycache_cluster.client.router import Endpoint


class Pipe(asyncio.Protocol):
    """One connection: a write per request, a FIFO of (parser, future, timer)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: deque = deque()
        self.failure: BaseException | None = None
        self.closing = False
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def request(self, data: bytes, parser) -> asyncio.Future:
        """Writes `data`; the future completes with `parser` once its reply is parsed."""
        if self.failure is not None:
            raise self.failure
        future = self._loop.create_future()
        timer = self._loop.call_later(self.timeout, self._expired, future)
        self.pending.append((parser, future, timer))
        self.transport.write(data)
        return future

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pending = self.pending
        start = 0
        while pending:
            parser, future, timer = pending[0]
            try:
                end = parser.parse(buf, start)
            except (ValueError, IndexError) as exc:     # unreadable: the stream is lost
                self.fail(MemcacheUnknownError(f"unreadable reply: {exc!r}"))
                return
            if end is None:
                break
            pending.popleft()
            timer.cancel()
            if not future.done():
                future.set_result(parser)
            start = end
        if self.closing and not pending:
            self.fail(MemcacheUnexpectedCloseError())
            return
        if start == len(buf):
            buf.clear()
        elif not pending:
            self.fail(MemcacheUnknownError(f"unexpected data: {bytes(buf[start:start + 32])!r}"))
        elif start:
            del buf[:start]

    def _expired(self, future: asyncio.Future) -> None:
        # A closing pipe waits for its last replies only this long, even for requests their
        # callers gave up on: a node that never answers must not keep it open.
        if not future.done() or self.closing:
            self.fail(TimeoutError(f"no reply within {self.timeout}s"))

    def fail(self, exc: BaseException) -> None:
        """Drops the connection; every request waiting on it raises exc."""
        if self.failure is None:
            self.failure = exc
        if self.transport is not None:
            self.transport.abort()
        while self.pending:
            _, future, timer = self.pending.popleft()
            timer.cancel()
            if not future.done():
                future.set_exception(self.failure)

    def connection_lost(self, exc) -> None:
        self.fail(MemcacheUnexpectedCloseError() if exc is None else exc)


def _consume(future: asyncio.Future) -> None:
    """For a noreply request nobody awaits: its error is not reported (nor warned about)."""
    if not future.cancelled():
        future.exception()


class AsyncNode(Endpoint):
    """A node's pipes, opened on first use."""

    def __init__(self, name: str, host: str, port: int, connect_timeout: float,
                 timeout: float, connections: int = 1):
        super().__init__(name, host, port)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._pipes: list[Pipe | None] = [None] * connections
        self._opening: list[asyncio.Future | None] = [None] * connections
        self.closed = False

    def pipe(self, key: bytes) -> tuple[int, Pipe | None]:
        """(slot, its open pipe or None) for a key."""
        slot = hash(key) % len(self._pipes) if len(self._pipes) > 1 else 0
        pipe = self._pipes[slot]
        return slot, (pipe if pipe is not None and pipe.failure is None else None)

    async def open(self, slot: int) -> Pipe:
        """The slot's pipe, connecting once however many tasks ask at the same time."""
        pipe = self._pipes[slot]
        if pipe is not None and pipe.failure is None:
            return pipe
        if self.closed:     # left the ring after a request picked it: route again
            raise NodeUnreachable(self.name, ConnectionAbortedError("left the ring"))
        opening = self._opening[slot]
        if opening is None:
            opening = self._opening[slot] = asyncio.ensure_future(self._connect(slot))
            opening.add_done_callback(functools.partial(self._opened, slot))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            # close() cancelled the connect every waiter shares; a waiter nobody cancelled
            # learns that the node left, and its request may go elsewhere.
            if opening.cancelled() and not asyncio.current_task().cancelling():
                raise NodeUnreachable(self.name,
                                      ConnectionAbortedError("left the ring")) from None
            raise

    def _opened(self, slot: int, opening: asyncio.Future) -> None:
        """Frees the slot however the connect ended, even when no waiter is left to."""
        if self._opening[slot] is opening:
            self._opening[slot] = None
        if not opening.cancelled():
            opening.exception()         # retrieved: each waiter raised it already

    async def _connect(self, slot: int) -> Pipe:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, pipe = await loop.create_connection(lambda: Pipe(self.timeout), self.host,
                                                       self.port)
        except OSError as exc:                  # refused, unreachable, timed out
            raise NodeUnreachable(f"{self.host}:{self.port}", exc) from exc
        if self.closed:
            pipe.fail(MemcacheUnexpectedCloseError())
            raise NodeUnreachable(self.name, ConnectionAbortedError("left the ring"))
        self._pipes[slot] = pipe
        return pipe

    async def request(self, key: bytes, data: bytes, parser, noreply: bool = False):
        """Sends data on the key's pipe; the parser once the reply is in (noreply: at once,
        unparsed)."""
        slot, pipe = self.pipe(key)
        if pipe is None:
            pipe = await self.open(slot)
        future = pipe.request(data, parser)
        if noreply:
            future.add_done_callback(_consume)
            return parser
        return await future

    def close(self) -> None:
        """Closes each pipe once the requests already on it are answered (a node leaving the
        ring may still answer them)."""
        self.closed = True
        for slot, pipe in enumerate(self._pipes):
            self._pipes[slot] = None
            if pipe is None or pipe.transport is None or pipe.failure is not None:
                continue
            if pipe.pending:
                pipe.closing = True
            else:
                pipe.fail(MemcacheUnexpectedCloseError())
        for opening in self._opening:
            if opening is not None:
                opening.cancel()
