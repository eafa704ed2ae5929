"""The cluster simulator: many Memberlists (the real protocol code) on one simulated network.

`python -m pycache_cluster.gossip.sim --nodes 1000` runs, for each configuration and loss
rate, a warm cluster through an update, a join, a graceful leave and a crash, and reports how
long each took to reach 99.9 % and 100 % of the live members, plus false dead declarations and
gossip bytes per node per second. `--soak SECONDS` adds a run with slowed nodes that only
counts false positives. See --help for the knobs; the network model is in simnet.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import random
import sys
import time
from collections.abc import Callable

from . import messages as m
from .config import PRESETS, GossipConfig
from .keyring import Keyring
from .memberlist import Listener, Memberlist
from .simnet import SimLoop, SimNetwork
from .state import Member, NodeMeta, State


class _Observer(Listener):
    def __init__(self, cluster: SimCluster, name: str):
        self._cluster = cluster
        self._name = name

    def on_join(self, member: Member) -> None:
        self._cluster.record("join", self._name, member)

    def on_leave(self, member: Member) -> None:
        self._cluster.record("dead" if member.state == State.DEAD else "left", self._name, member)

    def on_update(self, member: Member) -> None:
        self._cluster.record("update", self._name, member)


class SimCluster:
    """Members on a SimNetwork, with crash/leave/update/join and event bookkeeping."""

    def __init__(self, config: GossipConfig, *, seed: int = 1, loss: float = 0.0,
                 latency=(0.0005, 0.003), processing: float = 0.001,
                 keyring: Keyring | None = None):
        self.config = config
        self.loop = SimLoop()
        self.rng = random.Random(seed)
        self.net = SimNetwork(self.loop, random.Random(self.rng.random()), latency=latency,
                              loss=loss, processing=processing)
        self.keyring = keyring
        self.members: dict[str, Memberlist] = {}
        self.addrs: dict[str, tuple[str, int]] = {}
        self.gone: set[str] = set()  # crashed, left or stopped: not expected to be alive
        # (kind, subject) -> {observer: first time seen}; only for subjects being watched.
        self.watched: dict[tuple[str, str], dict[str, float]] = {}
        self.false_dead: list[tuple[float, str, str]] = []
        self.wall_clock_epoch = 1_700_000_000.0

    def addr_of(self, i: int) -> tuple[str, int]:
        return (f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", 7946)

    def add(self, name: str, addr: tuple[str, int] | None = None,
            keyring: Keyring | None | bool = True) -> Memberlist:
        """Start a member (not yet joined). keyring=True means the cluster's keyring."""
        addr = addr or self.addr_of(len(self.addrs) + 1)
        cfg = dataclasses.replace(self.config, name=name, bind_host=addr[0], bind_port=addr[1],
                                  keyring=self.keyring if keyring is True else keyring or None)
        ml = Memberlist(cfg, self.net.transport(addr), _Observer(self, name),
                        meta=NodeMeta(client_host=addr[0], client_port=11211),
                        loop=self.net.clock(addr), rng=random.Random(self.rng.random()),
                        wall_clock=lambda: self.wall_clock_epoch + self.loop.time())
        self.members[name] = ml
        self.addrs[name] = addr
        self.gone.discard(name)
        ml.begin()
        return ml

    def warm_start(self, n: int, prefix: str = "n") -> None:
        """n members that already know each other (as after a converged join)."""
        names = [f"{prefix}{i}" for i in range(n)]
        for name in names:
            self.add(name)
        states = [m.PushState(ml.name, *self.addrs[ml.name], 0, int(State.ALIVE),
                              ml.local_member.meta.encode()) for ml in self.members.values()]
        for ml in self.members.values():
            ml.preload(states)

    def join(self, name: str, seeds: list[str]) -> None:
        self.members[name].join_nowait([self.addrs[s] for s in seeds], lambda n: None)

    def crash(self, name: str) -> None:
        self.net.crash(self.addrs[name])
        self.members[name].stop()
        self.gone.add(name)

    def pause(self, name: str, seconds: float) -> None:
        """SIGSTOP the member, SIGCONT it `seconds` later."""
        self.net.pause(self.addrs[name], seconds)

    def leave(self, name: str) -> None:
        ml = self.members[name]
        self.gone.add(name)

        def left() -> None:
            ml.stop()
            self.net.crash(self.addrs[name])

        ml.leave_nowait(left)

    def live(self) -> list[str]:
        return [n for n in self.members if n not in self.gone]

    def run(self, seconds: float, stop: Callable[[], bool] | None = None) -> None:
        self.loop.run_for(seconds, stop)

    # -------------------------------------------------------------- bookkeeping

    def watch(self, kind: str, subject: str) -> dict[str, float]:
        seen: dict[str, float] = {}
        self.watched[(kind, subject)] = seen
        return seen

    def record(self, kind: str, observer: str, member: Member) -> None:
        if kind == "dead" and member.name not in self.gone and observer not in self.gone:
            self.false_dead.append((self.loop.time(), observer, member.name))
        seen = self.watched.get((kind, member.name))
        if seen is not None and observer not in seen and observer != member.name:
            seen[observer] = self.loop.time()

    def spread(self, kind: str, subject: str, start: float, limit: float) -> tuple[float, float]:
        """Run until every live member saw the event; (time to 99.9 %, time to 100 %)."""
        seen = self.watched[(kind, subject)]
        audience = [n for n in self.live() if n != subject]
        want = len(audience)
        self.run(limit, lambda: len(seen) >= want)
        times = sorted(seen[n] - start for n in audience if n in seen)
        return _quantile(times, want, 0.999), _quantile(times, want, 1.0)

    def states_seen_by(self, observer: str) -> dict[str, State]:
        return {mb.name: mb.state for mb in self.members[observer].members()}

    def bytes_sent(self) -> int:
        return sum(ml.stats()["bytes_sent"] for ml in self.members.values())


def _quantile(times: list[float], want: int, q: float) -> float:
    # Rounded down: with 999 observers "99.9 %" means 998 of them, not all 999.
    need = max(1, math.floor(q * want))
    return times[need - 1] if len(times) >= need else math.inf


@dataclasses.dataclass
class Row:
    config: str
    nodes: int
    loss: float
    seed: int
    update: tuple[float, float] = (math.nan, math.nan)
    join: tuple[float, float] = (math.nan, math.nan)
    leave: tuple[float, float] = (math.nan, math.nan)
    crash: tuple[float, float] = (math.nan, math.nan)
    false_dead: int = 0
    bytes_per_node_s: float = math.nan
    slow: float = 0.0
    duration: float = 0.0
    runtime: float = 0.0


def scenario(name: str, config: GossipConfig, n: int, loss: float, seed: int,
             processing: float = 0.005, limit: float = 60.0) -> Row:
    """Update, join, leave and crash on a warm cluster of n members, one after the other."""
    started = time.perf_counter()
    c = SimCluster(config, seed=seed, loss=loss, processing=processing)
    c.warm_start(n)
    c.run(3.0)
    row = Row(name, n, loss, seed)
    bytes0, t0 = c.bytes_sent(), c.loop.time()
    names = c.live()
    subject = names[1]

    c.watch("update", subject)
    start = c.loop.time()
    c.members[subject].update_meta(tags={"zone": "b"})
    row.update = c.spread("update", subject, start, limit)
    c.run(2.0)

    c.add("joiner")
    c.watch("join", "joiner")
    start = c.loop.time()
    c.join("joiner", [names[0]])
    row.join = c.spread("join", "joiner", start, limit)
    c.run(2.0)

    c.watch("left", names[2])
    start = c.loop.time()
    c.leave(names[2])
    row.leave = c.spread("left", names[2], start, limit)
    c.run(2.0)

    c.watch("dead", names[3])
    start = c.loop.time()
    c.crash(names[3])
    row.crash = c.spread("dead", names[3], start, limit)
    c.run(2.0)

    row.duration = c.loop.time() - t0
    row.bytes_per_node_s = (c.bytes_sent() - bytes0) / n / row.duration
    row.false_dead = len(c.false_dead)
    row.runtime = time.perf_counter() - started
    return row


def soak(name: str, config: GossipConfig, n: int, loss: float, slow: float, factor: float,
         seconds: float, seed: int, processing: float = 0.005) -> Row:
    """A steady cluster with a fraction of slowed members; counts false dead declarations."""
    started = time.perf_counter()
    c = SimCluster(config, seed=seed, loss=loss, processing=processing)
    c.warm_start(n)
    for victim in c.rng.sample(c.live(), round(slow * n)):
        c.net.set_slowness(c.addrs[victim], factor)
    c.run(3.0)
    bytes0, t0 = c.bytes_sent(), c.loop.time()
    c.run(seconds)
    row = Row(name, n, loss, seed, slow=slow, duration=seconds)
    row.false_dead = len(c.false_dead)
    row.bytes_per_node_s = (c.bytes_sent() - bytes0) / n / (c.loop.time() - t0)
    row.runtime = time.perf_counter() - started
    return row


def _fmt(pair: tuple[float, float]) -> str:
    return " / ".join("–" if math.isnan(x) else ">limit" if math.isinf(x) else f"{x:.2f}"
                      for x in pair)


def table(rows: list[Row]) -> str:
    head = ("| config | n | loss | slow | seed | update 99.9% / 100% (s) | join | leave | "
            "crash → dead everywhere | false dead | B/node/s | sim s | wall s |")
    out = [head, "|" + "---|" * 13]
    for r in rows:
        out.append(
            f"| {r.config} | {r.nodes} | {r.loss:.0%} | {r.slow:.0%} | {r.seed} | "
            f"{_fmt(r.update)} | "
            f"{_fmt(r.join)} | {_fmt(r.leave)} | {_fmt(r.crash)} | {r.false_dead} | "
            f"{r.bytes_per_node_s:.0f} | {r.duration:.0f} | {r.runtime:.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pycache_cluster.gossip.sim",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--configs", default="lan,memberlist",
                    help=f"comma-separated presets from {sorted(PRESETS)}")
    ap.add_argument("--gossip-interval", type=float, default=None,
                    help="override every preset's gossip_interval (s)")
    ap.add_argument("--loss", default="0,0.1", help="comma-separated packet loss rates")
    ap.add_argument("--soak", type=float, default=0.0,
                    help="also run this many simulated seconds at the highest loss with slow "
                         "nodes, counting false dead declarations")
    ap.add_argument("--slow", type=float, default=0.05, help="fraction of slowed nodes (soak)")
    ap.add_argument("--slow-factor", type=float, default=10.0)
    ap.add_argument("--processing", type=float, default=0.005,
                    help="mean per-message processing delay of a healthy node (s)")
    ap.add_argument("--seeds", default="1",
                    help="comma-separated seeds, one scenario row each; a count N alone "
                         "means seeds 1..N")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="FIELD=VALUE[,FIELD=VALUE]",
                    help="override GossipConfig fields of every preset, e.g. "
                         "--set probe_interval=0.3,suspicion_mult=2; repeat the flag for "
                         "one more row group per setting (the label names it)")
    args = ap.parse_args(argv)
    # A thousand "running in the clear" warnings say nothing about the protocol.
    logging.getLogger("pycache_cluster.gossip").setLevel(logging.ERROR)

    rows = []
    losses = [float(x) for x in args.loss.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    if len(seeds) == 1 and "," not in args.seeds and seeds[0] > 1:
        seeds = list(range(1, seeds[0] + 1))
    settings = [parse_overrides(o) for o in args.overrides] or [{}]
    base = {} if args.gossip_interval is None else {"gossip_interval": args.gossip_interval}
    for preset in args.configs.split(","):
        for setting in settings:
            cfg = PRESETS[preset](**base, **setting)
            label = preset + "".join(f" {k}={v}" for k, v in setting.items())
            for loss in losses:
                for seed in seeds:
                    rows.append(scenario(label, cfg, args.nodes, loss, seed, args.processing))
                    print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
            if args.soak:
                rows.append(soak(label, cfg, args.nodes, max(losses), args.slow,
                                 args.slow_factor, args.soak, seeds[0], args.processing))
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    print()
    print(goals(rows))
    return 0


def parse_overrides(text: str) -> dict[str, object]:
    """"a=1,b=0.5" -> typed GossipConfig field values (each field's type is its default's)."""
    fields = {f.name: f for f in dataclasses.fields(GossipConfig)}
    out: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in fields or not value:
            raise SystemExit(f"--set {item!r}: not FIELD=VALUE of a GossipConfig field")
        kind = type(getattr(GossipConfig(), key))
        out[key] = kind(float(value)) if kind is int else kind(value)
    return out


#: The figures the simulator is held to at 1,000 members (worst row of each configuration).
DETECTION_GOAL = 5.0         # crash -> dead at every live member, seconds
DISSEMINATION_GOAL = 1.5     # update, join and leave at every live member, seconds


def goals(rows: list[Row]) -> str:
    """The worst figure of each configuration beside its goal."""
    head = ("| config | worst crash → dead everywhere | goal | worst update / join / leave "
            "at 100 % | goal | false dead | goal |")
    out = [head, "|" + "---|" * 7]
    for label in dict.fromkeys(r.config for r in rows):
        mine = [r for r in rows if r.config == label]
        runs = [r for r in mine if not r.slow]
        crash = max((r.crash[1] for r in runs), default=math.nan)
        spread = max((max(r.update[1], r.join[1], r.leave[1]) for r in runs),
                     default=math.nan)
        false = sum(r.false_dead for r in mine)

        def verdict(value: float, goal: float) -> str:
            return "met" if value <= goal else "MISSED"

        out.append(f"| {label} | {crash:.2f} s | ≤ {DETECTION_GOAL:.1f} s "
                   f"({verdict(crash, DETECTION_GOAL)}) | {spread:.2f} s | "
                   f"≤ {DISSEMINATION_GOAL:.1f} s ({verdict(spread, DISSEMINATION_GOAL)}) | "
                   f"{false} | 0 ({verdict(false, 0)}) |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
