/* pc_watch: the store's change feed (see pc_watch.h). */
#include "pc_watch.h"

#include <stdlib.h>
#include <string.h>

struct pc_watch {
    size_t capacity, head, used;   /* head: the oldest record */
    uint64_t dropped;
    pc_watch_event ring[];
};

pc_watch *pc_watch_new(size_t capacity)
{
    if (capacity == 0)
        return NULL;
    pc_watch *w = malloc(sizeof(*w) + capacity * sizeof(pc_watch_event));
    if (!w)
        return NULL;
    w->capacity = capacity;
    w->head = w->used = 0;
    w->dropped = 0;
    return w;
}

void pc_watch_free(pc_watch *w) { free(w); }

/* The next free record, or NULL (the note is dropped and counted). */
static pc_watch_event *claim(pc_watch *w, uint8_t change, uint8_t cmd, uint8_t status,
                             const char *key, size_t nkey, uint64_t version, int64_t exptime,
                             uint32_t nbytes)
{
    if (w->used == w->capacity) {
        w->dropped++;
        return NULL;
    }
    pc_watch_event *e = &w->ring[(w->head + w->used) % w->capacity];
    w->used++;
    e->idle = 0;
    e->fetched = 0;
    e->version = version;
    e->exptime = exptime;
    e->nbytes = nbytes;
    e->change = change;
    e->cmd = cmd;
    e->status = status;
    if (nkey > PC_KEY_MAX)
        nkey = PC_KEY_MAX;
    e->nkey = (uint8_t)nkey;
    memcpy(e->key, key, nkey);
    return e;
}

void pc_watch_note(pc_watch *w, uint8_t change, uint8_t cmd, uint8_t status, const char *key,
                   size_t nkey, uint64_t version, int64_t exptime, uint32_t nbytes)
{
    claim(w, change, cmd, status, key, nkey, version, exptime, nbytes);
}

void pc_watch_note_evict(pc_watch *w, const char *key, size_t nkey, uint64_t version,
                         int64_t exptime, uint32_t nbytes, uint32_t idle, int fetched)
{
    pc_watch_event *e = claim(w, PC_CHANGE_EVICT, PC_WCMD_NULL, PC_WST_STORED, key, nkey,
                              version, exptime, nbytes);
    if (e) {
        e->idle = idle;
        e->fetched = fetched != 0;
    }
}

size_t pc_watch_take(pc_watch *w, pc_watch_event *out, size_t max, uint64_t *dropped)
{
    size_t n = w->used < max ? w->used : max;
    for (size_t i = 0; i < n; i++) {
        /* Only the used part of a record's key is copied: most keys are short. */
        const pc_watch_event *e = &w->ring[(w->head + i) % w->capacity];
        memcpy(&out[i], e, offsetof(pc_watch_event, key) + e->nkey);
    }
    w->head = (w->head + n) % w->capacity;
    w->used -= n;
    *dropped = w->dropped;
    w->dropped = 0;
    return n;
}
