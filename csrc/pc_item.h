/* pc_item: the layout of one cached item, a record in its store's log (pc_log.h). */
#ifndef PC_ITEM_H
#define PC_ITEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Seconds since the store's epoch (memcached's rel_time_t); 0 in exptime means "never". */
typedef uint32_t pc_reltime;
/* Where a record lies in its store's log, in 8-byte units from the log's base; 0 is none.
 * 32 bits address 32 GiB of log: the hash chain and the buckets cost 4 bytes, not 8. */
typedef uint32_t pc_ref;

enum pc_item_bits {
    PC_ITEM_FETCHED = 1,     /* read at least once since it was stored */
    PC_ITEM_ACTIVE = 2,      /* read twice: its last-access time was taken (memcached's) */
    PC_ITEM_TOMBSTONE = 0x10,  /* a deleted key's version, kept so older writes stay dead */
    /* Meta protocol state the store keeps with the item (memcached's it_flags): */
    PC_ITEM_TOKEN_SENT = 0x20, /* a client was handed the win token (W) */
    PC_ITEM_STALE = 0x40,      /* invalidated (md I, or a stale ms I): answers carry X */
    PC_ITEM_KEY_BINARY = 0x80, /* stored through a base64 key (b): k answers in base64 */
};

/* The store's own record state, apart from the protocol's bits. */
enum pc_item_meta {
    PC_META_FREQ = 3,        /* the policy's 2-bit hit counter (pc_policy.h) */
    PC_META_FLAGS = 4,       /* 4 bytes of client flags precede the key (non-zero flags) */
    PC_META_EXTERNAL = 8,    /* the value lives in an allocation of its own; a pointer to
                              * it follows the key, 8-byte aligned */
    PC_META_DEAD = 0x10,     /* unlinked: the record's bytes wait for its segment to go */
    PC_META_MAIN = 0x20,     /* in the policy's main queue (else its small one) */
    PC_META_MAPPED = 0x40,   /* the external value is in pages of its own (pc_large.h) */
    PC_META_UNLINKED = 0x80, /* a writer's record outside the log (pc_store_alloc_unlinked) */
};

/* 27 bytes of header, then [flags] key value, rounded to 8 bytes: a 14-byte key and a
 * 100-byte value take 144 bytes. No list pointers: the queues are the log's own order. */
typedef struct pc_item {
    uint64_t version;                 /* memcached's CAS unique; never 0 once linked */
    pc_ref h_next;                    /* hash chain (pc_table.h) */
    pc_reltime exptime;
    pc_reltime time;                  /* last store, or the read that made it ACTIVE */
    uint32_t nbytes;                  /* value length */
    uint8_t nkey;
    uint8_t bits;                     /* enum pc_item_bits */
    uint8_t meta;                     /* enum pc_item_meta */
    char data[];
} pc_item;

#define PC_KEY_MAX 250
#define PC_ITEM_HEADER offsetof(pc_item, data)

static inline size_t pc_round8(size_t n) { return (n + 7) & ~(size_t)7; }

static inline uint32_t pc_item_flags(const pc_item *it)
{
    uint32_t f = 0;
    if (it->meta & PC_META_FLAGS)
        memcpy(&f, it->data, sizeof(f));
    return f;
}

static inline const char *pc_item_key(const pc_item *it)
{
    /* PC_META_FLAGS is 4, the flags' bytes: no branch on the lookup path. */
    return it->data + (it->meta & PC_META_FLAGS);
}

/* Where an external item keeps its value's address. */
static inline char **pc_item_value_slot(const pc_item *it)
{
    size_t at = pc_round8(PC_ITEM_HEADER + (it->meta & PC_META_FLAGS) + it->nkey);
    return (char **)((char *)it + at);
}

static inline char *pc_item_value(pc_item *it)
{
    if (it->meta & PC_META_EXTERNAL)
        return *pc_item_value_slot(it);
    return (char *)pc_item_key(it) + it->nkey;
}

/* The bytes of a record in the log. */
static inline size_t pc_item_record_size(size_t nkey, uint32_t flags, size_t nbytes,
                                         int external)
{
    size_t head = PC_ITEM_HEADER + (flags ? 4 : 0) + nkey;
    return external ? pc_round8(head) + sizeof(char *) : pc_round8(head + nbytes);
}

static inline size_t pc_item_record(const pc_item *it)
{
    return pc_item_record_size(it->nkey, it->meta & PC_META_FLAGS, it->nbytes,
                               it->meta & PC_META_EXTERNAL);
}

/* Writes a record's header and key at `it` (value left to the caller; an external one's
 * address must be set with pc_item_value_slot). */
void pc_item_init(pc_item *it, const char *key, size_t nkey, uint32_t flags, size_t nbytes,
                  int external);

/* The size memcached 1.6 checks against -I for an item (its 56-byte header with CAS, the key
 * with its NUL, 4 bytes for non-zero client flags, the value with its CRLF), so that values at
 * the limit succeed or fail exactly where memcached's do. */
static inline size_t pc_item_memcached_size(size_t nkey, uint32_t flags, size_t nbytes)
{
    return 56 + nkey + 1 + (flags ? sizeof(flags) : 0) + nbytes + 2;
}

/* External values: in pages of their own from PC_LARGE_MIN bytes (pc_large.h), else from
 * malloc. *mapped says which; *charged grows by what the allocator really holds. */
char *pc_value_alloc(size_t nbytes, int *mapped, size_t *charged);
void pc_value_free(char *p, size_t nbytes, int mapped, size_t *charged);
size_t pc_value_charge(const char *p, size_t nbytes, int mapped);

/* Bytes an item holds: its record, and its external value's allocation. */
size_t pc_item_charge(const pc_item *it);

#endif
