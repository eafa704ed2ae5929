"""The membership protocol: SWIM probing, Lifeguard suspicion, dissemination, push-pull, lifecycle.

All protocol logic is callback-driven on a `loop` that offers time() and call_later() (an
asyncio/uvloop event loop, or the simulator's virtual clock), so the simulator runs this very
code. The async methods (start, join, leave, shutdown) are thin wrappers for the node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
import time
from collections.abc import Callable

from . import messages as m
from .awareness import Awareness
from .broadcast import BroadcastQueue
from .config import GossipConfig
from .envelope import Envelope, EnvelopeError
from .probe import Probe, Relay, StallGuard
from .state import Member, MetaError, NodeMeta, NodeState, State
from .suspicion import Suspicion
from .transport import Addr, Transport

log = logging.getLogger(__name__)

# The `stats gossip` counters, besides the gauges members_<state>, incarnation, health_score,
# broadcast_queue and the transport's bytes_sent / bytes_received.
COUNTERS = {
    "probes": "members probed by us",
    "probes_failed": "probes with no ack (direct, indirect or TCP) before the deadline",
    "indirect_probes": "ping-req messages sent to relays",
    "tcp_fallback_probes": "TCP pings tried after the UDP ping went unanswered",
    "tcp_fallback_ok": "probes that only the TCP ping saved",
    "acks_received": "acks received",
    "nacks_received": "nacks received from relays",
    "suspicions": "members we suspected after a failed probe",
    "refutations": "times we out-bid a claim about ourselves",
    "deaths_declared": "suspects we declared dead when their timer ran out",
    "packets_sent": "packets sent (UDP, or TCP when too large)",
    "packets_received": "packets received that authenticated and decoded",
    "packets_via_tcp": "packets too large for UDP, sent over TCP instead",
    "push_pulls": "full state exchanges we started",
    "push_pull_failures": "full state exchanges that got no valid reply",
    "dropped_auth": "packets dropped: failed authentication or wrong (or missing) key",
    "dropped_replay": "packets dropped: replayed or outside the replay window",
    "dropped_malformed": "packets dropped: authenticated but undecodable",
    "wrong_target_pings": "pings addressed to another name at our address",
    "address_conflicts": "alive claims for a live member's name from another address",
    "loop_stalls": "probe timers that fired late (our loop stalled) and waited for input",
    "suspicion_probes": "probes of a member right after hearing it suspected",
}


class Listener:
    """Membership events, delivered on the gossip loop; override what you need.

    on_join: a member became alive (first seen, or back from dead/left; also ourselves at start).
    on_leave: a member was declared dead or left gracefully (member.state says which).
    on_update: an alive member's metadata changed (including our own via update_meta).
    """

    def on_join(self, member: Member) -> None:
        pass

    def on_leave(self, member: Member) -> None:
        pass

    def on_update(self, member: Member) -> None:
        pass


class Memberlist:
    def __init__(self, config: GossipConfig, transport: Transport,
                 listener: Listener | None = None, *, meta: NodeMeta | None = None,
                 loop=None, rng: random.Random | None = None,
                 wall_clock: Callable[[], float] = time.time):
        if not config.name:
            raise ValueError("a member needs a name")
        self.config = config
        self.name = config.name
        self._transport = transport
        self._listener = listener or Listener()
        self._loop = loop
        self._rng = rng or random.Random()
        self._envelope = Envelope(config.keyring, config.replay_window, wall_clock)
        meta_bytes = (meta or NodeMeta()).encode()
        self._check_meta(meta_bytes)
        host, port = config.advertise()
        self._me = NodeState(self.name, host, port, 0, State.ALIVE, meta_bytes, 0.0)
        self._nodes: dict[str, NodeState] = {}
        # Probe order: shuffled once per pass; new members go to a random slot so that a
        # member joining everywhere at once is not probed by everyone at the same moment.
        self._order: list[NodeState] = []
        self._probe_index = 0
        self._seq = self._rng.randrange(1 << 32)
        self._acks: dict[int, Probe | Relay] = {}
        self._suspicions: dict[str, Suspicion] = {}
        self._awareness = Awareness(config.awareness_max_multiplier)
        self._guard: StallGuard | None = None   # needs the loop: made in begin()
        self._queue = BroadcastQueue(lambda: config.retransmit_limit(len(self._nodes)))
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._handles: dict[str, object] = {}
        self._running = False
        self._leaving = False
        transport.attach(self._on_packet, self._on_stream)

    # ----------------------------------------------------------------- lifecycle (async API)

    async def start(self) -> None:
        """Bind the transport and start probing and gossiping (alone until join)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        await self._transport.open()
        if self.config.bind_port == 0:
            self._me.port = self._transport.local_addr[1]
            self.config = dataclasses.replace(self.config, bind_port=self._me.port)
        self.begin()

    async def join(self, seeds: str | list[str], *, retry: bool = True) -> int:
        """Push-pull with every address the seeds resolve to; the number that answered.

        Seeds are "host[:port]" (a comma-separated string or a list); a DNS name counts once
        for each address it resolves to. With retry, tries again with exponential backoff
        until one answers. Seeds that are ourselves are skipped; if nothing else is left,
        we are the first member and return 0.
        """
        if isinstance(seeds, str):
            seeds = [s for s in seeds.split(",") if s.strip()]
        delay = self.config.join_retry_min
        while True:
            addrs, only_self = await self._resolve(seeds)
            if only_self:
                return 0
            answered = await self._join_once(addrs) if addrs else 0
            if answered or not retry:
                return answered
            log.info("gossip join: no seed answered, retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.join_retry_max)

    async def _join_once(self, addrs: list[Addr]) -> int:
        done = self._loop.create_future()
        self.join_nowait(addrs, lambda n: done.done() or done.set_result(n))
        return await done

    async def leave(self) -> None:
        """Announce a graceful leave and wait (at most leave_timeout) until it was gossiped."""
        done = self._loop.create_future()
        self.leave_nowait(lambda: done.done() or done.set_result(None))
        await done

    async def shutdown(self) -> None:
        """Stop all timers and close the sockets; without leave() peers will see us die."""
        self.stop()
        await self._transport.close()

    # ------------------------------------------------------------ lifecycle (callback API)

    def begin(self) -> None:
        """Start the protocol timers; the transport must be open (the simulator calls this)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        cfg = self.config
        self._guard = StallGuard(self._loop, cfg.loop_stall, cfg.loop_stall_grace,
                                 self._stalled)
        if self._envelope.encrypted:
            log.info("gossip: packets authenticated and encrypted (AES-GCM)")
        else:
            log.warning("gossip runs in the clear: no cluster key file given; anyone who can "
                        "reach the gossip port can join or forge membership")
        self._running = True
        now = self._loop.time()
        self._me.state_change = now
        self._add_node(self._me)
        self._broadcast_alive_me()
        self._listener.on_join(self._me.snapshot())
        # Random phases keep members that start together from probing in lockstep.
        self._schedule("probe", self._rng.uniform(0, cfg.probe_interval), self._probe_tick)
        self._schedule("gossip", self._rng.uniform(0, cfg.gossip_interval), self._gossip_tick)
        if cfg.push_pull_interval > 0:
            self._schedule("push_pull", self._rng.uniform(0.5, 1.0) * cfg.push_pull_interval,
                           self._push_pull_tick)

    def preload(self, states: list[m.PushState]) -> None:
        """Install an already-converged view silently (no events, nothing gossiped).

        The simulator's warm start: a thousand members joining one by one would spend the
        first minutes of every run gossiping a million alive messages.
        """
        now = self._loop.time()
        for s in states:
            if s.name not in self._nodes:
                self._add_node(NodeState(s.name, s.host, s.port, s.incarnation, State(s.state),
                                         s.meta, now))

    def join_nowait(self, addrs: list[Addr], on_done: Callable[[int], None]) -> None:
        """Push-pull with each address; on_done(number that answered) once all finished."""
        pending = [len(addrs), 0]
        if not addrs:
            on_done(0)
            return

        def finished(ok: bool) -> None:
            pending[0] -= 1
            pending[1] += ok
            if pending[0] == 0:
                on_done(pending[1])

        for addr in addrs:
            self._push_pull(addr, True, finished)

    def leave_nowait(self, on_done: Callable[[], None]) -> None:
        if self._leaving:
            on_done()
            return
        self._leaving = True
        me = self._me
        me.set_state(State.LEFT, self._loop.time())
        fired = [False]

        def finish() -> None:
            if not fired[0]:
                fired[0] = True
                on_done()

        if not any(n.state <= State.SUSPECT for n in self._nodes.values() if n is not me):
            finish()
            return
        self._queue.queue(me.name, m.encode(m.Dead(me.incarnation, me.name, me.name)), finish)
        self._loop.call_later(self.config.leave_timeout, finish)
        # Don't wait for the next gossip tick: the process may be about to exit.
        self._gossip()

    def forget(self, name: str) -> bool:
        """serf's force-leave: a member declared dead is marked left, here and, by a leave in
        its name, everywhere (a push-pull carries it to those the broadcast missed). False
        for this node, an unknown member, and one not dead: the living refute a leave."""
        node = self._nodes.get(name)
        if node is None or node is self._me or node.state < State.DEAD:
            return False
        self._dead(m.Dead(node.incarnation, name, name))
        return True

    def stop(self) -> None:
        """Cancel every timer; the member falls silent (a crash, as far as peers can tell)."""
        self._running = False
        for h in self._handles.values():
            h.cancel()
        self._handles.clear()
        for s in self._suspicions.values():
            s.cancel()
        self._suspicions.clear()
        for h in self._acks.values():
            for t in (h.timer,) if isinstance(h, Probe) else (h.nack_timer, h.expiry):
                if t is not None:
                    t.cancel()
        self._acks.clear()

    # ------------------------------------------------------------------------ queries

    def members(self) -> list[Member]:
        """Every member we know, ourselves included, sorted by name."""
        return [self._nodes[k].snapshot() for k in sorted(self._nodes)]

    def member(self, name: str) -> Member | None:
        node = self._nodes.get(name)
        return node.snapshot() if node else None

    @property
    def local_member(self) -> Member:
        return self._me.snapshot()

    @property
    def health_score(self) -> int:
        return self._awareness.score

    def update_meta(self, **changes) -> Member:
        """Change our metadata (client_host, client_port, status, weight, tags) and gossip it."""
        meta = dataclasses.replace(self._me.decoded_meta(), **changes)
        encoded = meta.encode()
        self._check_meta(encoded)
        self._me.meta = encoded
        self._me.incarnation += 1
        self._broadcast_alive_me()
        snap = self._me.snapshot()
        self._listener.on_update(snap)
        return snap

    def stats(self) -> dict[str, int]:
        """Counters for `stats gossip` (names stable, values monotonic except the gauges)."""
        by_state = dict.fromkeys(State, 0)
        for n in self._nodes.values():
            by_state[n.state] += 1
        out = {f"members_{s.label}": by_state[s] for s in State}
        out["incarnation"] = self._me.incarnation
        out["health_score"] = self._awareness.score
        out["broadcast_queue"] = len(self._queue)
        out.update(self._counters)
        out["bytes_sent"] = self._transport.bytes_sent
        out["bytes_received"] = self._transport.bytes_received
        return out

    # ---------------------------------------------------------------------- timers

    def _schedule(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        self._handles[name] = self._loop.call_later(delay, fn)

    def _probe_tick(self) -> None:
        if not self._running:
            return
        self._probe()
        # A slow node probes less often too, not only waits longer.
        self._schedule("probe", self._awareness.scale(self.config.probe_interval),
                       self._probe_tick)

    def _gossip_tick(self) -> None:
        if not self._running:
            return
        self._gossip()
        self._schedule("gossip", self.config.gossip_interval, self._gossip_tick)

    def _push_pull_tick(self) -> None:
        if not self._running:
            return
        peers = self._random_nodes(1, lambda n: n.state == State.ALIVE)
        if peers:
            self._push_pull(peers[0].addr, False, None)
        self._schedule("push_pull", self.config.push_pull_period(len(self._nodes)),
                       self._push_pull_tick)

    # ---------------------------------------------------------------------- probing

    def _probe(self) -> None:
        checked = 0
        while checked <= len(self._order):
            if self._probe_index >= len(self._order):
                self._reset_order()
                self._probe_index = 0
                checked += 1
                continue
            node = self._order[self._probe_index]
            self._probe_index += 1
            if node is self._me or node.state >= State.DEAD:
                checked += 1
                continue
            self._probe_node(node)
            return

    def _reset_order(self) -> None:
        now = self._loop.time()
        keep = []
        for n in self._order:
            if n.state >= State.DEAD and now - n.state_change > self.config.dead_node_retention:
                del self._nodes[n.name]
            else:
                keep.append(n)
        self._rng.shuffle(keep)
        self._order = keep

    def _probe_node(self, node: NodeState, verdict: bool = False) -> None:
        seq = self._next_seq()
        cfg = self.config
        probe = Probe(node, seq, self._loop.time() + self._awareness.scale(cfg.probe_interval),
                       verdict)
        self._acks[seq] = probe
        self._counters["probes"] += 1
        ping = m.Ping(seq, node.name)
        if node.state == State.SUSPECT:
            # Lifeguard's buddy system: tell the suspect it is suspected, so it can refute even
            # if gossip never brought it the news. The suspect goes first so that the
            # refutation is queued before the ack that carries it back is built.
            self._send(node.addr, m.Suspect(node.incarnation, node.name, self.name), ping)
        else:
            self._send(node.addr, ping)
        self._guard.arm(probe, self._awareness.scale(cfg.probe_timeout), self._probe_indirect)

    def _probe_indirect(self, probe: Probe) -> None:
        if probe.done:
            return
        node = probe.node
        peers = self._random_nodes(self.config.indirect_checks,
                                   lambda n: n.state == State.ALIVE and n is not node)
        req = m.IndirectPing(probe.seq, node.name, node.host, node.port, True)
        for peer in peers:
            self._send(peer.addr, req)
        probe.expected_nacks = len(peers)
        self._counters["indirect_probes"] += len(peers)
        left = max(0.0, probe.deadline - self._loop.time())
        # TCP gets through where UDP is filtered or lossy; it only clears the probe, it does
        # not count as a healthy UDP path.
        self._counters["tcp_fallback_probes"] += 1
        ping = self._envelope.seal(m.encode(m.Ping(probe.seq, node.name)))
        self._transport.send_stream(node.addr, ping, left,
                                    lambda reply: self._fallback_reply(probe, reply))
        self._guard.arm(probe, left, self._probe_deadline)

    def _fallback_reply(self, probe: Probe, reply: bytes | None) -> None:
        if probe.done or reply is None:
            return
        msg = self._open_stream(reply)
        if type(msg) is m.Ack and msg.seq == probe.seq and not probe.rescued:
            self._counters["tcp_fallback_ok"] += 1
            probe.rescued = True

    def _probe_succeeded(self, probe: Probe) -> None:
        if probe.done:
            return
        probe.done = True
        if probe.timer is not None:
            probe.timer.cancel()
        self._acks.pop(probe.seq, None)
        self._awareness.apply(-1)
        node = probe.node
        if probe.verdict and node.state == State.SUSPECT and self._running:
            # It answers but its refutation has not reached us: wait one more minimum
            # period for the alive it sent back to us directly, then check again.
            low, _, _ = self.config.suspicion_bounds(len(self._nodes))
            self._arm_suspicion(node, node.incarnation, self.name, 1, low, low)

    def _probe_deadline(self, probe: Probe) -> None:
        """No ack over UDP before the deadline."""
        if probe.done:
            return
        probe.done = True
        self._acks.pop(probe.seq, None)
        # Relays that answered neither ack nor nack suggest the problem is at our end. With no
        # relay to ask, an outright failure counts against us as a plain health signal.
        missing = probe.expected_nacks - probe.nacks
        if probe.rescued:
            # The member lives (TCP reached it), so no suspicion.
            self._awareness.apply(missing)
            return
        self._counters["probes_failed"] += 1
        self._awareness.apply(missing if probe.expected_nacks else 1)
        node = probe.node
        if not self._running or self._nodes.get(node.name) is not node:
            return
        if probe.verdict:
            if node.state == State.SUSPECT:
                self._declare_dead(node)
        elif node.state <= State.SUSPECT:
            self._suspect(m.Suspect(node.incarnation, node.name, self.name))

    def _stalled(self) -> None:
        self._counters["loop_stalls"] += 1
        self._awareness.apply(1)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    # ------------------------------------------------------------------ dissemination

    def _gossip(self) -> None:
        if not self._queue:
            return
        now = self._loop.time()
        horizon = self.config.gossip_to_the_dead_time
        targets = self._random_nodes(
            self.config.gossip_nodes,
            lambda n: n.state <= State.SUSPECT
            or (n.state == State.DEAD and now - n.state_change < horizon))
        space = self.config.udp_buffer_size - self._envelope.overhead()
        for node in targets:
            frames = self._queue.get(space, oversize=True)
            if not frames:
                return
            self._send_payload(node.addr, b"".join(frames))

    def _send(self, addr: Addr, *msgs: m.Message) -> None:
        """The messages plus as many pending broadcasts as fit in a UDP packet."""
        first = b"".join(m.frame(m.encode(msg)) for msg in msgs)
        space = self.config.udp_buffer_size - self._envelope.overhead() - len(first)
        extra = self._queue.get(space) if space > 0 else []
        self._send_payload(addr, first + b"".join(extra) if extra else first)

    def _send_payload(self, addr: Addr, payload: bytes) -> None:
        data = self._envelope.seal(payload)
        self._counters["packets_sent"] += 1
        if len(data) <= self.config.udp_buffer_size:
            self._transport.send_packet(addr, data)
            return
        self._counters["packets_via_tcp"] += 1
        self._transport.send_stream(addr, self._envelope.seal(m.encode_stream_packet(payload)),
                                    self.config.tcp_timeout, None)

    def _broadcast_alive_me(self) -> None:
        me = self._me
        self._queue.queue(me.name, m.encode(m.Alive(me.incarnation, me.name, me.host, me.port,
                                                    me.meta)))

    def _check_meta(self, encoded: bytes) -> None:
        if len(encoded) > self.config.max_meta_bytes:
            raise MetaError(f"metadata is {len(encoded)} bytes, limit {self.config.max_meta_bytes}")

    # ----------------------------------------------------------------- anti-entropy

    def _push_pull(self, addr: Addr, join: bool, on_done: Callable[[bool], None] | None) -> None:
        self._counters["push_pulls"] += 1
        req = self._envelope.seal(m.encode(m.PushPull(join, self._local_state())))
        self._transport.send_stream(addr, req, self.config.tcp_timeout,
                                    lambda reply: self._push_pull_reply(reply, on_done))

    def _push_pull_reply(self, reply: bytes | None, on_done) -> None:
        msg = self._open_stream(reply) if reply is not None else None
        ok = type(msg) is m.PushPull
        if ok:
            self._merge(msg.states)
        else:
            self._counters["push_pull_failures"] += 1
        if on_done is not None:
            on_done(ok)

    def _local_state(self) -> list[m.PushState]:
        return [m.PushState(n.name, n.host, n.port, n.incarnation, int(n.state), n.meta)
                for n in self._nodes.values()]

    def _merge(self, states: list[m.PushState]) -> None:
        nodes = self._nodes
        for s in states:
            local = nodes.get(s.name)
            if (local is not None and local is not self._me and local.incarnation == s.incarnation
                    and local.state == s.state):
                continue
            if s.state == State.ALIVE:
                self._alive(m.Alive(s.incarnation, s.name, s.host, s.port, s.meta))
            elif s.state == State.LEFT:
                self._dead(m.Dead(s.incarnation, s.name, s.name))
            else:
                # A remote verdict of dead only makes us suspect: we give the member the chance
                # to refute rather than trust one peer's view.
                self._suspect(m.Suspect(s.incarnation, s.name, self.name))

    # ------------------------------------------------------------------ receiving

    def _on_packet(self, data: bytes, addr: Addr) -> None:
        if not self._running:
            return
        payload = self._open(data)
        if payload is None:
            return
        try:
            msgs = m.decode_payload(payload)
        except m.MessageError:
            self._counters["dropped_malformed"] += 1
            return
        self._counters["packets_received"] += 1
        for msg in msgs:
            self._handle(msg, addr)

    def _on_stream(self, data: bytes, addr: Addr) -> bytes | None:
        if not self._running:
            return None
        msg = self._open_stream(data)
        if msg is None:
            return None
        if isinstance(msg, list):
            self._counters["packets_received"] += 1
            for one in msg:
                self._handle(one, addr)
            return None
        t = type(msg)
        if t is m.PushPull:
            reply = self._envelope.seal(m.encode(m.PushPull(False, self._local_state())))
            self._merge(msg.states)
            return reply
        if t is m.Ping:
            if msg.target != self.name:
                self._counters["wrong_target_pings"] += 1
                return None
            return self._envelope.seal(m.encode(m.Ack(msg.seq)))
        self._handle(msg, addr)
        return None

    def _open(self, data: bytes) -> bytes | None:
        try:
            return self._envelope.open(data)
        except EnvelopeError as exc:
            self._counters["dropped_" + exc.reason] += 1
            return None

    def _open_stream(self, data: bytes) -> m.Message | list[m.Message] | None:
        payload = self._open(data)
        if payload is None:
            return None
        try:
            return m.decode_stream(payload)
        except m.MessageError:
            self._counters["dropped_malformed"] += 1
            return None

    def _handle(self, msg: m.Message, addr: Addr) -> None:
        t = type(msg)
        if t is m.Ping:
            if msg.target != self.name:
                self._counters["wrong_target_pings"] += 1
                return
            self._send(addr, m.Ack(msg.seq))
        elif t is m.Ack:
            self._counters["acks_received"] += 1
            handler = self._acks.get(msg.seq)
            if isinstance(handler, Probe):
                self._probe_succeeded(handler)
            elif handler is not None:
                self._relay_ack(handler)
        elif t is m.Nack:
            self._counters["nacks_received"] += 1
            handler = self._acks.get(msg.seq)
            if isinstance(handler, Probe):
                handler.nacks += 1
        elif t is m.Alive:
            self._alive(msg)
        elif t is m.Suspect or t is m.Dead:
            me = self._me
            if msg.name == me.name and msg.incarnation < me.incarnation and not self._leaving:
                # Stale news about us, so our refutation missed this member: answer it directly
                # rather than hope the next gossip round reaches it.
                self._send(addr, m.Alive(me.incarnation, me.name, me.host, me.port, me.meta))
            elif t is m.Suspect:
                self._suspect(msg)
            else:
                self._dead(msg)
        elif t is m.IndirectPing:
            self._relay_ping(msg, addr)
        else:
            self._counters["dropped_malformed"] += 1

    def _relay_ping(self, req: m.IndirectPing, requester: Addr) -> None:
        seq = self._next_seq()
        relay = Relay(requester, req.seq)
        self._acks[seq] = relay
        self._send((req.host, req.port), m.Ping(seq, req.target))
        cfg = self.config
        if req.nack:
            relay.nack_timer = self._loop.call_later(cfg.probe_timeout, self._send, requester,
                                                     m.Nack(req.seq))
        relay.expiry = self._loop.call_later(cfg.probe_interval, self._acks.pop, seq, None)

    def _relay_ack(self, relay: Relay) -> None:
        if relay.nack_timer is not None:
            relay.nack_timer.cancel()
            relay.nack_timer = None
        self._send(relay.requester, m.Ack(relay.seq))

    # ------------------------------------------------------------- state machine

    def _add_node(self, node: NodeState) -> None:
        self._nodes[node.name] = node
        order = self._order
        order.append(node)
        i = self._rng.randrange(len(order))
        order[i], order[-1] = order[-1], order[i]

    def _refute(self, incarnation: int, unhealthy: bool) -> None:
        """Out-bid a claim about ourselves with a higher incarnation of our alive message."""
        me = self._me
        me.incarnation = max(me.incarnation, incarnation) + 1
        self._broadcast_alive_me()
        self._counters["refutations"] += 1
        if unhealthy:
            # Being suspected is a hint that we are the slow one.
            self._awareness.apply(1)

    def _alive(self, a: m.Alive) -> None:
        if a.name == self.name:
            me = self._me
            if self._leaving or a.incarnation < me.incarnation:
                return
            if (a.incarnation == me.incarnation and a.meta == me.meta
                    and a.host == me.host and a.port == me.port):
                return
            # A newer or different version of us circulates: an earlier life of this node.
            self._refute(a.incarnation, unhealthy=False)
            return
        node = self._nodes.get(a.name)
        now = self._loop.time()
        if node is None:
            node = NodeState(a.name, a.host, a.port, a.incarnation, State.ALIVE, a.meta, now)
            self._add_node(node)
            self._queue.queue(a.name, m.encode(a))
            self._listener.on_join(node.snapshot())
            return
        reclaimed = False
        if a.host != node.host or a.port != node.port:
            if node.state <= State.SUSPECT:
                # Two live processes claim one name; keep the one we know.
                self._counters["address_conflicts"] += 1
                return
            # The name is free again (its holder died or left): a restart at a new address
            # starts its incarnations over, so it may take the name whatever its incarnation.
            node.host, node.port = a.host, a.port
            reclaimed = True
        if a.incarnation <= node.incarnation and not reclaimed:
            return
        old_state, old_meta = node.state, node.meta
        node.incarnation = a.incarnation
        node.meta = a.meta
        node.set_state(State.ALIVE, now)
        timer = self._suspicions.pop(a.name, None)
        if timer is not None:
            timer.cancel()
        self._queue.queue(a.name, m.encode(a))
        if old_state >= State.DEAD:
            self._listener.on_join(node.snapshot())
        elif old_meta != a.meta:
            self._listener.on_update(node.snapshot())

    def _suspect(self, s: m.Suspect) -> None:
        node = self._nodes.get(s.name)
        if node is None or s.incarnation < node.incarnation:
            return
        if node is self._me:
            if not self._leaving:
                self._refute(s.incarnation, unhealthy=True)
            return
        if node.state == State.SUSPECT:
            timer = self._suspicions.get(s.name)
            if timer is not None and timer.confirm(s.sender):
                self._queue.queue(s.name, m.encode(s))
            return
        if node.state != State.ALIVE:
            return
        self._counters["suspicions"] += s.sender == self.name
        self._queue.queue(s.name, m.encode(s))
        node.incarnation = s.incarnation
        node.set_state(State.SUSPECT, self._loop.time())
        low, high, wanted = self.config.suspicion_bounds(len(self._nodes))
        self._arm_suspicion(node, s.incarnation, s.sender, wanted, low, high)
        extra = self.config.suspicion_probes
        if s.sender != self.name and extra > 0 \
                and self._rng.random() * max(1, len(self._nodes) - 2) < extra \
                and not any(type(p) is Probe and p.node is node for p in self._acks.values()):
            self._counters["suspicion_probes"] += 1
            self._probe_node(node)

    def _arm_suspicion(self, node: NodeState, incarnation: int, sender: str, wanted: int,
                       low: float, high: float) -> None:
        old = self._suspicions.get(node.name)
        if old is not None:
            old.cancel()
        timer = Suspicion(self._loop, sender, wanted, low, high,
                          lambda: self._suspicion_expired(node, incarnation, timer))
        self._suspicions[node.name] = timer

    def _suspicion_expired(self, node: NodeState, incarnation: int, timer: Suspicion) -> None:
        if self._suspicions.get(node.name) is not timer:
            return
        del self._suspicions[node.name]
        if (self._nodes.get(node.name) is not node or node.state != State.SUSPECT
                or node.incarnation != incarnation):
            return
        if timer.confirmed:
            self._declare_dead(node)
        else:
            # Nobody else confirmed this suspicion in all that time: weak evidence, and the
            # likeliest story is a refutation that missed us. Check once more ourselves.
            self._probe_node(node, verdict=True)

    def _declare_dead(self, node: NodeState) -> None:
        self._counters["deaths_declared"] += 1
        self._dead(m.Dead(node.incarnation, node.name, self.name))

    def _dead(self, d: m.Dead) -> None:
        node = self._nodes.get(d.name)
        if node is None or d.incarnation < node.incarnation or node.state == State.LEFT:
            return
        if node.state == State.DEAD and d.sender != d.name:
            return      # dead already; only a leave (its own, or forget's) moves it on
        if node is self._me:
            if not self._leaving:
                self._refute(d.incarnation, unhealthy=d.sender != d.name)
            return
        self._queue.queue(d.name, m.encode(d))
        node.incarnation = d.incarnation
        node.set_state(State.LEFT if d.sender == d.name else State.DEAD, self._loop.time())
        timer = self._suspicions.pop(d.name, None)
        if timer is not None:
            timer.cancel()
        self._listener.on_leave(node.snapshot())

    # ------------------------------------------------------------------ helpers

    def _random_nodes(self, k: int, accept: Callable[[NodeState], bool]) -> list[NodeState]:
        """Up to k distinct members other than ourselves that pass `accept`."""
        order = self._order
        n = len(order)
        if n <= 4 * k + 8:
            pool = [x for x in order if x is not self._me and accept(x)]
            return self._rng.sample(pool, min(k, len(pool)))
        # Large tables: rejection sampling costs O(k), not O(n), per call.
        picked: list[NodeState] = []
        for _ in range(3 * n):
            x = order[self._rng.randrange(n)]
            if x is not self._me and x not in picked and accept(x):
                picked.append(x)
                if len(picked) == k:
                    break
        return picked

    async def _resolve(self, seeds: list[str]) -> tuple[list[Addr], bool]:
        """(addresses to try, whether every seed was only ourselves)."""
        me = (self._me.host, self._me.port)
        addrs: list[Addr] = []
        any_other = False
        for seed in seeds:
            host, _, port_s = seed.strip().rpartition(":")
            if not host:
                host, port_s = port_s, ""
            port = int(port_s) if port_s else self.config.bind_port
            try:
                infos = await self._loop.getaddrinfo(host.strip("[]"), port,
                                                     type=socket.SOCK_STREAM)
            except OSError as exc:
                log.warning("gossip join: cannot resolve %s: %s", seed, exc)
                any_other = True
                continue
            for info in infos:
                addr = (info[4][0], info[4][1])
                if addr == me:
                    continue
                any_other = True
                if addr not in addrs:
                    addrs.append(addr)
        return addrs, not any_other
