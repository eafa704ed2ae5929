"""Forwarded requests: server CPU per operation summed over every node of the cluster, beside
the same request answered locally by one node, and by memcached, in the same run.

    python -m bench.cluster_bench [--seconds 5] [--rounds 3] [--conns 16]

Scenarios (a closed-loop client, bench/loadclient.py, `--conns` connections, 100-byte values):
  get      memcached | one node | two nodes, the client at A and every key B's (forwarded)
  mget10   memcached | one node | three nodes, the client at A, 10 keys spread over all three
Rounds alternate the scenarios; the table shows medians of throughput, p99 latency and CPU
microseconds per operation (user + sys of the server processes, from /proc). Targets:
forwarded get <= 2.2x a local get; a 10-key multi-get over three nodes <= 2.2x one node's.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bench import servers

VALUE = b"v" * 100


def call(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(data + b"mn\r\n")
        out = b""
        while not out.endswith(b"MN\r\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            out += chunk
    return out[:-4]


class Cluster:
    """n nodes with gossip on 127.0.0.1 (distinct ports), joined into one ring; `flags` for
    every node (e.g. --replicas 3)."""

    def __init__(self, n: int, *flags: str):
        self.procs, self.ports, self.gossip = [], [], []
        first_gossip = None
        for i in range(n):
            port, gport = servers.free_port(), servers.free_port()
            argv = [sys.executable, "-m", "pycache_cluster", "serve", "-l", "127.0.0.1",
                    "-p", str(port), "-m", "256", "--node-name", f"b{i}", "--gossip-port",
                    str(gport), "--gossip-preset", "local", *flags]
            if first_gossip:
                argv += ["--join", f"127.0.0.1:{first_gossip}"]
            first_gossip = first_gossip or gport
            proc = subprocess.Popen(argv, cwd=servers.ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            servers.register(proc)
            self.procs.append(proc)
            self.ports.append(port)
            self.gossip.append(gport)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if all(b"STAT ring_nodes %d\r\n" % n in call(p, b"stats cluster\r\n")
                       for p in self.ports):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the cluster did not form")

    def owner(self, key: bytes) -> bytes:
        return call(self.ports[0], b"cluster owners " + key + b"\r\n").split()[1]

    def owners(self, key: bytes) -> list[bytes]:
        reply = call(self.ports[0], b"cluster owners " + key + b"\r\n").split()
        return [reply[i + 1] for i, w in enumerate(reply) if w == b"OWNER"]

    def stop(self):
        for p in self.procs:
            servers.kill_process(p)


def preload(port: int, keys: list[bytes]) -> None:
    call(port, b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(VALUE), VALUE)
                        for k in keys))


def run_load(port: int, pids: list[int], keys: list[bytes], args, mget: int,
             op: str = "get") -> dict:
    with tempfile.NamedTemporaryFile("wb", suffix=".keys", delete=False) as f:
        f.write(b"\n".join(keys))
    try:
        before = [servers.read_cpu(p) for p in pids]
        out = subprocess.run([sys.executable, "-m", "bench.loadclient", "127.0.0.1", str(port),
                              "--seconds", str(args.seconds), "--conns", str(args.conns),
                              "--keys-file", f.name, "--mget", str(mget), "--op", op],
                             cwd=servers.ROOT, capture_output=True, text=True, check=True)
        after = [servers.read_cpu(p) for p in pids]
    finally:
        os.unlink(f.name)
    res = json.loads(out.stdout)
    cpu = sum((a - b).total for a, b in zip(after, before, strict=True))
    res["cpu_us_per_op"] = cpu / res["ops"] * 1e6
    res["ops_per_sec"] = res["ops"] / res["seconds"]
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conns", type=int, default=16)
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    memcached = servers.ServerProcess("memcached", servers.MEMCACHED_CMD, 256).start()
    single = servers.ServerProcess("ours", servers.OURS_CMD, 256).start()
    # One owner per key: what forwarding costs, without replication (bench.replica_bench).
    alone = ("--replicas", "1", "--write-quorum", "1")
    two, three = Cluster(2, *alone), Cluster(3, *alone)
    try:
        plain = [b"key:%d" % i for i in range(3000)]
        remote = [k for k in (b"fwd:%d" % i for i in range(6000)) if two.owner(k) == b"b1"]
        for port in (memcached.port, single.port, two.ports[0], three.ports[0]):
            preload(port, plain)
        preload(two.ports[0], remote)
        scenarios = {
            ("get", "memcached"): (memcached.port, [memcached.pid], plain, 1),
            ("get", "one node"): (single.port, [single.pid], plain, 1),
            ("get", "forwarded (2 nodes)"): (two.ports[0], [p.pid for p in two.procs],
                                             remote, 1),
            ("mget10", "memcached"): (memcached.port, [memcached.pid], plain, 10),
            ("mget10", "one node"): (single.port, [single.pid], plain, 10),
            ("mget10", "3 nodes"): (three.ports[0], [p.pid for p in three.procs], plain, 10),
        }
        results: dict = {k: [] for k in scenarios}
        for r in range(args.rounds):
            for key, (port, pids, keys, mget) in scenarios.items():
                results[key].append(run_load(port, pids, keys, args, mget))
                print(f"round {r + 1}: {key[0]:7} {key[1]:22} "
                      f"{results[key][-1]['cpu_us_per_op']:.2f} us/op", file=sys.stderr)
    finally:
        two.stop()
        three.stop()
        single.stop()
        memcached.stop()
    print(f"\n{args.rounds} rounds x {args.seconds:g} s, {args.conns} connections; medians")
    print(f"{'workload':8} {'server':22} {'ops/s':>9} {'p99 us':>8} {'CPU us/op':>10} "
          f"{'vs one node':>12} {'target':>7}")
    for (work, name), runs in results.items():
        med = {m: statistics.median(x[m] for x in runs)
               for m in ("ops_per_sec", "p99_us", "cpu_us_per_op")}
        base = statistics.median(x["cpu_us_per_op"] for x in results[(work, "one node")])
        ratio = med["cpu_us_per_op"] / base
        target = "<= 2.2" if name not in ("memcached", "one node") else ""
        print(f"{work:8} {name:22} {med['ops_per_sec']:>9,.0f} {med['p99_us']:>8.0f} "
              f"{med['cpu_us_per_op']:>10.2f} {ratio:>11.2f}x {target:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
