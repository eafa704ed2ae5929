/* pc_policy: S3-FIFO (SOSP'23), the store's eviction and admission policy, over the log's
 * queues (pc_log.h).
 *
 * A new item enters the small queue, a FIFO of about PC_POLICY_SMALL_PCT of the capacity
 * where most items are seen once and leave soon. At the small queue's head an item read
 * since it was stored is promoted to the main queue's tail; one never read is evicted, and
 * its key's hash joins the ghost, a bounded memory of recent victims. A key that comes back
 * while the ghost still remembers it enters the main queue directly. The main queue is a
 * CLOCK: its head item, if read since it last passed (its 2-bit counter above 0), loses one
 * count and goes round again to the tail; otherwise it is evicted.
 *
 * A hit only raises the item's counter (pc_policy_hit): no list moves, nothing shared is
 * written but the item's own byte, which is what lets threads share the policy cheaply.
 * Size-aware: a big item nobody reads again takes only small-queue room and leaves first,
 * never displacing the main queue's read items; and the reads an item needs to stay grow
 * with its size against main's mean (pc_policy.c), so that the cache holds hits per byte.
 *
 * Measured against LRU, SIEVE, W-TinyLFU and the others on the bench/hitratio workloads
 * (bench/hitratio/RESULTS.md). */
#ifndef PC_POLICY_H
#define PC_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "pc_item.h"
#include "pc_log.h"

#define PC_POLICY_SMALL_PCT 10
/* Reads in the small queue that earn promotion (libCacheSim's move_to_main_threshold). */
#define PC_POLICY_PROMOTE 1
/* Items this many times the main queue's mean size pay two more reads a lap (pc_policy.c). */
#define PC_POLICY_BIG_X 8

typedef struct pc_ghost {
    uint32_t *slots;     /* fingerprint << 8 | generation; 0 is empty */
    size_t mask;         /* slots - 1 (a power of two), 0 before the first eviction */
    uint32_t gen;        /* current generation, 8 bits used */
    size_t bytes;        /* victims' bytes in the current generation */
} pc_ghost;

typedef struct pc_policy_counters {
    uint64_t promotions;        /* small -> main, read while in the small queue */
    uint64_t reinsertions;      /* main -> main, read since its last pass */
    uint64_t small_evictions;   /* evicted unread from the small queue (into the ghost) */
    uint64_t main_evictions;
    uint64_t ghost_hits;        /* stored again while the ghost remembered it: to main */
} pc_policy_counters;

typedef struct pc_policy {
    pc_queue small, main;
    pc_ghost ghost;
    pc_policy_counters c;
} pc_policy;

void pc_policy_init(pc_policy *p);
void pc_policy_destroy(pc_policy *p);
/* Bytes of the ghost's table (charged to the limit beside the hash table). */
size_t pc_policy_bytes(const pc_policy *p);
/* Sizes the ghost to remember about `items` victims (called as the store grows). */
void pc_policy_size_ghost(pc_policy *p, size_t items);

/* The queue a new key's item enters: main if the ghost remembers its hash (forgotten then),
 * else small. */
pc_queue *pc_policy_admit(pc_policy *p, uint32_t hv);

/* A read. The protocol's FETCHED/ACTIVE bits follow memcached (the second read takes the
 * access time); the policy's counter saturates at 3. */
static inline void pc_policy_hit(pc_item *it, pc_reltime now)
{
    if ((it->meta & PC_META_FREQ) != PC_META_FREQ)
        it->meta++;
    if (it->bits & PC_ITEM_ACTIVE)
        return;
    if (!(it->bits & PC_ITEM_FETCHED)) {
        it->bits |= PC_ITEM_FETCHED;
        return;
    }
    it->bits |= PC_ITEM_ACTIVE;
    it->time = now;
}

/* The queue the next victim comes from: small while it holds more than its share of
 * `capacity` (or main is empty), else main; NULL when both are empty. */
pc_queue *pc_policy_victim_queue(pc_policy *p, size_t capacity);
/* The verdict on q's head item `it` (`bytes` its charge): 1 to keep it (the caller moves it
 * to main's tail; its counter is already updated), 0 to evict it (from small, its hash
 * joins the ghost). */
int pc_policy_keep(pc_policy *p, pc_queue *q, pc_item *it, uint32_t hv, size_t bytes,
                   size_t capacity);
/* The ghost remembers hv, a victim of `bytes` (an item evicted unread). */
void pc_policy_forget(pc_policy *p, uint32_t hv, size_t bytes, size_t capacity);

#endif
