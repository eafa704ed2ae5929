# memcached's meta protocol commands (mg ms md ma me; mn is in the switch), included by
# _conn.pyx. Flags are handled in request order, as memcached does, so replies match its
# bytes flag for flag.

cdef void meta_key(Connection c, const char *key, size_t nkey, bint binary) noexcept:
    cdef unsigned char enc[400]
    cdef size_t n
    pc_wbuf_add(&c.wbuf, b" k", 2)
    if not binary:
        pc_wbuf_add(&c.wbuf, key, nkey)
    else:
        n = pc_base64_encode(<const unsigned char *>key, nkey, enc, sizeof(enc))
        pc_wbuf_add(&c.wbuf, enc, n)
        pc_wbuf_add(&c.wbuf, b" b", 2)


cdef inline void meta_opaque(Connection c, pc_token *t) noexcept:
    pc_wbuf_add(&c.wbuf, b" ", 1)
    pc_wbuf_add(&c.wbuf, t.value, t.length)


cdef inline void meta_ttl(Connection c, pc_item *it) noexcept:
    pc_wbuf_add(&c.wbuf, b" t", 2)
    if it.exptime == 0:
        pc_wbuf_add(&c.wbuf, b"-1", 2)
    else:
        pc_wbuf_add_u64(&c.wbuf, <uint32_t>(it.exptime - pc_store_now(c.s)))


cdef bint meta_echo(Connection c, pc_token *tokens, size_t ntokens, size_t start,
                    const char *key, size_t nkey, bint key_binary) noexcept:
    """The O and k flags of a meta reply that carries no other return flags. False once a
    too-long opaque has been answered (the reply begun at `start` is dropped)."""
    cdef size_t i
    cdef char ch
    for i in range(2, ntokens - 1):
        ch = tokens[i].value[0]
        if ch == b'O':
            if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                c.wbuf.len = start
                c._out_err(b"CLIENT_ERROR opaque token too long")
                return False
            meta_opaque(c, &tokens[i])
        elif ch == b'k':
            meta_key(c, key, nkey, key_binary)
    return True


cdef void meta_get(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef pc_meta_flags of
    cdef const char *errstr = b"CLIENT_ERROR bad command line format"
    cdef pc_item *it
    cdef size_t i, start, nkey
    cdef bint created = False, won = False, ttl_set = False
    cdef uint64_t version
    cdef char *key
    cdef pc_status st
    cdef char ch
    cdef pc_reltime exptime
    memset(&of, 0, sizeof(of))
    of.allow_version = c.peer
    if ntokens < 3:
        c._out(b"ERROR")
        return
    if tokens[1].length > KEY_MAX:
        c._out_err(b"CLIENT_ERROR bad command line format")
        return
    if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
        c._out_err(b"CLIENT_ERROR options flags are too long")
        return
    if pc_meta_preparse(tokens, 2, &of, &errstr) != 0:
        c._out_err(errstr)
        return
    c.noreply = of.no_reply
    key = tokens[1].value
    nkey = tokens[1].length
    it = pc_store_peek_hv(c.s, key, nkey, hv)
    if it == NULL and of.vivify:
        # Created without a TTL: N sets it in flag order (so "t N30" shows t-1).
        st = pc_store_store_hv(c.s, PC_ADD, key, nkey, hv, 0, 0, b"", 0, 0, 0, &it)
        if st == PC_STORED:
            # Not marked binary, as in memcached: its k flag then shows the raw key.
            created = True
        else:
            it = NULL
    start = c.wbuf.len
    if it == NULL:
        c.srv.cmd_get += 1
        pc_store_note_get(c.s, NULL, 0)
        pc_wbuf_add(&c.wbuf, b"EN", 2)
        if of.has_version:
            # A replicated read (E, peer links only): the version of the tombstone or the
            # expired item here, which may be newer than another owner's value.
            version = slot_version(c, key, nkey, hv)
            if version:
                pc_wbuf_add(&c.wbuf, b" c", 2)
                pc_wbuf_add_u64(&c.wbuf, version)
        if not meta_echo(c, tokens, ntokens, start, key, nkey, of.key_binary):
            return
        pc_wbuf_add(&c.wbuf, b"\r\n", 2)
        if c.noreply:
            c.wbuf.len = start
        return
    if of.value:
        pc_wbuf_add(&c.wbuf, b"VA ", 3)
        pc_wbuf_add_u64(&c.wbuf, it.nbytes)
    else:
        pc_wbuf_add(&c.wbuf, b"HD", 2)
    for i in range(2, ntokens - 1):
        ch = tokens[i].value[0]
        if ch == b'T':
            ttl_set = True
            it.exptime = pc_store_exptime(c.s, of.exptime)
        elif ch == b'N':
            if created:
                it.exptime = pc_store_exptime(c.s, of.autoviv_exptime)
                won = True
        elif ch == b'R':
            if (not (it.bits & PC_ITEM_TOKEN_SENT) and not created and it.exptime != 0
                    and it.exptime < pc_store_exptime(c.s, of.recache_time)):
                won = True
        elif ch == b's':
            pc_wbuf_add(&c.wbuf, b" s", 2)
            pc_wbuf_add_u64(&c.wbuf, it.nbytes)
        elif ch == b't':
            meta_ttl(c, it)
        elif ch == b'c':
            pc_wbuf_add(&c.wbuf, b" c", 2)
            pc_wbuf_add_u64(&c.wbuf, it.version)
        elif ch == b'f':
            pc_wbuf_add(&c.wbuf, b" f", 2)
            pc_wbuf_add_u64(&c.wbuf, pc_item_flags(it))
        elif ch == b'l':
            pc_wbuf_add(&c.wbuf, b" l", 2)
            pc_wbuf_add_u64(&c.wbuf, <uint32_t>(pc_store_now(c.s) - it.time))
        elif ch == b'h':
            if it.bits & PC_ITEM_FETCHED:
                pc_wbuf_add(&c.wbuf, b" h1", 3)
            else:
                pc_wbuf_add(&c.wbuf, b" h0", 3)
        elif ch == b'O':
            if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                c.wbuf.len = start
                c._out_err(b"CLIENT_ERROR opaque token too long")
                return
            meta_opaque(c, &tokens[i])
        elif ch == b'k':
            meta_key(c, pc_item_key(it), it.nkey, it.bits & PC_ITEM_KEY_BINARY)
    if it.bits & PC_ITEM_TOKEN_SENT:
        pc_wbuf_add(&c.wbuf, b" Z", 2)
    if it.bits & PC_ITEM_STALE:
        pc_wbuf_add(&c.wbuf, b" X", 2)
        if not (it.bits & PC_ITEM_TOKEN_SENT):
            won = True
    if won:
        pc_wbuf_add(&c.wbuf, b" W", 2)
        it.bits |= PC_ITEM_TOKEN_SENT
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    if of.value:
        pc_wbuf_add(&c.wbuf, pc_item_value(it), it.nbytes)
        pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    c._pin(it)
    # Counting and the LRU bump come last, so h and l saw the item as it was. A T flag
    # counts as a touch; the flags already set the TTL in their order.
    if ttl_set:
        c.srv.cmd_touch += 1
        pc_store_note_touch(c.s, it)
    else:
        c.srv.cmd_get += 1
        pc_store_note_get(c.s, it, not of.no_update)


cdef void meta_set(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef pc_meta_flags of
    cdef const char *errstr = b"CLIENT_ERROR bad command line format"
    cdef int32_t vlen = 0
    cdef size_t i
    cdef bint has_error = False
    cdef pc_store_mode mode = PC_SET
    cdef char ch
    memset(&of, 0, sizeof(of))
    if ntokens < 3:
        c._out(b"ERROR")
        return
    if tokens[1].length > KEY_MAX or ntokens == 3:
        c._out_err(b"CLIENT_ERROR bad command line format")
        return
    if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
        c._out_err(b"CLIENT_ERROR options flags too long")
        return
    if not pc_strtol(tokens[2].value, &vlen) or vlen < 0 or vlen > 2147483647 - 2:
        c._out_err(b"CLIENT_ERROR bad command line format")
        return
    c.p.vlen = <size_t>vlen + 2
    of.allow_version = c.peer
    if pc_meta_preparse(tokens, 3, &of, &errstr) != 0:
        c._out_err(errstr)
        c._swallow(c.p.vlen)
        return
    c.p.version = of.version if of.has_version else 0
    c.noreply = of.no_reply
    c.p.nret = 0
    c.p.nopaque = 0
    for i in range(2, ntokens - 1):
        ch = tokens[i].value[0]
        if ch == b'O':
            if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                errstr = b"CLIENT_ERROR opaque token too long"
                has_error = True
                break
            memcpy(c.p.opaque, tokens[i].value, tokens[i].length)
            c.p.nopaque = tokens[i].length
            c.p.ret[c.p.nret] = b'O'
            c.p.nret += 1
        elif ch == b'k' or ch == b'c':
            c.p.ret[c.p.nret] = ch
            c.p.nret += 1
    if of.mode == 0 or of.mode == b'S':
        mode = PC_SET
    elif of.mode == b'E':
        mode = PC_ADD
    elif of.mode == b'A':
        mode = PC_APPEND
    elif of.mode == b'P':
        mode = PC_PREPEND
    elif of.mode == b'R':
        mode = PC_REPLACE
    else:
        c._out_err(b"CLIENT_ERROR invalid mode for ms M token")
        c._swallow(c.p.vlen)
        return
    if of.has_cas and (mode == PC_SET or mode == PC_REPLACE):
        mode = PC_CAS_STALE if of.set_stale else PC_CAS
    if has_error:
        c._out_err(errstr)
        c._swallow(c.p.vlen)
        return
    memcpy(c.p.key, tokens[1].value, tokens[1].length)
    c.p.nkey = tokens[1].length
    c.p.hv = hv
    c.p.key_binary = of.key_binary
    if pc_item_memcached_size(c.p.nkey, of.client_flags, vlen) > pc_store_item_size_max(c.s):
        c.srv.store_too_large += 1
        drop_key(c)
        c._out_err(b"SERVER_ERROR object too large for cache")
        c._swallow(c.p.vlen)
        return
    c.p.meta = True
    c.p.cmd = PC_CMD_MS
    c.p.mode = mode
    c.p.flags = of.client_flags
    c.p.exptime = of.exptime
    c.p.cas = of.req_cas_id
    c.p.noreply = of.no_reply
    c.p.set_stale = of.set_stale
    c.noreply = False
    c.state = ST_NREAD


cdef void meta_set_done(Connection c, pc_status st, pc_item *it):
    cdef int i
    if st == PC_STORED:
        if c.p.noreply:
            return
        if c.p.key_binary:
            it.bits |= PC_ITEM_KEY_BINARY
        pc_wbuf_add(&c.wbuf, b"HD", 2)
    elif st == PC_EXISTS:
        pc_wbuf_add(&c.wbuf, b"EX", 2)
    elif st == PC_NOT_FOUND:
        pc_wbuf_add(&c.wbuf, b"NF", 2)
    elif st == PC_NOT_STORED:
        pc_wbuf_add(&c.wbuf, b"NS", 2)
    elif st == PC_NO_MEMORY:
        c.srv.store_no_memory += 1
        c._out_err(b"SERVER_ERROR out of memory storing object")
        return
    else:
        c._out_err(b"SERVER_ERROR Unhandled storage type.")
        return
    for i in range(c.p.nret):
        if c.p.ret[i] == b'O':
            pc_wbuf_add(&c.wbuf, b" ", 1)
            pc_wbuf_add(&c.wbuf, c.p.opaque, c.p.nopaque)
        elif c.p.ret[i] == b'k':
            meta_key(c, c.p.key, c.p.nkey, c.p.key_binary)
        elif c.p.ret[i] == b'c':
            pc_wbuf_add(&c.wbuf, b" c", 2)
            pc_wbuf_add_u64(&c.wbuf, it.version if st == PC_STORED and it != NULL else 0)
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)


cdef void meta_apply_done(Connection c, const char *data, size_t nbytes):
    """A replica's write (ms ... E<version>, peer links only): stored last-write-wins at
    exactly that version. HD when it holds the write (now or already), EX when it holds a
    newer one."""
    cdef int had = 0
    cdef uint64_t held = 0
    cdef pc_status st = pc_store_apply_hv(c.s, c.p.key, c.p.nkey, c.p.hv, c.p.flags,
                                          c.p.exptime, data, nbytes, c.p.version, 0, &had,
                                          &held)
    if st == PC_STORED:
        if c.p.key_binary:
            mark_binary(c.s, c.p.key, c.p.nkey, c.p.hv)
        pc_wbuf_add(&c.wbuf, b"HD\r\n", 4)
    elif st == PC_EXISTS:
        pc_wbuf_add(&c.wbuf, b"EX c", 4)
        pc_wbuf_add_u64(&c.wbuf, held)
        pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    elif st == PC_TOO_LARGE:
        c._out_err(b"SERVER_ERROR object too large for cache")
    else:
        c.srv.store_no_memory += 1
        c._out_err(b"SERVER_ERROR out of memory storing object")


cdef bint meta_begin(Connection c, pc_token *tokens, size_t ntokens,
                     pc_meta_flags *of) noexcept:
    """md's and ma's shared checks and flag parse, with their error lines (memcached's
    process_mdelete_command and process_marithmetic_command open alike). False once an
    error has been answered."""
    cdef const char *errstr = b"CLIENT_ERROR bad command line format"
    memset(of, 0, sizeof(of[0]))
    of.delta = 1                # ma's default step; md has no D flag
    of.allow_version = c.peer
    if ntokens < 3:
        c._out(b"ERROR")
        return False
    if tokens[1].length > KEY_MAX:
        c._out(b"CLIENT_ERROR bad command line format")
        return False
    if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
        c._out(b"CLIENT_ERROR options flags too long")
        return False
    if pc_meta_preparse(tokens, 2, of, &errstr) != 0:
        c._out_err(b"CLIENT_ERROR invalid or duplicate flag")
        return False
    c.noreply = of.no_reply
    return True


cdef void meta_delete(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef pc_meta_flags of
    cdef size_t start
    cdef pc_status st
    cdef int had = 0
    cdef uint64_t held = 0
    if not meta_begin(c, tokens, ntokens, &of):
        return
    start = c.wbuf.len
    pc_wbuf_add(&c.wbuf, b"XX", 2)
    if not meta_echo(c, tokens, ntokens, start, tokens[1].value, tokens[1].length,
                     of.key_binary):
        return
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    if of.has_version:
        # A replica's delete: a tombstone at exactly that version, last-write-wins.
        c.wbuf.len = start
        st = pc_store_apply_hv(c.s, tokens[1].value, tokens[1].length, hv, 0, 0, b"", 0,
                               of.version, 1, &had, &held)
        if st == PC_EXISTS:
            pc_wbuf_add(&c.wbuf, b"EX c", 4)
            pc_wbuf_add_u64(&c.wbuf, held)
        else:
            pc_wbuf_add(&c.wbuf, b"HD" if had else b"NF", 2)
        pc_wbuf_add(&c.wbuf, b"\r\n", 2)
        c.noreply = False
        return
    if of.set_stale:
        # Invalidate: the item stays, marked stale, with a new CAS (and TTL if given).
        st = pc_store_invalidate_hv(c.s, tokens[1].value, tokens[1].length, hv, of.has_cas,
                                    of.req_cas_id, of.new_ttl, of.exptime)
    else:
        st = pc_store_delete_hv(c.s, tokens[1].value, tokens[1].length, hv, of.has_cas,
                                of.req_cas_id)
    if st == PC_NOT_FOUND:
        memcpy(c.wbuf.data + start, b"NF", 2)
    elif st == PC_EXISTS:
        memcpy(c.wbuf.data + start, b"EX", 2)
    else:
        memcpy(c.wbuf.data + start, b"HD", 2)
        if c.noreply:
            c.wbuf.len = start
    c.noreply = False


cdef void meta_arith(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef pc_meta_flags of
    cdef size_t i, start, nkey, nnum = 0
    cdef pc_item *it = NULL
    cdef char *key
    cdef bint incr = True, created = False, ok_skip
    cdef uint64_t result = 0
    cdef pc_status st
    cdef char num[24]
    cdef char ch
    if not meta_begin(c, tokens, ntokens, &of):
        return
    key = tokens[1].value
    nkey = tokens[1].length
    if of.mode == 0 or of.mode == b'I' or of.mode == b'+':
        incr = True
    elif of.mode == b'D' or of.mode == b'-':
        incr = False
    else:
        c._out_err(b"CLIENT_ERROR invalid mode for ma M token")
        return
    start = c.wbuf.len
    st = pc_store_delta_hv(c.s, key, nkey, hv, incr, of.delta,
                           of.req_cas_id if of.has_cas else 0, 0,
                           c._pinned(key, nkey, hv), &result, &it)
    # memcached silences the whole reply of an applied delta under q, and only that.
    ok_skip = st == PC_OK and c.noreply
    if st == PC_OK:
        nnum = pc_u64toa(result, num)
    elif st == PC_NON_NUMERIC:
        c._out_err(b"CLIENT_ERROR cannot increment or decrement non-numeric value")
        return
    elif st == PC_NO_MEMORY:
        c._out_err(b"SERVER_ERROR out of memory")
        return
    elif st == PC_NOT_FOUND:
        if of.vivify:
            nnum = pc_u64toa(of.initial, num)
            st = pc_store_store_hv(c.s, PC_ADD, key, nkey, hv, 0, 0, num, nnum, 0, 0, &it)
            if st == PC_STORED:
                created = True
            else:
                it = NULL
                pc_wbuf_add(&c.wbuf, b"NS", 2)
        else:
            pc_wbuf_add(&c.wbuf, b"NF", 2)
    elif st == PC_EXISTS:
        it = NULL
        pc_wbuf_add(&c.wbuf, b"EX", 2)
    if it != NULL:
        if of.value:
            pc_wbuf_add(&c.wbuf, b"VA ", 3)
            pc_wbuf_add_u64(&c.wbuf, nnum)
        else:
            pc_wbuf_add(&c.wbuf, b"HD", 2)
        for i in range(2, ntokens - 1):
            ch = tokens[i].value[0]
            if ch == b'c':
                pc_wbuf_add(&c.wbuf, b" c", 2)
                pc_wbuf_add_u64(&c.wbuf, it.version)
            elif ch == b't':
                meta_ttl(c, it)
            elif ch == b'T':
                it.exptime = pc_store_exptime(c.s, of.exptime)
            elif ch == b'N':
                if created:
                    it.exptime = pc_store_exptime(c.s, of.autoviv_exptime)
            elif ch == b'O':
                if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                    c.wbuf.len = start
                    c._out_err(b"CLIENT_ERROR opaque token too long")
                    return
                meta_opaque(c, &tokens[i])
            elif ch == b'k':
                meta_key(c, key, nkey, of.key_binary)
        if of.value:
            pc_wbuf_add(&c.wbuf, b"\r\n", 2)
            pc_wbuf_add(&c.wbuf, num, nnum)
    else:
        if not meta_echo(c, tokens, ntokens, start, key, nkey, of.key_binary):
            return
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    if ok_skip:
        c.wbuf.len = start
    c.noreply = False


cdef void meta_debug(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef char *key
    cdef size_t nkey
    cdef pc_item *it
    cdef unsigned char buf[400]
    cdef size_t n, ntotal
    if ntokens < 3 or tokens[1].length > KEY_MAX:
        c._out(b"CLIENT_ERROR bad command line format")
        return
    key = tokens[1].value
    nkey = tokens[1].length
    if ntokens >= 4 and tokens[2].length == 1 and tokens[2].value[0] == b'b':
        n = pc_base64_decode_key(key, nkey)
        if n == 0:
            c._out(b"CLIENT_ERROR bad command line format")
            return
        nkey = n
    c.srv.cmd_meta += 1
    it = pc_store_peek_hv(c.s, key, nkey, hv)
    if it == NULL:
        c._out(b"EN")
        return
    pc_wbuf_add(&c.wbuf, b"ME ", 3)
    if it.bits & PC_ITEM_KEY_BINARY:
        n = pc_base64_encode(<const unsigned char *>pc_item_key(it), it.nkey, buf, sizeof(buf))
        pc_wbuf_add(&c.wbuf, buf, n)
    else:
        pc_wbuf_add(&c.wbuf, pc_item_key(it), it.nkey)
    pc_wbuf_add(&c.wbuf, b" exp=", 5)
    if it.exptime == 0:
        pc_wbuf_add(&c.wbuf, b"-1", 2)
    else:
        pc_wbuf_add_i64(&c.wbuf, <int32_t>(pc_store_now(c.s) - it.exptime))
    pc_wbuf_add(&c.wbuf, b" la=", 4)
    pc_wbuf_add_u64(&c.wbuf, <uint32_t>(pc_store_now(c.s) - it.time))
    pc_wbuf_add(&c.wbuf, b" cas=", 5)
    pc_wbuf_add_u64(&c.wbuf, it.version)
    if it.bits & PC_ITEM_FETCHED:
        pc_wbuf_add(&c.wbuf, b" fetch=yes", 10)
    else:
        pc_wbuf_add(&c.wbuf, b" fetch=no", 9)
    ntotal = pc_item_memcached_size(it.nkey, pc_item_flags(it), it.nbytes)
    pc_wbuf_add(&c.wbuf, b" cls=", 5)
    pc_wbuf_add_u64(&c.wbuf, pc_proto_slab_class(ntotal, pc_store_item_size_max(c.s)))
    pc_wbuf_add(&c.wbuf, b" size=", 6)
    pc_wbuf_add_u64(&c.wbuf, ntotal)
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)
