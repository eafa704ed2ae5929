# Write quorums, included by _coord.pyx: every key lives on its first N
# owners (ClusterCoordinator.replicas); a write is acknowledged once W of them hold it.
#
# Two ways a write reaches the owners:
# - a plain write (set, ms without a mode or CAS, delete, md without C or I, touch) is
#   versioned by the node the client asked (the coordinator: its store's hybrid clock) and
#   sent to all N owners at once as replicas' writes (`ms ... E<version>`, `md ... E`,
#   `touch`), applied last-write-wins;
# - any other write (add, replace, cas, append, prepend, incr, decr, ms modes, ma, md C/I)
#   runs on the key's first owner, which then sends the resulting item (or tombstone) with
#   its new version to the other owners.
# Either way a Quorum counts the owners' answers and puts the client's reply in its hole
# once W (the first owner: W - 1 others) applied the write. An owner that already holds a
# newer version answers `EX c<version>`: when that happens to a plain write the coordinator
# had not seen that version (another node versioned a later-looking write in the same
# millisecond, or a flush_all on a clock ahead), so it goes again above it, up to 3 times,
# but only while the client waits for it: once the client heard STORED it may have written
# the key again, and that later write is what a slow owner may hold (going again above it
# would bring the older value back over an acknowledged one).
# A replica's write that fails is kept as a hint for its owner (cluster/hints.py).

DEF MAX_RETRIES = 3

cdef inline unsigned owners_of(ClusterCoordinator co, uint32_t hv, uint16_t *out) noexcept:
    return pc_ring_owners(co.ring, hv, <unsigned>co.replicas, out)


cdef inline bint is_owner(ClusterCoordinator co, uint16_t *owners, unsigned n) noexcept:
    cdef unsigned i
    for i in range(n):
        if owners[i] == co.self_slot:
            return True
    return False

cdef tuple key_field(const char *key, size_t nkey, bint binary=False):
    """(the key as a meta command's token, the flag to add): the key as it is, or base64
    with the b flag when it holds bytes a token cannot or was stored as a binary key (the
    owners then keep that mark, which meta's k answers show)."""
    cdef unsigned char enc[400]
    cdef size_t i, n
    for i in range(nkey):
        if binary or <unsigned char>key[i] <= 32 or <unsigned char>key[i] == 127:
            n = pc_base64_encode(<const unsigned char *>key, nkey, enc, sizeof(enc))
            return PyBytes_FromStringAndSize(<char *>enc, n), b" b"
    return PyBytes_FromStringAndSize(key, nkey), b""


@cython.final
cdef class ClockFence:
    """See _coord.pxd."""

    cdef void reply(self, const char *frame, size_t n):
        cdef pc_meta_reply m
        if pc_reply_meta(frame, n, &m) == PC_MR_MN and m.cas:
            pc_store_observe(self.co.s, m.cas)


cdef inline void fence(ClusterCoordinator co, object ring, unsigned slot, uint32_t hv):
    """A clock fence behind a write just sent to `ring`'s `slot` (replicated clusters only:
    alone, versions are one node's counter)."""
    if co.replicas > 1:
        co.link_in(ring, slot).send_waiter(co.fence, hv, b"mn c\r\n", 6)


@cython.final
cdef class ReplicaWrite:
    """One owner's copy of a write, waiting on a peer link."""

    cdef void reply(self, const char *frame, size_t n):
        # What counts as an owner's ack (cluster/wire.py builds the requests): HD/TOUCHED,
        # the key was there; NF/EN/NOT_FOUND, applied to nothing; `EX c<v>`, it holds the
        # newer v; anything else failed it.
        cdef pc_meta_reply m
        cdef int status = pc_reply_meta(frame, n, &m)
        if status == PC_MR_EX:
            self.quorum.vote(self.round, 2, m.cas)
        elif status == PC_MR_HD or status == PC_MR_TOUCHED:
            self.quorum.co.replica_writes_acked += 1
            self.quorum.vote(self.round, 1, 0)
        elif status == PC_MR_NF or status == PC_MR_EN or status == PC_MR_NOT_FOUND:
            self.quorum.co.replica_writes_acked += 1
            self.quorum.vote(self.round, 0, 0)
        else:
            self.fail(PyBytes_FromStringAndSize(frame, n).rstrip())

    cdef void fail(self, bytes why):
        cdef Quorum q = self.quorum
        q.co.replica_writes_failed += 1
        if self.slot >= 0:
            q.co.on_hint(q.ring.names[self.slot], self.request, why)
        q.vote(self.round, -1, 0)


@cython.final
cdef class Quorum:
    """A write's votes; see the top of this file."""

    cdef void vote(self, int round, int result, uint64_t held):
        # result: 1 applied (the key was there), 0 applied, 2 superseded, -1 failed.
        if round != self.round:
            return          # an answer to an earlier try
        self.answered += 1
        if result < 0:
            self.fails += 1
        elif result == 2 and self.retryable:
            self.superseded += 1
            if held > self.seen:
                self.seen = held
        else:
            self.acks += 1
            self.found = self.found or result != 0
        self.settle()

    cdef void settle(self):
        if self.sending:
            return
        if not self.replied and self.acks >= self.need:
            self.replied = True
            if self.hole is not None:
                self.hole.put(self.yes if self.found else self.no)
        if self.answered < self.sent:
            return
        if self.superseded and self.retries < MAX_RETRIES and not self.replied:
            self.again()
            return
        if not self.replied:
            self.replied = True
            self.co.quorum_failures += 1
            if self.hole is not None:
                self.hole.put(b"SERVER_ERROR quorum not met: %d of %d owners stored the "
                              b"write\r\n" % (self.acks, self.need))
        if self.conn is not None:
            release_inflight(self.conn, self.hv, self, self.after)
            self.after = None
            self.conn = None

    cdef void again(self):
        """The write once more, versioned above what superseded it."""
        cdef int had = 0
        cdef uint64_t held = 0
        cdef pc_status st
        cdef ClusterCoordinator co = self.co
        cdef unsigned char decoded[256]
        cdef size_t nkey
        cdef const char *key = quorum_key(self, decoded, &nkey)
        cdef pc_item *it
        pc_store_observe(co.s, self.seen)
        if self.primary:
            # The item that ran here takes the new version, unless a later write replaced
            # it meanwhile (that one replicates itself).
            it = pc_store_slot_hv(co.s, key, nkey, self.hv)
            if it == NULL or it.version != self.version:
                self.retries = MAX_RETRIES
                self.acks += self.superseded
                self.settle()
                return
            it.version = pc_store_next_version(co.s)
            self.version = it.version
        else:
            self.version = pc_store_next_version(co.s)
        self.retries += 1
        self.round += 1
        self.sending = True
        self.acks = self.fails = self.superseded = self.answered = self.sent = 0
        self.found = False
        self.request = write_request(self)
        if self.local:
            st = local_apply(self, &had, &held)
            self.sent = 1
            self.vote(self.round, 2 if st == PC_EXISTS else -1 if st != PC_STORED and
                      st != PC_DELETED else had, held)
        send_replicas(self)


cdef bytes write_request(Quorum q):
    """What each owner applies: the write at exactly q.version."""
    if q.value is None:
        return b"md %s E%d%s\r\n" % (q.key, q.version, q.flag)
    return b"ms %s %d F%d T%d E%d%s\r\n%s\r\n" % (q.key, len(q.value), q.flags, q.exptime,
                                                 q.version, q.flag, q.value)


cdef const char *quorum_key(Quorum q, unsigned char *buf, size_t *nkey):
    """The write's key as the store knows it (decoded when it travels base64)."""
    nkey[0] = len(q.key)
    if not q.flag:
        return q.key
    nkey[0] = pc_base64_decode(<const unsigned char *><const char *>q.key, nkey[0], buf, 256)
    return <const char *>buf


cdef pc_status local_apply(Quorum q, int *had, uint64_t *held):
    cdef unsigned char decoded[256]
    cdef size_t nkey
    cdef const char *key = quorum_key(q, decoded, &nkey)
    cdef pc_status st
    if q.value is None:
        return pc_store_apply_hv(q.co.s, key, nkey, q.hv, 0, 0, b"", 0, q.version, 1, had,
                                 held)
    st = pc_store_apply_hv(q.co.s, key, nkey, q.hv, q.flags, q.exptime, q.value,
                           len(q.value), q.version, 0, had, held)
    if st == PC_STORED and q.flag:
        mark_binary(q.co.s, key, nkey, q.hv)
    return st


cdef void send_replicas(Quorum q):
    """The request to every owner but this node, on its link."""
    cdef ClusterCoordinator co = q.co
    cdef ReplicaWrite w
    cdef unsigned i
    cdef bytes request = q.request
    cdef int self_slot = co.self_slot_in(q.ring)     # again() may come after a ring change
    for i in range(q.nowners):
        if q.owners[i] == self_slot:
            continue
        w = ReplicaWrite.__new__(ReplicaWrite)
        w.quorum = q
        w.slot = q.owners[i]
        w.round = q.round
        w.request = request
        q.sent += 1
        co.replica_writes_sent += 1
        co.link_in(q.ring, q.owners[i]).send_waiter(w, q.hv, PyBytes_AS_STRING(request),
                                                     PyBytes_GET_SIZE(request))
    q.sending = False
    q.settle()


cdef Quorum new_quorum(Connection c, uint32_t hv, uint16_t *owners, unsigned n,
                       unsigned need):
    cdef Quorum q = Quorum.__new__(Quorum)
    cdef unsigned i
    q.co = <ClusterCoordinator>c.srv.coord
    q.hv = hv
    q.ring = q.co.ring_ref
    q.nowners = <uint8_t>n
    for i in range(n):
        q.owners[i] = owners[i]
    q.need = <uint8_t>(need if need <= n else n)
    q.flag = b""
    q.sending = True
    return q


cdef extern from *:
    """
    PC_POOL(pc_replica_pool)
    """
    int pc_replica_pool_install(PyTypeObject *t)

if pc_replica_pool_install(<PyTypeObject *>ReplicaWrite) != 0:
    raise TypeError("ReplicaWrite cannot be pooled")     # see protocol/_conn.pxd, PC_POOL
