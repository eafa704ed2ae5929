"""A lease on one lock name, as a caller holds it: acquire with retries, extend, release, an
optional watchdog that renews every ttl/3, and the errors a holder can run into.

Invariant: `token` and `valid_until` are those of the newest successful acquire or renewal;
`held` is true from a successful acquire until release, expiry or a refused renewal. `lost`
is set (and `on_lost` called, once) when the lease ended without release: the watchdog could
not renew it before `valid_until`, or a renewal was refused because someone else holds it.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Self

#: Seconds one `lock wait` may last (the node caps it at 4).
WAIT_MAX = 3.5


class LockError(Exception):
    """Base of the lock API's errors."""


class LockTimeout(LockError):
    """The lock was not acquired within the caller's timeout."""


class LockLost(LockError):
    """The lease ran out (or was taken over) before it was released or renewed."""


class LockNotOwned(LockError):
    """Release or extend of a lock this handle does not hold."""


class QuorumUnavailable(LockError):
    """Fewer than a majority of the name's owners answered (or no node was reachable)."""


class Lease:
    """Options: timeout (seconds to keep trying; None: forever), blocking (False: one try),
    auto_renew (a watchdog renews every ttl/3), max_hold (the watchdog stops renewing after
    this many seconds), on_lost (called from the watchdog when the lease is lost)."""

    def __init__(self, client, name: bytes, ttl: float, timeout: float | None = None,
                 blocking: bool = True, auto_renew: bool = False,
                 max_hold: float | None = None, on_lost=None):
        self.client, self.name, self.ttl = client, name, ttl
        self.timeout, self.blocking = timeout, blocking
        self.auto_renew, self.max_hold, self.on_lost = auto_renew, max_hold, on_lost
        self.owner = b""
        self.token = 0
        self.valid_until = 0.0
        self.acquired_at = 0.0
        self.held = False
        self.lost = threading.Event()
        self._released = threading.Event()
        self._watchdog: threading.Thread | None = None

    def _ttl_ms(self, ttl: float) -> int:
        return max(1, round(ttl * 1000))

    def acquire(self) -> bool:
        """True once held. Blocking: retries with jittered backoff until `timeout` (then
        LockTimeout); non-blocking: False when another holder has it, QuorumUnavailable
        when too few owners answered."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        backoff = 0.005
        # One owner id for every attempt of this call: a grant left behind by an attempt
        # whose reply was lost is then this caller's own, renewed rather than waited out.
        self.owner = self.client.owner_id()
        while True:
            t0 = time.monotonic()
            try:
                reply = self.client.call(b"lock acquire %s %s %d\r\n"
                                         % (self.name, self.owner, self._ttl_ms(self.ttl)))
            except OSError as exc:
                reply = [b"UNAVAILABLE", str(exc).encode()]
            if reply[:1] == [b"LOCKED"]:
                valid_until = self.client.validity(t0, self.ttl)
                if time.monotonic() < valid_until:
                    self._held(int(reply[1]), valid_until, t0)
                    return True
                self._send_release(int(reply[1]))
            if not self.blocking:
                if reply[:1] == [b"BUSY"]:
                    return False
                raise QuorumUnavailable(b" ".join(reply).decode(errors="replace"))
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise LockTimeout(f"lock {self.name.decode(errors='replace')}: "
                                  + b" ".join(reply).decode(errors="replace"))
            if reply[:1] == [b"BUSY"] and len(reply) == 3:
                # Queue on the first owner instead of polling every owner.
                budget = WAIT_MAX if deadline is None else min(WAIT_MAX, deadline - now)
                self.client.wait(reply[2], self.name, int(reply[1]), budget)
                if time.monotonic() - now >= backoff:
                    backoff = 0.005     # a real wait: try at once
                    continue
            pause = backoff * random.uniform(0.5, 1.5)
            self.client.sleep(pause if deadline is None else min(pause, deadline - now))
            backoff = min(backoff * 2, 0.1, self.ttl / 4)

    def _held(self, token: int, valid_until: float, t0: float) -> None:
        self.token, self.valid_until, self.acquired_at = token, valid_until, t0
        self.held = True
        self.lost.clear()
        self._released.clear()
        if self.auto_renew:
            self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                              name=f"lock-watchdog-{self.name!r}")
            self._watchdog.start()

    def extend(self, ttl: float | None = None) -> float:
        """Renews the lease for `ttl` (default: the original) seconds; the new valid_until.
        LockLost when another holder has it now, QuorumUnavailable when too few answered."""
        if not self.held:
            raise LockNotOwned(f"lock {self.name!r} is not held")
        ttl = self.ttl if ttl is None else ttl
        t0 = time.monotonic()
        reply = self.client.call(b"lock renew %s %s %d %d\r\n"
                                 % (self.name, self.owner, self.token, self._ttl_ms(ttl)))
        if reply[:1] == [b"LOCKED"]:
            self.valid_until = max(self.valid_until, self.client.validity(t0, ttl))
            return self.valid_until
        if reply[:1] == [b"LOST"]:
            self._lose()
            raise LockLost(f"lock {self.name!r} token {self.token} was taken over")
        raise QuorumUnavailable(b" ".join(reply).decode(errors="replace"))

    def release(self) -> None:
        """Frees the lease on its owners; LockNotOwned when it was not held."""
        was = self.held
        self.held = False
        self._released.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(self.ttl)
        if not was:
            raise LockNotOwned(f"lock {self.name!r} is not held")
        self._send_release(self.token)

    def _send_release(self, token: int) -> None:
        try:
            self.client.call(b"lock release %s %s %d\r\n" % (self.name, self.owner, token))
        except OSError:
            pass    # the lease runs out by itself; nothing safer to do

    def _lose(self) -> None:
        if self.held:
            self.held = False
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost(self)

    def _watch(self) -> None:
        while not self._released.wait(self.ttl / 3):
            now = time.monotonic()
            if now >= self.valid_until:
                self._lose()
                return
            if self.max_hold is not None and now - self.acquired_at >= self.max_hold:
                # No more renewals: lost once the lease runs out, unless released first.
                if not self._released.wait(self.valid_until - now):
                    self._lose()
                return
            try:
                self.extend()
            except LockLost:
                return
            except (QuorumUnavailable, OSError):
                continue    # try again within the lease's remaining validity

    def __enter__(self) -> Self:
        if not self.acquire():
            raise LockTimeout(f"lock {self.name!r} is held by another")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.held:
            self.release()
        elif self.lost.is_set() and exc_info[0] is None:
            raise LockLost(f"lock {self.name!r} token {self.token} was lost while held")
