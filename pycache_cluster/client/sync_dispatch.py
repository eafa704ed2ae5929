"""How the threaded client's requests reach the nodes: to the key's node on a pooled
pymemcache connection (pool.py), then, as errors.py allows, to the next nodes of the key's ring
walk; a multi-key call written to every owner before any reply is read; a transaction's
operations (txn.py) to the key's primary.
"""
from __future__ import annotations

from pymemcache.exceptions import MemcacheError, MemcacheServerError, MemcacheUnknownCommandError

from pycache_cluster.client.base import ClientBase
from pycache_cluster.client.codec import meta_status
from pycache_cluster.client.errors import (
    CONNECTION_LOST,
    RETRIED,
    ClusterUnavailable,
    NodeUnreachable,
)
from pycache_cluster.client.pool import NodeConnection, NodePool
from pycache_cluster.client.router import Endpoint


class ThreadDispatch(ClientBase):
    """The request paths of Client (sync.py), which sets up _conn_kwargs and max_idle."""

    _conn_kwargs: dict
    max_idle: int

    def _make_node(self, name: str, host: str, port: int) -> Endpoint:
        return NodePool(name, host, port, self._conn_kwargs, self.max_idle)

    # -- one key --------------------------------------------------------------------------

    def _one(self, method: str, full: bytes, primary: bool, retried: bool, *args, **kwargs):
        """node.<method>(*args) on the key's node, then (errors.py) on the next ones."""
        router = self.router
        node = router.writer(full) if primary else router.reader(full)
        tried = []
        while True:
            try:
                result = node.call(method, *args, **kwargs)
            except NodeUnreachable as exc:
                error = exc
                self._node_failed(node)
            except CONNECTION_LOST as exc:
                error = exc
                self._node_failed(node)
                if not retried:
                    raise
            except MemcacheServerError as exc:
                self._server_error(exc)
                raise
            else:
                if node.down_until:
                    router.answered(node)
                return result
            tried.append(node)
            node = router.fallback(full, tried)
            if node is None:
                raise ClusterUnavailable(f"no node could serve {full!r}: {error}") from error

    def _key_call(self, method: str, key, primary: bool, *args, **kwargs):
        return self._one(method, self._full(key), primary, method in RETRIED, key, *args,
                         **kwargs)

    # -- many keys ------------------------------------------------------------------------

    def _many(self, keys: list, primary: bool, build, retried: bool) -> list:
        groups = self.router.group(keys, [self._full(k) for k in keys], primary)
        return self._scatter(groups, build, retried, ())

    def _scatter(self, groups: dict, build, retried: bool | None, tried: tuple) -> list:
        """[(keys, parser or exception)]: each node's request (build(keys)) is written before
        any reply is read, so the owners work in parallel; a failed node's keys go on to the
        next nodes of their ring walks as errors.py allows (retried None: never, the request
        is for that node)."""
        sent, out, again = [], [], []

        def failed(node, keys, exc, resend: bool | None):
            self._node_failed(node)
            if resend:
                again.append((node, keys))
            else:
                out.append((keys, exc))

        for node, keys in groups.items():
            if node is None:
                out.append((keys, ClusterUnavailable(f"no node left for {keys!r}")))
                continue
            data, new_parser = build(keys)
            try:
                sent.append((node, keys, node.send(data), new_parser()))
            except NodeUnreachable as exc:      # not sent: re-routed whatever the request
                failed(node, keys, exc, retried is not None)
            except CONNECTION_LOST as exc:
                failed(node, keys, exc, retried)
        for node, keys, conn, parser in sent:
            try:
                out.append((keys, node.receive(conn, parser)))
            except CONNECTION_LOST as exc:
                failed(node, keys, exc, retried)
            except MemcacheError as exc:
                out.append((keys, exc))
            else:
                if node.down_until:
                    self.router.answered(node)
        for node, keys in again:
            retry = (*tried, node)
            out += self._scatter(self._regroup(keys, retry), build, retried, retry)
        return out

    # -- nodes and the ring ---------------------------------------------------------------

    def _any(self, method: str, retried: bool, *args):
        """A request about no key, to any node (the cluster answers it as one)."""
        tried = []
        error: BaseException | None = None
        while (node := self.router.any_node(tried)) is not None:
            try:
                result = node.call(method, *args)
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

    def _ask_ring(self, host: str, port: int, node) -> bytes | None:
        """`cluster ring`'s lines from a node (None: it answers ERROR, it is not clustered).
        The `mn` fence ends the reply whatever it is (raw_command reads up to its MN)."""
        try:
            if node is not None:
                return node.call("raw_command", b"cluster ring\r\nmn", b"MN\r\n")
            conn = NodeConnection((host, port), **self._conn_kwargs)
            try:
                return conn.raw_command(b"cluster ring\r\nmn", b"MN\r\n")
            finally:
                conn.close()
        except MemcacheUnknownCommandError:
            return None

    # -- transactions ---------------------------------------------------------------------

    def _drive(self, plan):
        """Runs a txn.py plan: each operation it yields goes to the key's primary."""
        try:
            op = next(plan)
            while True:
                op = plan.send(self._txn_op(op))
        except StopIteration as stop:
            return stop.value

    def _txn_op(self, op: tuple):
        kind, key = op[0], op[1]
        full = self._full(key)
        if kind == "gets":
            value, cas = self._one("gets", full, True, True, key)
            return value, (int(cas) if cas is not None else None)
        request = (self.codec.meta_set(key, *op[2:]) if kind == "set"
                   else self.codec.meta_delete(key, op[2]))
        # raw_command appends the final CRLF itself.
        return meta_status(self._one("raw_command", full, True, False, request[:-2], b"\r\n"))
