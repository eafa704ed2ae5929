# Replicated writes, included by _coord.pyx: the first owner's replication of what ran
# here, and the coordinator's plain writes sent to every owner (see _quorum.pxi).

# -- the first owner's replication of what ran here ----------------------------------------

cdef void replicate_local(Connection c, const char *key, size_t nkey, uint32_t hv,
                          size_t start, uint64_t before):
    """After a write ran here (the key's first owner): if the key's version moved, its new
    state goes to the other owners, and the reply made since `start` waits for W - 1."""
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n = owners_of(co, hv, owners)
    cdef pc_item *it = pc_store_slot_hv(c.s, key, nkey, hv)
    cdef Quorum q
    cdef bytes reply
    if it == NULL or it.version == before or n < 2 or not is_owner(co, owners, n):
        return
    q = new_quorum(c, hv, owners, n, <unsigned>co.write_quorum - 1)
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
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n
    cdef pc_item *it = pc_store_slot_hv(c.s, key, nkey, hv)
    cdef pc_reltime rel
    cdef int64_t exptime
    cdef Quorum q
    if it == NULL or it.version != before:
        return
    n = owners_of(co, hv, owners)
    if n < 2 or owners[0] != co.self_slot:
        return
    rel = it.exptime
    # A T in the past left a tombstone at the item's version (expired items do here).
    exptime = -1 if it.bits & PC_ITEM_TOMBSTONE or rel != 0 and rel <= pc_store_now(c.s) \
        else 0 if rel == 0 else pc_store_unix_time(c.s, rel)
    q = new_quorum(c, hv, owners, n, <unsigned>co.write_quorum - 1)
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
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef uint16_t owners[MAX_REPLICAS]
    cdef unsigned n = owners_of(co, c.p.hv, owners)
    cdef Quorum q = new_quorum(c, c.p.hv, owners, n, <unsigned>co.write_quorum)
    cdef pc_reltime rel = pc_store_exptime(c.s, c.p.exptime)
    cdef size_t start
    cdef bytes yes
    q.local = is_owner(co, owners, n)
    q.key, q.flag = key_field(c.p.key, c.p.nkey, c.p.meta and c.p.key_binary)
    q.flags = c.p.flags
    # Absolute, so that every owner expires it at the same moment; already expired stays so.
    q.exptime = -1 if rel == 1 else pc_store_unix_time(c.s, rel) if rel else 0
    q.value = PyBytes_FromStringAndSize(data, vlen - 2)
    q.version = pc_store_next_version(c.s)
    c.srv.cmd_set += 1
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
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
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
        q = new_quorum(c, hv, owners, n, <unsigned>co.write_quorum)
        q.local = is_owner(co, owners, n)
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
        q = new_quorum(c, hv, owners, n, <unsigned>co.write_quorum)
        q.key, q.flag = key_field(key.value, key.length)
        q.value = b"touch"
        if is_owner(co, owners, n):
            c.srv.cmd_touch += 1
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
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
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
    q = new_quorum(c, hv, owners, n, <unsigned>co.write_quorum)
    q.local = is_owner(co, owners, n)
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
