"""What a key watch hears, and how the owners' streams of `watch changes` become one.

Each owner of a watched key streams its own changes (protocol/watch.py): the log lines of
memcached's watchers, one per change, each with the key's version. A write reaches every
owner with the same version (the coordinator assigns it), so the streams are merged by
version: a change is passed on when it is newer, for its key, than anything passed on
before, and an owner that repeats it later is ignored. Within a version a delete or set
comes before the expiry or eviction of what it stored.

A stream remembers where it is (the node's boot id and the gid of its last line) and
resumes from there after a reconnect. What it cannot vouch for is said with a Gap: the node
is another process now (restart), it no longer holds the changes since then (history), or
it skipped lines (the stream fell behind, or the node's feed overflowed). A Gap means that
changes of the watched keys may have been missed: read again what you rely on.
"""
from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote, unquote_to_bytes

RANK = {"set": 0, "delete": 0, "flush": 0, "expire": 1, "evict": 1}


class Change(NamedTuple):
    key: bytes          # as the client's calls name it (b"" for a flush)
    version: int        # the key's version after the change (gets' CAS unique)
    kind: str           # set, delete, expire, evict, flush
    node: str           # the owner it was heard from first


class Gap(NamedTuple):
    node: str
    reason: str         # restart, history, skipped


def request(key: bytes | None, prefix: bytes | None, after: bytes | None) -> bytes:
    parts = [b"watch changes"]
    if key is not None:
        parts.append(b"key=" + quote(key, safe="").encode())
    elif prefix is not None:
        parts.append(b"prefix=" + quote(prefix, safe="").encode())
    if after is not None:
        parts.append(b"after=" + after)
    return b" ".join(parts) + b"\r\n"


def fields(line: bytes) -> dict[bytes, bytes]:
    return dict(f.split(b"=", 1) for f in line.split() if b"=" in f)


class Position:
    """Where one node's stream is: resumed from here after a reconnect."""

    def __init__(self, node: str):
        self.node = node
        self.boot: bytes | None = None
        self.gid = 0

    def after(self) -> bytes | None:
        return None if self.boot is None else b"%s:%d" % (self.boot, self.gid)

    def read(self, line: bytes, strip: int) -> Change | Gap | None:
        """The event a line of the stream carries, if any."""
        f = fields(line)
        if b"skipped" in f:
            return Gap(self.node, "skipped")
        if b"gid" in f:
            self.gid = int(f[b"gid"])
        kind = f.get(b"type")
        if kind == b"resume":
            self.boot = f[b"boot"]
            if f[b"status"] != b"ok":
                return Gap(self.node, f[b"reason"].decode())
            return None
        if kind == b"change":
            return Change(unquote_to_bytes(f[b"key"])[strip:], int(f[b"version"]),
                          f[b"kind"].decode(), self.node)
        return None


class Merge:
    """Passes each change on once, in version order per key."""

    def __init__(self):
        self.seen: dict[bytes, tuple[int, int]] = {}

    def accept(self, event: Change | Gap) -> bool:
        if isinstance(event, Gap):
            return True
        mark = (event.version, RANK.get(event.kind, 0))
        last = self.seen.get(event.key)
        if last is not None and mark <= last:
            return False
        self.seen[event.key] = mark
        return True
