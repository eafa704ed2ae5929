"""memcached's `watch` command over the store's change feed and the connections' events, and
the change stream clients resume.

    watch [<stream> ...]  OK, then memcached 1.6.18's log lines for the streams named, any
                          number of them on one line (a bare `watch` is fetchers, as there):
        fetchers    one per key a client's command looked up (memcached's item_get: gets,
                    touches, deletes, incr/decr, and the lookup every storage command makes):
                    ts=<s>.<us> gid=<n> type=item_get key=<uri> status=not_found|found|
                    flushed|expired clsid=0 cfd=0 size=<bytes>
        mutations   one per storage command, failures included, with the request's TTL
                    and size as memcached gives them: ts=.. gid=.. type=item_store key=<uri>
                    status=<status> cmd=<cmd> ttl=<left> clsid=0 cfd=0 size=<bytes>
                    (a replica's write is cmd=na, as memcached prints a cmd it has no name for)
        evictions   one per live item evicted to make room: ts=.. gid=.. type=eviction
                    key=<uri> fetch=yes|no ttl=<left, -1: none> la=<seconds since last
                    access> clsid=0 size=<bytes>
        connevents  ts=.. gid=.. type=conn_new rip=<ip> rport=<port> transport=tcp cfd=<fd>
                    ts=.. gid=.. type=conn_close rip=.. rport=.. transport=tcp
                    reason=normal|error|shutdown cfd=<fd>
        rawcmds, sysevents, proxyreqs, proxyevents, proxyuser: accepted, as memcached 1.6.18
                    accepts them, and silent (no raw command log, crawler or slab events
                    here, no proxy).
                          There are no slab classes here and the store does not know which
                          connection asked: clsid=0 and cfd=0 in the store's lines. Any other
                          word (`deletions` came after 1.6.18) answers ERROR; a trailing
                          `noreply` makes it no command at all, as memcached's noreply hides
                          its ERROR; past WATCHER_LIMIT watchers, memcached's WATCHER_TOO_MANY.
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
one untaken branch otherwise (csrc/pc_watch.h); fetches are noted only while someone watches
fetchers, and connections call back only while someone watches connevents.

gids are memcached's: one per line some log watcher wanted, in the order things happened, so
a watcher of fetchers alone sees them rise by one while mutations go unlogged. Change
streams number the changes on their own (the gids their lines and `after` carry), every
change this process drained, whoever watches.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from urllib.parse import quote, unquote_to_bytes

from pycache_cluster.store._feed import CHANGES, CMDS, FOUND, STATUSES, Feed

log = logging.getLogger(__name__)

FEED_CAPACITY = 65536       # records between two drains before notes are dropped
DRAIN_INTERVAL = 0.005
HISTORY = 200_000           # records kept for resuming streams
KEEP = 60.0                 # seconds the feed outlives its last watcher
MAX_BEHIND = 4 << 20        # bytes queued on a watcher's socket before lines are skipped
WATCHER_LIMIT = 20          # memcached's: log watchers at once (change streams aside)
KINDS = {"store": b"set", "delete": b"delete", "expire": b"expire", "evict": b"evict",
         "flush": b"flush"}

# memcached's log streams (logger.h's LOG_* flags), as `watch` names them.
FETCHERS, MUTATIONS, EVICTIONS, CONNEVENTS = 1, 2, 4, 8
STREAMS = {b"fetchers": FETCHERS, b"mutations": MUTATIONS, b"evictions": EVICTIONS,
           b"connevents": CONNEVENTS, b"rawcmds": 0, b"sysevents": 0, b"proxyreqs": 0,
           b"proxyevents": 0, b"proxyuser": 0}

STORE, EVICT, FETCH = CHANGES.index("store"), CHANGES.index("evict"), CHANGES.index("fetch")
INCR, DECR, LAST_NAMED = CMDS.index("incr"), CMDS.index("decr"), CMDS.index("cas")


def uri(key: bytes) -> bytes:
    return quote(key, safe="").encode()


def stamp(gid: int) -> bytes:
    now = time.time()
    return b"ts=%d.%d gid=%d" % (int(now), int((now % 1) * 1e6), gid)


def endpoint(peername) -> tuple[bytes, int, bytes]:
    """rip, rport and transport as memcached names a client's address."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        return peername[0].encode(), peername[1], b"tcp"
    return b"unix", 0, b"local"


class WatcherProtocol(asyncio.Protocol):
    """A watching connection's protocol from `watch` on: what its client sends is read and
    dropped (memcached's logger reads a watcher only to notice that it hung up), and its
    close is the connection's, so that it is counted and logged as any other's."""

    def __init__(self, conn):
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False                # a watcher that hung up is closed

    def connection_lost(self, exc) -> None:
        self.conn.connection_lost(exc)


class Watcher:
    """One watching connection: memcached's streams (a mask of the flags above) or, with
    `changes`, our change stream of the keys it asked for."""

    def __init__(self, transport, streams: int = 0, changes: bool = False,
                 key: bytes | None = None, prefix: bytes | None = None):
        self.transport = transport
        self.streams = streams
        self.changes = changes
        self.key = key
        self.prefix = prefix
        self.skipped = 0

    def wants(self, record) -> bool:
        change, cmd, status, key = record[1], record[2], record[3], record[4]
        if not self.changes:
            if change == FETCH:
                return bool(self.streams & FETCHERS)
            if change == EVICT:
                return bool(self.streams & EVICTIONS)
            # incr and decr rewrite in place: memcached logs no item_store for them.
            return change == STORE and cmd != INCR and cmd != DECR and \
                bool(self.streams & MUTATIONS)
        if change == FETCH or (CHANGES[change] == "store" and STATUSES[status] != "stored"):
            return False
        if CHANGES[change] == "flush":
            return True
        if self.key is not None:
            return key == self.key
        return self.prefix is None or key.startswith(self.prefix)

    def send(self, lines: list[bytes]) -> tuple[int, int]:
        """Lines for this watcher: how many of them were (sent, skipped). The bound holds
        within a batch too: what does not fit below MAX_BEHIND is skipped, however few
        batches a busy loop hands over (one batch of any size once let a watcher that reads
        nothing take it all)."""
        if self.transport.is_closing():
            return 0, 0             # gone: the pump forgets it
        room = MAX_BEHIND - self.transport.get_write_buffer_size()
        fit = 0
        while fit < len(lines) and room > 0:
            room -= len(lines[fit])
            fit += 1
        if fit:
            out = lines[:fit]
            if self.skipped:        # the count of those lost comes before the next line
                out.insert(0, b"skipped=%d\n" % self.skipped)
                self.skipped = 0
            self.transport.write(b"".join(out))
        self.skipped += len(lines) - fit
        return fit, len(lines) - fit


class Watches:
    """The node component: the `watch` command, the feed while it is needed, its history."""

    def __init__(self):
        self.boot = os.urandom(8).hex().encode()
        self.watchers: list[Watcher] = []
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.gid = 0                # memcached's: lines logged for log watchers
        self.seq = 0                # the change streams' gids: every change drained
        self.first_gid = 1          # the oldest seq a change stream resumes from, inclusive
        # memcached's logger counters (stats: log_worker_*, log_watcher_*)
        self.written = self.dropped = self.sent = self.skipped = 0
        self.feed: Feed | None = None
        self.store = None
        self.state = None
        self.events = None          # the node's ConnEvents (conn_events.py)
        self._task: asyncio.Task | None = None
        self._idle_since = 0.0

    async def start(self, node) -> None:
        self.store = node.store
        self.state = node.state
        self.events = node.conn_events
        node.state.extensions.add_command(b"watch", self.command)
        node.state.log_counters = self.counters

    def counters(self) -> dict[str, int]:
        return {"log_worker_dropped": self.dropped, "log_worker_written": self.written,
                "log_watcher_skipped": self.skipped, "log_watcher_sent": self.sent,
                "log_watchers": sum(not w.changes for w in self.watchers)}

    async def stop(self, node) -> None:
        node.state.extensions.remove_command(b"watch")
        node.state.log_counters = None
        self.events.want("watch", None)
        if self._task is not None:
            self._task.cancel()
        self._detach()

    def command(self, conn, args: list[bytes]) -> bytes | None:
        if args[-1] == b"noreply":
            # memcached takes `noreply` for a stream it does not know, and the noreply
            # silences that ERROR: nothing at all happens.
            return None
        if len(args) > 1 and args[1] == b"changes":
            return self._changes(conn, args)
        streams = FETCHERS if len(args) == 1 else 0
        for word in args[1:]:
            if word not in STREAMS:
                return b"ERROR\r\n"
            streams |= STREAMS[word]
        if sum(not w.changes for w in self.watchers) >= WATCHER_LIMIT:
            return b"WATCHER_TOO_MANY log watcher limit reached\r\n"
        transport = conn.become_watcher(WatcherProtocol)
        self._attach()
        # What happened before the watch began is not this watcher's (memcached's min_gid).
        self._drain()
        self.watchers.append(Watcher(transport, streams))
        self._follow()
        return b"OK\r\n"

    def _changes(self, conn, args: list[bytes]) -> bytes:
        opts = dict(a.split(b"=", 1) if b"=" in a else (a, b"") for a in args[2:])
        if set(opts) - {b"key", b"prefix", b"after"}:
            return b"ERROR\r\n"
        key = unquote_to_bytes(opts[b"key"]) if b"key" in opts else None
        prefix = unquote_to_bytes(opts[b"prefix"]) if b"prefix" in opts else None
        transport = conn.become_watcher(WatcherProtocol)
        self._attach()
        watcher = Watcher(transport, changes=True, key=key, prefix=prefix)
        self._drain()
        # OK leaves with this batch's replies, before anything written here later; what is
        # drained meanwhile is in the history, after self.seq.
        asyncio.get_running_loop().call_soon(self._welcome, watcher, opts.get(b"after"),
                                             self.seq)
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
            stamp(since), self.boot, status, reason)
        self._send(watcher, [head, *(self._line(watcher, r) for r in replay)])
        self.watchers.append(watcher)

    def _follow(self) -> None:
        """Turns the store's fetch notes and the connections' callbacks on while someone
        watches them, off once nobody does: unwatched, they cost one check each."""
        streams = 0
        for w in self.watchers:
            streams |= w.streams
        if self.feed is not None:
            self.feed.fetches(bool(streams & FETCHERS))
        if self.events is not None:
            self.events.want("watch", self._conn_event if streams & CONNEVENTS else None)

    def _attach(self) -> None:
        self._idle_since = 0.0
        if self.feed is None:
            self.feed = Feed(self.store, FEED_CAPACITY)
            # What happened before now was not recorded: no stream resumes from before.
            self.first_gid = self.seq + 1
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
            before = len(self.watchers)
            self.watchers = [w for w in self.watchers if not w.transport.is_closing()]
            if len(self.watchers) != before:
                self._follow()
            if self.watchers:
                self._idle_since = 0.0
            elif not self._idle_since:
                self._idle_since = time.monotonic()
            elif time.monotonic() - self._idle_since > KEEP:
                self._detach()

    def _drain(self) -> None:
        if self.feed is None:
            return
        records, dropped = self.feed.take()
        if not records and not dropped:
            return
        changes = []
        for r in records:
            if r[0] != FETCH:      # fetches are not changes: never resumed across
                self.seq += 1
                changes.append((self.seq, *r))
        self.history.extend(changes)
        if len(self.history) == self.history.maxlen:
            self.first_gid = max(self.first_gid, self.history[0][0])
        streams = [w for w in self.watchers if w.changes]
        for w in streams:
            self._send(w, [self._line(w, r) for r in changes if w.wants(r)])
        logs = [w for w in self.watchers if not w.changes]
        if logs:
            lines: dict[Watcher, list[bytes]] = {w: [] for w in logs}
            for r in records:
                wanting = [w for w in logs if w.wants((0, *r))]
                if wanting:
                    self.gid += 1
                    self.written += 1
                    for w in wanting:
                        lines[w].append(self._line(w, (self.gid, *r)))
            for w in logs:
                self._send(w, lines[w])
        if dropped:
            # Notes lost after these records (the ring was full): no stream resumes across
            # them, and every watcher hears of them before its next line.
            self.seq += dropped
            self.first_gid = self.seq + 1
            self.dropped += dropped
            for w in self.watchers:
                w.skipped += dropped

    def _send(self, watcher: Watcher, lines: list[bytes]) -> None:
        sent, skipped = watcher.send(lines)
        self.sent += sent
        self.skipped += skipped

    def _conn_event(self, peername, fd: int, reason: str | None) -> None:
        """A connection opened (reason None) or closed: memcached's conn_new or conn_close
        line, after whatever the store noted before it."""
        try:
            self._drain()
            self.gid += 1
            self.written += 1
            rip, rport, transport = endpoint(peername)
            if reason is None:
                line = b"%s type=conn_new rip=%s rport=%d transport=%s cfd=%d\n" % (
                    stamp(self.gid), rip, rport, transport, fd)
            else:
                line = b"%s type=conn_close rip=%s rport=%d transport=%s reason=%s cfd=%d\n" % (
                    stamp(self.gid), rip, rport, transport, reason.encode(), fd)
            for w in self.watchers:
                if w.streams & CONNEVENTS:
                    self._send(w, [line])
        except Exception:  # called from a connection's open or close, which must go on
            log.exception("watch connection event failed")

    def _line(self, watcher: Watcher, r) -> bytes:
        gid, change, cmd, status, key, version, exptime, nbytes, idle, fetched = r
        now = int(time.time())
        if watcher.changes:
            ttl = max(0, exptime - now) if exptime else 0
            return b"%s type=change key=%s kind=%s version=%d ttl=%d size=%d\n" % (
                stamp(gid), uri(key), KINDS[CHANGES[change]], version, ttl, nbytes)
        if change == FETCH:
            return b"%s type=item_get key=%s status=%s clsid=0 cfd=0 size=%d\n" % (
                stamp(gid), uri(key), FOUND[status].encode(), nbytes)
        if change == EVICT:
            return b"%s type=eviction key=%s fetch=%s ttl=%d la=%d clsid=0 size=%d\n" % (
                stamp(gid), uri(key), b"yes" if fetched else b"no",
                exptime - now if exptime else -1, idle, nbytes)
        ttl = max(0, exptime - now) if exptime else 0
        name = CMDS[cmd].encode() if cmd <= LAST_NAMED else b"na"
        return b"%s type=item_store key=%s status=%s cmd=%s ttl=%d clsid=0 cfd=0 size=%d\n" \
            % (stamp(gid), uri(key), STATUSES[status].encode(), name, ttl, nbytes)
