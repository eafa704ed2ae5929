"""Failure detection time of real gossip processes: 5 members on loopback, one killed with -9.

Each run starts 5 `python -m pycache_cluster.gossip` members (own 127.0.0.x each), waits until
they see each other, kills one with SIGKILL and measures the time until every survivor lists
it as dead. Before the kill, the cluster runs --quiet seconds while --busy processes spin the
CPU, and every suspicion raised in that time is counted (it should be zero).

  python bench/gossip_detect.py --preset lan --runs 5 --busy 4
  python bench/gossip_detect.py --preset memberlist --runs 5 --busy 4
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pycache_cluster.gossip.reply import parse_members
from pycache_cluster.gossip.state import State

PORT = 17947


def _spin() -> None:
    while True:
        pass


def _stats(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = int(parts[2])
    except FileNotFoundError:
        pass
    return out


def _members(path: Path) -> dict:
    try:
        return parse_members(path.read_text().splitlines())
    except (FileNotFoundError, ValueError):
        return {}


def one_run(preset: str, workdir: Path, quiet: float, busy: int) -> tuple[float, int]:
    hosts = [f"127.0.0.{101 + i}" for i in range(5)]
    names = [f"b{i}" for i in range(5)]
    procs = []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for name, host in zip(names, hosts):
        cmd = [sys.executable, "-m", "pycache_cluster.gossip", "--node-name", name, "--bind",
               host, "--gossip-port", str(PORT), "--preset", preset, "--join",
               f"{hosts[0]}:{PORT}", "--refresh", "0.02",
               "--members-file", str(workdir / f"{name}.members"),
               "--stats-file", str(workdir / f"{name}.stats")]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            views = [_members(workdir / f"{n}.members") for n in names]
            if all(len(v) == 5 and all(e[2] == State.ALIVE for e in v.values()) for v in views):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("cluster did not form")
        for s in spinners:
            s.start()
        before = sum(_stats(workdir / f"{n}.stats").get("suspicions", 0) for n in names)
        time.sleep(quiet)
        suspicions = sum(_stats(workdir / f"{n}.stats").get("suspicions", 0)
                         for n in names) - before
        victim = names[-1]
        procs[-1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 60:
            views = [_members(workdir / f"{n}.members") for n in names[:-1]]
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
        with tempfile.TemporaryDirectory() as tmp:
            t, s = one_run(args.preset, Path(tmp), args.quiet, args.busy)
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
