"""Gossip configuration: one documented dataclass and its presets (LAN, local, memberlist's defaults)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .keyring import Keyring


@dataclass
class GossipConfig:
    """Every knob of the membership protocol. Times are in seconds.

    Start from a preset (`lan()`, `local()`, `memberlist_defaults()`) and override fields with
    `dataclasses.replace` or `preset(name=..., ...)`.
    """

    # Unique name of this member in the cluster (the node's --node-name).
    name: str = ""
    # Address the UDP and TCP gossip sockets bind to (the node's -l address).
    bind_host: str = "127.0.0.1"
    # One port for both UDP (probes, gossip) and TCP (push-pull, fallback probes, big packets).
    bind_port: int = 7946
    # Address other members use to reach us; defaults to bind_host (required if that is 0.0.0.0).
    advertise_host: str | None = None

    # Failure detection. Every probe_interval one member is probed (round-robin over a list
    # shuffled once per pass). A direct ping must be acked within probe_timeout (the 99th
    # percentile RTT of the network), else indirect_checks members ping it on our behalf and a
    # TCP ping is tried, all of which must answer before the probe interval ends. Five
    # relays, not memberlist's three: at 10 % loss a relayed round trip (four packets) fails
    # a third of the time, and a probe with three relays then still fails for no reason
    # about once in 40 direct misses (the simulator's figures in docs/gossip.md).
    probe_interval: float = 0.3
    probe_timeout: float = 0.12
    indirect_checks: int = 5

    # Suspicion (Lifeguard). A suspect is declared dead after a timeout that starts at
    # suspicion_max_mult * min and shrinks, with each independent confirmation from another
    # member, towards min = suspicion_mult * max(1, log10(n)) * probe_interval. Confirmations
    # wanted to reach the minimum: suspicion_confirmations (memberlist ties it to
    # suspicion_mult - 2), at most n - 2 (none in clusters too small to give them).
    suspicion_mult: float = 2.0
    suspicion_max_mult: float = 6.0
    suspicion_confirmations: int = 2

    # Suspicion probes: a member that hears a fresh suspicion of another probes the suspect
    # itself right away with probability suspicion_probes / (n - 2), so that the cluster
    # spends about this many extra probes on it whatever its size: a dead suspect gets its
    # confirmations within a probe interval instead of waiting for the round-robin, and a
    # live one hears that it is suspected (the probe carries the suspicion) and refutes. 0 = off.
    suspicion_probes: float = 3.0

    # A probe timer that fires loop_stall seconds late or more means our own event loop was
    # stalled: its verdict waits loop_stall_grace more, so the acks already received are read
    # first, and the stall counts against our health score. 0 = off.
    loop_stall: float = 0.05
    loop_stall_grace: float = 0.005

    # Local health awareness (Lifeguard): the score runs from 0 to awareness_max_multiplier - 1
    # and scales our own probe timeout and interval by (score + 1) when we are the slow one.
    awareness_max_multiplier: int = 8

    # Dissemination: each update is retransmitted retransmit_mult * ceil(log10(n + 1)) times,
    # piggybacked on probes and sent every gossip_interval to gossip_nodes random members.
    retransmit_mult: int = 4
    gossip_interval: float = 0.1
    gossip_nodes: int = 3
    # Dead members still receive gossip for this long so that a falsely declared node can refute.
    gossip_to_the_dead_time: float = 30.0
    # Dead and left members stay listed (state dead/left) this long before they are forgotten.
    dead_node_retention: float = 60.0
    # Failed members (dead, not left) are asked for a push-pull every reconnect_interval
    # (jittered), for reconnect_timeout after they failed: serf's reconnect, which merges the
    # two sides of a partition that outlasted gossip_to_the_dead_time.
    reconnect_interval: float = 30.0
    reconnect_timeout: float = 24 * 3600.0

    # Anti-entropy: a full state exchange over TCP with one random member every
    # push_pull_interval (scaled up for clusters beyond 32 members, as memberlist does), 0 = off.
    push_pull_interval: float = 30.0
    # Timeout of one TCP exchange (connect, request, reply).
    tcp_timeout: float = 2.0

    # Join: retry the seeds with exponential backoff from join_retry_min up to join_retry_max.
    join_retry_min: float = 0.5
    join_retry_max: float = 10.0
    # Graceful leave waits at most this long for the leave message to be gossiped.
    leave_timeout: float = 2.0

    # Largest UDP payload we send; anything bigger goes over TCP instead.
    udp_buffer_size: int = 1400
    # Largest encoded node metadata; keeps every single gossip message inside one UDP packet.
    max_meta_bytes: int = 512

    # Authenticated encryption; None runs in the clear (a warning is logged at start-up).
    keyring: Keyring | None = field(default=None, repr=False)
    # Sealed packets older or newer than this (wall clock, seconds) are rejected as replays;
    # members' clocks must agree to within this window.
    replay_window: float = 30.0

    def advertise(self) -> tuple[str, int]:
        return (self.advertise_host or self.bind_host, self.bind_port)

    def retransmit_limit(self, n: int) -> int:
        return self.retransmit_mult * math.ceil(math.log10(n + 1))

    def suspicion_bounds(self, n: int) -> tuple[float, float, int]:
        """(min timeout, max timeout, confirmations wanted) for a cluster of n members."""
        scale = max(1.0, math.log10(max(1, n)))
        low = self.suspicion_mult * scale * self.probe_interval
        wanted = self.suspicion_confirmations
        if n - 2 < wanted:
            wanted = 0
        return low, self.suspicion_max_mult * low, max(0, wanted)

    def push_pull_period(self, n: int) -> float:
        # memberlist's pushPullScale: above 32 members the interval grows with log2(n / 32),
        # so the cluster-wide TCP sync load stays bounded.
        if n <= 32:
            return self.push_pull_interval
        return self.push_pull_interval * (math.ceil(math.log2(n) - math.log2(32)) + 1)


def lan(**overrides) -> GossipConfig:
    """Our defaults for a LAN or a container network: a crash is dead everywhere in about
    1.2 s at 5 members and within 5 s at 1,000 (docs/gossip.md has the measurements)."""
    return dataclasses.replace(GossipConfig(), **overrides)


def local(**overrides) -> GossipConfig:
    """Loopback / one machine: tighter timers (RTTs are tiny), frequent anti-entropy."""
    base = GossipConfig(
        probe_interval=0.3,
        probe_timeout=0.12,
        gossip_interval=0.1,
        # A longer suspicion than lan's: many nodes of a test suite share a loaded machine.
        suspicion_mult=3.0,
        push_pull_interval=5.0,
        tcp_timeout=1.0,
        join_retry_min=0.2,
        join_retry_max=2.0,
        leave_timeout=1.0,
        gossip_to_the_dead_time=5.0,
        reconnect_interval=1.0,
    )
    return dataclasses.replace(base, **overrides)


def memberlist_defaults(**overrides) -> GossipConfig:
    """hashicorp/memberlist's published DefaultLANConfig, as the comparison row."""
    base = GossipConfig(
        probe_interval=1.0,
        probe_timeout=0.5,
        indirect_checks=3,
        suspicion_mult=4.0,
        suspicion_max_mult=6.0,
        suspicion_confirmations=2,
        suspicion_probes=0.0,
        loop_stall=0.0,
        awareness_max_multiplier=8,
        retransmit_mult=4,
        gossip_interval=0.2,
        gossip_nodes=3,
        push_pull_interval=30.0,
        tcp_timeout=10.0,
    )
    return dataclasses.replace(base, **overrides)


PRESETS = {"lan": lan, "local": local, "memberlist": memberlist_defaults}
