"""Locks: uncontended acquire + release latency and throughput on three nodes (N=3), beside a
bare `add`/`delete` lock on one memcached and Redis's lock (SET NX PX, then the compare-and-
delete script redis-py's Lock runs) when redis-server is installed; and contended throughput
with 10 clients on one lock.

    python -m bench.lock_bench [--seconds 3]

Uncontended: one client, one connection, acquire then release in a loop; each pair's round
trips are timed (p50/p99 microseconds) and pairs per second counted. Contended: 10 threads
loop acquire / release on one name (ours through the lease API and its waiter queue; the bare
locks retry every millisecond); handovers per second.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from bench import servers
from bench.cluster_bench import Cluster, call
from pycache_cluster.locks.client import LockClient, LockError

REDIS_UNLOCK = (b'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1])'
                b' else return 0 end')


def resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class Wire:
    """One connection; `ask` sends a request and reads one reply line (enough for these)."""

    def __init__(self, port: int):
        self.s = socket.create_connection((servers.HOST, port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def ask(self, data: bytes) -> bytes:
        self.s.sendall(data)
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line


def ours_pair(w: Wire, name: bytes, owner: bytes) -> bool:
    got = w.ask(b"lock acquire %s %s 5000\r\n" % (name, owner)).split()
    if got[0] != b"LOCKED":
        return False
    w.ask(b"lock release %s %s %s\r\n" % (name, owner, got[1]))
    return True


def memcached_pair(w: Wire, name: bytes, owner: bytes) -> bool:
    if w.ask(b"add %s 0 5 %d\r\n%s\r\n" % (name, len(owner), owner)) != b"STORED":
        return False
    w.ask(b"delete %s\r\n" % name)
    return True


def redis_pair(w: Wire, name: bytes, owner: bytes) -> bool:
    if w.ask(resp(b"SET", name, owner, b"NX", b"PX", b"5000")) != b"+OK":
        return False
    w.ask(resp(b"EVAL", REDIS_UNLOCK, b"1", name, owner))
    return True


def uncontended(port: int, pair, seconds: float) -> dict:
    w, lat, n = Wire(port), [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        assert pair(w, b"u", b"o%d" % n)
        lat.append(time.perf_counter() - t)
        n += 1
    lat.sort()
    return {"pairs/s": n / seconds, "p50 us": lat[len(lat) // 2] * 1e6,
            "p99 us": lat[int(len(lat) * 0.99)] * 1e6}


def contended(worker, seconds: float, clients: int = 10) -> float:
    count, stop = [0] * clients, threading.Event()
    threads = [threading.Thread(target=worker, args=(i, count, stop)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    return sum(count) / seconds


def bare_worker(port, pair):
    def run(i, count, stop):
        w = Wire(port)
        while not stop.is_set():
            if pair(w, b"c", b"o%d" % i):
                count[i] += 1
            else:
                time.sleep(0.001)
    return run


def ours_worker(ports, lost):
    def run(i, count, stop):
        client = LockClient([f"{servers.HOST}:{ports[i % len(ports)]}"])
        while not stop.is_set():
            lease = client.lock("c", ttl=5, timeout=2)
            try:
                lease.acquire()
            except LockError:
                lost[0] += 1    # a timeout under contention is a lost turn
                continue
            lease.release()
            count[i] += 1
    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lock_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    cluster = Cluster(3, "--replicas", "3", "--lock-max-ttl", "5")
    memcached = servers.ServerProcess("memcached", servers.MEMCACHED_CMD, 64).start()
    redis = None
    if shutil.which("redis-server"):
        rport = servers.free_port()
        redis = servers.register(subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", servers.HOST, "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True))
    try:
        deadline = time.monotonic() + 30
        while not all(b"STAT lock_quarantined 0" in call(p, b"stats locks\r\n")
                      for p in cluster.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("quarantine did not end")
            time.sleep(0.2)
        rows = {"ours N=3": uncontended(cluster.ports[0], ours_pair, args.seconds),
                "memcached add/delete": uncontended(memcached.port, memcached_pair,
                                                    args.seconds)}
        if redis is not None:
            time.sleep(0.3)
            rows["redis SET NX + EVAL"] = uncontended(rport, redis_pair, args.seconds)
        print(f"uncontended, one client (python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cpus)")
        print(f"{'':24}{'pairs/s':>10}{'p50 us':>10}{'p99 us':>10}")
        for name, r in rows.items():
            print(f"{name:24}{r['pairs/s']:>10.0f}{r['p50 us']:>10.0f}{r['p99 us']:>10.0f}")
        print("contended, 10 clients on one lock: handovers/s")
        lost = [0]
        rate = contended(ours_worker(cluster.ports, lost), args.seconds)
        print(f"{'ours N=3':24}{rate:>10.0f}   ({lost[0]} acquire timeouts)")
        print(f"{'memcached add/delete':24}"
              f"{contended(bare_worker(memcached.port, memcached_pair), args.seconds):>10.0f}")
        if redis is not None:
            print(f"{'redis SET NX + EVAL':24}"
                  f"{contended(bare_worker(rport, redis_pair), args.seconds):>10.0f}")
        print("(one run; the bare locks have no fencing, no quorum, no queue)")
    finally:
        cluster.stop()
        memcached.stop()
        if redis is not None:
            servers.kill_process(redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
