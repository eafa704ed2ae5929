"""Client: the threaded cluster client. pymemcache's API; each key goes straight to its owner.

Requests run on pymemcache Clients pooled per node (pool.py), so values, flags, serde, key
checks and replies are pymemcache's own. What this adds is HashClient's idea with the
cluster's ring as the hasher: the ring comes from the cluster (`cluster ring`), keys are
routed by router.py, a multi-key call is split per owner and sent to all of them at once
(sync_dispatch.py), and a background thread keeps the ring current (ring_watch.py). Retry
rules: errors.py. Transactions: txn.py.
"""
from __future__ import annotations

import logging
from typing import Self

from pymemcache.client.base import normalize_server_spec
from pymemcache.serde import LegacyWrappingSerde

from pycache_cluster.client.codec import Codec, LinesReply
from pycache_cluster.client.ring_watch import ThreadWatch
from pycache_cluster.client.sync_dispatch import ThreadDispatch
from pycache_cluster.client.watch import Watch

log = logging.getLogger(__name__)


class Client(ThreadDispatch):
    """A cluster client for threads. `servers`: seeds, "host:port" or (host, port); any
    reachable one is enough. Bootstraps in the constructor (ClusterUnavailable if no seed
    answers). Thread-safe; close() (or `with`) stops its ring thread and connections."""

    def __init__(self, servers, *, serde=None, serializer=None, deserializer=None,
                 key_prefix: bytes = b"", allow_unicode_keys: bool = False,
                 encoding: str = "ascii", connect_timeout: float = 1.0, timeout: float = 3.0,
                 no_delay: bool = True, socket_keepalive=None, refresh_interval: float = 3.0, retry_after: float = 1.0, max_idle: int = 16,
                 zone: str = ""):
        codec = Codec(serde or LegacyWrappingSerde(serializer, deserializer), key_prefix,
                      allow_unicode_keys, encoding)
        super().__init__(codec, retry_after, zone)
        self.seeds = [normalize_server_spec(s) for s in servers]
        self._conn_kwargs = {
            "serde": codec.serde, "connect_timeout": connect_timeout, "timeout": timeout,
            "no_delay": no_delay, "socket_keepalive": socket_keepalive,
            "key_prefix": codec.key_prefix, "default_noreply": False,
            "allow_unicode_keys": allow_unicode_keys, "encoding": encoding}
        self.max_idle = max_idle
        self.ring_watch = ThreadWatch(self, refresh_interval)
        self.ring_watch.refresh()
        self.ring_watch.start()

    def refresh(self) -> bool:
        """Asks a node (then each other, then the seeds) for the ring and routes by it from
        now on (ring_watch.py). True when the ring or an address changed."""
        return self.ring_watch.refresh()

    def close(self) -> None:
        try:
            self.ring_watch.stop()
        finally:
            self.router.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the API (names, arguments and results as pymemcache's Client) ----------------------

    def get(self, key, default=None):
        # _key_call inlined: the hot path.
        full = key if self._bare_keys and type(key) is bytes else self.codec.key(key)
        return self._one("get", full, False, True, key, default)

    def gets(self, key, default=None, cas_default=None):
        return self._key_call("gets", key, False, default, cas_default)

    def get_many(self, keys) -> dict:
        keys = list(keys)
        return self._fetched(self._many(keys, False, self._fetch_builder(b"get"), True),
                             b"get") if keys else {}

    def gets_many(self, keys) -> dict:
        keys = list(keys)
        return self._fetched(self._many(keys, False, self._fetch_builder(b"gets"), True),
                             b"gets") if keys else {}

    def set(self, key, value, expire: int = 0, noreply: bool | None = None,
            flags: int | None = None) -> bool:
        return self._key_call("set", key, True, value, expire, noreply, flags)

    def set_many(self, values: dict, expire: int = 0, noreply: bool | None = None,
                 flags: int | None = None) -> list:
        """The keys not stored; PartialFailure if some owners failed. Always waits for the
        replies (noreply is accepted for pymemcache's signature)."""
        if not values:
            return []
        build = self._set_builder(values, expire, flags)
        return self._written(self._many(list(values), True, build, False), b"set",
                             (b"STORED",))

    def delete_many(self, keys, noreply: bool | None = None) -> bool:
        """True; PartialFailure if some owners failed. Always waits for the replies."""
        keys = list(keys)
        if keys:
            self._written(self._many(keys, True, self._delete_builder(), False), b"delete",
                          (b"DELETED", b"NOT_FOUND"))
        return True

    def add(self, key, value, expire: int = 0, noreply: bool | None = None,
            flags: int | None = None) -> bool:
        return self._key_call("add", key, True, value, expire, noreply, flags)

    def replace(self, key, value, expire: int = 0, noreply: bool | None = None,
                flags: int | None = None) -> bool:
        return self._key_call("replace", key, True, value, expire, noreply, flags)

    def append(self, key, value, expire: int = 0, noreply: bool | None = None,
               flags: int | None = None) -> bool:
        return self._key_call("append", key, True, value, expire, noreply, flags)

    def prepend(self, key, value, expire: int = 0, noreply: bool | None = None,
                flags: int | None = None) -> bool:
        return self._key_call("prepend", key, True, value, expire, noreply, flags)

    def cas(self, key, value, cas, expire: int = 0, noreply: bool = False,
            flags: int | None = None) -> bool | None:
        return self._key_call("cas", key, True, value, cas, expire, noreply, flags)

    def incr(self, key, value: int, noreply: bool = False) -> int | None:
        return self._key_call("incr", key, True, value, noreply)

    def decr(self, key, value: int, noreply: bool = False) -> int | None:
        return self._key_call("decr", key, True, value, noreply)

    def touch(self, key, expire: int = 0, noreply: bool | None = None) -> bool:
        return self._key_call("touch", key, True, expire, noreply)

    def delete(self, key, noreply: bool | None = None) -> bool:
        return self._key_call("delete", key, True, noreply)

    def flush_all(self, delay: int = 0, noreply: bool | None = None) -> bool:
        """Empties the whole cluster (the node that receives it flushes every member)."""
        return self._any("flush_all", False, delay, noreply)

    def stats(self, *args) -> dict:
        """{node name: stats dict, typed as pymemcache does} from every node that answers."""
        request = self._stats_request(args)
        groups = {node: [node.name] for node in self.router.nodes.values()}
        out = {}
        for (name,), reply in self._scatter(groups, lambda _: (request, LinesReply), None, ()):
            if isinstance(reply, BaseException) or reply.error:
                log.debug("stats failed on %s: %r", name, reply)
            else:
                out[name] = self._stats_of(reply.lines)
        return out

    def watch(self, key=None, *, prefix=None) -> Watch:
        """The changes of `key` (or of every key starting with `prefix`) from now on, as
        Change(key, version, kind, node) and, where some may have been missed, Gap(node,
        reason) (watch.py, watch_feed.py)."""
        if (key is None) == (prefix is None):
            raise ValueError("watch one key or one prefix")
        return Watch(self, key, prefix)

    def cluster_members(self) -> dict:
        """{name: MemberInfo} as gossip on some node sees the cluster."""
        return self._members(self._any("raw_command", True, b"cluster members\r\nmn",
                                       b"MN\r\n"))
