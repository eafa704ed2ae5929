"""The lock commands of one node (docs/locks.md): the Locks component and its wire protocol.

Clients, on any node (the node coordinates a quorum of the name's owners):
    lock acquire <name> <owner> <ttl_ms>          LOCKED <token> <validity_ms>
                                                  | BUSY <highest> <first live owner host:port|->
                                                  | UNAVAILABLE <granted> <needed> <why,...>
    lock renew <name> <owner> <token> <ttl_ms>    LOCKED <token> <validity_ms> | LOST
                                                  | UNAVAILABLE ...
    lock release <name> <owner> <token>           RELEASED <freed> <owners>
    lock inspect <name>                           OWNER <node> <holder|-> <token> <left_ms>
                                                  <highest> ... END   (per owner, in ring order;
                                                  "? 0 0 0" for one that did not answer)
    lock wait <name> <token> <max_ms>             FREE | WAITED  (on the owner BUSY named:
                                                  locks/waiters.py)
Peers only (one replica's table), sent by a coordinator:
    lock grant <name> <owner> <token> <ttl_ms> <ring checksum>
        GRANTED <token> | HELD|LOW|QUARANTINE|NOT_OWNER <highest> | RING <checksum> | FULL
    lock free <name> <owner> <token>              FREED
    lock show <name>                              SHOW <holder|-> <token> <left_ms> <highest>
    lock members                                  MEMBERS <node>:<weight> ... (its lock ring)
stats locks                                       STAT <counter> <value> ... END
"""
from __future__ import annotations

import logging
import os
import time

from pycache_cluster.locks.mark import TokenMark, open_mark
from pycache_cluster.locks.placement import Placement
from pycache_cluster.locks.quorum import LockQuorum, wall_token
from pycache_cluster.locks.table import LockTable
from pycache_cluster.locks.waiters import Waiters
from pycache_cluster.protocol.stats import lines

log = logging.getLogger(__name__)

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
#: Set to 1, a node skips the restart quarantine and the new-owner wait, and its lock owners
#: follow the cache's ring (failure detection): unsafe, it exists so that the tests' negative
#: controls can show the checkers catch what those rules prevent.
UNSAFE_NO_WAIT = "PYCACHE_LOCK_UNSAFE_NO_WAIT"
NAME_MAX = 250
OWNER_MAX = 64
PEER_ONLY = (b"grant", b"free", b"show", b"members")
SUBCOMMANDS = (b"acquire", b"renew", b"release", b"inspect", b"wait", *PEER_ONLY)
#: Longest `lock wait`, in seconds: its reply must come before the extension timeout (5 s).
MAX_WAIT = 4.0


def _ttl(arg: bytes, max_ttl: float) -> float | None:
    if not arg.isdigit():
        return None
    ttl = int(arg) / 1000
    return ttl if 0 < ttl <= max_ttl else None


class Locks:
    """The lock service of one node: its replica table, its coordinator, its commands."""

    def __init__(self, config, clock=time.monotonic):
        self.config = config
        self.clock = clock
        self.window = config.lock_max_ttl * (1 + config.lock_drift)
        self.unsafe = os.environ.get(UNSAFE_NO_WAIT) == "1"
        if self.unsafe:
            log.warning("%s=1: lock owners follow failure detection and vote at once "
                        "(unsafe)", UNSAFE_NO_WAIT)
            self.window = 0.0
        self.table = LockTable(config.lock_limit, config.lock_drift)
        self.waiters = Waiters(self.table, clock, config.lock_wait_grace)
        self.placement: Placement | None = None
        self.quorum: LockQuorum | None = None
        self.mark: TokenMark | None = None

    async def start(self, node) -> None:
        cluster = node.cluster
        # An empty table after a restart must not vote while leases it granted before may be
        # valid; the tokens it knows start above every token it granted before: the mark on
        # disk when there is one, else the wall clock (assumed never to step back).
        self.table.quarantine_until = self.clock() + self.window
        self.table.floor = wall_token()
        if self.config.lock_state_dir:
            me = cluster.name if cluster is not None else str(self.config.port)
            self.mark = open_mark(self.config.lock_state_dir, me)
            if self.mark.reserved > self.table.floor:
                log.warning("wall clock is behind this node's lock token mark by %.3fs",
                            (self.mark.reserved - self.table.floor) / 1e6)
            self.table.floor = max(self.table.floor, self.mark.reserved)
        else:
            log.info("no --lock-state-dir: lock tokens assume the wall clock never steps back")
        self.placement = Placement(cluster, self.config.replicas if cluster else 1,
                                   self.window, self.clock, self.table, self.unsafe)
        if cluster is not None:
            cluster.ring_listeners.append(self.placement.refresh)
            cluster.lock_placement = self.placement
        self.quorum = LockQuorum(self.placement, self, self.config.lock_drift, self.clock)
        node.state.extensions.add_command(b"lock", self.command)
        node.state.extensions.add_stats(b"locks", self.stats)

    async def stop(self, node) -> None:
        node.state.extensions.remove_command(b"lock")
        node.state.extensions.remove_stats(b"locks")
        self.placement.close()
        cluster = node.cluster
        if cluster is not None and self.placement.refresh in cluster.ring_listeners:
            cluster.ring_listeners.remove(self.placement.refresh)
            cluster.lock_placement = None

    def command(self, conn, args: list[bytes]):
        sub = args[1] if len(args) > 1 else None
        n = len(args)
        if sub not in SUBCOMMANDS:
            return b"ERROR\r\n"
        if sub in PEER_ONLY and not conn.is_peer and self.placement.cluster is not None:
            return b"CLIENT_ERROR lock " + sub + b" is for cluster peers\r\n"
        if sub == b"members":
            return self.placement.members() if n == 2 else BAD_FORMAT
        if n < 3 or len(args[2]) > NAME_MAX or (n > 3 and len(args[3]) > OWNER_MAX):
            return BAD_FORMAT
        q, max_ttl = self.quorum, self.config.lock_max_ttl
        if sub == b"acquire" and n == 5:
            ttl = _ttl(args[4], max_ttl)
            return BAD_FORMAT if ttl is None else q.acquire(args[2], args[3], ttl)
        if sub == b"renew" and n == 6 and args[4].isdigit():
            ttl = _ttl(args[5], max_ttl)
            return BAD_FORMAT if ttl is None else q.renew(args[2], args[3], int(args[4]), ttl)
        if sub == b"release" and n == 5 and args[4].isdigit():
            return q.release(args[2], args[3], int(args[4]))
        if sub == b"inspect" and n == 3:
            return self.inspect(args[2])
        if sub == b"wait" and n == 5 and args[3].isdigit() and args[4].isdigit():
            return self.waiters.wait(args[2], int(args[3]), min(int(args[4]) / 1000, MAX_WAIT))
        if sub in PEER_ONLY:
            return self.answer(args)
        return BAD_FORMAT

    def answer(self, args: list[bytes]) -> bytes:
        """One replica's answer to grant, free or show (from a peer, or this coordinator)."""
        sub, name, now = args[1], args[2], self.clock()
        if sub == b"grant" and len(args) == 7 and args[4].isdigit():
            ttl = _ttl(args[5], self.config.lock_max_ttl)
            if ttl is None:
                return BAD_FORMAT
            mine = self.placement.checksum()
            if args[6] != mine:
                return b"RING %s\r\n" % mine
            if not self.placement.may_vote(name):
                return b"NOT_OWNER %d\r\n" % self.table.highest(name)
            token = int(args[4])
            if self.mark is not None and token > self.table.highest(name):
                try:
                    self.mark.cover(token)
                except OSError as exc:
                    log.error("lock token mark: %s", exc)
                    return b"SERVER_ERROR lock token mark not written\r\n"
            verdict, highest = self.table.grant(name, args[3], token, ttl, now)
            if verdict.value == "FULL":
                log.warning("lock table full (%d entries, --lock-limit)", len(self.table))
                return b"FULL\r\n"
            return b"%s %d\r\n" % (verdict.value.encode(), highest)
        if sub == b"free" and len(args) == 5 and args[4].isdigit():
            if self.table.release(name, args[3], int(args[4])):
                self.waiters.freed(name)
            return b"FREED\r\n"
        if sub == b"show" and len(args) == 3:
            holder, token, left, highest = self.table.inspect(name, now)
            return b"SHOW %s %d %d %d\r\n" % (holder or b"-", token, int(left * 1000), highest)
        return BAD_FORMAT

    async def inspect(self, name: bytes) -> bytes:
        out = []
        for node in self.placement.owners(name):
            reply = await self.quorum.ask(node, b"lock show %s\r\n" % name, 1.0)
            parts = reply.split()
            rest = b" ".join(parts[1:]) if parts[:1] == [b"SHOW"] else b"? 0 0 0"
            out.append(b"OWNER %s %s\r\n" % (node.encode() or b"-", rest))
        out.append(b"END\r\n")
        return b"".join(out)

    def stats(self, args: list[bytes]) -> bytes:
        return lines(self.pairs()) if len(args) == 2 else BAD_FORMAT

    def pairs(self) -> list[tuple[str, object]]:
        """What `stats locks` answers, as (name, value) pairs (the metrics read them too)."""
        t, q = self.table, self.quorum
        return [
            ("lock_entries", len(t)),
            ("lock_limit", t.limit),
            ("lock_quarantined", int(self.clock() < t.quarantine_until)),
            ("lock_ring_nodes", self.placement.size()),
            ("lock_grants", t.granted),
            ("lock_refusals", t.refused),
            ("lock_releases", t.released),
            ("lock_acquired", q.acquired),
            ("lock_busy", q.busy),
            ("lock_unavailable", q.unavailable),
            ("lock_lost", q.lost),
            ("lock_waiting", self.waiters.waiting()),
            ("lock_waits", self.waiters.waits),
            ("lock_wakeups", self.waiters.woken),
            ("lock_ring_checksum", self.placement.checksum().decode()),
        ]
