/* pc_policy: S3-FIFO's decisions and its ghost of recent victims. */
#include "pc_policy.h"

#include <stdlib.h>
#include <string.h>

/* The ghost is a table of 4-slot buckets of 24-bit fingerprints, stamped with one of 256
 * generations; a generation ends once its victims' bytes reach PC_GHOST_PCT % of the
 * capacity over PC_GHOST_GENS, and an entry is valid for PC_GHOST_GENS generations: the
 * ghost remembers the victims of the last PC_GHOST_PCT % of the capacity in bytes (the
 * paper's and libCacheSim's ghost, 0.9 of the cache), at 4 bytes a victim (no keys, no
 * list). Counting victims instead of their bytes remembered far too many big ones: with
 * 10 B-1 MB values, 1 in 6 misses came back through the ghost to the main queue and the
 * miss ratio rose from libCacheSim's S3-FIFO's 0.685 to 0.749 (bench/hitratio, zipf0.8-1m
 * at 1 %). The table has about one slot per cached item; a lost or colliding entry costs
 * one admission decision, never correctness. */
#define PC_GHOST_PCT 90
#define PC_GHOST_WAYS 4
#define PC_GHOST_GENS 4
#define PC_GHOST_MIN 1024

void pc_policy_init(pc_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->small.head = p->small.tail = PC_SEG_NONE;
    p->main.head = p->main.tail = PC_SEG_NONE;
}

void pc_policy_destroy(pc_policy *p)
{
    free(p->ghost.slots);
    p->ghost.slots = NULL;
    p->ghost.mask = 0;
}

size_t pc_policy_bytes(const pc_policy *p)
{
    return p->ghost.slots ? (p->ghost.mask + 1) * sizeof(uint32_t) : 0;
}

void pc_policy_size_ghost(pc_policy *p, size_t items)
{
    pc_ghost *g = &p->ghost;
    size_t want = PC_GHOST_MIN;
    while (want < items)
        want *= 2;
    if (g->slots && want <= g->mask + 1)
        return;
    /* Growing forgets: the ghost is a hint, and it only grows with the cache. */
    uint32_t *slots = calloc(want, sizeof(uint32_t));
    if (!slots)
        return;
    free(g->slots);
    g->slots = slots;
    g->mask = want - 1;
    g->bytes = 0;
}

static uint32_t fingerprint(uint32_t hv) { return (hv | 1) << 8; }

static int valid(const pc_ghost *g, uint32_t e)
{
    return e && ((g->gen - e) & 0xff) < PC_GHOST_GENS;
}

static uint32_t *bucket(const pc_ghost *g, uint32_t hv)
{
    /* The fingerprint is the hash's low bits; the bucket comes from its high ones. */
    size_t b = ((size_t)(hv >> 16) * 2654435761u) & g->mask & ~(size_t)(PC_GHOST_WAYS - 1);
    return &g->slots[b];
}

void pc_policy_forget(pc_policy *p, uint32_t hv, size_t bytes, size_t capacity)
{
    pc_ghost *g = &p->ghost;
    if (!g->slots)
        return;
    uint32_t *b = bucket(g, hv), fp = fingerprint(hv);
    int victim = 0;
    for (int i = 0; i < PC_GHOST_WAYS; i++) {
        if (!valid(g, b[i])) {
            victim = i;
            break;
        }
        if (((g->gen - b[i]) & 0xff) > ((g->gen - b[victim]) & 0xff))
            victim = i;
    }
    b[victim] = fp | (g->gen & 0xff);
    g->bytes += bytes;
    if (g->bytes >= capacity / 100 * PC_GHOST_PCT / PC_GHOST_GENS) {
        g->gen++;
        g->bytes = 0;
    }
}

static int ghost_take(pc_ghost *g, uint32_t hv)
{
    if (!g->slots)
        return 0;
    uint32_t *b = bucket(g, hv), fp = fingerprint(hv);
    for (int i = 0; i < PC_GHOST_WAYS; i++)
        if ((b[i] & ~0xffu) == fp && valid(g, b[i])) {
            b[i] = 0;
            return 1;
        }
    return 0;
}

static size_t small_share(size_t capacity) { return capacity / 100 * PC_POLICY_SMALL_PCT; }

pc_queue *pc_policy_admit(pc_policy *p, uint32_t hv)
{
    if (ghost_take(&p->ghost, hv)) {
        p->c.ghost_hits++;
        return &p->main;
    }
    /* The paper's S3-FIFO (libCacheSim's S3FIFOv0): everything else starts small, also
     * while the cache fills (the small queue then holds more than its share until the
     * first eviction), so items nobody reads leave oldest first, as memcached's do.
     * (libCacheSim's S3FIFO.c sends what comes before the cache is full to main once
     * small has its share; here that left items stored while the cache filled, expired
     * ones too, in main while newer live ones were evicted from small.) */
    return &p->small;
}

pc_queue *pc_policy_victim_queue(pc_policy *p, size_t capacity)
{
    int small_first = p->small.bytes > small_share(capacity) || p->main.items == 0;
    if (small_first && p->small.items)
        return &p->small;
    if (p->main.items)
        return &p->main;
    return p->small.items ? &p->small : NULL;
}

/* Size-aware: what the cache should hold is hits per byte. Against the main queue's mean
 * item size, an item more than twice as big needs a second read to be promoted, and is not
 * remembered by the ghost when evicted (its coming back is no reason to give it main's
 * room); in main it pays one more read a lap above twice the mean and two more above
 * PC_POLICY_BIG_X times it. The mean follows what main keeps: with sizes over five orders
 * of magnitude it settles among the small items, as GDSF's priorities do; with sizes
 * within a factor of two of each other it changes nothing. bench/hitratio/RESULTS.md has
 * the measurements. */
static size_t main_mean(const pc_policy *p, size_t bytes)
{
    return p->main.items ? p->main.bytes / p->main.items : bytes;
}

int pc_policy_keep(pc_policy *p, pc_queue *q, pc_item *it, uint32_t hv, size_t bytes,
                   size_t capacity)
{
    unsigned freq = it->meta & PC_META_FREQ;
    size_t mean = main_mean(p, bytes);
    if (q == &p->small) {
        int big = bytes > 2 * mean;
        if (freq >= PC_POLICY_PROMOTE + (unsigned)big) {
            it->meta = (uint8_t)((it->meta & ~PC_META_FREQ) | PC_META_MAIN);
            it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
            p->c.promotions++;
            return 1;
        }
        p->c.small_evictions++;
        if (!big)
            pc_policy_forget(p, hv, bytes, capacity);
        return 0;
    }
    if (freq > 0) {
        unsigned cost = 1 + (bytes > 2 * mean) + (bytes > PC_POLICY_BIG_X * mean);
        it->meta = (uint8_t)(it->meta - (freq < cost ? freq : cost));
        it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
        p->c.reinsertions++;
        return 1;
    }
    p->c.main_evictions++;
    return 0;
}
