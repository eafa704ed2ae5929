"""Hand-over: how fast data follows the ring, and how much of it moves.

    python -m bench.handover_bench [--keys 100000] [--nodes 5]

A cluster of --nodes (N=2) holds --keys keys of 100 bytes. A node joins: the time from its
start until every node's hand-over is idle and every key is on exactly its owners gives keys
moved per second; the keys moved are compared with the ideal for the ring (the joiner's
share of the copies). Then a node leaves gracefully (SIGTERM), and another is killed (-9):
the time from its detection until the survivors hold two copies of every key again gives the
re-replication rate. Targets: hand-over >= 20,000
keys/s; keys moved <= 1.15x ideal; re-replication >= 5,000 keys/s.
"""
from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from bench import servers
from bench.cluster_bench import Cluster, call

FLAGS = ("--replicas", "2", "--write-quorum", "2")


def stat(port: int, name: str, which: str = "") -> int:
    reply = call(port, b"stats %s\r\n" % which.encode() if which else b"stats\r\n")
    return int(re.search(rb"STAT %s (\d+)" % name.encode(), reply).group(1))


def start_node(cluster: Cluster, name: str, flags: tuple[str, ...]) -> None:
    port, gport = servers.free_port(), servers.free_port()
    argv = [sys.executable, "-m", "pycache_cluster", "serve", "-l", "127.0.0.1", "-p",
            str(port), "-m", "1024", "--node-name", name, "--gossip-port", str(gport),
            "--gossip-preset", "local", "--join", f"127.0.0.1:{cluster.gossip[0]}",
            *flags]
    proc = subprocess.Popen(argv, cwd=servers.ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    servers.register(proc)
    cluster.procs.append(proc)
    cluster.ports.append(port)


def settled(ports: list[int], copies: int) -> bool:
    """Every node on one ring of exactly these nodes, no walk running, `copies` in all."""
    try:
        return (all(stat(p, "ring_nodes", "cluster") == len(ports) for p in ports) and
                all(stat(p, "handover_running", "cluster") == 0 for p in ports) and
                sum(stat(p, "curr_items") for p in ports) == copies)
    except (OSError, AttributeError):
        return False


def wait(predicate, timeout: float = 300) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.05)
    return time.monotonic() - start


class Reader(threading.Thread):
    """One connection reading the keys back to back through a node: (when, latency) of each
    get, so that the join's window can be compared with the steady state before it."""

    def __init__(self, port: int, keys: int):
        super().__init__(daemon=True)
        self.port, self.keys = port, keys
        self.samples: list[tuple[float, float]] = []
        self.misses = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            i = 0
            while not self.stop.is_set():
                t = time.monotonic()
                s.sendall(b"get hk:%d\r\n" % (i * 7919 % self.keys))
                buf = b""
                while not buf.endswith(b"END\r\n"):
                    buf += s.recv(4096)
                self.samples.append((t, time.monotonic() - t))
                self.misses += not buf.startswith(b"VALUE")
                i += 1

    def window(self, start: float, end: float) -> tuple[float, float, int]:
        """(p99 ms, max ms, count) of the gets sent in [start, end)."""
        lat = sorted(x for t, x in self.samples if start <= t < end)
        if not lat:
            return 0.0, 0.0, 0
        return 1000 * lat[int(0.99 * (len(lat) - 1))], 1000 * lat[-1], len(lat)


def suspicions(ports: list[int]) -> int:
    return sum(stat(p, "suspicions", "gossip") for p in ports)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.handover_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--rate", type=int, default=0, help="--handover-rate of every node")
    args = p.parse_args(argv)
    flags = (*FLAGS, "--handover-rate", str(args.rate))
    servers.install_signal_handlers()
    cluster = Cluster(args.nodes, "-m", "1024", *flags)
    try:
        value = b"v" * 100
        for i in range(0, args.keys, 2000):
            call(cluster.ports[0], b"".join(
                b"set hk:%d 0 0 100 noreply\r\n%s\r\n" % (j, value)
                for j in range(i, min(i + 2000, args.keys))))
        wait(lambda: settled(cluster.ports, 2 * args.keys))
        reader = Reader(cluster.ports[0], args.keys)
        reader.start()
        time.sleep(3)
        suspected = suspicions(cluster.ports)
        join_at = time.monotonic()
        start_node(cluster, f"b{args.nodes}", flags)
        in_ring = wait(lambda: all(stat(p, "ring_nodes", "cluster") == len(cluster.ports)
                                   for p in cluster.ports))
        joined = in_ring + wait(lambda: settled(cluster.ports, 2 * args.keys))
        reader.stop.set()
        reader.join(10)
        suspected = suspicions(cluster.ports[:-1]) - suspected
        steady = reader.window(join_at - 2.5, join_at)
        during = reader.window(join_at + in_ring, join_at + joined)
        moved = stat(cluster.ports[-1], "curr_items")
        ring = call(cluster.ports[0], b"cluster ring\r\n").decode()
        share = float(re.search(rf"NODE b{args.nodes} \S+ weight=\d+ share=([\d.]+)",
                                ring).group(1))
        ideal = 2 * args.keys * share
        leaver, lport = cluster.procs[1], cluster.ports[1]
        left_copies = stat(lport, "curr_items")
        start = time.monotonic()
        leaver.send_signal(signal.SIGTERM)     # a graceful leave: hand everything over, go
        leaver.wait(120)
        ports = [p for p in cluster.ports if p != lport]
        left = time.monotonic() - start + wait(lambda: settled(ports, 2 * args.keys))
        victim, vport = cluster.procs[2], cluster.ports[2]
        lost = stat(vport, "curr_items")
        victim.send_signal(signal.SIGKILL)
        ports = [p for p in ports if p != vport]
        detected = wait(lambda: all(stat(p, "ring_nodes", "cluster") == len(ports)
                                    for p in ports))
        healed = detected + wait(lambda: settled(ports, 2 * args.keys))
    finally:
        cluster.stop()
    n = args.nodes
    print(f"\n{n} nodes, N=2, {args.keys:,} keys of 100 B")
    print(f"join ({n} -> {n + 1}): in every ring {in_ring:.2f} s after its start; "
          f"{moved:,} copies moved {joined - in_ring:.2f} s later: "
          f"{moved / (joined - in_ring):,.0f} keys/s (target >= 20,000), "
          f"{moved / joined:,.0f} counting its start; moved / ideal {moved / ideal:.3f} "
          f"(target <= 1.15)")
    print(f"a reader through one node (one connection, gets back to back): steady p99 "
          f"{steady[0]:.2f} ms (max {steady[1]:.1f}, {steady[2]:,} gets); while the data moved "
          f"p99 {during[0]:.2f} ms = {during[0] / steady[0]:.2f}x (target <= 2x), longest get "
          f"{during[1]:.1f} ms (target <= 100), {during[2]:,} gets; misses {reader.misses}; "
          f"gossip suspicions during the join {suspected} (target 0)")
    print(f"graceful leave ({n + 1} -> {n}) of a node holding {left_copies:,} copies: "
          f"settled {left:.2f} s after SIGTERM: {left_copies / left:,.0f} keys/s")
    print(f"kill -9 ({n} -> {n - 1}) of a node holding {lost:,} copies: detected after "
          f"{detected:.2f} s, two copies of every key again {healed - detected:.2f} s later: "
          f"{lost / (healed - detected):,.0f} keys/s after detection (target >= 5,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
