/* pc_table: chained hash table of items, grown incrementally, with a resize-proof scan.
 * Buckets and chain links are 32-bit refs into the store's log (pc_log.h): 4 bytes each. */
#ifndef PC_TABLE_H
#define PC_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "pc_item.h"
#include "pc_log.h"

/* While growing, buckets move from `old` to `cur` a few at a time (PC_TABLE_MIGRATE_STEP per
 * mutation), so no single request pays for the whole rehash. Invariant: every old bucket
 * below `migrated` is empty. */
typedef struct pc_table {
    const pc_log *log;      /* where refs point */
    pc_ref *cur;
    pc_ref *old;            /* NULL unless growing */
    unsigned power;         /* cur has 1 << power buckets */
    size_t migrated;        /* old buckets already moved */
    size_t count;
} pc_table;

#define PC_TABLE_MIGRATE_STEP 8

int pc_table_init(pc_table *t, unsigned power, const pc_log *log);
void pc_table_destroy(pc_table *t);
/* Bytes held by the bucket arrays. */
size_t pc_table_bytes(const pc_table *t);
int pc_table_is_growing(const pc_table *t);

pc_item *pc_table_find(const pc_table *t, const char *key, size_t nkey, uint32_t hv);
/* Moves one step of buckets if the table is growing (housekeeping between requests). */
void pc_table_grow_step(pc_table *t);
/* The key must not be present. Growth that finds no memory only lengthens chains. */
void pc_table_insert(pc_table *t, pc_item *it, uint32_t hv);
void pc_table_remove(pc_table *t, pc_item *it, uint32_t hv);
/* Swaps `old_it` (present) for `new_it` (same key) in place: a replacement, or a record the
 * log moved. */
void pc_table_replace(pc_table *t, pc_item *old_it, pc_item *new_it, uint32_t hv);

/* Redis-style SCAN: calls visit() for every item in the buckets the cursor names and returns
 * the next cursor (0 once the walk is done). Items present for the whole walk are visited at
 * least once however the table grows meanwhile; visit() may remove the item it is given. */
typedef void (*pc_table_visit)(pc_item *it, void *ctx);
uint64_t pc_table_scan(pc_table *t, uint64_t cursor, pc_table_visit visit, void *ctx);

#endif
