# A peer link: one persistent, pipelined connection to another node's client port, which
# carries the requests this node forwards and routes each reply to the hole that awaits it.
#
# Requests leave in one transport.write per loop tick; every request has exactly one reply
# (the protocol side guarantees it: no noreply, no q), so replies match requests first in,
# first out. Native on purpose: a forwarded get costs no Python object beyond its Hole.
#
# Bounded time, always: a request waits at most `timeout` seconds for its reply (counted from
# when it was queued, connect and handshake included); past that the link is declared stuck,
# every waiting request is answered SERVER_ERROR, and the link reconnects on a later request
# after a backoff. While backing off, requests fail at once rather than queue. Invariant: the
# waiting queue holds exactly the requests written (or queued to be written) and not yet
# answered, oldest first.
cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memmove
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from pycache_cluster.protocol._cdefs cimport (
    pc_reply_frame, pc_wbuf, pc_wbuf_add, pc_wbuf_clear, pc_wbuf_free, pc_wbuf_init)
from pycache_cluster.cluster._coord cimport Link
from pycache_cluster.protocol._conn cimport Waiter, replies_begin, replies_end

DEF ST_IDLE = 0          # never connected
DEF ST_CONNECTING = 1
DEF ST_HANDSHAKE = 2
DEF ST_READY = 3
DEF ST_DOWN = 4          # failed; requests fail fast until retry_at

DEF RBUF_INITIAL = 65536
DEF HANDSHAKE_LINE_MAX = 4096   # far above what a peer's handshake lines hold
DEF BACKOFF_MIN = 0.05
DEF BACKOFF_MAX = 2.0


cdef struct Waiting:
    PyObject *hole      # a Waiter (a reference is held); NULL: nobody hears the reply
    double queued
    bint quiet          # fenced by an mn: its reply, if any, comes before MN


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


@cython.final
cdef class PeerLink(Link):
    """The link to one peer. `owner` is the Python side (cluster.peers.Peer): it connects,
    runs the handshake and hears of failures."""
    cdef public str peer
    cdef public object owner
    cdef public object session      # the handshake's state while it runs
    cdef public double timeout
    cdef public size_t max_waiting
    cdef public uint64_t requests, replies, failed, timeouts, connects
    cdef object transport
    cdef object loop
    cdef int state
    cdef pc_wbuf out
    cdef bint flush_scheduled, watching
    cdef bint fence_due     # the next frame is the MN fencing a quiet request's reply
    cdef Waiting *q
    cdef size_t qcap, qhead, qlen
    cdef char *rbuf
    cdef size_t rcap, rend
    cdef double retry_at, backoff
    cdef bytes why_down

    def __cinit__(self, str peer, owner, loop, double timeout=1.0, size_t max_waiting=65536):
        self.peer = peer
        self.owner = owner
        self.loop = loop
        self.timeout = timeout
        self.max_waiting = max_waiting
        pc_wbuf_init(&self.out)
        self.qcap = 64
        self.q = <Waiting *>malloc(self.qcap * sizeof(Waiting))
        self.rcap = RBUF_INITIAL
        self.rbuf = <char *>malloc(self.rcap)
        if self.q == NULL or self.rbuf == NULL:
            raise MemoryError()
        self.backoff = BACKOFF_MIN
        self.why_down = b"peer " + peer.encode() + b" unreachable"

    def __dealloc__(self):
        cdef size_t i
        for i in range(self.qlen):
            if self.q[(self.qhead + i) % self.qcap].hole != NULL:
                Py_DECREF(<object>self.q[(self.qhead + i) % self.qcap].hole)
        free(self.q)
        free(self.rbuf)
        pc_wbuf_free(&self.out)

    @property
    def state(self):
        return ("idle", "connecting", "handshake", "ready", "down")[self.state]

    @property
    def waiting(self):
        return self.qlen

    # -- the request side (called by connections on the request path) ------------------------

    cdef int send(self, Waiter h, uint32_t hv, const char *head, size_t nhead,
                  const char *tail, size_t ntail, bint quiet) except -1:
        return self._send(h, head, nhead, tail, ntail, quiet)

    cdef int send_waiter(self, Waiter waiter, uint32_t hv, const char *req,
                         size_t n) except -1:
        return self._send(waiter, req, n, NULL, 0, False)

    def call(self, bytes request):
        """Python's way to send one request (a line, with its value if any): a future of
        the reply's bytes, or of PeerError. Queued at once, behind what was sent before."""
        cdef FutureWaiter w = FutureWaiter.__new__(FutureWaiter)
        w.future = self.loop.create_future()
        self._send(w, request, len(request), NULL, 0, False)
        return w.future

    def call_all(self, bytes request):
        return [self.call(request)]

    def call_key(self, bytes request, uint32_t hv):
        """call() on the link the key's requests take (the key's hash, as routing has it)."""
        return self.call(request)

    cdef int _send(self, Waiter waiter, const char *head, size_t nhead, const char *tail,
                   size_t ntail, bint quiet) except -1:
        cdef double now = _now()
        if self.state == ST_DOWN and now < self.retry_at:
            self.failed += 1
            _fail(waiter, self.why_down)
            return 0
        if self.qlen >= self.max_waiting:
            self.failed += 1
            _fail(waiter, b"peer " + self.peer.encode() + b" overloaded")
            return 0
        if self.state == ST_IDLE or self.state == ST_DOWN:
            self.state = ST_CONNECTING
            self.connects += 1
            self.owner.connect(self)
        self._push(waiter, now, quiet)
        pc_wbuf_add(&self.out, head, nhead)
        if ntail:
            pc_wbuf_add(&self.out, tail, ntail)
        if quiet:
            pc_wbuf_add(&self.out, b"mn\r\n", 4)
        self.requests += 1
        if self.state == ST_READY and not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)
        if not self.watching:
            self.watching = True
            self.loop.call_later(self.timeout / 4, self._watch)
        return 0

    cdef void _push(self, Waiter waiter, double now, bint quiet):
        cdef Waiting *grown
        cdef size_t i
        if self.qlen == self.qcap:
            grown = <Waiting *>malloc(2 * self.qcap * sizeof(Waiting))
            if grown == NULL:
                raise MemoryError()
            for i in range(self.qlen):
                grown[i] = self.q[(self.qhead + i) % self.qcap]
            free(self.q)
            self.q = grown
            self.qhead = 0
            self.qcap *= 2
        cdef Waiting *w = &self.q[(self.qhead + self.qlen) % self.qcap]
        w.queued = now
        w.quiet = quiet
        w.hole = NULL
        if waiter is not None:
            Py_INCREF(waiter)
            w.hole = <PyObject *>waiter
        self.qlen += 1

    cdef Waiter _pop(self):
        """The oldest waiting request's waiter (a new reference), or None."""
        cdef Waiting w = self.q[self.qhead]
        self.qhead = (self.qhead + 1) % self.qcap
        self.qlen -= 1
        if w.hole == NULL:
            return None
        h = <Waiter>w.hole
        Py_DECREF(h)
        return h

    def _flush(self):
        self.flush_scheduled = False
        if self.state != ST_READY or self.out.len == 0:
            return
        self.transport.write(PyBytes_FromStringAndSize(self.out.data, self.out.len))
        pc_wbuf_clear(&self.out)

    def _watch(self):
        self.watching = False
        if self.qlen == 0:
            return
        if _now() - self.q[self.qhead].queued > self.timeout:
            self.timeouts += 1
            self.down(b"peer " + self.peer.encode() + b" timed out")
            return
        self.watching = True
        self.loop.call_later(self.timeout / 4, self._watch)

    cpdef down(self, bytes why):
        """Fails every waiting request with `why` and drops the connection; later requests
        fail fast until the backoff has passed."""
        transport, self.transport = self.transport, None
        self.state = ST_DOWN
        self.retry_at = _now() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.rend = 0
        self.fence_due = False
        pc_wbuf_clear(&self.out)
        replies_begin()
        try:
            while self.qlen:
                self.failed += 1
                _fail(self._pop(), why)
        finally:
            replies_end()
        if transport is not None:
            transport.abort()
        self.owner.link_down(self, why)

    # -- asyncio.BufferedProtocol ------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.state = ST_HANDSHAKE
        self.rend = 0
        transport.write(self.owner.hello(self))

    def connection_lost(self, exc):
        if self.transport is not None:
            self.transport = None
            self.down(b"connection to peer " + self.peer.encode() + b" lost")

    def connect_failed(self, str reason):
        """The connection attempt failed before connection_made."""
        if self.state == ST_CONNECTING:
            self.down(b"peer " + self.peer.encode() + b" unreachable")

    def eof_received(self):
        return False

    def pause_writing(self):
        pass        # bounded by max_waiting and the timeout, not by pausing clients

    def resume_writing(self):
        pass

    def get_buffer(self, Py_ssize_t sizehint):
        cdef char *p
        if self.rcap - self.rend < RBUF_INITIAL // 2:
            p = <char *>realloc(self.rbuf, self.rcap * 2)
            if p == NULL:
                raise MemoryError()
            self.rbuf = p
            self.rcap *= 2
        return self

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.rbuf + self.rend, self.rcap - self.rend, 0, flags)

    def __len__(self):
        # uvloop's TLS reader sizes its read by len() of get_buffer's answer.
        return self.rcap - self.rend

    def __bool__(self):
        return True     # a link is never falsy, whatever room its buffer has

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def buffer_updated(self, Py_ssize_t nbytes):
        self.rend += nbytes
        if self.state == ST_HANDSHAKE:
            self._handshake()
        if self.state == ST_READY:
            self._replies()

    cdef void _handshake(self):
        cdef const char *nl = <const char *>memchr(self.rbuf, b'\n', self.rend)
        cdef size_t n
        if nl == NULL and self.rend > HANDSHAKE_LINE_MAX:
            self.down(b"peer " + self.peer.encode() + b" sent garbage")
            return
        while nl != NULL and self.state == ST_HANDSHAKE:
            n = nl - self.rbuf + 1
            line = PyBytes_FromStringAndSize(self.rbuf, n)
            memmove(self.rbuf, self.rbuf + n, self.rend - n)
            self.rend -= n
            try:
                answer = self.owner.handshake(self, line)
            except Exception as exc:
                self.down(str(exc).encode())
                return
            if answer is True:
                self.state = ST_READY
                self.backoff = BACKOFF_MIN
                self._flush()
            elif answer:
                self.transport.write(answer)
            nl = <const char *>memchr(self.rbuf, b'\n', self.rend)

    cdef void _replies(self):
        cdef size_t pos = 0, n
        cdef int r
        cdef bint is_mn
        cdef Waiter w
        replies_begin()
        try:
            while pos < self.rend:
                if self.qlen == 0 and not self.fence_due:
                    # Bytes nothing asked for: buffering them would let a peer grow this
                    # buffer on an idle link, where no watchdog runs.
                    self.down(b"peer " + self.peer.encode() + b" sent garbage")
                    return
                r = pc_reply_frame(self.rbuf + pos, self.rend - pos, &n)
                if r == 0:
                    break
                is_mn = n == 4 and self.rbuf[pos] == b'M' and self.rbuf[pos + 1] == b'N'
                if self.fence_due:
                    if not is_mn:
                        self.down(b"peer " + self.peer.encode() + b" sent garbage")
                        return
                    self.fence_due = False
                    pos += n
                    continue
                if r < 0:
                    self.down(b"peer " + self.peer.encode() + b" sent garbage")
                    return
                if self.q[self.qhead].quiet:
                    if is_mn:
                        n = 0           # nothing came before the fence: an empty reply
                    else:
                        self.fence_due = True
                w = self._pop()
                self.replies += 1
                if w is not None:
                    w.reply(self.rbuf + pos, n)
                pos += 4 if n == 0 else n
        finally:
            replies_end()
        if pos:
            memmove(self.rbuf, self.rbuf + pos, self.rend - pos)
            self.rend -= pos
        if self.rend == 0 and self.rcap > 16 * RBUF_INITIAL:
            free(self.rbuf)
            self.rbuf = <char *>malloc(RBUF_INITIAL)
            self.rcap = RBUF_INITIAL


class PeerError(Exception):
    """A request to a peer that got no reply: why, in memcached's words."""


cdef inline void _fail(Waiter waiter, bytes why):
    if waiter is not None:
        waiter.fail(why)


@cython.final
cdef class FutureWaiter(Waiter):
    """Python's way in (call()): the reply's bytes, or PeerError, as an asyncio future."""
    cdef object future

    cdef void reply(self, const char *frame, size_t n):
        if not self.future.done():
            self.future.set_result(PyBytes_FromStringAndSize(frame, n))

    cdef void fail(self, bytes why):
        if not self.future.done():
            self.future.set_exception(PeerError(why.decode(errors="replace")))


@cython.final
cdef class LinkGroup(Link):
    """Several links to one peer; a key always takes the same one, so one client's requests
    for one key stay in order."""
    cdef readonly tuple links

    def __cinit__(self, links):
        self.links = tuple(links)
        if not self.links:
            raise ValueError("a link group needs a link")

    cdef int send(self, Waiter h, uint32_t hv, const char *head, size_t nhead,
                  const char *tail, size_t ntail, bint quiet) except -1:
        return (<Link>self.links[hv % len(self.links)]).send(h, hv, head, nhead, tail, ntail,
                                                             quiet)

    cdef int send_waiter(self, Waiter waiter, uint32_t hv, const char *req,
                         size_t n) except -1:
        return (<Link>self.links[hv % len(self.links)]).send_waiter(waiter, hv, req, n)

    def call_all(self, bytes request):
        """The request on every link, so it keeps its place before later keys on any."""
        return [link.call(request) for link in self.links]

    def call_key(self, bytes request, uint32_t hv):
        return self.links[hv % len(self.links)].call(request)
