# The native ring snapshot (csrc/pc_ring.h) a node routes with: built from ring.Ring's
# arrays, read-only, installed whole into the coordinator (_coord.pyx) on every ring change.
# The client looks keys up with it too: it loads nothing of the server.
cimport cython
from libc.stdint cimport uint16_t, uint32_t

from pycache_cluster.protocol._cdefs cimport (
    PC_RING_MAX_SLOTS, pc_ring, pc_ring_free, pc_ring_new, pc_ring_npoints, pc_ring_nslots,
    pc_ring_owners, pc_ring_primary, pc_ring_set_zones)
from pycache_cluster.store._store cimport pc_hash


@cython.final
cdef class RingSnapshot:
    """Positions -> node slots; slot i is the i-th name of `names` (see _ring.pxd)."""

    def __cinit__(self, const uint32_t[::1] positions, const uint16_t[::1] slots, names,
                  const uint16_t[::1] zones=None):
        self.names = tuple(names)
        if positions.shape[0] != slots.shape[0] or positions.shape[0] == 0:
            raise ValueError("a ring needs as many slots as positions, at least one")
        if not 0 < len(self.names) <= PC_RING_MAX_SLOTS:
            raise ValueError(f"a ring has 1..{PC_RING_MAX_SLOTS} nodes")
        self.r = pc_ring_new(&positions[0], &slots[0], positions.shape[0], len(self.names))
        if self.r == NULL:
            raise MemoryError()
        # ring.Ring.zone_slots(): owners spread over zones as Ring.owners_at does.
        if zones is not None and (zones.shape[0] != len(self.names) or pc_ring_set_zones(
                self.r, &zones[0], max(zones) + 1) != 0):
            raise ValueError("one zone number per slot, 2 or more zones, each one used")

    def __dealloc__(self):
        pc_ring_free(self.r)

    def __len__(self):
        return pc_ring_npoints(self.r)

    def primary(self, uint32_t position):
        return self.names[pc_ring_primary(self.r, position)]

    def owners(self, bytes key, unsigned n=1):
        """The key's first n distinct owners, by the native lookup the request path uses."""
        cdef uint16_t out[64]
        cdef unsigned i, found
        if n > 64:
            n = 64
        found = pc_ring_owners(self.r, pc_hash(<const char *>key, len(key), 0), n, out)
        return [self.names[out[i]] for i in range(found)]

    def lookup_loop(self, const uint32_t[::1] positions, unsigned rounds=1,
                    unsigned n_owners=1):
        """The owners of every position, `rounds` times, in C (for the benchmark): the
        primary alone, or the first n_owners."""
        cdef size_t i, n = positions.shape[0]
        cdef unsigned r, acc = 0
        cdef uint16_t out[64]
        if n_owners > 64:
            n_owners = 64
        for r in range(rounds):
            for i in range(n):
                if n_owners == 1:
                    acc += pc_ring_primary(self.r, positions[i])
                else:
                    acc += pc_ring_owners(self.r, positions[i], n_owners, out)
        return acc
