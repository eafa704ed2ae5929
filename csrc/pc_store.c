/* pc_store: the cache's whole API, memcached's semantics over the table, LRU and items. */
#include "pc_store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pc_hash.h"
#include "pc_hlc.h"
#include "pc_lru.h"
#include "pc_table.h"
#include "pc_watch.h"

struct pc_store {
    pc_table table;
    pc_lru lru;
    pc_store_stats stats;
    size_t limit_bytes;        /* items plus hash table, from real allocation sizes */
    size_t item_bytes;         /* charged bytes of linked items */
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
/* HOT/WARM overflow moved per stored item: enough to keep pace with one insert per call. */
#define PC_LRU_MOVES_PER_STORE 2

pc_store *pc_store_new(size_t limit_bytes, size_t item_size_max, int64_t now)
{
    pc_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (pc_table_init(&s->table, PC_TABLE_INITIAL_POWER) != 0) {
        free(s);
        return NULL;
    }
    s->limit_bytes = limit_bytes;
    s->item_size_max = item_size_max;
    s->epoch = now - PC_EPOCH_SLACK;
    s->now = PC_EPOCH_SLACK;
    return s;
}

void pc_store_free(pc_store *s)
{
    if (!s)
        return;
    for (int seg = 0; seg < PC_NSEGMENTS; seg++) {
        pc_item *it = s->lru.head[seg];
        while (it) {
            pc_item *next = it->next;
            pc_item_free(it, &s->item_bytes);
            it = next;
        }
    }
    pc_table_destroy(&s->table);
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

void pc_store_set_limit(pc_store *s, size_t limit_bytes) { s->limit_bytes = limit_bytes; }
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

void pc_store_snapshot_take(const pc_store *s, pc_store_snapshot *out)
{
    out->counters = s->stats;
    out->curr_items = s->table.count - s->tombstones;
    out->tombstones = s->tombstones;
    out->item_bytes = s->item_bytes;
    out->unlinked_bytes = s->unlinked_bytes;
    out->limit_bytes = s->limit_bytes;
    out->item_size_max = s->item_size_max;
    out->hash_bytes = pc_table_bytes(&s->table);
    out->hash_power = s->table.power;
    out->hash_is_expanding = pc_table_is_growing(&s->table);
    for (int seg = 0; seg < PC_NSEGMENTS; seg++)
        out->lru_items[seg] = s->lru.items[seg];
    out->moves_to_cold = s->lru.moves_to_cold;
    out->moves_to_warm = s->lru.moves_to_warm;
    out->moves_within_warm = s->lru.moves_within_warm;
}

void pc_store_reset_stats(pc_store *s) { memset(&s->stats, 0, sizeof(s->stats)); }

static size_t used_bytes(const pc_store *s)
{
    return s->item_bytes + s->unlinked_bytes + pc_table_bytes(&s->table);
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

static void unlink_free(pc_store *s, pc_item *it, uint32_t hv)
{
    pc_table_remove(&s->table, it, hv);
    pc_lru_unlink(&s->lru, it);
    if (is_tombstone(it))
        s->tombstones--;
    pc_item_free(it, &s->item_bytes);
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
        s->stats.get_flushed++;
        *found = PC_WGET_FLUSHED;
        unlink_free(s, it, hv);
        return NULL;
    }
    if (is_expired(s, it)) {
        s->stats.get_expired++;
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

pc_item *pc_store_find_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    return lookup(s, key, nkey, hv);
}

static void link_new(pc_store *s, pc_item *it, uint32_t hv, uint64_t version)
{
    it->version = next_version(s, version);
    it->time = s->now;
    pc_table_insert(&s->table, it, hv);
    pc_lru_insert(&s->lru, it);
    pc_lru_balance(&s->lru, s->limit_bytes, PC_LRU_MOVES_PER_STORE);
    if (is_tombstone(it))
        s->tombstones++;
    else
        s->stats.total_items++;
}

/* Puts new_it (same key) where old_it was; old_it is freed. */
static void replace(pc_store *s, pc_item *old_it, pc_item *new_it, uint32_t hv, uint64_t version)
{
    new_it->version = next_version(s, version);
    new_it->time = s->now;
    pc_table_replace(&s->table, old_it, new_it, hv);
    pc_lru_unlink(&s->lru, old_it);
    if (is_tombstone(old_it))
        s->tombstones--;
    pc_item_free(old_it, &s->item_bytes);
    pc_lru_insert(&s->lru, new_it);
    pc_lru_balance(&s->lru, s->limit_bytes, PC_LRU_MOVES_PER_STORE);
    if (is_tombstone(new_it))
        s->tombstones++;
    else
        s->stats.total_items++;
}

/* Evicts from the cold end until the store fits its limit; `keep` is never chosen.
 * Expired or flushed victims count as reclaimed, live ones as evictions. */
static int make_room(pc_store *s, const pc_item *keep)
{
    while (used_bytes(s) > s->limit_bytes) {
        pc_item *it = pc_lru_victim(&s->lru, s->limit_bytes, keep);
        if (!it)
            return -1;
        if (is_tombstone(it)) {
            /* an old delete's marker: nothing a client could read is lost */
        } else if (is_expired(s, it) || is_flushed(s, it)) {
            s->stats.reclaimed++;
            if (!(it->bits & PC_ITEM_FETCHED))
                s->stats.expired_unfetched++;
            if (!is_flushed(s, it))
                note_gone(s, it, PC_CHANGE_EXPIRE);
        } else {
            if (s->no_evict)
                return -1;  /* memcached's -M stops at the first live item, as here */
            s->stats.evictions++;
            if (!(it->bits & PC_ITEM_FETCHED))
                s->stats.evicted_unfetched++;
            if (s->watch)
                pc_watch_note_evict(s->watch, pc_item_key(it), it->nkey, it->version,
                                    unix_exptime(s, it->exptime), it->nbytes,
                                    s->now - it->time, it->bits & PC_ITEM_FETCHED);
        }
        unlink_free(s, it, pc_hash(it->data, it->nkey, 0));
    }
    return 0;
}

/* A new, unlinked item with room made for it, or NULL (PC_NO_MEMORY). */
static pc_item *alloc_item(pc_store *s, const char *key, size_t nkey, size_t nbytes,
                           const pc_item *keep)
{
    pc_item *it = pc_item_alloc(key, nkey, nbytes, &s->item_bytes);
    if (!it)
        return NULL;
    if (make_room(s, keep) != 0) {
        pc_item_free(it, &s->item_bytes);
        return NULL;
    }
    return it;
}

pc_item *pc_store_get_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    pc_item *it = fetch(s, key, nkey, hv);
    pc_store_note_get(s, it, 1);
    return it;
}

pc_item *pc_store_touch_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                           int64_t exptime)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it) {
        s->stats.touch_misses++;
        return NULL;
    }
    it->exptime = pc_store_exptime(s, exptime);
    pc_store_note_touch(s, it);
    return it;
}

pc_item *pc_store_peek_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    return fetch(s, key, nkey, hv);
}

void pc_store_note_get(pc_store *s, pc_item *it, int bump)
{
    if (!it) {
        s->stats.get_misses++;
        return;
    }
    s->stats.get_hits++;
    if (bump)
        pc_lru_hit(&s->lru, it, s->now);
}

void pc_store_note_touch(pc_store *s, pc_item *it)
{
    s->stats.touch_hits++;
    pc_lru_hit(&s->lru, it, s->now);
}

/* The stale value keeps the old item's TTL and win token, and is marked stale. */
static pc_status store_stale(pc_store *s, pc_item *old, uint32_t hv, const char *key,
                             size_t nkey, uint32_t flags, const char *value, size_t nbytes,
                             uint64_t version, pc_item **out)
{
    pc_item *it = alloc_item(s, key, nkey, nbytes, old);
    if (!it)
        return PC_NO_MEMORY;
    it->flags = flags;
    it->exptime = old->exptime;
    it->bits |= (uint8_t)(PC_ITEM_STALE | (old->bits & PC_ITEM_TOKEN_SENT));
    memcpy(pc_item_value(it), value, nbytes);
    s->stats.cas_hits++;
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
            s->stats.cas_badval++;
            return PC_EXISTS;
        }
        s->stats.cas_hits++;
        /* fall through */
    case PC_SET:
    case PC_REPLACE:
        it = alloc_item(s, key, nkey, nbytes, old);
        if (!it)
            return PC_NO_MEMORY;
        it->flags = flags;
        it->exptime = pc_store_exptime(s, exptime);
        memcpy(pc_item_value(it), value, nbytes);
        break;
    case PC_APPEND:
    case PC_PREPEND:
        if (cas != 0 && cas != old->version)
            return PC_EXISTS;
        /* The joined value is checked against -I like any other (memcached: NOT_STORED). */
        if (pc_item_memcached_size(nkey, old->flags, old->nbytes + nbytes) > s->item_size_max)
            return PC_NOT_STORED;
        it = alloc_item(s, key, nkey, old->nbytes + nbytes, old);
        if (!it)
            return PC_NOT_STORED;
        it->flags = old->flags;
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
        s->stats.cas_misses++;
        return PC_NOT_FOUND;
    }
    if (mode != PC_SET && mode != PC_ADD)
        return PC_NOT_STORED;
    pc_item *it = alloc_item(s, key, nkey, nbytes, tomb);
    if (!it)
        return PC_NO_MEMORY;
    it->flags = flags;
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

pc_status pc_store_store_hv(pc_store *s, pc_store_mode mode, const char *key, size_t nkey,
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
pc_item *pc_store_alloc_unlinked(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 size_t nbytes)
{
    assert(nkey > 0 && nkey <= PC_KEY_MAX);
    /* The item the value may replace is not evicted to make room for it (as store_over's
     * alloc_item keeps it); a plain table lookup, which counts and drops nothing. */
    const pc_item *keep = pc_table_find(&s->table, key, nkey, hv);
    pc_item *it = pc_item_alloc(key, nkey, nbytes, &s->unlinked_bytes);
    if (!it)
        return NULL;
    if (make_room(s, keep) != 0) {
        pc_item_free(it, &s->unlinked_bytes);
        return NULL;
    }
    return it;
}

void pc_store_free_unlinked(pc_store *s, pc_item *it)
{
    if (it)
        pc_item_free(it, &s->unlinked_bytes);
}

/* Moves an unlinked item's charge to the linked items'. */
static void adopt(pc_store *s, pc_item *it)
{
    size_t charge = pc_item_charge(it);
    s->unlinked_bytes -= charge;
    s->item_bytes += charge;
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
        size_t charge = pc_item_charge(it);
        s->unlinked_bytes -= charge;
        pc_status st = store_hv(s, mode, key, nkey, hv, flags, exptime, pc_item_value(it),
                                it->nbytes, cas, version, out);
        pc_item_free(it, &charge);
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
                s->stats.cas_badval++;
                st = PC_EXISTS;
            } else {
                s->stats.cas_hits++;
            }
        }
    } else if (mode == PC_CAS) {
        s->stats.cas_misses++;
        st = PC_NOT_FOUND;
    } else if (mode == PC_REPLACE) {
        st = PC_NOT_STORED;
    }
    if (st != PC_STORED) {
        pc_store_free_unlinked(s, it);
        return st;
    }
    it->flags = flags;
    it->exptime = pc_store_exptime(s, exptime);
    adopt(s, it);
    if (old || tomb)
        replace(s, old ? old : tomb, it, hv, version);
    else
        link_new(s, it, hv, version);
    *out = it;
    return PC_STORED;
}

pc_status pc_store_link_hv(pc_store *s, pc_store_mode mode, pc_item *it, uint32_t hv,
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
    pc_item *tomb = alloc_item(s, key, nkey, 0, old);
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
    if (held->flags != flags)
        return held->flags > flags ? 1 : -1;
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
    pc_item *it = alloc_item(s, key, nkey, nbytes, old);
    if (!it)
        return PC_NO_MEMORY;
    it->flags = flags;
    it->exptime = pc_store_exptime(s, exptime);
    memcpy(pc_item_value(it), value, nbytes);
    if (old)
        replace(s, old, it, hv, version);
    else
        link_new(s, it, hv, version);
    return PC_STORED;
}

pc_status pc_store_apply_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
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

pc_item *pc_store_slot_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    return lookup_slot(s, key, nkey, hv);
}

pc_status pc_store_delete_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                             int has_cas, uint64_t cas)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it) {
        s->stats.delete_misses++;
        return PC_NOT_FOUND;
    }
    if (has_cas && cas != it->version) {
        s->stats.delete_misses++;
        return PC_EXISTS;
    }
    s->stats.delete_hits++;
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

pc_status pc_store_forget_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                             uint64_t version)
{
    pc_item *it = lookup_slot(s, key, nkey, hv);
    if (!it || it->version != version)
        return PC_NOT_FOUND;
    unlink_free(s, it, hv);
    return PC_DELETED;
}

pc_status pc_store_invalidate_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv,
                                 int has_cas, uint64_t cas, int new_ttl, int64_t exptime)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it || (has_cas && cas != it->version)) {
        s->stats.delete_misses++;
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

pc_status pc_store_delta_hv(pc_store *s, const char *key, size_t nkey, uint32_t hv, int incr,
                            uint64_t delta, uint64_t cas, uint64_t version, int shared,
                            uint64_t *result, pc_item **out)
{
    pc_item *it = fetch(s, key, nkey, hv);
    if (!it) {
        if (incr)
            s->stats.incr_misses++;
        else
            s->stats.decr_misses++;
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
        s->stats.incr_hits++;
    } else {
        value = delta > value ? 0 : value - delta;
        s->stats.decr_hits++;
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
        pc_item *grown = alloc_item(s, key, nkey, len, it);
        if (!grown)
            return PC_NO_MEMORY;
        grown->flags = it->flags;
        grown->exptime = it->exptime;
        memcpy(pc_item_value(grown), digits, len);
        /* A counter's rewrite is not a new store for total_items. */
        replace(s, it, grown, hv, version);
        s->stats.total_items--;
        it = grown;
    }
    *result = value;
    if (out)
        *out = it;
    NOTE(s, PC_CHANGE_STORE, incr ? PC_WCMD_INCR : PC_WCMD_DECR, PC_WST_STORED, key, nkey,
         it->version, unix_exptime(s, it->exptime), it->nbytes);
    return PC_OK;
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
        unlink_free(s, it, pc_hash(it->data, it->nkey, 0));
        return 1;
    }
    if (!is_expired(s, it) && !is_flushed(s, it))
        return 0;
    if (!(it->bits & PC_ITEM_FETCHED))
        s->stats.expired_unfetched++;
    s->stats.crawler_reclaimed++;
    if (!is_flushed(s, it)) {
        note_gone(s, it, PC_CHANGE_EXPIRE);
        if (s->replicated) {
            entomb(s, it);
            return 1;
        }
    }
    unlink_free(s, it, pc_hash(it->data, it->nkey, 0));
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
