"""memcached's text and meta protocols over the native store (hot path in _conn.pyx)."""
from pycache_cluster.protocol._conn import Connection, ServerState

__all__ = ["Connection", "ServerState"]
