"""memcached's text and meta protocols over the native store (hot path in _conn.pyx)."""
from pycache_cluster.protocol._conn import MEMCACHED_VERSION, Connection, ServerState

__all__ = ["MEMCACHED_VERSION", "Connection", "ServerState"]
