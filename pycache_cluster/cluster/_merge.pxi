# Reads of replicated keys, included by _coord.pyx: every owner asked, the newest answer
# the reply, stale owners repaired.

# -- reads of replicated keys ------------------------------------------------------------

@cython.final
cdef class ReadAnswer:
    """One owner's answer to a ReadMerge's `mg <key> v f c t`."""

    cdef void reply(self, const char *frame, size_t n):
        # A hit: `VA <n> f<flags> c<version> t<ttl>`; a miss: `EN`, or `EN c<version>` of
        # what the owner deleted (E1).
        cdef pc_meta_reply m
        cdef int status = pc_reply_meta(frame, n, &m)
        cdef pc_store *s = self.merge.co.s
        if status == PC_MR_EN:
            self.merge.answer(self.slot, m.cas, 0, 0, None)
        elif status == PC_MR_VA:
            self.merge.answer(self.slot, m.cas, <uint32_t>m.flags,
                              0 if m.ttl_never else
                              pc_store_unix_time(s, pc_store_now(s)) + <int64_t>m.ttl,
                              PyBytes_FromStringAndSize(m.value, m.nbytes))
        else:
            self.fail(b"bad answer")

    cdef void fail(self, bytes why):
        self.merge.answer(-1, 0, 0, 0, None)


@cython.final
cdef class ReadMerge:
    """See _conn.pxd."""

    cdef void answer(self, int slot, uint64_t version, uint32_t flags, int64_t exptime,
                     object value):
        # slot -1: the owner could not be asked (it counts as asked, not as an answer).
        if self.outstanding:
            self.outstanding -= 1
        # A miss may carry the version of what the owner deleted (or saw expire): newer
        # than another owner's value, it is the answer, so a stale copy never resurrects.
        if slot >= 0:
            self.answered += 1
            self.answers.append((slot, version))
            if value is not None:
                self.hits += 1
            if version > self.best_version or (version == self.best_version and
                                               value is not None and self.best_value is None):
                self.best_version = version
                self.best_flags = flags
                self.best_exptime = exptime
                self.best_value = value
        self.settle()

    cdef void ask_next(self):
        cdef ClusterCoordinator co = self.co
        cdef ReadAnswer w
        cdef uint16_t slot
        cdef bytes request
        cdef int self_slot = co.self_slot_in(self.ring)
        while self.next < self.nowners and self.owners[self.next] == self_slot:
            self.next += 1
        if self.next >= self.nowners:
            return
        slot = self.owners[self.next]
        self.next += 1
        w = ReadAnswer.__new__(ReadAnswer)
        w.merge = self
        w.slot = slot
        self.outstanding += 1
        # E (peer links only): a miss answers the version of what the owner deleted.
        request = b"mg %s v f c t E1%s\r\n" % (self.keytok, self.flag)
        co.forwarded += 1
        (co.side_link_in(self.ring, slot) if self.fill else co.link_in(self.ring, slot)) \
            .send_waiter(w, self.hv, PyBytes_AS_STRING(request), PyBytes_GET_SIZE(request))

    cdef void settle(self):
        cdef Connection c = self.conn
        if self.outstanding or self.asking or self.replied:
            return
        self.replied = True
        if self.fill:
            fill_done(self)
            return
        if self.answered < self.need:
            # Fewer than R owners answered: what they hold may be stale, and for a cache a
            # miss is the safe answer (counted as a quorum failure).
            self.co.quorum_failures += 1
            self.hole.put(b"")
        else:
            self.hole.put(read_reply(self))
        read_repair(self)
        release_inflight(c, self.hv, self, self.after)
        self.after = None

    cdef void ask_all(self):
        """Every other owner at once: their answers all come from before whatever this
        connection sends next on the key (each link keeps its order), which asking one
        after another would not guarantee."""
        self.asking = True
        while self.next < self.nowners:
            self.ask_next()
        self.asking = False
        self.settle()


cdef bytes read_reply(ReadMerge m):
    if m.best_value is None:
        return b""
    if m.with_cas:
        return b"VALUE %s %d %d %d\r\n%s\r\n" % (m.key, m.best_flags, len(m.best_value),
                                                  m.best_version, m.best_value)
    return b"VALUE %s %d %d\r\n%s\r\n" % (m.key, m.best_flags, len(m.best_value),
                                           m.best_value)


cdef void read_repair(ReadMerge m):
    """The owners that answered an older version, or nothing, get the newest (a tombstone
    when the newest is a delete)."""
    cdef ClusterCoordinator co = m.co
    cdef Quorum q
    cdef unsigned i, n = 0
    cdef uint16_t stale[16]
    if m.best_version == 0:
        return
    for slot, version in m.answers:
        if version < m.best_version:
            stale[n] = slot
            n += 1
    if n == 0:
        return
    co.read_repairs += 1
    q = Quorum.__new__(Quorum)
    q.co = co
    q.hv = m.hv
    q.ring = m.ring
    q.key, q.flag = m.keytok, m.flag
    q.value = m.best_value
    q.flags = m.best_flags
    q.exptime = m.best_exptime
    q.version = m.best_version
    q.sending = True
    cdef int self_slot = co.self_slot_in(m.ring)
    for i in range(n):
        if stale[i] == self_slot:
            q.local = True
        else:
            q.owners[q.nowners] = stale[i]
            q.nowners += 1
    q.request = write_request(q)
    if q.local:
        _ = local_apply_quiet(q)
    send_replicas(q)


cdef int local_apply_quiet(Quorum q):
    cdef int had = 0
    cdef uint64_t held = 0
    local_apply(q, &had, &held)
    return had


cdef bint read_replicated(Connection c, const char *key, size_t nkey, uint32_t hv,
                          bint return_cas):
    """A text get's key in a replicated cluster: False when the local copy answers it (this
    node is an owner, it has the key, and one owner is enough); else a hole that a
    ReadMerge fills."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n = owners_of(co, hv, owners), i
    cdef bint local = is_owner(co, owners, n)
    cdef pc_item *it = NULL
    cdef ReadMerge m
    if local:
        it = pc_store_peek_hv(c.s, key, nkey, hv)
        if it != NULL and co.read_quorum == 1:
            return False
    m = ReadMerge.__new__(ReadMerge)
    m.co = co
    m.hv = hv
    m.ring = co.ring_ref
    m.with_cas = return_cas
    m.key = PyBytes_FromStringAndSize(key, nkey)
    m.keytok, m.flag = key_field(key, nkey)
    m.nowners = <uint8_t>n
    for i in range(n):
        m.owners[i] = owners[i]
    m.need = <uint8_t>min(<unsigned>co.read_quorum, n)
    m.answers = []
    m.conn = c
    m.hole = out_hole(c, HK_QUORUM)
    note_inflight(c, hv, m)
    m.asking = True         # no verdict on this owner's answer alone: ask_all settles
    if local:
        # This owner's copy is one answer (counted as the get it is).
        c.srv.cmd_get += 1
        pc_store_note_get(c.s, it, 1)
        if it == NULL:
            m.answer(co.self_slot, slot_version(c, key, nkey, hv), 0, 0, None)
        else:
            m.answer(co.self_slot, it.version, pc_item_flags(it),
                     pc_store_unix_time(c.s, it.exptime) if it.exptime else 0,
                     PyBytes_FromStringAndSize(pc_item_value(it), it.nbytes))
    m.ask_all()
    return True


cdef extern from *:
    """
    PC_POOL(pc_answer_pool)
    """
    int pc_answer_pool_install(PyTypeObject *t)

if pc_answer_pool_install(<PyTypeObject *>ReadAnswer) != 0:
    raise TypeError("ReadAnswer cannot be pooled")     # see protocol/_conn.pxd, PC_POOL
