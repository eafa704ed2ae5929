"""Failure detection time of real nodes: 5 `pycache-cluster serve` members on loopback, one killed with -9.

Each run starts 5 nodes with gossip on (own 127.0.0.x each), waits until they see each other,
kills one with SIGKILL and measures the time until every survivor's `cluster members` lists it
as dead. Before the kill, the cluster runs --quiet seconds while --busy processes spin the
CPU, and every suspicion raised in that time (`stats gossip`) is counted (it should be zero).

  python bench/gossip_detect.py --preset lan --runs 5 --busy 4
  python bench/gossip_detect.py --preset memberlist --runs 5 --busy 4
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
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


def _spin() -> None:
    while True:
        pass


def _call(host: str, port: int, request: bytes) -> list[str]:
    """The reply lines to one request (up to END), [] if the node does not answer."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(request)
            buf = b""
            while not buf.endswith(b"END\r\n") and not buf.endswith(b"ERROR\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        return []
    return buf.decode().splitlines()


def _stats(host: str, port: int) -> dict[str, int]:
    out = {}
    for line in _call(host, port, b"stats gossip\r\n"):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = int(parts[2])
    return out


def _members(host: str, port: int) -> dict:
    try:
        return parse_members(_call(host, port, b"cluster members\r\n"))
    except ValueError:
        return {}


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def one_run(preset: str, quiet: float, busy: int) -> tuple[float, int]:
    hosts = [f"127.0.0.{101 + i}" for i in range(5)]
    names = [f"b{i}" for i in range(5)]
    ports = [_free_port(h) for h in hosts]
    gossip_ports = [_free_port(h) for h in hosts]
    exe = shutil.which("pycache-cluster")
    head = [exe] if exe else [sys.executable, "-m", "pycache_cluster"]
    procs = []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for name, host, port, gossip_port in zip(names, hosts, ports, gossip_ports):
        cmd = [*head, "serve", "-l", host, "-p", str(port), "--node-name", name,
               "--gossip-port", str(gossip_port), "--gossip-preset", preset,
               "--join", f"{hosts[0]}:{gossip_ports[0]}"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    nodes = list(zip(hosts, ports))
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            views = [_members(*node) for node in nodes]
            if all(len(v) == 5 and all(e[2] == State.ALIVE for e in v.values()) for v in views):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("cluster did not form")
        for s in spinners:
            s.start()
        before = sum(_stats(*node).get("suspicions", 0) for node in nodes)
        time.sleep(quiet)
        suspicions = sum(_stats(*node).get("suspicions", 0) for node in nodes) - before
        victim = names[-1]
        procs[-1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 60:
            views = [_members(*node) for node in nodes[:-1]]
            if all(v.get(victim, (0, 0, None))[2] == State.DEAD for v in views):
                return time.monotonic() - killed, suspicions
            time.sleep(0.01)
        return float("inf"), suspicions
    finally:
        for s in spinners:
            if s.is_alive():
                s.terminate()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="lan", choices=["lan", "local", "memberlist"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quiet", type=float, default=10.0,
                    help="seconds of steady state (under load) before the kill")
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2,
                    help="CPU-spinning processes during the run")
    args = ap.parse_args()
    times, false = [], 0
    for i in range(args.runs):
        t, s = one_run(args.preset, args.quiet, args.busy)
        times.append(t)
        false += s
        print(f"run {i + 1}: dead everywhere after {t:.2f}s; suspicions before the kill: {s}",
              flush=True)
    print(f"{args.preset}: detection mean {statistics.mean(times):.2f}s, max {max(times):.2f}s, "
          f"min {min(times):.2f}s over {args.runs} runs (busy={args.busy}); "
          f"false suspicions: {false}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
