/* pc_table: chained hash table of items, grown incrementally, with a resize-proof scan. */
#include "pc_table.h"

#include <stdlib.h>
#include <string.h>

#include "pc_hash.h"

/* Grow once the average chain exceeds 1.5 items, as memcached does. */
#define PC_TABLE_LOAD_NUM 3
#define PC_TABLE_LOAD_DEN 2

static size_t buckets(unsigned power) { return (size_t)1 << power; }

int pc_table_init(pc_table *t, unsigned power, const pc_log *log)
{
    memset(t, 0, sizeof(*t));
    t->log = log;
    t->power = power;
    t->cur = calloc(buckets(power), sizeof(pc_ref));
    return t->cur ? 0 : -1;
}

void pc_table_destroy(pc_table *t)
{
    free(t->cur);
    free(t->old);
    memset(t, 0, sizeof(*t));
}

size_t pc_table_bytes(const pc_table *t)
{
    size_t n = buckets(t->power);
    if (t->old)
        n += buckets(t->power - 1);
    return n * sizeof(pc_ref);
}

int pc_table_is_growing(const pc_table *t) { return t->old != NULL; }

static pc_item *at(const pc_table *t, pc_ref r) { return r ? pc_log_item(t->log, r) : NULL; }

static pc_ref ref(const pc_table *t, const pc_item *it) { return pc_log_ref(t->log, it); }

static pc_item *chain_find(const pc_table *t, pc_ref r, const char *key, size_t nkey)
{
    for (pc_item *it; r; r = it->h_next) {
        it = at(t, r);
        if (it->nkey == nkey && memcmp(pc_item_key(it), key, nkey) == 0)
            return it;
    }
    return NULL;
}

/* The slot that holds (or would hold) a key with hash hv. */
static pc_ref *home_slot(const pc_table *t, uint32_t hv)
{
    if (t->old) {
        size_t oi = hv & (buckets(t->power - 1) - 1);
        if (oi >= t->migrated)
            return &t->old[oi];
    }
    return &t->cur[hv & (buckets(t->power) - 1)];
}

pc_item *pc_table_find(const pc_table *t, const char *key, size_t nkey, uint32_t hv)
{
    return chain_find(t, *home_slot(t, hv), key, nkey);
}

static void migrate(pc_table *t, size_t nbuckets)
{
    size_t old_n = buckets(t->power - 1), mask = buckets(t->power) - 1;
    while (t->old && nbuckets--) {
        pc_ref r = t->old[t->migrated];
        while (r) {
            pc_item *it = at(t, r);
            pc_ref next = it->h_next;
            pc_ref *slot = &t->cur[pc_hash(pc_item_key(it), it->nkey, 0) & mask];
            it->h_next = *slot;
            *slot = r;
            r = next;
        }
        t->old[t->migrated++] = 0;
        if (t->migrated == old_n) {
            free(t->old);
            t->old = NULL;
            t->migrated = 0;
        }
    }
}

void pc_table_grow_step(pc_table *t) { migrate(t, PC_TABLE_MIGRATE_STEP); }

static int start_growing(pc_table *t)
{
    /* calloc of a large array maps fresh zero pages lazily: starting is O(1) in practice. */
    pc_ref *bigger = calloc(buckets(t->power + 1), sizeof(pc_ref));
    if (!bigger)
        return -1;
    t->old = t->cur;
    t->cur = bigger;
    t->power++;
    t->migrated = 0;
    return 0;
}

void pc_table_insert(pc_table *t, pc_item *it, uint32_t hv)
{
    if (t->old)
        migrate(t, PC_TABLE_MIGRATE_STEP);
    else if ((t->count + 1) * PC_TABLE_LOAD_DEN > buckets(t->power) * PC_TABLE_LOAD_NUM)
        (void)start_growing(t);
    pc_ref *slot = home_slot(t, hv);
    it->h_next = *slot;
    *slot = ref(t, it);
    t->count++;
}

static pc_ref *slot_of(pc_table *t, pc_item *it, uint32_t hv)
{
    pc_ref *p = home_slot(t, hv), r = ref(t, it);
    while (*p != r)
        p = &at(t, *p)->h_next;
    return p;
}

void pc_table_remove(pc_table *t, pc_item *it, uint32_t hv)
{
    pc_ref *p = slot_of(t, it, hv);
    *p = it->h_next;
    it->h_next = 0;
    t->count--;
}

void pc_table_replace(pc_table *t, pc_item *old_it, pc_item *new_it, uint32_t hv)
{
    pc_ref *p = slot_of(t, old_it, hv);
    new_it->h_next = old_it->h_next;
    *p = ref(t, new_it);
    old_it->h_next = 0;
}

static void visit_chain(const pc_table *t, pc_ref r, pc_table_visit visit, void *ctx)
{
    while (r) {
        pc_item *it = at(t, r);
        pc_ref next = it->h_next; /* visit() may unlink it */
        visit(it, ctx);
        r = next;
    }
}

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

/* Increments the cursor's high bits first (reverse binary), which is what lets a walk survive
 * the table doubling between calls: see Redis's dictScan for the argument. */
static uint64_t advance(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

uint64_t pc_table_scan(pc_table *t, uint64_t v, pc_table_visit visit, void *ctx)
{
    if (!t->old) {
        uint64_t m = buckets(t->power) - 1;
        visit_chain(t, t->cur[v & m], visit, ctx);
        return advance(v, m);
    }
    /* Growing: visit the small table's bucket, then every big-table bucket it expands to. */
    uint64_t m0 = buckets(t->power - 1) - 1, m1 = buckets(t->power) - 1;
    if ((v & m0) >= t->migrated)
        visit_chain(t, t->old[v & m0], visit, ctx);
    do {
        visit_chain(t, t->cur[v & m1], visit, ctx);
        v = advance(v, m1);
    } while (v & (m0 ^ m1));
    return v;
}
