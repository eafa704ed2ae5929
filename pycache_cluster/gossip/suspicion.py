"""Suspicion timer (Lifeguard): starts at max and shrinks towards min with independent confirmations."""

from __future__ import annotations

import math
from collections.abc import Callable


def remaining(confirmations: int, wanted: int, elapsed: float, low: float, high: float) -> float:
    """Seconds left before the suspect is declared dead (may be negative: fire now).

    The timeout falls logarithmically: the first confirmations, which are the strongest evidence
    that the suspicion is not just our own bad network, buy the largest reduction.
    """
    if wanted <= 0:
        return low - elapsed
    frac = math.log(confirmations + 1) / math.log(wanted + 1)
    timeout = max(low, high - frac * (high - low))
    return timeout - elapsed


class Suspicion:
    """One suspected member's timer. `loop` needs time() and call_later() (asyncio or simulated)."""

    def __init__(self, loop, sender: str, wanted: int, low: float, high: float,
                 on_timeout: Callable[[], None]):
        self._loop = loop
        self._wanted = wanted
        self._low = low
        self._high = high
        self._on_timeout = on_timeout
        self._fired = False
        # The first accuser does not count as a confirmation: our own suspicion may come back
        # to us through gossip.
        self._accusers = {sender}
        self._start = loop.time()
        initial = low if wanted <= 0 else high
        self._handle = loop.call_later(initial, self._fire)

    @property
    def confirmations(self) -> int:
        return len(self._accusers) - 1

    @property
    def confirmed(self) -> bool:
        """Enough independent accusers to have driven the timeout to its minimum."""
        return self.confirmations >= self._wanted

    def confirm(self, sender: str) -> bool:
        """Count an independent accuser; True if this was new information worth re-gossiping."""
        if self._fired or self.confirmations >= self._wanted or sender in self._accusers:
            return False
        self._accusers.add(sender)
        left = remaining(self.confirmations, self._wanted, self._loop.time() - self._start,
                         self._low, self._high)
        self._handle.cancel()
        self._handle = self._loop.call_later(max(0.0, left), self._fire)
        return True

    def _fire(self) -> None:
        self._fired = True
        self._on_timeout()

    def cancel(self) -> None:
        self._handle.cancel()
