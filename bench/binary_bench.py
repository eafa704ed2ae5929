"""What a binary-protocol request costs our node beside memcached's binary path, same run.

    python -m bench.binary_bench [--seconds 4] [--rounds 3] [--conns 8] [--cluster]

Our node and memcached 1.6.18 (-t 1), each loaded in turn by the same closed-loop asyncio
client (uvloop) with `--conns` connections and 100-byte values: binary `get` one per round
trip, `get x16` and `set x16` (16 frames per write), and our node's text `get x16` as a
reference for the protocol itself. Rounds alternate the scenarios; the table shows medians of
throughput and server CPU microseconds per request (user + sys from /proc), and ours over
memcached for each workload.

--cluster: a 3-node cluster (N=2 W=2 R=1) instead, every request to its first node, CPU
summed over the three: binary `get x16` and `set x16` (through the gate, re-spoken as meta)
beside the same requests in text; the ratio is binary over text.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import time

from bench import servers

VALUE = b"v" * 100
KEYS = [b"bin:%d" % i for i in range(2000)]
HEADER = struct.Struct(">BBHBBHIIQ")


def get_frame(key: bytes) -> bytes:
    return HEADER.pack(0x80, 0x00, len(key), 0, 0, 0, len(key), 0, 0) + key


def set_frame(key: bytes) -> bytes:
    body = 8 + len(key) + len(VALUE)
    return HEADER.pack(0x80, 0x01, len(key), 8, 0, 0, body, 0, 0) + b"\0" * 8 + key + VALUE


async def read_frames(reader, n: int) -> None:
    for _ in range(n):
        head = await reader.readexactly(24)
        body = HEADER.unpack(head)[6]
        if body:
            await reader.readexactly(body)


async def load(port: int, seconds: float, conns: int, depth: int, kind: str) -> int:
    deadline = time.monotonic() + seconds
    counts = []

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection(servers.HOST, port)
        n, k = 0, i
        while time.monotonic() < deadline:
            batch = []
            for _ in range(depth):
                key = KEYS[k % len(KEYS)]
                batch.append(b"get " + key + b"\r\n" if kind == "text" else
                             b"set %s 0 0 %d\r\n%s\r\n" % (key, len(VALUE), VALUE)
                             if kind == "text-set" else
                             set_frame(key) if kind == "set" else get_frame(key))
                k += 7
            writer.write(b"".join(batch))
            if kind == "text":
                for _ in range(depth):
                    await reader.readuntil(b"END\r\n")
            elif kind == "text-set":
                for _ in range(depth):
                    await reader.readuntil(b"STORED\r\n")
            else:
                await read_frames(reader, depth)
            n += depth
        writer.close()
        counts.append(n)

    await asyncio.gather(*(one(i) for i in range(conns)))
    return sum(counts)


async def preload(port: int) -> None:
    reader, writer = await asyncio.open_connection(servers.HOST, port)
    writer.write(b"".join(set_frame(k) for k in KEYS))
    await read_frames(reader, len(KEYS))
    writer.close()


def measure(port: int, pids: list[int], args, depth: int, kind: str) -> dict:
    before = [servers.read_cpu(pid) for pid in pids]
    t0 = time.monotonic()
    ops = asyncio.run(load(port, args.seconds, args.conns, depth, kind))
    elapsed = time.monotonic() - t0
    cpu = sum((servers.read_cpu(pid) - b).total for pid, b in zip(pids, before))
    return {"ops_per_sec": ops / elapsed, "cpu_us_per_op": cpu / ops * 1e6}


def run_rounds(scenarios: dict, args) -> dict:
    results: dict = {k: [] for k in scenarios}
    for r in range(args.rounds):
        for key, (port, pids, depth, kind) in scenarios.items():
            results[key].append(measure(port, pids, args, depth, kind))
            print(f"round {r + 1}: {key[0]:12} {key[1]:9} "
                  f"{results[key][-1]['cpu_us_per_op']:.2f} us/op", file=sys.stderr)
    return results


def table(results: dict, base_name: str, args) -> None:
    print(f"\n{args.rounds} rounds x {args.seconds:g} s, {args.conns} connections; medians")
    print(f"{'workload':13} {'server':10} {'ops/s':>9} {'CPU us/op':>10} "
          f"{'/ ' + base_name:>10}")
    for (work, name), runs in results.items():
        med = {m: statistics.median(x[m] for x in runs) for m in ("ops_per_sec", "cpu_us_per_op")}
        ratio = ""
        if name != base_name and (work, base_name) in results:
            base = statistics.median(x["cpu_us_per_op"] for x in results[(work, base_name)])
            ratio = f"{med['cpu_us_per_op'] / base:.2f}x"
        print(f"{work:13} {name:10} {med['ops_per_sec']:>9,.0f} {med['cpu_us_per_op']:>10.2f} "
              f"{ratio:>10}")


def cluster_main(args) -> int:
    from bench.cluster_bench import Cluster
    cluster = Cluster(3)
    try:
        port, pids = cluster.ports[0], [p.pid for p in cluster.procs]
        asyncio.run(preload(port))
        scenarios = {}
        for work, kind, text_kind in (("get x16", "get", "text"), ("set x16", "set", "text-set")):
            scenarios[(work, "text")] = (port, pids, 16, text_kind)
            scenarios[(work, "binary")] = (port, pids, 16, kind)
        results = run_rounds(scenarios, args)
    finally:
        cluster.stop()
    print("3 nodes, N=2 W=2 R=1, requests to the first node, CPU of all three")
    table(results, "text", args)
    return 0


WORKLOADS = (("get", 1, "get"), ("get x16", 16, "get"), ("set x16", 16, "set"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.binary_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--cluster", action="store_true")
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.cluster:
        return cluster_main(args)
    ours = servers.ServerProcess("pycache", servers.OURS_CMD, 256).start()
    theirs = servers.ServerProcess("memcached", servers.MEMCACHED_CMD, 256).start()
    try:
        for node in (ours, theirs):
            asyncio.run(preload(node.port))
        scenarios = {(work, name): (node.port, [node.pid], depth, kind)
                     for work, depth, kind in WORKLOADS
                     for name, node in (("pycache", ours), ("memcached", theirs))}
        scenarios[("text get x16", "pycache")] = (ours.port, [ours.pid], 16, "text")
        results = run_rounds(scenarios, args)
    finally:
        theirs.stop()
        ours.stop()
    table(results, "memcached", args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
