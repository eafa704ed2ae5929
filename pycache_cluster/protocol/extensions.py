"""The protocol's one seam for what is not memcached's: extension commands and `stats <name>`.

A command handler is called as `handler(conn, args)` with the request's tokens as bytes
(`args[0]` is the command name) and returns the reply bytes, or an awaitable of them. Bytes
are written in place; an awaitable leaves a hole in the connection's output, so later
replies wait behind it and the client sees every reply in request order. An awaitable that
fails or outlives `timeout` seconds answers `SERVER_ERROR <reason>`: a hole is always filled.
A stats provider is `provider(args)` returning `STAT` lines and `END` (or an awaitable).
A general counter is a callable of no arguments whose value the plain `stats` answers at its
place in memcached's order (a node component's, e.g. idle_kicks under -o idle_timeout).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Reply = bytes | Awaitable[bytes]
CommandHandler = Callable[[Any, list[bytes]], Reply]
StatsProvider = Callable[[list[bytes]], Reply]

#: Seconds an extension's awaitable may take before its client is answered an error.
DEFAULT_TIMEOUT = 5.0


class Extensions:
    """Registry of extension commands and stats providers, keyed by their first token."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        self._commands: dict[bytes, CommandHandler] = {}
        self._stats: dict[bytes, StatsProvider] = {}
        #: name -> callable() of `stats` figures that node components keep.
        self.general: dict[str, Callable[[], int]] = {}

    def add_command(self, name: bytes, handler: CommandHandler) -> None:
        if name in self._commands:
            raise ValueError(f"command {name!r} is already registered")
        self._commands[name] = handler

    def remove_command(self, name: bytes) -> None:
        self._commands.pop(name, None)

    def command(self, name: bytes) -> CommandHandler | None:
        return self._commands.get(name)

    def add_stats(self, name: bytes, provider: StatsProvider) -> None:
        if name in self._stats:
            raise ValueError(f"stats {name!r} is already registered")
        self._stats[name] = provider

    def remove_stats(self, name: bytes) -> None:
        self._stats.pop(name, None)

    def stats(self, name: bytes) -> StatsProvider | None:
        return self._stats.get(name)

    def names(self) -> tuple[list[bytes], list[bytes]]:
        """(command names, stats names) registered now, sorted."""
        return sorted(self._commands), sorted(self._stats)


def call(handler: Callable[..., Reply], *args) -> Reply:
    """Runs a handler; its exception becomes the client's SERVER_ERROR line, never a lost
    connection."""
    try:
        return handler(*args)
    except Exception as exc:  # a handler's bug must cost one reply, not the connection
        log.exception("extension failed")
        return b"SERVER_ERROR %s\r\n" % _oneline(exc)


def settle(hole, awaitable: Awaitable[bytes], timeout: float) -> asyncio.Future:
    """Runs the awaitable and fills the hole with its bytes (None: no reply is owed)."""
    task = asyncio.ensure_future(_settle(hole, awaitable, timeout))
    if hole is not None:
        hole.task = task
    return task


async def _settle(hole, awaitable: Awaitable[bytes], timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            data = await awaitable
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        data = b"SERVER_ERROR timed out\r\n"
    except Exception as exc:  # an extension's bug must not leave its client hanging
        log.exception("extension failed")
        data = b"SERVER_ERROR %s\r\n" % _oneline(exc)
    if hole is not None:
        hole.fill(data if isinstance(data, bytes) else b"")


def _oneline(exc: Exception) -> bytes:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")[:200]
