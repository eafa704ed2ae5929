/* pc_item: records' headers, and external values charged by what the allocator holds. */
#include "pc_item.h"

#include <malloc.h>
#include <stdlib.h>

#include "pc_large.h"

/* glibc keeps one size_t of bookkeeping in front of every chunk it hands out. */
#define PC_MALLOC_CHUNK_HEADER sizeof(size_t)

void pc_item_init(pc_item *it, const char *key, size_t nkey, uint32_t flags, size_t nbytes,
                  int external)
{
    memset(it, 0, PC_ITEM_HEADER);
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    it->meta = (uint8_t)((flags ? PC_META_FLAGS : 0) | (external ? PC_META_EXTERNAL : 0));
    if (flags)
        memcpy(it->data, &flags, sizeof(flags));
    memcpy((char *)pc_item_key(it), key, nkey);
}

size_t pc_value_charge(const char *p, size_t nbytes, int mapped)
{
    if (mapped)
        return pc_large_size(nbytes);
    return malloc_usable_size((void *)p) + PC_MALLOC_CHUNK_HEADER;
}

char *pc_value_alloc(size_t nbytes, int *mapped, size_t *charged)
{
    char *p = nbytes >= PC_LARGE_MIN ? pc_large_alloc(nbytes) : NULL;
    *mapped = p != NULL;
    if (!*mapped)       /* small, or out of mappings: the heap */
        p = malloc(nbytes ? nbytes : 1);
    if (p)
        *charged += pc_value_charge(p, nbytes, *mapped);
    return p;
}

void pc_value_free(char *p, size_t nbytes, int mapped, size_t *charged)
{
    *charged -= pc_value_charge(p, nbytes, mapped);
    if (mapped)
        pc_large_free(p, nbytes);
    else
        free(p);
}

size_t pc_item_charge(const pc_item *it)
{
    size_t n = pc_item_record(it);
    if (it->meta & PC_META_EXTERNAL)
        n += pc_value_charge(*pc_item_value_slot(it), it->nbytes, it->meta & PC_META_MAPPED);
    return n;
}
