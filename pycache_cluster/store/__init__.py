"""The node's cache: items in native memory under memcached's semantics."""
from pycache_cluster.store._store import Store, hash_key
from pycache_cluster.store.types import Item, StoreResult

__all__ = ["Item", "Store", "StoreResult", "hash_key"]
