"""A minimal blocking text-protocol client for the harness: `stats`, bulk loading, round trips.

Bulk loading pipelines `set ... noreply` in large writes over one socket and ends with a
`version` round trip, so 1,000,000 items load in seconds and are all applied when it returns.
"""
from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Self

CHUNK = 1 << 20  # bytes per sendall while loading


class TextClient:
    def __init__(self, address: tuple[str, int], timeout: float = 60.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_until(self, terminator: bytes) -> bytes:
        while True:
            i = self.buf.find(terminator)
            if i >= 0:
                out, self.buf = self.buf[: i + len(terminator)], self.buf[i + len(terminator):]
                return out
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buf += data

    def stats(self, group: str = "") -> dict[str, str]:
        self.sock.sendall(b"stats %s\r\n" % group.encode() if group else b"stats\r\n")
        out: dict[str, str] = {}
        for line in self._read_until(b"END\r\n").split(b"\r\n"):
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[0] == b"STAT":
                out[parts[1].decode()] = parts[2].decode()
        return out

    def version(self) -> str:
        self.sock.sendall(b"version\r\n")
        return self._read_until(b"\r\n").decode().strip()

    def sync(self) -> None:
        """A round trip: every request sent before it has been processed when it returns.
        Anything but VERSION before it (an error to a noreply set) is reported."""
        reply = self.version()
        if not reply.startswith("VERSION"):
            raise RuntimeError(f"unexpected reply while loading: {reply!r}")

    def load(self, requests: Iterable[bytes]) -> None:
        """Send pre-formatted `noreply` requests in ~1 MB writes, then sync."""
        parts: list[bytes] = []
        size = 0
        for req in requests:
            parts.append(req)
            size += len(req)
            if size >= CHUNK:
                self.sock.sendall(b"".join(parts))
                parts, size = [], 0
        if parts:
            self.sock.sendall(b"".join(parts))
        self.sync()


def set_noreply(key: bytes, value: bytes, flags: int = 0, exptime: int = 0) -> bytes:
    return b"set %s %d %d %d noreply\r\n%s\r\n" % (key, flags, exptime, len(value), value)


def stat_int(stats: dict[str, str], name: str, default: int = 0) -> int:
    try:
        return int(stats[name])
    except (KeyError, ValueError):
        return default
