"""The node's settings: one documented dataclass (the CLI and PYCACHE_* env map onto it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    """Everything a node is told at start. Field names follow memcached's long options."""

    #: TCP port to listen on (memcached -p).
    port: int = 11211
    #: Interface to listen on (memcached -l). Loopback unless asked: never 0.0.0.0 by default.
    listen: str = "127.0.0.1"
    #: Item memory limit in megabytes (memcached -m); items plus the hash table count.
    memory_limit_mb: int = 64
    #: Most simultaneous client connections (memcached -c); more are answered
    #: "ERROR Too many open connections" and closed.
    conn_limit: int = 1024
    #: Largest item in bytes (memcached -I), by memcached's own item-size formula.
    max_item_size: int = 1024 * 1024
    #: UDP port (memcached -U); 0 (off) is the only value supported.
    udp_port: int = 0
    #: 0 quiet, 1 errors and warnings, 2 every request (memcached -v/-vv).
    verbosity: int = 0
    #: Accept the `shutdown` command (memcached -A).
    enable_shutdown: bool = False
    #: Expiry-crawler step: hash buckets examined per tick (bounded work on the loop).
    crawl_buckets: int = 256
    #: Seconds between crawler ticks.
    crawl_interval: float = 0.1

    @property
    def memory_limit_bytes(self) -> int:
        return self.memory_limit_mb * 1024 * 1024

    def validate(self) -> None:
        """Raises ValueError with a message for the user when a setting cannot work."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.udp_port != 0:
            raise ValueError("UDP is not supported: -U must be 0 (off)")
        if self.memory_limit_mb < 1:
            raise ValueError("memory limit must be at least 1 megabyte")
        if self.conn_limit < 1:
            raise ValueError("connection limit must be at least 1")
        if self.max_item_size < 1024:
            raise ValueError("item max size cannot be less than 1024 bytes")
        if self.max_item_size > 1024 * 1024 * 1024:
            raise ValueError("cannot set item size limit higher than 1 gigabyte")
        if self.max_item_size > self.memory_limit_bytes // 2:
            raise ValueError("item max size cannot be larger than half the memory limit")
