"""Transports: the interface the protocol sends through, and the real UDP + TCP one on asyncio.

The protocol speaks in callbacks (no coroutines) so the same code runs on asyncio/uvloop and
inside the simulator's virtual time. A stream exchange is one request frame and at most one
reply frame on a fresh TCP connection: `u32 length | bytes`, each way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

Addr = tuple[str, int]
PacketHandler = Callable[[bytes, Addr], None]
# Returns the reply to write back, or None for a one-way stream.
StreamHandler = Callable[[bytes, Addr], "bytes | None"]
ReplyCallback = Callable[["bytes | None"], None]

MAX_STREAM_FRAME = 32 * 1024 * 1024
_LEN = struct.Struct(">I")
log = logging.getLogger(__name__)


class Transport:
    """What Memberlist needs from a network. Counters are read by Memberlist.stats()."""

    local_addr: Addr
    bytes_sent: int = 0
    bytes_received: int = 0

    def attach(self, on_packet: PacketHandler, on_stream: StreamHandler) -> None:
        raise NotImplementedError

    async def open(self) -> None:
        """Bind sockets (no-op for in-memory transports)."""

    def send_packet(self, addr: Addr, data: bytes) -> None:
        raise NotImplementedError

    def send_stream(self, addr: Addr, data: bytes, timeout: float,
                    on_reply: ReplyCallback | None) -> None:
        """Send one frame over TCP; on_reply gets the reply frame or None on any failure."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release sockets and cancel exchanges in flight."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: NetTransport):
        self._owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        self._owner.bytes_received += len(data)
        self._owner.on_packet(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a dead peer surfaces here; the probe timeout handles it.
        log.debug("gossip udp error: %s", exc)


class NetTransport(Transport):
    """UDP for packets and TCP for streams, both on bind_host:bind_port."""

    def __init__(self, bind_host: str, bind_port: int):
        self._bind = (bind_host, bind_port)
        self.local_addr = (bind_host, bind_port)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.on_packet: PacketHandler = lambda data, addr: None
        self.on_stream: StreamHandler = lambda data, addr: None
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    def attach(self, on_packet: PacketHandler, on_stream: StreamHandler) -> None:
        self.on_packet = on_packet
        self.on_stream = on_stream

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self._bind
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        # Port 0 lets TCP choose; UDP then takes the same number so one port serves both.
        port = self._server.sockets[0].getsockname()[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(host, port), family=family)
        except OSError:
            self._server.close()
            raise
        self.local_addr = (host, port)

    def send_packet(self, addr: Addr, data: bytes) -> None:
        if self._udp is None or self._udp.is_closing():
            return
        self.bytes_sent += len(data)
        self._udp.sendto(data, addr)

    def send_stream(self, addr: Addr, data: bytes, timeout: float,
                    on_reply: ReplyCallback | None) -> None:
        task = asyncio.get_running_loop().create_task(self._exchange(addr, data, timeout, on_reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exchange(self, addr: Addr, data: bytes, timeout: float,
                        on_reply: ReplyCallback | None) -> None:
        reply = None
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(addr[0], addr[1])
                writer.write(_LEN.pack(len(data)) + data)
                self.bytes_sent += len(data) + _LEN.size
                if on_reply is not None:
                    reply = await _read_frame(reader)
                    self.bytes_received += len(reply) + _LEN.size
                else:
                    await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("gossip stream to %s:%d failed: %r", addr[0], addr[1], exc)
            reply = None
        finally:
            if writer is not None:
                writer.close()
        if on_reply is not None:
            on_reply(reply)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            async with asyncio.timeout(10.0):
                data = await _read_frame(reader)
                self.bytes_received += len(data) + _LEN.size
                reply = self.on_stream(data, (peer[0], peer[1]))
                if reply is not None:
                    writer.write(_LEN.pack(len(reply)) + reply)
                    self.bytes_sent += len(reply) + _LEN.size
                    await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("gossip stream from %s failed: %r", peer, exc)
        finally:
            writer.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if n > MAX_STREAM_FRAME:
        raise ValueError(f"stream frame of {n} bytes")
    return await reader.readexactly(n)
