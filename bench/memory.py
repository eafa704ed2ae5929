"""Memory workloads: RSS per item, items held under a memory limit, Zipf hit ratio.

Each runs against a server over the text protocol (memcached, or our node: mode `node`) or, in
mode `inproc`, against `pycache_cluster.store.Store` in a fresh Python subprocess
(`python -m bench.inproc`), and reports plain numbers; memcached always runs as the baseline.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from bench import servers
from bench.mcclient import TextClient, set_noreply, stat_int

RSS_ITEMS = 1_000_000
RSS_VALUE_SIZE = 100
HELD_SETS = 100_000
HELD_MIN, HELD_MAX = 10, 4000
HELD_SEED = 7
ITEM_SIZE_MAX = 1 << 20


def rss_items(n: int = RSS_ITEMS) -> Iterator[tuple[bytes, bytes]]:
    """n distinct 14-byte keys with 100-byte values (one shared value object)."""
    value = b"v" * RSS_VALUE_SIZE
    for i in range(n):
        yield b"rss:%010d" % i, value


def held_items(n: int = HELD_SETS, seed: int = HELD_SEED) -> Iterator[tuple[bytes, bytes]]:
    """n distinct 14-byte keys with value sizes uniform in 10..4000 (seeded)."""
    rng = random.Random(seed)
    big = b"h" * HELD_MAX
    for i in range(n):
        yield b"hld:%010d" % i, big[: rng.randint(HELD_MIN, HELD_MAX)]


# --- against a server process ------------------------------------------------------------

def wait_settled(server: servers.ServerProcess, c: TextClient, interval: float = 0.25,
                 samples: int = 4, timeout: float = 60.0) -> tuple[int, dict]:
    """RSS and stats once the server is at rest: RSS and hash_power_level unchanged over
    `samples` reads and no hash expansion running. memcached grows its hash table from a
    background thread some time after the insert that crossed 1.5 items per bucket, and RSS
    alone can look stable before that thread has started."""
    deadline = time.monotonic() + timeout
    last, same = None, 0
    while True:
        st = c.stats()
        now = (server.rss(), st.get("hash_power_level"), st.get("hash_is_expanding", "0"))
        same = same + 1 if now == last and now[2] == "0" else 0
        last = now
        if same >= samples - 1 or time.monotonic() > deadline:
            return now[0], st
        time.sleep(interval)


def grow_hash_table(c: TextClient, key: bytes, value: bytes, timeout: float = 30.0) -> None:
    """Bring memcached's hash table to the size its item count calls for. memcached asks its
    maintenance thread to grow the table from an insert (a trylock: the request is dropped
    when the thread is busy), so after a bulk load the table can stay a power of two short
    until the next write. Re-setting an existing key (same value, same item count) retries
    the request; a server without these stats is left alone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = c.stats()
        try:
            power, items = int(st["hash_power_level"]), int(st["curr_items"])
        except (KeyError, ValueError):
            return
        if st.get("hash_is_expanding", "0") == "0" and items <= (1 << power) * 3 // 2:
            return
        c.load([set_noreply(key, value)])
        time.sleep(0.25)


def server_rss_per_item(server: servers.ServerProcess, n: int = RSS_ITEMS) -> dict:
    with TextClient(server.address) as c:
        before, _ = wait_settled(server, c)
        c.load(set_noreply(k, v) for k, v in rss_items(n))
        grow_hash_table(c, *next(rss_items(1)))
        after, st = wait_settled(server, c)
    items = stat_int(st, "curr_items")
    return {"items": items, "rss_before": before, "rss_after": after,
            "bytes_per_item": (after - before) / max(items, 1),
            "stats_bytes": stat_int(st, "bytes"), "hash_bytes": stat_int(st, "hash_bytes"),
            "evictions": stat_int(st, "evictions")}


def server_items_held(server: servers.ServerProcess, n: int = HELD_SETS) -> dict:
    with TextClient(server.address) as c:
        c.load(set_noreply(k, v) for k, v in held_items(n))
        st = c.stats()
    return {"items": stat_int(st, "curr_items"), "sets": n,
            "evictions": stat_int(st, "evictions"), "stats_bytes": stat_int(st, "bytes"),
            "limit_maxbytes": stat_int(st, "limit_maxbytes"), "rss": server.rss()}


def server_zipf(server: servers.ServerProcess, ranks,
                progress: Callable[[int], None] | None = None) -> dict:
    from bench import zipf
    return zipf.replay_server(server.address, ranks, progress=progress)


def server_zipf_large(server: servers.ServerProcess, ranks) -> dict:
    from bench import zipf
    return zipf.replay_server(server.address, ranks, warmup=zipf.LARGE_WARMUP,
                              size_fn=zipf.size_log_uniform)


FLOOD_SECONDS = 20.0


def server_flood(server: servers.ServerProcess, seconds: float = FLOOD_SECONDS) -> dict:
    """The mixed 10 B-1 MB flood (bench/flood.py): RSS each second, peak over the limit."""
    from bench import flood
    res = flood.measure(server.pid, server.address, server.mb, seconds)
    res.pop("probes", None)
    return res


# --- in process ---------------------------------------------------------------------------

def inproc(workload: str, timeout: float = 600.0) -> dict:
    """Run one memory workload in a fresh interpreter against our Store; its JSON result."""
    proc = servers.register(subprocess.Popen(
        [sys.executable, "-m", "bench.inproc", workload], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
        cwd=servers.ROOT))
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        servers.kill_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.inproc {workload} exited {proc.returncode}:\n"
                           f"{err.decode(errors='replace')[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])
