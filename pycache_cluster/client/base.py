"""What the threaded and the asyncio client share: keys, the router, error replies, how
multi-key requests are built and their replies read, and the parts of the API without I/O.
"""
from __future__ import annotations

from typing import NamedTuple

from pymemcache.exceptions import MemcacheServerError

from pycache_cluster.client.codec import (
    CRLF,
    Codec,
    FetchReply,
    LineReply,
    SeqReply,
    convert_stats,
    reply_error,
)
from pycache_cluster.client.errors import PartialFailure
from pycache_cluster.client.router import Endpoint, Router
from pycache_cluster.client.topology import Owner, Topology
from pycache_cluster.client.txn import Txn, update_plan


class MemberInfo(NamedTuple):
    """One line of `cluster members`: gossip's view of a node."""
    name: str
    host: str
    port: int          # gossip port
    state: str         # alive, suspect, dead, left
    incarnation: int


class ClientBase:
    def __init__(self, codec: Codec, retry_after: float, zone: str = ""):
        self.codec = codec
        self.router = Router(self._make_node, retry_after, zone=zone)
        self.seeds: list[tuple[str, int]] = []
        self.ring_watch = None      # the subclass's ring_watch.RingWatch
        self._bare_keys = not codec.key_prefix

    def _make_node(self, name: str, host: str, port: int) -> Endpoint:
        raise NotImplementedError

    def _full(self, key) -> bytes:
        """The key as the nodes hash it. A bytes key without a prefix is used as it is (the
        request itself checks it, as pymemcache does)."""
        if self._bare_keys and type(key) is bytes:
            return key
        return self.codec.key(key)

    @property
    def topology(self) -> Topology | None:
        """The ring the client routes by (topology.py)."""
        return self.router.topology

    @property
    def ring_checksum(self) -> str | None:
        topology = self.router.topology
        return topology.checksum if topology is not None else None

    def _hurry(self) -> None:
        """The ring may be changing: ask for it now and often for a while."""
        self.ring_watch.hurry()

    def _server_error(self, error: BaseException) -> None:
        """A SERVER_ERROR about a peer (`peer <name> unreachable`, `... timed out`,
        `connection to peer <name> lost`) or a write short of its quorum (`quorum not met`:
        an owner did not answer): an owner is failing, the ring may be changing."""
        message = error.args[0] if error.args else b""
        if isinstance(message, bytes) and (b"peer" in message or b"quorum" in message):
            self._hurry()

    def _node_failed(self, node: Endpoint) -> None:
        self.router.failed(node)
        self._hurry()

    def _regroup(self, keys: list, tried: tuple) -> dict:
        """The keys of a node that failed, grouped by the next node of each one's ring walk
        (None: no node left)."""
        groups: dict = {}
        for key in keys:
            groups.setdefault(self.router.fallback(self._full(key), tried), []).append(key)
        return groups

    def _check(self, line: bytes, name: bytes) -> bytes:
        """The line, unless it is an error reply: then pymemcache's exception (and a ring
        check soon, for a SERVER_ERROR)."""
        error = reply_error(line, name)
        if error is not None:
            if isinstance(error, MemcacheServerError):
                self._server_error(error)
            raise error
        return line

    # -- multi-key calls: one request per owner, built and read alike by both clients -------
    # A builder maps the keys of one owner to (request bytes, a new parser for its reply); a
    # client's _many(keys, primary, builder, retried) returns [(keys, parser or exception)].

    def _fetch_builder(self, name: bytes):
        codec, cas = self.codec, name == b"gets"

        def build(keys):
            fulls = [codec.key(k) for k in keys]
            originals = dict(zip(fulls, keys, strict=True))
            return (name + b" " + b" ".join(fulls) + CRLF,
                    lambda: FetchReply(codec, originals, cas))
        return build

    def _fetched(self, parts: list, name: bytes) -> dict:
        out = {}
        for _, reply in parts:
            if isinstance(reply, BaseException):
                raise reply
            if reply.error:
                self._check(reply.error, name)
            out.update(reply.values())
        return out

    def _set_builder(self, values: dict, expire: int, flags: int | None):
        codec = self.codec

        def build(keys):
            data = b"".join(codec.store(b"set", k, values[k], expire, flags) for k in keys)
            return data, lambda: SeqReply([LineReply() for _ in keys])
        return build

    def _delete_builder(self):
        codec = self.codec

        def build(keys):
            data = b"".join(b"delete " + codec.key(k) + CRLF for k in keys)
            return data, lambda: SeqReply([LineReply() for _ in keys])
        return build

    def _written(self, parts: list, name: bytes, ok: tuple[bytes, ...]) -> list:
        """The keys a multi-key write did not apply (NOT_STORED...); PartialFailure if an
        owner failed or answered an error."""
        failed, missed = {}, []
        for keys, reply in parts:
            if isinstance(reply, BaseException):
                failed.update(dict.fromkeys(keys, reply))
                continue
            for key, line in zip(keys, reply.parsers, strict=True):
                error = reply_error(line.line, name)
                if error is not None:
                    failed[key] = error
                elif line.line not in ok:
                    missed.append(key)
        if failed:
            for error in failed.values():
                if isinstance(error, MemcacheServerError):
                    self._server_error(error)
            raise PartialFailure(failed, missed)
        return missed

    @staticmethod
    def _stats_of(lines: list[bytes]) -> dict:
        raw = {}
        for line in lines:
            parts = line.split(b" ", 2)
            if parts[0] == b"STAT" and len(parts) > 1:
                raw[parts[1]] = parts[2] if len(parts) > 2 else b""
        return convert_stats(raw)

    @staticmethod
    def _stats_request(args) -> bytes:
        return b" ".join([b"stats", *(a if isinstance(a, bytes) else str(a).encode()
                                      for a in args)]) + CRLF

    @staticmethod
    def _members(reply: bytes) -> dict[str, MemberInfo]:
        from pycache_cluster.gossip.reply import parse_members

        members = parse_members(reply.decode("ascii", "replace").splitlines())
        return {name: MemberInfo(name, host, port, state.name.lower(), inc)
                for name, (host, port, state, inc) in members.items()}

    # -- the API without I/O ----------------------------------------------------------------

    def owners(self, key, n: int | None = None) -> list[Owner]:
        """The key's first n owners (all N the cluster keeps by default) by the client's
        ring, in preference order (no request sent)."""
        topology, _ = self.router.view
        full = self._full(key)
        return [Owner(name, *topology.addresses[name])
                for name in topology.owners(full, n or topology.replicas)]

    def txn(self, key) -> Txn:
        """A transaction on one key: .if_value/.if_version/.if_missing, .then_set/
        .then_delete, .commit() (txn.py)."""
        return Txn(self, key)

    def update(self, key, fn, expire: int = 0, max_attempts: int | None = None):
        """Read-modify-write without lost updates: stores fn(current value or None) if the
        key did not change since it was read, else reads and calls fn again. Returns the value
        stored (the asyncio client: an awaitable of it). fn may run several times."""
        return self._drive(update_plan(key, fn, expire, max_attempts))

    def _drive(self, plan):
        raise NotImplementedError
