"""Histories of what clients were told, and the checker: writers loop set (or gets + cas) on
keys of their own through chosen nodes, one writer per key so a key's writes are ordered,
and record per key the newest sequence number they were told STORED and the newest they
sent at all; readers record what reads answered. Key groups are retired after each fault
(`Writers.next_group`), so a lost write cannot be hidden by a later one. The checker reads
every key through a node afterwards: nothing older than the newest acknowledged write,
nothing newer than anything sent; and no read during the run answered older than a write
acknowledged before it began (a miss is a cache's safe answer) or newer than one sent."""
from __future__ import annotations

import random
import re
import threading
import time

from cluster.replicas import PeerView, owners
from helpers.cluster import wait_for

_VALUE = re.compile(rb"VALUE \S+ 0 \d+ (\d+)\r\n(\d+)\r\nEND\r\n")


class History:
    def __init__(self):
        self.acked: dict[bytes, int] = {}
        self.sent: dict[bytes, int] = {}
        #: Answers a single memcached would not give: a cas of a key whose write was
        #: acknowledged answered NOT_FOUND, a write refused by a quorum, a read that missed.
        self.wrong: list[str] = []
        #: (key, newest acknowledged when the read began, newest sent when it ended, answer,
        #: when it began: time.monotonic())
        self.reads: list[tuple[bytes, int | None, int, int | None, float]] = []
        self.lock = threading.Lock()

    def read_violations(self, phases=()) -> list[str]:
        """phases: (name, began) in order, to say when each bad read happened."""
        out = []
        for key, acked, sent, got, began in self.reads:
            when = next((name for name, t in reversed(phases) if began >= t), "start")
            if got is not None and acked is not None and got < acked:
                out.append(f"{key!r}: read {got} after {acked} was acknowledged ({when})")
            if got is not None and got > sent:
                out.append(f"{key!r}: read {got}, never written (last sent {sent}, {when})")
        return out

    def violations(self, read) -> list[str]:
        """read(key) -> the sequence number a node answers, or None on a miss."""
        out = []
        for key, sent in self.sent.items():
            got = read(key)
            acked = self.acked.get(key)
            if acked is not None and (got is None or got < acked):
                out.append(f"{key!r}: acknowledged {acked}, read {got}")
            if got is not None and got > sent:
                out.append(f"{key!r}: read {got}, never written (last sent {sent})")
        return out


def gets(conn, key: bytes) -> tuple[int, int] | None:
    """(value, cas) as `gets` answers them, None on a miss."""
    reply = conn.call(b"gets %s\r\n" % key)
    if reply == b"END\r\n":
        return None
    m = _VALUE.fullmatch(reply)
    assert m, reply
    return int(m.group(2)), int(m.group(1))


class Writers:
    """`n` writer threads; writer w writes keys `<prefix><group>:<w>:<i>` through nodes picked
    from `via()` (called per connection). op: "set", or "cas" (gets, then cas; set when the
    key is not there yet)."""

    def __init__(self, fleet, via, n: int = 4, op: str = "set", keys: int = 10,
                 prefix: str = "h", keys_for=None):
        self.fleet, self.via, self.op, self.nkeys, self.prefix = fleet, via, op, keys, prefix
        #: keys_for(group, writer) -> keys: chosen keys (say, those a node owns first).
        self.keys_for = keys_for or (lambda g, w: [b"%s%d:%d:%d" % (prefix.encode(), g, w, i)
                                                   for i in range(keys)])
        self.history = History()
        self.group = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(w,), daemon=True)
                        for w in range(n)]

    def start(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def next_group(self) -> None:
        """The keys written so far are never written again."""
        self.group += 1

    def finish(self) -> History:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return self.history

    def _write(self, w: int) -> None:
        rnd = random.Random(w)
        h = self.history
        seq, conn, group, keys = 0, None, -1, []
        while not self.stop.is_set():
            if group != self.group:
                group = self.group
                keys = self.keys_for(group, w)
            key = rnd.choice(keys)
            seq += 1
            with h.lock:
                h.sent[key] = seq
            try:
                if conn is None:
                    conn = self.fleet[rnd.choice(self.via())].conn(timeout=5)
                reply = self._one(conn, key, seq)
            except (OSError, AssertionError):
                conn = None     # a node gone or stalled: the write is unknown, not acked
                continue
            with h.lock:
                if reply == b"STORED\r\n":
                    h.acked[key] = seq
                elif reply == b"NOT_FOUND\r\n" and key in h.acked:
                    h.wrong.append(f"{key!r}: cas after acknowledged {h.acked[key]}: NOT_FOUND")
                elif reply.startswith(b"SERVER_ERROR quorum"):
                    h.wrong.append(f"{key!r}: {reply!r}")
            if rnd.random() < 0.05:
                conn.close()    # spread the load over the coordinators
                conn = None

    def read(self, conn, rnd: random.Random) -> None:
        """One get of a key some writer wrote, recorded with what was known around it."""
        h = self.history
        with h.lock:
            if not h.sent:
                return
            key = rnd.choice(list(h.sent))
            acked = h.acked.get(key)
        began = time.monotonic()
        got = reader_on(conn)(key)
        with h.lock:
            h.reads.append((key, acked, h.sent[key], got, began))

    def _one(self, conn, key: bytes, seq: int) -> bytes:
        value = b"%d" % seq
        if self.op == "cas":
            got = gets(conn, key)
            if got is not None:
                return conn.call(b"cas %s 0 0 %d %d\r\n%s\r\n" % (key, len(value), got[1],
                                                                   value))
        return conn.call(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))


class Readers:
    """Threads reading keys the writers wrote, through nodes picked from via()."""

    def __init__(self, fleet, via, writers: list[Writers], n: int = 2):
        self.fleet, self.via, self.writers = fleet, via, writers
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(r,), daemon=True)
                        for r in range(n)]
        for t in self.threads:
            t.start()

    def _read(self, r: int) -> None:
        rnd, conn = random.Random(100 + r), None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self.fleet[rnd.choice(self.via())].conn(timeout=5)
                rnd.choice(self.writers).read(conn, rnd)
            except (OSError, AssertionError):
                conn = None
                continue
            if rnd.random() < 0.05:
                conn.close()
                conn = None

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def reader_on(conn):
    def read(key: bytes) -> int | None:
        reply = conn.call(b"get %s\r\n" % key)
        m = re.match(rb"VALUE \S+ 0 \d+\r\n(\d+)\r\nEND\r\n", reply)
        assert m or reply == b"END\r\n", reply
        return int(m.group(1)) if m else None
    return read


def reader(node):
    def read(key: bytes) -> int | None:
        with node.conn() as c:
            return reader_on(c)(key)
    return read


def quiesce(fleet, survivors, acked: dict[bytes, int] | None = None,
            hints: bool = True) -> None:
    """One ring on the survivors, hints to members replayed (unless not `hints`: while
    writers still write, a loaded machine keeps making new ones), hand-over done: with
    `acked`, until every owner holds each key's newest acknowledged write."""
    fleet.wait_converged([fleet[i] for i in survivors])
    if hints:
        wait_for(lambda: sum(fleet[i].stats("cluster")["hints_pending_members"]
                             for i in survivors) == 0, 30, "hints to the members replayed",
                 detail=lambda: "\n".join(
                     f"{fleet[i].name}: " + str({k: v for k, v in fleet[i].stats("cluster")
                                                .items() if k.startswith("hints_")})
                     for i in survivors))
    if acked is not None:
        wait_for(lambda: all(fleet[i].stats("cluster")["handover_running"] == 0
                             for i in survivors) and all_owners_hold(fleet, survivors, acked),
                 60, "hand-over and repair", interval=0.5,
                 detail=lambda: stale_copies(fleet, survivors, acked))


def stale_copies(fleet, survivors, acked: dict[bytes, int]) -> str:
    """Which owners lack which acknowledged write, and what each node's repair did."""
    views = {i: PeerView(fleet, i) for i in survivors}
    try:
        bad = [f"{k!r}@{fleet[i].name}: {views[i].copy(k)} < {seq}"
               for k, seq in acked.items() for i in owners(fleet, k, via=survivors[0])
               if (c := views[i].copy(k)) is None or int(c[0]) < seq]
    finally:
        for view in views.values():
            view.close()
    counters = {fleet[i].name: {k: v for k, v in fleet[i].stats("cluster").items()
                                if k.startswith(("handover_", "anti_entropy_", "hints_"))}
                for i in survivors}
    return f"{len(bad)} stale: {bad[:10]}\n{counters}"


def all_owners_hold(fleet, survivors, acked: dict[bytes, int]) -> bool:
    """Every owner's own copy of every key is its newest acknowledged write or later."""
    views = {i: PeerView(fleet, i) for i in survivors}

    def fresh(copy, seq):
        return copy is not None and int(copy[0]) >= seq
    try:
        return all(fresh(views[i].copy(k), seq) for k, seq in acked.items()
                   for i in owners(fleet, k, via=survivors[0]))
    finally:
        for v in views.values():
            v.close()
