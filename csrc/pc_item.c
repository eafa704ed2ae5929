/* pc_item: allocation of items, charged by what the allocator really holds. */
#include "pc_item.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "pc_large.h"

/* glibc keeps one size_t of bookkeeping in front of every chunk it hands out. */
#define PC_MALLOC_CHUNK_HEADER sizeof(size_t)

size_t pc_item_charge(const pc_item *it)
{
    if (it->mapped)
        return pc_large_size(pc_item_size(it->nkey, it->nbytes));
    return malloc_usable_size((void *)it) + PC_MALLOC_CHUNK_HEADER;
}

pc_item *pc_item_alloc(const char *key, size_t nkey, size_t nbytes, size_t *charged)
{
    size_t size = pc_item_size(nkey, nbytes);
    pc_item *it = size >= PC_LARGE_MIN ? pc_large_alloc(size) : NULL;
    int mapped = it != NULL;
    if (!mapped)        /* small, or out of mappings: the heap */
        it = malloc(size);
    if (it == NULL)
        return NULL;
    memset(it, 0, offsetof(pc_item, data));
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    it->mapped = (uint8_t)mapped;
    memcpy(it->data, key, nkey);
    *charged += pc_item_charge(it);
    return it;
}

void pc_item_free(pc_item *it, size_t *charged)
{
    *charged -= pc_item_charge(it);
    if (it->mapped)
        pc_large_free(it, pc_item_size(it->nkey, it->nbytes));
    else
        free(it);
}
