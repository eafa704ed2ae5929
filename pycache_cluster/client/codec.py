"""The memcached text protocol as the clients write it: requests built, replies parsed.

The threaded client talks through pymemcache's Client and needs only the key check and the
meta commands transactions use (ms/md with a CAS compare, which pymemcache does not speak);
the asyncio client, which pymemcache cannot serve, uses all of it. Keys are checked, values
serialized and replies mapped exactly as pymemcache does (its check_key_helper, serde
protocol, STORE_RESULTS_VALUE and exception classes), so both clients return the same things.
Reply parsers are incremental: `parse(buf, start)` returns the end of the reply once it is
whole (None before), keeping its progress relative to `start` so large values cost one pass.
"""
from __future__ import annotations

from pymemcache.client.base import STAT_TYPES, STORE_RESULTS_VALUE, check_key_helper
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnknownCommandError,
    MemcacheUnknownError,
)
from pymemcache.serde import LegacyWrappingSerde

CRLF = b"\r\n"


def reply_error(line: bytes, name: bytes) -> Exception | None:
    """The exception pymemcache raises for an error line (None for any other line)."""
    if line.startswith(b"ERROR"):
        return MemcacheUnknownCommandError(name)
    if line.startswith(b"CLIENT_ERROR"):
        return MemcacheClientError(line[line.find(b" ") + 1:])
    if line.startswith(b"SERVER_ERROR"):
        return MemcacheServerError(line[line.find(b" ") + 1:])
    return None


def convert_stats(raw: dict[bytes, bytes]) -> dict:
    """pymemcache's typing of `stats` values (int unless it knows better)."""
    out = {}
    for key, value in raw.items():
        try:
            out[key] = STAT_TYPES.get(key, int)(value)
        except (ValueError, TypeError):
            out[key] = value
    return out


class Codec:
    """Keys, values and requests for one client's settings (serde, prefix, encoding)."""

    def __init__(self, serde=None, key_prefix: bytes = b"", allow_unicode_keys: bool = False,
                 encoding: str = "ascii"):
        self.serde = serde or LegacyWrappingSerde(None, None)
        if isinstance(key_prefix, str):
            key_prefix = key_prefix.encode("ascii")
        self.key_prefix = key_prefix
        self.allow_unicode_keys = allow_unicode_keys
        self.encoding = encoding

    def key(self, key) -> bytes:
        """The key as sent and hashed: checked and prefixed as pymemcache does."""
        return check_key_helper(key, self.allow_unicode_keys, self.key_prefix)

    def value(self, key: bytes, value, flags: int | None) -> tuple[bytes, int]:
        data, data_flags = self.serde.serialize(key, value)
        if flags is not None:
            data_flags = flags
        if not isinstance(data, bytes):
            try:
                data = str(data).encode(self.encoding)
            except UnicodeEncodeError as exc:
                raise MemcacheIllegalInputError(f"Data values must be binary-safe: {exc}")
        return data, data_flags

    @staticmethod
    def integer(value, name: str) -> bytes:
        if not isinstance(value, int):
            raise MemcacheIllegalInputError(f"{name} must be integer, got bad value: {value!r}")
        return b"%d" % value

    @staticmethod
    def cas_token(cas) -> bytes:
        if isinstance(cas, int):
            cas = b"%d" % cas
        elif isinstance(cas, str):
            cas = cas.encode("ascii", "replace")
        if not isinstance(cas, bytes) or not cas.isdigit():
            raise MemcacheIllegalInputError(f"cas must only contain values in 0-9: {cas!r}")
        return cas

    def store(self, cmd: bytes, key, value, expire: int, flags: int | None,
              cas=None) -> bytes:
        """`<cmd> <key> <flags> <exptime> <bytes> [cas]` and the data block."""
        k = self.key(key)
        data, data_flags = self.value(k, value, flags)
        head = b"%s %s %d %s %d" % (cmd, k, data_flags, self.integer(expire, "expire"),
                                    len(data))
        if cas is not None:
            head += b" " + self.cas_token(cas)
        return head + CRLF + data + CRLF

    def meta_set(self, key, value, expire: int, cas: int | None, add: bool) -> bytes:
        """A set that returns the new CAS (`c`), only if the item's CAS is still `cas`, or
        (add) only if there is no item: `ms <key> <len> c T F [C<cas>] M<S|E>`."""
        k = self.key(key)
        data, flags = self.value(k, value, None)
        head = b"ms %s %d c T%s F%d" % (k, len(data), self.integer(expire, "expire"), flags)
        if cas is not None:
            head += b" C" + self.cas_token(cas)
        return head + (b" ME" if add else b" MS") + CRLF + data + CRLF

    def meta_delete(self, key, cas: int | None) -> bytes:
        """`md <key> [C<cas>]`: delete, only if the item's CAS is still `cas`."""
        if cas is None:
            return b"md %s" % self.key(key) + CRLF
        return b"md %s C%s" % (self.key(key), self.cas_token(cas)) + CRLF


def meta_status(line: bytes) -> tuple[str, int | None]:
    """(status, cas) of an ms/md reply line: ("HD", 12) stored, ("NS"|"EX"|"NF", None) not."""
    err = reply_error(line, b"meta")
    if err is not None:
        raise err
    parts = line.split()
    if not parts or parts[0] not in (b"HD", b"NS", b"EX", b"NF"):
        raise MemcacheUnknownError(line[:32])
    cas = None
    if parts[0] == b"HD":
        for token in parts[1:]:
            if token.startswith(b"c"):
                cas = int(token[1:])
    return parts[0].decode(), cas


class LineReply:
    """A one-line reply (storage, delete, touch, incr/decr, flush_all, ms/md)."""

    __slots__ = ("line",)

    def __init__(self):
        self.line = b""

    def parse(self, buf: bytearray, start: int) -> int | None:
        end = buf.find(CRLF, start)
        if end < 0:
            return None
        self.line = bytes(buf[start:end])
        return end + 2


class LinesReply:
    """Lines up to END, or one error line (stats, cluster ring, cluster members)."""

    __slots__ = ("_off", "error", "lines")

    def __init__(self):
        self.lines: list[bytes] = []
        self.error = b""
        self._off = 0

    def parse(self, buf: bytearray, start: int) -> int | None:
        pos = start + self._off
        while True:
            end = buf.find(CRLF, pos)
            if end < 0:
                self._off = pos - start
                return None
            line = bytes(buf[pos:end])
            pos = end + 2
            if line == b"END":
                return pos
            if reply_error(line, b"") is not None:
                self.error = line
                return pos
            self.lines.append(line)


class SeqReply:
    """Several replies in a row (a pipelined batch of requests)."""

    __slots__ = ("_i", "_off", "parsers")

    def __init__(self, parsers: list):
        self.parsers = parsers
        self._i = 0
        self._off = 0

    def parse(self, buf: bytearray, start: int) -> int | None:
        pos = start + self._off
        while self._i < len(self.parsers):
            end = self.parsers[self._i].parse(buf, pos)
            if end is None:
                self._off = pos - start
                return None
            pos = end
            self._i += 1
        return pos


class FetchReply:
    """VALUE blocks up to END (get, gets). The values are deserialized by values(), in the
    caller: a serde that raises does so there, as with pymemcache, not in the protocol."""

    __slots__ = ("_off", "cas", "codec", "error", "keys", "raw")

    def __init__(self, codec: Codec, keys: dict[bytes, object], cas: bool):
        self.codec = codec
        self.keys = keys            # key as sent -> key as the caller gave it
        self.cas = cas
        self.raw: list[tuple[bytes, int, bytes, bytes | None]] = []
        self.error = b""
        self._off = 0

    def parse(self, buf: bytearray, start: int) -> int | None:
        pos = start + self._off
        while True:
            end = buf.find(CRLF, pos)
            if end < 0:
                break
            if buf.startswith(b"END\r\n", pos):
                return end + 2
            if not buf.startswith(b"VALUE ", pos):
                self.error = bytes(buf[pos:end])
                return end + 2
            head = bytes(buf[pos + 6:end]).split()
            size = int(head[2])
            if len(buf) < end + 4 + size:
                break
            self.raw.append((head[0], int(head[1]), bytes(buf[end + 2:end + 2 + size]),
                             head[3] if self.cas else None))
            pos = end + 4 + size
        self._off = pos - start
        return None

    def values(self) -> dict:
        """{key as the caller gave it: value, or (value, cas) for gets}."""
        deserialize = self.codec.serde.deserialize
        out = {}
        for key, flags, data, cas in self.raw:
            original = self.keys.get(key, key)
            value = deserialize(original, data, flags)
            out[original] = (value, cas) if self.cas else value
        return out


def store_result(line: bytes, name: bytes):
    """True/False/None for a storage reply, as pymemcache maps them."""
    err = reply_error(line, name)
    if err is not None:
        raise err
    try:
        return STORE_RESULTS_VALUE[line]
    except KeyError:
        raise MemcacheUnknownError(line[:32]) from None
