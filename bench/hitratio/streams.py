"""The request streams of bench/hitratio: key ids and per-key sizes, as numpy arrays.

Every stream is a look-aside cache's: each request is a get, and a get that misses is
followed by a set of the same key with the key's size. Sizes belong to keys (a key is
always stored with the same size). Key counts are scaled down from the 1-10 M keys of the
issue so that a full run (4 replays over the protocol and 8 simulations per stream) takes
minutes on two cores; the shapes (Zipf exponent, size range, the share of one-hit wonders,
the scan's length against the cache) are what matter for the ratios.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stream:
    name: str
    description: str
    ids: np.ndarray        # uint64 key id per request
    sizes: np.ndarray      # value bytes per key id (indexed by id)

    def key_bytes(self, i: int) -> bytes:
        return b"k%d" % i

    @property
    def footprint(self) -> int:
        """Bytes of every distinct key's value and key name."""
        uniq = np.unique(self.ids)
        digits = np.floor(np.log10(np.maximum(uniq, 1).astype(np.float64))).astype(np.int64) + 1
        return int(self.sizes[uniq].sum(dtype=np.int64) + (digits + 1).sum())


def zipf_ranks(rng, n_keys: int, alpha: float, n: int) -> np.ndarray:
    """n ranks in 0..n_keys-1, P(rank r) proportional to 1/(r+1)^alpha."""
    w = 1.0 / np.power(np.arange(1, n_keys + 1, dtype=np.float64), alpha)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n)).astype(np.uint64)


def uniform_sizes(rng, n_keys: int, lo: int = 10, hi: int = 4000) -> np.ndarray:
    return rng.integers(lo, hi + 1, n_keys).astype(np.uint32)


def log_uniform_sizes(rng, n_keys: int, lo: int = 10, hi: int = 1_000_000) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n_keys)).astype(np.uint32)


def zipf(alpha: float, large: bool, scale: float) -> Stream:
    rng = np.random.default_rng(int(alpha * 100) + (7 if large else 0))
    n_keys, n = (int(10_000 * scale), int(150_000 * scale)) if large else \
        (int(300_000 * scale), int(1_500_000 * scale))
    perm = rng.permutation(n_keys).astype(np.uint64)     # popularity apart from key ids
    ids = perm[zipf_ranks(rng, n_keys, alpha, n)]
    sizes = log_uniform_sizes(rng, n_keys) if large else uniform_sizes(rng, n_keys)
    span = "10 B-1 MB log-uniform" if large else "10 B-4 KB uniform"
    return Stream(f"zipf{alpha:g}-{'1m' if large else '4k'}",
                  f"Zipf {alpha:g} over {n_keys:,} keys, {n:,} requests, values {span}",
                  ids, sizes)


def one_hit_wonders(scale: float) -> Stream:
    """60 % of requests for keys never seen before or after (CDN and social traces), 40 % a
    Zipf 1.0 core of 100k keys."""
    rng = np.random.default_rng(11)
    n, core = int(1_500_000 * scale), int(100_000 * scale)
    one = rng.random(n) < 0.6
    ids = rng.permutation(core).astype(np.uint64)[zipf_ranks(rng, core, 1.0, n)]
    ids[one] = core + np.arange(int(one.sum()), dtype=np.uint64)
    sizes = uniform_sizes(rng, core + int(one.sum()))
    return Stream("one-hit-wonders", f"{n:,} requests: 60 % keys seen once, 40 % Zipf 1.0 over "
                  f"{core:,} keys; values 10 B-4 KB", ids, sizes)


def scan(scale: float) -> Stream:
    """Half the requests a Zipf 1.0 core of 100k keys, half a loop over 300k other keys in
    order, again and again: LRU keeps the loop's recent keys, which never come back in time."""
    rng = np.random.default_rng(13)
    n, core, loop = int(1_500_000 * scale), int(100_000 * scale), int(300_000 * scale)
    ids = rng.permutation(core).astype(np.uint64)[zipf_ranks(rng, core, 1.0, n)]
    in_loop = rng.random(n) < 0.5
    ids[in_loop] = core + (np.arange(int(in_loop.sum()), dtype=np.uint64) % loop)
    return Stream("scan", f"{n:,} requests: 50 % Zipf 1.0 over {core:,} keys, 50 % a loop over "
                  f"{loop:,} keys; values 10 B-4 KB", ids, uniform_sizes(rng, core + loop))


def shifting(scale: float) -> Stream:
    """Zipf 1.0 whose popular keys change: every fifth of the stream the ranking moves to
    keys 20 % further on."""
    rng = np.random.default_rng(17)
    n, n_keys = int(1_500_000 * scale), int(300_000 * scale)
    ranks = zipf_ranks(rng, n_keys, 1.0, n)
    phase = (np.arange(n) * 5 // n).astype(np.uint64)
    ids = (ranks + phase * (n_keys // 5)) % np.uint64(n_keys * 2)
    return Stream("shifting", f"Zipf 1.0 over {n_keys:,} keys moving by 20 % five times, "
                  f"{n:,} requests; values 10 B-4 KB", ids, uniform_sizes(rng, n_keys * 2))


def all_streams(scale: float = 1.0) -> list:
    """(name, factory) pairs: streams are built one at a time, when run."""
    out = [(f"zipf{a:g}-4k", lambda a=a: zipf(a, False, scale)) for a in (0.8, 1.0, 1.2)]
    out += [(f"zipf{a:g}-1m", lambda a=a: zipf(a, True, scale)) for a in (0.8, 1.0, 1.2)]
    out += [("one-hit-wonders", lambda: one_hit_wonders(scale)), ("scan", lambda: scan(scale)),
            ("shifting", lambda: shifting(scale))]
    return out
