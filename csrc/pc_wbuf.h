/* pc_wbuf: a connection's reply buffer: an inline array that moves to the heap only to grow. */
#ifndef PC_WBUF_H
#define PC_WBUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PC_WBUF_INLINE 4096

/* Replies are built from many small appends on the hot path: always inline them (gcc's
 * heuristics gave up on it in the larger command functions: 26 instructions a request). */
#define PC_WBUF_FN static inline __attribute__((always_inline))

typedef struct pc_wbuf {
    char *data;     /* == small until the first growth */
    size_t len, cap;
    char small[PC_WBUF_INLINE];
} pc_wbuf;

PC_WBUF_FN void pc_wbuf_init(pc_wbuf *b)
{
    b->data = b->small;
    b->len = 0;
    b->cap = PC_WBUF_INLINE;
}

PC_WBUF_FN void pc_wbuf_free(pc_wbuf *b)
{
    if (b->data != b->small)
        free(b->data);
    pc_wbuf_init(b);
}

/* Drops a grown heap buffer once it is empty, so an idle connection holds only the inline
 * array. */
PC_WBUF_FN void pc_wbuf_clear(pc_wbuf *b)
{
    if (b->data != b->small && b->cap > 16 * PC_WBUF_INLINE)
        pc_wbuf_free(b);
    b->len = 0;
}

/* Makes room for n more bytes; returns 0, or -1 when memory is exhausted. */
PC_WBUF_FN int pc_wbuf_reserve(pc_wbuf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap * 2;
    while (cap < b->len + n)
        cap *= 2;
    char *p;
    if (b->data == b->small) {
        p = malloc(cap);
        if (p != NULL)
            memcpy(p, b->small, b->len);
    } else {
        p = realloc(b->data, cap);
    }
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

PC_WBUF_FN int pc_wbuf_add(pc_wbuf *b, const void *src, size_t n)
{
    if (pc_wbuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

PC_WBUF_FN int pc_wbuf_add_u64(pc_wbuf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    if (pc_wbuf_reserve(b, 20) != 0)
        return -1;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        b->data[b->len++] = tmp[--n];
    return 0;
}

PC_WBUF_FN int pc_wbuf_add_i64(pc_wbuf *b, int64_t v)
{
    if (v < 0) {
        if (pc_wbuf_add(b, "-", 1) != 0)
            return -1;
        return pc_wbuf_add_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return pc_wbuf_add_u64(b, (uint64_t)v);
}

#endif
