"""Throughput workloads, A/B: one fresh server per run, memcached and ours alternating.

For each run: the server's CPU (user+sys, all threads, /proc/<pid>/stat) over the load
generator's lifetime, divided by the operations it completed, and the server's peak RSS.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass

from bench import memcaslap, metaclient, servers
from bench.mcclient import TextClient, stat_int
from bench.workloads import Workload

ITEM_SIZE = "1048576"  # -I in bytes: both memcached and our flag parser take a plain number


@dataclass(frozen=True)
class ServerSpec:
    """Which server a side of the comparison runs: a label and a command template."""

    label: str
    template: str

    def process(self, mb: int) -> servers.ServerProcess:
        return servers.ServerProcess(self.label, self.template, mb, ITEM_SIZE)


def _stats_or_empty(address) -> dict:
    try:
        with TextClient(address, timeout=10) as c:
            return c.stats()
    except (OSError, RuntimeError):
        return {}


def run_once(w: Workload, spec: ServerSpec, seconds: float, slap_threads: int = 1) -> dict:
    """One measured run of throughput workload `w` against a fresh server."""
    with spec.process(w.mb) as server:
        if w.kind == "meta":
            metaclient.preload(server.address, w.meta["keys"], w.meta["value_size"])
        st0 = _stats_or_empty(server.address)
        cpu0 = server.cpu()
        if w.kind == "slap":
            cfg = w.slap
            if slap_threads != cfg.threads:
                from dataclasses import replace
                cfg = replace(cfg, threads=slap_threads)
            r = memcaslap.run(server.address, cfg, seconds)
            ops, elapsed, extra = r.ops, r.seconds, {"client_get_misses": r.get_misses,
                                                     "client_cmd_get": r.cmd_get,
                                                     "client_cmd_set": r.cmd_set}
        elif w.kind == "meta":
            r = _run_metaclient(server.address, w.meta, seconds)
            ops, elapsed, extra = r["ops"], r["seconds"], {}
        else:
            raise ValueError(f"{w.name} is not a throughput workload")
        cpu = server.cpu() - cpu0
        peak = server.peak_rss()
        st1 = _stats_or_empty(server.address)
    server_ops = None
    if st0 and st1:
        server_ops = sum(stat_int(st1, k) - stat_int(st0, k) for k in ("cmd_get", "cmd_set"))
    return {
        "ops": ops, "seconds": elapsed, "ops_per_sec": ops / elapsed if elapsed else 0.0,
        "cpu_user_s": cpu.user, "cpu_sys_s": cpu.sys,
        "cpu_us_per_op": cpu.total / ops * 1e6 if ops else float("nan"),
        "user_us_per_op": cpu.user / ops * 1e6 if ops else float("nan"),
        "peak_rss_mb": peak / 2**20, "server_counted_ops": server_ops, **extra,
    }


def _run_metaclient(address, meta: dict, seconds: float) -> dict:
    argv = [sys.executable, "-m", "bench.metaclient", address[0], str(address[1]),
            "--seconds", str(seconds), "--conns", str(meta["conns"]),
            "--batch", str(meta["batch"]), "--keys", str(meta["keys"]),
            "--value-size", str(meta["value_size"]), "--get-ratio", str(meta["get_ratio"])]
    proc = servers.register(subprocess.Popen(argv, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                             start_new_session=True, cwd=servers.ROOT))
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        servers.kill_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"metaclient exited {proc.returncode}:\n"
                           f"{err.decode(errors='replace')[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


METRICS = ("ops_per_sec", "cpu_us_per_op", "user_us_per_op", "peak_rss_mb")


def medians(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    return {m: statistics.median(r[m] for r in ok) if ok else float("nan") for m in METRICS}


def paired_ratio(mc_runs: list[dict], our_runs: list[dict], metric: str) -> float:
    """Median of the per-round ratios ours/memcached: each pair ran back to back, so a load
    change on a shared machine that spans rounds cancels out better than in medians' ratio."""
    ratios = [o[metric] / m[metric] for m, o in zip(mc_runs, our_runs, strict=False)
              if "error" not in m and "error" not in o and m[metric]]
    return statistics.median(ratios) if ratios else float("nan")


def spread(runs: list[dict], metric: str) -> float:
    """(max - min) / median over the rounds: how noisy this figure was."""
    vals = [r[metric] for r in runs if "error" not in r]
    if len(vals) < 2:
        return 0.0
    med = statistics.median(vals)
    return (max(vals) - min(vals)) / med if med else float("nan")
