/* pc_item: the layout of one cached item (header, key and value in one allocation). */
#ifndef PC_ITEM_H
#define PC_ITEM_H

#include <stddef.h>
#include <stdint.h>

/* Seconds since the store's epoch (memcached's rel_time_t); 0 in exptime means "never". */
typedef uint32_t pc_reltime;

/* PC_PROBATION: big items not yet read twice (pc_lru.h); reported as COLD. */
enum pc_lru_segment { PC_HOT = 0, PC_WARM = 1, PC_COLD = 2, PC_PROBATION = 3, PC_NSEGMENTS = 4 };

enum pc_item_bits {
    PC_ITEM_FETCHED = 1,     /* read at least once since it was stored */
    PC_ITEM_ACTIVE = 2,      /* read twice: worth keeping out of COLD */
    PC_ITEM_TOMBSTONE = 0x10,  /* a deleted key's version, kept so older writes stay dead */
    /* Meta protocol state the store keeps with the item (memcached's it_flags): */
    PC_ITEM_TOKEN_SENT = 0x20, /* a client was handed the win token (W) */
    PC_ITEM_STALE = 0x40,      /* invalidated (md I, or a stale ms I): answers carry X */
    PC_ITEM_KEY_BINARY = 0x80, /* stored through a base64 key (b): k answers in base64 */
};

/* Fields are ordered so that the header has no padding before `data`: the item costs
 * offsetof(pc_item, data) + nkey + nbytes bytes, 52 of them header. */
typedef struct pc_item {
    struct pc_item *h_next;           /* hash chain (intrusive) */
    struct pc_item *prev, *next;      /* LRU segment list (intrusive) */
    uint64_t version;                 /* memcached's CAS unique; never 0 once linked */
    pc_reltime exptime;
    pc_reltime time;                  /* last store or promoting read */
    uint32_t flags;                   /* client flags, opaque */
    uint32_t nbytes;                  /* value length */
    uint8_t nkey;
    uint8_t segment;                  /* enum pc_lru_segment */
    uint8_t bits;                     /* enum pc_item_bits */
    uint8_t mapped;                   /* 1: in pages of its own (pc_large), 0: from malloc */
    char data[];                      /* key bytes, then value bytes; no terminators */
} pc_item;

#define PC_KEY_MAX 250

static inline const char *pc_item_key(const pc_item *it) { return it->data; }
static inline char *pc_item_value(pc_item *it) { return it->data + it->nkey; }

/* The size memcached 1.6 checks against -I for an item (its 56-byte header with CAS, the key
 * with its NUL, 4 bytes for non-zero client flags, the value with its CRLF), so that values at
 * the limit succeed or fail exactly where memcached's do. */
static inline size_t pc_item_memcached_size(size_t nkey, uint32_t flags, size_t nbytes)
{
    return 56 + nkey + 1 + (flags ? sizeof(flags) : 0) + nbytes + 2;
}

static inline size_t pc_item_size(size_t nkey, size_t nbytes)
{
    return offsetof(pc_item, data) + nkey + nbytes;
}

/* Items of PC_LARGE_MIN bytes and more get a mapping of their own (pc_large), so that
 * freeing one gives its pages back whole; smaller ones come from malloc. */
pc_item *pc_item_alloc(const char *key, size_t nkey, size_t nbytes, size_t *charged);
void pc_item_free(pc_item *it, size_t *charged);
/* Bytes really held for `it`: its mapping's whole pages, or malloc's usable size plus the
 * chunk header. */
size_t pc_item_charge(const pc_item *it);

#endif
