"""A pipelined meta-protocol load generator (`mg`/`ms` in batches), run as its own process.

Each connection sends a pre-built batch of requests ending in `mn` and waits for the `MN` that
closes the batch's replies, then sends the next. The client only counts batches and looks at the
last bytes received, so it stays far cheaper per request than the server it drives.

    python -m bench.metaclient HOST PORT --seconds 5 --conns 32 --batch 100
prints one JSON line: {"ops": ..., "seconds": ..., "batches": ...}.
`--preload` sets every key once (pipelined, noreply) and exits.
"""
from __future__ import annotations

import argparse
import json
import random
import selectors
import socket
import time

END = b"mn\r\n"
END_REPLY = b"MN\r\n"


def key_of(i: int) -> bytes:
    return b"meta:%010d" % i


def build_batches(n_batches: int, batch: int, keys: int, value_size: int, get_ratio: float,
                  seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    value = b"m" * value_size
    out = []
    for _ in range(n_batches):
        parts = []
        for _ in range(batch):
            k = key_of(rng.randrange(keys))
            if rng.random() < get_ratio:
                parts.append(b"mg %s v\r\n" % k)
            else:
                parts.append(b"ms %s %d\r\n%s\r\n" % (k, value_size, value))
        parts.append(END)
        out.append(b"".join(parts))
    return out


def preload(address: tuple[str, int], keys: int, value_size: int) -> None:
    value = b"m" * value_size
    with socket.create_connection(address) as s:
        buf = []
        for i in range(keys):
            buf.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (key_of(i), value_size, value))
            if len(buf) == 2000:
                s.sendall(b"".join(buf))
                buf = []
        buf.append(b"version\r\n")
        s.sendall(b"".join(buf))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection while preloading")
            reply += chunk
        if not reply.startswith(b"VERSION"):
            raise RuntimeError(f"preload: unexpected reply {reply[:200]!r}")


def run(address: tuple[str, int], seconds: float, conns: int, batches: list[bytes],
        batch: int) -> dict:
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(conns):
        s = socket.create_connection(address)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        # state: [next batch index, tail of the last bytes received]
        sel.register(s, selectors.EVENT_READ, [i % len(batches), b""])
    n_batches = 0
    start = time.perf_counter()
    deadline = start + seconds
    for s in socks:
        data = sel.get_key(s).data
        s.sendall(batches[data[0]])
    in_flight = len(socks)
    stopping = False
    while in_flight:
        for key, _ in sel.select(timeout=5.0):
            s, state = key.fileobj, key.data
            chunk = s.recv(1 << 18)
            if not chunk:
                raise ConnectionError("server closed the connection")
            tail = (state[1] + chunk)[-4:] if len(chunk) < 4 else chunk[-4:]
            if tail != END_REPLY:
                state[1] = tail
                continue
            state[1] = b""
            n_batches += 1
            if not stopping and time.perf_counter() >= deadline:
                stopping = True
            if stopping:
                in_flight -= 1
                continue
            state[0] = (state[0] + 1) % len(batches)
            s.sendall(batches[state[0]])
    elapsed = time.perf_counter() - start
    for s in socks:
        s.close()
    return {"ops": n_batches * batch, "seconds": elapsed, "batches": n_batches}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.metaclient", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--get-ratio", type=float, default=0.9)
    p.add_argument("--preload", action="store_true")
    a = p.parse_args(argv)
    address = (a.host, a.port)
    if a.preload:
        preload(address, a.keys, a.value_size)
        return
    batches = build_batches(64, a.batch, a.keys, a.value_size, a.get_ratio)
    print(json.dumps(run(address, a.seconds, a.conns, batches, a.batch)), flush=True)


if __name__ == "__main__":
    main()
