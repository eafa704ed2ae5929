/* pc_ring: a read-only snapshot of the consistent-hash ring that places keys on nodes. */
#ifndef PC_RING_H
#define PC_RING_H

#include <stddef.h>
#include <stdint.h>

/* Node slots are small integers chosen by the builder (the Python Ring); the snapshot only
 * maps positions to them. A key at position hv (murmur3 of the key, as the store hashes it)
 * belongs to the slot of the first point at or after hv, wrapping past the top; its owners
 * are the first n distinct slots met walking on from there. A snapshot never changes: a new
 * membership builds a new one, so readers need no lock. */
typedef struct pc_ring pc_ring;

#define PC_RING_MAX_SLOTS 4096

/* points[0..npoints) ascending, slots[i] < nslots <= PC_RING_MAX_SLOTS. NULL when out of
 * memory or given no points. */
pc_ring *pc_ring_new(const uint32_t *points, const uint16_t *slots, size_t npoints,
                     unsigned nslots);
void pc_ring_free(pc_ring *r);
size_t pc_ring_npoints(const pc_ring *r);
unsigned pc_ring_nslots(const pc_ring *r);

/* The key's first owner. */
unsigned pc_ring_primary(const pc_ring *r, uint32_t hv);
/* Writes the first min(n, nslots) distinct owners in preference order; returns how many.
 * With zones set, at most ceil(n / nzones) owners of any one zone, then (when the zones are
 * too small to give their share) the slots skipped, in ring order: cluster/ring.py's walk. */
unsigned pc_ring_owners(const pc_ring *r, uint32_t hv, unsigned n, uint16_t *out);

#define PC_RING_MAX_ZONES 256

/* Places slot s in zone zone_of_slot[s] < nzones (2..PC_RING_MAX_ZONES, every zone used);
 * call once, before the snapshot is shared. -1 on bad input or out of memory (the snapshot
 * is then unchanged: zone-blind). */
int pc_ring_set_zones(pc_ring *r, const uint16_t *zone_of_slot, unsigned nzones);

#endif
