/* pc_item: allocation of items, charged by what the allocator really holds. */
#include "pc_item.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* glibc keeps one size_t of bookkeeping in front of every chunk it hands out. */
#define PC_MALLOC_CHUNK_HEADER sizeof(size_t)

size_t pc_item_charge(const pc_item *it)
{
    return malloc_usable_size((void *)it) + PC_MALLOC_CHUNK_HEADER;
}

pc_item *pc_item_alloc(const char *key, size_t nkey, size_t nbytes, size_t *charged)
{
    pc_item *it = malloc(offsetof(pc_item, data) + nkey + nbytes);
    if (it == NULL)
        return NULL;
    memset(it, 0, offsetof(pc_item, data));
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    memcpy(it->data, key, nkey);
    *charged += pc_item_charge(it);
    return it;
}

void pc_item_free(pc_item *it, size_t *charged)
{
    *charged -= pc_item_charge(it);
    free(it);
}
