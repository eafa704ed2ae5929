"""The protocol's one connection-event callback (ServerState.conn_watch), shared: `watch
connevents` and the idle timeout each ask for it, and it is set only while one of them
wants it, so that otherwise a connection's open and close pay one untaken branch."""
from __future__ import annotations

from collections.abc import Callable

#: listener(peername, fd, reason): reason None on open, memcached's close reason on close.
Listener = Callable[[object, int, str | None], None]


class ConnEvents:
    def __init__(self, state):
        self.state = state
        self._listeners: dict[str, Listener] = {}

    def want(self, who: str, listener: Listener | None) -> None:
        """`who` wants the events (listener) or no longer does (None)."""
        if listener is None:
            self._listeners.pop(who, None)
        else:
            self._listeners[who] = listener
        listeners = list(self._listeners.values())
        self.state.conn_watch = (None if not listeners else listeners[0]
                                 if len(listeners) == 1 else self._each)

    def _each(self, peername, fd: int, reason: str | None) -> None:
        for listener in list(self._listeners.values()):
            listener(peername, fd, reason)
