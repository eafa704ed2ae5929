"""The same stream through libCacheSim's policies at the same cache size in bytes.

The stream is written once as an oracleGeneral trace (libCacheSim's binary format: a 24-byte
record of time, key id, size and next access per request); an object's size is its value
and key bytes, as a store holds them without metadata. libCacheSim's get() is a
look-aside cache's: a miss inserts the object."""
from __future__ import annotations

import os
import tempfile

import numpy as np

POLICIES = ("LRU", "FIFO", "Clock", "ARC", "TwoQ", "S3FIFO", "Sieve", "WTinyLFU", "GDSF", "LHD")

_RECORD = np.dtype([("ts", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])


def write_trace(ids: np.ndarray, sizes: np.ndarray, path: str) -> None:
    rec = np.zeros(len(ids), dtype=_RECORD)
    rec["ts"] = np.arange(len(ids), dtype=np.uint32) // 1000
    rec["id"] = ids
    digits = np.floor(np.log10(np.maximum(ids, 1).astype(np.float64))).astype(np.uint32) + 1
    rec["size"] = sizes[ids] + digits + 1          # value + b"k<id>"
    rec["next"] = -1
    rec.tofile(path)


def simulate(ids: np.ndarray, sizes: np.ndarray, cache_bytes_list: list[int]) -> dict:
    """{cache_bytes: {policy: miss ratio}}; {} when libcachesim is not installed."""
    try:
        import libcachesim as lcs
    except ImportError:
        return {}
    fd, path = tempfile.mkstemp(suffix=".oracleGeneral")
    os.close(fd)
    try:
        write_trace(ids, sizes, path)
        out: dict = {}
        for cache_bytes in cache_bytes_list:
            out[cache_bytes] = {}
            for name in POLICIES:
                reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
                cache = getattr(lcs, name)(cache_bytes)
                obj_miss, _byte_miss = cache.process_trace(reader)
                out[cache_bytes][name] = float(obj_miss)
        return out
    finally:
        os.unlink(path)
