# The client connection: buffers, flow control, the request loop, the command switch, and
# replies in request order. The commands are in _text.pxi and _meta.pxi; a keyed request in
# a cluster asks the coordinator (srv.coord, cluster/_coord.pyx) where it runs; `stats` and the admin commands are plain Python (stats.py,
# admin.py); commands that are not memcached's come through extensions.py.
#
# socket -> Connection.buffer_updated -> pc_proto tokenizer -> _command -> text_*/meta_* ->
# pc_store_*_hv -> wbuf. Every complete request in the received bytes is answered in one
# pass, replies in request order into one pc_wbuf, and the batch leaves in one
# transport.write. Hits and misses of get/set/delete create no Python object (the generated C
# of text_get/text_update/_complete_nread/text_delete/meta_mg/meta_ms calls no Python API).
# NOTE: memcaslap -c 16 -T 1 for 4 s on 2 shared cores: 69.0k ops/s here, 66.6k against
# memcached 1.6.18 (-t 4): both bound by the single memcaslap thread, not by the server.
#
# Holes. A request answered elsewhere (by the key's owner, or by an extension's awaitable)
# leaves a Hole at the current end of the output; later replies keep queueing behind it;
# nothing past the first unfilled hole is written; once it is filled, everything up to the
# next unfilled hole leaves in one write. Invariants: a hole is a reply like any other for
# memcached's write points: one made after the last write point is held while a value is
# read, and dropped (its reply ignored when it comes) where memcached drops the unwritten
# replies (_drop_to_mark), so error paths stay byte-exact; holes are filled in bounded time
# (the link's timeout, the extension's timeout); reading pauses while holes or the bytes
# queued behind them pile up; close waits for them. With no hole open the path is the plain
# one.
cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove, memset, strcmp, strlen

from pycache_cluster.protocol._cdefs cimport *
from pycache_cluster.store._store cimport *

import collections
import sys

from pycache_cluster.protocol import admin, stats
from pycache_cluster.protocol.auth import AuthFile
from pycache_cluster.protocol.extensions import Extensions, call, settle

from pycache_cluster import MEMCACHED_VERSION

# What memcached clients (and memccapable) are shown; ours is in `stats`.
cdef bytes VERSION = MEMCACHED_VERSION.encode()
cdef bytes VERSION_LINE = b"VERSION " + VERSION

# Connection states: reading command lines, reading a value, discarding a value.
DEF ST_CMD = 0
DEF ST_NREAD = 1
DEF ST_SWALLOW = 2

DEF RBUF_INITIAL = 16384
# Values of this many bytes and more are read straight into their item (see _nread_begin).
DEF DIRECT_MIN = 16384
# memcached's reqs_per_event: it writes replies out after 21, 41, 61... requests of a read
# event; a failed get ("release items") drops the replies not yet written since then.
DEF REQS_PER_EVENT = 20
# Pause reading a client whose unsent replies exceed this (resume at a quarter of it).
DEF WRITE_HIGH_WATER = 4 * 1024 * 1024
DEF KEY_MAX = 250
# Replies beyond this are handed to the transport before the next request is parsed.
DEF WBUF_FLUSH = 1024 * 1024
# Reading pauses at this many outstanding holes (or WBUF_FLUSH bytes queued behind them) and
# resumes below a quarter of it.
DEF HOLES_HIGH = 4096

include "_output.pxi"
include "_text.pxi"
include "_meta.pxi"
include "_binary.pxi"
include "_bingate.pxi"


# C's assert: on in the sanitizer build (-UNDEBUG), compiled out in release builds.
cdef extern from "assert.h":
    void debug_assert "assert"(bint condition) noexcept


# The commands whose service times are sampled, by name (the names of `stats`).
_LAT_NAMES = {
    PC_CMD_GET: "get", PC_CMD_GETS: "gets", PC_CMD_GAT: "gat", PC_CMD_GATS: "gats",
    PC_CMD_SET: "set", PC_CMD_ADD: "add", PC_CMD_REPLACE: "replace", PC_CMD_APPEND: "append",
    PC_CMD_PREPEND: "prepend", PC_CMD_CAS: "cas", PC_CMD_DELETE: "delete",
    PC_CMD_INCR: "incr", PC_CMD_DECR: "decr", PC_CMD_TOUCH: "touch",
    PC_CMD_MG: "mg", PC_CMD_MS: "ms", PC_CMD_MD: "md", PC_CMD_MA: "ma",
}


include "_state.pxi"


@cython.final
cdef class Connection:
    """One client: asyncio.BufferedProtocol whose buffer is the connection's own read buffer."""

    def __cinit__(self, ServerState srv):
        self.srv = srv
        self.s = srv.s
        self.rbuf = NULL         # taken from the server's spares on the first read
        self.rcap = 0
        self.rend = 0
        pc_wbuf_init(&self.wbuf)
        self.state = ST_CMD
        self.holes = collections.deque()
        self.p.owner = -1

    def __dealloc__(self):
        self._nread_drop()
        if self.rbuf != NULL:
            self.srv.give_rbuf(self.rbuf, self.rcap)
            self.rbuf = NULL
        pc_wbuf_free(&self.wbuf)

    # -- asyncio.BufferedProtocol ------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        cdef ServerState srv = self.srv
        if srv.curr_conns >= <uint64_t>srv.settings.conn_limit:
            # memcached (maxconns_fast): a one-line error, then the connection is closed.
            srv.rejected_conns += 1
            self.rejected = True
            transport.write(b"ERROR Too many open connections\r\n")
            transport.close()
            return
        srv.curr_conns += 1
        srv.total_conns += 1
        srv.conns.add(self)
        self.peername = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1
        self.tls = transport.get_extra_info("sslcontext") is not None
        if srv.auth_users is not None:
            self.auth = srv.auth_users.session()
            self.unauth = True
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if srv.verbosity > 1:
            _log("<%d new client connection" % self.fd)
        if srv.conn_watch is not None:
            srv.conn_watch(self.peername, self.fd, None)

    def connection_lost(self, exc):
        cdef Hole h
        if self.srv.verbosity > 1 and not self.rejected:
            _log("<%d connection closed." % self.fd)
        if not self.rejected:
            self.srv.curr_conns -= 1
            self.srv.conns.discard(self)
            if self.srv.conn_watch is not None:
                # memcached's close reasons: a failed read or write is an error, and so is
                # a watcher's end (its logger drops it); a client that hung up, or a close
                # of ours (quit, a bad line), is normal.
                self.srv.conn_watch(self.peername, self.fd,
                                    "error" if exc is not None or self.watcher else
                                    "shutdown" if self.shut else "normal")
        self.transport = None
        if self.gate is not None:
            (<BinaryGate>self.gate).close_inner()
            self.gate = None
        self._nread_drop()      # a value cut short: its item goes, and its charge with it
        # Replies still owed go nowhere: their links drop them, their tasks stop.
        for h in self.holes:
            h.conn = None
            h.filled = True
            if h.task is not None:
                h.task.cancel()
        self.holes.clear()
        self.nholes = 0

    def get_buffer(self, Py_ssize_t sizehint):
        cdef size_t want = RBUF_INITIAL // 2
        if self.nread_it != NULL and self.rend == 0 and self.nread_got < self.nread_it.nbytes:
            # The rest of a big value goes straight into its item (its \r\n into rbuf).
            self.direct = True
            return self
        self.direct = False
        if self.rbuf == NULL:
            self.rbuf = self.srv.take_rbuf()
            if self.rbuf == NULL:
                raise MemoryError()
            self.rcap = RBUF_INITIAL
        if self.state == ST_NREAD and self.nread_it == NULL and self.p.vlen > self.rend + want:
            want = self.p.vlen - self.rend     # the rest of the value (its start is at 0)
        if self.rcap - self.rend < want:
            self._grow(self.rend + want)
        return self

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self.direct:
            PyBuffer_FillInfo(view, self, pc_item_value(self.nread_it) + self.nread_got,
                              self.nread_it.nbytes - self.nread_got, 0, flags)
            return
        PyBuffer_FillInfo(view, self, self.rbuf + self.rend, self.rcap - self.rend, 0, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __len__(self):
        # uvloop's TLS reader sizes its read by len() of get_buffer's answer (its plain TCP
        # reader takes the buffer alone): the free room, as __getbuffer__ exposes it.
        if self.direct:
            return self.nread_it.nbytes - self.nread_got
        return self.rcap - self.rend

    def __bool__(self):
        return True     # a connection is never falsy, whatever room its buffer has

    def buffer_updated(self, Py_ssize_t nbytes):
        if self.direct:
            # More of a big value, read into its item: nothing to parse until its \r\n.
            self.direct = False
            self.nread_got += nbytes
            self.srv.bytes_read += nbytes
            self.nreqs = 0
            return
        self.rend += nbytes
        self.srv.bytes_read += nbytes
        self.nreqs = 0                  # a new read event, as memcached counts them
        if self.busy:
            return
        # _run() inlined: the read path is the hot one (callgrind: 30 instructions a request).
        self.busy = True
        try:
            self._process()
        except BaseException:
            if self.transport is not None:
                self.transport.abort()
            raise
        self.busy = False

    def eof_received(self):
        # A half-closed client still gets the replies to what it sent; then we close. As in
        # memcached, replies held back for an unfinished value are dropped with it.
        if self.filling:
            # Requests still unread wait for a fill: memcached would have read them all
            # before it saw the end (_drain writes, or drops, once they ran).
            self.eof = True
            return True
        if self.state != ST_CMD:
            out_drop_to_mark(self)
        out_emit(self, self.wbuf.len, self.hole_seq)
        if self.nholes or self.stalled:
            # Keep the socket open for the replies peers still owe (and the requests a
            # flush_all holds back); _drain closes it.
            self.eof = True
            return True
        return False

    def close_when_drained(self):
        """Shutdown: stop reading; replies already queued are sent, then the socket closes."""
        if self.transport is not None:
            self.closing = True
            self.shut = True
            if self.nholes == 0:
                self.transport.close()
            else:
                self._update_reading()

    def pause_writing(self):
        self.paused = True
        self._update_reading()

    def resume_writing(self):
        if self.paused and not self.watcher:
            self.paused = False
            self._update_reading()
            if self.rend:
                # Requests read before the pause are still waiting in the read buffer.
                self._run()

    def mark_peer(self, str name):
        """This connection proved it is a cluster peer: its requests are never forwarded."""
        self.peer = True
        self.peer_name = name
        # A proven peer holds the cluster key: that is its authentication.
        self.unauth = False
        self.auth = None

    @property
    def is_peer(self):
        return self.peer

    def become_watcher(self, protocol):
        """memcached's `watch`: the connection only receives log lines from now on. What its
        client sends is no longer run: `protocol(self)` takes the transport over (reading
        and dropping, as memcached's logger does to notice a hang-up) and hands the close
        back to connection_lost. Returns the transport the lines are written to."""
        self.watcher = True
        # The batch stops here, as it does for backpressure (resume_writing() no longer
        # comes here to carry on): what followed `watch` is never answered.
        self.paused = True
        self.transport.set_protocol(protocol(self))
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        return self.transport

    @property
    def output_queued(self):
        """Reply bytes made but not yet handed to the transport."""
        return self.wbuf.len

    @property
    def holes_open(self):
        return self.nholes

    # -- buffers and flow control ------------------------------------------------------------

    cdef int _grow(self, size_t need) except -1:
        # To what is needed, in 16 KiB steps: a value in flight is read whole (memcached
        # reads it into its item), and doubling would hold up to twice its size.
        cdef size_t cap = (need + RBUF_INITIAL - 1) // RBUF_INITIAL * RBUF_INITIAL
        cdef char *p = <char *>realloc(self.rbuf, cap)
        if p == NULL:
            self.srv.read_buf_oom += 1
            raise MemoryError()
        self.srv.read_buf_bytes += cap - self.rcap
        self.rbuf = p
        self.rcap = cap
        return 0

    cdef void _settle_rbuf(self) noexcept:
        # After a batch: nothing left over gives the buffer back; a grown one shrinks to
        # the standard size once what is left fits in it.
        cdef char *p
        if self.rbuf == NULL:
            return
        if self.rend == 0:
            self.srv.give_rbuf(self.rbuf, self.rcap)
            self.rbuf = NULL
            self.rcap = 0
        elif self.rcap > RBUF_INITIAL and self.rend <= RBUF_INITIAL // 2:
            p = <char *>realloc(self.rbuf, RBUF_INITIAL)
            if p != NULL:
                self.srv.read_buf_bytes -= self.rcap - RBUF_INITIAL
                self.rbuf = p
                self.rcap = RBUF_INITIAL

    cdef void _update_reading(self):
        # One place decides: paused by the transport's backpressure, by holes piling up, or
        # for good once closing (only holes are still awaited then); a watcher's protocol
        # reads on its own.
        cdef bint want = self.paused or self.holes_paused or self.closing
        if self.transport is None or self.watcher or want == self.reading_paused:
            return
        self.reading_paused = want
        if want:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    cdef void _out(self, const char *line) noexcept:
        """memcached's out_string: one line, silenced by noreply (which it consumes)."""
        if self.noreply:
            self.noreply = False
            return
        pc_wbuf_add(&self.wbuf, line, strlen(line))
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)

    cdef void _out_err(self, const char *line) noexcept:
        """memcached's out_errstring: meta errors ignore noreply."""
        self.noreply = False
        self._out(line)

    # -- the request loop --------------------------------------------------------------------

    cdef void _run(self):
        if self.busy:
            return
        self.busy = True
        try:
            self._process()
        except BaseException:
            if self.transport is not None:
                self.transport.abort()
            raise
        finally:
            self.busy = False

    cdef void _process(self):
        cdef size_t pos = 0, avail, line_end, n, nline
        cdef int r
        cdef uint64_t t0
        if self.proto != PROTO_TEXT:
            if self.proto == PROTO_NONE:
                # memcached with -Y speaks ascii only: a binary frame is text to it.
                self.proto = PROTO_TEXT if self.unauth else detect_protocol(self)
            if self.proto == PROTO_NONE:
                self._finish(0)
                return
            if self.proto == PROTO_BINARY:
                self._finish(binary_batch(self))
                return
        while not self.closing:
            if self.filling:
                break           # fill_done() carries on from here
            if self.wbuf.len >= WBUF_FLUSH and self.state == ST_CMD:
                # Big replies leave as they are made, so a client that does not read holds
                # at most the transport's high-water mark plus one command's reply here.
                out_emit(self, self.wbuf.len, self.hole_seq)
            if self.paused:
                break           # resume_writing() carries on from here
            if self.nholes and (self.nholes >= HOLES_HIGH or self.wbuf.len >= WBUF_FLUSH):
                self.holes_paused = True        # _drain() carries on from here
                self._update_reading()
                break
            if self.barrier:
                if not out_holes_filled(self):
                    self.stalled = True         # _drain carries on once they are in
                    break
                self.barrier = False
            avail = self.rend - pos
            if self.state == ST_SWALLOW:
                n = self.swallow_left if self.swallow_left < avail else avail
                pos += n
                self.swallow_left -= n
                if self.swallow_left:
                    self.spanned = True
                    break
                self.state = ST_CMD
                self._request_done()
                if self.spanned:
                    self._value_read_apart()
                continue
            if self.state == ST_NREAD and self.nread_it != NULL:
                # A big value read into its item: what rbuf holds of it, then its \r\n.
                n = self.nread_it.nbytes - self.nread_got
                if n > avail:
                    n = avail
                if n:
                    memcpy(pc_item_value(self.nread_it) + self.nread_got, self.rbuf + pos, n)
                    self.nread_got += n
                    pos += n
                    avail -= n
                if self.nread_got < self.nread_it.nbytes or avail < 2:
                    self.spanned = True
                    break
                if pc_lat_due(&self.srv.lat):
                    t0 = pc_lat_now()
                    self._nread_done(self.rbuf + pos)
                    pc_lat_add(&self.srv.lat, self.p.cmd, pc_lat_now() - t0)
                else:
                    self._nread_done(self.rbuf + pos)
                pos += 2
                self.state = ST_CMD
                self._request_done()
                if self.spanned:
                    self._value_read_apart()
                continue
            if self.state == ST_NREAD:
                if avail < self.p.vlen:
                    self.spanned = True
                    break
                if pc_lat_due(&self.srv.lat):
                    t0 = pc_lat_now()
                    self._complete_nread(self.rbuf + pos)
                    pc_lat_add(&self.srv.lat, self.p.cmd, pc_lat_now() - t0)
                else:
                    self._complete_nread(self.rbuf + pos)
                pos += self.p.vlen
                self.state = ST_CMD
                self._request_done()
                if self.spanned:
                    self._value_read_apart()
                continue
            if avail == 0:
                break
            if self.unauth:
                n = self._auth_step(pos)
                if n == 0:
                    break
                pos += n
                continue
            r = pc_proto_find_line(self.rbuf + pos, avail, &line_end)
            if r == 0:
                break
            if r < 0:
                # memcached: no '\n' in the first 2048 bytes and not a get: close, leaving
                # the replies it had not written yet unanswered.
                self.closing = True
                break
            nline = line_end + 1
            if self.nholes and self.srv.coord is not None and not out_holes_filled(self) and \
                    line_end >= 9 and memcmp(self.rbuf + pos, b"flush_all", 9) == 0:
                # A cluster's flush_all is versioned by this node's clock, which must first
                # have seen what the writes before it got at their owners (their clock
                # fences): it waits for them. _drain carries on from here.
                self.stalled = True
                break
            if pc_lat_due(&self.srv.lat):
                # A storage command's sample is taken when its value is stored (above):
                # until then it waits on the client, not on this node.
                t0 = pc_lat_now()
                self._command(self.rbuf + pos, line_end)
                if self.state == ST_CMD:
                    pc_lat_add(&self.srv.lat, self.cmd, pc_lat_now() - t0)
            else:
                self._command(self.rbuf + pos, line_end)
            if self.reread:
                self.reread = False
                continue        # the same line again, now, or when its fill ends
            pos += nline
            if self.state == ST_CMD:
                self._request_done()
            elif self.state == ST_NREAD and self.p.vlen >= DIRECT_MIN + 2 and \
                    self.rend - pos < self.p.vlen:
                self._nread_begin()
        self._finish(pos)

    cdef void _finish(self, size_t pos):
        """After a batch of requests (text or binary) up to rbuf[pos]: keep the rest, send
        the replies memcached would have sent by now, or close."""
        # Keep what is left (a partial line or value) at the front of the buffer.
        if pos:
            if pos < self.rend:
                memmove(self.rbuf, self.rbuf + pos, self.rend - pos)
            self.rend -= pos
        self._settle_rbuf()
        if self.closing:
            if not self.close_after_write:
                out_drop_to_mark(self)
            out_emit(self, self.wbuf.len, self.hole_seq)
            if self.transport is not None:
                if self.nholes == 0:
                    self.transport.close()
                else:
                    self._update_reading()      # stop reading; _drain closes
            return
        # memcached writes replies out while it waits for a command line, but not while it
        # reads (or discards) a value: replies after its last write point (`mark`) leave once
        # the value is complete. Stalled (flush_all) or filling with requests still unread is
        # the same: memcached would have gone on without writing.
        if self.stalled or self.filling:
            out_emit(self, self.mark, self.mark_seq)
        else:
            out_emit_ready(self)

    cdef void _request_done(self) noexcept:
        self.noreply = False
        self.nreqs += 1
        # memcached yields (and writes) after 21 requests of a read event, then every 20:
        # its counter starts at reqs_per_event and the write after a yield costs one count.
        if self.nreqs > REQS_PER_EVENT and self.nreqs % REQS_PER_EVENT == 1:
            self._write_point()

    cdef size_t _auth_step(self, size_t pos):
        # Before a user is proven (-Y): memcached's conversation, protocol/auth.py. The
        # handshake of a cluster peer (which proves the cluster key instead) goes through.
        cdef size_t avail = self.rend - pos
        cdef size_t line_end
        cdef int found
        if self.srv.coord is not None and avail > 13 and \
                (memcmp(self.rbuf + pos, b"cluster peer ", 13) == 0 or
                 memcmp(self.rbuf + pos, b"cluster auth ", 13) == 0):
            found = pc_proto_find_line(self.rbuf + pos, avail, &line_end)
            if found < 0:           # no line in 2048 bytes: closed, as after proof
                self.closing = True
            if found <= 0:
                return 0
            self._command(self.rbuf + pos, line_end)
            self._request_done()
            return line_end + 1
        if self.auth is None:
            # -S: text is a peer's handshake or nothing (memcached closes it as a bad frame).
            if avail <= 13 and memcmp(self.rbuf + pos, b"cluster peer ", avail) == 0:
                return 0
            self.closing = True
            return 0
        data = PyBytes_FromStringAndSize(self.rbuf + pos, avail)
        used, reply, close = self.auth.step(data)
        if reply is not None:
            # memcached answers these in one response object: each reply replaces the one
            # before it that was not written yet.
            self.wbuf.len = self.mark
            self._write_py(reply)
            self._request_done()
        if close:
            self.closing = True
        if self.auth.done:
            self.unauth = False
            self.auth = None
        return used

    cdef void _value_read_apart(self) noexcept:
        # memcached read this value's rest straight off the socket and nothing more: its
        # replies are written now (a `CLIENT_ERROR bad data chunk` survives a close on the
        # junk that follows), and what follows is a new read event.
        self.spanned = False
        self._write_point()
        self.nreqs = 0

    cdef void _write_point(self) noexcept:
        self.mark = self.wbuf.len
        self.mark_seq = self.hole_seq
        self.npin = 0

    cdef void _pin(self, pc_item *it) noexcept:
        if self.npin < 32:
            self.pin_ptr[self.npin] = <void *>it
            self.pin_ver[self.npin] = it.version
            self.npin += 1

    cdef bint _pinned(self, const char *key, size_t nkey, uint32_t hv) noexcept:
        cdef pc_item *it
        cdef int i
        if self.npin == 0:
            return False
        # The node's own check, not a client's fetch: no item_get line for watchers.
        it = pc_store_find_hv(self.s, key, nkey, hv)
        if it == NULL:
            return False
        for i in range(self.npin):
            if self.pin_ptr[i] == <void *>it and self.pin_ver[i] == it.version:
                return True
        return False

    cdef bint _noreply_maybe(self, pc_token *tokens, size_t ntokens) noexcept:
        cdef pc_token *t = &tokens[ntokens - 2]
        if t.value != NULL and _is(t.value, b"noreply"):
            self.noreply = True
        return self.noreply

    cdef void _swallow(self, size_t n) noexcept:
        self._nread_drop()
        self.swallow_left = n
        self.state = ST_SWALLOW

    cdef void _command(self, char *line, size_t line_end):
        cdef pc_token tokens[PC_MAX_TOKENS]
        cdef size_t ntokens
        cdef uint32_t hv = 0
        cdef int where
        cdef bint hop = self.hop
        cdef Coordinator coord = self.srv.coord
        self.hop = False        # `mn P` marks the one request right after it
        pc_proto_terminate(line, line_end)
        if self.srv.verbosity > 1:
            # memcached -vv: every request line, as "<fd line".
            _log("<%d %s" % (self.fd, (<bytes>line).decode("utf-8", "replace")))
        ntokens = pc_tokenize(line, tokens, PC_MAX_TOKENS)
        cdef pc_cmd cmd = pc_proto_command(tokens, ntokens)
        self.cmd = cmd
        if coord is not None and self.peer:
            coord.peer_requests += 1
        if _keyed(cmd) and ntokens >= 3:
            # The one owner test of a single-key command: before the switch, whose arms
            # stay free of routing (a routed storage command still reads its value there).
            self.p.version = 0
            self.p.routed = False
            if key_hash(cmd, tokens, ntokens, &hv) and coord is not None:
                self.p.owner = -1
                self.p.fanout = False
                self.p.refuse = False
                where = coord.command(self, cmd, tokens, ntokens, hv, hop)
                if where == CO_DONE:
                    return
                if where == CO_REREAD:
                    # Not run now: the line goes back as it came, to be read again once
                    # the coordinator is ready for it (_process stops in front of it).
                    _restore_line(line, line_end, tokens, ntokens)
                    self.reread = True
                    return
                if where == CO_REPLICATED:
                    self._command_replicated(coord, cmd, tokens, ntokens, hv)
                    return
        self._dispatch(cmd, tokens, ntokens, hv)

    cdef void _command_replicated(self, Coordinator coord, pc_cmd cmd, pc_token *tokens,
                                  size_t ntokens, uint32_t hv):
        # The arm runs here, on the key's first owner; what it changed goes on to the
        # other owners.
        cdef unsigned char decoded[256]
        cdef const char *key = tokens[1].value
        cdef size_t nkey = tokens[1].length
        cdef size_t start = self.wbuf.len
        cdef uint64_t before
        if has_flag(cmd, tokens, ntokens, b'b'):
            nkey = pc_base64_decode(<const unsigned char *>key, nkey, decoded, sizeof(decoded))
            key = <const char *>decoded
        before = slot_version(self, key, nkey, hv)
        self._dispatch(cmd, tokens, ntokens, hv)
        coord.after_write(self, cmd, tokens, ntokens, key, nkey, hv, start, before)

    cdef void _dispatch(self, pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t hv):
        if cmd == PC_CMD_GET:
            text_get(self, tokens, ntokens, False, False)
        elif cmd == PC_CMD_GETS:
            text_get(self, tokens, ntokens, True, False)
        elif cmd == PC_CMD_SET:
            text_update(self, tokens, ntokens, cmd, PC_SET, hv)
        elif cmd == PC_CMD_DELETE:
            text_delete(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_MG:
            meta_get(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_MS:
            meta_set(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_ADD:
            text_update(self, tokens, ntokens, cmd, PC_ADD, hv)
        elif cmd == PC_CMD_REPLACE:
            text_update(self, tokens, ntokens, cmd, PC_REPLACE, hv)
        elif cmd == PC_CMD_APPEND:
            text_update(self, tokens, ntokens, cmd, PC_APPEND, hv)
        elif cmd == PC_CMD_PREPEND:
            text_update(self, tokens, ntokens, cmd, PC_PREPEND, hv)
        elif cmd == PC_CMD_CAS:
            text_update(self, tokens, ntokens, cmd, PC_CAS, hv)
        elif cmd == PC_CMD_GAT:
            text_get(self, tokens, ntokens, False, True)
        elif cmd == PC_CMD_GATS:
            text_get(self, tokens, ntokens, True, True)
        elif cmd == PC_CMD_INCR:
            text_arith(self, tokens, ntokens, 1, hv)
        elif cmd == PC_CMD_DECR:
            text_arith(self, tokens, ntokens, 0, hv)
        elif cmd == PC_CMD_TOUCH:
            text_touch(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_MD:
            meta_delete(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_MA:
            meta_arith(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_MN:
            if self.peer and ntokens == 3 and tokens[1].value[0] == b'c':
                # A clock fence (peer links only): this node's clock, past every version
                # it made or applied.
                pc_wbuf_add(&self.wbuf, b"MN c", 4)
                pc_wbuf_add_u64(&self.wbuf, pc_store_next_version(self.s))
                pc_wbuf_add(&self.wbuf, b"\r\n", 2)
            elif self.peer and ntokens == 3 and _is(tokens[1].value, b"P"):
                self.hop = True     # the next request was routed here by a peer
                self._out(b"MN")
            else:
                self._out(b"MN")
            self._write_point()     # "mn command forces immediate writeback flush"
        elif cmd == PC_CMD_ME:
            meta_debug(self, tokens, ntokens, hv)
        elif cmd == PC_CMD_VERSION:
            self._out(VERSION_LINE)
        elif cmd == PC_CMD_QUIT:
            self.closing = True
            self.close_after_write = True
        elif cmd == PC_CMD_HTTP:
            self.closing = True
        elif cmd == PC_CMD_FLUSH_ALL:
            text_flush_all(self, tokens, ntokens)
        elif cmd == PC_CMD_ERROR or cmd == PC_CMD_EXTENSION:
            # The seam for commands that are not memcached's (cluster, locks): a handler in
            # the extensions registry, else memcached's ERROR.
            if tokens[0].value != NULL:
                self._extension(tokens, ntokens)
            else:
                self._out(b"ERROR")
        else:
            # The rare commands: Python is fine here.
            text_admin(self, cmd, tokens, ntokens)

    cdef void _complete_nread(self, const char *data):
        cdef size_t nbytes = self.p.vlen - 2
        cdef pc_status st
        cdef pc_item *it = NULL
        self.noreply = self.p.noreply
        if data[nbytes] != b'\r' or data[nbytes + 1] != b'\n':
            if self.p.meta:
                self.noreply = False      # meta set errors are always answered
            self._out(b"CLIENT_ERROR bad data chunk")
            return
        if self.p.routed:
            if self.srv.coord is None:
                # The value came after the node stopped routing (it is stopping).
                self._out(b"SERVER_ERROR node leaving the cluster")
                return
            self.srv.coord.stored(self, data, self.p.vlen)
            return
        if self.p.version:
            meta_apply_done(self, data, nbytes)
            return
        cdef Coordinator coord = self.srv.coord
        cdef bint replicating = coord is not None and coord.replicated
        cdef uint64_t before = 0
        cdef size_t start = self.wbuf.len
        if replicating:
            before = slot_version(self, self.p.key, self.p.nkey, self.p.hv)
        self.srv.cmd_set += 1
        st = pc_store_store_hv(self.s, self.p.mode, self.p.key, self.p.nkey, self.p.hv,
                               self.p.flags, self.p.exptime, data, nbytes, self.p.cas, 0, &it)
        if self.p.meta:
            meta_set_done(self, st, it)
        else:
            text_update_done(self, st)
        if replicating:
            coord.after_write(self, self.p.cmd, NULL, 0, self.p.key, self.p.nkey, self.p.hv,
                              start, before)

    cdef void _nread_begin(self) noexcept:
        # A big value that did not come with its line, for this node's store alone: read it
        # into an unlinked item (charged to -m now, linked by _nread_done). A value for
        # another owner, a replicated write, a replica's versioned write, TLS: through rbuf,
        # as is a value the store has no room for now (the store answers it as before).
        if self.p.routed or self.p.version or self.tls:
            return
        if self.srv.coord is not None and self.srv.coord.replicated:
            return
        self.nread_got = 0
        self.nread_it = pc_store_alloc_unlinked(self.s, self.p.key, self.p.nkey, self.p.hv,
                                                self.p.vlen - 2)

    cdef void _nread_done(self, const char *crlf):
        # _complete_nread for a value already in its item: the same replies.
        cdef pc_item *it = self.nread_it
        cdef pc_item *stored = NULL
        cdef pc_status st
        self.nread_it = NULL
        self.noreply = self.p.noreply
        if crlf[0] != b'\r' or crlf[1] != b'\n':
            pc_store_free_unlinked(self.s, it)
            if self.p.meta:
                self.noreply = False      # meta set errors are always answered
            self._out(b"CLIENT_ERROR bad data chunk")
            return
        self.srv.cmd_set += 1
        st = pc_store_link_hv(self.s, self.p.mode, it, self.p.hv, self.p.flags,
                              self.p.exptime, self.p.cas, 0, &stored)
        if self.p.meta:
            meta_set_done(self, st, stored)
        else:
            text_update_done(self, st)

    cdef void _nread_drop(self) noexcept:
        if self.nread_it != NULL:
            pc_store_free_unlinked(self.s, self.nread_it)
            self.nread_it = NULL
            self.direct = False

    # -- Python's side of the seam -----------------------------------------------------------

    cdef list _args(self, pc_token *tokens, size_t ntokens):
        cdef list out = []
        cdef size_t i
        for i in range(ntokens - 1):
            out.append(PyBytes_FromStringAndSize(tokens[i].value, tokens[i].length))
        if tokens[ntokens - 1].value != NULL:
            out.extend(bytes(tokens[ntokens - 1].value).split())
        return out

    cdef void _write_py(self, bytes out):
        if out:
            pc_wbuf_add(&self.wbuf, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out))

    cdef void _extension(self, pc_token *tokens, size_t ntokens):
        cdef list args = self._args(tokens, ntokens)
        handler = self.srv.extensions.command(args[0])
        if handler is None:
            self._out(b"ERROR")
            return
        self._reply_py(call(handler, self, args))

    cdef void _reply_py(self, object result):
        """A Python handler's answer: bytes now, or an awaitable whose bytes fill a hole."""
        if result is None or type(result) is bytes:
            self._write_py(result)
        else:
            settle(out_hole(self, HK_PY), result, self.srv.extensions.timeout)


def _log(str msg):
    sys.stderr.write(msg + "\n")


include "_tokens.pxi"
