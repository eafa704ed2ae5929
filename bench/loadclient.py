"""A closed-loop load generator for one server: each connection sends one request and waits
for its reply (as memcaslap does), timing every request. Run as its own process.

    python -m bench.loadclient HOST PORT --seconds 5 --conns 16 --keys-file F [--mget 10]
                               [--op set]

Requests are `get <key>` (or `get` of --mget keys), or with --op set `set <key>` of a
100-byte value, with keys drawn at random from the file (one per line). Prints one JSON
line: {"ops", "seconds", "p50_us", "p99_us", "errors"}; a multi-get counts as one op, a
set answered anything but STORED counts as an error.
"""
from __future__ import annotations

import argparse
import json
import random
import selectors
import socket
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--keys-file", required=True)
    p.add_argument("--mget", type=int, default=1)
    p.add_argument("--op", choices=("get", "set"), default="get")
    args = p.parse_args()
    with open(args.keys_file, "rb") as f:
        keys = f.read().split()
    rnd = random.Random(7)
    if args.op == "set":
        requests = [b"set %s 0 0 100\r\n%s\r\n" % (rnd.choice(keys), b"v" * 100)
                    for _ in range(4096)]
        done = b"\r\n"
    else:
        requests = [b"get " + b" ".join(rnd.choice(keys) for _ in range(args.mget)) + b"\r\n"
                    for _ in range(4096)]
        done = b"END\r\n"
    errors = 0
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(args.conns):
        s = socket.create_connection((args.host, args.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        state = {"sock": s, "buf": b"", "t": 0.0, "i": i}
        sel.register(s, selectors.EVENT_READ, state)
        conns.append(state)
    lat: list[float] = []
    ops = 0
    start = time.perf_counter()
    end = start + args.seconds
    for st in conns:
        st["t"] = time.perf_counter()
        st["sock"].send(requests[st["i"] % len(requests)])
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for key, _ in sel.select(timeout=end - now):
            st = key.data
            chunk = st["sock"].recv(1 << 20)
            if not chunk:
                raise SystemExit("server closed a connection")
            st["buf"] += chunk
            if st["buf"].endswith(done):
                if args.op == "set" and st["buf"] != b"STORED\r\n":
                    errors += 1
                t = time.perf_counter()
                lat.append(t - st["t"])
                ops += 1
                st["buf"] = b""
                st["i"] += args.conns
                st["t"] = t
                st["sock"].send(requests[st["i"] % len(requests)])
    elapsed = time.perf_counter() - start
    lat.sort()
    print(json.dumps({"ops": ops, "seconds": elapsed,
                      "p50_us": lat[len(lat) // 2] * 1e6 if lat else 0,
                      "p99_us": lat[int(len(lat) * 0.99)] * 1e6 if lat else 0,
                      "errors": errors}))


if __name__ == "__main__":
    main()
