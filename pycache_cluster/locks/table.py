"""One replica's lock table: leases and fencing tokens per lock name, beside the cache.

Never evicted by the cache's LRU, untouched by `flush_all`, not counted against `-m`: it is
bounded by its own entry limit. Times are this node's monotonic clock (seconds), passed in
by the caller, so a fake clock can drive it.

Invariants, per name, that the quorum's safety rests on:
- `highest` never decreases, not through release, expiry or dropping the entry (a dropped
  entry's `highest` is folded into `floor`, which stands in for every name not in the table);
- a grant's token is >= `highest` before it, and > it unless the same owner repeats it;
- while one owner's lease is valid (now < expires), no other owner is granted.
Owner ids name one acquisition attempt (the client makes them unique), so the same owner may
repeat or raise its own grant (an idempotent retry, a renewal, a retry with a higher token).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    GRANTED = "GRANTED"         # the lease is the caller's until now + ttl * (1 + rho)
    HELD = "HELD"               # another owner's lease is valid
    LOW = "LOW"                 # token <= highest: retry above it
    QUARANTINE = "QUARANTINE"   # restarted too recently to vote
    FULL = "FULL"               # the table has no room and nothing it may drop


@dataclass
class Entry:
    owner: bytes = b""
    token: int = 0
    expires: float = 0.0        # monotonic; the lease is free once now >= expires
    highest: int = 0


class LockTable:
    """The leases of one node. `rho` is the clock-rate bound: leases here run ttl * (1 + rho)
    so that they outlast the holder's own view, which runs ttl * (1 - rho)."""

    def __init__(self, limit: int, rho: float, quarantine_until: float = 0.0,
                 floor: int = 0):
        self.limit = limit
        self.rho = rho
        self.quarantine_until = quarantine_until
        self.floor = floor
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self.granted = self.refused = self.released = 0

    def __len__(self) -> int:
        return len(self._entries)

    def highest(self, name: bytes) -> int:
        e = self._entries.get(name)
        return self.floor if e is None else max(e.highest, self.floor)

    def grant(self, name: bytes, owner: bytes, token: int, ttl: float,
              now: float) -> tuple[Verdict, int]:
        """Grants (or renews) `owner`'s lease with `token` for `ttl` seconds.
        Returns (verdict, the highest token known for `name` after the call)."""
        if now < self.quarantine_until:
            self.refused += 1
            return Verdict.QUARANTINE, self.highest(name)
        e = self._entries.get(name)
        if e is None:
            if not self._make_room(now):
                self.refused += 1
                return Verdict.FULL, self.floor
            e = self._entries[name] = Entry(highest=self.floor)
        self._entries.move_to_end(name)
        mine = e.owner == owner
        if not mine and now < e.expires:
            self.refused += 1
            return Verdict.HELD, e.highest
        if token < e.highest or (token == e.highest and not (mine and token == e.token)):
            self.refused += 1
            return Verdict.LOW, e.highest
        e.owner, e.token, e.highest = owner, token, token
        e.expires = now + ttl * (1 + self.rho)
        self.granted += 1
        return Verdict.GRANTED, token

    def release(self, name: bytes, owner: bytes, token: int) -> bool:
        """Frees the lease if `owner` holds it with `token`; idempotent. The highest token
        stays; the owner is forgotten, so a renewal that arrives late cannot revive it."""
        e = self._entries.get(name)
        if e is None or e.owner != owner or e.token != token:
            return False
        e.owner, e.expires = b"", 0.0
        self.released += 1
        return True

    def inspect(self, name: bytes, now: float) -> tuple[bytes, int, float, int]:
        """(holder or b"", its token, seconds its lease has left, highest token)."""
        e = self._entries.get(name)
        if e is None or now >= e.expires:
            return b"", 0, 0.0, self.highest(name)
        return e.owner, e.token, e.expires - now, max(e.highest, self.floor)

    def _make_room(self, now: float) -> bool:
        if len(self._entries) < self.limit:
            return True
        # Least recently touched first; a free entry may go, its highest kept in the floor.
        for name, e in self._entries.items():
            if now >= e.expires:
                del self._entries[name]
                self.floor = max(self.floor, e.highest)
                return True
        return False
