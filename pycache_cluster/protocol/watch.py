"""memcached's `watch` command over the store's change feed, and the change stream clients resume.

    watch [mutations]    OK, then memcached 1.6's item_store log lines (logger.c), one per
                         storage command this node ran, failures included, with the
                         request's TTL and size as memcached gives them:
                         ts=<s>.<us> gid=<n> type=item_store key=<uri> status=<status>
                         cmd=<cmd> ttl=<left> clsid=0 cfd=0 size=<bytes>
                         (no slab classes here, and the client's fd is not tracked: 0; a
                         replica's write is cmd=na, as memcached prints a cmd it has no
                         name for). memcached's other watchers (fetchers, evictions...)
                         are not here: `watch <them>` answers ERROR, as memcached does for a
                         watcher it does not know. A bare `watch` streams mutations only.
    watch changes [key=<uri>|prefix=<uri>] [after=<boot>:<gid>]
                         OK, then first `ts=.. gid=<n> type=resume boot=<boot>
                         status=ok|gap reason=<why>`, then, in the same log-line format, one
                         `type=change key=<uri> kind=set|delete|expire|evict|flush
                         version=<v> ttl=<left> size=<bytes>` per change of a matching key.

A watcher that falls behind (its socket's buffer past MAX_BEHIND) or a feed that overflowed
gets memcached's `skipped=<n>` line before the next one: lines were lost. `after` resumes a
change stream: the records since that gid are replayed when this process (boot) still holds
them all, else status=gap says which changes cannot be vouched for (reason=restart: another
process; reason=history: older than what is kept).

The feed is attached to the store only while someone watches and for KEEP seconds after the
last one left (so that a client that reconnects can resume), which keeps the request path at
one untaken branch otherwise (csrc/pc_watch.h). gids count the records this process drained.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from urllib.parse import quote, unquote_to_bytes

from pycache_cluster.store._feed import CHANGES, CMDS, STATUSES, Feed

log = logging.getLogger(__name__)

FEED_CAPACITY = 65536       # records between two drains before notes are dropped
DRAIN_INTERVAL = 0.005
HISTORY = 200_000           # records kept for resuming streams
KEEP = 60.0                 # seconds the feed outlives its last watcher
MAX_BEHIND = 4 << 20        # bytes queued on a watcher's socket before lines are skipped
KINDS = {"store": b"set", "delete": b"delete", "expire": b"expire", "evict": b"evict",
         "flush": b"flush"}


def uri(key: bytes) -> bytes:
    return quote(key, safe="").encode()


class Watcher:
    def __init__(self, transport, changes: bool, key: bytes | None, prefix: bytes | None):
        self.transport = transport
        self.changes = changes
        self.key = key
        self.prefix = prefix
        self.skipped = 0

    def wants(self, record) -> bool:
        change, cmd, status, key = record[1], record[2], record[3], record[4]
        if not self.changes:
            return CHANGES[change] == "store" and cmd != CMDS.index("incr") and \
                cmd != CMDS.index("decr")
        if CHANGES[change] == "store" and STATUSES[status] != "stored":
            return False
        if CHANGES[change] == "flush":
            return True
        if self.key is not None:
            return key == self.key
        return self.prefix is None or key.startswith(self.prefix)

    def send(self, lines: list[bytes], lost: int) -> None:
        """Lines for this watcher, after `lost` others it should have had."""
        self.skipped += lost
        if self.transport.get_write_buffer_size() > MAX_BEHIND:
            self.skipped += len(lines)
            return
        if self.skipped:
            lines = [b"skipped=%d\n" % self.skipped, *lines]
            self.skipped = 0
        if lines:
            self.transport.write(b"".join(lines))


class Watches:
    """The node component: the `watch` command, the feed while it is needed, its history."""

    def __init__(self):
        self.boot = os.urandom(8).hex().encode()
        self.watchers: list[Watcher] = []
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.gid = 0
        self.first_gid = 1          # the oldest gid a stream can resume from, inclusive
        self.feed: Feed | None = None
        self.store = None
        self._task: asyncio.Task | None = None
        self._idle_since = 0.0

    async def start(self, node) -> None:
        self.store = node.store
        node.state.extensions.add_command(b"watch", self.command)

    async def stop(self, node) -> None:
        node.state.extensions.remove_command(b"watch")
        if self._task is not None:
            self._task.cancel()
        self._detach()

    def command(self, conn, args: list[bytes]) -> bytes | None:
        opts = dict(a.split(b"=", 1) if b"=" in a else (a, b"") for a in args[2:])
        kind = args[1] if len(args) > 1 else b"mutations"
        if kind not in (b"mutations", b"changes") or (kind == b"mutations" and opts) or \
                set(opts) - {b"key", b"prefix", b"after"}:
            return b"ERROR\r\n"      # memcached's answer to a watcher it does not have
        key = unquote_to_bytes(opts[b"key"]) if b"key" in opts else None
        prefix = unquote_to_bytes(opts[b"prefix"]) if b"prefix" in opts else None
        transport = conn.become_watcher()
        self._attach()
        watcher = Watcher(transport, kind == b"changes", key, prefix)
        if watcher.changes:
            self._drain()
            # OK leaves with this batch's replies, before anything written here later; what
            # is drained meanwhile is in the history, after self.gid.
            asyncio.get_running_loop().call_soon(self._welcome, watcher, opts.get(b"after"),
                                                 self.gid)
        else:
            self.watchers.append(watcher)
        return b"OK\r\n"

    def _welcome(self, watcher: Watcher, after: bytes | None, start: int) -> None:
        """The resume line (its gid: where the stream starts), the records the stream
        missed, then the live ones."""
        status, reason, since = b"ok", b"none", start
        if after is not None:
            boot, _, gid = after.partition(b":")
            if boot != self.boot:
                status, reason = b"gap", b"restart"
            elif not gid.isdigit() or int(gid) + 1 < self.first_gid:
                status, reason = b"gap", b"history"
            else:
                since = min(int(gid), start)
        replay = [r for r in self.history if r[0] > since and watcher.wants(r)]
        head = b"%s type=resume boot=%s status=%s reason=%s\n" % (
            self._stamp(since), self.boot, status, reason)
        watcher.send([head, *(self._line(watcher, r) for r in replay)], 0)
        self.watchers.append(watcher)

    def _attach(self) -> None:
        self._idle_since = 0.0
        if self.feed is None:
            self.feed = Feed(self.store, FEED_CAPACITY)
            # What happened before now was not recorded: no stream resumes from before.
            self.first_gid = self.gid + 1
            self._task = asyncio.get_running_loop().create_task(self._pump())

    def _detach(self) -> None:
        if self.feed is not None:
            self.feed.close()
            self.feed = None
            self.history.clear()

    async def _pump(self) -> None:
        while self.feed is not None:
            await asyncio.sleep(DRAIN_INTERVAL)
            try:
                self._drain()
            except Exception:  # a watcher's bug must not stop the others' stream
                log.exception("watch drain failed")
            self.watchers = [w for w in self.watchers if not w.transport.is_closing()]
            if self.watchers:
                self._idle_since = 0.0
            elif not self._idle_since:
                self._idle_since = time.monotonic()
            elif time.monotonic() - self._idle_since > KEEP:
                self._detach()

    def _drain(self) -> None:
        records, dropped = self.feed.take()
        if not records and not dropped:
            return
        rows = []
        for r in records:
            self.gid += 1
            rows.append((self.gid, *r))
        self.history.extend(rows)
        if len(self.history) == self.history.maxlen:
            self.first_gid = max(self.first_gid, self.history[0][0])
        for w in self.watchers:
            w.send([self._line(w, r) for r in rows if w.wants(r)], 0)
        if dropped:
            # Notes lost after these records (the ring was full): they take gids nobody can
            # resume across, and every watcher hears of them before its next line.
            self.gid += dropped
            self.first_gid = self.gid + 1
            for w in self.watchers:
                w.skipped += dropped

    def _stamp(self, gid: int) -> bytes:
        now = time.time()
        return b"ts=%d.%d gid=%d" % (int(now), int((now % 1) * 1e6), gid)

    def _line(self, watcher: Watcher, r) -> bytes:
        gid, change, cmd, status, key, version, exptime, nbytes = r
        ttl = max(0, exptime - int(time.time())) if exptime else 0
        if not watcher.changes:
            name = CMDS[cmd].encode() if cmd <= CMDS.index("cas") else b"na"
            return b"%s type=item_store key=%s status=%s cmd=%s ttl=%d clsid=0 cfd=0 size=%d\n" \
                % (self._stamp(gid), uri(key), STATUSES[status].encode(), name, ttl, nbytes)
        return b"%s type=change key=%s kind=%s version=%d ttl=%d size=%d\n" % (
            self._stamp(gid), uri(key), KINDS[CHANGES[change]], version, ttl, nbytes)
