"""Raw byte conversations with a server: what a test sends and the exact bytes back."""
from __future__ import annotations

import re
import socket


class Conn:
    """A blocking client socket. Reads are exact (a byte count or up to a terminator); the
    timeout only keeps a broken server from hanging the suite, it is never asserted on."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data: bytes) -> Conn:
        self.sock.sendall(data)
        return self

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, term: bytes) -> bytes:
        while term not in self.buf:
            if not self._fill():
                out, self.buf = self.buf, b""
                return out
        i = self.buf.index(term) + len(term)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def call(self, data: bytes) -> bytes:
        """Sends `data`, then `mn` as a fence, and returns every byte before the fence's MN.
        Exact and timing-free: meta no-op is answered in order after everything before it."""
        self.send(data + b"mn\r\n")
        out = self.read_until(b"MN\r\n")
        assert out.endswith(b"MN\r\n"), f"connection ended early: {out!r}"
        return out[:-4]

    def expect(self, data: bytes, reply: bytes) -> None:
        got = self.call(data)
        assert got == reply, f"sent {_short(data)}\n  got {_short(got)}\n want {_short(reply)}"

    def half_close(self) -> bytes:
        """Ends our side and returns everything the server sends until it closes."""
        self.sock.shutdown(socket.SHUT_WR)
        return self.read_to_eof()

    def is_closed_by_peer(self) -> bool:
        try:
            return not self._fill()
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _short(b: bytes, limit: int = 400) -> str:
    r = repr(b)
    return r if len(r) <= limit else r[:limit // 2] + f"...<{len(b)} bytes>..." + r[-limit // 2:]


def conversation(port: int, data: bytes) -> bytes:
    """One connection: send everything, half-close, return all bytes until the server closes."""
    with Conn(port) as c:
        c.send(data)
        return c.half_close()


_CAS_VALUE = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+$")
_META_CAS = re.compile(rb" c\d+")
_META_TIME = re.compile(rb" ([tl])\d+")
_ME = re.compile(rb"^(ME \S+) exp=-?\d+ la=\d+ cas=\d+")


def normalise(reply: bytes) -> bytes:
    """Replaces what legitimately differs between two servers: CAS values (and times, which
    may cross a second boundary) in reply lines. Values never start with an uppercase letter
    in the differential tests, so only protocol lines are touched."""
    out = []
    for line in reply.split(b"\r\n"):
        if line.startswith(b"VALUE "):
            line = _CAS_VALUE.sub(rb"\1 <cas>", line)
        elif line[:2] in (b"VA", b"HD", b"EN", b"NF", b"NS", b"EX"):
            line = _META_CAS.sub(b" c<cas>", line)
            line = _META_TIME.sub(rb" \1<t>", line)
        elif line.startswith(b"ME "):
            line = _ME.sub(rb"\1 exp=<t> la=<t> cas=<cas>", line)
        out.append(line)
    return b"\r\n".join(out)
