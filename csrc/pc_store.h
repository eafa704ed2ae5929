/* pc_store: the cache's whole API, memcached's semantics over the table, the log of items
 * (pc_log.h) and the S3-FIFO policy (pc_policy.h).
 *
 * Locks (pc_lock.h; compiled to nothing until worker threads arrive, PC_STORE_THREADS).
 * The order, as memcached's doc/threads.txt gives its own:
 *   1. the item lock of the key's hash, stripe hv & (PC_LOCK_STRIPES - 1), taken by every
 *      public pc_store_*_hv entry point (and the unhashed wrappers through them) for the
 *      whole call; the do_* functions and everything static in pc_store.c run under it.
 *      The hash table's buckets of a stripe belong to it (the table's power is at least the
 *      stripes'); growing the table moves buckets of every stripe and takes them all.
 *   2. the policy lock, taken after an item lock and never before one, around whatever
 *      touches the log or the policy's queues and ghost: making room, writing a record,
 *      linking and unlinking it.
 *   3. other keys' item locks, which making room needs to evict or move their items, are
 *      only ever tried (trylock) under the policy lock; a busy item goes round the queue
 *      again. Nothing waits for a lock while holding the policy lock.
 * A read (get, touch) takes only the item lock: a hit raises the item's own counter and
 * moves nothing. Counters are per thread slot and summed by pc_store_snapshot_take.
 * Not yet locked, as they run on the one thread there is: pc_store_crawl and the scans walk
 * buckets of every stripe and will take each bucket's stripe as they visit it; flush_all,
 * the clock and the limit are settings a thread changes under all stripes.
 * Returned item pointers stay valid while the caller holds the key's item lock, and in
 * one thread until the next call that stores, deletes or crawls: making room moves the
 * records it keeps. */
#ifndef PC_STORE_H
#define PC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "pc_item.h"
#include "pc_policy.h"
#include "pc_watch.h"

/* Opaque: callers see items, never the store's insides (snapshot() for numbers). */
typedef struct pc_store pc_store;

typedef enum pc_status {
    PC_STORED,
    PC_NOT_STORED,
    PC_EXISTS,       /* cas mismatch */
    PC_NOT_FOUND,
    PC_DELETED,
    PC_OK,           /* incr/decr or invalidation applied */
    PC_NON_NUMERIC,  /* incr/decr on a value that is not a 64-bit decimal */
    PC_TOO_LARGE,    /* larger than item_size_max */
    PC_NO_MEMORY,    /* nothing left to evict, or malloc failed */
} pc_status;

typedef enum pc_store_mode {
    PC_SET, PC_ADD, PC_REPLACE, PC_APPEND, PC_PREPEND, PC_CAS,
    /* meta's ms with I in CAS mode: a CAS older than the item's still stores, as a stale
     * value that keeps the old TTL and win token (memcached's do_store_item set_stale). */
    PC_CAS_STALE,
} pc_store_mode;

/* Counters named as memcached's `stats` names them. */
typedef struct pc_store_stats {
    uint64_t total_items, evictions, reclaimed, crawler_reclaimed;
    uint64_t expired_unfetched, evicted_unfetched;
    uint64_t get_hits, get_misses, get_expired, get_flushed;
    uint64_t touch_hits, touch_misses, incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t cas_hits, cas_misses, cas_badval, delete_hits, delete_misses;
    uint64_t log_compactions;   /* live records moved on past dead ones (not memcached's) */
} pc_store_stats;

/* Everything `stats` reports about the store, copied at one instant. */
typedef struct pc_store_snapshot {
    pc_store_stats counters;
    size_t curr_items, tombstones, item_bytes, limit_bytes, item_size_max, hash_bytes;
    size_t unlinked_bytes;     /* items being filled by their writers, not yet linked */
    unsigned hash_power;
    int hash_is_expanding;
    size_t small_items, main_items;    /* the policy's queues (stats: number_hot, _warm) */
    size_t small_bytes, main_bytes;
    pc_policy_counters policy;
    size_t ghost_bytes, log_bytes, log_segment_bytes, external_bytes;
} pc_store_snapshot;

/* Attaches a change feed (pc_watch.h) that hears every change from now on; NULL detaches
 * it. The caller owns the feed and frees it after detaching it. */
void pc_store_watch(pc_store *s, pc_watch *w);
/* Fetches (a client's lookup of a key, memcached's item_get) go to the attached feed too
 * while on: they are off unless someone watches them, and off again on detaching. */
void pc_store_watch_fetches(pc_store *s, int on);
/* The key's live item, or NULL, without the fetch note a client's lookup makes: for the
 * node's own checks. */
pc_item *pc_store_find_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv);

/* A freshly created store holds no items; `now` is unix seconds. */
pc_store *pc_store_new(size_t limit_bytes, size_t item_size_max, int64_t now);
void pc_store_free(pc_store *s);
void pc_store_set_time(pc_store *s, int64_t now);
pc_reltime pc_store_now(const pc_store *s);
int64_t pc_store_unix_time(const pc_store *s, pc_reltime t);
/* memcached's realtime(): 0 never expires, <= 30 days is relative, larger is absolute unix
 * time, negative (or an absolute time in the past) is already expired. */
pc_reltime pc_store_exptime(const pc_store *s, int64_t exptime);
/* Lowering the limit evicts lazily, on the following stores. */
void pc_store_set_limit(pc_store *s, size_t limit_bytes);
/* Off (memcached -M): a store that would have to evict a live item fails with
 * PC_NO_MEMORY; expired, flushed and tombstone victims still go. On by default. */
void pc_store_set_evictions(pc_store *s, int on);
size_t pc_store_item_size_max(const pc_store *s);
size_t pc_store_bytes(const pc_store *s);
size_t pc_store_count(const pc_store *s);
void pc_store_snapshot_take(const pc_store *s, pc_store_snapshot *out);
void pc_store_reset_stats(pc_store *s);

/* Cluster mode (off by default, when the store is memcached's exactly): versions come from
 * a hybrid logical clock (pc_hlc.h) carrying `node`, so that every replica of a key stores
 * the version its writer gave it; deletes leave tombstones (key and version, no value,
 * charged to the limit, gone after tombstone_ttl seconds) that no operation sees but that
 * stop an older write from bringing the key back. */
void pc_store_set_replicated(pc_store *s, uint16_t node, uint32_t tombstone_ttl);
int pc_store_replicated(const pc_store *s);
/* A new version, as the coordinator of a write assigns it. */
uint64_t pc_store_next_version(pc_store *s);

/* Keys are 1..PC_KEY_MAX bytes (the protocol validates them). `hv` is pc_hash(key, nkey, 0):
 * callers that already hashed the key (to find its owner) pass it down instead of hashing
 * twice. Returned items stay valid until the next call that stores, deletes or crawls. */

/* get/gets: a live item counts a hit and a read for the policy. */
pc_item *pc_store_get_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv);
/* gat/gats/touch: sets a new exptime on a live item; counts touch hits/misses. */
pc_item *pc_store_touch_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                           int64_t exptime);
/* A lookup that counts nothing and moves nothing (meta commands that only peek). */
pc_item *pc_store_peek_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv);
/* What a peek left uncounted: a get hit (a read for the policy unless `bump` is 0) or, for
 * it == NULL, a get miss; note_touch counts a touch hit on a peeked item and bumps it. */
void pc_store_note_get(pc_store *s, pc_item *it, int bump);
void pc_store_note_touch(pc_store *s, pc_item *it);
/* A storage command refused before its value was read (larger than the item size limit):
 * memcached's item_store line says too_large with TTL and size 0. */
void pc_store_note_too_large(pc_store *s, pc_store_mode mode, const char *key, size_t nkey);

/* set/add/replace/append/prepend/cas. `cas` is compared for PC_CAS(_STALE), and for
 * append/prepend when non-zero. `version` 0 means "assign the next local version";
 * otherwise the item takes it (replication) and local versions continue above it. The
 * stored item is returned through *out when out != NULL. */
pc_status pc_store_store_hv(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                            uint32_t hv, uint32_t flags, int64_t exptime, const char *value,
                            size_t nbytes, uint64_t cas, uint64_t version, pc_item **out);

/* A value filled in place (memcached's conn_nread): pc_store_alloc_unlinked gives an item of
 * nbytes for `key`, charged to the limit and room made for it like a store's (the key's
 * current item is not evicted for it), but in no table or queue; NULL when there is no room
 * (or no memory). Its writer fills pc_item_value(), then pc_store_link_hv stores it under
 * `mode` as pc_store_store_hv would have stored the same value (same statuses and counters):
 * the item is consumed whatever the status (linked when PC_STORED, freed otherwise), and
 * *out is the stored item. pc_store_free_unlinked drops an item never linked (NULL: none).
 * `bytes` (pc_store_bytes) counts linked items only; the limit counts both. */
pc_item *pc_store_alloc_unlinked(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 size_t nbytes);
pc_status pc_store_link_hv(pc_store *s, pc_store_mode mode, pc_item *it, uint32_t hv,
                           uint32_t flags, int64_t exptime, uint64_t cas, uint64_t version,
                           pc_item **out);
void pc_store_free_unlinked(pc_store *s, pc_item *it);

/* delete; with has_cas only an item of version `cas` (PC_EXISTS otherwise). Misses and
 * mismatches count as delete_misses, as memcached's md counts them. In cluster mode the item
 * becomes a tombstone with a new version. */
pc_status pc_store_delete_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                             int has_cas, uint64_t cas);

/* md with I: the item stays but is marked stale, loses its win token and gets a new
 * version (and the exptime when new_ttl), in place as memcached does. PC_OK, PC_NOT_FOUND
 * or PC_EXISTS (has_cas and another version); misses count as delete_misses. */
pc_status pc_store_invalidate_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 int has_cas, uint64_t cas, int new_ttl, int64_t exptime);

/* A replica's write, last-write-wins: stores the value (or, for a tombstone, deletes the
 * key) at exactly `version` when that is newer than what the key holds, live or tombstone,
 * and not older than a flush_all; equal versions keep the greater content, so replicas
 * that saw the same writes in any order hold the same. PC_STORED / PC_DELETED when applied
 * (or already held), PC_EXISTS when what is held is newer, PC_TOO_LARGE, PC_NO_MEMORY.
 * *had_live says whether a live item was there before; on PC_EXISTS *held is the version that
 * won (the key's, or the flush_all's), so that a writer can come back above it. exptime
 * follows memcached's rules. */
pc_status pc_store_apply_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                            uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                            uint64_t version, int tombstone, int *had_live, uint64_t *held);
/* A version seen elsewhere: versions made here from now on are greater. */
void pc_store_observe(pc_store *s, uint64_t version);
/* Hand-over: the key's new owners hold this version, and this node no longer owns it: the
 * item (or tombstone) goes without leaving a tombstone, which would outrank the owners'
 * copies were this node an owner again. PC_NOT_FOUND when the key holds another version. */
pc_status pc_store_forget_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                             uint64_t version);
/* What the table holds for the key right now, tombstone included (NULL: nothing). */
pc_item *pc_store_slot_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv);

/* incr/decr: 64-bit unsigned, incr wraps, decr floors at 0; a result no longer than the
 * value is written in place and padded with spaces, as memcached does, unless `shared` says
 * an unsent reply still references the item (memcached's refcount > 2): then the result
 * replaces it, at its exact length, as a new item (not fetched, not active). `cas` != 0 must
 * match (PC_EXISTS). */
pc_status pc_store_delta_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv, int incr,
                            uint64_t delta, uint64_t cas, uint64_t version, int shared,
                            uint64_t *result, pc_item **out);

/* The same operations for callers that have not hashed the key. */
pc_item *pc_store_get(pc_store *s, const char *key, size_t nkey);
pc_item *pc_store_touch(pc_store *s, const char *key, size_t nkey, int64_t exptime);
pc_item *pc_store_peek(pc_store *s, const char *key, size_t nkey);
pc_status pc_store_store(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                         uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                         uint64_t cas, uint64_t version, pc_item **out);
pc_status pc_store_delete(pc_store *s, const char *key, size_t nkey, uint64_t cas);
pc_status pc_store_delta(pc_store *s, const char *key, size_t nkey, int incr, uint64_t delta,
                         uint64_t cas, uint64_t version, uint64_t *result, pc_item **out);

/* flush_all [delay]: delay follows exptime's rules; 0 flushes now. */
void pc_store_flush(pc_store *s, int64_t delay);
/* The same in a cluster: the version cut-off is past both the coordinator's `version` and
 * every version this store holds; pc_store_flush_version() tells it, so that the
 * coordinator's next writes can be newer on every node. */
void pc_store_flush_at(pc_store *s, int64_t delay, uint64_t version);
uint64_t pc_store_flush_version(const pc_store *s);

/* Expiry crawler: examines at most max_buckets buckets from where it last stopped, frees the
 * expired and flushed items there, and finishes one bucket-step of any table growth.
 * Returns the number of items reclaimed. */
size_t pc_store_crawl(pc_store *s, size_t max_buckets);

/* Resumable walk over live items (see pc_table_scan): returns the next cursor, 0 at the end. */
typedef void (*pc_store_visit)(pc_item *it, void *ctx);
uint64_t pc_store_scan(pc_store *s, uint64_t cursor, pc_store_visit visit, void *ctx);
/* The same walk over tombstones as well as live items: anti-entropy compares deletes too. */
uint64_t pc_store_scan_slots(pc_store *s, uint64_t cursor, pc_store_visit visit, void *ctx);

/* Seconds to live (-1 never), as meta's t flag and the scan report it. */
int64_t pc_store_ttl(const pc_store *s, const pc_item *it);
/* Parses a 64-bit unsigned decimal exactly as memcached's safe_strtoull does. */
int pc_parse_u64(const char *p, size_t n, uint64_t *out);

#endif
