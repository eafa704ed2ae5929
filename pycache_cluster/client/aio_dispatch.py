"""How the asyncio client's requests reach the nodes: written on the key's node's pipelined
connection (aconn.py), then, as errors.py allows, to the next nodes of the key's ring walk; a
multi-key call sent to every owner at once; a transaction's operations (txn.py) to the key's
primary. Requests are written and replies parsed by codec.py.
"""
from __future__ import annotations

import asyncio

from pycache_cluster.client.aconn import AsyncNode
from pycache_cluster.client.base import ClientBase
from pycache_cluster.client.codec import (
    FetchReply,
    LineReply,
    LinesReply,
    meta_status,
    reply_error,
)
from pycache_cluster.client.errors import (
    CONNECTION_LOST,
    RETRIED,
    ClusterUnavailable,
    NodeUnreachable,
)


class TaskDispatch(ClientBase):
    """The request paths of AsyncClient (aio.py), which sets up the attributes below and
    start()."""

    connect_timeout: float
    timeout: float
    connections: int
    _started: bool

    def _make_node(self, name: str, host: str, port: int) -> AsyncNode:
        return AsyncNode(name, host, port, self.connect_timeout, self.timeout, self.connections)

    async def start(self):
        raise NotImplementedError

    async def _ask_ring(self, host: str, port: int, node) -> bytes | None:
        """`cluster ring`'s lines from a node (None: it answers ERROR, it is not clustered)."""
        temporary = node is None
        if temporary:
            node = self._make_node(f"{host}:{port}", host, port)
        try:
            reply = await node.request(b"", b"cluster ring\r\n", LinesReply())
        finally:
            if temporary:
                node.close()
        if reply.error.startswith(b"ERROR"):
            return None
        if reply.error:
            raise reply_error(reply.error, b"cluster ring")
        return b"\r\n".join(reply.lines)

    # -- requests -------------------------------------------------------------------------

    async def _one(self, full: bytes, primary: bool, retried: bool, data: bytes, new_parser,
                   noreply: bool = False):
        """The reply to `data` (parsed by a new_parser()) from the key's node, then
        (errors.py) from the next ones."""
        if not self._started:
            await self.start()
        router = self.router
        node = router.writer(full) if primary else router.reader(full)
        tried = []
        while True:
            try:
                result = await node.request(full, data, new_parser(), noreply)
            except NodeUnreachable as exc:
                error = exc
                self._node_failed(node)
            except CONNECTION_LOST as exc:
                error = exc
                self._node_failed(node)
                if not retried:
                    raise
            else:
                if node.down_until:
                    router.answered(node)
                return result
            tried.append(node)
            node = router.fallback(full, tried)
            if node is None:
                raise ClusterUnavailable(f"no node could serve {full!r}: {error}") from error

    async def _line(self, name: bytes, key, primary: bool, data: bytes,
                    noreply: bool = False) -> bytes | None:
        full = self._full(key)
        reply = await self._one(full, primary, name.decode() in RETRIED, data, LineReply,
                                noreply)
        return None if noreply else self._check(reply.line, name)

    async def _fetch(self, name: bytes, keys: list, primary: bool = False) -> dict:
        fulls = [self.codec.key(k) for k in keys]
        data = name + b" " + b" ".join(fulls) + b"\r\n"
        originals = dict(zip(fulls, keys, strict=True))
        reply = await self._one(fulls[0], primary, True, data,
                                lambda: FetchReply(self.codec, originals, name == b"gets"))
        if reply.error:
            self._check(reply.error, name)
        return reply.values()

    async def _many(self, keys: list, primary: bool, build, retried: bool) -> list:
        """[(keys, parser or exception)] of build(keys) -> (request, new parser) sent to each
        owner, all at once."""
        if not self._started:
            await self.start()
        groups = self.router.group(keys, [self._full(k) for k in keys], primary)
        parts = await asyncio.gather(*(self._group(node, part, build, retried, ())
                                       for node, part in groups.items()))
        return [item for part in parts for item in part]

    async def _group(self, node, keys: list, build, retried: bool, tried: tuple) -> list:
        data, new_parser = build(keys)
        try:
            return [(keys, await node.request(self._full(keys[0]), data, new_parser()))]
        except NodeUnreachable as exc:
            error = exc
            self._node_failed(node)
        except CONNECTION_LOST as exc:
            self._node_failed(node)
            if not retried:
                return [(keys, exc)]
            error = exc
        tried = (*tried, node)
        out = []
        for fallback, part in self._regroup(keys, tried).items():
            if fallback is None:
                out.append((part, ClusterUnavailable(f"no node could serve {part!r}: {error}")))
            else:
                out += await self._group(fallback, part, build, retried, tried)
        return out

    async def _any(self, data: bytes, new_parser, retried: bool):
        if not self._started:
            await self.start()
        tried, error = [], None
        while (node := self.router.any_node(tried)) is not None:
            try:
                result = await node.request(b"", data, new_parser())
            except CONNECTION_LOST as exc:
                self._node_failed(node)
                if not retried and not isinstance(exc, NodeUnreachable):
                    raise
                error = exc
                tried.append(node)
                continue
            if node.down_until:
                self.router.answered(node)
            return result
        raise ClusterUnavailable(f"no node answered: {error}") from error

    # -- transactions ---------------------------------------------------------------------

    async def _drive(self, plan):
        """Runs a txn.py plan: each operation it yields goes to the key's primary."""
        try:
            op = next(plan)
            while True:
                op = plan.send(await self._txn_op(op))
        except StopIteration as stop:
            return stop.value

    async def _txn_op(self, op: tuple):
        kind, key = op[0], op[1]
        if kind == "gets":
            values = await self._fetch(b"gets", [key], primary=True)
            if key not in values:
                return None, None
            value, cas = values[key]
            return value, int(cas)
        request = (self.codec.meta_set(key, *op[2:]) if kind == "set"
                   else self.codec.meta_delete(key, op[2]))
        reply = await self._one(self._full(key), True, False, request, LineReply)
        return meta_status(reply.line)
