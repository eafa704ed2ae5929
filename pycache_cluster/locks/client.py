"""The Python lock API over any node's address (threads; the cluster client can adopt it).

    locks = LockClient(["127.0.0.1:11211", "127.0.0.2:11211"])
    with locks.lock("orders", ttl=10, timeout=30, auto_renew=True) as held:
        resource.write(data, fence=held.token)      # the resource rejects older tokens

The node the client talks to runs the quorum (docs/locks.md); this side keeps the lease's
validity on its own monotonic clock, counted from before the request left, so it ends before
any replica's: valid_until = t0 + ttl * (1 - rho) - margin. Past valid_until the caller no
longer holds the lock whatever it believes; only the fencing token protects a resource from a
holder that was paused past it.
"""
from __future__ import annotations

import os
import random
import socket
import threading
import time

from pycache_cluster.locks.lease import (
    Lease,
    LockError,
    LockLost,
    LockNotOwned,
    LockTimeout,
    QuorumUnavailable,
)

__all__ = [
    "Lease",
    "LockClient",
    "LockError",
    "LockLost",
    "LockNotOwned",
    "LockTimeout",
    "QuorumUnavailable",
]

MARGIN = 0.002


def _address(a) -> tuple[str, int]:
    if isinstance(a, str):
        host, _, port = a.rpartition(":")
        return host, int(port)
    return a[0], int(a[1])


class LockClient:
    """One connection to one of `addresses` at a time (the next one on failure); calls from
    several threads take turns on it."""

    def __init__(self, addresses, rho: float = 0.01, io_timeout: float = 5.0):
        self.addresses = [_address(a) for a in addresses]
        random.shuffle(self.addresses)
        self.rho = rho
        self.io_timeout = io_timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._mutex = threading.Lock()

    def lock(self, name: str | bytes, ttl: float = 10.0, **options) -> Lease:
        """A lease handle; `with` acquires it (options: timeout, blocking, auto_renew,
        max_hold, on_lost; see Lease)."""
        return Lease(self, name.encode() if isinstance(name, str) else name, ttl, **options)

    def owner_id(self) -> bytes:
        return os.urandom(8).hex().encode()

    def validity(self, t0: float, ttl: float) -> float:
        return t0 + ttl * (1 - self.rho) - MARGIN

    def call(self, line: bytes) -> list[bytes]:
        """Sends one lock command; its first reply line, split. Tries every address once;
        OSError when none answers."""
        with self._mutex:
            last: OSError | None = None
            for _ in range(len(self.addresses)):
                try:
                    if self._sock is None:
                        self._connect()
                    self._sock.sendall(line)
                    reply = self._line()
                    if line.startswith(b"lock inspect"):
                        while not reply.endswith(b"END\r\n"):
                            reply += self._line()
                    return reply.split()
                except OSError as exc:
                    last = exc
                    self._close()
                    self.addresses.append(self.addresses.pop(0))
            raise last or OSError("no address")

    def inspect(self, name: str | bytes) -> list[list[bytes]]:
        """Each owner's view: [node, holder, token, left_ms, highest] per owner."""
        key = name.encode() if isinstance(name, str) else name
        words = self.call(b"lock inspect " + key + b"\r\n")
        rows, row = [], []
        for w in words:
            if w in (b"OWNER", b"END"):
                if row:
                    rows.append(row)
                row = []
            else:
                row.append(w)
        return rows

    def wait(self, address: bytes, name: bytes, token: int, seconds: float) -> bytes:
        """Waits in the name's queue on its first owner (`address` from BUSY; "-": the node
        in use) for at most `seconds`, on a connection of its own: FREE, WAITED, or b"" when
        that owner could not be asked (the caller then backs off as without a queue)."""
        addr = self.addresses[0] if address == b"-" else _address(address.decode())
        try:
            with socket.create_connection(addr, timeout=seconds + self.io_timeout) as s:
                s.sendall(b"lock wait %s %d %d\r\n" % (name, token, int(seconds * 1000)))
                reply = b""
                while not reply.endswith(b"\r\n"):
                    data = s.recv(256)
                    if not data:
                        return b""
                    reply += data
                return reply.strip()
        except (OSError, ValueError):
            return b""

    def _connect(self) -> None:
        self._sock = socket.create_connection(self.addresses[0], timeout=self.io_timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            data = self._sock.recv(4096)
            if not data:
                raise ConnectionError("node closed the connection")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line + b"\r\n"

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None

    def close(self) -> None:
        with self._mutex:
            self._close()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))
