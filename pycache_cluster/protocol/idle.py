"""memcached's `-o idle_timeout=<s>`: a client connection that sent nothing for that long and
is owed nothing is closed, counted as `idle_kicks` in `stats`.

memcached's timeout thread walks every connection and closes those whose last command is
older than the timeout, skipping any that is not waiting for a command (a reply being
written, a watcher). Here the kernel keeps the clock: TCP_INFO's tcpi_last_data_recv is the
time since the socket last received data, read through a duplicate of the connection's
descriptor (the connection-event callback names it). Skipped as memcached skips them:
connections with replies owed or queued, watchers, and Unix sockets (TCP only in memcached
too); cluster peers' links as well, which are idle by nature and are not clients.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import struct

log = logging.getLogger(__name__)

#: struct tcp_info (linux/tcp.h): u8 x 8, then u32 rto, ato, snd_mss, rcv_mss, unacked,
#: sacked, lost, retrans, fackets, last_data_sent, last_ack_sent, last_data_recv (ms).
_LAST_DATA_RECV = struct.Struct("=52xI")
_TCP_INFO_LEN = 104


def idle_ms(fd: int) -> int | None:
    """Milliseconds since the TCP socket `fd` last received data, None if not TCP."""
    try:
        with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as s:
            info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    return _LAST_DATA_RECV.unpack_from(info)[0] if len(info) >= _LAST_DATA_RECV.size else None


class IdleTimeout:
    """The node component; `watches` (the Watches component or None) names the watchers."""

    def __init__(self, timeout: int, watches=None):
        self.timeout = timeout
        self.watches = watches
        self.kicks = 0
        self._fds: dict[object, int] = {}       # peername -> the connection's descriptor
        self._task: asyncio.Task | None = None

    async def start(self, node) -> None:
        self.state = node.state
        self.events = node.conn_events
        self.events.want("idle", self._event)
        node.state.extensions.general["idle_kicks"] = lambda: self.kicks
        self._task = asyncio.ensure_future(self._run())

    async def stop(self, node) -> None:
        self.events.want("idle", None)
        node.state.extensions.general.pop("idle_kicks", None)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _event(self, peername, fd: int, reason: str | None) -> None:
        if not isinstance(peername, tuple):
            return      # a Unix socket: never timed out, as in memcached
        if reason is None:
            self._fds[peername] = fd
        else:
            self._fds.pop(peername, None)

    async def _run(self) -> None:
        while True:
            # memcached's thread sleeps until the soonest a connection could time out; a
            # sweep a second is as prompt and costs a system call per connection.
            await asyncio.sleep(1.0)
            self.sweep()

    def sweep(self) -> int:
        watching = set()
        if self.watches is not None:
            watching = {w.transport.get_extra_info("peername") for w in self.watches.watchers}
        kicked = 0
        limit = self.timeout * 1000
        for conn in list(self.state.conns):
            peer = conn.peername
            fd = self._fds.get(peer)
            if fd is None or conn.is_peer or conn.holes_open or conn.output_queued or \
                    peer in watching:
                continue
            idle = idle_ms(fd)
            if idle is not None and idle > limit:
                if self.state.verbosity > 0:
                    log.info("idle timeout: closing %s:%s after %.1f s", *peer[:2],
                             idle / 1000)
                conn.close_when_drained()
                self._fds.pop(peer, None)
                kicked += 1
        self.kicks += kicked
        return kicked
