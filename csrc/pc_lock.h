/* pc_lock: the store's locks, memcached's model (item locks striped by hash, then the
 * policy's), compiled to nothing unless PC_STORE_THREADS is defined.
 *
 * The store is used from one thread today. With PC_STORE_THREADS each public
 * pc_store_*_hv entry point takes the item lock of its key's hash (memcached's
 * item_lock(hv)) and the do_* function under it runs with that lock held; anything that
 * touches the policy's queues, the log or the ghost (linking, unlinking, making room) takes
 * the policy lock after the item lock, never before. Making room examines other keys'
 * items: it may only trylock their stripes and skips an item whose stripe is busy (as
 * memcached's lru_pull_tail does), so the order is never inverted. The lock order is
 * written out in pc_store.h. */
#ifndef PC_LOCK_H
#define PC_LOCK_H

#include <stdint.h>

/* Stripes: a power of two (memcached's item_lock_hashpower 13 for 4+ threads). */
#define PC_LOCK_STRIPES 8192

#ifdef PC_STORE_THREADS
#include <pthread.h>

typedef struct pc_locks {
    pthread_mutex_t items[PC_LOCK_STRIPES];
    pthread_mutex_t policy;
} pc_locks;

static inline void pc_locks_init(pc_locks *l)
{
    for (int i = 0; i < PC_LOCK_STRIPES; i++)
        pthread_mutex_init(&l->items[i], NULL);
    pthread_mutex_init(&l->policy, NULL);
}
#define PC_ITEM_LOCK(L, hv) pthread_mutex_lock(&(L)->items[(hv) & (PC_LOCK_STRIPES - 1)])
#define PC_ITEM_UNLOCK(L, hv) pthread_mutex_unlock(&(L)->items[(hv) & (PC_LOCK_STRIPES - 1)])
/* 1 when taken; the caller skips the item otherwise. */
#define PC_ITEM_TRYLOCK(L, hv) \
    (pthread_mutex_trylock(&(L)->items[(hv) & (PC_LOCK_STRIPES - 1)]) == 0)
#define PC_POLICY_LOCK(L) pthread_mutex_lock(&(L)->policy)
#define PC_POLICY_UNLOCK(L) pthread_mutex_unlock(&(L)->policy)
/* Counters: one slot per worker thread, summed by pc_store_snapshot_take; a worker sets
 * its slot when it starts. */
#define PC_COUNTER_SLOTS 64
extern _Thread_local unsigned pc_lock_slot;
#define PC_COUNTER_SLOT() (pc_lock_slot & (PC_COUNTER_SLOTS - 1))

#else

typedef struct pc_locks {
    char unused;
} pc_locks;

static inline void pc_locks_init(pc_locks *l) { (void)l; }
#define PC_ITEM_LOCK(L, hv) ((void)(L), (void)(hv))
#define PC_ITEM_UNLOCK(L, hv) ((void)(L), (void)(hv))
#define PC_ITEM_TRYLOCK(L, hv) ((void)(L), (void)(hv), 1)
#define PC_POLICY_LOCK(L) ((void)(L))
#define PC_POLICY_UNLOCK(L) ((void)(L))
#define PC_COUNTER_SLOTS 1
#define PC_COUNTER_SLOT() 0

#endif

#endif
