# Forwarding, included by _coord.pyx: a request for a key another node owns goes to that
# node over a peer link and leaves a hole for its reply; a plain write of a replicated key
# goes to every owner (_writes.pxi); a get's key to an owner, or to all of them (_merge.pxi).

# How a single-key command meets replication (see _quorum.pxi and _writes.pxi).
DEF KIND_READ = 0       # any owner answers (this node when it is one)
DEF KIND_PLAIN = 1      # versioned here, sent to every owner
DEF KIND_COND = 2       # runs on the first owner, which replicates its result


cdef int command_kind(pc_cmd cmd, pc_token *tokens, size_t ntokens) noexcept:
    cdef size_t i, start
    cdef char f
    if cmd == PC_CMD_SET or cmd == PC_CMD_DELETE or cmd == PC_CMD_TOUCH:
        return KIND_PLAIN
    if cmd == PC_CMD_ME:
        return KIND_READ
    if cmd < PC_CMD_MG or cmd == PC_CMD_MA:
        return KIND_COND
    start = 3 if cmd == PC_CMD_MS else 2
    for i in range(start, ntokens - 1):
        f = tokens[i].value[0]
        if f == b'C' or f == b'I' or (f == b'M' and tokens[i].length == 2
                                       and tokens[i].value[1] != b'S'):
            return KIND_COND
        if cmd == PC_CMD_MG and (f == b'N' or f == b'T'):
            return KIND_COND
    return KIND_READ if cmd == PC_CMD_MG else KIND_PLAIN


cdef bint has_version_flag(pc_cmd cmd, pc_token *tokens, size_t ntokens) noexcept:
    cdef size_t i
    for i in range(3 if cmd == PC_CMD_MS else 2, ntokens - 1):
        if tokens[i].value[0] == b'E':
            return True
    return False

cdef bint route_command(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                        uint32_t hv):
    """The owner test of a single-key command. True when the request was answered by its
    owners; a storage command is only marked (c.p.owner, c.p.fanout) and reads its value in
    its arm first. False: the command runs here."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef unsigned slot, n
    cdef uint16_t owners[MAX_REPLICAS]
    cdef int kind = KIND_READ
    cdef size_t i, start
    cdef bint quiet = False
    cdef bytes line
    cdef Hole h
    c.p.fanout = False
    if tokens[ntokens - 1].value != NULL:
        return False    # more tokens than a line of this command has: it answers an error
    if cmd >= PC_CMD_MG and cmd != PC_CMD_ME and has_version_flag(cmd, tokens, ntokens):
        return False    # E is for peer links only: refused here, as memcached would
    if co.replicas > 1:
        n = owners_of(co, hv, owners)
        kind = command_kind(cmd, tokens, ntokens)
        if pending(c, hv):
            kind = KIND_COND        # behind a write of this connection at the first owner
        elif kind == KIND_PLAIN and n > 1:
            if cmd == PC_CMD_SET or cmd == PC_CMD_MS:
                c.p.fanout = True
                return False
            return fanout_command(c, cmd, tokens, ntokens, hv, owners, n)
        if kind == KIND_READ and is_owner(co, owners, n):
            return False
        slot = owners[0]
        if kind != KIND_READ and <int>slot != co.self_slot:
            note_pending(c, hv)
    else:
        slot = pc_ring_primary(co.ring, hv)
    if <int>slot == co.self_slot:
        return False
    if cmd <= PC_CMD_TOUCH:
        quiet = ntokens >= 4 and _is(tokens[ntokens - 2].value, b"noreply")
    elif cmd != PC_CMD_ME:
        start = 3 if cmd == PC_CMD_MS else 2
        for i in range(start, ntokens - 1):
            if tokens[i].value[0] == b'q':
                quiet = True
    line = _join(tokens, ntokens)
    if cmd == PC_CMD_MS or PC_CMD_SET <= cmd <= PC_CMD_CAS:
        c.p.owner = slot
        c.p.quiet = quiet
        c.p_line = line
        c.p_ring = co.ring_ref     # the value may come after the next ring
        return False
    co.forwarded += 1
    h = out_hole(c, HK_RAW)
    if co.replicas > 1 and defer_behind_read(c, co.ring_ref, slot, h, hv, line, None, quiet,
                                              kind == KIND_READ):
        return True
    mark_hop(c, co.link(slot), hv)
    co.link(slot).send(h, hv, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), NULL, 0,
                        quiet)
    if co.replicas > 1 and kind != KIND_READ:
        fence(co, co.ring_ref, slot, hv)
    return True


cdef bytes _join(pc_token *tokens, size_t ntokens):
    # memcached's tokenizer collapses spaces, so single spaces give the same tokens.
    cdef list parts = []
    cdef size_t i
    for i in range(ntokens - 1):
        parts.append(PyBytes_FromStringAndSize(tokens[i].value, tokens[i].length))
    return b" ".join(parts) + b"\r\n"


cdef void route_store(Connection c, const char *data, size_t n):
    """A storage command whose value is complete goes to its owner: line and value in one
    copy into the link's buffer."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef bytes line = c.p_line
    cdef Hole h = out_hole(c, HK_RAW)
    c.p_line = None
    co.forwarded += 1
    if co.replicas > 1 and defer_behind_read(c, c.p_ring, <unsigned>c.p.owner, h, c.p.hv,
                                                line, PyBytes_FromStringAndSize(data, n),
                                                c.p.quiet):
        return
    mark_hop(c, co.link_in(c.p_ring, <unsigned>c.p.owner), c.p.hv)
    co.link_in(c.p_ring, <unsigned>c.p.owner).send(h, c.p.hv, PyBytes_AS_STRING(line),
                                                    PyBytes_GET_SIZE(line), data, n,
                                                    c.p.quiet)
    fence(co, c.p_ring, <unsigned>c.p.owner, c.p.hv)


cdef void drop_pending_key(Connection c):
    """memcached deletes the key of a set too large to store: here, or at its owner (the key
    travels base64, whatever its bytes)."""
    cdef unsigned char enc[400]
    cdef size_t n
    if c.p.owner < 0:
        pc_store_delete_hv(c.s, c.p.key, c.p.nkey, c.p.hv, 0, 0)
        return
    n = pc_base64_encode(<const unsigned char *>c.p.key, c.p.nkey, enc, sizeof(enc))
    line = b"md " + PyBytes_FromStringAndSize(<char *>enc, n) + b" b\r\n"
    (<ClusterCoordinator>c.srv.coord).link_in(c.p_ring, <unsigned>c.p.owner).send(
        None, c.p.hv, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), NULL, 0, False)


cdef bint route_get_key(Connection c, const char *key, size_t nkey, uint32_t hv,
                        bint return_cas, bint touch, int32_t exptime):
    """One key of get/gets/gat/gats: False when it is ours; else a hole for its VALUE line
    (nothing on a miss) and an mg to its owner."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef unsigned slot
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned nown
    cdef char line[300]
    cdef size_t n = 3
    cdef Hole h
    if co.replicas > 1:
        if not touch and not pending(c, hv):
            return read_replicated(c, key, nkey, hv, return_cas)
        nown = owners_of(co, hv, owners)
        slot = owners[0]
        if touch:
            touch_replicas(c, key, nkey, hv, owners, nown, exptime)
            if <int>slot != co.self_slot:
                note_pending(c, hv)     # what follows on the key waits behind it there
    else:
        slot = pc_ring_primary(co.ring, hv)
    if <int>slot == co.self_slot:
        return False
    memcpy(line, b"mg ", 3)
    memcpy(line + n, key, nkey)
    n += nkey
    memcpy(line + n, b" v f", 4)
    n += 4
    if return_cas:
        memcpy(line + n, b" c", 2)
        n += 2
    if touch:
        memcpy(line + n, b" T", 2)
        n += 2
        if exptime < 0:
            line[n] = b'-'
            n += 1
        n += pc_u64toa(<uint64_t>(-<int64_t>exptime if exptime < 0 else exptime), line + n)
    memcpy(line + n, b"\r\n", 2)
    n += 2
    h = out_hole(c, HK_GETS if return_cas else HK_GET)
    memcpy(h.key, key, nkey)
    h.nkey = <uint8_t>nkey
    co.forwarded += 1
    if co.replicas > 1 and defer_behind_read(c, co.ring_ref, slot, h, hv,
                                              PyBytes_FromStringAndSize(line, n),
                                              None, False, not touch):
        return True
    co.link(slot).send(h, hv, line, n, NULL, 0, False)
    return True


cdef void touch_replicas(Connection c, const char *key, size_t nkey, uint32_t hv,
                         uint16_t *owners, unsigned nown, int32_t exptime):
    """gat's touch reaches every owner (the first answers the value), as a touch would, so
    that no owner keeps the old expiry to answer a later read with."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef unsigned i
    cdef bytes line = None
    for i in range(1, nown):
        if <int>owners[i] == co.self_slot:
            pc_store_touch_hv(c.s, key, nkey, hv, exptime)
            continue
        if line is None:
            keytok, flag = key_field(key, nkey)
            line = b"mg %s T%d E1%s\r\n" % (keytok, exptime, flag)
        co.link(owners[i]).send(None, hv, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line),
                                 NULL, 0, False)


cdef void route_flush_all(Connection c, int32_t delay):
    """flush_all applies to the whole cluster: every other member flushes too; the reply is
    OK once they all did (or names those that could not)."""
    cdef Hole h = out_hole(c, HK_PY)
    aw = (<ClusterCoordinator>c.srv.coord).broadcast_flush(delay, pc_store_flush_version(c.s))
    if c.noreply:
        c.noreply = False
        h.dropped = True        # no reply, but what follows still waits for it (below)
    settle(h, aw, c.srv.extensions.timeout)
    # The writes that follow must be newer than every member's cut-off: they wait until
    # the members answered theirs (the router moves this node's clock past them).
    c.barrier = True
