"""Lock history checkers (LOCKS.md "How to prove it"), fed what clients recorded with
time.monotonic(), which is system-wide on Linux, so intervals compare across threads and
processes.

A Hold is one successful acquisition: invoked at `invoke`, completed at `start`, trusted by
its holder until `end` = min(release invoked, valid_until, when it learnt it was lost).
Checkers return lists of violations (empty: the history is fine), so a negative control can
assert that they are not empty.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Hold:
    lock: bytes
    client: int
    token: int
    invoke: float
    start: float
    valid_until: float
    released: float | None = None

    @property
    def end(self) -> float:
        return self.valid_until if self.released is None else min(self.released,
                                                                  self.valid_until)


@dataclass
class History:
    holds: list[Hold] = field(default_factory=list)
    mutex: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hold: Hold) -> None:
        with self.mutex:
            self.holds.append(hold)

    def by_lock(self) -> dict[bytes, list[Hold]]:
        out: dict[bytes, list[Hold]] = {}
        for h in self.holds:
            out.setdefault(h.lock, []).append(h)
        return out


def overlaps(history: History) -> list[str]:
    """(1) Lease exclusion: per lock, sorted by completion, no hold starts before every
    earlier one ended."""
    out = []
    for lock, holds in history.by_lock().items():
        holds = sorted(holds, key=lambda h: h.start)
        last = None     # the hold that ends last among those started so far
        for h in holds:
            if last is not None and h.start < last.end:
                out.append(f"{lock!r}: token {h.token} (client {h.client}) started "
                           f"{last.end - h.start:.4f}s before token {last.token} "
                           f"(client {last.client}) ended")
            if last is None or h.end > last.end:
                last = h
    return out


def token_order(history: History) -> list[str]:
    """(2) Fencing: per lock, tokens are unique, and a hold completed before another was
    invoked has the lower token (real-time order)."""
    out = []
    for lock, holds in history.by_lock().items():
        tokens = [h.token for h in holds]
        if len(set(tokens)) != len(tokens):
            out.append(f"{lock!r}: a token was granted twice")
        by_start = sorted(holds, key=lambda h: h.start)
        by_invoke = sorted(holds, key=lambda h: h.invoke)
        highest, j = None, 0
        # Sweep invocations in time order; `highest` covers every hold completed before.
        for h in by_invoke:
            while j < len(by_start) and by_start[j].start < h.invoke:
                t = by_start[j].token
                highest = t if highest is None else max(highest, t)
                j += 1
            if highest is not None and h.token <= highest:
                out.append(f"{lock!r}: token {h.token} (client {h.client}) invoked after a "
                           f"hold with token {highest} had completed")
    return out


class Resource:
    """(3) A storage service guarded by the lock. Fenced: it refuses a write whose token is
    below the highest it accepted. Unfenced: it takes every write (the negative control)."""

    def __init__(self, fenced: bool):
        self.fenced = fenced
        self.accepted: list[tuple[int, bytes]] = []
        self.highest = 0
        self.mutex = threading.Lock()

    def write(self, token: int, value: bytes) -> bool:
        with self.mutex:
            if self.fenced and token < self.highest:
                return False
            self.highest = max(self.highest, token)
            self.accepted.append((token, value))
            return True


def stale_writes(resource: Resource) -> list[str]:
    """A write accepted after a write with a newer token came from a stale holder."""
    out, highest = [], 0
    for token, value in resource.accepted:
        if token < highest:
            out.append(f"write {value!r} with token {token} accepted after token {highest}")
        highest = max(highest, token)
    return out
