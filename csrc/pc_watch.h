/* pc_watch: the store's change feed, a bounded ring of what changed in it.
 *
 * The store holds a feed only while someone watches (pc_store_watch attaches one, NULL
 * detaches it), so with nobody watching a mutation costs the store one untaken branch.
 * Whoever drains the feed must do so faster than it fills: a note that finds the ring full
 * is dropped and counted, and pc_watch_take reports the count once, so that the reader can
 * say that changes were missed (memcached's watchers print `skipped=N` the same way).
 *
 * Invariants: 0 <= used <= capacity; records leave in the order they were noted; a record
 * is a copy (its key included), never a pointer into the store. */
#ifndef PC_WATCH_H
#define PC_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "pc_item.h"

typedef enum pc_change {
    PC_CHANGE_STORE,   /* a storage command ran (status says whether it stored) */
    PC_CHANGE_DELETE,  /* a delete, or a replica's tombstone */
    PC_CHANGE_EXPIRE,  /* an expired item was noticed (a read or the crawler) and dropped */
    PC_CHANGE_EVICT,   /* a live item was evicted to make room */
    PC_CHANGE_FLUSH,   /* flush_all: every older item is gone (no key) */
    PC_CHANGE_FETCH,   /* a client's command looked the key up (memcached's item_get log
                        * line); noted only while the store's fetchers are on, as there
                        * is one for nearly every request */
} pc_change;

/* What ran, as memcached's item_store log line names it: cmd 0..6 are its cmd_map (null,
 * add, set, replace, append, prepend, cas); ours go on from 7. */
enum { PC_WCMD_NULL, PC_WCMD_ADD, PC_WCMD_SET, PC_WCMD_REPLACE, PC_WCMD_APPEND,
       PC_WCMD_PREPEND, PC_WCMD_CAS, PC_WCMD_INCR, PC_WCMD_DECR, PC_WCMD_REPLICA };

/* ...and its status_map: not_stored, stored, exists, not_found, too_large, no_memory. */
enum { PC_WST_NOT_STORED, PC_WST_STORED, PC_WST_EXISTS, PC_WST_NOT_FOUND, PC_WST_TOO_LARGE,
       PC_WST_NO_MEMORY };

/* A fetch's status, memcached's was_found: not_found, found, flushed, expired. */
enum { PC_WGET_NOT_FOUND, PC_WGET_FOUND, PC_WGET_FLUSHED, PC_WGET_EXPIRED };

typedef struct pc_watch_event {
    uint64_t version;   /* the key's version after the change (0: none, as for a failure) */
    int64_t exptime;    /* unix seconds the item expires at, 0: never */
    uint32_t nbytes;    /* value bytes */
    uint32_t idle;      /* an eviction's seconds since the item was last accessed, else 0 */
    uint8_t fetched;    /* an eviction's: the item had been read since it was stored */
    uint8_t change;     /* pc_change */
    uint8_t cmd;        /* PC_WCMD_* */
    uint8_t status;     /* PC_WST_* */
    uint8_t nkey;
    char key[PC_KEY_MAX];
} pc_watch_event;

typedef struct pc_watch pc_watch;

pc_watch *pc_watch_new(size_t capacity);
void pc_watch_free(pc_watch *w);
void pc_watch_note(pc_watch *w, uint8_t change, uint8_t cmd, uint8_t status, const char *key,
                   size_t nkey, uint64_t version, int64_t exptime, uint32_t nbytes);
/* An eviction, with what memcached's eviction log line says of the item besides. */
void pc_watch_note_evict(pc_watch *w, const char *key, size_t nkey, uint64_t version,
                         int64_t exptime, uint32_t nbytes, uint32_t idle, int fetched);
/* Moves up to max records, oldest first, into out; *dropped gets the notes lost since the
 * last call (and is reset). Returns the number moved. */
size_t pc_watch_take(pc_watch *w, pc_watch_event *out, size_t max, uint64_t *dropped);

#endif
