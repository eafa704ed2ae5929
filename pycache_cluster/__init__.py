"""pycache_cluster: the memcached you can cluster."""

__version__ = "0.1.0"
