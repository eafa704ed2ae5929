# The binary protocol in a cluster, included by _conn.pyx. Forwarding, replication, quorum
# reads, read repair and hints all speak meta. Rather than a second copy of them for binary
# frames, a binary connection re-speaks each keyed request as one meta command to an inner
# text connection of its own: the inner connection runs exactly the code a text client's
# request runs, and each meta reply comes back as the binary frame memcached would send, into
# a hole at its request's place. One inner connection per binary connection keeps memcached's
# order within a connection (a read after a write of the same key sees the write), which the
# text path already guarantees.
#
# The inner connection is never counted as a client, and it is asked for every reply (never
# q or noreply), so replies and requests pair off in order; quiet binary commands drop their
# successes (and a quiet get its miss) here, as memcached does.
#
# A key travels as it is when it is a valid text key, else base64 with the b flag. A meta
# key is at most 250 bytes as sent, so a key with spaces or control bytes may be at most 186
# bytes long: a longer one is refused with EINVAL.

import traceback

# Where a request of the gate stands: what its meta reply becomes.
DEF GATE_GET = 0        # get, getk, gat, gatk, touch: `mg`
DEF GATE_STORE = 1      # set, add, replace, append, prepend: `ms`
DEF GATE_DELETE = 2     # `md`
DEF GATE_ARITH = 3      # incr, decr: `ma`
DEF GATE_FLUSH = 4      # `flush_all`
DEF GATE_DROP = 5       # the node's own request: its reply is not the client's

# Not one of memcached 1.6.18's own answers, but protocol_binary.h's "temporary failure",
# which binary clients know: the key's owners could not be reached or did not agree in time.
DEF PC_BIN_ETMPFAIL = 0x86
DEF GATE_B64_MAX = 186

cdef pc_wbuf _gate_frame
pc_wbuf_init(&_gate_frame)


cdef inline bint bin_gated(Connection c, uint32_t hv):
    """In a cluster, True unless this node alone serves the key (one copy, this node its
    owner): the request then goes through the gate."""
    if c.srv.coord is None or c.peer:
        return False
    return c.srv.coord.gated(c, hv)


cdef inline bint bin_local_read(Connection c, uint32_t hv, const char *key, size_t nkey):
    """A gated get this node answers natively, as the text path would here: R = 1, this
    node an owner holding the key, and nothing of this connection's still on its way
    through the gate (a write at the key's first owner, a flush). A miss goes through the
    gate, which asks the other owners."""
    if c.gate is not None and ((<BinaryGate>c.gate).inner.nholes or
                               (<BinaryGate>c.gate).inner.rend):
        return False
    return c.srv.coord.local_read(c, hv, key, nkey)


@cython.final
cdef class GateRequest:
    cdef Hole hole              # None: nobody hears the reply
    cdef uint8_t kind, base, opcode
    cdef uint32_t opaque        # network order, echoed as is
    cdef bint quiet
    cdef bint write_point       # its reply was an error frame memcached writes at once
    cdef bytes key              # getk/gatk echo it


@cython.final
cdef class BinaryGate:
    """The inner connection's transport: its output is the meta replies, in request order."""
    cdef Connection client
    cdef Connection inner
    cdef object waiting         # deque of GateRequest
    cdef bytearray replies      # output not yet a whole reply

    def write(self, data):
        self.replies += data
        try:
            self.answer()
        except Exception:
            # A reply the gate cannot read would leave every later one paired with the
            # wrong request: the client hears a failure for each and is closed.
            traceback.print_exc()
            self.broken()
            if self.client is not None and self.client.transport is not None:
                self.client.transport.close()

    def close(self):
        self.broken()

    def abort(self):
        self.broken()

    def pause_reading(self):
        pass        # the inner connection is fed by hand: its backpressure is the client's

    def resume_reading(self):
        pass

    def get_extra_info(self, name, default=None):
        return default

    cdef void answer(self):
        cdef GateRequest r
        cdef Hole last = None
        cdef Connection c
        cdef bytearray buf = self.replies
        cdef const char *data = PyByteArray_AS_STRING(buf)
        cdef size_t pos = 0, total = PyByteArray_GET_SIZE(buf), n
        cdef int found
        while self.waiting:
            found = pc_reply_frame(data + pos, total - pos, &n)
            if found == 0:
                break
            if found < 0:
                raise ValueError("not a meta reply")
            r = <GateRequest>self.waiting.popleft()
            if r.hole is not None and not r.hole.filled:
                frame = gate_frame(r, data + pos, n)
                if frame and r.write_point:
                    r.hole.kind = HK_WRITE_POINT
                # Filled here, told once below: the client writes all of them at once.
                r.hole.data = frame
                r.hole.filled = True
                last = r.hole
            pos += n
        del buf[:pos]
        if last is not None and last.conn is not None:
            c = last.conn
            if c.nholes and (<Hole>c.holes[0]).filled:
                last = <Hole>c.holes[0]
            out_hole_filled(c, last)

    cdef void broken(self):
        # The inner connection closed itself, which requests built here never make it do.
        cdef GateRequest r
        while self.waiting:
            r = <GateRequest>self.waiting.popleft()
            if r.hole is not None:
                r.hole.put(_frame(r, PC_BIN_ETMPFAIL, b"Internal error"))

    cdef void close_inner(self):
        """The client is gone: what the inner connection still awaits is dropped, and the
        references between the three are cut so that both connections go at once."""
        self.waiting.clear()
        if self.inner.transport is not None:
            self.inner.connection_lost(None)
        self.client = None


cdef BinaryGate gate_of(Connection c):
    cdef BinaryGate g = <BinaryGate>c.gate
    cdef Connection inner
    if g is not None:
        return g
    g = BinaryGate.__new__(BinaryGate)
    inner = Connection.__new__(Connection, c.srv)
    inner.rejected = True       # never counted or watched: it is no client's socket
    inner.proto = PROTO_TEXT
    inner.transport = g
    inner.fd = c.fd
    inner.peername = c.peername
    g.client = c
    g.inner = inner
    g.waiting = collections.deque()
    g.replies = bytearray()
    c.gate = g
    return g


cdef inline uint32_t meta_exptime(uint32_t exptime) noexcept:
    """A binary exptime as a meta T or N token, which is a signed 32-bit number: beyond it
    lies an absolute time after 2038, which becomes the last one the token can say."""
    return exptime if exptime <= 0x7fffffff else 0x7fffffff


cdef bytes gate_key(const char *key, size_t nkey):
    """The key as a meta token, followed by its b flag when it needs one (ms puts its value
    length between them); None: it cannot be one."""
    cdef unsigned char enc[256]
    cdef size_t i, n
    for i in range(nkey):
        if <unsigned char>key[i] <= 32 or <unsigned char>key[i] == 127:
            break
    else:
        return PyBytes_FromStringAndSize(key, nkey)
    if nkey > GATE_B64_MAX:
        return None
    n = pc_base64_encode(<const unsigned char *>key, nkey, enc, sizeof(enc))
    return PyBytes_FromStringAndSize(<char *>enc, n) + b" b"


cdef void gate_send(Connection c, uint8_t kind, bytes request, const char *value, size_t n,
                    const char *key, size_t nkey):
    """One meta request to the inner connection, its reply awaited in a hole of the client's
    (none for GATE_DROP)."""
    cdef BinaryGate g = gate_of(c)
    cdef Connection inner = g.inner
    cdef GateRequest r = GateRequest.__new__(GateRequest)
    cdef size_t need = inner.rend + PyBytes_GET_SIZE(request) + n + 2
    r.kind = kind
    r.base = c.bop
    r.opcode = c.breq.opcode
    r.opaque = c.breq.opaque
    r.quiet = c.noreply
    if kind == GATE_GET:
        r.key = PyBytes_FromStringAndSize(key, nkey)
    if kind != GATE_DROP:
        r.hole = out_hole(c, HK_PY)
    g.waiting.append(r)
    if inner.rbuf == NULL:
        inner.rbuf = inner.srv.take_rbuf()
        if inner.rbuf == NULL:
            raise MemoryError()
        inner.rcap = RBUF_INITIAL
    if inner.rcap < need:
        inner._grow(need)
    memcpy(inner.rbuf + inner.rend, PyBytes_AS_STRING(request), PyBytes_GET_SIZE(request))
    inner.rend += PyBytes_GET_SIZE(request)
    if value != NULL:
        memcpy(inner.rbuf + inner.rend, value, n)
        memcpy(inner.rbuf + inner.rend + n, b"\r\n", 2)
        inner.rend += n + 2
    # Run at the end of the client's batch (gate_run): one pass of the inner connection
    # for all of them, as a text client's pipeline.


cdef inline void gate_run(Connection c):
    if c.gate is not None and (<BinaryGate>c.gate).inner.rend:
        (<BinaryGate>c.gate).inner._run()


cdef bint gate_refused(Connection c, bytes tok, uint32_t swallow):
    if tok is not None:
        return False
    bin_err(c, PC_BIN_EINVAL, b"Key not supported in a cluster: over 186 bytes and not text",
            swallow)
    return True


cdef void gate_get(Connection c, const char *key, size_t nkey, uint8_t op, const char *ext):
    cdef bytes tok = gate_key(key, nkey)
    if gate_refused(c, tok, 0):
        return
    if op == PC_BIN_TOUCH:
        request = b"mg " + tok + b" f c T%d\r\n" % meta_exptime(pc_bin_u32(ext))
    elif op == PC_BIN_GAT or op == PC_BIN_GATK:
        request = b"mg " + tok + b" v f c T%d\r\n" % meta_exptime(pc_bin_u32(ext))
    else:
        request = b"mg " + tok + b" v f c\r\n"
    gate_send(c, GATE_GET, request, NULL, 0, key, nkey)


cdef void gate_drop_key(Connection c):
    """A set too large to store deletes its key (memcached's way against stale data): at the
    key's owners, the reply being nobody's."""
    gate_send(c, GATE_DROP, b"md " + c.p_line + b"\r\n", NULL, 0, NULL, 0)


cdef void gate_store(Connection c, const char *data, size_t n):
    cdef bytes tok = c.p_line
    cdef uint8_t op = c.bop
    cdef bytes mode = b""
    c.p_line = None
    if op == PC_BIN_APPEND:
        mode = b" MA"
    elif op == PC_BIN_PREPEND:
        mode = b" MP"
    elif c.p.cas == 0 and op == PC_BIN_ADD:
        mode = b" ME"
    elif c.p.cas == 0 and op == PC_BIN_REPLACE:
        mode = b" MR"
    key, _, flag = tok.partition(b" ")
    request = b"ms %s %d%s c F%d T%d%s" % (key, n, b" b" if flag else b"", c.p.flags,
                                          meta_exptime(<uint32_t>c.p.exptime), mode)
    if c.p.cas:
        request += b" C%d" % c.p.cas
    gate_send(c, GATE_STORE, request + b"\r\n", data, n, NULL, 0)


cdef void gate_delete(Connection c, const char *key, size_t nkey):
    cdef bytes tok = gate_key(key, nkey)
    if gate_refused(c, tok, 0):
        return
    request = b"md " + tok
    if c.breq.cas:
        request += b" C%d" % c.breq.cas
    gate_send(c, GATE_DELETE, request + b"\r\n", NULL, 0, NULL, 0)


cdef void gate_arith(Connection c, const char *key, size_t nkey, bint incr, const char *ext):
    cdef bytes tok = gate_key(key, nkey)
    cdef uint32_t exptime = pc_bin_u32(ext + 16)
    if gate_refused(c, tok, 0):
        return
    request = b"ma %s v c M%s D%d" % (tok, b"I" if incr else b"D", pc_bin_u64(ext))
    if exptime != 0xffffffff:
        request += b" N%d J%d" % (meta_exptime(exptime), pc_bin_u64(ext + 8))
    if c.breq.cas:
        request += b" C%d" % c.breq.cas
    gate_send(c, GATE_ARITH, request + b"\r\n", NULL, 0, NULL, 0)


cdef void gate_flush(Connection c, int64_t delay):
    gate_send(c, GATE_FLUSH, b"flush_all %d\r\n" % delay if delay else b"flush_all\r\n",
              NULL, 0, NULL, 0)


# -- meta replies as binary frames ------------------------------------------------------------

cdef bytes _frame(GateRequest r, uint16_t status, bytes body):
    """An error frame, as bin_err writes it (a write point)."""
    r.write_point = True
    pc_wbuf_clear(&_gate_frame)
    pc_bin_error(&_gate_frame, r.opcode, status, r.opaque,
                 NULL if body is None else PyBytes_AS_STRING(body))
    return PyBytes_FromStringAndSize(_gate_frame.data, _gate_frame.len)


cdef bytes gate_frame(GateRequest r, const char *reply, size_t n):
    cdef pc_meta_reply m
    cdef int status = pc_reply_meta(reply, n, &m)
    cdef uint32_t body
    cdef bint with_key
    if status == PC_MR_OTHER:
        return _error(r, PyBytes_FromStringAndSize(reply, m.line_len))
    pc_wbuf_clear(&_gate_frame)
    if r.kind == GATE_GET:
        with_key = r.base == PC_BIN_GETK or r.base == PC_BIN_GATK
        if status == PC_MR_VA or (status == PC_MR_HD and r.base == PC_BIN_TOUCH):
            body = 4 + (len(r.key) if with_key else 0) + <uint32_t>m.nbytes
            pc_bin_header(&_gate_frame, r.opcode, PC_BIN_OK, 4,
                          len(r.key) if with_key else 0, body, r.opaque, m.cas)
            pc_bin_add_u32(&_gate_frame, <uint32_t>m.flags)
            if with_key:
                pc_wbuf_add(&_gate_frame, PyBytes_AS_STRING(r.key), len(r.key))
            if m.nbytes:
                pc_wbuf_add(&_gate_frame, m.value, m.nbytes)
            return PyBytes_FromStringAndSize(_gate_frame.data, _gate_frame.len)
        if status == PC_MR_EN:
            if r.quiet:
                return b""
            if with_key:
                pc_bin_header(&_gate_frame, r.opcode, PC_BIN_ENOENT, 0, len(r.key),
                              len(r.key), r.opaque, 0)
                pc_wbuf_add(&_gate_frame, PyBytes_AS_STRING(r.key), len(r.key))
                return PyBytes_FromStringAndSize(_gate_frame.data, _gate_frame.len)
            return _frame(r, PC_BIN_ENOENT, None)
        return _error(r, PyBytes_FromStringAndSize(reply, m.line_len))
    if r.kind == GATE_ARITH and status == PC_MR_VA:
        if r.quiet:
            return b""
        pc_bin_header(&_gate_frame, r.opcode, PC_BIN_OK, 0, 0, 8, r.opaque, m.cas)
        pc_bin_add_u64(&_gate_frame, int(PyBytes_FromStringAndSize(m.value, m.nbytes)))
        return PyBytes_FromStringAndSize(_gate_frame.data, _gate_frame.len)
    if status == PC_MR_HD or status == PC_MR_OK:
        if r.quiet:
            return b""
        pc_bin_header(&_gate_frame, r.opcode, PC_BIN_OK, 0, 0, 0, r.opaque,
                      m.cas if r.kind == GATE_STORE else 0)
        return PyBytes_FromStringAndSize(_gate_frame.data, _gate_frame.len)
    if status == PC_MR_NF:
        return _frame(r, PC_BIN_ENOENT, None)
    if status == PC_MR_EX:
        return _frame(r, PC_BIN_EEXISTS, None)
    if status == PC_MR_NS:
        # As complete_update_bin maps NOT_STORED: add's key exists, replace's is missing.
        if r.base == PC_BIN_ADD:
            return _frame(r, PC_BIN_EEXISTS, None)
        if r.base == PC_BIN_REPLACE:
            return _frame(r, PC_BIN_ENOENT, None)
        return _frame(r, PC_BIN_NOT_STORED, None)
    return _error(r, PyBytes_FromStringAndSize(reply, m.line_len))


cdef bytes _error(GateRequest r, bytes line):
    """An error line: the binary status memcached gives the same failure."""
    if line.startswith(b"CLIENT_ERROR cannot increment"):
        return _frame(r, PC_BIN_DELTA_BADVAL, None)
    if line.startswith(b"SERVER_ERROR out of memory"):
        return _frame(r, PC_BIN_ENOMEM, b"Out of memory allocating item"
                      if r.kind == GATE_STORE else b"Out of memory incrementing value")
    if line.startswith(b"SERVER_ERROR object too large"):
        return _frame(r, PC_BIN_E2BIG, None)
    if line.startswith(b"CLIENT_ERROR "):
        return _frame(r, PC_BIN_EINVAL, line[13:])
    if line.startswith(b"SERVER_ERROR "):
        return _frame(r, PC_BIN_ETMPFAIL, line[13:])
    return _frame(r, PC_BIN_ETMPFAIL, line)
