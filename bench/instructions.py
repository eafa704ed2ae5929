"""Instructions per request of a node, counted by callgrind: repeatable to a fraction of a
percent whatever else the machine is doing (wall-clock CPU on a shared machine is not).

    python -m bench.instructions [--requests 20000] [--tree DIR ...]

For each tree (a checkout with its extensions built in place; default: this one) it runs a
node under `valgrind --tool=callgrind` twice, once answering nothing and once answering
`--requests` requests of a memcaslap-like mix (90 % get, 10 % set, 1,000 keys, 100-byte
values, one request per round trip), and prints (instructions of the second - of the
first) / requests: user-space instructions per request, interpreter and event loop
included, kernel excluded. Two trees side by side show what a change costs per request.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workload(n: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    value = b"v" * 100
    reqs = [b"set k%d 0 0 100\r\n%s\r\n" % (i, value) for i in range(1000)]
    for _ in range(n):
        k = rnd.randrange(1000)
        if rnd.random() < 0.9:
            reqs.append(b"get k%d\r\n" % k)
        else:
            reqs.append(b"set k%d 0 0 100\r\n%s\r\n" % (k, value))
    return reqs


def talk(port: int, reqs: list[bytes]) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    for r in reqs:
        s.sendall(r)
        buf = b""
        while not buf.endswith((b"END\r\n", b"STORED\r\n")):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("node closed the connection")
            buf += chunk
    s.close()


def count(tree: str, n: int, extra: list[str], keep: str | None = None) -> int:
    """Total instructions (callgrind's Ir) of one node's life answering n requests; `keep`
    names a file to leave callgrind's profile in (for callgrind_annotate)."""
    port = free_port()
    out = keep or tempfile.mktemp(prefix="callgrind.", suffix=".out")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "pycache_cluster", "serve", "-l", "127.0.0.1",
            "-p", str(port), "-m", "64", *extra]
    proc = subprocess.Popen(argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        talk(port, workload(n))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    with open(out) as f:
        text = f.read()
    if keep is None:
        os.unlink(out)
    return int(re.search(r"^summary:\s+(\d+)", text, re.MULTILINE).group(1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--tree", nargs="+", default=[ROOT],
                   help="checkouts to measure, extensions built in place")
    p.add_argument("--keep", metavar="PREFIX",
                   help="keep each busy run's profile as PREFIX.<n>.out")
    args = p.parse_args(argv)
    base = None
    for i, tree in enumerate(args.tree):
        idle = count(tree, 0, [])
        busy = count(tree, args.requests, [], f"{args.keep}.{i}.out" if args.keep else None)
        per = (busy - idle) / args.requests
        base = base or per
        print(f"{tree}: {per:,.0f} instructions per request ({per / base:.3f}x the first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
