/* pc_prefix: memcached's per-prefix counters (stats_prefix.c), same buckets, same order. */
#include "pc_prefix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_hash.h"

#define PC_PREFIX_BUCKETS 256

typedef struct entry {
    struct entry *next;
    uint64_t get, hit, set, del;
    size_t n;
    char prefix[];
} entry;

struct pc_prefix {
    entry *bucket[PC_PREFIX_BUCKETS];
    size_t count;
    char delimiter;
};

pc_prefix *pc_prefix_new(char delimiter)
{
    pc_prefix *p = calloc(1, sizeof(*p));
    if (p)
        p->delimiter = delimiter;
    return p;
}

void pc_prefix_clear(pc_prefix *p)
{
    for (size_t i = 0; i < PC_PREFIX_BUCKETS; i++) {
        entry *e = p->bucket[i];
        while (e) {
            entry *next = e->next;
            free(e);
            e = next;
        }
        p->bucket[i] = NULL;
    }
    p->count = 0;
}

void pc_prefix_free(pc_prefix *p)
{
    if (!p)
        return;
    pc_prefix_clear(p);
    free(p);
}

/* The key's prefix entry, made on first sight (NULL: no delimiter, or out of memory: the
 * request is served all the same, uncounted). */
static entry *find(pc_prefix *p, const char *key, size_t nkey)
{
    const char *end = memchr(key, p->delimiter, nkey);
    if (!end)
        return NULL;
    size_t n = (size_t)(end - key);
    size_t b = pc_hash(key, n, 0) % PC_PREFIX_BUCKETS;
    for (entry *e = p->bucket[b]; e; e = e->next)
        if (e->n == n && memcmp(e->prefix, key, n) == 0)
            return e;
    entry *e = calloc(1, sizeof(*e) + n);
    if (!e)
        return NULL;
    memcpy(e->prefix, key, n);
    e->n = n;
    e->next = p->bucket[b];
    p->bucket[b] = e;
    p->count++;
    return e;
}

void pc_prefix_get(pc_prefix *p, const char *key, size_t nkey, int hit)
{
    entry *e = find(p, key, nkey);
    if (e) {
        e->get++;
        if (hit)
            e->hit++;
    }
}

void pc_prefix_set(pc_prefix *p, const char *key, size_t nkey)
{
    entry *e = find(p, key, nkey);
    if (e)
        e->set++;
}

void pc_prefix_delete(pc_prefix *p, const char *key, size_t nkey)
{
    entry *e = find(p, key, nkey);
    if (e)
        e->del++;
}

int pc_prefix_dump(const pc_prefix *p, pc_wbuf *out)
{
    char line[128];
    for (size_t i = 0; i < PC_PREFIX_BUCKETS; i++) {
        for (const entry *e = p->bucket[i]; e; e = e->next) {
            int n = snprintf(line, sizeof(line), " get %llu hit %llu set %llu del %llu\r\n",
                             (unsigned long long)e->get, (unsigned long long)e->hit,
                             (unsigned long long)e->set, (unsigned long long)e->del);
            if (pc_wbuf_add(out, "PREFIX ", 7) || pc_wbuf_add(out, e->prefix, e->n) ||
                pc_wbuf_add(out, line, (size_t)n))
                return -1;
        }
    }
    return pc_wbuf_add(out, "END\r\n", 5);
}

size_t pc_prefix_count(const pc_prefix *p) { return p->count; }
