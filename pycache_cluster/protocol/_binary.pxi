# memcached's binary protocol (memcached's proto_bin.c), included by _conn.pyx. A connection
# whose first byte is the request magic 0x80 speaks it for good (memcached's negotiation); with
# -S every connection does, and SASL PLAIN must come first. Frames are cut by csrc/pc_binproto;
# the commands answer into c.wbuf with memcached 1.6.18's exact bytes, get and set without a
# Python object. stat and SASL are rare and go through Python (binstat.py, sasl.py). In a
# cluster, a key this node does not serve alone goes through the gate (_bingate.pxi).
#
# memcached consumes a frame's header, extras and key, then what the command reads (a
# storage or SASL value) or swallows after an error; bytes a frame's body length claims
# beyond that are read as the next frame. So do we: lying lengths get memcached's replies.
#
# Write points, as memcached's: an error without a value to swallow, noop, quit and a SASL
# continuation flush (conn_mwrite); waiting for a header flushes; waiting for a value or
# swallowing one does not, and a connection closed then loses the replies made since.
from pycache_cluster.protocol import binstat, sasl

DEF PROTO_NONE = 0
DEF PROTO_TEXT = 1
DEF PROTO_BINARY = 2

cdef uint8_t detect_protocol(Connection c) noexcept:
    cdef size_t n
    if c.rend == 0:
        return PROTO_NONE
    if c.srv.sasl and <uint8_t>c.rbuf[0] != PC_BIN_REQ and c.srv.coord is not None:
        # -S in a cluster: the peers' links speak text, and prove the cluster key instead
        # of SASL; until then the connection answers nothing else (_auth_step).
        n = c.rend if c.rend < 13 else 13
        if memcmp(c.rbuf, b"cluster peer ", n) == 0:
            if n < 13:
                return PROTO_NONE
            c.unauth = True
            return PROTO_TEXT
    if c.srv.sasl or <uint8_t>c.rbuf[0] == PC_BIN_REQ:
        # memcached -S binds the binary protocol only: text is read as a bad frame and closed.
        return PROTO_BINARY
    return PROTO_TEXT


cdef size_t binary_batch(Connection c):
    """Every complete frame in rbuf: the binary twin of the text loop in _process. Returns
    how many bytes were consumed."""
    cdef size_t pos = 0, avail, n, need
    while not c.closing:
        if c.wbuf.len >= WBUF_FLUSH and c.state == ST_CMD:
            out_emit(c, c.wbuf.len, c.hole_seq)
        if c.paused:
            break
        if c.nholes and (c.nholes >= HOLES_HIGH or c.wbuf.len >= WBUF_FLUSH):
            c.holes_paused = True       # requests through the gate pile up: _drain resumes
            c._update_reading()
            break
        avail = c.rend - pos
        if c.state == ST_SWALLOW:
            n = c.swallow_left if c.swallow_left < avail else avail
            pos += n
            c.swallow_left -= n
            if c.swallow_left:
                break
            c.state = ST_CMD
            c._request_done()
            continue
        if c.state == ST_NREAD:
            if avail < c.p.vlen:
                break
            bin_value(c, c.rbuf + pos, c.p.vlen)
            pos += c.p.vlen
            c.state = ST_CMD
            c._request_done()
            continue
        if avail < PC_BIN_HEADER:
            break
        if <uint8_t>c.rbuf[pos] != PC_BIN_REQ:
            # memcached: "Invalid magic", conn_closing; replies not yet written are lost.
            c.closing = True
            break
        pc_bin_parse(c.rbuf + pos, &c.breq)
        need = PC_BIN_HEADER + c.breq.extlen + c.breq.keylen
        if avail < need:
            if need > PC_BIN_RBUF and avail >= PC_BIN_RBUF:
                c.closing = True        # memcached's read buffer is full: it closes
            break
        c.noreply = False
        bin_command(c, c.rbuf + pos)
        pos += need
        if c.state == ST_CMD:
            c._request_done()
    gate_run(c)
    return pos


cdef inline void bin_err(Connection c, uint16_t status, const char *msg,
                         uint32_t swallow) noexcept:
    """memcached's write_bin_error: the reply, then `swallow` bytes discarded, or a write
    point when there are none."""
    pc_bin_error(&c.wbuf, c.breq.opcode, status, c.breq.opaque, msg)
    if swallow:
        c._swallow(swallow)
    else:
        c._write_point()


cdef inline void bin_protocol_error(Connection c) noexcept:
    bin_err(c, PC_BIN_EINVAL, NULL, 0)
    c.closing = True
    c.close_after_write = True


cdef inline void bin_ok(Connection c, uint64_t cas) noexcept:
    """memcached's write_bin_response without a body: nothing for a quiet command."""
    if not c.noreply:
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 0, 0, 0, c.breq.opaque, cas)


cdef void bin_command(Connection c, const char *frame):
    cdef pc_bin_req *r = &c.breq
    cdef const char *ext = frame + PC_BIN_HEADER
    cdef const char *key = ext + r.extlen
    cdef int quiet = 0
    cdef uint8_t op = pc_bin_base(r.opcode, &quiet)
    if r.keylen > r.bodylen or <uint32_t>r.keylen + r.extlen > r.bodylen:
        bin_err(c, PC_BIN_UNKNOWN_COMMAND, NULL, 0)
        c.closing = True
        c.close_after_write = True
        return
    if c.srv.sasl and not c.bin_authed and op != PC_BIN_SASL_LIST and \
            op != PC_BIN_SASL_AUTH and op != PC_BIN_SASL_STEP and op != PC_BIN_VERSION:
        bin_err(c, PC_BIN_AUTH_ERROR, NULL, 0)
        c.closing = True
        c.close_after_write = True
        return
    if r.keylen > KEY_MAX:
        bin_protocol_error(c)
        return
    if not pc_bin_valid(r, op):
        bin_protocol_error(c)
        return
    c.noreply = quiet
    c.bop = op
    if op == PC_BIN_GET or op == PC_BIN_GETK:
        bin_get(c, key, r.keylen, op, ext)
    elif op == PC_BIN_SET or op == PC_BIN_ADD or op == PC_BIN_REPLACE:
        bin_update(c, key, r.keylen, op, pc_bin_u32(ext), pc_bin_u32(ext + 4))
    elif op == PC_BIN_APPEND or op == PC_BIN_PREPEND:
        bin_update(c, key, r.keylen, op, 0, 0)
    elif op == PC_BIN_DELETE:
        bin_delete(c, key, r.keylen)
    elif op == PC_BIN_INCR or op == PC_BIN_DECR:
        bin_arith(c, key, r.keylen, op == PC_BIN_INCR, ext)
    elif op == PC_BIN_TOUCH or op == PC_BIN_GAT or op == PC_BIN_GATK:
        bin_get(c, key, r.keylen, op, ext)
    elif op == PC_BIN_NOOP:
        bin_ok(c, 0)
        c._write_point()        # "NOOP forces pipeline flush"
    elif op == PC_BIN_VERSION:
        pc_bin_header(&c.wbuf, r.opcode, PC_BIN_OK, 0, 0, len(VERSION), r.opaque, 0)
        pc_wbuf_add(&c.wbuf, PyBytes_AS_STRING(VERSION), len(VERSION))
    elif op == PC_BIN_QUIT:
        bin_ok(c, 0)
        c._write_point()
        c.closing = True
        c.close_after_write = True
    elif op == PC_BIN_FLUSH:
        bin_flush(c, ext)
    elif op == PC_BIN_STAT:
        bin_stat(c, key, r.keylen)
    elif op == PC_BIN_SASL_LIST or op == PC_BIN_SASL_AUTH or op == PC_BIN_SASL_STEP:
        bin_sasl_start(c, op, key, r.keylen)
    else:
        # memcached swallows the body length after the header, extras and key it already
        # read: a frame with either eats into what follows, as there.
        bin_err(c, PC_BIN_UNKNOWN_COMMAND, NULL, r.bodylen)


cdef void bin_get(Connection c, const char *key, size_t nkey, uint8_t op, const char *ext):
    """get, getk, touch, gat, gatk and their quiet twins (process_bin_get_or_touch)."""
    cdef uint32_t hv = pc_hash(key, nkey, 0)
    cdef pc_item *it
    cdef bint touch = op != PC_BIN_GET and op != PC_BIN_GETK
    cdef bint with_key = op == PC_BIN_GETK or op == PC_BIN_GATK
    cdef uint32_t body
    if bin_gated(c, hv) and (touch or not bin_local_read(c, hv, key, nkey)):
        gate_get(c, key, nkey, op, ext)
        return
    if touch:
        it = pc_store_touch_hv(c.s, key, nkey, hv, <int64_t>pc_bin_u32(ext))
        c.srv.cmd_touch += 1
    else:
        it = pc_store_get_hv(c.s, key, nkey, hv)
        c.srv.cmd_get += 1
    if it != NULL:
        body = 4
        if op != PC_BIN_TOUCH:
            body += <uint32_t>it.nbytes
        if with_key:
            body += <uint32_t>nkey
        pc_wbuf_reserve(&c.wbuf, PC_BIN_HEADER + body)
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 4, nkey if with_key else 0, body,
                      c.breq.opaque, it.version)
        pc_bin_add_u32(&c.wbuf, pc_item_flags(it))
        if with_key:
            pc_wbuf_add(&c.wbuf, key, nkey)
        if op != PC_BIN_TOUCH:
            pc_wbuf_add(&c.wbuf, pc_item_value(it), it.nbytes)
            c._pin(it)      # memcached holds the item until the reply is written
        return
    if c.noreply:
        return
    if with_key:
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_ENOENT, 0, nkey, nkey, c.breq.opaque, 0)
        pc_wbuf_add(&c.wbuf, key, nkey)
    else:
        bin_err(c, PC_BIN_ENOENT, NULL, 0)


cdef void bin_update(Connection c, const char *key, size_t nkey, uint8_t op, uint32_t flags,
                     uint32_t exptime):
    """set/add/replace/append/prepend: decided now, stored once the value is in (bin_value)."""
    cdef uint32_t vlen = c.breq.bodylen - nkey - c.breq.extlen
    cdef uint32_t hv = pc_hash(key, nkey, 0)
    if bin_gated(c, hv):
        c.p_line = gate_key(key, nkey)      # the value goes through the gate (gate_store)
        if gate_refused(c, c.p_line, vlen):
            return
        c.gated = True
    if pc_item_memcached_size(nkey, flags, vlen) > pc_store_item_size_max(c.s):
        c.srv.store_too_large += 1
        if op == PC_BIN_SET:
            # memcached: "Avoid stale data persisting in cache because we failed alloc."
            if c.gated:
                gate_drop_key(c)
            else:
                pc_store_delete_hv(c.s, key, nkey, hv, 0, 0)
        if c.gated:
            c.gated = False
            c.p_line = None
        bin_err(c, PC_BIN_E2BIG, NULL, vlen)
        return
    memcpy(c.p.key, key, nkey)
    c.p.nkey = nkey
    c.p.hv = hv
    c.p.flags = flags
    c.p.exptime = exptime
    c.p.cas = c.breq.cas
    c.p.vlen = vlen
    if op == PC_BIN_APPEND:
        c.p.mode = PC_APPEND
    elif op == PC_BIN_PREPEND:
        c.p.mode = PC_PREPEND
    elif c.breq.cas:
        c.p.mode = PC_CAS       # any of set/add/replace with a CAS is memcached's NREAD_CAS
    elif op == PC_BIN_ADD:
        c.p.mode = PC_ADD
    elif op == PC_BIN_REPLACE:
        c.p.mode = PC_REPLACE
    else:
        c.p.mode = PC_SET
    c.state = ST_NREAD


cdef void bin_value(Connection c, const char *data, size_t n):
    cdef pc_item *it = NULL
    cdef pc_status st
    if c.bop == PC_BIN_SASL_AUTH or c.bop == PC_BIN_SASL_STEP:
        bin_sasl_done(c, data, n)
        return
    if c.gated:
        c.gated = False
        gate_store(c, data, n)
        return
    c.srv.cmd_set += 1
    st = pc_store_store_hv(c.s, c.p.mode, c.p.key, c.p.nkey, c.p.hv, c.p.flags, c.p.exptime,
                           data, n, c.p.cas, 0, &it)
    if st == PC_STORED:
        bin_ok(c, it.version)
    elif st == PC_EXISTS:
        bin_err(c, PC_BIN_EEXISTS, NULL, 0)
    elif st == PC_NOT_FOUND:
        bin_err(c, PC_BIN_ENOENT, NULL, 0)
    elif st == PC_NO_MEMORY:
        c.srv.store_no_memory += 1
        bin_err(c, PC_BIN_ENOMEM, b"Out of memory allocating item", 0)
    elif c.p.mode == PC_ADD:
        bin_err(c, PC_BIN_EEXISTS, NULL, 0)     # NOT_STORED, as complete_update_bin maps it
    elif c.p.mode == PC_REPLACE:
        bin_err(c, PC_BIN_ENOENT, NULL, 0)
    else:
        bin_err(c, PC_BIN_NOT_STORED, NULL, 0)


cdef void bin_delete(Connection c, const char *key, size_t nkey):
    cdef uint32_t hv = pc_hash(key, nkey, 0)
    cdef pc_status st
    if bin_gated(c, hv):
        gate_delete(c, key, nkey)
        return
    st = pc_store_delete_hv(c.s, key, nkey, hv, c.breq.cas != 0, c.breq.cas)
    if st == PC_DELETED:
        bin_ok(c, 0)
    elif st == PC_EXISTS:
        bin_err(c, PC_BIN_EEXISTS, NULL, 0)
    else:
        bin_err(c, PC_BIN_ENOENT, NULL, 0)


cdef void bin_arith(Connection c, const char *key, size_t nkey, bint incr, const char *ext):
    """incr/decr (complete_incr_bin): a miss creates the key at `initial` unless the
    expiration is 0xffffffff."""
    cdef uint32_t hv = pc_hash(key, nkey, 0)
    cdef uint64_t delta = pc_bin_u64(ext), initial = pc_bin_u64(ext + 8), result = 0
    cdef uint32_t exptime = pc_bin_u32(ext + 16)
    cdef char digits[24]
    cdef pc_item *it = NULL
    cdef pc_status st
    if bin_gated(c, hv):
        gate_arith(c, key, nkey, incr, ext)
        return
    st = pc_store_delta_hv(c.s, key, nkey, hv, incr, delta, c.breq.cas, 0,
                           c._pinned(key, nkey, hv), &result, &it)
    if st == PC_NOT_FOUND and exptime != 0xffffffff:
        st = pc_store_store_hv(c.s, PC_ADD, key, nkey, hv, 0, exptime, digits,
                               pc_u64toa(initial, digits), 0, 0, &it)
        if st == PC_STORED:
            st = PC_OK
            result = initial
        elif st == PC_NO_MEMORY:
            bin_err(c, PC_BIN_ENOMEM, b"Out of memory allocating new item", 0)
            return
        else:
            bin_err(c, PC_BIN_NOT_STORED, NULL, 0)
            return
    if st == PC_OK:
        if not c.noreply:
            pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 0, 0, 8, c.breq.opaque,
                          it.version if it != NULL else 0)
            pc_bin_add_u64(&c.wbuf, result)
    elif st == PC_NON_NUMERIC:
        bin_err(c, PC_BIN_DELTA_BADVAL, NULL, 0)
    elif st == PC_EXISTS:
        bin_err(c, PC_BIN_EEXISTS, NULL, 0)
    elif st == PC_NO_MEMORY:
        bin_err(c, PC_BIN_ENOMEM, b"Out of memory incrementing value", 0)
    else:
        bin_err(c, PC_BIN_ENOENT, NULL, 0)


cdef void bin_flush(Connection c, const char *ext):
    cdef int64_t delay = pc_bin_u32(ext) if c.breq.extlen == 4 else 0
    if not c.srv.settings.flush_enabled:
        bin_err(c, PC_BIN_AUTH_ERROR, NULL, 0)      # -F: memcached answers "Auth failure."
        return
    if c.srv.coord is not None and not c.peer:
        gate_flush(c, delay)      # a cluster's flush empties every member (flush_all)
        return
    c.srv.cmd_flush += 1
    pc_store_flush_at(c.s, delay, 0)
    bin_ok(c, 0)


cdef void bin_stat(Connection c, const char *key, size_t nkey):
    """stat [group]: one packet per statistic, then an empty one (binstat.py has which)."""
    cdef bytes k, v
    pairs = binstat.pairs(c.srv, PyBytes_FromStringAndSize(key, nkey))
    if pairs is None:
        bin_err(c, PC_BIN_ENOENT, NULL, 0)
        return
    for k, v in pairs:
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 0, len(k), len(k) + len(v),
                      c.breq.opaque, 0)
        pc_wbuf_add(&c.wbuf, PyBytes_AS_STRING(k), len(k))
        pc_wbuf_add(&c.wbuf, PyBytes_AS_STRING(v), len(v))
    pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 0, 0, 0, c.breq.opaque, 0)


cdef void bin_sasl_start(Connection c, uint8_t op, const char *key, size_t nkey):
    """The SASL commands' frames (bin_list_sasl_mechs, process_bin_sasl_auth)."""
    cdef uint32_t vlen = c.breq.bodylen - nkey
    if not c.srv.sasl:
        bin_err(c, PC_BIN_UNKNOWN_COMMAND, NULL, vlen)
        return
    if op == PC_BIN_SASL_LIST:
        c.bin_authed = False        # memcached's init_sasl_conn, as it does for every call
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 0, 0, 5, c.breq.opaque, 0)
        pc_wbuf_add(&c.wbuf, b"PLAIN", 5)
        return
    if nkey > PC_BIN_MECH_MAX:
        bin_err(c, PC_BIN_EINVAL, NULL, vlen)
        return
    memcpy(c.p.key, key, nkey)
    c.p.nkey = nkey
    c.p.vlen = vlen
    c.state = ST_NREAD


cdef void bin_sasl_done(Connection c, const char *data, size_t n):
    """SASL AUTH/STEP with their data: PLAIN only, one step (an empty AUTH asks for it)."""
    cdef int result = -1        # 0 authenticated, 1 continue, -1 failure
    c.bin_authed = False
    mech = PyBytes_FromStringAndSize(c.p.key, c.p.nkey)
    if mech == b"PLAIN" and not c.sasl_done:
        if c.bop == PC_BIN_SASL_AUTH and n == 0:
            result = 1
        elif c.bop == PC_BIN_SASL_AUTH or c.sasl_started:
            result = 0 if sasl.check_plain(c.srv.settings.sasl_pwdb,
                                           PyBytes_FromStringAndSize(data, n)) else -1
    if c.bop == PC_BIN_SASL_AUTH:
        c.sasl_started = result >= 0
    if result == 0:
        # One authentication per connection, as a finished Cyrus SASL exchange allows.
        c.bin_authed = c.sasl_done = True
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_OK, 0, 0, 13, c.breq.opaque, 0)
        pc_wbuf_add(&c.wbuf, b"Authenticated", 13)
    elif result == 1:
        pc_bin_header(&c.wbuf, c.breq.opcode, PC_BIN_AUTH_CONTINUE, 0, 0, 0, c.breq.opaque, 0)
        c._write_point()
    else:
        c.sasl_started = False
        bin_err(c, PC_BIN_AUTH_ERROR, NULL, 0)
