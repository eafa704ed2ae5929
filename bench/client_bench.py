"""The cluster client's cost: client-routed requests beside pymemcache to one node and beside
requests a node forwards, measured in the same run.

    python -m bench.client_bench [--seconds 0.25] [--rounds 12] [--write]

A three-node cluster on 127.0.0.1 (cluster_bench.Cluster, default vnodes). One caller in this
process issues requests back to back (a closed loop of one: the client's own cost per request
is what is measured, not the servers' capacity), 100-byte values, keys preloaded:
  pymemcache, owned keys   pymemcache's Client to node A, keys A owns: no hop (the baseline)
  pymemcache, forwarded    pymemcache's Client to node A, keys spread: A forwards 2 in 3
  PooledClient, owned      pymemcache's PooledClient (its thread-safe pool) to A, owned keys
  Client, routed           pycache_cluster.client.Client, keys spread, each sent to its owner
  AsyncClient, routed      the same through AsyncClient (sequential awaits, uvloop)
  aiomcache, owned keys    aiomcache (an asyncio client) to node A, keys A owns: the asyncio
                           reference, when aiomcache is installed
for get, set and a 10-key get_many. Client CPU per operation is this process's user+sys time
(time.process_time: every thread, the client's ring thread included) over the operations done;
hops per operation are the nodes' `stats cluster` forwarded counters summed. Each round runs
every scenario for --seconds, one after the other; the table shows each scenario's median
over the rounds, and its ratio to the baseline as the median of the per-round ratios (a
scenario and its baseline ran within a second of each other, so load from elsewhere on the
machine weighs on both alike). Targets: a routed get within 1.2x pymemcache's client CPU per
operation (owned keys), and zero hops. --write replaces the "client" section of
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from pymemcache.client.base import Client as Pymemcache
from pymemcache.client.base import PooledClient

from bench import report, servers
from bench.cluster_bench import Cluster, call, preload
from pycache_cluster.client import AsyncClient, Client

VALUE = b"v" * 100
OPS = ("get", "set", "get_many10")
SCENARIOS = ("pymemcache, owned keys", "pymemcache, forwarded", "PooledClient, owned",
             "Client, routed", "AsyncClient, routed", "aiomcache, owned keys")


def forwarded(cluster: Cluster) -> int:
    total = 0
    for port in cluster.ports:
        for line in call(port, b"stats cluster\r\n").split(b"\r\n"):
            if line.startswith(b"STAT forwarded "):
                total += int(line.split()[2])
    return total


def sync_loop(fn, keys: list[bytes], seconds: float, batch: int) -> int:
    n, i, deadline = 0, 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            fn(keys[i:i + batch] if batch > 1 else keys[i])
            i = (i + batch) % (len(keys) - batch)
        n += 200
    return n


async def async_loop(fn, keys: list[bytes], seconds: float, batch: int) -> int:
    n, i, deadline = 0, 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            await fn(keys[i:i + batch] if batch > 1 else keys[i])
            i = (i + batch) % (len(keys) - batch)
        n += 200
    return n


def measure(cluster: Cluster, run) -> dict:
    hops = forwarded(cluster)
    cpu, wall = time.process_time(), time.perf_counter()
    ops = run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"ops_per_sec": ops / wall, "cpu_us": cpu / ops * 1e6,
            "hops": (forwarded(cluster) - hops) / ops}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.client_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=0.25)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    cluster = Cluster(3)
    try:
        spread = [b"key:%d" % i for i in range(3000)]
        owned = [k for k in (b"own:%d" % i for i in range(9000)) if cluster.owner(k) == b"b0"]
        for keys in (spread, owned):
            preload(cluster.ports[0], keys)
        a = ("127.0.0.1", cluster.ports[0])
        plain = Pymemcache(a, no_delay=True, default_noreply=False)
        pooled = PooledClient(a, no_delay=True, default_noreply=False)
        routed = Client([f"{a[0]}:{a[1]}"])
        aclient = AsyncClient([f"{a[0]}:{a[1]}"])
        loop.run_until_complete(aclient.start())
        value = VALUE

        def sync_run(client, op, keys):
            fn = {"get": client.get, "set": lambda k: client.set(k, value),
                  "get_many10": client.get_many}[op]
            return lambda: sync_loop(fn, keys, args.seconds, 10 if op == "get_many10" else 1)

        def async_run(client, op, keys):
            if client is aclient:
                fn = {"get": client.get, "set": lambda k: client.set(k, value),
                      "get_many10": client.get_many}[op]
            else:
                fn = {"get": client.get, "set": lambda k: client.set(k, value),
                      "get_many10": lambda ks: client.multi_get(*ks)}[op]
            return lambda: loop.run_until_complete(
                async_loop(fn, keys, args.seconds, 10 if op == "get_many10" else 1))

        try:
            import aiomcache
            reference = aiomcache.Client(*a)
        except ImportError:
            reference = None

        runs = {}
        for op in OPS:
            runs[(op, SCENARIOS[0])] = sync_run(plain, op, owned)
            runs[(op, SCENARIOS[1])] = sync_run(plain, op, spread)
            runs[(op, SCENARIOS[2])] = sync_run(pooled, op, owned)
            runs[(op, SCENARIOS[3])] = sync_run(routed, op, spread)
            runs[(op, SCENARIOS[4])] = async_run(aclient, op, spread)
            if reference is not None:
                runs[(op, SCENARIOS[5])] = async_run(reference, op, owned)
        results: dict = {k: [] for k in runs}
        for r in range(args.rounds):
            for key, run in runs.items():
                results[key].append(measure(cluster, run))
                print(f"round {r + 1}: {key[0]:10} {key[1]:24} "
                      f"{results[key][-1]['cpu_us']:.2f} us/op", file=sys.stderr)
        loop.run_until_complete(aclient.close())
        if reference is not None:
            loop.run_until_complete(reference.close())
        routed.close()
        pooled.close()
        plain.close()
    finally:
        cluster.stop()
    lines = [("| operation | caller | ops/s | client CPU µs/op | × pymemcache (owned keys) "
             "| hops/op |"), "|---|---|---:|---:|---:|---:|"]
    for (op, name), rs in results.items():
        med = {m: statistics.median(x[m] for x in rs) for m in ("ops_per_sec", "cpu_us", "hops")}
        ratio = statistics.median(x["cpu_us"] / b["cpu_us"] for x, b in
                                  zip(rs, results[(op, SCENARIOS[0])], strict=True))
        lines.append(f"| {op} | {name} | {med['ops_per_sec']:,.0f} | {med['cpu_us']:.2f} | "
                     f"{ratio:.2f}× | {med['hops']:.2f} |")
    table = "\n".join(lines)
    print(f"\n{args.rounds} rounds x {args.seconds:g} s per scenario, medians\n\n{table}")
    if args.write:
        write_results(table, args)
    return 0


def write_results(table: str, args) -> None:
    mach = report.machine()
    section = [
        "<!-- client:begin -->",
        f"## Cluster client: routed requests ({args.rounds} rounds × {args.seconds:g} s each)",
        "",
        f"- Date: {report.now_utc()} (commit {report.git_commit() or '?'})",
        (f"- Machine: {mach['cores']} cores, {mach['cpu_model']}, Linux {mach['kernel']}, "
        f"Python {mach['python']}; load average at start {mach['loadavg'][0]:.2f}"),
        (f"- Command: `python -m bench.client_bench --seconds {args.seconds:g} "
        f"--rounds {args.rounds} --write`"),
        "",
        table,
        "",
        ("- Three nodes on 127.0.0.1, one caller issuing requests back to back, 100-byte "
        "values. Client CPU: this process's user+sys time per operation (median over the "
        "rounds); × pymemcache: the median of the per-round ratios. Hops: forwarded "
        "requests (all nodes' `stats cluster`) per operation. Target: routed get ≤ 1.2× "
        "pymemcache's CPU per operation on owned keys, 0 hops."),
        "<!-- client:end -->",
    ]
    text = report.RESULTS_MD.read_text()
    begin, end = section[0], section[-1]
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        text = pre + "\n".join(section) + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    report.RESULTS_MD.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
