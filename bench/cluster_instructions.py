"""Instructions per request of a cluster's coordinator, counted by callgrind: the cluster
paths' cost, repeatable where CPU time on a shared machine is not (bench/instructions.py
does the same for one node alone).

    python -m bench.cluster_instructions [--requests 5000] [--tree DIR ...]

For each tree (a checkout with its extensions built in place) and each scenario, the
coordinator runs under `valgrind --tool=callgrind` beside plain peers (from the same tree);
once the ring has formed its counters are zeroed (callgrind_control -z), the scenario's
requests are answered one per round trip, and the counters are read (callgrind_control -e);
a window of the same length without requests is subtracted (gossip, timers; anti-entropy is
off), and the median of three such pairs is the figure. Scenarios:
  forward     2 nodes, N=1: every key the peer's; 90 % get, 10 % set
  replicated  3 nodes, N=3 W=2 R=1: the coordinator an owner of every key; 90 % get (local),
              10 % set (versioned here, sent to both peers)
  quorum-get  3 nodes, N=3 W=2 R=2: gets merged from two owners
"""
from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import time

from bench import servers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = {
    "forward": (2, ("--replicas", "1", "--write-quorum", "1")),
    "replicated": (3, ("--replicas", "3", "--write-quorum", "2", "--read-quorum", "1")),
    "quorum-get": (3, ("--replicas", "3", "--write-quorum", "2", "--read-quorum", "2")),
}
VALUE = b"v" * 100
#: Busy windows, each with an idle window of the same length after it: the median counts.
ROUNDS = 3


def call(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(data + b"mn\r\n")
        out = b""
        while not out.endswith(b"MN\r\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            out += chunk
    return out[:-4]


def node_argv(port: int, gport: int, name: str, flags, join: int | None) -> list[str]:
    argv = [sys.executable, "-m", "pycache_cluster", "serve", "-l", "127.0.0.1", "-p",
            str(port), "-m", "64", "--node-name", name, "--gossip-port", str(gport),
            "--gossip-preset", "lan", "--anti-entropy-interval", "0", *flags]
    return argv + (["--join", f"127.0.0.1:{join}"] if join else [])


def zero(pid: int) -> None:
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True,
                   timeout=60)


def counter(pid: int) -> int:
    out = subprocess.run(["callgrind_control", "-e", "Ir", str(pid)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    # "Totals: Ir" then one "Th <n> <count>" line per thread.
    counts = re.findall(r"^\s*Th\s+\d+\s+([\d,]+)", out, re.MULTILINE)
    if not counts:
        raise RuntimeError(f"callgrind_control: {out!r}")
    return sum(int(c.replace(",", "")) for c in counts)


def requests(keys: list[bytes], n: int) -> list[bytes]:
    rnd = random.Random(1)
    out = []
    for _ in range(n):
        k = rnd.choice(keys)
        out.append(b"get %s\r\n" % k if rnd.random() < 0.9 else
                   b"set %s 0 0 %d\r\n%s\r\n" % (k, len(VALUE), VALUE))
    return out


def talk(port: int, reqs: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        for r in reqs:
            s.sendall(r)
            buf = b""
            while not buf.endswith((b"END\r\n", b"STORED\r\n")):
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("the coordinator closed the connection")
                buf += chunk


def measure(tree: str, scenario: str, n: int) -> float:
    nodes, flags = SCENARIOS[scenario]
    ports = [servers.free_port() for _ in range(2 * nodes)]
    procs = []
    try:
        for i in range(nodes):
            argv = node_argv(ports[2 * i], ports[2 * i + 1], f"n{i}", flags,
                             ports[1] if i else None)
            if i == 0:
                argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        *argv]
            procs.append(servers.register(subprocess.Popen(
                argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)))
            time.sleep(3 if i == 0 else 0.5)
        coord = ports[0]
        deadline = time.monotonic() + 180
        while True:
            try:
                if b"STAT ring_nodes %d\r\n" % nodes in call(coord, b"stats cluster\r\n"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not form")
            time.sleep(0.5)
        keys, i = [], 0
        while len(keys) < 200:
            key = b"ci:%d" % i
            i += 1
            owner = call(coord, b"cluster owners " + key + b"\r\n").split()[1]
            if scenario != "forward" or owner != b"n0":
                keys.append(key)
        call(ports[2], b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(VALUE), VALUE)
                                for k in keys))
        reqs = requests(keys, n)
        talk(coord, reqs[:200])                 # warm: links open, caches filled
        pid = procs[0].pid
        per = []
        for _ in range(ROUNDS):
            zero(pid)
            t0 = time.monotonic()
            talk(coord, reqs)
            took = time.monotonic() - t0
            busy = counter(pid)
            zero(pid)
            time.sleep(took)
            per.append((busy - counter(pid)) / n)
        return sorted(per)[ROUNDS // 2]
    finally:
        for p in procs:
            servers.kill_process(p)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster_instructions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--tree", nargs="+", default=[ROOT])
    p.add_argument("--scenario", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    args = p.parse_args(argv)
    for scenario in args.scenario:
        base = None
        for tree in args.tree:
            per = measure(tree, scenario, args.requests)
            base = base or per
            print(f"{scenario:11s} {tree}: {per:,.0f} instructions per request "
                  f"({per / base:.3f}x the first)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
