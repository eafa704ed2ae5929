"""memcached's binary protocol for tests: request frames (well formed or lying), replies split
back into frames, and what legitimately differs between two servers normalised."""
from __future__ import annotations

import socket
import struct

from helpers.wire import Conn

HEADER = struct.Struct(">BBHBBHIIQ")

# Opcodes (memcached's protocol_binary.h).
GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION = range(0x0c)
GETK, GETKQ, APPEND, PREPEND, STAT = 0x0c, 0x0d, 0x0e, 0x0f, 0x10
SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ, QUITQ, FLUSHQ = range(0x11, 0x19)
APPENDQ, PREPENDQ, VERBOSITY, TOUCH, GAT, GATQ = 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e
SASL_LIST, SASL_AUTH, SASL_STEP = 0x20, 0x21, 0x22
GATK, GATKQ = 0x23, 0x24


def req(opcode: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", *,
        opaque: int = 0, cas: int = 0, magic: int = 0x80, datatype: int = 0, vbucket: int = 0,
        keylen: int | None = None, extlen: int | None = None,
        bodylen: int | None = None) -> bytes:
    """One request frame; keylen/extlen/bodylen override the true lengths (lying frames)."""
    kl = len(key) if keylen is None else keylen
    el = len(extras) if extlen is None else extlen
    bl = len(key) + len(extras) + len(value) if bodylen is None else bodylen
    return HEADER.pack(magic, opcode, kl, el, datatype, vbucket, bl, opaque, cas) + extras + \
        key + value


def store(opcode: int, key: bytes, value: bytes, flags: int = 0, exptime: int = 0,
          **kw) -> bytes:
    return req(opcode, key, struct.pack(">II", flags, exptime), value, **kw)


def arith(opcode: int, key: bytes, delta: int, initial: int = 0, exptime: int = 0,
          **kw) -> bytes:
    return req(opcode, key, struct.pack(">QQI", delta, initial, exptime), **kw)


def touch(opcode: int, key: bytes, exptime: int, **kw) -> bytes:
    return req(opcode, key, struct.pack(">I", exptime), **kw)


class Frame(tuple):
    """(magic, opcode, status, extras, key, value, opaque, cas) of one response."""

    magic = property(lambda s: s[0])
    opcode = property(lambda s: s[1])
    status = property(lambda s: s[2])
    extras = property(lambda s: s[3])
    key = property(lambda s: s[4])
    value = property(lambda s: s[5])
    opaque = property(lambda s: s[6])
    cas = property(lambda s: s[7])


def frames(data: bytes) -> tuple[list[Frame], bytes]:
    """Splits response bytes into frames; returns them and whatever trailing bytes are not a
    whole frame."""
    out = []
    while len(data) >= 24:
        magic, op, kl, el, _dt, status, bl, opaque, cas = HEADER.unpack_from(data)
        if len(data) < 24 + bl:
            break
        body = data[24:24 + bl]
        out.append(Frame((magic, op, status, body[:el], body[el:el + kl], body[el + kl:],
                          opaque, cas)))
        data = data[24 + bl:]
    return out, data


def normalise(data: bytes) -> list:
    """Frames with each distinct CAS replaced by its order of appearance (0 stays 0), so
    that equal CAS values stay equal and two servers' sequences compare."""
    fs, rest = frames(data)
    seen: dict[int, int] = {}
    out = []
    for f in fs:
        cas = f.cas if f.cas == 0 else seen.setdefault(f.cas, len(seen) + 1)
        out.append((f.magic, f.opcode, f.status, f.extras, f.key, f.value, f.opaque, cas))
    if rest:
        out.append(("trailing", rest))
    return out


def call(c: Conn, data: bytes) -> list[Frame]:
    """Sends data then a noop (opaque 0xfeedface) and returns the frames before its reply."""
    c.send(data + req(NOOP, opaque=0xFEEDFACE))
    got = []
    while True:
        fs, _rest = frames(c.buf)
        for i, f in enumerate(fs):
            if f.opcode == NOOP and f.opaque == 0xFEEDFACE:
                consumed = sum(24 + len(x[3]) + len(x[4]) + len(x[5]) for x in fs[:i + 1])
                c.buf = c.buf[consumed:]
                return got + fs[:i]
        if not c._fill():
            raise AssertionError(f"connection ended early: {c.buf!r}")


def exchange(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """One connection: send everything, half-close, and return what came back before the
    server closed, whether it closed cleanly or reset (it closed with bytes unread)."""
    c = Conn(port, host=host)
    got = b""
    try:
        try:
            c.send(data)
            c.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        while True:
            try:
                chunk = c.sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        c.close()
    return got
