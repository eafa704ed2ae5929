"""Gossip message types and their binary encoding (struct, big-endian).

A packet payload is a sequence of frames, each `u16 length | u8 type | body`, so one UDP packet
carries a probe message plus piggybacked membership updates. Strings are `u8 length | utf-8`,
metadata `u16 length | bytes`. Malformed input raises MessageError, never anything else.
A TCP stream carries one unframed message (push-pull has no 64 KiB limit), or, behind a
STREAM_PACKET byte, a packet payload that was too big for UDP.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

PING, INDIRECT_PING, ACK, NACK, ALIVE, SUSPECT, DEAD, PUSH_PULL = range(1, 9)
STREAM_PACKET = 0

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_SEQ_FLAG = struct.Struct(">IB")
_STATE_ENTRY = struct.Struct(">HIB")  # port, incarnation, state
_ALIVE_HEAD = struct.Struct(">IH")  # incarnation, port


class MessageError(ValueError):
    """Bytes that do not decode as gossip messages."""


class Ping(NamedTuple):
    seq: int
    # The name we expect to answer: a different node now living at that address must not ack.
    target: str


class IndirectPing(NamedTuple):
    seq: int
    target: str
    host: str
    port: int
    # Ask the relay to answer NACK when the target stays silent, so the prober can tell a dead
    # target from its own broken network (Lifeguard's local health signal).
    nack: bool


class Ack(NamedTuple):
    seq: int


class Nack(NamedTuple):
    seq: int


class Alive(NamedTuple):
    incarnation: int
    name: str
    host: str
    port: int
    meta: bytes


class Suspect(NamedTuple):
    incarnation: int
    name: str
    sender: str


class Dead(NamedTuple):
    """Declares `name` dead; sender == name means it left gracefully."""

    incarnation: int
    name: str
    sender: str


class PushState(NamedTuple):
    name: str
    host: str
    port: int
    incarnation: int
    state: int
    meta: bytes


class PushPull(NamedTuple):
    join: bool
    states: list[PushState]


Message = Ping | IndirectPing | Ack | Nack | Alive | Suspect | Dead | PushPull


def _str(s: str) -> bytes:
    b = s.encode()
    if len(b) > 255:
        raise MessageError(f"string longer than 255 bytes: {s[:32]!r}...")
    return _U8.pack(len(b)) + b


def _blob(b: bytes) -> bytes:
    if len(b) > 0xFFFF:
        raise MessageError("blob longer than 65535 bytes")
    return _U16.pack(len(b)) + b


def encode(msg: Message) -> bytes:
    """type byte + body of one message."""
    t = type(msg)
    if t is Ping:
        return b"\x01" + _U32.pack(msg.seq) + _str(msg.target)
    if t is Ack:
        return b"\x03" + _U32.pack(msg.seq)
    if t is Alive:
        return (b"\x05" + _ALIVE_HEAD.pack(msg.incarnation, msg.port) + _str(msg.name)
                + _str(msg.host) + _blob(msg.meta))
    if t is Suspect:
        return b"\x06" + _U32.pack(msg.incarnation) + _str(msg.name) + _str(msg.sender)
    if t is Dead:
        return b"\x07" + _U32.pack(msg.incarnation) + _str(msg.name) + _str(msg.sender)
    if t is IndirectPing:
        return (b"\x02" + _SEQ_FLAG.pack(msg.seq, 1 if msg.nack else 0) + _str(msg.target)
                + _str(msg.host) + _U16.pack(msg.port))
    if t is Nack:
        return b"\x04" + _U32.pack(msg.seq)
    if t is PushPull:
        parts = [b"\x08", _U8.pack(1 if msg.join else 0), _U32.pack(len(msg.states))]
        for s in msg.states:
            parts.append(_str(s.name) + _str(s.host)
                         + _STATE_ENTRY.pack(s.port, s.incarnation, s.state) + _blob(s.meta))
        return b"".join(parts)
    raise MessageError(f"not a message: {msg!r}")


class _Reader:
    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int, end: int):
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, st: struct.Struct) -> tuple:
        pos = self.pos
        if pos + st.size > self.end:
            raise MessageError("truncated")
        self.pos = pos + st.size
        return st.unpack_from(self.buf, pos)

    def raw(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > self.end:
            raise MessageError("truncated")
        self.pos = pos + n
        return self.buf[pos:pos + n]

    def str(self) -> str:
        try:
            return self.raw(self.take(_U8)[0]).decode()
        except UnicodeDecodeError:
            raise MessageError("string is not utf-8") from None

    def blob(self) -> bytes:
        return self.raw(self.take(_U16)[0])


def _decode_one(r: _Reader) -> Message:
    (t,) = r.take(_U8)
    if t == PING:
        return Ping(r.take(_U32)[0], r.str())
    if t == ACK:
        return Ack(r.take(_U32)[0])
    if t == ALIVE:
        inc, port = r.take(_ALIVE_HEAD)
        name = r.str()
        return Alive(inc, name, r.str(), port, r.blob())
    if t == SUSPECT:
        return Suspect(r.take(_U32)[0], r.str(), r.str())
    if t == DEAD:
        return Dead(r.take(_U32)[0], r.str(), r.str())
    if t == INDIRECT_PING:
        seq, flag = r.take(_SEQ_FLAG)
        target = r.str()
        host = r.str()
        return IndirectPing(seq, target, host, r.take(_U16)[0], bool(flag))
    if t == NACK:
        return Nack(r.take(_U32)[0])
    if t == PUSH_PULL:
        join = bool(r.take(_U8)[0])
        (count,) = r.take(_U32)
        states = []
        for _ in range(count):
            name = r.str()
            host = r.str()
            port, inc, state = r.take(_STATE_ENTRY)
            if state > 3:
                raise MessageError(f"unknown member state {state}")
            states.append(PushState(name, host, port, inc, state, r.blob()))
        return PushPull(join, states)
    raise MessageError(f"unknown message type {t}")


def frame(encoded: bytes) -> bytes:
    """One encoded message as a frame of a payload."""
    return _U16.pack(len(encoded)) + encoded


def encode_payload(msgs: list[Message]) -> bytes:
    return b"".join(frame(encode(m)) for m in msgs)


def decode_payload(payload: bytes) -> list[Message]:
    msgs = []
    pos, end = 0, len(payload)
    while pos < end:
        if pos + 2 > end:
            raise MessageError("truncated frame header")
        (n,) = _U16.unpack_from(payload, pos)
        pos += 2
        if pos + n > end or n == 0:
            raise MessageError("truncated frame")
        r = _Reader(payload, pos, pos + n)
        msgs.append(_decode_one(r))
        if r.pos != pos + n:
            raise MessageError("trailing bytes in frame")
        pos += n
    return msgs


def encode_stream_packet(payload: bytes) -> bytes:
    return bytes([STREAM_PACKET]) + payload


def decode_stream(body: bytes) -> Message | list[Message]:
    """One message, or the list of messages of a packet sent over TCP."""
    if body[:1] == bytes([STREAM_PACKET]):
        return decode_payload(body[1:])
    r = _Reader(body, 0, len(body))
    msg = _decode_one(r)
    if r.pos != len(body):
        raise MessageError("trailing bytes in stream message")
    return msg
