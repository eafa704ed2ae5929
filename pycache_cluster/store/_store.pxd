# Declarations of the native store (csrc/pc_store.h) for Cython modules that cimport it.
# The store itself is opaque: callers see items, and numbers through a snapshot.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "pc_hash.h":
    uint32_t pc_hash(const void *key, size_t length, uint32_t seed) nogil


cdef extern from "pc_hlc.h":
    ctypedef struct pc_hlc:
        uint64_t last
        uint16_t node
    void pc_hlc_init(pc_hlc *h, uint16_t node) nogil
    uint64_t pc_hlc_next(pc_hlc *h, uint64_t unix_ms) nogil
    void pc_hlc_observe(pc_hlc *h, uint64_t version) nogil
    uint64_t pc_hlc_millis(uint64_t version) nogil


cdef extern from "pc_item.h":
    ctypedef uint32_t pc_reltime
    # The record's header (csrc/pc_item.h); client flags through pc_item_flags().
    ctypedef struct pc_item:
        uint64_t version
        pc_reltime exptime
        pc_reltime time
        uint32_t nbytes
        uint8_t nkey
        uint8_t bits
        uint8_t meta
    enum:
        PC_KEY_MAX
        PC_ITEM_FETCHED
        PC_ITEM_ACTIVE
        PC_ITEM_TOKEN_SENT
        PC_ITEM_STALE
        PC_ITEM_KEY_BINARY
        PC_ITEM_TOMBSTONE
        PC_META_MAIN
        PC_META_FREQ
    uint32_t pc_item_flags(const pc_item *it) nogil
    const char *pc_item_key(const pc_item *it)
    char *pc_item_value(pc_item *it)
    size_t pc_item_memcached_size(size_t nkey, uint32_t flags, size_t nbytes)


cdef extern from "pc_policy.h":
    ctypedef struct pc_policy_counters:
        uint64_t promotions, reinsertions, small_evictions, main_evictions, ghost_hits


cdef extern from "pc_store.h":
    ctypedef enum pc_status:
        PC_STORED
        PC_NOT_STORED
        PC_EXISTS
        PC_NOT_FOUND
        PC_DELETED
        PC_OK
        PC_NON_NUMERIC
        PC_TOO_LARGE
        PC_NO_MEMORY

    ctypedef enum pc_store_mode:
        PC_SET
        PC_ADD
        PC_REPLACE
        PC_APPEND
        PC_PREPEND
        PC_CAS
        PC_CAS_STALE

    ctypedef struct pc_store_stats:
        uint64_t total_items, evictions, reclaimed, crawler_reclaimed
        uint64_t expired_unfetched, evicted_unfetched
        uint64_t get_hits, get_misses, get_expired, get_flushed
        uint64_t touch_hits, touch_misses, incr_hits, incr_misses, decr_hits, decr_misses
        uint64_t cas_hits, cas_misses, cas_badval, delete_hits, delete_misses
        uint64_t log_compactions

    ctypedef struct pc_store_snapshot:
        pc_store_stats counters
        size_t curr_items, tombstones, item_bytes, limit_bytes, item_size_max, hash_bytes
        size_t unlinked_bytes
        unsigned hash_power
        int hash_is_expanding
        size_t small_items, main_items, small_bytes, main_bytes
        pc_policy_counters policy
        size_t ghost_bytes, log_bytes, log_segment_bytes, external_bytes

    ctypedef struct pc_store:
        pass

    ctypedef void (*pc_store_visit)(pc_item *it, void *ctx) noexcept

    pc_store *pc_store_new(size_t limit_bytes, size_t item_size_max, int64_t now) nogil
    void pc_store_free(pc_store *s) nogil
    void pc_store_set_time(pc_store *s, int64_t now) nogil
    pc_reltime pc_store_now(const pc_store *s) nogil
    int64_t pc_store_unix_time(const pc_store *s, pc_reltime t) nogil
    pc_reltime pc_store_exptime(const pc_store *s, int64_t exptime) nogil
    void pc_store_set_limit(pc_store *s, size_t limit_bytes) nogil
    void pc_store_set_evictions(pc_store *s, int on) nogil
    size_t pc_store_item_size_max(const pc_store *s) nogil
    size_t pc_store_bytes(const pc_store *s) nogil
    size_t pc_store_count(const pc_store *s) nogil
    void pc_store_snapshot_take(const pc_store *s, pc_store_snapshot *out) nogil
    void pc_store_reset_stats(pc_store *s) nogil
    void pc_store_set_replicated(pc_store *s, uint16_t node, uint32_t tombstone_ttl) nogil
    int pc_store_replicated(const pc_store *s) nogil
    uint64_t pc_store_next_version(pc_store *s) nogil
    pc_status pc_store_apply_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                uint32_t flags, int64_t exptime, const char *value,
                                size_t nbytes, uint64_t version, int tombstone,
                                int *had_live, uint64_t *held) nogil
    void pc_store_observe(pc_store *s, uint64_t version) nogil
    pc_item *pc_store_slot_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv) nogil

    pc_item *pc_store_get_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv) nogil
    pc_item *pc_store_touch_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                               int64_t exptime) nogil
    pc_item *pc_store_peek_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv) nogil
    pc_item *pc_store_find_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv) nogil
    void pc_store_note_get(pc_store *s, pc_item *it, int bump) nogil
    void pc_store_note_too_large(pc_store *s, pc_store_mode mode, const char *key,
                                 size_t nkey) nogil
    void pc_store_note_touch(pc_store *s, pc_item *it) nogil
    pc_status pc_store_store_hv(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                                uint32_t hv, uint32_t flags, int64_t exptime,
                                const char *value, size_t nbytes, uint64_t cas,
                                uint64_t version, pc_item **out) nogil
    pc_item *pc_store_alloc_unlinked(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                     size_t nbytes) nogil
    pc_status pc_store_link_hv(pc_store *s, pc_store_mode mode, pc_item *it, uint32_t hv,
                               uint32_t flags, int64_t exptime, uint64_t cas,
                               uint64_t version, pc_item **out) nogil
    void pc_store_free_unlinked(pc_store *s, pc_item *it) nogil
    pc_status pc_store_forget_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 uint64_t version) nogil
    pc_status pc_store_delete_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 int has_cas, uint64_t cas) nogil
    pc_status pc_store_invalidate_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                     int has_cas, uint64_t cas, int new_ttl,
                                     int64_t exptime) nogil
    pc_status pc_store_delta_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                int incr, uint64_t delta, uint64_t cas, uint64_t version,
                                int shared, uint64_t *result, pc_item **out) nogil

    pc_item *pc_store_get(pc_store *s, const char *key, size_t nkey) nogil
    pc_item *pc_store_touch(pc_store *s, const char *key, size_t nkey, int64_t exptime) nogil
    pc_item *pc_store_peek(pc_store *s, const char *key, size_t nkey) nogil
    pc_status pc_store_store(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                             uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                             uint64_t cas, uint64_t version, pc_item **out) nogil
    pc_status pc_store_delete(pc_store *s, const char *key, size_t nkey, uint64_t cas) nogil
    pc_status pc_store_delta(pc_store *s, const char *key, size_t nkey, int incr,
                             uint64_t delta, uint64_t cas, uint64_t version, uint64_t *result,
                             pc_item **out) nogil
    void pc_store_flush(pc_store *s, int64_t delay) nogil
    void pc_store_flush_at(pc_store *s, int64_t delay, uint64_t version) nogil
    uint64_t pc_store_flush_version(const pc_store *s) nogil
    size_t pc_store_crawl(pc_store *s, size_t max_buckets) nogil
    uint64_t pc_store_scan(pc_store *s, uint64_t cursor, pc_store_visit visit, void *ctx) nogil
    uint64_t pc_store_scan_slots(pc_store *s, uint64_t cursor, pc_store_visit visit,
                                 void *ctx) nogil
    int64_t pc_store_ttl(const pc_store *s, const pc_item *it) nogil
    int pc_parse_u64(const char *p, size_t n, uint64_t *out) nogil


cdef class Store:
    # The native store; protocol code calls the pc_store_* functions on it directly.
    cdef pc_store *_s
    cdef readonly size_t item_size_max
