# The ring snapshot's fields, for the coordinator (_coord.pyx), which installs it.
from pycache_cluster.protocol._cdefs cimport pc_ring


cdef class RingSnapshot:
    cdef pc_ring *r
    cdef readonly tuple names
    # As installed (the coordinator sets them): requests routed by this ring keep using
    # them after the next ring.
    cdef readonly tuple links, side_links
    cdef readonly int self_slot
