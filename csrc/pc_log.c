/* pc_log: records in fixed-size segments of one reserved range, queues as FIFOs of them. */
#include "pc_log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Refs are 32 bits of 8-byte units. */
#define PC_LOG_MAX_BYTES ((size_t)32 << 30)

static uint32_t segs_for(const pc_log *l, size_t limit)
{
    size_t n = limit / l->seg_bytes + PC_SEG_SPARE;
    size_t cap = PC_LOG_MAX_BYTES / l->seg_bytes;
    return (uint32_t)(n < cap ? n : cap);
}

int pc_log_init(pc_log *l, size_t limit)
{
    memset(l, 0, sizeof(*l));
    size_t seg = PC_SEG_MIN;
    while (seg < PC_SEG_MAX && seg * 2 <= limit / 64)
        seg *= 2;
    l->seg_bytes = seg;
    l->free_head = PC_SEG_NONE;
    l->nsegs = segs_for(l, limit);
    l->reserved = (size_t)l->nsegs * seg;
    /* Address space only: pages are faulted in as segments are first written. */
    void *p = mmap(NULL, l->reserved, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    l->base = p;
    l->segs = calloc(l->nsegs, sizeof(pc_seg));
    if (!l->segs) {
        munmap(p, l->reserved);
        return -1;
    }
    return 0;
}

void pc_log_destroy(pc_log *l)
{
    if (l->base)
        munmap(l->base, l->reserved);
    free(l->segs);
    memset(l, 0, sizeof(*l));
}

int pc_log_set_limit(pc_log *l, size_t limit)
{
    uint32_t n = segs_for(l, limit);
    if (n > l->nsegs) {
        size_t bytes = (size_t)n * l->seg_bytes;
        void *p = mremap(l->base, l->reserved, bytes, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            return -1;
        pc_seg *segs = realloc(l->segs, n * sizeof(pc_seg));
        if (!segs) {
            l->base = p;      /* the larger reservation stays, unused beyond nsegs */
            l->reserved = bytes;
            return -1;
        }
        memset(segs + l->nsegs, 0, (n - l->nsegs) * sizeof(pc_seg));
        l->base = p;
        l->segs = segs;
        l->nsegs = n;
        l->reserved = bytes;
    } else {
        /* Free segments keep their pages for reuse; a lower limit gives them back. */
        for (uint32_t i = l->free_head; i != PC_SEG_NONE; i = l->segs[i].next)
            madvise(l->base + (size_t)i * l->seg_bytes, l->seg_bytes, MADV_DONTNEED);
    }
    return 0;
}

size_t pc_log_bytes(const pc_log *l) { return (size_t)l->used * l->seg_bytes; }

size_t pc_log_inline_max(const pc_log *l)
{
    size_t m = l->seg_bytes / 8;
    return m < ((size_t)16 << 10) ? m : (size_t)16 << 10;
}

static char *seg_start(const pc_log *l, uint32_t i) { return l->base + (size_t)i * l->seg_bytes; }

static uint32_t seg_of(const pc_log *l, const pc_item *it)
{
    return (uint32_t)(((const char *)it - l->base) / l->seg_bytes);
}

static uint32_t take_segment(pc_log *l)
{
    uint32_t i;
    if (l->free_head != PC_SEG_NONE) {
        i = l->free_head;
        l->free_head = l->segs[i].next;
    } else if (l->touched < l->nsegs) {
        i = l->touched++;
    } else {
        return PC_SEG_NONE;
    }
    l->segs[i] = (pc_seg){PC_SEG_NONE, 0, 0};
    l->used++;
    return i;
}

static void free_segment(pc_log *l, uint32_t i)
{
    l->segs[i].next = l->free_head;
    l->free_head = i;
    l->used--;
}

int pc_log_tail_fits(const pc_log *l, const pc_queue *q, size_t size)
{
    return q->tail != PC_SEG_NONE && l->segs[q->tail].used + size <= l->seg_bytes;
}

pc_item *pc_log_append(pc_log *l, pc_queue *q, size_t size)
{
    if (size > l->seg_bytes)
        return NULL;
    if (!pc_log_tail_fits(l, q, size)) {
        uint32_t i = take_segment(l);
        if (i == PC_SEG_NONE)
            return NULL;
        if (q->tail == PC_SEG_NONE) {
            q->head = i;
            q->cursor = 0;
        } else {
            l->segs[q->tail].next = i;
        }
        q->tail = i;
        q->nsegs++;
    }
    pc_seg *sg = &l->segs[q->tail];
    pc_item *it = (pc_item *)(seg_start(l, q->tail) + sg->used);
    sg->used += (uint32_t)size;
    l->dead += size;        /* until it is counted live */
    return it;
}

void pc_log_count(pc_log *l, pc_queue *q, pc_item *it, size_t charge)
{
    l->segs[seg_of(l, it)].live += (uint32_t)pc_item_record(it);
    l->dead -= pc_item_record(it);
    q->items++;
    q->bytes += charge;
}

void pc_log_kill(pc_log *l, pc_queue *q, pc_item *it, size_t charge)
{
    it->meta |= PC_META_DEAD;
    l->segs[seg_of(l, it)].live -= (uint32_t)pc_item_record(it);
    l->dead += pc_item_record(it);
    q->items--;
    q->bytes -= charge;
}

pc_item *pc_log_head(pc_log *l, pc_queue *q)
{
    while (q->head != PC_SEG_NONE) {
        pc_seg *sg = &l->segs[q->head];
        while (q->cursor < sg->used) {
            pc_item *it = (pc_item *)(seg_start(l, q->head) + q->cursor);
            if (!(it->meta & PC_META_DEAD))
                return it;
            q->cursor += (uint32_t)pc_item_record(it);
            l->dead -= pc_item_record(it);
        }
        /* Examined to its end: the segment goes (a tail with nothing live goes too; the
         * next append opens a new one). */
        uint32_t done = q->head;
        q->head = q->head == q->tail ? PC_SEG_NONE : sg->next;
        if (q->head == PC_SEG_NONE)
            q->tail = PC_SEG_NONE;
        q->cursor = 0;
        q->nsegs--;
        free_segment(l, done);
    }
    return NULL;
}

void pc_log_pass(pc_log *l, pc_queue *q, pc_item *it)
{
    q->cursor += (uint32_t)pc_item_record(it);
    l->dead -= pc_item_record(it);      /* it was killed or moved before it was passed */
    /* A segment examined to its end goes at once, not at the next victim's turn: the
     * room it makes may be all that a store needs. */
    (void)pc_log_head(l, q);
}

void pc_log_walk(pc_log *l, const pc_queue *q, pc_log_visit visit, void *ctx)
{
    uint32_t off = q->cursor;
    for (uint32_t i = q->head; i != PC_SEG_NONE; i = i == q->tail ? PC_SEG_NONE : l->segs[i].next) {
        while (off < l->segs[i].used) {
            pc_item *it = (pc_item *)(seg_start(l, i) + off);
            off += (uint32_t)pc_item_record(it);   /* before visit(), which may kill it */
            if (!(it->meta & PC_META_DEAD))
                visit(it, ctx);
        }
        off = 0;
    }
}
