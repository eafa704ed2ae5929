"""The node's cache: items in native memory under memcached's semantics."""
from pycache_cluster.store._store import Item, Store, hash_key
from pycache_cluster.store.types import StoreResult

__all__ = ["Item", "Store", "StoreResult", "hash_key"]
