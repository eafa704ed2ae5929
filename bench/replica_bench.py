"""Replicated writes and reads: server CPU per operation summed over every node of a cluster,
beside the same request on one node alone and on memcached, in the same run.

    python -m bench.replica_bench [--seconds 3] [--rounds 3] [--conns 16]

Scenarios (a closed-loop client, bench/loadclient.py, `--conns` connections to one node,
100-byte values, keys that node owns, so no hop is counted: what a routing client sees):
  set    memcached | one node | N=2 W=2 | N=3 W=2 | N=3 W=3   (three nodes each)
  get    memcached | one node | N=3 R=1, through an owner holding the key
Rounds alternate the scenarios; the table shows medians of throughput, p99 latency and CPU
microseconds per operation (user + sys of all the server processes, from /proc). Targets:
a replicated set N=3 W=2 <= 3.5x a set on one node; a read with R=1 <= 1.1x a local get.
"""
from __future__ import annotations

import argparse
import statistics
import sys

from bench import servers
from bench.cluster_bench import Cluster, preload, run_load

TARGETS = {("set", "N=3 W=2"): 3.5, ("get", "N=3 R=1"): 1.1}


def owned_by_first(cluster: Cluster, count: int, prefix: bytes) -> list[bytes]:
    """Keys the cluster's first node owns (it is their coordinator and one of the owners)."""
    out, i = [], 0
    while len(out) < count:
        key = b"%s:%d" % (prefix, i)
        if b"b0" in cluster.owners(key):
            out.append(key)
        i += 1
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replica_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conns", type=int, default=16)
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    memcached = servers.ServerProcess("memcached", servers.MEMCACHED_CMD, 256).start()
    single = servers.ServerProcess("ours", servers.OURS_CMD, 256).start()
    clusters = {
        "N=2 W=2": Cluster(3, "--replicas", "2", "--write-quorum", "2"),
        "N=3 W=2": Cluster(3, "--replicas", "3", "--write-quorum", "2"),
        "N=3 W=3": Cluster(3, "--replicas", "3", "--write-quorum", "3"),
    }
    try:
        plain = [b"key:%d" % i for i in range(3000)]
        for port in (memcached.port, single.port):
            preload(port, plain)
        scenarios = {
            ("set", "memcached"): (memcached.port, [memcached.pid], plain),
            ("set", "one node"): (single.port, [single.pid], plain),
        }
        for name, cluster in clusters.items():
            keys = owned_by_first(cluster, 3000, name.replace(" ", "").encode())
            scenarios[("set", name)] = (cluster.ports[0], [p.pid for p in cluster.procs], keys)
        reads = clusters["N=3 W=2"]
        read_keys = scenarios[("set", "N=3 W=2")][2]
        preload(reads.ports[0], read_keys)
        scenarios[("get", "memcached")] = (memcached.port, [memcached.pid], plain)
        scenarios[("get", "one node")] = (single.port, [single.pid], plain)
        scenarios[("get", "N=3 R=1")] = (reads.ports[0], [p.pid for p in reads.procs],
                                         read_keys)
        results: dict = {k: [] for k in scenarios}
        for r in range(args.rounds):
            for key, (port, pids, keys) in scenarios.items():
                res = run_load(port, pids, keys, args, 1, op=key[0])
                results[key].append(res)
                print(f"round {r + 1}: {key[0]:4} {key[1]:10} {res['cpu_us_per_op']:.2f} us/op"
                      f" ({res['errors']} errors)", file=sys.stderr)
    finally:
        for cluster in clusters.values():
            cluster.stop()
        single.stop()
        memcached.stop()
    print(f"\n{args.rounds} rounds x {args.seconds:g} s, {args.conns} connections; medians")
    print(f"{'op':4} {'server':10} {'ops/s':>9} {'p99 us':>8} {'CPU us/op':>10} "
          f"{'vs one node':>12} {'vs memcached':>13} {'target':>7}")
    for (op, name), runs in results.items():
        med = {m: statistics.median(x[m] for x in runs)
               for m in ("ops_per_sec", "p99_us", "cpu_us_per_op")}
        base = statistics.median(x["cpu_us_per_op"] for x in results[(op, "one node")])
        mc = statistics.median(x["cpu_us_per_op"] for x in results[(op, "memcached")])
        target = TARGETS.get((op, name))
        print(f"{op:4} {name:10} {med['ops_per_sec']:>9,.0f} {med['p99_us']:>8.0f} "
              f"{med['cpu_us_per_op']:>10.2f} {med['cpu_us_per_op'] / base:>11.2f}x "
              f"{med['cpu_us_per_op'] / mc:>12.2f}x "
              f"{f'<= {target:.1f}' if target else '':>7}")
        if sum(x["errors"] for x in runs):
            print(f"     ({sum(x['errors'] for x in runs)} requests not STORED)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
