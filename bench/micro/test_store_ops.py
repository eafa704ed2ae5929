"""Store get/set/delete from Python beside a dict and an OrderedDict LRU doing the same work.

Run with `make bench-micro`. All three pay the same Python call overhead per operation; the
dict has no limit, no expiry and no versions, so it is the floor, and the OrderedDict LRU is
what a pure-Python cache with eviction costs.
"""
from collections import OrderedDict

import pytest

from pycache_cluster.store import Store

N = 10_000
KEYS = [b"key:%010d" % i for i in range(N)]
VALUE = b"v" * 100


class OrderedDictLRU:
    """The usual pure-Python LRU: move_to_end on hit, popitem(last=False) to evict."""

    def __init__(self, capacity):
        self.capacity, self.items = capacity, OrderedDict()

    def set(self, key, value):
        self.items[key] = value
        self.items.move_to_end(key)
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def get(self, key):
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def delete(self, key):
        return self.items.pop(key, None) is not None


class DictCache:
    def __init__(self):
        self.items = {}

    def set(self, key, value):
        self.items[key] = value

    def get(self, key):
        return self.items.get(key)

    def delete(self, key):
        return self.items.pop(key, None) is not None


def make(kind):
    if kind == "store":
        return Store(limit_bytes=256 << 20)
    if kind == "lru":
        return OrderedDictLRU(capacity=10 * N)
    return DictCache()


KINDS = ["store", "dict", "lru"]


@pytest.mark.parametrize("kind", KINDS)
def test_set(benchmark, kind):
    cache = make(kind)
    benchmark.group = "set 10k x 100 B"

    def run():
        for key in KEYS:
            cache.set(key, VALUE)

    benchmark(run)


@pytest.mark.parametrize("kind", KINDS)
def test_get_hit(benchmark, kind):
    cache = make(kind)
    for key in KEYS:
        cache.set(key, VALUE)
    benchmark.group = "get hit 10k"

    def run():
        for key in KEYS:
            cache.get(key)

    benchmark(run)


@pytest.mark.parametrize("kind", KINDS)
def test_get_miss(benchmark, kind):
    cache = make(kind)
    missing = [b"miss:%010d" % i for i in range(N)]
    benchmark.group = "get miss 10k"

    def run():
        for key in missing:
            cache.get(key)

    benchmark(run)


def test_get_into_buffer(benchmark):
    """The no-allocation read path (what the protocol layer does natively)."""
    store = make("store")
    for key in KEYS:
        store.set(key, VALUE)
    buf = bytearray(4096)
    benchmark.group = "get hit 10k"

    def run():
        for key in KEYS:
            store.get_into(key, buf)

    benchmark(run)


@pytest.mark.parametrize("kind", KINDS)
def test_set_delete(benchmark, kind):
    cache = make(kind)
    benchmark.group = "set+delete 10k"

    def run():
        for key in KEYS:
            cache.set(key, VALUE)
        for key in KEYS:
            cache.delete(key)

    benchmark(run)
