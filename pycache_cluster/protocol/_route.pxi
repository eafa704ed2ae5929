# Routing on the request path, included by _conn.pyx: a request for a key another node owns
# goes to that node over a peer link and leaves a hole for its reply.
#
# The owner test is native and object-free: murmur3 of the key (the hash the store uses, so
# it is computed once and passed down) looked up in the ring snapshot. A forwarded request
# is the client's own line, except a get's keys, which travel one `mg <key> v f [c]
# [T<exptime>]` each and come back as that key's VALUE line. The owner runs the very same
# command code, so its reply (errors included, noreply and q applied) is already the one the
# client must see; a request with noreply or q may have no reply at all, so the link fences
# it with mn.
#
# Peer requests. A request that arrives on a peer link was routed here by a node whose ring
# may differ from this node's. A replica's request (E: a versioned write, a read answer, a
# touch) is answered here, but for a read answer's miss while this node may still be getting
# its keys (its fill window, see _replica.pxi): that miss is NO_COPY, which the reader does
# not count among its R answers (with R + W > N, an owner that holds nothing yet must not
# outvote one that holds the newest). A client's request (no E) is answered here unless this node must
# not: it is leaving (after its hand-over walk began, every write taken here could go with
# it), it is a write that runs on the key's first owner and this node is not that (its
# result would not be replicated, or run twice), or it is a read of a key this node neither
# owns nor holds (a former owner that still holds it answers: reads stay warm through a
# join). Such a request is routed on once, as a
# client's would be, behind `mn P`: the next node answers it whatever its own ring says
# (this node's ring is the newer one), so two nodes that disagree about the ring cannot
# bounce it. A leaving node refuses the writes it cannot route on (E, or after `mn P`) with
# LEAVING, never acknowledging what it would take away.



cdef bint key_hash(pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t *hv) noexcept:
    """Sets *hv to the hash of the command's key as the store will see it (a meta 'b' key
    decoded). False when the command will not use the key (it answers an error instead)."""
    cdef unsigned char decoded[256]
    cdef size_t i, n, start
    cdef pc_token *key = &tokens[1]
    if key.length > KEY_MAX:
        return False
    if cmd == PC_CMD_ME:
        if ntokens >= 4 and tokens[2].length == 1 and tokens[2].value[0] == b'b':
            return _decoded_hash(key, decoded, hv)
    elif PC_CMD_MG <= cmd <= PC_CMD_MA:
        start = 3 if cmd == PC_CMD_MS else 2
        for i in range(start, ntokens - 1):
            if tokens[i].value[0] == b'b':
                return _decoded_hash(key, decoded, hv)
    hv[0] = pc_hash(key.value, key.length, 0)
    return True


cdef inline bint _decoded_hash(pc_token *key, unsigned char *buf, uint32_t *hv) noexcept:
    cdef size_t n = pc_base64_decode(<const unsigned char *>key.value, key.length, buf, 256)
    if n == 0:
        return False
    hv[0] = pc_hash(buf, n, 0)
    return True


# How a single-key command meets replication (see _replica.pxi).
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


# What a peer request gets (see "Peer requests" above).
DEF PEER_HERE = 0
DEF PEER_ROUTE = 1
DEF PEER_REFUSE = 2
DEF PEER_NO_COPY = 3

cdef const char *LEAVING = b"SERVER_ERROR node leaving the cluster\r\n"
cdef const char *NO_COPY = b"SERVER_ERROR no copy yet\r\n"


cdef int peer_request(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                      uint32_t hv, bint hop) noexcept:
    cdef ServerState srv = c.srv
    cdef bint write = command_kind(cmd, tokens, ntokens) != KIND_READ
    if cmd >= PC_CMD_MG and cmd != PC_CMD_ME and has_version_flag(cmd, tokens, ntokens):
        if srv.leaving and (cmd != PC_CMD_MG or write):
            srv.rerouted += 1
            return PEER_REFUSE
        if cmd == PC_CMD_MG and not write and srv.fill_until and not holds(c, cmd, tokens,
                                                                           ntokens, hv):
            if pc_lat_now() < srv.fill_until:
                return PEER_NO_COPY
            srv.fill_until = 0
        return PEER_HERE
    if hop:
        return PEER_REFUSE if srv.leaving and write else PEER_HERE
    if srv.leaving or (<int>pc_ring_primary(srv.ring, hv) != srv.self_slot and
                       (write or not owns_or_holds(c, cmd, tokens, ntokens, hv))):
        srv.rerouted += 1
        return PEER_ROUTE
    return PEER_HERE


cdef bint owns_or_holds(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                        uint32_t hv) noexcept:
    cdef uint16_t owners[MAX_REPLICAS]
    if c.srv.replicas > 1 and is_owner(c.srv, owners, owners_of(c.srv, hv, owners)):
        return True
    return holds(c, cmd, tokens, ntokens, hv, True)


cdef bint holds(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t hv,
                bint live=False) noexcept:
    """This node holds something of the key: an item (live only) or a tombstone too."""
    cdef unsigned char decoded[256]
    cdef const char *key = tokens[1].value
    cdef size_t nkey = tokens[1].length
    if _has_flag(cmd, tokens, ntokens, b'b'):
        nkey = pc_base64_decode(<const unsigned char *>key, nkey, decoded, sizeof(decoded))
        key = <const char *>decoded
    if nkey == 0:
        return False
    if live:
        return pc_store_find_hv(c.s, key, nkey, hv) != NULL
    return pc_store_slot_hv(c.s, key, nkey, hv) != NULL


cdef inline void mark_hop(Connection c, Link link, uint32_t hv):
    """Before a peer's request routed on: the next node answers it, whatever its ring."""
    if c.peer:
        link.send_waiter(None, hv, b"mn P\r\n", 6)     # its MN: nobody waits for it


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


cdef bint route_command(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                        uint32_t hv):
    """The owner test of a single-key command. True when the request was answered by its
    owners; a storage command is only marked (c.p.owner, c.p.fanout) and reads its value in
    its arm first. False: the command runs here."""
    cdef ServerState srv = c.srv
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
    if srv.replicas > 1:
        n = owners_of(srv, hv, owners)
        kind = command_kind(cmd, tokens, ntokens)
        if pending(c, hv):
            kind = KIND_COND        # behind a write of this connection at the first owner
        elif kind == KIND_PLAIN and n > 1:
            if cmd == PC_CMD_SET or cmd == PC_CMD_MS:
                c.p.fanout = True
                return False
            return fanout_command(c, cmd, tokens, ntokens, hv, owners, n)
        if kind == KIND_READ and is_owner(srv, owners, n):
            return False
        slot = owners[0]
        if kind != KIND_READ and <int>slot != srv.self_slot:
            note_pending(c, hv)
    else:
        slot = pc_ring_primary(srv.ring, hv)
    if <int>slot == srv.self_slot:
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
        c.p_ring = srv.ring_ref     # the value may come after the next ring
        return False
    srv.forwarded += 1
    h = out_hole(c, HK_RAW)
    if srv.replicas > 1 and defer_behind_read(c, srv.ring_ref, slot, h, hv, line, None, quiet,
                                              kind == KIND_READ):
        return True
    mark_hop(c, srv.link(slot), hv)
    srv.link(slot).send(h, hv, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), NULL, 0,
                        quiet)
    if srv.replicas > 1 and kind != KIND_READ:
        fence(srv, srv.ring_ref, slot, hv)
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
    cdef bytes line = c.p_line
    cdef Hole h = out_hole(c, HK_RAW)
    c.p_line = None
    c.srv.forwarded += 1
    if c.srv.replicas > 1 and defer_behind_read(c, c.p_ring, <unsigned>c.p.owner, h, c.p.hv,
                                                line, PyBytes_FromStringAndSize(data, n),
                                                c.p.quiet):
        return
    mark_hop(c, c.srv.link_in(c.p_ring, <unsigned>c.p.owner), c.p.hv)
    c.srv.link_in(c.p_ring, <unsigned>c.p.owner).send(h, c.p.hv, PyBytes_AS_STRING(line),
                                                      PyBytes_GET_SIZE(line), data, n,
                                                      c.p.quiet)
    fence(c.srv, c.p_ring, <unsigned>c.p.owner, c.p.hv)


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
    c.srv.link_in(c.p_ring, <unsigned>c.p.owner).send(None, c.p.hv, PyBytes_AS_STRING(line),
                                                      PyBytes_GET_SIZE(line), NULL, 0, False)


cdef bint route_get_key(Connection c, const char *key, size_t nkey, uint32_t hv,
                        bint return_cas, bint touch, int32_t exptime):
    """One key of get/gets/gat/gats: False when it is ours; else a hole for its VALUE line
    (nothing on a miss) and an mg to its owner."""
    cdef ServerState srv = c.srv
    cdef unsigned slot
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned nown
    cdef char line[300]
    cdef size_t n = 3
    cdef Hole h
    if srv.replicas > 1:
        if not touch and not pending(c, hv):
            return read_replicated(c, key, nkey, hv, return_cas)
        nown = owners_of(srv, hv, owners)
        slot = owners[0]
        if touch:
            touch_replicas(c, key, nkey, hv, owners, nown, exptime)
            if <int>slot != srv.self_slot:
                note_pending(c, hv)     # what follows on the key waits behind it there
    else:
        slot = pc_ring_primary(srv.ring, hv)
    if <int>slot == srv.self_slot:
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
    srv.forwarded += 1
    if srv.replicas > 1 and defer_behind_read(c, srv.ring_ref, slot, h, hv,
                                              PyBytes_FromStringAndSize(line, n),
                                              None, False, not touch):
        return True
    srv.link(slot).send(h, hv, line, n, NULL, 0, False)
    return True


cdef void touch_replicas(Connection c, const char *key, size_t nkey, uint32_t hv,
                         uint16_t *owners, unsigned nown, int32_t exptime):
    """gat's touch reaches every owner (the first answers the value), as a touch would, so
    that no owner keeps the old expiry to answer a later read with."""
    cdef ServerState srv = c.srv
    cdef unsigned i
    cdef bytes line = None
    for i in range(1, nown):
        if <int>owners[i] == srv.self_slot:
            pc_store_touch_hv(c.s, key, nkey, hv, exptime)
            continue
        if line is None:
            keytok, flag = key_field(key, nkey)
            line = b"mg %s T%d E1%s\r\n" % (keytok, exptime, flag)
        srv.link(owners[i]).send(None, hv, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line),
                                 NULL, 0, False)


cdef void route_flush_all(Connection c, int32_t delay):
    """flush_all applies to the whole cluster: every other member flushes too; the reply is
    OK once they all did (or names those that could not)."""
    cdef Hole h = out_hole(c, HK_PY)
    aw = c.srv.cluster.flush_all(delay, pc_store_flush_version(c.s))
    if c.noreply:
        c.noreply = False
        h.dropped = True        # no reply, but what follows still waits for it (below)
    settle(h, aw, c.srv.extensions.timeout)
    # The writes that follow must be newer than every member's cut-off: they wait until
    # the members answered theirs (the router moves this node's clock past them).
    c.barrier = True
