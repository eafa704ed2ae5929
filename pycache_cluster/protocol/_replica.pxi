# Replication on the request path, included by _conn.pyx: every key lives on its first N
# owners (ServerState.replicas); a write is acknowledged once W of them hold it.
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


cdef inline unsigned owners_of(ServerState srv, uint32_t hv, uint16_t *out) noexcept:
    return pc_ring_owners(srv.ring, hv, <unsigned>srv.replicas, out)


cdef inline bint is_owner(ServerState srv, uint16_t *owners, unsigned n) noexcept:
    cdef unsigned i
    for i in range(n):
        if owners[i] == srv.self_slot:
            return True
    return False


cdef inline uint64_t slot_version(Connection c, const char *key, size_t nkey,
                                  uint32_t hv) noexcept:
    cdef pc_item *it = pc_store_slot_hv(c.s, key, nkey, hv)
    return it.version if it != NULL else 0


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
    """See _conn.pxd."""

    cdef void reply(self, const char *frame, size_t n):
        cdef uint64_t version = 0
        if n > 4 and frame[0] == b'M' and frame[3] == b'c' and \
                pc_parse_u64(frame + 4, n - 4, &version):
            pc_store_observe(self.srv.s, version)


cdef inline void fence(ServerState srv, object ring, unsigned slot, uint32_t hv):
    """A clock fence behind a write just sent to `ring`'s `slot` (replicated clusters only:
    alone, versions are one node's counter)."""
    if srv.replicas > 1:
        srv.link_in(ring, slot).send_waiter(srv.fence, hv, b"mn c\r\n", 6)


@cython.final
@cython.freelist(256)
cdef class ReplicaWrite:
    """One owner's copy of a write, waiting on a peer link."""

    cdef void reply(self, const char *frame, size_t n):
        cdef uint64_t held = 0
        cdef const char *p
        if n >= 2 and frame[0] == b'E' and frame[1] == b'X':
            p = <const char *>memchr(frame, b'c', n)
            if p != NULL:
                pc_parse_u64(p + 1, n - (p + 1 - frame), &held)
            self.quorum.vote(self.round, 2, held)
        elif n >= 2 and frame[0] == b'H' and frame[1] == b'D' or \
                n >= 7 and memcmp(frame, b"TOUCHED", 7) == 0:
            self.quorum.srv.replica_writes_acked += 1
            self.quorum.vote(self.round, 1, 0)
        elif n >= 2 and (frame[0] == b'N' and frame[1] == b'F' or
                         frame[0] == b'E' and frame[1] == b'N') or \
                n >= 9 and memcmp(frame, b"NOT_FOUND", 9) == 0:
            self.quorum.srv.replica_writes_acked += 1
            self.quorum.vote(self.round, 0, 0)
        else:
            self.fail(PyBytes_FromStringAndSize(frame, n).rstrip())

    cdef void fail(self, bytes why):
        cdef Quorum q = self.quorum
        q.srv.replica_writes_failed += 1
        cluster = q.srv.cluster
        if cluster is not None and self.slot >= 0:
            cluster.hint(q.ring.names[self.slot], self.request, why)
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
            self.srv.quorum_failures += 1
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
        cdef ServerState srv = self.srv
        cdef unsigned char decoded[256]
        cdef size_t nkey
        cdef const char *key = quorum_key(self, decoded, &nkey)
        cdef pc_item *it
        pc_store_observe(srv.s, self.seen)
        if self.primary:
            # The item that ran here takes the new version, unless a later write replaced
            # it meanwhile (that one replicates itself).
            it = pc_store_slot_hv(srv.s, key, nkey, self.hv)
            if it == NULL or it.version != self.version:
                self.retries = MAX_RETRIES
                self.acks += self.superseded
                self.settle()
                return
            it.version = pc_store_next_version(srv.s)
            self.version = it.version
        else:
            self.version = pc_store_next_version(srv.s)
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
        return pc_store_apply_hv(q.srv.s, key, nkey, q.hv, 0, 0, b"", 0, q.version, 1, had,
                                 held)
    st = pc_store_apply_hv(q.srv.s, key, nkey, q.hv, q.flags, q.exptime, q.value,
                           len(q.value), q.version, 0, had, held)
    if st == PC_STORED and q.flag:
        mark_binary(q.srv.s, key, nkey, q.hv)
    return st


cdef void mark_binary(pc_store *s, const char *key, size_t nkey, uint32_t hv):
    cdef pc_item *it = pc_store_slot_hv(s, key, nkey, hv)
    if it != NULL:
        it.bits |= PC_ITEM_KEY_BINARY


cdef void send_replicas(Quorum q):
    """The request to every owner but this node, on its link."""
    cdef ServerState srv = q.srv
    cdef ReplicaWrite w
    cdef unsigned i
    cdef bytes request = q.request
    cdef int self_slot = srv.self_slot_in(q.ring)     # again() may come after a ring change
    for i in range(q.nowners):
        if q.owners[i] == self_slot:
            continue
        w = ReplicaWrite.__new__(ReplicaWrite)
        w.quorum = q
        w.slot = q.owners[i]
        w.round = q.round
        w.request = request
        q.sent += 1
        srv.replica_writes_sent += 1
        srv.link_in(q.ring, q.owners[i]).send_waiter(w, q.hv, PyBytes_AS_STRING(request),
                                                     PyBytes_GET_SIZE(request))
    q.sending = False
    q.settle()


cdef Quorum new_quorum(Connection c, uint32_t hv, uint16_t *owners, unsigned n,
                       unsigned need):
    cdef Quorum q = Quorum.__new__(Quorum)
    cdef unsigned i
    q.srv = c.srv
    q.hv = hv
    q.ring = c.srv.ring_ref
    q.nowners = <uint8_t>n
    for i in range(n):
        q.owners[i] = owners[i]
    q.need = <uint8_t>(need if need <= n else n)
    q.flag = b""
    q.sending = True
    return q


# -- the first owner's replication of what ran here ----------------------------------------

cdef void replicate_local(Connection c, const char *key, size_t nkey, uint32_t hv,
                          size_t start, uint64_t before):
    """After a write ran here (the key's first owner): if the key's version moved, its new
    state goes to the other owners, and the reply made since `start` waits for W - 1."""
    cdef ServerState srv = c.srv
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n = owners_of(srv, hv, owners)
    cdef pc_item *it = pc_store_slot_hv(c.s, key, nkey, hv)
    cdef Quorum q
    cdef bytes reply
    if it == NULL or it.version == before or n < 2 or not is_owner(srv, owners, n):
        return
    q = new_quorum(c, hv, owners, n, <unsigned>srv.write_quorum - 1)
    q.key, q.flag = key_field(key, nkey, it.bits & PC_ITEM_KEY_BINARY)
    q.version = it.version
    q.primary = q.retryable = True
    if not (it.bits & PC_ITEM_TOMBSTONE):
        q.value = PyBytes_FromStringAndSize(pc_item_value(it), it.nbytes)
        q.flags = pc_item_flags(it)
        q.exptime = pc_store_unix_time(c.s, it.exptime) if it.exptime else 0
    q.request = write_request(q)
    if q.need:
        reply = PyBytes_FromStringAndSize(c.wbuf.data + start, c.wbuf.len - start)
        c.wbuf.len = start
        q.hole = out_hole(c, HK_QUORUM)
        q.yes = q.no = reply
    send_replicas(q)


cdef void touch_others(Connection c, const char *key, size_t nkey, uint32_t hv,
                       size_t start, uint64_t before):
    """An mg with T ran here (the key's first owner) on an item it kept (same version, so
    replicate_local sent nothing): the other owners take the expiry it now has, and the
    reply made since `start` waits for W - 1 of them, as a touch's does (what the client
    sends next, through any node, then finds the new expiry on every owner)."""
    cdef ServerState srv = c.srv
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n
    cdef pc_item *it = pc_store_slot_hv(c.s, key, nkey, hv)
    cdef pc_reltime rel
    cdef int64_t exptime
    cdef Quorum q
    if it == NULL or it.version != before:
        return
    n = owners_of(srv, hv, owners)
    if n < 2 or owners[0] != srv.self_slot:
        return
    rel = it.exptime
    # A T in the past left a tombstone at the item's version (expired items do here).
    exptime = -1 if it.bits & PC_ITEM_TOMBSTONE or rel != 0 and rel <= pc_store_now(c.s) \
        else 0 if rel == 0 else pc_store_unix_time(c.s, rel)
    q = new_quorum(c, hv, owners, n, <unsigned>srv.write_quorum - 1)
    q.key, q.flag = key_field(key, nkey, it.bits & PC_ITEM_KEY_BINARY)
    q.request = b"mg %s T%d E1%s\r\n" % (q.key, exptime, q.flag)
    if q.need:
        reply = PyBytes_FromStringAndSize(c.wbuf.data + start, c.wbuf.len - start)
        c.wbuf.len = start
        q.hole = out_hole(c, HK_QUORUM)
        q.yes = q.no = reply
    send_replicas(q)


# -- the coordinator's plain writes ------------------------------------------------------

cdef void fanout(Connection c, Quorum q, bint quiet, bytes yes, bytes no):
    """A plain write goes to every owner (this node's copy first, when it is one); the
    client hears `yes` or `no` (nothing under noreply or q) once W applied it."""
    cdef int had = 0
    cdef uint64_t held = 0
    cdef pc_status st
    q.retryable = True
    q.yes, q.no = (b"", b"") if quiet else (yes, no)
    q.hole = out_hole(c, HK_QUORUM)
    q.conn = c
    note_inflight(c, q.hv, q)
    q.request = write_request(q)
    if q.local:
        st = local_apply(q, &had, &held)
        q.sent = 1
        q.vote(q.round, 2 if st == PC_EXISTS else -1 if st != PC_STORED and
               st != PC_DELETED else had, held)
    send_replicas(q)


cdef void fanout_store(Connection c, const char *data, size_t vlen):
    """set (or a plain ms) through N owners: versioned here, applied here if this node is
    one, sent to the rest."""
    cdef ServerState srv = c.srv
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n = owners_of(srv, c.p.hv, owners)
    cdef Quorum q = new_quorum(c, c.p.hv, owners, n, <unsigned>srv.write_quorum)
    cdef pc_reltime rel = pc_store_exptime(c.s, c.p.exptime)
    cdef size_t start
    cdef bytes yes
    q.local = is_owner(srv, owners, n)
    q.key, q.flag = key_field(c.p.key, c.p.nkey, c.p.meta and c.p.key_binary)
    q.flags = c.p.flags
    # Absolute, so that every owner expires it at the same moment; already expired stays so.
    q.exptime = -1 if rel == 1 else pc_store_unix_time(c.s, rel) if rel else 0
    q.value = PyBytes_FromStringAndSize(data, vlen - 2)
    q.version = pc_store_next_version(c.s)
    srv.cmd_set += 1
    start = c.wbuf.len
    if c.p.meta:
        meta_reply_stored(c, q.version)
    else:
        c._out(b"STORED")
    yes = PyBytes_FromStringAndSize(c.wbuf.data + start, c.wbuf.len - start)
    c.wbuf.len = start
    fanout(c, q, False, yes, yes)


cdef bint fanout_command(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                         uint32_t hv, uint16_t *owners, unsigned n):
    """delete and touch through N owners. False when the command is not well formed in the
    plain way (the local arm then answers it, errors included)."""
    cdef ServerState srv = c.srv
    cdef pc_token *key = &tokens[1]
    cdef int32_t exptime
    cdef bint quiet = False
    cdef Quorum q
    if cmd == PC_CMD_DELETE:
        if ntokens > 3:
            # memcached's forms: delete <key> [0] [noreply]; any other is its usage error,
            # which the local arm answers without touching the key.
            quiet = _is(tokens[ntokens - 2].value, b"noreply")
            if not (ntokens == 4 and (quiet or _is(tokens[2].value, b"0")) or
                    ntokens == 5 and quiet and _is(tokens[2].value, b"0")):
                return False
        q = new_quorum(c, hv, owners, n, <unsigned>srv.write_quorum)
        q.local = is_owner(srv, owners, n)
        q.key, q.flag = key_field(key.value, key.length)
        q.version = pc_store_next_version(c.s)
        fanout(c, q, quiet, b"DELETED\r\n", b"NOT_FOUND\r\n")
        return True
    if cmd == PC_CMD_MD:
        return fanout_md(c, tokens, ntokens, hv, owners, n)
    if cmd == PC_CMD_TOUCH:
        if not pc_strtol(tokens[2].value, &exptime):
            return False            # memcached's exptime error, answered by the local arm
        # As memcached: noreply is the last token, whatever the one before it is.
        quiet = ntokens == 5 and _is(tokens[3].value, b"noreply")
        q = new_quorum(c, hv, owners, n, <unsigned>srv.write_quorum)
        q.key, q.flag = key_field(key.value, key.length)
        q.value = b"touch"
        if is_owner(srv, owners, n):
            srv.cmd_touch += 1
            q.sent = 1
            q.vote(0, 1 if pc_store_touch_hv(c.s, key.value, key.length, hv, exptime) != NULL
                   else 0, 0)
        # A replica's touch (E: answered there, never routed on): HD, or EN on a miss.
        q.request = b"mg %s T%d E1%s\r\n" % (q.key, exptime, q.flag)
        q.yes, q.no = (b"", b"") if quiet else (b"TOUCHED\r\n", b"NOT_FOUND\r\n")
        q.hole = out_hole(c, HK_QUORUM)
        q.conn = c
        note_inflight(c, hv, q)
        send_replicas(q)
        return True
    return False


cdef bint fanout_md(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv,
                    uint16_t *owners, unsigned n):
    """md without C or I: a delete through N owners, answered HD or NF with the O and k
    flags it asked for (q: HD is not sent). A request memcached would refuse (flags, a
    too-long opaque) is left to the local arm, which answers its error."""
    cdef ServerState srv = c.srv
    cdef pc_token copy[PC_MAX_TOKENS]
    cdef pc_meta_flags of
    cdef const char *errstr = NULL
    cdef char key[256]
    cdef size_t i
    cdef list echo = []
    cdef Quorum q
    if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
        return False
    # memcached's own checks, on a copy (the b flag decodes the key in place).
    memcpy(copy, tokens, ntokens * sizeof(pc_token))
    memcpy(key, tokens[1].value, tokens[1].length)
    copy[1].value = key
    memset(&of, 0, sizeof(of))
    if pc_meta_preparse(copy, 2, &of, &errstr) != 0:
        return False
    for i in range(2, ntokens - 1):
        if tokens[i].value[0] == b'O':
            if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                return False
            echo.append(b" " + PyBytes_FromStringAndSize(tokens[i].value, tokens[i].length))
        elif tokens[i].value[0] == b'k':
            echo.append(b" k" + PyBytes_FromStringAndSize(tokens[1].value, tokens[1].length)
                        + (b" b" if of.key_binary else b""))
    tail = b"".join(echo) + b"\r\n"
    q = new_quorum(c, hv, owners, n, <unsigned>srv.write_quorum)
    q.local = is_owner(srv, owners, n)
    q.key, q.flag = key_field(key, copy[1].length)
    q.version = pc_store_next_version(c.s)
    fanout(c, q, False, b"" if of.no_reply else b"HD" + tail, b"NF" + tail)
    return True


cdef void meta_reply_stored(Connection c, uint64_t version):
    """An ms's HD with the return flags it asked for (q: nothing), for a stored item."""
    cdef int i
    if c.p.noreply:
        return
    pc_wbuf_add(&c.wbuf, b"HD", 2)
    for i in range(c.p.nret):
        if c.p.ret[i] == b'O':
            pc_wbuf_add(&c.wbuf, b" ", 1)
            pc_wbuf_add(&c.wbuf, c.p.opaque, c.p.nopaque)
        elif c.p.ret[i] == b'k':
            meta_key(c, c.p.key, c.p.nkey, c.p.key_binary)
        elif c.p.ret[i] == b'c':
            pc_wbuf_add(&c.wbuf, b" c", 2)
            pc_wbuf_add_u64(&c.wbuf, version)
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)


# -- reads of replicated keys ------------------------------------------------------------

@cython.final
@cython.freelist(256)
cdef class ReadAnswer:
    """One owner's answer to a ReadMerge's `mg <key> v f c t`."""

    cdef void reply(self, const char *frame, size_t n):
        cdef const char *nl = <const char *>memchr(frame, b'\n', n)
        cdef const char *p
        cdef const char *end
        cdef uint64_t nbytes = 0, flags = 0, version = 0, ttl = 0
        cdef bint never = False
        if n >= 2 and frame[0] == b'E' and frame[1] == b'N':
            if n > 4 and frame[2] == b' ' and frame[3] == b'c':
                pc_u64_prefix(frame + 4, frame + n, &version)
            self.merge.answer(self.slot, version, 0, 0, None)
            return
        if nl == NULL or n < 3 or frame[0] != b'V' or frame[1] != b'A':
            self.fail(b"bad answer")
            return
        end = nl
        p = frame + 3
        p += pc_u64_prefix(p, end, &nbytes)
        while p < end:
            if p[0] == b' ' and p + 1 < end:
                if p[1] == b'f':
                    p += 2 + pc_u64_prefix(p + 2, end, &flags)
                    continue
                if p[1] == b'c':
                    p += 2 + pc_u64_prefix(p + 2, end, &version)
                    continue
                if p[1] == b't':
                    never = p + 2 < end and p[2] == b'-'
                    p += 2 + (1 if never else 0)
                    p += pc_u64_prefix(p, end, &ttl)
                    continue
            p += 1
        if <size_t>(nl + 1 - frame) + nbytes + 2 > n:
            self.fail(b"bad answer")
            return
        self.merge.answer(self.slot, version, <uint32_t>flags,
                          0 if never else pc_store_unix_time(self.merge.srv.s,
                                                             pc_store_now(self.merge.srv.s))
                          + <int64_t>ttl,
                          PyBytes_FromStringAndSize(nl + 1, nbytes))

    cdef void fail(self, bytes why):
        self.merge.answer(-1, 0, 0, 0, None)


cdef size_t pc_u64_prefix(const char *p, const char *end, uint64_t *out) noexcept:
    cdef size_t n = 0
    cdef uint64_t v = 0
    while p + n < end and p[n] >= b'0' and p[n] <= b'9':
        v = v * 10 + <uint64_t>(p[n] - 48)
        n += 1
    out[0] = v
    return n


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
        cdef ServerState srv = self.srv
        cdef ReadAnswer w
        cdef uint16_t slot
        cdef bytes request
        cdef int self_slot = srv.self_slot_in(self.ring)
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
        srv.forwarded += 1
        (srv.side_link_in(self.ring, slot) if self.fill else srv.link_in(self.ring, slot)) \
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
            self.srv.quorum_failures += 1
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
    cdef ServerState srv = m.srv
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
    srv.read_repairs += 1
    q = Quorum.__new__(Quorum)
    q.srv = srv
    q.hv = m.hv
    q.ring = m.ring
    q.key, q.flag = m.keytok, m.flag
    q.value = m.best_value
    q.flags = m.best_flags
    q.exptime = m.best_exptime
    q.version = m.best_version
    q.sending = True
    cdef int self_slot = srv.self_slot_in(m.ring)
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
    cdef ServerState srv = c.srv
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n = owners_of(srv, hv, owners), i
    cdef bint local = is_owner(srv, owners, n)
    cdef pc_item *it = NULL
    cdef ReadMerge m
    if local:
        it = pc_store_peek_hv(c.s, key, nkey, hv)
        if it != NULL and srv.read_quorum == 1:
            return False
    m = ReadMerge.__new__(ReadMerge)
    m.srv = srv
    m.hv = hv
    m.ring = srv.ring_ref
    m.with_cas = return_cas
    m.key = PyBytes_FromStringAndSize(key, nkey)
    m.keytok, m.flag = key_field(key, nkey)
    m.nowners = <uint8_t>n
    for i in range(n):
        m.owners[i] = owners[i]
    m.need = <uint8_t>min(<unsigned>srv.read_quorum, n)
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
            m.answer(srv.self_slot, slot_version(c, key, nkey, hv), 0, 0, None)
        else:
            m.answer(srv.self_slot, it.version, pc_item_flags(it),
                     pc_store_unix_time(c.s, it.exptime) if it.exptime else 0,
                     PyBytes_FromStringAndSize(pc_item_value(it), it.nbytes))
    m.ask_all()
    return True


# -- fills: a new first owner's conditional write on a key it has not received yet ---------
#
# After a ring change this node may be a key's first owner before the hand-over brought it
# the key: run there, a cas would answer NOT_FOUND and an add store over the others' value.
# For a while after each ring change (ServerState.fill_until), a conditional write that runs
# here as first owner on a key this node holds nothing of (no item, no tombstone) first asks
# the other owners, as a read would (a ReadMerge without a hole), stores the newest copy
# here, and only then runs. The connection reads no further meanwhile: the request's line
# stays in front of its read buffer and is read again, in order, once the copies are in.

cdef bint fill_first(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t hv,
                     bint hop):
    """True when the request must wait for a fill, which has begun."""
    cdef ServerState srv = c.srv
    cdef unsigned char decoded[256]
    cdef const char *key = tokens[1].value
    cdef size_t nkey = tokens[1].length
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n, i
    cdef ReadMerge m
    if c.filled and c.filled_hv == hv:
        c.filled = False        # its fill is done: it runs now, whatever came back
        return False
    if srv.replicas < 2 or c.p.owner >= 0 or c.p.fanout or nkey > KEY_MAX or \
            command_kind(cmd, tokens, ntokens) != KIND_COND or \
            cmd >= PC_CMD_MG and has_version_flag(cmd, tokens, ntokens):
        return False
    if pc_lat_now() >= srv.fill_until:
        srv.fill_until = 0
        return False
    if not hop and <int>pc_ring_primary(srv.ring, hv) != srv.self_slot:
        return False
    if _has_flag(cmd, tokens, ntokens, b'b'):
        nkey = pc_base64_decode(<const unsigned char *>key, nkey, decoded, sizeof(decoded))
        key = <const char *>decoded
    if nkey == 0 or pc_store_slot_hv(c.s, key, nkey, hv) != NULL:
        return False
    n = owners_of(srv, hv, owners)
    if n < 2:
        return False
    srv.fills += 1
    m = ReadMerge.__new__(ReadMerge)
    m.srv = srv
    m.hv = hv
    m.ring = srv.ring_ref
    m.fill = True
    m.key = PyBytes_FromStringAndSize(key, nkey)
    m.keytok, m.flag = key_field(key, nkey)
    m.nowners = <uint8_t>n
    for i in range(n):
        m.owners[i] = owners[i]
    m.answers = []
    m.conn = c
    c.filling = True
    m.ask_all()             # may end at once (no owner reachable): then the line runs now
    return True


cdef void fill_done(ReadMerge m):
    """The owners answered (or could not): the newest copy is stored here, and the request
    that waited runs, with what followed it."""
    cdef Connection c = m.conn
    cdef int had = 0
    cdef uint64_t held = 0
    cdef const char *key = m.key
    if m.best_version:
        pc_store_apply_hv(m.srv.s, key, len(m.key), m.hv, m.best_flags,
                          m.best_exptime, b"" if m.best_value is None else m.best_value,
                          0 if m.best_value is None else len(m.best_value), m.best_version,
                          m.best_value is None, &had, &held)
    c.filling = False
    c.filled = True
    c.filled_hv = m.hv
    if c.transport is not None and not c.busy:
        c._run()
        if c.eof:
            out_drain(c)      # a half-closed client: closed once everything is answered


cdef class Deferred:
    """A write held back behind a read of its key (see Connection.reads)."""
    cdef ServerState srv
    cdef object ring        # `slot` is one of its owners
    cdef unsigned slot
    cdef Hole hole
    cdef uint32_t hv
    cdef bytes line, data
    cdef bint quiet, hop     # hop: a peer's request routed on (see _route.pxi)

    def __call__(self):
        cdef const char *tail = NULL
        cdef size_t ntail = 0
        if self.data is not None:
            tail = self.data
            ntail = len(self.data)
        if self.hop:
            self.srv.link_in(self.ring, self.slot).send_waiter(None, self.hv,
                                                               b"mn P\r\n", 6)
        self.srv.link_in(self.ring, self.slot).send(
            self.hole, self.hv, PyBytes_AS_STRING(self.line), PyBytes_GET_SIZE(self.line),
            tail, ntail, self.quiet)
        fence(self.srv, self.ring, self.slot, self.hv)


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
    d.srv = c.srv
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
