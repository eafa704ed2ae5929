"""Retransmit-limited broadcast queue: at most one pending update per member, least-sent first."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from sortedcontainers import SortedList

from .messages import frame


class Broadcast:
    __slots__ = ("framed", "id", "name", "on_done", "transmits")

    def __init__(self, name: str, framed: bytes, id_: int, on_done: Callable[[], None] | None):
        self.name = name
        self.framed = framed
        self.transmits = 0
        self.id = id_
        self.on_done = on_done

    def key(self) -> tuple[int, int]:
        # Fewest transmissions first (a fresh update spreads before an old one is repeated),
        # newest first among equals.
        return (self.transmits, -self.id)


class BroadcastQueue:
    """Updates waiting to be piggybacked or gossiped.

    Invariant: at most one queued broadcast per member name, the most recently queued one; a
    newer update about a member makes an older one pointless, whatever the message types.
    Each broadcast is sent `limit()` times (λ·ceil(log10(n+1)) for the current n), then dropped.
    """

    def __init__(self, limit: Callable[[], int]):
        self._limit = limit
        self._items: SortedList = SortedList(key=Broadcast.key)
        self._by_name: dict[str, Broadcast] = {}
        self._ids = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    def queue(self, name: str, encoded: bytes, on_done: Callable[[], None] | None = None) -> None:
        old = self._by_name.pop(name, None)
        if old is not None:
            self._items.remove(old)
            if old.on_done:
                old.on_done()
        b = Broadcast(name, frame(encoded), next(self._ids), on_done)
        self._by_name[name] = b
        self._items.add(b)

    def get(self, space: int, oversize: bool = False) -> list[bytes]:
        """Framed broadcasts fitting in `space` bytes, counted as transmitted once more.

        With oversize, a broadcast that could never fit is returned alone rather than stuck
        forever (the caller then sends it over TCP).
        """
        if not self._items:
            return []
        taken: list[Broadcast] = []
        for b in self._items:
            if space < 8:  # no frame is smaller than this
                break
            if len(b.framed) <= space:
                taken.append(b)
                space -= len(b.framed)
        if not taken and oversize:
            taken.append(self._items[0])
        limit = self._limit()
        for b in taken:
            self._items.remove(b)
            b.transmits += 1
            if b.transmits >= limit:
                del self._by_name[b.name]
                if b.on_done:
                    b.on_done()
            else:
                self._items.add(b)
        return [b.framed for b in taken]
