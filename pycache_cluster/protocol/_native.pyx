# The native helpers of the Python commands (admin.py, auth.py, dump.py, stats.py), in a
# module of their own so that those import it and the connection module imports them, with
# no cycle: memcached's number parsing, and what memcached's item dumps show of each item
# (lru_crawler metadump, stats cachedump, stats sizes, stats items), read off the store by
# its resumable scan. The formatting and the request's pacing are protocol/dump.py's.
cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from pycache_cluster.protocol._cdefs cimport *
from pycache_cluster.store._store cimport *


def parse_u32(bytes tok):
    """memcached's safe_strtoul (None where it refuses), for the Python commands."""
    cdef uint32_t v
    if not pc_strtoul(tok, &v):
        return None
    return v


cdef struct _dump_ctx:
    void *rows          # a borrowed list
    pc_store *s
    size_t item_size_max


cdef void _dump_row(pc_item *it, void *arg) noexcept:
    # Inside pc_store_scan with the GIL held (as the store's own _collect).
    cdef _dump_ctx *ctx = <_dump_ctx *>arg
    cdef size_t size = pc_item_memcached_size(it.nkey, pc_item_flags(it), it.nbytes)
    (<list>ctx.rows).append((
        PyBytes_FromStringAndSize(pc_item_key(it), it.nkey),
        pc_store_unix_time(ctx.s, it.exptime) if it.exptime else -1,
        pc_store_unix_time(ctx.s, it.time),
        it.version,
        bool(it.bits & PC_ITEM_FETCHED),
        pc_proto_slab_class(size, ctx.item_size_max),
        size,
        it.nbytes))


def dump_rows(Store store, uint64_t cursor, size_t count):
    """(next cursor, [(key, exptime unix or -1, last access unix, cas, fetched, class,
    memcached size, value bytes)]): live items from `cursor` on, about `count` of them;
    the next cursor is 0 at the end of the walk."""
    cdef list rows = []
    cdef _dump_ctx ctx
    ctx.rows = <void *>rows
    ctx.s = store._s
    ctx.item_size_max = pc_store_item_size_max(store._s)
    while True:
        cursor = pc_store_scan(store._s, cursor, _dump_row, &ctx)
        if cursor == 0 or <size_t>len(rows) >= count:
            break
    return cursor, rows


def slab_class(size_t ntotal, size_t item_size_max):
    """memcached's slab class of an item of that total size (-n 48, -f 1.25)."""
    return pc_proto_slab_class(ntotal, item_size_max)


cdef struct _class_acc:
    uint64_t items, bytes
    uint64_t seg_items[3]
    pc_reltime oldest[3]        # earliest last access per LRU segment (0: none)


cdef struct _classes_ctx:
    _class_acc acc[64]
    pc_store *s
    size_t item_size_max


cdef void _class_row(pc_item *it, void *arg) noexcept:
    cdef _classes_ctx *ctx = <_classes_ctx *>arg
    cdef size_t size = pc_item_memcached_size(it.nkey, pc_item_flags(it), it.nbytes)
    cdef unsigned cls = pc_proto_slab_class(size, ctx.item_size_max)
    cdef _class_acc *a = &ctx.acc[cls & 63]
    a.items += 1
    a.bytes += size
    cdef unsigned seg = 1 if it.meta & PC_META_MAIN else 0  # small queue: hot, main: warm
    a.seg_items[seg] += 1
    if a.oldest[seg] == 0 or it.time < a.oldest[seg]:
        a.oldest[seg] = it.time


def class_stats(Store store):
    """{class: (items, memcached bytes, (hot, warm, cold) items, (hot, warm, cold) age of
    the oldest item in seconds)} of the live items, in one pass in C (no object per item)."""
    cdef _classes_ctx *ctx = <_classes_ctx *>malloc(sizeof(_classes_ctx))
    cdef uint64_t cursor = 0
    cdef pc_reltime now = pc_store_now(store._s)
    cdef int i, g
    if ctx == NULL:
        raise MemoryError()
    memset(ctx, 0, sizeof(_classes_ctx))
    ctx.s = store._s
    ctx.item_size_max = pc_store_item_size_max(store._s)
    try:
        while True:
            cursor = pc_store_scan(store._s, cursor, _class_row, ctx)
            if cursor == 0:
                break
        out = {}
        for i in range(64):
            if ctx.acc[i].items:
                out[i] = (ctx.acc[i].items, ctx.acc[i].bytes,
                          tuple(ctx.acc[i].seg_items[g] for g in range(3)),
                          tuple(now - ctx.acc[i].oldest[g] if ctx.acc[i].oldest[g] else 0
                                for g in range(3)))
        return out
    finally:
        free(ctx)
