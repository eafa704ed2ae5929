/* pc_ring: consistent-hash ring snapshot (see pc_ring.h). */
#include "pc_ring.h"

#include <stdlib.h>
#include <string.h>

/* A bucket index on the top bits of the position narrows the binary search to the few
 * points of one bucket; about one bucket per point keeps it to a step or two. */
struct pc_ring {
    uint32_t *points;
    uint16_t *slots;
    size_t npoints;
    unsigned nslots;
    unsigned shift;        /* position >> shift = bucket */
    uint32_t *bucket;      /* bucket[b] = first point index whose bucket >= b; nbuckets + 1 */
    uint16_t *zone;        /* zone of each slot; NULL: one zone */
    unsigned nzones;
    uint16_t *zone_size;   /* slots in each zone */
};

pc_ring *pc_ring_new(const uint32_t *points, const uint16_t *slots, size_t npoints,
                     unsigned nslots)
{
    if (npoints == 0 || nslots == 0 || nslots > PC_RING_MAX_SLOTS || npoints > UINT32_MAX)
        return NULL;
    unsigned bits = 8;
    while (bits < 20 && ((size_t)1 << bits) < npoints)
        bits++;
    size_t nbuckets = (size_t)1 << bits;
    pc_ring *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->points = malloc(npoints * sizeof(*r->points));
    r->slots = malloc(npoints * sizeof(*r->slots));
    r->bucket = malloc((nbuckets + 1) * sizeof(*r->bucket));
    if (r->points == NULL || r->slots == NULL || r->bucket == NULL) {
        pc_ring_free(r);
        return NULL;
    }
    memcpy(r->points, points, npoints * sizeof(*points));
    memcpy(r->slots, slots, npoints * sizeof(*slots));
    r->npoints = npoints;
    r->nslots = nslots;
    r->shift = 32 - bits;
    size_t i = 0;
    for (size_t b = 0; b <= nbuckets; b++) {
        while (i < npoints && (size_t)(points[i] >> r->shift) < b)
            i++;
        r->bucket[b] = (uint32_t)i;
    }
    return r;
}

void pc_ring_free(pc_ring *r)
{
    if (r == NULL)
        return;
    free(r->points);
    free(r->slots);
    free(r->bucket);
    free(r->zone);
    free(r->zone_size);
    free(r);
}

size_t pc_ring_npoints(const pc_ring *r) { return r->npoints; }

unsigned pc_ring_nslots(const pc_ring *r) { return r->nslots; }

/* Index of the first point >= hv, or npoints when hv is past the last point. */
static size_t successor(const pc_ring *r, uint32_t hv)
{
    size_t b = hv >> r->shift;
    size_t lo = r->bucket[b], hi = r->bucket[b + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid] < hv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

unsigned pc_ring_primary(const pc_ring *r, uint32_t hv)
{
    size_t i = successor(r, hv);
    return r->slots[i == r->npoints ? 0 : i];
}

int pc_ring_set_zones(pc_ring *r, const uint16_t *zone_of_slot, unsigned nzones)
{
    if (r->zone != NULL || nzones < 2 || nzones > PC_RING_MAX_ZONES || nzones > r->nslots)
        return -1;
    uint16_t *zone = malloc(r->nslots * sizeof(*zone));
    uint16_t *size = calloc(nzones, sizeof(*size));
    if (zone == NULL || size == NULL)
        goto fail;
    for (unsigned s = 0; s < r->nslots; s++) {
        if (zone_of_slot[s] >= nzones)
            goto fail;
        zone[s] = zone_of_slot[s];
        size[zone[s]]++;
    }
    for (unsigned z = 0; z < nzones; z++)
        if (size[z] == 0)
            goto fail;
    r->zone = zone;
    r->zone_size = size;
    r->nzones = nzones;
    return 0;
fail:
    free(zone);
    free(size);
    return -1;
}

static int taken(const uint16_t *out, unsigned found, uint16_t slot)
{
    for (unsigned k = 0; k < found; k++)
        if (out[k] == slot)
            return 1;
    return 0;
}

/* The zone-capped walk, then the fill in ring order when the zones cannot give n. */
static unsigned owners_by_zone(const pc_ring *r, size_t start, unsigned n, uint16_t *out)
{
    unsigned cap = (n + r->nzones - 1) / r->nzones;
    /* How many the capped walk can find: it stops there rather than circle the ring. */
    unsigned reachable = 0;
    for (unsigned z = 0; z < r->nzones; z++)
        reachable += r->zone_size[z] < cap ? r->zone_size[z] : cap;
    unsigned found = 0, want = reachable < n ? reachable : n;
    size_t i = start;
    for (size_t walked = 0; found < want && walked < r->npoints; walked++, i++) {
        if (i == r->npoints)
            i = 0;
        uint16_t slot = r->slots[i];
        uint16_t z = r->zone[slot];
        /* n is a handful of replicas: counting among the owners found beats a table. */
        unsigned same = 0, dup = 0;
        for (unsigned k = 0; k < found; k++) {
            dup |= out[k] == slot;
            same += r->zone[out[k]] == z;
        }
        if (!dup && same < cap)
            out[found++] = slot;
    }
    i = start;
    for (size_t walked = 0; found < n && walked < r->npoints; walked++, i++) {
        if (i == r->npoints)
            i = 0;
        if (!taken(out, found, r->slots[i]))
            out[found++] = r->slots[i];
    }
    return found;
}

unsigned pc_ring_owners(const pc_ring *r, uint32_t hv, unsigned n, uint16_t *out)
{
    if (n > r->nslots)
        n = r->nslots;
    size_t i = successor(r, hv);
    if (r->zone != NULL && n > 1)
        return owners_by_zone(r, i, n, out);
    unsigned found = 0;
    for (size_t walked = 0; found < n && walked < r->npoints; walked++, i++) {
        if (i == r->npoints)
            i = 0;
        uint16_t slot = r->slots[i];
        unsigned k = 0;
        while (k < found && out[k] != slot)
            k++;
        if (k == found)
            out[found++] = slot;
    }
    return found;
}
