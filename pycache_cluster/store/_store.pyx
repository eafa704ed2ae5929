# cython: language_level=3
"""The native store (csrc/pc_store.h) as a Python class; protocol code cimports the C API."""
import time

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

cimport cython

from pycache_cluster.store.types import StoreResult


@cython.final
@cython.freelist(32)
cdef class Item:
    """One item as read from the store (a copy: later writes do not change it)."""

    cdef readonly bytes key
    cdef readonly bytes value
    cdef readonly uint32_t flags
    cdef readonly int64_t exptime  # unix seconds, 0 = never
    cdef readonly uint64_t version  # memcached's CAS unique

    def __iter__(self):
        return iter((self.key, self.value, self.flags, self.exptime, self.version))

    def __eq__(self, other):
        return isinstance(other, Item) and tuple(self) == tuple(other)

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self):
        return (f"Item(key={self.key!r}, value={self.value!r}, flags={self.flags}, "
                f"exptime={self.exptime}, version={self.version})")


cdef Item _new_item(Store store, bytes key, bytes value, uint32_t flags, pc_reltime exptime,
                    uint64_t version):
    cdef Item item = Item.__new__(Item)
    item.key = key
    item.value = value
    item.flags = flags
    item.exptime = pc_store_unix_time(store._s, exptime) if exptime else 0
    item.version = version
    return item


cdef inline bytes _key(object key):
    if type(key) is not bytes:
        key = key.encode() if isinstance(key, str) else bytes(key)
    if not 0 < PyBytes_GET_SIZE(key) <= PC_KEY_MAX:
        raise ValueError(f"keys are 1..{PC_KEY_MAX} bytes, got {len(key)}")
    return <bytes>key


cdef inline object _item(Store store, bytes key, pc_item *it):
    if it == NULL:
        return None
    return _new_item(store, key, PyBytes_FromStringAndSize(pc_item_value(it), it.nbytes),
                     pc_item_flags(it), it.exptime, it.version)


cdef struct _scan_batch:
    void *items  # a borrowed list


cdef void _collect(pc_item *it, void *ctx) noexcept:
    # Runs inside pc_store_scan with the GIL held; the list append cannot fail short of
    # MemoryError, which scan() re-checks by comparing lengths.
    cdef tuple row = (PyBytes_FromStringAndSize(pc_item_key(it), it.nkey),
                      PyBytes_FromStringAndSize(pc_item_value(it), it.nbytes),
                      pc_item_flags(it), it.exptime, it.version)
    (<list>ctx).append(row)


cdef void _collect_version(pc_item *it, void *ctx) noexcept:
    (<list>ctx).append((PyBytes_FromStringAndSize(pc_item_key(it), it.nkey), it.version,
                        (it.bits & PC_ITEM_TOMBSTONE) != 0))


# StoreResult(n) costs more than the store operation itself: look members up by index.
cdef tuple _RESULTS = tuple(StoreResult)
cdef dict _MODES = {"set": PC_SET, "add": PC_ADD, "replace": PC_REPLACE, "append": PC_APPEND,
                    "prepend": PC_PREPEND, "cas": PC_CAS, "cas_stale": PC_CAS_STALE}


cdef object _store(Store store, pc_store_mode mode, key, value, uint32_t flags, int64_t exptime,
                   uint64_t cas, uint64_t version):
    cdef bytes k = _key(key)
    cdef Py_buffer view
    cdef pc_status status
    if type(value) is bytes:  # the common case, without taking a buffer
        status = pc_store_store(store._s, mode, k, len(k), flags, exptime,
                                PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), cas,
                                version, NULL)
    else:
        PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
        try:
            status = pc_store_store(store._s, mode, k, len(k), flags, exptime,
                                    <const char *>view.buf, view.len, cas, version, NULL)
        finally:
            PyBuffer_Release(&view)
    return _RESULTS[status]


cdef class Store:
    """memcached's item semantics over native memory.

    limit_bytes bounds items plus the hash table, charged by real allocation sizes;
    item_size_max is memcached's -I. Time is whole unix seconds: the store reads the wall
    clock at creation, and set_time() moves it on (the node calls it once a second).
    """

    def __cinit__(self, size_t limit_bytes=64 << 20, size_t item_size_max=1 << 20, now=None):
        cdef int64_t start = int(time.time()) if now is None else now
        self._s = pc_store_new(limit_bytes, item_size_max, start)
        if self._s == NULL:
            raise MemoryError()
        self.item_size_max = item_size_max

    def __dealloc__(self):
        pc_store_free(self._s)
        self._s = NULL

    def set_time(self, int64_t now):
        pc_store_set_time(self._s, now)

    @property
    def now(self):
        return pc_store_unix_time(self._s, pc_store_now(self._s))

    def set_limit(self, size_t limit_bytes):
        pc_store_set_limit(self._s, limit_bytes)

    def set_evictions(self, bint on):
        """Off (memcached -M): writes that need a live item's room fail (PC_NO_MEMORY)."""
        pc_store_set_evictions(self._s, on)

    def __len__(self):
        return pc_store_count(self._s)

    def get(self, key):
        """The live item (value, flags, version...), or None; counts a hit or miss."""
        cdef bytes k = _key(key)
        return _item(self, k, pc_store_get(self._s, k, len(k)))

    def get_into(self, key, buffer):
        """Copies the value into a writable buffer without creating bytes; returns its length,
        or -1 on a miss. Raises ValueError if the buffer is too small."""
        cdef bytes k = _key(key)
        cdef Py_buffer view
        cdef pc_item *it = pc_store_get(self._s, k, len(k))
        if it == NULL:
            return -1
        PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
        try:
            if <size_t>view.len < it.nbytes:
                raise ValueError(f"buffer of {view.len} bytes is too small for {it.nbytes}")
            memcpy(view.buf, pc_item_value(it), it.nbytes)
        finally:
            PyBuffer_Release(&view)
        return it.nbytes

    def gat(self, key, int64_t exptime):
        """get-and-touch: the item with its new exptime, or None; counts a touch."""
        cdef bytes k = _key(key)
        return _item(self, k, pc_store_touch(self._s, k, len(k), exptime))

    def touch(self, key, int64_t exptime):
        cdef bytes k = _key(key)
        return pc_store_touch(self._s, k, len(k), exptime) != NULL

    def peek(self, key):
        """The live item without counting a read or moving it in the LRU."""
        cdef bytes k = _key(key)
        return _item(self, k, pc_store_peek(self._s, k, len(k)))

    def set(self, key, value, uint32_t flags=0, int64_t exptime=0, uint64_t version=0):
        """Stores unconditionally. version=0 assigns the next local version; a non-zero
        version (from a replication peer) is stored as given."""
        return _store(self, PC_SET, key, value, flags, exptime, 0, version)

    def add(self, key, value, uint32_t flags=0, int64_t exptime=0, uint64_t version=0):
        return _store(self, PC_ADD, key, value, flags, exptime, 0, version)

    def replace(self, key, value, uint32_t flags=0, int64_t exptime=0, uint64_t version=0):
        return _store(self, PC_REPLACE, key, value, flags, exptime, 0, version)

    def append(self, key, value, uint64_t cas=0, uint64_t version=0):
        return _store(self, PC_APPEND, key, value, 0, 0, cas, version)

    def prepend(self, key, value, uint64_t cas=0, uint64_t version=0):
        return _store(self, PC_PREPEND, key, value, 0, 0, cas, version)

    def cas(self, key, value, uint64_t cas, uint32_t flags=0, int64_t exptime=0,
            uint64_t version=0):
        return _store(self, PC_CAS, key, value, flags, exptime, cas, version)

    def store_filled(self, str mode, key, bytes value, uint32_t flags=0, int64_t exptime=0,
                     uint64_t cas=0, bint abandon=False):
        """A store the protocol's way for big values: an unlinked item is allocated (charged,
        room made), filled, then linked under `mode` (set, add, replace, append, prepend,
        cas, cas_stale), or freed unlinked when `abandon`. The status, or None when there was
        no room for the unlinked item (or when abandoned)."""
        cdef bytes k = _key(key)
        cdef pc_store_mode m = _MODES[mode]
        cdef const char *p = k
        cdef uint32_t hv = pc_hash(p, len(k), 0)
        cdef pc_item *it = pc_store_alloc_unlinked(self._s, p, len(k), hv, len(value))
        if it == NULL:
            return None
        memcpy(pc_item_value(it), PyBytes_AS_STRING(value), len(value))
        if abandon:
            pc_store_free_unlinked(self._s, it)
            return None
        return _RESULTS[pc_store_link_hv(self._s, m, it, hv, flags, exptime, cas, 0, NULL)]

    def _delta(self, key, bint incr, uint64_t delta, uint64_t cas, uint64_t version):
        cdef bytes k = _key(key)
        cdef uint64_t result = 0
        status = _RESULTS[pc_store_delta(self._s, k, len(k), incr, delta, cas, version,
                                         &result, NULL)]
        return status, (result if status == StoreResult.OK else None)

    def incr(self, key, uint64_t delta, uint64_t cas=0, uint64_t version=0):
        """(StoreResult.OK, new value) or (NOT_FOUND | NON_NUMERIC | EXISTS, None)."""
        return self._delta(key, True, delta, cas, version)

    def decr(self, key, uint64_t delta, uint64_t cas=0, uint64_t version=0):
        return self._delta(key, False, delta, cas, version)

    def delete(self, key, uint64_t cas=0):
        cdef bytes k = _key(key)
        return _RESULTS[pc_store_delete(self._s, k, len(k), cas)]

    def forget(self, key, uint64_t version):
        """Drops the key without a tombstone if it still holds `version` (hand-over: its
        new owners have it). True when it went."""
        cdef bytes k = _key(key)
        cdef const char *p = k
        return pc_store_forget_hv(self._s, p, len(k), pc_hash(p, len(k), 0),
                                  version) == PC_DELETED

    def flush_all(self, int64_t delay=0):
        pc_store_flush(self._s, delay)

    def crawl(self, size_t max_buckets=64):
        """One bounded step of the expiry crawler; returns the items reclaimed."""
        return pc_store_crawl(self._s, max_buckets)

    def scan(self, uint64_t cursor=0, size_t count=16):
        """Redis-style SCAN: (next_cursor, [Item...]); next_cursor 0 ends the walk. Every item
        present for the whole walk is returned at least once, whatever inserts, deletes and
        table growth happen between calls. `count` is a hint of items per call."""
        cdef list rows = []
        while True:
            cursor = pc_store_scan(self._s, cursor, _collect, <void *>rows)
            if cursor == 0 or <size_t>len(rows) >= count:
                break
        return cursor, [_new_item(self, key, value, flags, exptime, version)
                        for key, value, flags, exptime, version in rows]

    def versions(self, uint64_t cursor=0, size_t count=256):
        """scan() over keys and tombstones alike, without values: (next_cursor, [(key,
        version, is_tombstone)...]), what anti-entropy compares."""
        cdef list rows = []
        while True:
            cursor = pc_store_scan_slots(self._s, cursor, _collect_version, <void *>rows)
            if cursor == 0 or <size_t>len(rows) >= count:
                return cursor, rows

    def stats(self):
        """Counters under memcached's `stats` / `stats items` names."""
        cdef pc_store_snapshot snap
        pc_store_snapshot_take(self._s, &snap)
        cdef pc_store_stats *c = &snap.counters
        return {
            "curr_items": snap.curr_items,
            "tombstones": snap.tombstones,
            "total_items": c.total_items,
            "bytes": snap.item_bytes,
            "unlinked_bytes": snap.unlinked_bytes,
            "limit_maxbytes": snap.limit_bytes,
            "item_size_max": snap.item_size_max,
            "hash_power_level": snap.hash_power,
            "hash_bytes": snap.hash_bytes,
            "hash_is_expanding": snap.hash_is_expanding,
            "evictions": c.evictions,
            "reclaimed": c.reclaimed,
            "crawler_reclaimed": c.crawler_reclaimed,
            "expired_unfetched": c.expired_unfetched,
            "evicted_unfetched": c.evicted_unfetched,
            "get_hits": c.get_hits,
            "get_misses": c.get_misses,
            "get_expired": c.get_expired,
            "get_flushed": c.get_flushed,
            "touch_hits": c.touch_hits,
            "touch_misses": c.touch_misses,
            "incr_hits": c.incr_hits,
            "incr_misses": c.incr_misses,
            "decr_hits": c.decr_hits,
            "decr_misses": c.decr_misses,
            "cas_hits": c.cas_hits,
            "cas_misses": c.cas_misses,
            "cas_badval": c.cas_badval,
            "delete_hits": c.delete_hits,
            "delete_misses": c.delete_misses,
            # memcached's LRU names for the policy's queues: new items (small) are HOT,
            # the main queue WARM; nothing is COLD (csrc/pc_policy.h).
            "number_hot": snap.small_items,
            "number_warm": snap.main_items,
            "number_cold": 0,
            "moves_to_cold": 0,
            "moves_to_warm": snap.policy.promotions,
            "moves_within_lru": snap.policy.reinsertions,
            "policy_small_items": snap.small_items,
            "policy_small_bytes": snap.small_bytes,
            "policy_main_items": snap.main_items,
            "policy_main_bytes": snap.main_bytes,
            "policy_promotions": snap.policy.promotions,
            "policy_reinsertions": snap.policy.reinsertions,
            "policy_small_evictions": snap.policy.small_evictions,
            "policy_main_evictions": snap.policy.main_evictions,
            "policy_ghost_hits": snap.policy.ghost_hits,
            "policy_ghost_bytes": snap.ghost_bytes,
            "log_bytes": snap.log_bytes,
            "log_compactions": c.log_compactions,
            "log_segment_bytes": snap.log_segment_bytes,
            "external_bytes": snap.external_bytes,
        }

    def reset_stats(self):
        pc_store_reset_stats(self._s)

    # -- cluster mode ----------------------------------------------------------------------

    def set_replicated(self, uint16_t node, uint32_t tombstone_ttl=60):
        """Cluster mode: versions from a hybrid logical clock with these node bits, and
        deletes leave tombstones for tombstone_ttl seconds (csrc/pc_store.h)."""
        pc_store_set_replicated(self._s, node, tombstone_ttl)

    @property
    def replicated(self):
        return bool(pc_store_replicated(self._s))

    def next_version(self):
        return pc_store_next_version(self._s)

    def observe(self, uint64_t version):
        """A version seen elsewhere: versions made here from now on are greater."""
        pc_store_observe(self._s, version)

    def apply(self, key, value, uint32_t flags=0, int64_t exptime=0, uint64_t version=0,
              bint tombstone=False):
        """A replica's write, last-write-wins: (StoreResult, whether a live item was
        there before)."""
        cdef bytes k = _key(key)
        cdef bytes v = bytes(value)
        cdef int had_live = 0
        cdef uint64_t held = 0
        status = pc_store_apply_hv(self._s, k, len(k), pc_hash(<const char *>k, len(k), 0),
                                   flags, exptime, v, len(v), version, tombstone, &had_live,
                                   &held)
        return _RESULTS[status], bool(had_live)

    def slot(self, key):
        """(version, is_tombstone) of what the table holds for the key, or None."""
        cdef bytes k = _key(key)
        cdef pc_item *it = pc_store_slot_hv(self._s, k, len(k),
                                            pc_hash(<const char *>k, len(k), 0))
        if it == NULL:
            return None
        return it.version, bool(it.bits & PC_ITEM_TOMBSTONE)


@cython.final
cdef class HybridClock:
    """csrc/pc_hlc.h as Python sees it (tests, tools): versions from wall milliseconds."""
    cdef pc_hlc h

    def __cinit__(self, uint16_t node):
        pc_hlc_init(&self.h, node)

    def next(self, uint64_t unix_ms):
        return pc_hlc_next(&self.h, unix_ms)

    def observe(self, uint64_t version):
        pc_hlc_observe(&self.h, version)

    @staticmethod
    def millis(uint64_t version):
        return pc_hlc_millis(version)


def hash_key(const unsigned char[:] key, uint32_t seed=0):
    """murmur3 x86_32 as the store hashes keys: equal to mmh3.hash(key, seed, signed=False)."""
    return pc_hash(&key[0] if key.shape[0] else NULL, key.shape[0], seed)


# -- big items' mappings (csrc/pc_large.h): process-wide, shared by every Store ------------

cdef extern from "pc_large.h":
    ctypedef struct pc_large_stats:
        uint64_t mapped, mapped_bytes, cached, cached_bytes, cache_hits, cache_grows
        uint64_t cache_misses, fallbacks
    size_t pc_large_trim(int all)
    void pc_large_set_cache_max(size_t bytes)
    size_t pc_large_cache_max()
    void pc_large_get_stats(pc_large_stats *out)
    int pc_large_share()


# This module loads before every other extension that links the core (they cimport it): its
# copy of the big items' cache and counters becomes the one all copies use.
pc_large_share()


def large_stats():
    """Items in mappings of their own, and the cache of freed mappings kept for reuse."""
    cdef pc_large_stats st
    pc_large_get_stats(&st)
    return {"large_items": st.mapped, "large_item_bytes": st.mapped_bytes,
            "large_cache_mappings": st.cached, "large_cache_bytes": st.cached_bytes,
            "large_cache_max": pc_large_cache_max(), "large_cache_hits": st.cache_hits,
            "large_cache_grows": st.cache_grows,
            "large_cache_misses": st.cache_misses, "large_fallbacks": st.fallbacks}


def large_trim(bint all=False):
    """Unmaps cached mappings not reused since the previous call (every one with all=True);
    returns the bytes given back."""
    return pc_large_trim(all)


def set_large_cache_max(size_t nbytes):
    """Bytes of freed mappings kept for reuse at most (0: none)."""
    pc_large_set_cache_max(nbytes)
