"""Big values (64 KiB and more) in pages of their own (csrc/pc_large.h): charged whole pages
beside their record in the log, values intact through every operation, freed ranges cached
within their bound and given back."""
import json
import subprocess
import sys
import textwrap

import pytest

from pycache_cluster.store import Store, large_stats, large_trim, set_large_cache_max
from pycache_cluster.store import StoreResult as R

T0 = 1_700_000_000
PAGE = 4096
HEADER = 27          # offsetof(pc_item, data)
LARGE_MIN = 64 * 1024


def pages(n):
    return (n + PAGE - 1) // PAGE * PAGE


_BYTES = bytes(range(256)) * ((2 << 20) // 256 + 1)


def pattern(n, seed=0):
    return _BYTES[seed % 251: seed % 251 + n]


@pytest.fixture(autouse=True)
def fresh_cache():
    # The cache is process-wide: every test starts from an empty one at the default bound.
    large_trim(True)
    before = large_stats()["large_cache_max"]
    yield
    set_large_cache_max(before)
    large_trim(True)


def test_a_big_item_is_charged_its_whole_pages():
    store = Store(limit_bytes=64 << 20, item_size_max=1 << 20, now=T0)
    before = large_stats()["large_items"]
    for n in (LARGE_MIN, 100_000, 1_000_000):
        key = b"big:%d" % n
        start = store.stats()["bytes"]
        assert store.set(key, pattern(n)) == R.STORED
        record = (HEADER + len(key) + 7) // 8 * 8 + 8     # header, key, value's address
        assert store.stats()["bytes"] - start == record + pages(n)
    assert large_stats()["large_items"] == before + 3
    del store       # frees its items
    assert large_stats()["large_items"] == before


def test_small_items_stay_on_the_heap():
    store = Store(limit_bytes=64 << 20, now=T0)
    before = large_stats()["large_items"]
    n = LARGE_MIN - 1                       # one byte short of a big value
    assert store.set(b"small", b"s" * n) == R.STORED
    assert large_stats()["large_items"] == before
    assert store.set(b"small", b"s" * (n + 1)) == R.STORED
    assert large_stats()["large_items"] == before + 1


@pytest.mark.parametrize("n", [LARGE_MIN - 100, LARGE_MIN, PAGE * 20 - HEADER - 3,
                               PAGE * 20 - HEADER - 2, 333_333, 1_000_000])
def test_values_round_trip_across_sizes_and_overwrites(n):
    store = Store(limit_bytes=16 << 20, item_size_max=2 << 20, now=T0)
    for seed in range(4):
        assert store.set(b"k:%d" % seed, pattern(n, seed)) == R.STORED
        # Overwrites reuse the ranges the previous values freed.
        assert store.set(b"k:%d" % seed, pattern(n + seed * 1000, seed + 1)) == R.STORED
    for seed in range(4):
        assert store.get(b"k:%d" % seed).value == pattern(n + seed * 1000, seed + 1)


def test_append_and_prepend_cross_into_big_items():
    store = Store(limit_bytes=16 << 20, item_size_max=2 << 20, now=T0)
    assert store.set(b"a", b"<" * 40_000) == R.STORED
    assert store.append(b"a", b">" * 40_000) == R.STORED
    assert store.prepend(b"a", b"^" * 100_000) == R.STORED
    assert store.get(b"a").value == b"^" * 100_000 + b"<" * 40_000 + b">" * 40_000
    assert store.delete(b"a") == R.DELETED
    assert store.get(b"a") is None


def test_evictions_of_big_items_keep_the_limit_and_the_cache_within_its_bound():
    limit = 8 << 20
    store = Store(limit_bytes=limit, item_size_max=2 << 20, now=T0)
    sizes = [LARGE_MIN + (i * 37_813) % 900_000 for i in range(300)]
    for i, n in enumerate(sizes):
        assert store.set(b"e:%d" % i, pattern(n, i)) == R.STORED
        st = store.stats()
        assert st["bytes"] + st["hash_bytes"] <= limit
    ls = large_stats()
    assert store.stats()["evictions"] > 250
    assert ls["large_cache_bytes"] <= ls["large_cache_max"]
    assert ls["large_cache_hits"] + ls["large_cache_grows"] > ls["large_cache_misses"]
    for i in range(len(sizes) - 5, len(sizes)):
        assert store.get(b"e:%d" % i).value == pattern(sizes[i], i)


def test_trim_gives_back_ranges_not_reused_since_the_previous_trim():
    store = Store(limit_bytes=64 << 20, item_size_max=2 << 20, now=T0)
    for i in range(3):
        store.set(b"t:%d" % i, b"t" * 200_000)
    for i in range(3):
        store.delete(b"t:%d" % i)
    cached = large_stats()["large_cache_bytes"]
    assert cached >= 3 * 200_000
    assert large_trim() == 0                    # cached since the last trim: kept once
    assert large_trim() == cached               # still unused a round later: given back
    assert large_stats()["large_cache_bytes"] == 0


def test_a_zero_bound_caches_nothing():
    set_large_cache_max(0)
    store = Store(limit_bytes=64 << 20, item_size_max=2 << 20, now=T0)
    store.set(b"z", b"z" * 300_000)
    store.delete(b"z")
    assert large_stats()["large_cache_bytes"] == 0
    store.set(b"z", b"y" * 300_000)
    assert store.get(b"z").value == b"y" * 300_000


# Freed big items leave the process: after deleting 100 MB of them and a trim, RSS is back
# near where it started (within the cache's bound and a few MiB of interpreter noise).
RELEASE_PROBE = textwrap.dedent("""
    import json, os
    from pycache_cluster.store import Store, large_trim
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    value = b"v" * 1_000_000
    store = Store(limit_bytes=1 << 30, item_size_max=2 << 20)
    base = rss()
    for i in range(100):
        store.set(b"r:%d" % i, value)
    full = rss()
    for i in range(100):
        store.delete(b"r:%d" % i)
    large_trim(True)
    print(json.dumps({"full": full - base, "after": rss() - base}))
""")


@pytest.mark.allocator
def test_deleted_big_items_give_their_memory_back():
    out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True,
                         check=True).stdout
    r = json.loads(out)
    assert r["full"] >= 95_000_000, r
    assert r["after"] <= 4 << 20, r
