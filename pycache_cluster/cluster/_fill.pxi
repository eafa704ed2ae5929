# Fills, included by _coord.pyx: a new first owner's conditional write waits for the copies.

# -- fills: a new first owner's conditional write on a key it has not received yet ---------
#
# After a ring change this node may be a key's first owner before the hand-over brought it
# the key: run there, a cas would answer NOT_FOUND and an add store over the others' value.
# For a while after each ring change (ClusterCoordinator.fill_until), a conditional write that runs
# here as first owner on a key this node holds nothing of (no item, no tombstone) first asks
# the other owners, as a read would (a ReadMerge without a hole), stores the newest copy
# here, and only then runs. The connection reads no further meanwhile: the request's line
# stays in front of its read buffer and is read again, in order, once the copies are in.

cdef bint fill_first(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t hv,
                     bint hop):
    """True when the request must wait for a fill, which has begun."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef unsigned char decoded[256]
    cdef const char *key = tokens[1].value
    cdef size_t nkey = tokens[1].length
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n, i
    cdef ReadMerge m
    if c.filled and c.filled_hv == hv:
        c.filled = False        # its fill is done: it runs now, whatever came back
        return False
    if co.replicas < 2 or c.p.owner >= 0 or c.p.fanout or nkey > KEY_MAX or \
            command_kind(cmd, tokens, ntokens) != KIND_COND or \
            cmd >= PC_CMD_MG and has_version_flag(cmd, tokens, ntokens):
        return False
    if pc_lat_now() >= co.fill_until:
        co.fill_until = 0
        return False
    if not hop and <int>pc_ring_primary(co.ring, hv) != co.self_slot:
        return False
    if has_flag(cmd, tokens, ntokens, b'b'):
        nkey = pc_base64_decode(<const unsigned char *>key, nkey, decoded, sizeof(decoded))
        key = <const char *>decoded
    if nkey == 0 or pc_store_slot_hv(c.s, key, nkey, hv) != NULL:
        return False
    n = owners_of(co, hv, owners)
    if n < 2:
        return False
    co.fills += 1
    m = ReadMerge.__new__(ReadMerge)
    m.co = co
    m.hv = hv
    m.ring = co.ring_ref
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
        pc_store_apply_hv(m.co.s, key, len(m.key), m.hv, m.best_flags,
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
