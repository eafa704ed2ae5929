/* pc_lru: segmented LRU (HOT/WARM/COLD, after memcached's) that keeps a scan from flushing
 * the working set. */
#ifndef PC_LRU_H
#define PC_LRU_H

#include <stddef.h>
#include <stdint.h>

#include "pc_item.h"

/* New items enter HOT (big ones PROBATION, below). Items read twice are ACTIVE: they leave
 * HOT for WARM and are kept in WARM; the rest sink to COLD, whose tail is evicted first. HOT
 * and WARM are capped at these shares of the store's capacity (memcached's hot_lru_pct /
 * warm_lru_pct defaults). The capacity, not the bytes held so far, is the base: otherwise a
 * cache that is still filling would demote its whole working set to COLD before any scan
 * came along. */
#define PC_LRU_HOT_PCT 20
#define PC_LRU_WARM_PCT 40

/* Size-aware admission (bench/MEMORY.md, "Size-aware eviction"). With one LRU for all sizes
 * a stored 1 MB value displaces ten thousand small ones however rarely it is read, so with
 * mixed sizes the cache holds few keys; memcached's slab classes keep small items apart and
 * hold far more. Here a new item of PC_LRU_BIG bytes or more (header, key and value) enters
 * PROBATION, a FIFO of big items still on trial, instead of HOT; read twice (ACTIVE) it moves
 * to WARM like a COLD item. While PROBATION holds more than PC_LRU_PROBATION_PCT of the
 * capacity, its oldest item is the first victim, before COLD's tail: big items nobody reads
 * soon cost a bounded share of memory, not all of it. Among themselves they still go oldest
 * first, as memcached's do. Stores of smaller items only evict exactly as before. */
#define PC_LRU_BIG ((size_t)4096)
#define PC_LRU_PROBATION_PCT 10

typedef struct pc_lru {
    pc_item *head[PC_NSEGMENTS], *tail[PC_NSEGMENTS];
    size_t items[PC_NSEGMENTS];
    size_t bytes[PC_NSEGMENTS];
    uint64_t moves_to_cold, moves_to_warm, moves_within_warm;
} pc_lru;

void pc_lru_link(pc_lru *l, pc_item *it, enum pc_lru_segment seg);
void pc_lru_unlink(pc_lru *l, pc_item *it);
/* Links a newly stored item: at HOT's head, or PROBATION's when it is big. */
void pc_lru_insert(pc_lru *l, pc_item *it);
/* Records a read: the second read makes an item ACTIVE, and an ACTIVE COLD or PROBATION item
 * is promoted to WARM at once. */
void pc_lru_hit(pc_lru *l, pc_item *it, pc_reltime now);
/* Moves at most max_moves items out of over-full HOT and WARM. */
void pc_lru_balance(pc_lru *l, size_t capacity, unsigned max_moves);
/* The next eviction victim, never `keep`: PROBATION's tail while PROBATION is over its share
 * of `capacity`, else the tail of COLD, HOT, WARM or PROBATION, the first non-empty in that
 * order; NULL when empty. */
pc_item *pc_lru_victim(const pc_lru *l, size_t capacity, const pc_item *keep);

#endif
