/* pc_log: where records live: fixed-size segments in one reserved range, and queues that
 * are FIFOs of segments, written at their tail and read at their head.
 *
 * Why a log: one malloc per item cost 8 bytes of chunk header, 16-byte rounding and two
 * list pointers; here a record is bump-allocated at 8-byte alignment, and a queue's order is
 * the order its records were written in, so items carry no list pointers. A record that
 * goes (deleted, replaced) is only marked dead: its bytes come back when the queue's head
 * passes its segment. Records move only when the policy keeps one that reached its queue's
 * head (it is copied to the main queue's tail), so a pointer to an item is valid until the
 * next call that stores, as before.
 *
 * Invariants: every segment is free or in exactly one queue; a queue's segments hold its
 * records in insertion order; bytes before a queue's cursor in its head segment were
 * examined and are dead or moved; seg[i].live counts the bytes of the live records in
 * segment i; `dead` counts the bytes of the records ahead of the cursors that are not live
 * (what passing them would give back). */
#ifndef PC_LOG_H
#define PC_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "pc_item.h"

#define PC_SEG_NONE UINT32_MAX
/* Segments are 1/64 of the limit, between these (a power of two). */
#define PC_SEG_MIN ((size_t)16 << 10)
#define PC_SEG_MAX ((size_t)1 << 20)
/* The reservation holds this many segments beyond the limit's: a move may need a fresh
 * segment before the head's is freed. */
#define PC_SEG_SPARE 4

typedef struct pc_seg {
    uint32_t next;      /* the next segment of its queue (or of the free list) */
    uint32_t used;      /* bytes written */
    uint32_t live;      /* bytes of live records */
} pc_seg;

typedef struct pc_queue {
    uint32_t head, tail;  /* segments, PC_SEG_NONE when empty */
    uint32_t cursor;      /* bytes of the head segment examined */
    uint32_t nsegs;
    size_t items;         /* live records */
    size_t bytes;         /* their charge (records and external values) */
} pc_queue;

typedef struct pc_log {
    char *base;           /* the reservation; ref r is at base + (r - 1) * 8 */
    size_t reserved;      /* bytes reserved */
    size_t seg_bytes;
    uint32_t nsegs;       /* segments the reservation holds */
    uint32_t touched;     /* segments ever written (the rest were never faulted in) */
    uint32_t free_head;
    uint32_t used;        /* segments in queues */
    size_t dead;          /* bytes of records written and not live, not yet passed */
    pc_seg *segs;
} pc_log;

int pc_log_init(pc_log *l, size_t limit);
void pc_log_destroy(pc_log *l);
/* Makes room for a new limit (the reservation grows, moving: refs stay valid); free
 * segments beyond the limit are given back to the kernel. 0, or -1 when out of memory. */
int pc_log_set_limit(pc_log *l, size_t limit);
size_t pc_log_bytes(const pc_log *l);
/* The largest record kept inline: larger values are external. */
size_t pc_log_inline_max(const pc_log *l);

/* Whether `size` more bytes fit at q's tail without a new segment. */
int pc_log_tail_fits(const pc_log *l, const pc_queue *q, size_t size);
/* `size` bytes at q's tail, a new segment opened when the tail's is full; NULL when no
 * segment is left. The caller writes the record and then counts it (pc_log_count). */
pc_item *pc_log_append(pc_log *l, pc_queue *q, size_t size);
/* Counts a record written at q's tail as live in q; pc_log_kill marks it dead. */
void pc_log_count(pc_log *l, pc_queue *q, pc_item *it, size_t charge);
void pc_log_kill(pc_log *l, pc_queue *q, pc_item *it, size_t charge);

/* The first live record at q's head, or NULL when q is empty; segments the cursor leaves
 * behind are freed. pc_log_pass moves the cursor past that record once it was killed or
 * copied elsewhere (its segment may be freed then). */
pc_item *pc_log_head(pc_log *l, pc_queue *q);
void pc_log_pass(pc_log *l, pc_queue *q, pc_item *it);

static inline pc_ref pc_log_ref(const pc_log *l, const pc_item *it)
{
    return (pc_ref)(((const char *)it - l->base) >> 3) + 1;
}

static inline pc_item *pc_log_item(const pc_log *l, pc_ref r)
{
    return (pc_item *)(l->base + ((size_t)(r - 1) << 3));
}

/* Visits every live record of q, oldest first (tests and teardown). */
typedef void (*pc_log_visit)(pc_item *it, void *ctx);
void pc_log_walk(pc_log *l, const pc_queue *q, pc_log_visit visit, void *ctx);

#endif
