"""Zipf(0.99) trace generation and a cache-aside replayer (get; on a miss, set).

The trace is ranks drawn by inverse CDF over 10,000,000 keys (seeded, so every server replays
the same one). Each key has a fixed value size derived from its rank. Replay over the network
sends batches of `mg <key>` (4-byte replies: HD hit, EN miss), then a `set ... noreply` for each
miss of the batch. The hit ratio is read from the server's `stats` (get_hits, get_misses) over
the measured part of the trace, after a warm-up part that fills the cache.
"""
from __future__ import annotations

import math
import socket
from collections.abc import Callable

import numpy as np

from bench.mcclient import TextClient, stat_int

KEYS = 10_000_000
THETA = 0.99
REQUESTS = 3_000_000
WARMUP = 1_000_000
BATCH = 200
MIN_SIZE, MAX_SIZE = 10, 1000
SEED = 99

# The mixed-size variant (issue 14): values of 10 B-1 MB, log-uniform, over fewer keys and a
# shorter trace (its misses send ~90 KB on average).
LARGE_KEYS = 200_000
LARGE_REQUESTS = 400_000
LARGE_WARMUP = 100_000
LARGE_MIN_SIZE, LARGE_MAX_SIZE = 10, 1_000_000

_VALUE = b"z" * LARGE_MAX_SIZE
_VIEW = memoryview(_VALUE)


def trace(keys: int = KEYS, theta: float = THETA, requests: int = REQUESTS,
          seed: int = SEED) -> np.ndarray:
    """`requests` key ranks (0 = most popular) drawn from Zipf(theta) over `keys` keys."""
    cdf = np.cumsum(1.0 / np.power(np.arange(1, keys + 1, dtype=np.float64), theta))
    cdf /= cdf[-1]
    u = np.random.default_rng(seed).random(requests)
    ranks = np.searchsorted(cdf, u, side="left")
    return np.minimum(ranks, keys - 1).astype(np.int64)


def key_of(rank: int) -> bytes:
    return b"zipf:%d" % rank


def size_of(rank: int) -> int:
    # A fixed pseudo-random size per key (Knuth multiplicative hash of the rank).
    return MIN_SIZE + ((rank * 2654435761) & 0xFFFFFFFF) % (MAX_SIZE - MIN_SIZE + 1)


def size_log_uniform(rank: int) -> int:
    """A fixed size per key, log-uniform in LARGE_MIN_SIZE..LARGE_MAX_SIZE."""
    u = ((rank * 2654435761) & 0xFFFFFFFF) / 2**32
    lo, hi = math.log(LARGE_MIN_SIZE), math.log(LARGE_MAX_SIZE + 1)
    return min(LARGE_MAX_SIZE, int(math.exp(lo + u * (hi - lo))))


def large_trace() -> np.ndarray:
    return trace(keys=LARGE_KEYS, requests=LARGE_REQUESTS)


def replay_server(address: tuple[str, int], ranks: np.ndarray, warmup: int = WARMUP,
                  progress: Callable[[int], None] | None = None,
                  size_fn: Callable[[int], int] = size_of) -> dict:
    """Replay `ranks` cache-aside against a server; hit ratio from its stats after `warmup`."""
    with TextClient(address) as c:
        sock = c.sock
        client_hits = 0
        measured_from = None
        before = {}
        n = len(ranks)
        for start in range(0, n, BATCH):
            if start >= warmup and measured_from is None:
                before = c.stats()
                measured_from, client_hits = start, 0
            batch = ranks[start:start + BATCH].tolist()
            keys = [key_of(r) for r in batch]
            sock.sendall(b"".join(b"mg %s\r\n" % k for k in keys))
            want = 4 * len(keys)
            reply = _recv_exact(sock, want)
            sets = []
            for i, k in enumerate(keys):
                code = reply[4 * i:4 * i + 2]
                if code == b"HD":
                    client_hits += 1
                elif code == b"EN":
                    size = size_fn(batch[i])
                    sets += (b"set %s 0 0 %d noreply\r\n" % (k, size), _VIEW[:size], b"\r\n")
                else:
                    raise RuntimeError(f"unexpected mg reply {reply[4 * i:4 * i + 40]!r}")
            if sets:
                sock.sendall(b"".join(sets))
            if progress is not None:
                progress(len(keys))
        c.sync()
        after = c.stats()
    measured = n - (measured_from or 0)
    hits = stat_int(after, "get_hits") - stat_int(before, "get_hits")
    misses = stat_int(after, "get_misses") - stat_int(before, "get_misses")
    return {
        "requests": measured,
        "get_hits": hits,
        "get_misses": misses,
        "hit_ratio": hits / (hits + misses) if hits + misses else float("nan"),
        "client_hit_ratio": client_hits / measured if measured else float("nan"),
        "curr_items": stat_int(after, "curr_items"),
        "evictions": stat_int(after, "evictions"),
    }


def replay_store(store, ranks: np.ndarray, warmup: int = WARMUP,
                 size_fn: Callable[[int], int] = size_of) -> dict:
    """The same replay against an in-process `pycache_cluster.store.Store`."""
    get, set_ = store.get, store.set
    hits = 0
    before = {}
    for i, r in enumerate(ranks.tolist()):
        if i == warmup:
            before, hits = store.stats(), 0
        k = key_of(r)
        if get(k) is None:
            size = size_fn(r)
            set_(k, _VIEW[:size])
        else:
            hits += 1
    after = store.stats()
    measured = len(ranks) - warmup
    s_hits = stat_int(after, "get_hits") - stat_int(before, "get_hits")
    s_misses = stat_int(after, "get_misses") - stat_int(before, "get_misses")
    ratio = s_hits / (s_hits + s_misses) if s_hits + s_misses else hits / measured
    return {"requests": measured, "get_hits": s_hits, "get_misses": s_misses,
            "hit_ratio": ratio, "client_hit_ratio": hits / measured,
            "curr_items": stat_int(after, "curr_items"),
            "evictions": stat_int(after, "evictions")}


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise ConnectionError("server closed the connection")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
