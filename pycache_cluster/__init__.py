"""pycache_cluster: the memcached you can cluster."""

__version__ = "0.1.0"
#: The memcached whose protocols this speaks, byte for byte: what `version` answers.
MEMCACHED_VERSION = "1.6.18"
