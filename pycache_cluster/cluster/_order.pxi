# Per-key order within one connection, included by _coord.pyx: later requests on a key go
# the way an earlier one of the same connection went, and wait for it where they could pass
# it (a read then a write routed to the first owner, say).

cdef inline bint pending(Connection c, uint32_t hv) noexcept:
    cdef uint8_t i
    if c.npend == 0 or c.nholes == 0:
        return False
    if c.npend > 8:
        return True         # more than it remembers: every key waits its turn
    for i in range(c.npend):
        if c.pend_hv[i] == hv:
            return True
    return False


cdef inline void note_pending(Connection c, uint32_t hv) noexcept:
    c.pend_hv[c.npend % 8] = hv
    if c.npend < 255:
        c.npend += 1

cdef class Deferred:
    """A write held back behind a read of its key (see Connection.reads)."""
    cdef ClusterCoordinator co
    cdef object ring        # `slot` is one of its owners
    cdef unsigned slot
    cdef Hole hole
    cdef uint32_t hv
    cdef bytes line, data
    cdef bint quiet, hop     # hop: a peer's request routed on (see _peers.pxi)

    def __call__(self):
        cdef const char *tail = NULL
        cdef size_t ntail = 0
        if self.data is not None:
            tail = self.data
            ntail = len(self.data)
        if self.hop:
            self.co.link_in(self.ring, self.slot).send_waiter(None, self.hv,
                                                               b"mn P\r\n", 6)
        self.co.link_in(self.ring, self.slot).send(
            self.hole, self.hv, PyBytes_AS_STRING(self.line), PyBytes_GET_SIZE(self.line),
            tail, ntail, self.quiet)
        fence(self.co, self.ring, self.slot, self.hv)


cdef void note_inflight(Connection c, uint32_t hv, object op):
    if c.inflight is None:
        c.inflight = {}
    c.inflight[hv] = op


cdef void release_inflight(Connection c, uint32_t hv, object op, list after):
    """op (a ReadMerge or Quorum) has every owner's answer: what waited behind it goes."""
    if c is not None and c.inflight is not None and c.inflight.get(hv) is op:
        del c.inflight[hv]
    if after:
        for send in after:
            send()


cdef bint defer_behind_read(Connection c, object ring, unsigned slot, Hole h, uint32_t hv,
                            bytes line, bytes data, bint quiet, bint queued_only=False):
    """True when a read or plain write of this key is still out at its owners: the send
    goes once they all answered it. queued_only (a read): only when a write already waits
    there, since the read must not pass it."""
    cdef Deferred d
    cdef list waiting
    if c.inflight is None or not c.inflight:
        return False
    op = c.inflight.get(hv)
    if op is None:
        return False
    waiting = (<ReadMerge>op).after if type(op) is ReadMerge else (<Quorum>op).after
    if queued_only and not waiting:
        return False
    if waiting is None:
        waiting = []
        if type(op) is ReadMerge:
            (<ReadMerge>op).after = waiting
        else:
            (<Quorum>op).after = waiting
    d = Deferred.__new__(Deferred)
    d.co = <ClusterCoordinator>c.srv.coord
    d.ring = ring
    d.slot = slot
    d.hole = h
    d.hv = hv
    d.line = line
    d.data = data
    d.quiet = quiet
    d.hop = c.peer
    waiting.append(d)
    return True
