"""AsyncClient: the asyncio cluster client, with the threaded Client's API and results.

pymemcache has no asyncio client, so requests are written and parsed by codec.py (with
pymemcache's key checks, serde protocol, result mapping and exceptions) over pipelined
connections (aconn.py, aio_dispatch.py). Routing, retries, ring refresh and transactions are
the threaded client's: router.py, errors.py, ring_watch.py, txn.py. noreply=True writes the
request and returns without waiting (its reply, still sent by the node, is read and dropped,
which keeps the connection's replies in step).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Self

from pymemcache.client.base import normalize_server_spec
from pymemcache.serde import LegacyWrappingSerde

from pycache_cluster.client.aio_dispatch import TaskDispatch
from pycache_cluster.client.awatch import AsyncWatch
from pycache_cluster.client.codec import (
    Codec,
    LineReply,
    LinesReply,
    store_result,
)
from pycache_cluster.client.ring_watch import TaskWatch

log = logging.getLogger(__name__)


class AsyncClient(TaskDispatch):
    """`async with AsyncClient(["host:port", ...]) as c: await c.get(b"k")`. Bootstraps on
    start() (or the first request); close() stops its ring task and connections. One event
    loop: the one running at start()."""

    def __init__(self, servers, *, serde=None, serializer=None, deserializer=None,
                 key_prefix: bytes = b"", allow_unicode_keys: bool = False,
                 encoding: str = "ascii", connect_timeout: float = 1.0, timeout: float = 3.0,
                 refresh_interval: float = 3.0, retry_after: float = 1.0,
                 connections: int = 1, zone: str = ""):
        codec = Codec(serde or LegacyWrappingSerde(serializer, deserializer), key_prefix,
                      allow_unicode_keys, encoding)
        super().__init__(codec, retry_after, zone)
        self.seeds = [normalize_server_spec(s) for s in servers]
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.connections = connections
        self.ring_watch = TaskWatch(self, refresh_interval)
        self._started = False
        self._starting: asyncio.Future | None = None

    # -- start, stop, the ring ------------------------------------------------------------

    async def start(self) -> Self:
        """Bootstraps from the seeds (ClusterUnavailable if none answers) and starts the task
        that keeps the ring current (ring_watch.py)."""
        if not self._started:
            if self._starting is None:
                self._starting = asyncio.ensure_future(self.ring_watch.refresh())
            try:
                await asyncio.shield(self._starting)
            finally:
                if self._starting.done():
                    self._starting = None
            if not self._started:
                self._started = True
                self.ring_watch.start()
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.ring_watch.stop()
        finally:
            self.router.close()

    async def refresh(self) -> bool:
        """Asks a node (then each other, then the seeds) for the ring and routes by it from
        now on. True when the ring or an address changed."""
        return await self.ring_watch.refresh()

    # -- the API (names, arguments and results as the threaded Client's) ---------------------

    async def get(self, key, default=None):
        return (await self._fetch(b"get", [key])).get(key, default)

    async def gets(self, key, default=None, cas_default=None):
        return (await self._fetch(b"gets", [key])).get(key, (default, cas_default))

    async def get_many(self, keys) -> dict:
        keys = list(keys)
        return self._fetched(await self._many(keys, False, self._fetch_builder(b"get"), True),
                             b"get") if keys else {}

    async def gets_many(self, keys) -> dict:
        keys = list(keys)
        return self._fetched(await self._many(keys, False, self._fetch_builder(b"gets"), True),
                             b"gets") if keys else {}

    async def _store(self, name: bytes, key, value, expire: int, noreply: bool | None,
                     flags: int | None, cas=None):
        data = self.codec.store(name, key, value, expire, flags, cas)
        line = await self._line(name, key, True, data, bool(noreply))
        return True if line is None else store_result(line, name)

    async def set(self, key, value, expire: int = 0, noreply: bool | None = None,
                  flags: int | None = None) -> bool:
        return await self._store(b"set", key, value, expire, noreply, flags)

    async def add(self, key, value, expire: int = 0, noreply: bool | None = None,
                  flags: int | None = None) -> bool:
        return await self._store(b"add", key, value, expire, noreply, flags)

    async def replace(self, key, value, expire: int = 0, noreply: bool | None = None,
                      flags: int | None = None) -> bool:
        return await self._store(b"replace", key, value, expire, noreply, flags)

    async def append(self, key, value, expire: int = 0, noreply: bool | None = None,
                     flags: int | None = None) -> bool:
        return await self._store(b"append", key, value, expire, noreply, flags)

    async def prepend(self, key, value, expire: int = 0, noreply: bool | None = None,
                      flags: int | None = None) -> bool:
        return await self._store(b"prepend", key, value, expire, noreply, flags)

    async def cas(self, key, value, cas, expire: int = 0, noreply: bool = False,
                  flags: int | None = None) -> bool | None:
        return await self._store(b"cas", key, value, expire, noreply, flags, cas)

    async def set_many(self, values: dict, expire: int = 0, noreply: bool | None = None,
                       flags: int | None = None) -> list:
        """The keys not stored; PartialFailure if some owners failed. Always waits for the
        replies (noreply is accepted for pymemcache's signature)."""
        if not values:
            return []
        build = self._set_builder(values, expire, flags)
        return self._written(await self._many(list(values), True, build, False), b"set",
                             (b"STORED",))

    async def delete_many(self, keys, noreply: bool | None = None) -> bool:
        """True; PartialFailure if some owners failed. Always waits for the replies."""
        keys = list(keys)
        if keys:
            self._written(await self._many(keys, True, self._delete_builder(), False),
                          b"delete", (b"DELETED", b"NOT_FOUND"))
        return True

    async def delete(self, key, noreply: bool | None = None) -> bool:
        line = await self._line(b"delete", key, True, b"delete %s\r\n" % self.codec.key(key),
                                bool(noreply))
        return line is None or line == b"DELETED"

    async def touch(self, key, expire: int = 0, noreply: bool | None = None) -> bool:
        data = b"touch %s %s\r\n" % (self.codec.key(key), self.codec.integer(expire, "expire"))
        line = await self._line(b"touch", key, True, data, bool(noreply))
        return line is None or line == b"TOUCHED"

    async def incr(self, key, value: int, noreply: bool = False) -> int | None:
        return await self._arith(b"incr", key, value, noreply)

    async def decr(self, key, value: int, noreply: bool = False) -> int | None:
        return await self._arith(b"decr", key, value, noreply)

    async def _arith(self, name: bytes, key, value: int, noreply: bool) -> int | None:
        data = b"%s %s %s\r\n" % (name, self.codec.key(key), self.codec.integer(value, "value"))
        line = await self._line(name, key, True, data, bool(noreply))
        if line is None or line == b"NOT_FOUND":
            return None
        return int(line)

    async def flush_all(self, delay: int = 0, noreply: bool | None = None) -> bool:
        """Empties the whole cluster (the node that receives it flushes every member)."""
        data = b"flush_all %s\r\n" % self.codec.integer(delay, "delay")
        reply = await self._any(data, LineReply, False)
        return self._check(reply.line, b"flush_all") == b"OK"

    async def stats(self, *args) -> dict:
        """{node name: stats dict, typed as pymemcache does} from every node that answers."""
        if not self._started:
            await self.start()
        request = self._stats_request(args)
        nodes = list(self.router.nodes.values())
        replies = await asyncio.gather(*(n.request(b"", request, LinesReply()) for n in nodes),
                                       return_exceptions=True)
        out = {}
        for node, reply in zip(nodes, replies, strict=True):
            if isinstance(reply, BaseException) or reply.error:
                log.debug("stats failed on %s: %r", node.name, reply)
            else:
                out[node.name] = self._stats_of(reply.lines)
        return out

    async def watch(self, key=None, *, prefix=None) -> AsyncWatch:
        """The changes of `key` (or of every key starting with `prefix`) from now on, as
        Change and Gap events (awatch.py, watch_feed.py)."""
        if (key is None) == (prefix is None):
            raise ValueError("watch one key or one prefix")
        if not self._started:
            await self.start()
        watch = AsyncWatch(self, key, prefix)
        try:
            return await watch.started()
        except BaseException:         # cancelled or timed out: its streams must not live on
            await watch.close()
            raise

    async def cluster_members(self) -> dict:
        """{name: MemberInfo} as gossip on some node sees the cluster."""
        reply = await self._any(b"cluster members\r\n", LinesReply, True)
        if reply.error:
            self._check(reply.error, b"cluster members")
        return self._members(b"\r\n".join(reply.lines))
