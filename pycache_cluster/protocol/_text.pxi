# memcached's text protocol commands (process_<cmd>_command in memcached's proto_text.c),
# included by _conn.pyx. Each answers into c.wbuf with memcached 1.6.18's exact bytes.

cdef inline void text_value_line(Connection c, pc_item *it, bint return_cas) noexcept:
    pc_wbuf_reserve(&c.wbuf, 6 + it.nkey + 48 + it.nbytes + 2)
    pc_wbuf_add(&c.wbuf, b"VALUE ", 6)
    pc_wbuf_add(&c.wbuf, pc_item_key(it), it.nkey)
    pc_wbuf_add(&c.wbuf, b" ", 1)
    pc_wbuf_add_u64(&c.wbuf, pc_item_flags(it))
    pc_wbuf_add(&c.wbuf, b" ", 1)
    pc_wbuf_add_u64(&c.wbuf, it.nbytes)
    if return_cas:
        pc_wbuf_add(&c.wbuf, b" ", 1)
        pc_wbuf_add_u64(&c.wbuf, it.version)
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    pc_wbuf_add(&c.wbuf, pc_item_value(it), it.nbytes)
    pc_wbuf_add(&c.wbuf, b"\r\n", 2)


cdef void text_get(Connection c, pc_token *tokens, size_t ntokens, bint return_cas,
                   bint touch):
    cdef pc_token *key_token = &tokens[1]
    cdef int32_t exptime = 0
    cdef pc_item *it
    cdef uint32_t hv
    cdef uint64_t holes0 = c.hole_seq
    cdef Coordinator coord = c.srv.coord if not c.peer else None
    if touch:
        if not pc_strtol(tokens[1].value, &exptime):
            c._out(b"CLIENT_ERROR invalid exptime argument")
            return
        key_token += 1
    while True:
        while key_token.length != 0:
            if key_token.length > KEY_MAX:
                # memcached drops the replies it has not written yet, then errors.
                out_drop_to_mark(c)
                c._out(b"CLIENT_ERROR bad command line format")
                return
            hv = pc_hash(key_token.value, key_token.length, 0)
            if coord is not None and coord.get_key(c, key_token.value, key_token.length, hv,
                                                   return_cas, touch, exptime):
                key_token += 1
                continue
            if touch:
                it = pc_store_touch_hv(c.s, key_token.value, key_token.length, hv, exptime)
                c.srv.cmd_touch += 1
            else:
                it = pc_store_get_hv(c.s, key_token.value, key_token.length, hv)
                c.srv.cmd_get += 1
            if it != NULL:
                text_value_line(c, it, return_cas)
            if c.srv.detail_enabled:
                pc_prefix_get(c.srv.prefix, key_token.value, key_token.length, it != NULL)
            key_token += 1
        if key_token.value == NULL:
            break
        # More keys than one tokenize pass holds: go on from where it stopped.
        ntokens = pc_tokenize(key_token.value, tokens, PC_MAX_TOKENS)
        key_token = tokens
    if c.hole_seq != holes0:
        coord.fanout_batches += 1
    pc_wbuf_add(&c.wbuf, b"END\r\n", 5)
    c._write_point()     # memcached writes out after every get (conn_mwrite)


cdef void text_update(Connection c, pc_token *tokens, size_t ntokens, pc_cmd cmd,
                      pc_store_mode mode, uint32_t hv):
    cdef uint32_t flags
    cdef int32_t exptime, vlen
    cdef uint64_t cas = 0
    c._noreply_maybe(tokens, ntokens)
    if tokens[1].length > KEY_MAX:
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if not (pc_strtoul(tokens[2].value, &flags) and pc_strtol(tokens[3].value, &exptime)
            and pc_strtol(tokens[4].value, &vlen)):
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if cmd == PC_CMD_CAS and not pc_strtoull(tokens[5].value, &cas):
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if vlen < 0 or vlen > 2147483647 - 2:
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if c.srv.detail_enabled:
        pc_prefix_set(c.srv.prefix, tokens[1].value, tokens[1].length)
    c.p.meta = False
    c.p.cmd = cmd
    c.p.mode = mode
    memcpy(c.p.key, tokens[1].value, tokens[1].length)
    c.p.nkey = tokens[1].length
    c.p.hv = hv
    c.p.flags = flags
    c.p.exptime = exptime
    c.p.cas = cas
    c.p.vlen = <size_t>vlen + 2
    c.p.noreply = c.noreply
    if pc_item_memcached_size(c.p.nkey, flags, vlen) > pc_store_item_size_max(c.s):
        c.srv.store_too_large += 1
        pc_store_note_too_large(c.s, mode, c.p.key, c.p.nkey)
        c._out(b"SERVER_ERROR object too large for cache")
        if mode == PC_SET:
            # memcached: "Avoid stale data persisting in cache because we failed alloc."
            drop_key(c)
        c._swallow(c.p.vlen)
        return
    c.state = ST_NREAD


cdef void text_update_done(Connection c, pc_status st):
    if st == PC_STORED:
        c._out(b"STORED")
    elif st == PC_EXISTS:
        c._out(b"EXISTS")
    elif st == PC_NOT_FOUND:
        c._out(b"NOT_FOUND")
    elif st == PC_NOT_STORED:
        c._out(b"NOT_STORED")
    elif st == PC_NO_MEMORY:
        c.srv.store_no_memory += 1
        c._out(b"SERVER_ERROR out of memory storing object")
    elif st == PC_TOO_LARGE:
        c.srv.store_too_large += 1
        c._out(b"SERVER_ERROR object too large for cache")
    else:
        c._out(b"SERVER_ERROR Unhandled storage type.")


cdef void text_delete(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef bint hold_is_zero, sets_noreply, valid
    if ntokens > 3:
        hold_is_zero = _is(tokens[2].value, b"0")
        sets_noreply = c._noreply_maybe(tokens, ntokens)
        valid = ((ntokens == 4 and (hold_is_zero or sets_noreply))
                 or (ntokens == 5 and hold_is_zero and sets_noreply))
        if not valid:
            c._out(b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")
            return
    if tokens[1].length > KEY_MAX:
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if c.srv.detail_enabled:
        pc_prefix_delete(c.srv.prefix, tokens[1].value, tokens[1].length)
    if pc_store_delete_hv(c.s, tokens[1].value, tokens[1].length, hv, 0, 0) == PC_DELETED:
        c._out(b"DELETED")
    else:
        c._out(b"NOT_FOUND")


cdef void text_arith(Connection c, pc_token *tokens, size_t ntokens, int incr, uint32_t hv):
    cdef uint64_t delta, result = 0
    cdef pc_status st
    c._noreply_maybe(tokens, ntokens)
    if tokens[1].length > KEY_MAX:
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if not pc_strtoull(tokens[2].value, &delta):
        c._out(b"CLIENT_ERROR invalid numeric delta argument")
        return
    st = pc_store_delta_hv(c.s, tokens[1].value, tokens[1].length, hv, incr, delta, 0, 0,
                           c._pinned(tokens[1].value, tokens[1].length, hv), &result, NULL)
    if st == PC_OK:
        if c.noreply:
            c.noreply = False
            return
        pc_wbuf_add_u64(&c.wbuf, result)
        pc_wbuf_add(&c.wbuf, b"\r\n", 2)
    elif st == PC_NON_NUMERIC:
        c._out(b"CLIENT_ERROR cannot increment or decrement non-numeric value")
    elif st == PC_NO_MEMORY:
        c._out(b"SERVER_ERROR out of memory")
    else:
        c._out(b"NOT_FOUND")


cdef void text_touch(Connection c, pc_token *tokens, size_t ntokens, uint32_t hv):
    cdef int32_t exptime
    c._noreply_maybe(tokens, ntokens)
    if tokens[1].length > KEY_MAX:
        c._out(b"CLIENT_ERROR bad command line format")
        return
    if not pc_strtol(tokens[2].value, &exptime):
        c._out(b"CLIENT_ERROR invalid exptime argument")
        return
    c.srv.cmd_touch += 1
    if pc_store_touch_hv(c.s, tokens[1].value, tokens[1].length, hv, exptime) != NULL:
        c._out(b"TOUCHED")
    else:
        c._out(b"NOT_FOUND")


cdef void text_flush_all(Connection c, pc_token *tokens, size_t ntokens):
    cdef int32_t delay = 0
    cdef uint64_t version = 0
    if c.peer and ntokens == 4 and tokens[2].value[0] == b'E' and \
            pc_strtoull(tokens[2].value + 1, &version):
        ntokens -= 1        # a cluster's flush_all: the coordinator's version (see above)
    c._noreply_maybe(tokens, ntokens)
    c.srv.cmd_flush += 1
    if not c.srv.settings.flush_enabled:
        c._out(b"CLIENT_ERROR flush_all not allowed")     # -F; counted, as memcached does
        return
    if ntokens != (3 if c.noreply else 2):
        if not pc_strtol(tokens[1].value, &delay):
            c._out(b"CLIENT_ERROR invalid exptime argument")
            return
    pc_store_flush_at(c.s, delay if delay > 0 else 0, version)
    if c.srv.coord is not None and not c.peer:
        c.srv.coord.flush_all(c, delay)     # the whole cluster's
        return
    if version:
        # A cluster's flush_all: the cut-off too, for the coordinator's clock.
        pc_wbuf_add(&c.wbuf, b"OK c", 4)
        pc_wbuf_add_u64(&c.wbuf, pc_store_flush_version(c.s))
        pc_wbuf_add(&c.wbuf, b"\r\n", 2)
        return
    c._out(b"OK")


cdef void text_admin(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens):
    """stats, verbosity, shutdown, cache_memlimit and memcached's machinery commands."""
    cdef list args = c._args(tokens, ntokens)
    if cmd == PC_CMD_STATS:
        c._reply_py(call(stats.command, c.srv, args))
    elif cmd == PC_CMD_VERBOSITY or cmd == PC_CMD_CACHE_MEMLIMIT:
        c._noreply_maybe(tokens, ntokens)
        c._out(admin.setting_command(c.srv, args))
    elif cmd == PC_CMD_SHUTDOWN:
        if not c.srv.settings.enable_shutdown:
            c._out(b"ERROR: shutdown not enabled")
        elif ntokens == 2 or (ntokens == 3 and args[1] == b"graceful"):
            c.closing = True
            c.shut = True
            if c.srv.on_shutdown is not None:
                c.srv.on_shutdown(ntokens == 3)
        else:
            c._out(b"CLIENT_ERROR invalid shutdown mode")
    elif args[0] == b"watch" and c.srv.extensions.command(b"watch") is not None:
        # The node's watchers (protocol/watch.py); without them, memcached's refusal below.
        c._reply_py(call(c.srv.extensions.command(b"watch"), c, args))
    else:
        # Bytes, or an awaitable of them for the dumps that walk the store.
        c._reply_py(admin.machinery_command(c.srv, args))


cdef inline void drop_key(Connection c):
    """memcached deletes the key of a set too large to store ("avoid stale data"): here, or
    at its owner when the coordinator routed it."""
    if c.p.routed:
        c.srv.coord.drop_key(c)
    else:
        pc_store_delete_hv(c.s, c.p.key, c.p.nkey, c.p.hv, 0, 0)
