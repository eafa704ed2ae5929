"""memcached's item dumps and slab-shaped numbers: `lru_crawler metadump`, `lru_crawler
enable|disable`, `stats cachedump`, `stats sizes[_enable|_disable]`, and the per-class
figures of `stats slabs` / `stats items`.

There are no slab classes here (an item is one allocation of its own size), so an item's
class is the one memcached 1.6.18 would give it with its defaults (-n 48, -f 1.25), from its
memcached size; docs/protocol.md (Slab-shaped numbers) says what each figure means here. Dumps
walk the store with its resumable scan, a bounded number of items per event-loop turn, so
other clients are served while a large dump runs.
"""
from __future__ import annotations

import asyncio
from urllib.parse import quote

from pycache_cluster.protocol._native import dump_rows
from pycache_cluster.protocol._native import parse_u32 as _u32

MAX_CLASSES = 64                # memcached's MAX_NUMBER_OF_SLAB_CLASSES
ITEMS_PER_TURN = 2048
CACHEDUMP_LIMIT = 2 * 1024 * 1024   # memcached's cap on one cachedump reply, in bytes


def chunk_sizes(item_size_max: int) -> dict[int, int]:
    """memcached's slabs_init with its defaults: class -> chunk size."""
    factor, chunk_max, size, out = 1.25, item_size_max // 2, 96, {}
    i = 0
    while True:
        i += 1
        if i >= MAX_CLASSES - 1 or size >= chunk_max / factor:
            break
        if size % 8:
            size += 8 - size % 8
        out[i] = size
        size = int(size * factor)
    out[i] = chunk_max
    return out


def page_size(item_size_max: int) -> int:
    """memcached's slab page: 1 MiB, or -I when that is larger."""
    return max(1 << 20, item_size_max)


async def _walk(srv, keep=lambda row: True) -> list[tuple]:
    """Every live item's dump row (see _native.dump_rows) that `keep` accepts."""
    cursor, out = 0, []
    while True:
        cursor, rows = dump_rows(srv.store, cursor, ITEMS_PER_TURN)
        out.extend(r for r in rows if keep(r))
        if cursor == 0:
            return out
        await asyncio.sleep(0)


def _metadump_line(row) -> bytes:
    key, exp, la, cas, fetched, cls, size, _ = row
    return b"key=%s exp=%d la=%d cas=%d fetch=%s cls=%d size=%d\n" % (
        quote(key, safe="").encode(), exp, la, cas, b"yes" if fetched else b"no", cls, size)


async def _metadump(srv, classes: set[int] | None) -> bytes:
    rows = await _walk(srv, (lambda r: r[5] in classes) if classes is not None else
                       (lambda r: True))
    return b"".join(map(_metadump_line, rows)) + b"END\r\n"


def lru_crawler(srv, args: list[bytes]) -> bytes | object:
    """`lru_crawler metadump|enable|disable ...`; None for the sub-commands admin.py
    answers. The crawler itself always runs here: enable and disable only change what
    memcached's answers would be."""
    n = len(args) + 1   # memcached's ntokens
    sub = args[1] if len(args) > 1 else b""
    if n == 3 and sub in (b"enable", b"disable"):
        if sub == b"disable":
            srv.crawler_enabled = False
            return b"OK\r\n"
        if srv.crawler_enabled:
            return b"ERROR failed to start lru crawler thread\r\n"
        srv.crawler_enabled = True
        return b"OK\r\n"
    if sub in (b"metadump", b"crawl") and n == 4 and not srv.crawler_enabled:
        return b"CLIENT_ERROR lru crawler disabled\r\n"
    if sub == b"metadump" and n == 4:
        if not srv.settings.dump_enabled:
            return b"ERROR metadump not allowed\r\n"      # -X
        which = args[2]
        if which in (b"all", b"hash"):
            return _metadump(srv, None)
        sizes = chunk_sizes(srv.settings.max_item_size)
        classes = set()
        for tok in which.split(b","):
            if not tok.isdigit() or int(tok) not in sizes:
                return b"BADCLASS invalid class id\r\n"
            classes.add(int(tok))
        return _metadump(srv, classes)
    return None


async def _cachedump(srv, cls: int, limit: int) -> bytes:
    rows = await _walk(srv, lambda r: r[5] == cls)
    out, size = [], 0
    for key, exp, *_, nbytes in rows[:limit] if limit else rows:
        line = b"ITEM %s [%d b; %d s]\r\n" % (key, nbytes, max(0, exp))
        if size + len(line) + 5 > CACHEDUMP_LIMIT:
            break
        out.append(line)
        size += len(line)
    return b"".join(out) + b"END\r\n"


def cachedump(srv, args: list[bytes]) -> bytes | object:
    """`stats cachedump <class> <limit>`: the class's items (limit 0: all of them)."""
    if not srv.settings.dump_enabled:
        return b"CLIENT_ERROR stats cachedump not allowed\r\n"     # -X
    if len(args) < 4:
        return b"CLIENT_ERROR bad command line\r\n"
    cls, limit = _u32(args[2]), _u32(args[3])
    if cls is None or limit is None:
        return b"CLIENT_ERROR bad command line format\r\n"
    if cls >= MAX_CLASSES:
        return b"CLIENT_ERROR Illegal slab id\r\n"
    return _cachedump(srv, cls, limit)


async def _sizes(srv) -> bytes:
    hist: dict[int, int] = {}
    for row in await _walk(srv):
        bucket = (row[6] + 31) // 32
        hist[bucket] = hist.get(bucket, 0) + 1
    return b"".join(b"STAT %d %d\r\n" % (b * 32, hist[b]) for b in sorted(hist)) + b"END\r\n"


def sizes(srv, args: list[bytes]) -> bytes | object:
    """`stats sizes`, `stats sizes_enable`, `stats sizes_disable`: memcached's histogram of
    item sizes in 32-byte buckets. memcached counts the items stored while it is enabled;
    here it is computed from the items held when asked."""
    sub = args[1]
    if sub == b"sizes_enable":
        srv.sizes_enabled = True
        return b"STAT sizes_status enabled\r\n"
    if sub == b"sizes_disable":
        srv.sizes_enabled = False
        return b"STAT sizes_status disabled\r\n"
    if not srv.sizes_enabled:
        return b"STAT sizes_status disabled\r\nEND\r\n"
    return _sizes(srv)
