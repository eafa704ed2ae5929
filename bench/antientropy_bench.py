"""Anti-entropy: what its rounds cost when replicas agree, beside the same idle cluster
without them, in the same run.

    python -m bench.antientropy_bench [--keys 100000] [--interval 1] [--seconds 20]

Three nodes, N=2, --keys keys of 100 bytes. Each cluster idles --seconds; the figure is each
node's CPU (user + sys, /proc) per second and the anti-entropy bytes per second, with rounds
every --interval seconds and with none. (The default interval is 30 s; a 1 s interval shows
the cost of one round 30 times over.) Also printed: one round's duration on a node.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

from bench import servers
from bench.cluster_bench import Cluster, call

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cluster_stat(port: int, name: str) -> float:
    reply = call(port, b"stats cluster\r\n")
    return float(re.search(rb"STAT %s ([\d.]+)" % name.encode(), reply).group(1))


def idle(interval: str, keys: int, seconds: float) -> tuple[float, float, float]:
    """(CPU s/s per node, anti-entropy bytes/s per node, last round ms) over an idle spell."""
    cluster = Cluster(3, "-m", "1024", "--replicas", "2", "--write-quorum", "2",
                      "--anti-entropy-interval", interval)
    try:
        value = b"v" * 100
        for i in range(0, keys, 2000):
            call(cluster.ports[0], b"".join(b"set ae:%d 0 0 100 noreply\r\n%s\r\n" % (j, value)
                                            for j in range(i, min(i + 2000, keys))))
        call(cluster.ports[0], b"version\r\n")
        time.sleep(2)
        cpu0 = [cpu_seconds(p.pid) for p in cluster.procs]
        bytes0 = [cluster_stat(p, "anti_entropy_bytes") for p in cluster.ports]
        time.sleep(seconds)
        cpu = [cpu_seconds(p.pid) - c for p, c in zip(cluster.procs, cpu0, strict=True)]
        sent = [cluster_stat(p, "anti_entropy_bytes") - b
                for p, b in zip(cluster.ports, bytes0, strict=True)]
        last = max(cluster_stat(p, "anti_entropy_last_round_ms") for p in cluster.ports)
        pushed = sum(cluster_stat(p, "anti_entropy_keys_pushed") for p in cluster.ports)
        if pushed:
            print(f"  ({pushed:.0f} keys pushed between replicas that should agree)")
    finally:
        cluster.stop()
    return sum(cpu) / len(cpu) / seconds, sum(sent) / len(sent) / seconds, last


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.antientropy_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--interval", default="1")
    p.add_argument("--seconds", type=float, default=20)
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    on = idle(args.interval, args.keys, args.seconds)
    off = idle("0", args.keys, args.seconds)
    print(f"\n3 nodes, N=2, {args.keys:,} keys of 100 B ({2 * args.keys // 3:,} copies a node), "
          f"idle {args.seconds:.0f} s")
    print(f"{'':28} {'CPU %/node':>10} {'bytes/s/node':>13} {'round ms':>9}")
    print(f"{'rounds every ' + args.interval + ' s':28} {100 * on[0]:>10.2f} {on[1]:>13,.0f} "
          f"{on[2]:>9.0f}")
    print(f"{'no rounds':28} {100 * off[0]:>10.2f} {off[1]:>13,.0f} {'-':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
