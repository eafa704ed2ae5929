"""The node's cache: items in native memory under memcached's semantics."""
from pycache_cluster.store._store import (
    HybridClock,
    Item,
    Store,
    hash_key,
    large_stats,
    large_trim,
    set_large_cache_max,
)
from pycache_cluster.store.types import StoreResult

__all__ = ["HybridClock", "Item", "Store", "StoreResult", "hash_key", "large_stats", "large_trim",
           "set_large_cache_max"]
