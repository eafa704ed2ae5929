# Replies in request order, included by _conn.pyx: holes, their fill, and the writes up to
# the first unfilled hole.
#
# A request answered elsewhere (by the key's owner through the coordinator, or by an
# extension's awaitable) leaves a Hole at the current end of the connection's output; later
# replies keep queueing behind it; nothing past the first unfilled hole is written; once it
# is filled, everything up to the next unfilled hole leaves in one write.
#
# Invariants (checked by debug_assert in the sanitizer build):
# - a hole sits at or after the first byte not yet written (`at` >= wbase), and holes are in
#   output order (each `at` no smaller than the one before);
# - nothing past the first unfilled hole is written;
# - a hole is a reply like any other for memcached's write points: one made after the last
#   write point is held while a value is read, and dropped (its reply ignored when it comes)
#   where memcached drops the unwritten replies (out_drop_to_mark), so error paths stay
#   byte-exact;
# - a noreply request makes no hole (its reply would be nothing);
# - holes are filled in bounded time (the link's timeout, the extension's timeout); reading
#   pauses while holes or the bytes queued behind them pile up; close waits for them.
# With no hole open the path is the plain one.

cdef pc_wbuf _scratch
pc_wbuf_init(&_scratch)


# Holes filled while a peer link works through one read batch are written once at its end.
cdef bint _batching = False
cdef list _dirty = []


cdef void replies_begin() noexcept:
    global _batching
    _batching = True


cdef void replies_end():
    global _batching, _dirty
    cdef Connection c
    _batching = False
    if not _dirty:
        return
    dirty, _dirty = _dirty, []
    for c in dirty:
        c.draining = False
    for c in dirty:
        try:
            out_drain(c)
        except Exception:   # one client's broken socket must not stall the others
            if c.transport is not None:
                c.transport.abort()


cdef class Waiter:
    """See _conn.pxd: the base answers nothing (a waiter that needs no answer)."""

    cdef void reply(self, const char *frame, size_t n):
        pass

    cdef void fail(self, bytes why):
        pass


@cython.final
cdef class Hole:
    """A reply still to come, at its place in one connection's output."""

    def fill(self, bytes data):
        """The reply, exactly as the client must see it (Python's way in)."""
        if self.filled:
            return
        self.data = data
        self.filled = True
        if self.conn is not None:
            out_hole_filled(self.conn, self)

    @property
    def pending(self):
        return not self.filled

    cdef void reply(self, const char *frame, size_t n):
        """The owner's reply (one frame read off a peer link), re-spoken for the client."""
        if self.filled:
            return
        hole_reply(self, frame, n)
        self.filled = True
        if self.conn is not None:
            out_hole_filled(self.conn, self)

    cdef void fail(self, bytes why):
        """The owner could not answer: an error line in memcached's style (a get's key:
        a miss)."""
        if self.filled:
            return
        hole_fail(self, why)
        self.filled = True
        if self.conn is not None:
            out_hole_filled(self.conn, self)

    cdef void put(self, object data):
        """A reply made here (a quorum's): as fill()."""
        if self.filled:
            return
        self.data = data
        self.filled = True
        if self.conn is not None:
            out_hole_filled(self.conn, self)


cdef extern from *:
    """
    PC_POOL(pc_hole_pool)
    """
    int pc_hole_pool_install(PyTypeObject *t)

if pc_hole_pool_install(<PyTypeObject *>Hole) != 0:
    raise TypeError("Hole cannot be pooled")       # see _conn.pxd, PC_POOL


cdef void hole_reply(Hole h, const char *frame, size_t n):
    cdef int r
    if h.kind == HK_GET or h.kind == HK_GETS:
        _scratch.len = 0
        r = pc_reply_value(frame, n, h.key, h.nkey, h.kind == HK_GETS, &_scratch)
        h.data = PyBytes_FromStringAndSize(_scratch.data, _scratch.len) if r > 0 else b""
        pc_wbuf_clear(&_scratch)
        return
    h.data = PyBytes_FromStringAndSize(frame, n)


cdef void hole_fail(Hole h, bytes why):
    if h.kind == HK_GET or h.kind == HK_GETS:
        h.data = b""        # a cache: the key is a miss (stats cluster counts the failure)
    else:
        h.data = b"SERVER_ERROR " + <bytes>why + b"\r\n"


# -- the writes up to the first unfilled hole ---------------------------------------------

cdef void out_consume(Connection c, size_t n) noexcept:
    # Drops n written bytes from the front of wbuf.
    debug_assert(n <= c.wbuf.len)
    if n == c.wbuf.len:
        pc_wbuf_clear(&c.wbuf)
        c.npin = 0
    else:
        memmove(c.wbuf.data, c.wbuf.data + n, c.wbuf.len - n)
        c.wbuf.len -= n
    c.wbase += n
    c.mark = c.mark - n if c.mark > n else 0

cdef bint out_holes_filled(Connection c):
    cdef Hole h
    for h in c.holes:
        if not h.filled:
            return False
    return True

cdef void out_drop_to_mark(Connection c):
    """memcached drops the replies made since its last write point: those in wbuf, and
    those still to come (their holes). A dropped hole stays in line, unsent: the request
    behind it is still on its way, and what follows on its key must wait for it."""
    cdef Hole h
    cdef Py_ssize_t i = c.nholes - 1
    if c.gate is not None:
        # A binary reply through the gate that is an error was one of memcached's write
        # points: which replies are dropped is known once every one of them is in.
        if not out_holes_filled(c):
            c.drop_deferred = True
            return
        c.drop_deferred = False
        while i >= 0:
            h = <Hole>c.holes[i]
            if h.seq < c.mark_seq:
                break
            if h.kind == HK_WRITE_POINT:
                c.mark = <size_t>(h.at - c.wbase)
                c.mark_seq = h.seq + 1
                break
            i -= 1
        i = c.nholes - 1
    debug_assert(c.mark <= c.wbuf.len)
    c.wbuf.len = c.mark
    while i >= 0:
        h = <Hole>c.holes[i]
        if h.seq < c.mark_seq:
            break
        h.dropped = True
        # Its place in the output is gone with the bytes around it: it waits at the mark.
        if h.at > c.wbase + c.mark:
            h.at = c.wbase + c.mark
        i -= 1

cdef void out_emit_ready(Connection c):
    # Waiting for a command, memcached writes everything; reading a value, only what
    # came before its last write point.
    cdef size_t n
    cdef bytes out
    if c.nholes == 0 and c.state == ST_CMD:
        # The plain path, written out: one bytes object, one write, an emptied buffer.
        n = c.wbuf.len
        if n == 0:
            return
        if c.transport is not None:
            out = PyBytes_FromStringAndSize(c.wbuf.data, n)
            c.srv.bytes_written += n
            c.transport.write(out)
        pc_wbuf_clear(&c.wbuf)
        c.npin = 0
        c.wbase += n
        c.mark = 0
    elif c.state == ST_CMD:
        out_emit(c, c.wbuf.len, c.hole_seq)
    else:
        out_emit(c, c.mark, c.mark_seq)

cdef void out_emit(Connection c, size_t upto, uint64_t seq_limit):
    """Writes wbuf[0:upto] with the filled holes in their places, stopping at the first
    unfilled hole (or the first made at seq_limit or later): one transport.write."""
    cdef Hole h
    cdef size_t rel
    cdef list parts
    cdef bytes out
    if c.drop_deferred:
        # Nothing past the last write point leaves before _drop_to_mark decided.
        upto = upto if upto < c.mark else c.mark
        seq_limit = seq_limit if seq_limit < c.mark_seq else c.mark_seq
    if c.nholes == 0:
        if upto == 0:
            return
        if c.transport is not None:
            out = PyBytes_FromStringAndSize(c.wbuf.data, upto)
            c.srv.bytes_written += upto
            out_write(c, out)
        out_consume(c, upto)
        return
    parts = []
    while c.nholes:
        h = <Hole>c.holes[0]
        rel = <size_t>(h.at - c.wbase)
        if rel > upto or h.seq >= seq_limit:
            break
        if rel:
            parts.append(PyBytes_FromStringAndSize(c.wbuf.data, rel))
            out_consume(c, rel)
            upto -= rel
        if not h.filled:
            upto = 0
            break
        if h.data and not h.dropped:
            parts.append(h.data)
        c.holes.popleft()
        c.nholes -= 1
        if c.nholes == 0:
            c.npend = 0         # the coordinator's pending writes were all answered
    if upto:
        parts.append(PyBytes_FromStringAndSize(c.wbuf.data, upto))
        out_consume(c, upto)
    # Nothing past the first unfilled hole was written: it still sits at or after the
    # first byte not yet written.
    debug_assert(c.nholes == 0 or (<Hole>c.holes[0]).at >= c.wbase)
    if parts and c.transport is not None:
        out = b"".join(parts)
        c.srv.bytes_written += PyBytes_GET_SIZE(out)
        out_write(c, out)

cdef void out_write(Connection c, bytes out):
    c.transport.write(out)

cdef Hole out_hole(Connection c, uint8_t kind):
    cdef Hole h = Hole.__new__(Hole)
    debug_assert(c.nholes == 0 or
                 (<Hole>c.holes[-1]).at <= c.wbase + c.wbuf.len)
    h.conn = c
    h.kind = kind
    h.at = c.wbase + c.wbuf.len
    h.seq = c.hole_seq
    c.hole_seq += 1
    c.holes.append(h)
    c.nholes += 1
    return h

cdef void out_hole_filled(Connection c, Hole h):
    global _dirty
    if c.busy or c.draining or (c.holes[0] is not h and not c.stalled
                                      and not c.drop_deferred):
        # Written when the holes before it are, at the end of the request loop running
        # now, or at the end of the peer link's batch. A stalled connection looks at
        # every fill: the last one it waits for may be any of them.
        return
    if _batching:
        c.draining = True
        _dirty.append(c)
    else:
        out_drain(c)

cdef void out_drain(Connection c):
    """Writes what holes no longer hold back; resumes reading, or closes, once they are
    gone."""
    if c.transport is None:
        return
    if c.drop_deferred and out_holes_filled(c):
        out_drop_to_mark(c)
    try:
        if c.closing:
            out_emit(c, c.wbuf.len, c.hole_seq)
            if c.nholes == 0:
                c.transport.close()
            return
        if c.stalled or c.filling:
            out_emit(c, c.mark, c.mark_seq)    # as at the end of _process
        elif c.eof:
            # After a half-close nothing more comes: what is left goes out as it is,
            # but for the replies an unfinished value holds back (as eof_received).
            if c.state != ST_CMD:
                out_drop_to_mark(c)
            out_emit(c, c.wbuf.len, c.hole_seq)
        else:
            out_emit_ready(c)
    except RuntimeError:
        # A transport that failed (the client reset us) refuses writes until
        # connection_lost arrives on the next loop turn: the replies have nowhere to go.
        c.transport.abort()
        return
    if c.holes_paused and c.nholes < HOLES_HIGH // 4 and c.wbuf.len < WBUF_FLUSH:
        c.holes_paused = False
        c._update_reading()
        if c.rend:
            c._run()
    elif c.stalled and out_holes_filled(c):
        c.stalled = False
        c._run()
    if c.eof and not c.stalled and not c.filling and not c.closing and \
            c.transport is not None:
        if c.state != ST_CMD:
            out_drop_to_mark(c)    # a value cut short by the half-close, as eof_received
        out_emit(c, c.wbuf.len, c.hole_seq)
        if c.nholes == 0:
            c.transport.close()
