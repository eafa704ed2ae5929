"""AsyncWatch: the asyncio client's change stream of one key, or of every key under a prefix.

The threaded Watch (watch.py) with a task per node in place of a thread: the same nodes
(every owner of the key, every node for a prefix, and nodes the ring adds later, never let
go while the watch lasts), the same resume after a reconnect, the same merge and Gap events
(watch_feed.py).
"""
from __future__ import annotations

import asyncio
from typing import Self

from pycache_cluster.client.ring_watch import finish
from pycache_cluster.client.watch_feed import Change, Gap, Merge, Position, request


class AsyncWatch:
    """`async for event in watch` for Change and Gap events; `await watch.next(timeout)`
    waits at most timeout seconds (None: no event by then). close() (or `async with`) stops
    every stream."""

    def __init__(self, client, key: bytes | None, prefix: bytes | None):
        self.client = client
        self.full_key = client._full(key) if key is not None else None
        self.full_prefix = client.codec.key_prefix + prefix if prefix is not None else None
        self.strip = len(client.codec.key_prefix)
        self.events: asyncio.Queue = asyncio.Queue()
        self.merge = Merge()
        self.tasks: dict[str, asyncio.Task] = {}
        self.nodes: dict[str, object] = {}
        self.positions: dict[str, Position] = {}
        #: Set once a node answered its first resume line, or could not be reached.
        self.ready: dict[str, asyncio.Event] = {}
        self._checksum = None
        self._closed = False
        self._follow_ring()

    def _follow_ring(self) -> None:
        topology, nodes = self.client.router.view
        if topology.checksum == self._checksum:
            return
        self._checksum = topology.checksum
        wanted = list(nodes.values()) if self.full_key is None else \
            [nodes[n] for n in topology.owners(self.full_key, topology.replicas)]
        for node in wanted:
            self.nodes[node.name] = node        # a moved node: its next connection goes there
            if node.name not in self.tasks:
                self.positions[node.name] = Position(node.name)
                self.ready[node.name] = asyncio.Event()
                self.tasks[node.name] = asyncio.get_running_loop().create_task(
                    self._stream(node.name))

    async def _stream(self, name: str) -> None:
        position = self.positions[name]
        while not self._closed:
            node = self.nodes[name]
            writer = None
            try:
                async with asyncio.timeout(self.client.connect_timeout):
                    reader, writer = await asyncio.open_connection(node.host, node.port)
                writer.write(request(self.full_key, self.full_prefix, position.after()))
                head = await reader.readline()
                if head != b"OK\r\n":
                    raise ValueError(f"watch refused by {name}: {head!r}")
                while line := await reader.readline():
                    event = position.read(line.rstrip(b"\n"), self.strip)
                    if event is not None:
                        self.events.put_nowait(event)
                    self.ready[name].set()
            except (OSError, ValueError, KeyError, TimeoutError):
                pass        # a lost connection or a garbled line: reconnect and resume
            finally:
                self.ready[name].set()
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.client.router.retry_after)

    async def started(self) -> Self:
        """Waits until each node streams (or could not be reached): changes "from now on"
        mean from here."""
        waits = [asyncio.ensure_future(e.wait()) for e in self.ready.values()]
        _, late = await asyncio.wait(waits, timeout=self.client.connect_timeout + 1.0)
        for waiting in late:
            waiting.cancel()
        return self

    async def next(self, timeout: float | None = None) -> Change | Gap | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._closed:
            self._follow_ring()
            wait = 0.25 if deadline is None else min(0.25, deadline - loop.time())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    event = await self.events.get()
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    return None
                continue
            if self.merge.accept(event):
                return event
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change | Gap:
        while not self._closed:
            event = await self.next()
            if event is not None:
                return event
        raise StopAsyncIteration

    async def close(self) -> None:
        self._closed = True
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            await finish(task)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
