"""The threaded client's connections to one node: a pool of pymemcache Clients.

Each pooled object is a pymemcache.client.base.Client (its protocol code, serde, key checks,
timeouts and error handling are used as they are); the only change is that a failure to
connect raises NodeUnreachable, which tells the router that the request never left and may go
to another node whatever the operation.

Why not pymemcache.pool.ObjectPool (PooledClient): it takes a lock and scans its list of
objects in use on every request, which costs a get more client CPU than a bare Client does
(bench/client_bench.py, "PooledClient, owned"). Here a connection is taken with deque.pop() and given back
with deque.append(), each atomic under the GIL, so threads share the pool without a lock; a
thread that finds it empty opens a new connection, and at most `max_idle` are kept.
"""
from __future__ import annotations

import socket
import time
from collections import deque

from pymemcache.client.base import Client as PymemcacheClient
from pymemcache.exceptions import MemcacheUnexpectedCloseError, MemcacheUnknownError

from pycache_cluster.client.errors import NodeUnreachable
from pycache_cluster.client.router import Endpoint

RECV_SIZE = 65536
# A connection idle this long is checked before use: a node that restarted meanwhile closed
# it, and a write sent on it would fail with no way to tell whether it was applied. A restart
# takes longer than this (a new process starts), so a connection it closed is always
# checked; 0.5 s was not enough: the ring watch's last use of a connection can come late in
# the old process's leave, a fraction of a second before the new process serves.
STALE_AFTER = 0.1


class NodeConnection(PymemcacheClient):
    """pymemcache's single-server client, telling connect failures apart."""

    idle_since = 0.0

    def _connect(self) -> None:
        try:
            super()._connect()
        except OSError as exc:
            raise NodeUnreachable("{}:{}".format(*self.server), exc) from exc


class NodePool(Endpoint):
    """Connections to one node, shared by threads."""

    def __init__(self, name: str, host: str, port: int, client_kwargs: dict,
                 max_idle: int = 16):
        super().__init__(name, host, port)
        self._kwargs = client_kwargs
        self._free: deque[NodeConnection] = deque()
        self.max_idle = max_idle
        self.closed = False

    def connection(self) -> NodeConnection:
        try:
            conn = self._free.pop()
        except IndexError:
            return NodeConnection((self.host, self.port), **self._kwargs)
        if time.monotonic() - conn.idle_since > STALE_AFTER:
            drop_if_closed(conn)
        return conn

    def release(self, conn: NodeConnection) -> None:
        if self.closed or len(self._free) >= self.max_idle:
            conn.close()
        else:
            conn.idle_since = time.monotonic()
            self._free.append(conn)

    def call(self, method: str, *args, **kwargs):
        """conn.<method>(*args) on a pooled connection. After any error the socket is closed
        (pymemcache does so for its own errors; an interrupt could leave a reply half read),
        and the connection reopens on its next use."""
        conn = self.connection()
        try:
            result = getattr(conn, method)(*args, **kwargs)
        except BaseException:
            conn.close()
            self.release(conn)
            raise
        self.release(conn)
        return result

    def send(self, data: bytes) -> NodeConnection:
        """Writes `data` on a pooled connection, for receive() to read the reply. A multi-key
        call writes to every owner before it reads any reply: the owners work in parallel
        without a thread each. (pymemcache cannot split a request from its reply, so this
        uses its connection, _connect() and socket, and codec.py's parsers.)"""
        conn = self.connection()
        try:
            if conn.sock is None:
                conn._connect()
            conn.sock.sendall(data)
        except BaseException:
            conn.close()
            self.release(conn)
            raise
        return conn

    def receive(self, conn: NodeConnection, parser):
        """The parser, once it has read the whole reply to what send() wrote on conn."""
        buf = bytearray()
        try:
            while (end := parser.parse(buf, 0)) is None:
                chunk = conn.sock.recv(RECV_SIZE)
                if not chunk:
                    raise MemcacheUnexpectedCloseError()
                buf += chunk
            if end != len(buf):
                raise MemcacheUnknownError(f"unexpected data: {bytes(buf[end:end + 32])!r}")
        except (ValueError, IndexError) as exc:
            conn.close()
            self.release(conn)
            raise MemcacheUnknownError(f"unreadable reply: {exc!r}") from exc
        except BaseException:
            conn.close()
            self.release(conn)
            raise
        self.release(conn)
        return parser

    def close(self) -> None:
        self.closed = True
        while self._free:
            try:
                self._free.pop().close()
            except IndexError:
                break


def drop_if_closed(conn: NodeConnection) -> None:
    """Closes conn's socket (it reopens on use) if the node hung up or sent unasked bytes."""
    sock = conn.sock
    if sock is None:
        return
    # The peek must not wait: on a socket with a timeout Python polls for readability
    # before recv, whatever MSG_DONTWAIT says, so a live idle connection cost the whole
    # timeout and was then closed as timed out.
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        sock.recv(1, socket.MSG_PEEK)       # b"" (hung up) or bytes
    except (BlockingIOError, InterruptedError):
        return      # nothing to read: still open
    except OSError:
        pass
    finally:
        sock.settimeout(timeout)
    conn.close()
