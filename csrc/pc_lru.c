/* pc_lru: segmented LRU (HOT/WARM/COLD, after memcached's) that keeps a scan from flushing
 * the working set. */
#include "pc_lru.h"

void pc_lru_link(pc_lru *l, pc_item *it, enum pc_lru_segment seg)
{
    it->segment = (uint8_t)seg;
    it->prev = NULL;
    it->next = l->head[seg];
    if (it->next)
        it->next->prev = it;
    else
        l->tail[seg] = it;
    l->head[seg] = it;
    l->items[seg]++;
    l->bytes[seg] += pc_item_charge(it);
}

void pc_lru_unlink(pc_lru *l, pc_item *it)
{
    unsigned seg = it->segment;
    if (it->prev)
        it->prev->next = it->next;
    else
        l->head[seg] = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        l->tail[seg] = it->prev;
    it->prev = it->next = NULL;
    l->items[seg]--;
    l->bytes[seg] -= pc_item_charge(it);
}

void pc_lru_insert(pc_lru *l, pc_item *it)
{
    int big = pc_item_size(it->nkey, it->nbytes) >= PC_LRU_BIG;
    pc_lru_link(l, it, big ? PC_PROBATION : PC_HOT);
}

static void move(pc_lru *l, pc_item *it, enum pc_lru_segment to)
{
    pc_lru_unlink(l, it);
    pc_lru_link(l, it, to);
}

void pc_lru_hit(pc_lru *l, pc_item *it, pc_reltime now)
{
    if (it->bits & PC_ITEM_ACTIVE)
        return;
    if (!(it->bits & PC_ITEM_FETCHED)) {
        it->bits |= PC_ITEM_FETCHED;
        return;
    }
    it->bits |= PC_ITEM_ACTIVE;
    it->time = now;
    if (it->segment == PC_COLD || it->segment == PC_PROBATION) {
        it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
        l->moves_to_warm++;
        move(l, it, PC_WARM);
    }
}

void pc_lru_balance(pc_lru *l, size_t capacity, unsigned max_moves)
{
    size_t hot_max = capacity / 100 * PC_LRU_HOT_PCT, warm_max = capacity / 100 * PC_LRU_WARM_PCT;
    while (max_moves > 0) {
        pc_item *it;
        if (l->tail[PC_HOT] && l->bytes[PC_HOT] > hot_max) {
            it = l->tail[PC_HOT];
            if (it->bits & PC_ITEM_ACTIVE) {
                it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
                l->moves_to_warm++;
                move(l, it, PC_WARM);
            } else {
                l->moves_to_cold++;
                move(l, it, PC_COLD);
            }
        } else if (l->tail[PC_WARM] && l->bytes[PC_WARM] > warm_max) {
            it = l->tail[PC_WARM];
            if (it->bits & PC_ITEM_ACTIVE) {
                /* Read again while in WARM: it earns another lap. */
                it->bits &= (uint8_t)~PC_ITEM_ACTIVE;
                l->moves_within_warm++;
                move(l, it, PC_WARM);
            } else {
                l->moves_to_cold++;
                move(l, it, PC_COLD);
            }
        } else {
            return;
        }
        max_moves--;
    }
}

static pc_item *tail_but(const pc_lru *l, enum pc_lru_segment seg, const pc_item *keep)
{
    pc_item *it = l->tail[seg];
    return it && it == keep ? it->prev : it;
}

pc_item *pc_lru_victim(const pc_lru *l, size_t capacity, const pc_item *keep)
{
    static const enum pc_lru_segment order[PC_NSEGMENTS] = {PC_COLD, PC_HOT, PC_WARM,
                                                            PC_PROBATION};
    pc_item *it;
    if (l->bytes[PC_PROBATION] > capacity / 100 * PC_LRU_PROBATION_PCT &&
        (it = tail_but(l, PC_PROBATION, keep)) != NULL)
        return it;
    for (int i = 0; i < PC_NSEGMENTS; i++)
        if ((it = tail_but(l, order[i], keep)) != NULL)
            return it;
    return NULL;
}
