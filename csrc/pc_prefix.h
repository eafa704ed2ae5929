/* pc_prefix: memcached's per-prefix counters (`stats detail`), kept only while asked for. */
#ifndef PC_PREFIX_H
#define PC_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include "pc_wbuf.h"

/* A key's prefix is what precedes its first delimiter; a key without one counts nowhere.
 * Prefixes are kept in memcached's 256 buckets of murmur3(prefix), each newest first, so a
 * dump lists them in memcached's order. */
typedef struct pc_prefix pc_prefix;

pc_prefix *pc_prefix_new(char delimiter);
void pc_prefix_free(pc_prefix *p);
/* `stats reset`: every prefix is forgotten. */
void pc_prefix_clear(pc_prefix *p);

/* get/gets/gat/gats, per key; set/add/replace/append/prepend/cas when the command line is
 * valid (whatever becomes of its value); delete, found or not. */
void pc_prefix_get(pc_prefix *p, const char *key, size_t nkey, int hit);
void pc_prefix_set(pc_prefix *p, const char *key, size_t nkey);
void pc_prefix_delete(pc_prefix *p, const char *key, size_t nkey);

/* `PREFIX <p> get <n> hit <n> set <n> del <n>` per prefix, then `END`. 0, or -1 when out
 * of memory. */
int pc_prefix_dump(const pc_prefix *p, pc_wbuf *out);
size_t pc_prefix_count(const pc_prefix *p);

#endif
