"""Local health awareness (Lifeguard): a score that stretches our own timeouts while we are slow."""

from __future__ import annotations


class Awareness:
    """Score in [0, max_multiplier - 1]; 0 is healthy.

    Raised by failed probes with missing nacks (the relays could not hear from us either) and by
    having to refute a suspicion of ourselves; lowered by each successful probe. A slow node
    thus probes less often and waits longer, instead of accusing healthy peers.
    """

    def __init__(self, max_multiplier: int):
        self._max = max(1, max_multiplier)
        self.score = 0

    def apply(self, delta: int) -> None:
        self.score = min(self._max - 1, max(0, self.score + delta))

    def scale(self, timeout: float) -> float:
        return timeout * (self.score + 1)
