"""The named workloads of `python -m bench compare`: what each sends, and at which sizes.

Throughput workloads are driven by memcaslap (or the pipelined meta client) against a fresh
server per round; memory workloads load items over the text protocol and read `stats`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bench.memcaslap import SlapConfig

# Same -m for both servers in the throughput workloads: large enough that memcaslap's working
# set (concurrency x window keys) is never evicted, so both serve the same hits.
THROUGHPUT_MB = 1024


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str                     # "slap" | "meta" | "memory"
    description: str
    slap: SlapConfig | None = None
    meta: dict = field(default_factory=dict)
    mb: int = THROUGHPUT_MB


THROUGHPUT = [
    Workload("get90", "slap", "90/10 get/set, 100 B values, 32 connections",
             slap=SlapConfig(value_size=100, get_ratio=0.9)),
    Workload("set-heavy", "slap", "50/50 get/set, 100 B values, 32 connections",
             slap=SlapConfig(value_size=100, get_ratio=0.5)),
    Workload("multiget10", "slap", "90/10, gets of 10 keys (memcaslap -d 10), 100 B values",
             slap=SlapConfig(value_size=100, get_ratio=0.9, multiget=10)),
    # A 1k-key window per connection keeps 32 x 1k x 16 KB = 512 MB under THROUGHPUT_MB.
    Workload("large", "slap", "90/10 get/set, 16 KB values, 32 connections",
             slap=SlapConfig(value_size=16384, get_ratio=0.9, window="1k")),
    Workload("pipelined-meta", "meta",
             "90/10 mg/ms in batches of 100 (+mn) on 32 connections, 100 B values, 10k keys",
             meta={"conns": 32, "batch": 100, "keys": 10_000, "value_size": 100,
                   "get_ratio": 0.9}),
]

MEMORY = [
    Workload("rss-per-item", "memory",
             "RSS growth per item, 1,000,000 items, 14 B keys, 100 B values, -m 4096", mb=4096),
    Workload("items-held", "memory",
             "items held at -m 64 after 100,000 sets of 10-4000 B (uniform) values", mb=64),
    Workload("zipf-hit", "memory",
             "hit ratio, cache-aside replay of Zipf(0.99) over 10M keys at -m 64", mb=64),
    # Issue 14: values of 10 B-1 MB, log-uniform (bench/flood.py).
    Workload("flood-64", "memory",
             "peak RSS during 20 s of sets of 10 B-1 MB values (8 connections) at -m 64", mb=64),
    Workload("flood-256", "memory",
             "peak RSS during 20 s of sets of 10 B-1 MB values (8 connections) at -m 256",
             mb=256),
    Workload("zipf-large-hit", "memory",
             "hit ratio, cache-aside Zipf(0.99) over 200k keys of 10 B-1 MB values at -m 64",
             mb=64),
]

ALL = {w.name: w for w in THROUGHPUT + MEMORY}
DEFAULT = [w.name for w in THROUGHPUT + MEMORY]
