"""Memory workloads against `pycache_cluster.store.Store` inside this (fresh) interpreter.

    python -m bench.inproc rss-per-item|items-held|zipf-hit
prints one JSON line. RSS is read from /proc/self/statm before and after loading; the items
are generated lazily so that the loader itself holds no per-item memory.
"""
from __future__ import annotations

import gc
import json
import sys
import time

from bench import memory, servers


def _stable_rss() -> int:
    gc.collect()
    return servers.wait_rss_stable(servers.os.getpid(), interval=0.1, samples=3, timeout=5.0)


def rss_per_item(Store) -> dict:
    store = Store(limit_bytes=4096 << 20, item_size_max=memory.ITEM_SIZE_MAX)
    set_ = store.set
    # Warm the call path (first-call allocations) before the baseline.
    set_(b"warm", b"w")
    before = _stable_rss()
    t = time.perf_counter()
    for k, v in memory.rss_items():
        set_(k, v)
    load_s = time.perf_counter() - t
    after = _stable_rss()
    st = store.stats()
    items = int(st["curr_items"]) - 1
    return {"items": items, "rss_before": before, "rss_after": after,
            "bytes_per_item": (after - before) / max(items, 1), "load_seconds": load_s,
            "stats_bytes": int(st.get("bytes", 0)), "hash_bytes": int(st.get("hash_bytes", 0)),
            "evictions": int(st.get("evictions", 0))}


def items_held(Store) -> dict:
    store = Store(limit_bytes=64 << 20, item_size_max=memory.ITEM_SIZE_MAX)
    set_ = store.set
    for k, v in memory.held_items():
        set_(k, v)
    st = store.stats()
    return {"items": int(st["curr_items"]), "sets": memory.HELD_SETS,
            "evictions": int(st.get("evictions", 0)), "stats_bytes": int(st.get("bytes", 0)),
            "limit_maxbytes": int(st.get("limit_maxbytes", 0)),
            "rss": servers.read_rss(servers.os.getpid())}


def zipf_hit(Store) -> dict:
    from bench import zipf
    store = Store(limit_bytes=64 << 20, item_size_max=memory.ITEM_SIZE_MAX)
    return zipf.replay_store(store, zipf.trace())


def zipf_large_hit(Store) -> dict:
    from bench import zipf
    store = Store(limit_bytes=64 << 20, item_size_max=memory.ITEM_SIZE_MAX)
    return zipf.replay_store(store, zipf.large_trace(), warmup=zipf.LARGE_WARMUP,
                             size_fn=zipf.size_log_uniform)


FLOOD_SETS = 100_000


def _flood(Store, mb: int) -> dict:
    """The flood's sets (sizes, keys) straight into a Store: no connections, no buffers."""
    import random

    from bench import flood
    store = Store(limit_bytes=mb << 20, item_size_max=memory.ITEM_SIZE_MAX)
    value = memoryview(b"f" * flood.MAX_SIZE)
    rng = random.Random(14)
    store.set(b"warm", b"w")
    before = _stable_rss()
    peak = 0
    for i in range(FLOOD_SETS):
        store.set(b"fl:%d" % rng.randrange(flood.KEYS), value[:flood.log_uniform(rng)])
        if i % 500 == 0:
            peak = max(peak, servers.read_rss(servers.os.getpid()))
    st = store.stats()
    limit = mb << 20
    return {"mb": mb, "sets": FLOOD_SETS, "baseline_rss": before, "peak_rss": peak,
            "peak_ratio": (peak - before) / limit, "peak_ratio_total": peak / limit,
            "curr_items": int(st["curr_items"]), "bytes": int(st["bytes"]),
            "evictions": int(st["evictions"])}


WORKLOADS = {"rss-per-item": rss_per_item, "items-held": items_held, "zipf-hit": zipf_hit,
             "zipf-large-hit": zipf_large_hit,
             "flood-64": lambda Store: _flood(Store, 64),
             "flood-256": lambda Store: _flood(Store, 256)}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in WORKLOADS:
        sys.exit(f"usage: python -m bench.inproc {{{'|'.join(WORKLOADS)}}}")
    from pycache_cluster.store import Store
    print(json.dumps(WORKLOADS[sys.argv[1]](Store)), flush=True)


if __name__ == "__main__":
    main()
