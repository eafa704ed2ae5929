"""Virtual time and a simulated network (latency, loss, slow and crashed nodes) with its transport.

Used by the simulator and by the tests as the in-memory transport: runs are deterministic for a
given seed and take no wall-clock time waiting.

Network model: a UDP packet is lost with probability `loss`, else it arrives after a one-way
latency drawn uniformly from `latency`, plus the receiver's processing delay. A TCP exchange
never loses data but each of its segments is retransmitted (+`tcp_rto`) with probability `loss`.
A node's processing delay is exponential with mean `processing` times its slowness factor
(1 for healthy nodes) and also delays its timers, as a CPU-starved process would. A paused
node (SIGSTOP) runs nothing until it resumes: packets wait for it, its timers fire late.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

from .transport import Addr, PacketHandler, ReplyCallback, StreamHandler, Transport


class _Handle:
    __slots__ = ("args", "cancelled", "fn")

    def __init__(self, fn: Callable, args: tuple):
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimLoop:
    """A discrete-event clock offering the slice of the asyncio loop API the protocol uses."""

    def __init__(self):
        self._now = 0.0
        self._heap: list = []
        self._ids = itertools.count()

    def time(self) -> float:
        return self._now

    def call_later(self, delay: float, fn: Callable, *args) -> _Handle:
        h = _Handle(fn, args)
        heapq.heappush(self._heap, (self._now + max(0.0, delay), next(self._ids), h))
        return h

    def run_until(self, deadline: float, stop: Callable[[], bool] | None = None) -> None:
        """Run events up to `deadline` (or until stop() holds after an event)."""
        heap = self._heap
        while heap and heap[0][0] <= deadline:
            when, _, h = heapq.heappop(heap)
            if h.cancelled:
                continue
            self._now = when
            h.fn(*h.args)
            if stop is not None and stop():
                return
        self._now = max(self._now, deadline)

    def run_for(self, seconds: float, stop: Callable[[], bool] | None = None) -> None:
        self.run_until(self._now + seconds, stop)

    def push(self, h: _Handle, delay: float) -> _Handle:
        """(Re)schedule a handle; one that is put off keeps working for cancel()."""
        heapq.heappush(self._heap, (self._now + max(0.0, delay), next(self._ids), h))
        return h


class NodeClock:
    """One node's view of the SimLoop: its timers run late by its processing delay."""

    def __init__(self, net: SimNetwork, addr: Addr):
        self._net = net
        self._loop = net.loop
        self._addr = addr

    def time(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, fn: Callable, *args) -> _Handle:
        h = _Handle(self._net.gate, ())
        h.args = (self._addr, h, fn, args)
        return self._loop.push(h, delay + self._net.processing_delay(self._addr))


class SimNetwork:
    def __init__(self, loop: SimLoop, rng: random.Random, *, latency=(0.0005, 0.003),
                 loss: float = 0.0, processing: float = 0.001, tcp_rto: float = 0.2):
        self.loop = loop
        self.rng = rng
        self.latency = latency
        self.loss = loss
        self.processing = processing
        self.tcp_rto = tcp_rto
        self._transports: dict[Addr, SimTransport] = {}
        self._slowness: dict[Addr, float] = {}
        self._link_loss: dict[Addr, float] = {}
        self._down: set[Addr] = set()
        self._paused: dict[Addr, float] = {}     # addr -> when it resumes

    def transport(self, addr: Addr) -> SimTransport:
        t = SimTransport(self, addr)
        self._transports[addr] = t
        self._down.discard(addr)
        return t

    def clock(self, addr: Addr) -> NodeClock:
        return NodeClock(self, addr)

    def set_slowness(self, addr: Addr, factor: float) -> None:
        self._slowness[addr] = factor

    def set_link_loss(self, addr: Addr, loss: float) -> None:
        """Extra UDP loss on every packet to or from addr (a node with a bad network)."""
        self._link_loss[addr] = loss

    def crash(self, addr: Addr) -> None:
        """The host vanishes: nothing reaches it or leaves it any more."""
        self._down.add(addr)

    def pause(self, addr: Addr, seconds: float) -> None:
        """SIGSTOP, then SIGCONT `seconds` later: the node runs nothing meanwhile, what is
        sent to it waits in its socket buffers, and its timers all fire late on resume."""
        self._paused[addr] = self.loop.time() + seconds

    def gate(self, addr: Addr, h: _Handle, fn: Callable, args: tuple) -> None:
        """Run a node's event, or put it off until the node resumes."""
        resume = self._paused.get(addr)
        if resume is not None:
            now = self.loop.time()
            if now < resume:
                self.loop.push(h, resume - now + self.processing_delay(addr))
                return
            del self._paused[addr]
        fn(*args)

    def _at(self, addr: Addr, delay: float, fn: Callable, *args) -> None:
        h = _Handle(self.gate, ())
        h.args = (addr, h, fn, args)
        self.loop.push(h, delay)

    def processing_delay(self, addr: Addr) -> float:
        mean = self.processing * self._slowness.get(addr, 1.0)
        return self.rng.expovariate(1.0 / mean) if mean > 0 else 0.0

    def _latency(self) -> float:
        lo, hi = self.latency
        return self.rng.uniform(lo, hi)

    def _tcp_leg(self, src: Addr, dst: Addr) -> float:
        loss = max(self.loss, self._link_loss.get(src, 0.0), self._link_loss.get(dst, 0.0))
        delay = self._latency()
        while self.rng.random() < loss:
            delay += self.tcp_rto
        return delay

    def send_packet(self, src: Addr, dst: Addr, data: bytes) -> None:
        down = self._down
        if src in down or dst in down or self.rng.random() < self.loss:
            return
        if self._link_loss and self.rng.random() < max(self._link_loss.get(src, 0.0),
                                                       self._link_loss.get(dst, 0.0)):
            return
        target = self._transports.get(dst)
        if target is None:
            return
        delay = self._latency() + self.processing_delay(dst)
        self._at(dst, delay, target.deliver_packet, data, src)

    def send_stream(self, src: Addr, dst: Addr, data: bytes, timeout: float,
                    on_reply: ReplyCallback | None) -> None:
        target = self._transports.get(dst)
        loop = self.loop
        if src in self._down:
            return
        if target is None or dst in self._down:
            if on_reply is not None:
                loop.call_later(timeout, on_reply, None)
            return
        # Handshake (one round trip) then the request.
        arrive = (self._tcp_leg(src, dst) + self._tcp_leg(dst, src) + self._tcp_leg(src, dst)
                  + self.processing_delay(dst))
        answered = [False]

        def serve() -> None:
            if dst in self._down or src in self._down:
                return
            reply = target.deliver_stream(data, src)
            if on_reply is None or reply is None or answered[0]:
                return
            back = self._tcp_leg(dst, src) + self.processing_delay(src)
            if arrive + back > timeout:
                return
            self._transports[src].bytes_received += len(reply) + 4
            self._at(src, back, finish, reply)

        def finish(reply: bytes | None) -> None:
            if not answered[0] and src not in self._down:
                answered[0] = True
                on_reply(reply)

        if arrive <= timeout:
            self._at(dst, arrive, serve)
        if on_reply is not None:
            self._at(src, timeout, finish, None)


class SimTransport(Transport):
    def __init__(self, net: SimNetwork, addr: Addr):
        self._net = net
        self.local_addr = addr
        self.bytes_sent = 0
        self.bytes_received = 0
        self._on_packet: PacketHandler | None = None
        self._on_stream: StreamHandler | None = None

    def attach(self, on_packet: PacketHandler, on_stream: StreamHandler) -> None:
        self._on_packet = on_packet
        self._on_stream = on_stream

    def send_packet(self, addr: Addr, data: bytes) -> None:
        self.bytes_sent += len(data)
        self._net.send_packet(self.local_addr, addr, data)

    def send_stream(self, addr: Addr, data: bytes, timeout: float,
                    on_reply: ReplyCallback | None) -> None:
        self.bytes_sent += len(data) + 4
        self._net.send_stream(self.local_addr, addr, data, timeout, on_reply)

    def deliver_packet(self, data: bytes, src: Addr) -> None:
        if self._on_packet is not None:
            self.bytes_received += len(data)
            self._on_packet(data, src)

    def deliver_stream(self, data: bytes, src: Addr) -> bytes | None:
        if self._on_stream is None:
            return None
        self.bytes_received += len(data) + 4
        reply = self._on_stream(data, src)
        if reply is not None:
            self.bytes_sent += len(reply) + 4
        return reply

    async def close(self) -> None:
        self._on_packet = None
        self._on_stream = None
