/* pc_policy: S3-FIFO's decisions and its ghost of recent victims. */
#include "pc_policy.h"

#include <stdlib.h>
#include <string.h>

/* The ghost is a table of 4-slot buckets of 24-bit fingerprints, stamped with one of 256
 * generations; a generation lasts a quarter of the table's slots' worth of insertions and
 * an entry is valid for PC_GHOST_GENS of them, so the ghost remembers about as many victims
 * as it has slots, and the cache holds items: the paper's ghost as large as the main queue,
 * at 4 bytes a victim (no keys, no list). A lost or colliding entry costs one admission
 * decision, never correctness. */
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
    g->inserts = 0;
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

void pc_policy_forget(pc_policy *p, uint32_t hv)
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
    if (++g->inserts >= (g->mask + 1) / PC_GHOST_GENS) {
        g->gen++;
        g->inserts = 0;
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

pc_queue *pc_policy_admit(pc_policy *p, uint32_t hv, size_t capacity, int full)
{
    if (ghost_take(&p->ghost, hv)) {
        p->c.ghost_hits++;
        return &p->main;
    }
    /* The paper's S3-FIFO (libCacheSim's S3FIFOv0): everything else starts small, also
     * while the cache fills (the small queue then holds more than its share until the
     * first eviction), so items nobody reads leave oldest first, as memcached's do. */
    (void)capacity;
    (void)full;
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

int pc_policy_keep(pc_policy *p, pc_queue *q, pc_item *it, uint32_t hv)
{
    unsigned freq = it->meta & PC_META_FREQ;
    if (q == &p->small) {
        if (freq >= PC_POLICY_PROMOTE) {
            it->meta = (uint8_t)((it->meta & ~PC_META_FREQ) | PC_META_MAIN);
            it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
            p->c.promotions++;
            return 1;
        }
        p->c.small_evictions++;
        pc_policy_forget(p, hv);
        return 0;
    }
    if (freq > 0) {
        it->meta--;
        it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
        p->c.reinsertions++;
        return 1;
    }
    p->c.main_evictions++;
    return 0;
}
