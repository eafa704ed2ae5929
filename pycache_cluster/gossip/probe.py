"""Outstanding probes and relayed pings, and their timers that allow for a stalled event loop."""

from __future__ import annotations

from collections.abc import Callable

from .state import NodeState
from .transport import Addr


class Probe:
    """An outstanding probe of ours; acks and nacks for its sequence number land here."""

    __slots__ = (
        "deadline",
        "done",
        "due",
        "expected_nacks",
        "nacks",
        "node",
        "rescued",
        "seq",
        "stalled",
        "timer",
        "verdict",
    )

    def __init__(self, node: NodeState, seq: int, deadline: float, verdict: bool):
        self.node = node
        self.seq = seq
        self.deadline = deadline
        # A last check of an unconfirmed suspect whose timer ran out: failure means dead.
        self.verdict = verdict
        # Only the TCP ping got an answer; judged at the deadline, once the nacks are in.
        self.rescued = False
        self.done = False
        self.nacks = 0
        self.expected_nacks = 0
        self.timer = None
        self.due = 0.0          # when the timer should fire
        self.stalled = False    # one of its timers already fired late and was put off


class Relay:
    """A ping we send on behalf of another member's indirect probe."""

    __slots__ = ("expiry", "nack_timer", "requester", "seq")

    def __init__(self, requester: Addr, seq: int):
        self.requester = requester
        self.seq = seq
        self.nack_timer = None
        self.expiry = None


class StallGuard:
    """Arms a probe's timers so that a late firing does not turn into a failed probe.

    A timer that fires `stall` seconds or more after it was due means our own event loop was
    stalled (CPU starvation, a long callback, a bulk transfer): the ack we wait for may well
    sit unread in the socket, and uvloop runs due timers before it polls for input. Such a
    timer is put off once by `grace` seconds, so the loop reads its sockets first, and the
    stall is reported (the member counts it against its own health, as Lifeguard does with
    missed nacks: a slow member should wait longer, not accuse others).
    """

    def __init__(self, loop, stall: float, grace: float, on_stall: Callable[[], None]):
        self._loop = loop
        self.stall = stall
        self.grace = grace
        self._on_stall = on_stall

    def arm(self, probe: Probe, delay: float, fn: Callable[[Probe], None]) -> None:
        probe.due = self._loop.time() + delay
        probe.timer = self._loop.call_later(delay, self._fire, probe, fn)

    def _fire(self, probe: Probe, fn: Callable[[Probe], None]) -> None:
        if probe.done:
            return
        if self.stall > 0 and not probe.stalled \
                and self._loop.time() - probe.due >= self.stall:
            probe.stalled = True
            self._on_stall()
            probe.deadline += self.grace
            probe.timer = self._loop.call_later(self.grace, fn, probe)
            return
        fn(probe)
