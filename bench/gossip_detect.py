"""Failure detection time of real nodes: 5 `pycache-cluster serve` members on loopback, one killed with -9.

Each run starts 5 nodes with gossip on (own 127.0.0.x each), waits until they see each other,
runs --quiet seconds of steady state, kills one with SIGKILL and measures the time until every
survivor's `cluster members` lists it as dead. Every suspicion raised before the kill
(`stats gossip`) is a false one and is counted; so is any survivor that ends up seeing
another survivor as anything but alive.

Load during the steady state and the detection, each optional:
  --busy N      N CPU-spinning processes, unpinned (the whole machine is loaded);
  --hog         one busy loop pinned to the CPU of a surviving node, which is pinned there
                too, at the same nice level: that node gets about half a core;
  --handover K  K keys of 100 B are written (N=2) into 4 nodes before the 5th starts; the
                kill comes --walk seconds after the joiner is in every ring, while it takes
                its share (the output says whether the walk still ran), and suspicions are
                counted from the join to the kill.

  python bench/gossip_detect.py --runs 10
  python bench/gossip_detect.py --runs 5 --hog
  python bench/gossip_detect.py --runs 3 --handover 1000000
  python bench/gossip_detect.py --preset memberlist --runs 5

Goals (issue "Big fleets"): crash -> dead everywhere <= 2.0 s, 0 false suspicions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pycache_cluster.gossip.reply import parse_members
from pycache_cluster.gossip.state import State

DETECTION_GOAL = 2.0


def _spin() -> None:
    while True:
        pass


def _call(host: str, port: int, request: bytes, end=(b"END\r\n", b"ERROR\r\n")) -> bytes:
    """The reply to one request (up to END), b"" if the node does not answer."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(request)
            buf = b""
            while not buf.endswith(end):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        return b""
    return buf


def _stats(host: str, port: int, which: bytes) -> dict[str, int]:
    out = {}
    for line in _call(host, port, b"stats " + which + b"\r\n").decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and re.fullmatch(r"-?\d+", parts[2]):
            out[parts[1]] = int(parts[2])
    return out


def _members(host: str, port: int) -> dict:
    try:
        return parse_members(_call(host, port, b"cluster members\r\n").decode().splitlines())
    except ValueError:
        return {}


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _suspicions(nodes) -> int:
    return sum(_stats(*node, b"gossip").get("suspicions", 0) for node in nodes)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(what)


class Fleet:
    def __init__(self, preset: str, flags: list[str]):
        self.hosts = [f"127.0.0.{101 + i}" for i in range(5)]
        self.names = [f"b{i}" for i in range(5)]
        self.ports = [_free_port(h) for h in self.hosts]
        self.gossip_ports = [_free_port(h) for h in self.hosts]
        self.preset = preset
        self.flags = flags
        self.procs: list[subprocess.Popen] = []

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return list(zip(self.hosts, self.ports))[:len(self.procs)]

    def start(self, i: int) -> None:
        exe = shutil.which("pycache-cluster")
        head = [exe] if exe else [sys.executable, "-m", "pycache_cluster"]
        cmd = [*head, "serve", "-l", self.hosts[i], "-p", str(self.ports[i]),
               "--node-name", self.names[i], "--gossip-port", str(self.gossip_ports[i]),
               "--gossip-preset", self.preset, "-m", "1024", *self.flags,
               "--join", f"{self.hosts[0]}:{self.gossip_ports[0]}"]
        self.procs.append(subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)),
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def formed(self) -> bool:
        n = len(self.procs)
        views = [_members(*node) for node in self.nodes]
        return all(len(v) == n and all(e[2] == State.ALIVE for e in v.values())
                   for v in views)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _fill(host: str, port: int, keys: int) -> None:
    value = b"v" * 100
    with socket.create_connection((host, port), timeout=30) as s:
        for i in range(0, keys, 2000):
            s.sendall(b"".join(b"set gd:%d 0 0 100 noreply\r\n%s\r\n" % (j, value)
                               for j in range(i, min(i + 2000, keys))))
        s.sendall(b"mn\r\n")
        buf = b""
        while not buf.endswith(b"MN\r\n"):
            buf += s.recv(65536)


def one_run(args) -> tuple[float, int, int, bool]:
    """(seconds to dead everywhere, false suspicions, survivors not alive, hand-over was on)."""
    flags = ["--replicas", "2", "--write-quorum", "2"] if args.handover else []
    fleet = Fleet(args.preset, flags)
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    hog = None
    victim, hogged = 3, 1           # neither the seed nor, with --handover, the joiner
    handover_on = False
    try:
        for i in range(4 if args.handover else 5):
            fleet.start(i)
        _wait(fleet.formed, 60, "cluster did not form")
        if args.handover:
            _fill(*fleet.nodes[0], args.handover)
            _wait(lambda: sum(_stats(*node, b"").get("curr_items", 0)
                              for node in fleet.nodes) == 2 * args.handover, 120,
                  "the keys did not all reach their two owners")
        if args.hog:
            cpu = min(os.sched_getaffinity(0))
            hog = multiprocessing.Process(target=_spin, daemon=True)
            hog.start()
            for pid in (hog.pid, fleet.procs[hogged].pid):
                os.sched_setaffinity(pid, {cpu})
        for s in spinners:
            s.start()
        before = _suspicions(fleet.nodes)
        if args.handover:
            fleet.start(4)
            _wait(lambda: all(_stats(*node, b"cluster").get("ring_nodes") == 5
                              for node in fleet.nodes), 60, "the joiner did not enter the rings")
            time.sleep(args.walk)
            handover_on = any(_stats(*node, b"cluster").get("handover_running", 0)
                              for node in fleet.nodes)
        else:
            time.sleep(args.quiet)
        suspicions = _suspicions(fleet.nodes) - before
        survivors = [node for i, node in enumerate(fleet.nodes) if i != victim]
        fleet.procs[victim].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        name = fleet.names[victim]
        took = float("inf")
        while time.monotonic() - killed < 60:
            views = [_members(*node) for node in survivors]
            if all(v.get(name, (0, 0, None))[2] == State.DEAD for v in views):
                took = time.monotonic() - killed
                break
            time.sleep(0.01)
        time.sleep(1.0)     # any false verdict on a survivor shows up by now
        wrong = sum(1 for node in survivors for n, e in _members(*node).items()
                    if n != name and e[2] != State.ALIVE)
        return took, suspicions, wrong, handover_on
    finally:
        if hog is not None:
            hog.terminate()
        for s in spinners:
            if s.is_alive():
                s.terminate()
        fleet.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="lan", choices=["lan", "local", "memberlist"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quiet", type=float, default=10.0,
                    help="seconds of steady state (under load) before the kill")
    ap.add_argument("--busy", type=int, default=0,
                    help="unpinned CPU-spinning processes during the run")
    ap.add_argument("--hog", action="store_true",
                    help="a busy loop pinned to the CPU of one surviving node (pinned too)")
    ap.add_argument("--handover", type=int, default=0, metavar="KEYS",
                    help="kill during the hand-over of KEYS keys to a joining 5th node")
    ap.add_argument("--walk", type=float, default=3.0,
                    help="with --handover: seconds of hand-over before the kill")
    args = ap.parse_args()
    times, false, wrong, during = [], 0, 0, 0
    for i in range(args.runs):
        t, s, w, h = one_run(args)
        times.append(t)
        false += s
        wrong += w
        during += h
        print(f"run {i + 1}: dead everywhere after {t:.2f}s; suspicions before the kill: {s}; "
              f"survivors seen not alive: {w}" + (f"; hand-over running at the kill: {h}"
                                                  if args.handover else ""), flush=True)
    load = (f"busy={args.busy}" + (", hog on b1" if args.hog else "")
            + (f", hand-over of {args.handover:,} keys ({during}/{args.runs} kills during "
               "the walk)" if args.handover else ""))
    print(f"{args.preset} ({load}), {args.runs} runs: crash -> dead everywhere mean "
          f"{statistics.mean(times):.2f} s, max {max(times):.2f} s, min {min(times):.2f} s "
          f"(goal <= {DETECTION_GOAL:.1f} s: "
          f"{'met' if max(times) <= DETECTION_GOAL else 'mean met' if statistics.mean(times) <= DETECTION_GOAL else 'MISSED'}); "
          f"false suspicions {false}, survivors seen not alive {wrong} (goal 0: "
          f"{'met' if false == wrong == 0 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
