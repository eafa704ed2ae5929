/* pc_store: the cache's whole API, memcached's semantics over the table, the log of items
 * and the policy. Functions named do_* run with the key's item lock held (pc_lock.h); the
 * public pc_store_*_hv entry points take it. */
#include "pc_store.h"

#include <assert.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pc_hash.h"
#include "pc_hlc.h"
#include "pc_lock.h"
#include "pc_log.h"
#include "pc_policy.h"
#include "pc_table.h"
#include "pc_watch.h"

#ifdef PC_STORE_THREADS
_Thread_local unsigned pc_lock_slot;
#endif

struct pc_store {
    pc_log log;
    pc_table table;
    pc_policy policy;
    pc_locks locks;
    pc_store_stats stats_slots[PC_COUNTER_SLOTS];
    size_t limit_bytes;        /* log segments, external values, hash table and ghost */
    size_t item_bytes;         /* charged bytes of linked items (records and values) */
    size_t external_bytes;     /* external values of records in the log */
    size_t unlinked_bytes;     /* charged bytes of items being filled (pc_store_alloc_unlinked) */
    size_t item_size_max;
    int64_t epoch;             /* unix time of reltime 0 */
    pc_reltime now;
    pc_reltime oldest_live;    /* flush_all: items last stored at or before it are gone... */
    uint64_t oldest_version;   /* ...and so are items older than this version, once active */
    /* Every flush_all that took effect before the current one, folded together: a later
     * flush_all (a future-dated one, or one whose absolute time is past) replaces
     * oldest_live, but what an earlier one invalidated stays invalid. memcached keeps only
     * oldest_live and reclaims flushed items from its LRU tails within a second, after which
     * a later flush_all cannot bring them back; here they stay gone from the start. */
    pc_reltime floor_live;
    uint64_t floor_version;
    uint64_t last_version;
    uint64_t crawl_cursor;
    int replicated;            /* cluster mode: HLC versions, tombstones */
    int no_evict;              /* memcached -M: a live victim fails the write instead */
    pc_hlc hlc;
    pc_reltime tombstone_ttl;
    size_t tombstones;         /* linked tombstones (in table.count, not curr_items) */
    pc_watch *watch;           /* the change feed, NULL while nobody watches */
    pc_watch *fetchers;        /* the same feed while fetches are watched, else NULL */
};

/* This thread's counters (pc_lock.h: one slot per worker, summed by the snapshot). */
#define STATS(s) ((s)->stats_slots[PC_COUNTER_SLOT()])

/* Every change is noted through here: with nobody watching, one untaken branch. */
#define NOTE(s, ...)                                     \
    do {                                                 \
        if ((s)->watch)                                  \
            pc_watch_note((s)->watch, __VA_ARGS__);      \
    } while (0)

void pc_store_watch(pc_store *s, pc_watch *w)
{
    s->watch = w;
    s->fetchers = NULL;
}

void pc_store_watch_fetches(pc_store *s, int on) { s->fetchers = on ? s->watch : NULL; }

/* memcached's REALTIME_MAXDELTA: larger exptimes are absolute unix times. */
#define PC_REALTIME_MAXDELTA (60 * 60 * 24 * 30)
/* The epoch lies this far before the store's birth (memcached's process_started does the
 * same), so that reltime 1, "already expired", is always in the past. */
#define PC_EPOCH_SLACK 62
#define PC_TABLE_INITIAL_POWER 16

pc_store *pc_store_new(size_t limit_bytes, size_t item_size_max, int64_t now)
{
    pc_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (pc_log_init(&s->log, limit_bytes) != 0) {
        free(s);
        return NULL;
    }
    if (pc_table_init(&s->table, PC_TABLE_INITIAL_POWER, &s->log) != 0) {
        pc_log_destroy(&s->log);
        free(s);
        return NULL;
    }
    pc_policy_init(&s->policy);
    pc_locks_init(&s->locks);
    s->limit_bytes = limit_bytes;
    s->item_size_max = item_size_max;
    s->epoch = now - PC_EPOCH_SLACK;
    s->now = PC_EPOCH_SLACK;
    return s;
}

static void free_value(pc_store *s, pc_item *it)
{
    if (it->meta & PC_META_EXTERNAL)
        pc_value_free(*pc_item_value_slot(it), it->nbytes, it->meta & PC_META_MAPPED,
                      &s->external_bytes);
}

static void free_external(pc_item *it, void *s) { free_value(s, it); }

void pc_store_free(pc_store *s)
{
    if (!s)
        return;
    pc_log_walk(&s->log, &s->policy.small, free_external, s);
    pc_log_walk(&s->log, &s->policy.main, free_external, s);
    pc_table_destroy(&s->table);
    pc_policy_destroy(&s->policy);
    pc_log_destroy(&s->log);
    free(s);
}

void pc_store_set_time(pc_store *s, int64_t now)
{
    int64_t rel = now - s->epoch;
    /* Time never runs backwards for items: a stepped-back wall clock holds still instead. */
    if (rel > (int64_t)s->now)
        s->now = rel > (int64_t)UINT32_MAX ? UINT32_MAX : (pc_reltime)rel;
}

pc_reltime pc_store_now(const pc_store *s) { return s->now; }

int64_t pc_store_unix_time(const pc_store *s, pc_reltime t) { return s->epoch + t; }

pc_reltime pc_store_exptime(const pc_store *s, int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1;
    int64_t rel;
    if (exptime > PC_REALTIME_MAXDELTA) {
        if (exptime <= s->epoch)
            return 1;
        rel = exptime - s->epoch;
    } else {
        rel = exptime + s->now;
    }
    return rel > (int64_t)UINT32_MAX ? UINT32_MAX : (pc_reltime)rel;
}

void pc_store_set_limit(pc_store *s, size_t limit_bytes)
{
    s->limit_bytes = limit_bytes;
    /* Without a larger reservation the log stays within the old one: stores evict sooner. */
    (void)pc_log_set_limit(&s->log, limit_bytes);
}

void pc_store_set_evictions(pc_store *s, int on) { s->no_evict = !on; }

size_t pc_store_bytes(const pc_store *s) { return s->item_bytes; }

size_t pc_store_item_size_max(const pc_store *s) { return s->item_size_max; }

size_t pc_store_count(const pc_store *s) { return s->table.count - s->tombstones; }

void pc_store_set_replicated(pc_store *s, uint16_t node, uint32_t tombstone_ttl)
{
    s->replicated = 1;
    pc_hlc_init(&s->hlc, node);
    pc_hlc_observe(&s->hlc, s->last_version);
    s->tombstone_ttl = tombstone_ttl ? tombstone_ttl : 1;
}

int pc_store_replicated(const pc_store *s) { return s->replicated; }

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void add_counters(pc_store_stats *to, const pc_store_stats *from)
{
    uint64_t *t = (uint64_t *)to;
    const uint64_t *f = (const uint64_t *)from;
    for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
        t[i] += f[i];
}

void pc_store_snapshot_take(const pc_store *s, pc_store_snapshot *out)
{
    memset(&out->counters, 0, sizeof(out->counters));
    for (int i = 0; i < PC_COUNTER_SLOTS; i++)
        add_counters(&out->counters, &s->stats_slots[i]);
    out->curr_items = s->table.count - s->tombstones;
    out->tombstones = s->tombstones;
    out->item_bytes = s->item_bytes;
    out->unlinked_bytes = s->unlinked_bytes;
    out->limit_bytes = s->limit_bytes;
    out->item_size_max = s->item_size_max;
    out->hash_bytes = pc_table_bytes(&s->table);
    out->hash_power = s->table.power;
    out->hash_is_expanding = pc_table_is_growing(&s->table);
    out->small_items = s->policy.small.items;
    out->main_items = s->policy.main.items;
    out->small_bytes = s->policy.small.bytes;
    out->main_bytes = s->policy.main.bytes;
    out->policy = s->policy.c;
    out->ghost_bytes = pc_policy_bytes(&s->policy);
    out->log_bytes = pc_log_bytes(&s->log);
    out->log_segment_bytes = s->log.seg_bytes;
    out->external_bytes = s->external_bytes;
}

void pc_store_reset_stats(pc_store *s)
{
    memset(s->stats_slots, 0, sizeof(s->stats_slots));
    memset(&s->policy.c, 0, sizeof(s->policy.c));
}

/* What -m bounds: the log's segments in use, external values, values being filled, the
 * hash table and the ghost. */
static size_t used_bytes(const pc_store *s)
{
    return pc_log_bytes(&s->log) + s->external_bytes + s->unlinked_bytes +
           pc_table_bytes(&s->table) + pc_policy_bytes(&s->policy);
}

/* The bytes the policy shares out between its queues. */
static size_t capacity(const pc_store *s)
{
    size_t fixed = pc_table_bytes(&s->table) + pc_policy_bytes(&s->policy);
    return s->limit_bytes > fixed ? s->limit_bytes - fixed : 0;
}

static int is_expired(const pc_store *s, const pc_item *it)
{
    return it->exptime != 0 && it->exptime <= s->now;
}

/* memcached's item_is_flushed(). */
static int is_flushed(const pc_store *s, const pc_item *it)
{
    if (it->time <= s->floor_live || it->version < s->floor_version)
        return 1;
    if (s->oldest_live == 0 || s->oldest_live > s->now)
        return 0;
    return it->time <= s->oldest_live || (s->oldest_version != 0 && it->version < s->oldest_version);
}

static int is_tombstone(const pc_item *it) { return (it->bits & PC_ITEM_TOMBSTONE) != 0; }

static int64_t unix_exptime(const pc_store *s, pc_reltime t) { return t ? s->epoch + t : 0; }

/* An item leaves for good (its expiry noticed, or evicted): the feed hears which. */
static void note_gone(pc_store *s, const pc_item *it, uint8_t change)
{
    NOTE(s, change, PC_WCMD_NULL, PC_WST_STORED, pc_item_key(it), it->nkey, it->version,
         unix_exptime(s, it->exptime), it->nbytes);
}

static uint64_t next_version(pc_store *s, uint64_t version)
{
    if (version == 0)
        version = s->replicated ? pc_hlc_next(&s->hlc, wall_ms()) : s->last_version + 1;
    else if (s->replicated)
        pc_hlc_observe(&s->hlc, version);
    if (version > s->last_version)
        s->last_version = version;
    return version;
}

uint64_t pc_store_next_version(pc_store *s) { return next_version(s, 0); }

void pc_store_observe(pc_store *s, uint64_t version) { next_version(s, version); }

static pc_queue *queue_of(pc_store *s, const pc_item *it)
{
    return it->meta & PC_META_MAIN ? &s->policy.main : &s->policy.small;
}

/* A record written at its queue's tail becomes live there (the policy lock is held). */
static void enqueue(pc_store *s, pc_item *it)
{
    size_t charge = pc_item_charge(it);
    it->meta &= (uint8_t)~PC_META_DEAD;
    pc_log_count(&s->log, queue_of(s, it), it, charge);
    s->item_bytes += charge;
}

/* A live record leaves its queue; its bytes wait for the segment to go. The value, if
 * external, is the caller's to free or hand on. */
static void dequeue(pc_store *s, pc_item *it)
{
    size_t charge = pc_item_charge(it);
    pc_log_kill(&s->log, queue_of(s, it), it, charge);
    s->item_bytes -= charge;
}

static void unlink_free(pc_store *s, pc_item *it, uint32_t hv)
{
    pc_table_remove(&s->table, it, hv);
    if (is_tombstone(it))
        s->tombstones--;
    PC_POLICY_LOCK(&s->locks);
    dequeue(s, it);
    PC_POLICY_UNLOCK(&s->locks);
    free_value(s, it);
}

/* In a cluster an expiry is a write at the item's version: the item becomes a tombstone in
 * place (no allocation, so the crawler may do it mid-scan) and outranks an older value that
 * another owner still holds, or a late replay of one. */
static void entomb(pc_store *s, pc_item *it)
{
    it->bits |= PC_ITEM_TOMBSTONE;
    it->exptime = s->now + s->tombstone_ttl;
    s->tombstones++;
}

/* What the table holds for the key (a live item or a tombstone), dropping it on the way if
 * it has expired or been flushed; *found says which, as memcached's item_get line does (a
 * tombstone is not found). */
static pc_item *lookup_slot_why(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                uint8_t *found)
{
    assert(nkey > 0 && nkey <= PC_KEY_MAX);
    assert(hv == pc_hash(key, nkey, 0));
    *found = PC_WGET_NOT_FOUND;
    pc_item *it = pc_table_find(&s->table, key, nkey, hv);
    if (!it)
        return NULL;
    if (is_tombstone(it)) {
        if (is_expired(s, it)) {
            unlink_free(s, it, hv);
            return NULL;
        }
        return it;
    }
    if (is_flushed(s, it)) {
        STATS(s).get_flushed++;
        *found = PC_WGET_FLUSHED;
        unlink_free(s, it, hv);
        return NULL;
    }
    if (is_expired(s, it)) {
        STATS(s).get_expired++;
        *found = PC_WGET_EXPIRED;
        note_gone(s, it, PC_CHANGE_EXPIRE);
        if (s->replicated) {
            entomb(s, it);
            return it;
        }
        unlink_free(s, it, hv);
        return NULL;
    }
    *found = PC_WGET_FOUND;
    return it;
}

static pc_item *lookup_slot(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    uint8_t found;
    return lookup_slot_why(s, key, nkey, hv, &found);
}

/* A client's command looking the key up (memcached's do_item_get): while fetches are
 * watched, the item_get line's facts go to the feed; otherwise one untaken branch. */
static pc_item *fetch_slot(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    uint8_t found;
    pc_item *it = lookup_slot_why(s, key, nkey, hv, &found);
    if (s->fetchers) {
        const pc_item *live = found == PC_WGET_FOUND ? it : NULL;
        pc_watch_note(s->fetchers, PC_CHANGE_FETCH, PC_WCMD_NULL, found, key, nkey,
                      live ? live->version : 0, live ? unix_exptime(s, live->exptime) : 0,
                      live ? live->nbytes : 0);
    }
    return it;
}

/* A live item: tombstones are invisible to every operation but replication's. */
static pc_item *lookup(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    pc_item *it = lookup_slot(s, key, nkey, hv);
    return it && !is_tombstone(it) ? it : NULL;
}

/* lookup() for a client's command: the fetch is noted. */
static pc_item *fetch(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    pc_item *it = fetch_slot(s, key, nkey, hv);
    return it && !is_tombstone(it) ? it : NULL;
}

static pc_item *do_find(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    return lookup(s, key, nkey, hv);
}

static void link_new(pc_store *s, pc_item *it, uint32_t hv, uint64_t version)
{
    it->version = next_version(s, version);
    it->time = s->now;
    pc_table_insert(&s->table, it, hv);
    PC_POLICY_LOCK(&s->locks);
    enqueue(s, it);
    PC_POLICY_UNLOCK(&s->locks);
    if (is_tombstone(it))
        s->tombstones++;
    else
        STATS(s).total_items++;
}

/* Puts new_it (same key) where old_it was; old_it is freed. */
static void replace(pc_store *s, pc_item *old_it, pc_item *new_it, uint32_t hv, uint64_t version)
{
    new_it->version = next_version(s, version);
    new_it->time = s->now;
    pc_table_replace(&s->table, old_it, new_it, hv);
    if (is_tombstone(old_it))
        s->tombstones--;
    PC_POLICY_LOCK(&s->locks);
    dequeue(s, old_it);
    enqueue(s, new_it);
    PC_POLICY_UNLOCK(&s->locks);
    free_value(s, old_it);
    if (is_tombstone(new_it))
        s->tombstones++;
    else
        STATS(s).total_items++;
}

/* Copies q's head record `it` to the tail of `to_q` (main when the policy kept it or it is
 * the item a store is about to replace; its own queue when the log is compacted); the table
 * follows it, and *keep when it pointed there. NULL when no segment is left for it. */
static pc_item *move(pc_store *s, pc_queue *q, pc_queue *to_q, pc_item *it, uint32_t hv,
                     pc_item **keep)
{
    size_t size = pc_item_record(it);
    pc_item *to = pc_log_append(&s->log, to_q, size);
    if (!to)
        return NULL;
    memcpy(to, it, size);
    if (to_q == &s->policy.main)
        to->meta |= PC_META_MAIN;
    pc_table_replace(&s->table, it, to, hv);
    /* the queue the record left is the one it was in: its MAIN bit may be new */
    size_t charge = pc_item_charge(it);
    pc_log_kill(&s->log, q, it, charge);
    pc_log_count(&s->log, to_q, to, charge);
    if (keep && *keep == it)
        *keep = to;
    return to;
}

static pc_item *move_to_main(pc_store *s, pc_queue *q, pc_item *it, uint32_t hv,
                             pc_item **keep)
{
    return move(s, q, &s->policy.main, it, hv, keep);
}

/* Whether the limit is reached through dead records (deleted or replaced, waiting for
 * their segment to go) rather than live ones: the live items and two segments' slack fit
 * the limit. Then a live item at the head is not evicted but moved on to its queue's tail
 * (the log is compacted), so that a cache holding much less than -m evicts nothing, as
 * memcached's does not: without this, an item stored once and never read was evicted a
 * lap of the log after its store however little of the log was live. */
static int compacting(const pc_store *s)
{
    /* Terminates: while compacting, passing a dead record lowers log.dead and moving a
     * live one leaves it as it was, so the loop turns to evicting within one lap. */
    size_t fixed = pc_table_bytes(&s->table) + pc_policy_bytes(&s->policy);
    return s->log.dead > 2 * s->log.seg_bytes &&
           s->item_bytes + s->unlinked_bytes + fixed + 2 * s->log.seg_bytes <= s->limit_bytes;
}

/* Examines the record at the head of the queue the policy names: moved on when kept (or
 * when it is `*keep`, which moves with it), else gone. Expired or flushed victims count as
 * reclaimed, live ones as evictions. -1 when there is nothing left to evict. */
static int evict_one(pc_store *s, pc_item **keep)
{
    pc_queue *q = pc_policy_victim_queue(&s->policy, capacity(s));
    if (!q)
        return -1;
    pc_item *it = pc_log_head(&s->log, q);
    assert(it != NULL);
    if (pc_table_bytes(&s->table) / sizeof(pc_ref) > (pc_policy_bytes(&s->policy) /
                                                      sizeof(uint32_t)))
        pc_policy_size_ghost(&s->policy, s->table.count);
    uint32_t hv = pc_hash(pc_item_key(it), it->nkey, 0);
    int held = keep && *keep == it;
    if (!held && !PC_ITEM_TRYLOCK(&s->locks, hv)) {
        /* Threads: another key's stripe is only ever tried (pc_lock.h); a busy item goes
         * round again. */
        if (!move_to_main(s, q, it, hv, NULL))
            return -1;
        pc_log_pass(&s->log, q, it);
        return 0;
    }
    int reclaim = !is_tombstone(it) && (is_expired(s, it) || is_flushed(s, it));
    if (!held && !reclaim && compacting(s) && move(s, q, q, it, hv, NULL)) {
        STATS(s).log_compactions++;
        pc_log_pass(&s->log, q, it);
        PC_ITEM_UNLOCK(&s->locks, hv);
        return 0;
    }
    int kept = held || (!reclaim && pc_policy_keep(&s->policy, q, it, hv, pc_item_charge(it),
                                                   capacity(s)));
    /* The cursor passes a record only once it is copied or gone: passing may free the
     * segment it is in. */
    if (kept && move_to_main(s, q, it, hv, keep)) {
        pc_log_pass(&s->log, q, it);
        if (!held)
            PC_ITEM_UNLOCK(&s->locks, hv);
        return 0;
    }
    if (held)       /* no segment left to move the item being replaced to */
        return -1;
    {
        if (is_tombstone(it)) {
            /* an old delete's marker: nothing a client could read is lost */
        } else if (is_expired(s, it) || is_flushed(s, it)) {
            STATS(s).reclaimed++;
            if (!(it->bits & PC_ITEM_FETCHED))
                STATS(s).expired_unfetched++;
            if (!is_flushed(s, it))
                note_gone(s, it, PC_CHANGE_EXPIRE);
        } else {
            if (s->no_evict) {
                PC_ITEM_UNLOCK(&s->locks, hv);
                return -1;  /* memcached's -M stops at the first live item, as here */
            }
            STATS(s).evictions++;
            if (!(it->bits & PC_ITEM_FETCHED))
                STATS(s).evicted_unfetched++;
            if (s->watch)
                pc_watch_note_evict(s->watch, pc_item_key(it), it->nkey, it->version,
                                    unix_exptime(s, it->exptime), it->nbytes,
                                    s->now - it->time, it->bits & PC_ITEM_FETCHED);
        }
        pc_table_remove(&s->table, it, hv);
        if (is_tombstone(it))
            s->tombstones--;
        dequeue(s, it);
        free_value(s, it);
    }
    pc_log_pass(&s->log, q, it);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return 0;
}

/* Evicts until a record of `size` bytes fits at q's tail within the limit. */
static int make_room(pc_store *s, pc_queue *q, size_t size, pc_item **keep)
{
    for (;;) {
        size_t need = !size || pc_log_tail_fits(&s->log, q, size) ? 0 : s->log.seg_bytes;
        if (used_bytes(s) + need <= s->limit_bytes)
            return 0;
        if (evict_one(s, keep) != 0)
            return -1;
    }
}

/* A new record for the key, written but not linked (its writer fills the value, then links
 * it), with room made for it; NULL for PC_NO_MEMORY. It enters the queue of the item it
 * replaces, `*keep` (never evicted for it: it may move, and *keep follows), or the one the
 * policy admits a new key to. */
static pc_item *place(pc_store *s, const char *key, size_t nkey, uint32_t hv, uint32_t flags,
                      size_t nbytes, int external, char *value, int mapped, pc_item **keep)
{
    size_t size = pc_item_record_size(nkey, flags, nbytes, external);
    PC_POLICY_LOCK(&s->locks);
    pc_item *old = keep ? *keep : NULL;
    pc_queue *q = old && !is_tombstone(old)
                      ? queue_of(s, old)
                      : pc_policy_admit(&s->policy, hv);
    pc_item *it = NULL;
    if (make_room(s, q, size, keep) == 0)
        it = pc_log_append(&s->log, q, size);
    PC_POLICY_UNLOCK(&s->locks);
    if (!it) {
        if (value)
            pc_value_free(value, nbytes, mapped, &s->external_bytes);
        return NULL;
    }
    pc_item_init(it, key, nkey, flags, nbytes, external);
    /* Not live until linked: a record that never is stays dead where it was written. */
    it->meta |= (uint8_t)(PC_META_DEAD | (q == &s->policy.main ? PC_META_MAIN : 0) |
                          (mapped ? PC_META_MAPPED : 0));
    if (old && !is_tombstone(old))
        it->meta |= (uint8_t)(old->meta & PC_META_FREQ);
    if (external)
        *pc_item_value_slot(it) = value;
    return it;
}

static pc_item *alloc_item(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                           uint32_t flags, size_t nbytes, pc_item **keep)
{
    int external = pc_item_record_size(nkey, flags, nbytes, 0) > pc_log_inline_max(&s->log);
    char *value = NULL;
    int mapped = 0;
    if (external && !(value = pc_value_alloc(nbytes, &mapped, &s->external_bytes)))
        return NULL;
    return place(s, key, nkey, hv, flags, nbytes, external, value, mapped, keep);
}

static pc_item *do_get(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    pc_item *it = fetch(s, key, nkey, hv);
    pc_store_note_get(s, it, 1);
    return it;
}

static pc_item *do_touch(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                         int64_t exptime)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it) {
        STATS(s).touch_misses++;
        return NULL;
    }
    it->exptime = pc_store_exptime(s, exptime);
    pc_store_note_touch(s, it);
    return it;
}

static pc_item *do_peek(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    return fetch(s, key, nkey, hv);
}

void pc_store_note_get(pc_store *s, pc_item *it, int bump)
{
    if (!it) {
        STATS(s).get_misses++;
        return;
    }
    STATS(s).get_hits++;
    if (bump)
        pc_policy_hit(it, s->now);
}

void pc_store_note_touch(pc_store *s, pc_item *it)
{
    STATS(s).touch_hits++;
    pc_policy_hit(it, s->now);
}

/* The stale value keeps the old item's TTL and win token, and is marked stale. */
static pc_status store_stale(pc_store *s, pc_item *old, uint32_t hv, const char *key,
                             size_t nkey, uint32_t flags, const char *value, size_t nbytes,
                             uint64_t version, pc_item **out)
{
    pc_item *it = alloc_item(s, key, nkey, hv, flags, nbytes, &old);
    if (!it)
        return PC_NO_MEMORY;
    it->exptime = old->exptime;
    it->bits |= (uint8_t)(PC_ITEM_STALE | (old->bits & PC_ITEM_TOKEN_SENT));
    memcpy(pc_item_value(it), value, nbytes);
    STATS(s).cas_hits++;
    replace(s, old, it, hv, version);
    if (out)
        *out = it;
    return PC_STORED;
}

static pc_status store_over(pc_store *s, pc_store_mode mode, pc_item *old, uint32_t hv,
                            const char *key, size_t nkey, uint32_t flags, int64_t exptime,
                            const char *value, size_t nbytes, uint64_t cas, uint64_t version,
                            pc_item **out)
{
    pc_item *it;
    switch (mode) {
    case PC_ADD:
        return PC_NOT_STORED;
    case PC_CAS_STALE:
        if (cas != 0 && cas < old->version)
            return store_stale(s, old, hv, key, nkey, flags, value, nbytes, version, out);
        /* A current or newer CAS is a plain cas. */
        /* fall through */
    case PC_CAS:
        if (cas == 0 || cas != old->version) {
            STATS(s).cas_badval++;
            return PC_EXISTS;
        }
        STATS(s).cas_hits++;
        /* fall through */
    case PC_SET:
    case PC_REPLACE:
        it = alloc_item(s, key, nkey, hv, flags, nbytes, &old);
        if (!it)
            return PC_NO_MEMORY;
        it->exptime = pc_store_exptime(s, exptime);
        memcpy(pc_item_value(it), value, nbytes);
        break;
    case PC_APPEND:
    case PC_PREPEND:
        if (cas != 0 && cas != old->version)
            return PC_EXISTS;
        /* The joined value is checked against -I like any other (memcached: NOT_STORED). */
        if (pc_item_memcached_size(nkey, pc_item_flags(old), old->nbytes + nbytes) >
            s->item_size_max)
            return PC_NOT_STORED;
        it = alloc_item(s, key, nkey, hv, pc_item_flags(old), old->nbytes + nbytes, &old);
        if (!it)
            return PC_NOT_STORED;
        it->exptime = old->exptime;
        if (mode == PC_APPEND) {
            memcpy(pc_item_value(it), pc_item_value(old), old->nbytes);
            memcpy(pc_item_value(it) + old->nbytes, value, nbytes);
        } else {
            memcpy(pc_item_value(it), value, nbytes);
            memcpy(pc_item_value(it) + nbytes, pc_item_value(old), old->nbytes);
        }
        break;
    default:
        return PC_NOT_STORED;
    }
    replace(s, old, it, hv, version);
    if (out)
        *out = it;
    return PC_STORED;
}

static pc_status store_hv(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                          uint32_t hv, uint32_t flags, int64_t exptime, const char *value,
                          size_t nbytes, uint64_t cas, uint64_t version, pc_item **out)
{
    if (pc_item_memcached_size(nkey, flags, nbytes) > s->item_size_max)
        return PC_TOO_LARGE;
    pc_item *old = fetch_slot(s, key, nkey, hv), *tomb = NULL;
    if (old && is_tombstone(old)) {
        tomb = old;
        old = NULL;
    }
    if (old)
        return store_over(s, mode, old, hv, key, nkey, flags, exptime, value, nbytes, cas,
                          version, out);

    if (mode == PC_CAS || mode == PC_CAS_STALE) {
        STATS(s).cas_misses++;
        return PC_NOT_FOUND;
    }
    if (mode != PC_SET && mode != PC_ADD)
        return PC_NOT_STORED;
    pc_item *it = alloc_item(s, key, nkey, hv, flags, nbytes, &tomb);
    if (!it)
        return PC_NO_MEMORY;
    it->exptime = pc_store_exptime(s, exptime);
    memcpy(pc_item_value(it), value, nbytes);
    if (tomb)
        replace(s, tomb, it, hv, version);
    else
        link_new(s, it, hv, version);
    if (out)
        *out = it;
    return PC_STORED;
}

/* memcached's item_store log line for every storage command, failures included: like
 * memcached it names the request's TTL and size, whatever became of them; the version is
 * the stored item's (0 on failure). */
static void note_store(pc_store *s, pc_store_mode mode, pc_status st, const char *key,
                       size_t nkey, int64_t exptime, size_t nbytes, const pc_item *it)
{
    static const uint8_t cmd[] = {
        [PC_SET] = PC_WCMD_SET, [PC_ADD] = PC_WCMD_ADD, [PC_REPLACE] = PC_WCMD_REPLACE,
        [PC_APPEND] = PC_WCMD_APPEND, [PC_PREPEND] = PC_WCMD_PREPEND, [PC_CAS] = PC_WCMD_CAS,
        [PC_CAS_STALE] = PC_WCMD_CAS};
    uint8_t status = st == PC_STORED ? PC_WST_STORED : st == PC_EXISTS ? PC_WST_EXISTS
                   : st == PC_NOT_FOUND ? PC_WST_NOT_FOUND : st == PC_TOO_LARGE ? PC_WST_TOO_LARGE
                   : st == PC_NO_MEMORY ? PC_WST_NO_MEMORY : PC_WST_NOT_STORED;
    pc_watch_note(s->watch, PC_CHANGE_STORE, cmd[mode], status, key, nkey,
                  it ? it->version : 0, unix_exptime(s, pc_store_exptime(s, exptime)),
                  (uint32_t)nbytes);
}

void pc_store_note_too_large(pc_store *s, pc_store_mode mode, const char *key, size_t nkey)
{
    if (s->watch)
        note_store(s, mode, PC_TOO_LARGE, key, nkey, 0, 0, NULL);
}

static pc_status do_store(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                          uint32_t hv, uint32_t flags, int64_t exptime, const char *value,
                          size_t nbytes, uint64_t cas, uint64_t version, pc_item **out)
{
    pc_item *it = NULL;
    pc_status st = store_hv(s, mode, key, nkey, hv, flags, exptime, value, nbytes, cas,
                            version, &it);
    if (s->watch)
        note_store(s, mode, st, key, nkey, exptime, nbytes, st == PC_STORED ? it : NULL);
    if (out && st == PC_STORED)
        *out = it;
    return st;
}

/* Items filled in place by their writer (a value read straight off a socket): charged to
 * the limit from the start, as unlinked_bytes, so that values in flight count against it,
 * and moved to item_bytes once linked. */
static size_t header_charge(const pc_item *it)
{
    return malloc_usable_size((void *)it) + sizeof(size_t);
}

/* An unlinked item is a header of its own (outside the log) and an external value; its
 * writer fills the value at a stable address however the log moves meanwhile. */
static pc_item *do_alloc_unlinked(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                  size_t nbytes)
{
    assert(nkey > 0 && nkey <= PC_KEY_MAX);
    /* The item the value may replace is not evicted to make room for it (as store_over's
     * alloc_item keeps it); a plain table lookup, which counts and drops nothing. */
    pc_item *keep = pc_table_find(&s->table, key, nkey, hv);
    pc_item *it = malloc(pc_item_record_size(nkey, 0, nbytes, 1));
    if (!it)
        return NULL;
    int mapped;
    char *value = pc_value_alloc(nbytes, &mapped, &s->unlinked_bytes);
    if (!value) {
        free(it);
        return NULL;
    }
    pc_item_init(it, key, nkey, 0, nbytes, 1);
    it->meta |= (uint8_t)(PC_META_UNLINKED | (mapped ? PC_META_MAPPED : 0));
    *pc_item_value_slot(it) = value;
    s->unlinked_bytes += header_charge(it);
    PC_POLICY_LOCK(&s->locks);
    int full = make_room(s, &s->policy.small, 0, &keep);
    PC_POLICY_UNLOCK(&s->locks);
    if (full != 0) {
        pc_store_free_unlinked(s, it);
        return NULL;
    }
    return it;
}

void pc_store_free_unlinked(pc_store *s, pc_item *it)
{
    if (!it)
        return;
    pc_value_free(*pc_item_value_slot(it), it->nbytes, it->meta & PC_META_MAPPED,
                  &s->unlinked_bytes);
    s->unlinked_bytes -= header_charge(it);
    free(it);
}

/* The log record for an unlinked item: its value is handed on (its charge with it), its
 * header freed; a value small enough to be inline is copied in (the item is then laid out
 * as a store's of the same value). NULL (the unlinked item untouched) when there is no room
 * for the record. */
static pc_item *adopt(pc_store *s, pc_item *u, uint32_t hv, uint32_t flags, pc_item **keep)
{
    char *value = *pc_item_value_slot(u);
    if (pc_item_record_size(u->nkey, flags, u->nbytes, 0) <= pc_log_inline_max(&s->log)) {
        pc_item *it = place(s, pc_item_key(u), u->nkey, hv, flags, u->nbytes, 0, NULL, 0,
                            keep);
        if (it) {
            memcpy(pc_item_value(it), value, u->nbytes);
            pc_store_free_unlinked(s, u);
        }
        return it;
    }
    int mapped = u->meta & PC_META_MAPPED;
    size_t charge = pc_value_charge(value, u->nbytes, mapped);
    s->unlinked_bytes -= charge;
    s->external_bytes += charge;
    pc_item *it = place(s, pc_item_key(u), u->nkey, hv, flags, u->nbytes, 1, value, mapped,
                        keep);
    if (!it) {
        s->unlinked_bytes += charge;
        s->external_bytes -= charge;
        return NULL;
    }
    s->unlinked_bytes -= header_charge(u);
    free(u);
    return it;
}

/* store_hv for a value already in an unlinked item: set/add/replace/cas link the item
 * itself; append, prepend and a stale cas build their item as a store does, from its value
 * (uncharged meanwhile, as a value in a read buffer is). */
static pc_status link_hv(pc_store *s, pc_store_mode mode, pc_item *it, uint32_t hv,
                         uint32_t flags, int64_t exptime, uint64_t cas, uint64_t version,
                         pc_item **out)
{
    const char *key = pc_item_key(it);
    size_t nkey = it->nkey;
    if (pc_item_memcached_size(nkey, flags, it->nbytes) > s->item_size_max) {
        pc_store_free_unlinked(s, it);
        return PC_TOO_LARGE;
    }
    if (mode != PC_SET && mode != PC_ADD && mode != PC_REPLACE && mode != PC_CAS) {
        pc_status st = store_hv(s, mode, key, nkey, hv, flags, exptime, pc_item_value(it),
                                it->nbytes, cas, version, out);
        pc_store_free_unlinked(s, it);
        return st;
    }
    pc_item *old = lookup_slot(s, key, nkey, hv), *tomb = NULL;
    if (old && is_tombstone(old)) {
        tomb = old;
        old = NULL;
    }
    pc_status st = PC_STORED;
    if (old) {
        if (mode == PC_ADD) {
            st = PC_NOT_STORED;
        } else if (mode == PC_CAS) {
            if (cas == 0 || cas != old->version) {
                STATS(s).cas_badval++;
                st = PC_EXISTS;
            } else {
                STATS(s).cas_hits++;
            }
        }
    } else if (mode == PC_CAS) {
        STATS(s).cas_misses++;
        st = PC_NOT_FOUND;
    } else if (mode == PC_REPLACE) {
        st = PC_NOT_STORED;
    }
    if (st != PC_STORED) {
        pc_store_free_unlinked(s, it);
        return st;
    }
    pc_item *keep = old ? old : tomb, *u = it;
    it = adopt(s, u, hv, flags, &keep);
    if (!it) {
        pc_store_free_unlinked(s, u);
        return PC_NO_MEMORY;
    }
    it->exptime = pc_store_exptime(s, exptime);
    if (keep)
        replace(s, keep, it, hv, version);
    else
        link_new(s, it, hv, version);
    *out = it;
    return PC_STORED;
}

static pc_status do_link(pc_store *s, pc_store_mode mode, pc_item *it, uint32_t hv,
                         uint32_t flags, int64_t exptime, uint64_t cas, uint64_t version,
                         pc_item **out)
{
    pc_item *stored = NULL;
    /* The key and size outlive the item for the feed's line (it may be freed). */
    char key[PC_KEY_MAX];
    size_t nkey = it->nkey, nbytes = it->nbytes;
    if (s->watch)
        memcpy(key, pc_item_key(it), nkey);
    pc_status st = link_hv(s, mode, it, hv, flags, exptime, cas, version, &stored);
    if (s->watch)
        note_store(s, mode, st, key, nkey, exptime, nbytes, st == PC_STORED ? stored : NULL);
    if (out && st == PC_STORED)
        *out = stored;
    return st;
}

/* A tombstone for `key` in place of `old` (a live item, a tombstone, or NULL). */
static pc_status bury(pc_store *s, pc_item *old, const char *key, size_t nkey, uint32_t hv,
                      uint64_t version)
{
    pc_item *tomb = alloc_item(s, key, nkey, hv, 0, 0, &old);
    if (!tomb)
        return PC_NO_MEMORY;
    tomb->bits |= PC_ITEM_TOMBSTONE;
    tomb->exptime = s->now + s->tombstone_ttl;
    if (old)
        replace(s, old, tomb, hv, version);
    else
        link_new(s, tomb, hv, version);
    return PC_DELETED;
}

/* Orders two versions of a key for last-write-wins: by version, then (one writer's version
 * replayed, or two nodes whose bits collide) by content, so every replica picks the same. */
static int newer(const pc_item *held, uint64_t version, int tombstone, uint32_t flags,
                 const char *value, size_t nbytes)
{
    if (held->version != version)
        return held->version > version ? 1 : -1;
    if (is_tombstone(held) != (tombstone != 0))
        return is_tombstone(held) ? 1 : -1;
    if (pc_item_flags(held) != flags)
        return pc_item_flags(held) > flags ? 1 : -1;
    if (held->nbytes != nbytes)
        return held->nbytes > nbytes ? 1 : -1;
    int c = memcmp(pc_item_value((pc_item *)held), value, nbytes);
    return c > 0 ? 1 : c < 0 ? -1 : 0;
}

static pc_status apply_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                          uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                          uint64_t version, int tombstone, int *had_live, uint64_t *held)
{
    *had_live = 0;
    *held = 0;
    if (!tombstone && pc_item_memcached_size(nkey, flags, nbytes) > s->item_size_max)
        return PC_TOO_LARGE;
    /* A write older than a flush_all that already happened stays flushed. */
    if (version < s->floor_version) {
        *held = s->floor_version;
        return PC_EXISTS;
    }
    if (s->oldest_live != 0 && s->oldest_live <= s->now && version < s->oldest_version) {
        *held = s->oldest_version;
        return PC_EXISTS;
    }
    pc_item *old = lookup_slot(s, key, nkey, hv);
    if (old) {
        *had_live = !is_tombstone(old);
        int order = newer(old, version, tombstone, flags, value, nbytes);
        if (order > 0) {
            *held = old->version;
            return PC_EXISTS;
        }
        if (order == 0) {
            next_version(s, version);
            return tombstone ? PC_DELETED : PC_STORED;
        }
    }
    if (tombstone)
        return bury(s, old, key, nkey, hv, version);
    pc_item *it = alloc_item(s, key, nkey, hv, flags, nbytes, &old);
    if (!it)
        return PC_NO_MEMORY;
    it->exptime = pc_store_exptime(s, exptime);
    memcpy(pc_item_value(it), value, nbytes);
    if (old)
        replace(s, old, it, hv, version);
    else
        link_new(s, it, hv, version);
    return PC_STORED;
}

static pc_status do_apply(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                          uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                          uint64_t version, int tombstone, int *had_live, uint64_t *held)
{
    pc_status st = apply_hv(s, key, nkey, hv, flags, exptime, value, nbytes, version,
                            tombstone, had_live, held);
    /* A write held already (a replay) is noted again: watchers tell it by its version. */
    if (st == PC_STORED)
        NOTE(s, PC_CHANGE_STORE, PC_WCMD_REPLICA, PC_WST_STORED, key, nkey, version,
             unix_exptime(s, pc_store_exptime(s, exptime)), (uint32_t)nbytes);
    else if (st == PC_DELETED)
        NOTE(s, PC_CHANGE_DELETE, PC_WCMD_REPLICA, PC_WST_STORED, key, nkey, version, 0, 0);
    return st;
}

static pc_item *do_slot(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    return lookup_slot(s, key, nkey, hv);
}

static pc_status do_delete(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                           int has_cas, uint64_t cas)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it) {
        STATS(s).delete_misses++;
        return PC_NOT_FOUND;
    }
    if (has_cas && cas != it->version) {
        STATS(s).delete_misses++;
        return PC_EXISTS;
    }
    STATS(s).delete_hits++;
    if (s->replicated) {
        pc_status st = bury(s, it, key, nkey, hv, 0);
        /* The tombstone just took the newest version there is. */
        if (st == PC_DELETED)
            NOTE(s, PC_CHANGE_DELETE, PC_WCMD_NULL, PC_WST_STORED, key, nkey, s->last_version,
                 0, 0);
        return st;
    }
    unlink_free(s, it, hv);
    /* Alone a delete has no version: a watched one takes the next CAS unique, so that it
     * orders after the key's stores. */
    NOTE(s, PC_CHANGE_DELETE, PC_WCMD_NULL, PC_WST_STORED, key, nkey, next_version(s, 0), 0,
         0);
    return PC_DELETED;
}

static pc_status do_forget(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                           uint64_t version)
{
    pc_item *it = lookup_slot(s, key, nkey, hv);
    if (!it || it->version != version)
        return PC_NOT_FOUND;
    unlink_free(s, it, hv);
    return PC_DELETED;
}

static pc_status do_invalidate(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                               int has_cas, uint64_t cas, int new_ttl, int64_t exptime)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it || (has_cas && cas != it->version)) {
        STATS(s).delete_misses++;
        return it ? PC_EXISTS : PC_NOT_FOUND;
    }
    if (new_ttl)
        it->exptime = pc_store_exptime(s, exptime);
    it->bits |= PC_ITEM_STALE;
    it->bits &= (uint8_t)~PC_ITEM_TOKEN_SENT;
    it->version = next_version(s, 0);
    return PC_OK;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int pc_parse_u64(const char *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && is_space(p[i]))
        i++;
    int negative = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        negative = p[i++] == '-';
    size_t digits = i;
    uint64_t v = 0;
    int overflow = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        v = v * 10 + d;
    }
    if (i == digits || overflow)
        return 0;
    /* memcached parses values that are followed by CRLF: the end counts as whitespace. */
    if (i < n && !is_space(p[i]) && p[i] != '\0')
        return 0;
    if (negative) {
        v = (uint64_t)0 - v;
        if ((int64_t)v < 0)
            return 0; /* strtoull's negation wrapped round: memcached refuses it */
    }
    *out = v;
    return 1;
}

static pc_status do_delta(pc_store *s, const char *key, size_t nkey, uint32_t hv, int incr,
                          uint64_t delta, uint64_t cas, uint64_t version, int shared,
                          uint64_t *result, pc_item **out)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it) {
        if (incr)
            STATS(s).incr_misses++;
        else
            STATS(s).decr_misses++;
        return PC_NOT_FOUND;
    }
    if (it->nbytes == 0)
        return PC_NON_NUMERIC;
    if (cas != 0 && cas != it->version)
        return PC_EXISTS;
    uint64_t value;
    if (!pc_parse_u64(pc_item_value(it), it->nbytes, &value))
        return PC_NON_NUMERIC;
    if (incr) {
        value += delta;
        STATS(s).incr_hits++;
    } else {
        value = delta > value ? 0 : value - delta;
        STATS(s).decr_hits++;
    }

    char digits[24];
    size_t len = (size_t)snprintf(digits, sizeof(digits), "%llu", (unsigned long long)value);
    if (len <= it->nbytes && !shared) {
        /* memcached rewrites in place and pads with spaces, keeping the length. An item an
         * unsent reply still holds (its refcount above 2) is never rewritten in place, even
         * at the same length: the new item it gets has not been fetched (mg's h, l). */
        memcpy(pc_item_value(it), digits, len);
        memset(pc_item_value(it) + len, ' ', it->nbytes - len);
        it->version = next_version(s, version);
    } else {
        pc_item *grown = alloc_item(s, key, nkey, hv, pc_item_flags(it), len, &it);
        if (!grown)
            return PC_NO_MEMORY;
        grown->exptime = it->exptime;
        memcpy(pc_item_value(grown), digits, len);
        /* A counter's rewrite is not a new store for total_items. */
        replace(s, it, grown, hv, version);
        STATS(s).total_items--;
        it = grown;
    }
    *result = value;
    if (out)
        *out = it;
    NOTE(s, PC_CHANGE_STORE, incr ? PC_WCMD_INCR : PC_WCMD_DECR, PC_WST_STORED, key, nkey,
         it->version, unix_exptime(s, it->exptime), it->nbytes);
    return PC_OK;
}

/* The entry points: each takes its key's item lock around the do_* function (pc_lock.h;
 * nothing until PC_STORE_THREADS). */

pc_item *pc_store_find_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_item *it = do_find(s, key, nkey, hv);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return it;
}

pc_item *pc_store_get_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_item *it = do_get(s, key, nkey, hv);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return it;
}

pc_item *pc_store_touch_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                           int64_t exptime)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_item *it = do_touch(s, key, nkey, hv, exptime);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return it;
}

pc_item *pc_store_peek_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_item *it = do_peek(s, key, nkey, hv);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return it;
}

pc_status pc_store_store_hv(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                            uint32_t hv, uint32_t flags, int64_t exptime, const char *value,
                            size_t nbytes, uint64_t cas, uint64_t version, pc_item **out)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_store(s, mode, key, nkey, hv, flags, exptime, value, nbytes, cas, version,
                            out);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_item *pc_store_alloc_unlinked(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 size_t nbytes)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_item *it = do_alloc_unlinked(s, key, nkey, hv, nbytes);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return it;
}

pc_status pc_store_link_hv(pc_store *s, pc_store_mode mode, pc_item *it, uint32_t hv,
                           uint32_t flags, int64_t exptime, uint64_t cas, uint64_t version,
                           pc_item **out)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_link(s, mode, it, hv, flags, exptime, cas, version, out);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_status pc_store_apply_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                            uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                            uint64_t version, int tombstone, int *had_live, uint64_t *held)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_apply(s, key, nkey, hv, flags, exptime, value, nbytes, version, tombstone,
                            had_live, held);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_item *pc_store_slot_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_item *it = do_slot(s, key, nkey, hv);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return it;
}

pc_status pc_store_delete_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                             int has_cas, uint64_t cas)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_delete(s, key, nkey, hv, has_cas, cas);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_status pc_store_forget_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                             uint64_t version)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_forget(s, key, nkey, hv, version);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_status pc_store_invalidate_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 int has_cas, uint64_t cas, int new_ttl, int64_t exptime)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_invalidate(s, key, nkey, hv, has_cas, cas, new_ttl, exptime);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_status pc_store_delta_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv, int incr,
                            uint64_t delta, uint64_t cas, uint64_t version, int shared,
                            uint64_t *result, pc_item **out)
{
    PC_ITEM_LOCK(&s->locks, hv);
    pc_status st = do_delta(s, key, nkey, hv, incr, delta, cas, version, shared, result, out);
    PC_ITEM_UNLOCK(&s->locks, hv);
    return st;
}

pc_item *pc_store_get(pc_store *s, const char *key, size_t nkey)
{
    return pc_store_get_hv(s, key, nkey, pc_hash(key, nkey, 0));
}

pc_item *pc_store_touch(pc_store *s, const char *key, size_t nkey, int64_t exptime)
{
    return pc_store_touch_hv(s, key, nkey, pc_hash(key, nkey, 0), exptime);
}

pc_item *pc_store_peek(pc_store *s, const char *key, size_t nkey)
{
    return pc_store_peek_hv(s, key, nkey, pc_hash(key, nkey, 0));
}

pc_status pc_store_store(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
                         uint32_t flags, int64_t exptime, const char *value, size_t nbytes,
                         uint64_t cas, uint64_t version, pc_item **out)
{
    return pc_store_store_hv(s, mode, key, nkey, pc_hash(key, nkey, 0), flags, exptime, value,
                             nbytes, cas, version, out);
}

pc_status pc_store_delete(pc_store *s, const char *key, size_t nkey, uint64_t cas)
{
    return pc_store_delete_hv(s, key, nkey, pc_hash(key, nkey, 0), cas != 0, cas);
}

pc_status pc_store_delta(pc_store *s, const char *key, size_t nkey, int incr, uint64_t delta,
                         uint64_t cas, uint64_t version, uint64_t *result, pc_item **out)
{
    return pc_store_delta_hv(s, key, nkey, pc_hash(key, nkey, 0), incr, delta, cas, version, 0,
                             result, out);
}

void pc_store_flush(pc_store *s, int64_t delay) { pc_store_flush_at(s, delay, 0); }

void pc_store_flush_at(pc_store *s, int64_t delay, uint64_t version)
{
    /* memcached's flush_all: with CAS enabled, oldest_live is one second early and the
     * version cut-off catches what was stored within the current second. */
    pc_reltime new_oldest = delay > 0 ? pc_store_exptime(s, delay) : s->now;
    if (s->oldest_live != 0 && s->oldest_live <= s->now) {
        /* The flush in effect is about to be replaced: what it flushed stays flushed. */
        if (s->oldest_live > s->floor_live)
            s->floor_live = s->oldest_live;
        if (s->oldest_version > s->floor_version)
            s->floor_version = s->oldest_version;
    }
    s->oldest_live = new_oldest - 1;
    if (version)
        next_version(s, version);
    /* Past both the coordinator's version and everything this store holds. */
    if (s->oldest_live <= s->now)
        s->oldest_version = next_version(s, 0);
    NOTE(s, PC_CHANGE_FLUSH, PC_WCMD_NULL, PC_WST_STORED, "", 0, s->oldest_version,
         unix_exptime(s, new_oldest), 0);
}

uint64_t pc_store_flush_version(const pc_store *s) { return s->oldest_version; }

typedef struct crawl_ctx {
    pc_store *s;
    size_t reclaimed;
    pc_store_visit visit;
    void *user;
} crawl_ctx;

static int reclaim_if_dead(pc_store *s, pc_item *it)
{
    if (is_tombstone(it)) {
        if (!is_expired(s, it))
            return 0;
        unlink_free(s, it, pc_hash(pc_item_key(it), it->nkey, 0));
        return 1;
    }
    if (!is_expired(s, it) && !is_flushed(s, it))
        return 0;
    if (!(it->bits & PC_ITEM_FETCHED))
        STATS(s).expired_unfetched++;
    STATS(s).crawler_reclaimed++;
    if (!is_flushed(s, it)) {
        note_gone(s, it, PC_CHANGE_EXPIRE);
        if (s->replicated) {
            entomb(s, it);
            return 1;
        }
    }
    unlink_free(s, it, pc_hash(pc_item_key(it), it->nkey, 0));
    return 1;
}

static void crawl_visit(pc_item *it, void *arg)
{
    crawl_ctx *c = arg;
    c->reclaimed += (size_t)reclaim_if_dead(c->s, it);
}

size_t pc_store_crawl(pc_store *s, size_t max_buckets)
{
    crawl_ctx c = {s, 0, NULL, NULL};
    for (size_t i = 0; i < max_buckets; i++)
        s->crawl_cursor = pc_table_scan(&s->table, s->crawl_cursor, crawl_visit, &c);
    pc_table_grow_step(&s->table);
    return c.reclaimed;
}

static void scan_visit(pc_item *it, void *arg)
{
    crawl_ctx *c = arg;
    if (!reclaim_if_dead(c->s, it) && !is_tombstone(it))
        c->visit(it, c->user);
}

uint64_t pc_store_scan(pc_store *s, uint64_t cursor, pc_store_visit visit, void *ctx)
{
    crawl_ctx c = {s, 0, visit, ctx};
    return pc_table_scan(&s->table, cursor, scan_visit, &c);
}

static void slot_visit(pc_item *it, void *arg)
{
    crawl_ctx *c = arg;
    if (!reclaim_if_dead(c->s, it))
        c->visit(it, c->user);
}

uint64_t pc_store_scan_slots(pc_store *s, uint64_t cursor, pc_store_visit visit, void *ctx)
{
    crawl_ctx c = {s, 0, visit, ctx};
    return pc_table_scan(&s->table, cursor, slot_visit, &c);
}

int64_t pc_store_ttl(const pc_store *s, const pc_item *it)
{
    if (it->exptime == 0)
        return -1;
    return it->exptime > s->now ? (int64_t)(it->exptime - s->now) : 0;
}
