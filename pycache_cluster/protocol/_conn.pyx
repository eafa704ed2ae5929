# The client connection hot path: memcached's text and meta protocols over the native store.
#
# socket -> Connection.buffer_updated -> pc_proto tokenizer -> _dispatch -> pc_store_* -> wbuf
# Every complete request in the received bytes is answered in one pass, replies in request
# order into one pc_wbuf, and the batch leaves in one transport.write. Hits and misses of
# get/set/delete create no Python object (the generated C of _get/_update/_complete_nread/
# _delete/_mg/_ms calls no Python API).
# NOTE: memcaslap -c 16 -T 1 for 4 s on 2 shared cores: 69.0k ops/s here, 66.6k against
# memcached 1.6.18 (-t 4): both bound by the single memcaslap thread, not by the server.
cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove, memset, strcmp, strlen, strncmp

from pycache_cluster.store._store cimport *

import os
import resource
import signal
import sys
import time


cdef extern from "pc_item.h":
    size_t pc_item_memcached_size(size_t nkey, uint32_t flags, size_t nbytes)


cdef extern from "pc_table.h":
    size_t pc_table_bytes(const pc_table *t)
    int pc_table_is_growing(const pc_table *t)


cdef extern from "pc_wbuf.h":
    ctypedef struct pc_wbuf:
        char *data
        size_t len
        size_t cap
    void pc_wbuf_init(pc_wbuf *b)
    void pc_wbuf_free(pc_wbuf *b)
    void pc_wbuf_clear(pc_wbuf *b)
    int pc_wbuf_reserve(pc_wbuf *b, size_t n)
    int pc_wbuf_add(pc_wbuf *b, const void *src, size_t n)
    int pc_wbuf_add_u64(pc_wbuf *b, uint64_t v)
    int pc_wbuf_add_i64(pc_wbuf *b, int64_t v)


cdef extern from "pc_proto.h":
    enum:
        PC_MAX_TOKENS
        PC_LINE_MAX
        PC_MFLAG_MAX_OPT_LENGTH
        PC_MFLAG_MAX_OPAQUE_LENGTH
    ctypedef struct pc_token:
        char *value
        size_t length
    ctypedef enum pc_cmd:
        PC_CMD_ERROR, PC_CMD_GET, PC_CMD_GETS, PC_CMD_GAT, PC_CMD_GATS,
        PC_CMD_SET, PC_CMD_ADD, PC_CMD_REPLACE, PC_CMD_APPEND, PC_CMD_PREPEND, PC_CMD_CAS,
        PC_CMD_DELETE, PC_CMD_INCR, PC_CMD_DECR, PC_CMD_TOUCH,
        PC_CMD_STATS, PC_CMD_FLUSH_ALL, PC_CMD_VERSION, PC_CMD_VERBOSITY, PC_CMD_QUIT,
        PC_CMD_SHUTDOWN, PC_CMD_CACHE_MEMLIMIT,
        PC_CMD_MG, PC_CMD_MS, PC_CMD_MD, PC_CMD_MA, PC_CMD_MN, PC_CMD_ME,
        PC_CMD_HTTP, PC_CMD_OTHER, PC_CMD_EXTENSION
    ctypedef struct pc_meta_flags:
        unsigned has_error, no_update, locked, vivify, la, value
        unsigned set_stale, no_reply, has_cas, new_ttl, key_binary
        char mode
        int32_t exptime
        int32_t autoviv_exptime
        int32_t recache_time
        uint32_t client_flags
        uint64_t req_cas_id
        uint64_t delta
        uint64_t initial
    int pc_proto_find_line(const char *buf, size_t len, size_t *line_end)
    size_t pc_proto_terminate(char *buf, size_t line_end)
    size_t pc_tokenize(char *command, pc_token *tokens, size_t max_tokens)
    pc_cmd pc_proto_command(const pc_token *tokens, size_t ntokens)
    int pc_strtol(const char *str, int32_t *out)
    int pc_strtoul(const char *str, uint32_t *out)
    int pc_strtoull(const char *str, uint64_t *out)
    int pc_meta_preparse(pc_token *tokens, size_t start, pc_meta_flags *of,
                         const char **errstr)
    size_t pc_base64_encode(const unsigned char *src, size_t len, unsigned char *out,
                            size_t out_len)
    unsigned pc_proto_slab_class(size_t ntotal, size_t item_size_max)


# The version memcached clients (and memccapable) are shown; ours is in `stats`.
MEMCACHED_VERSION = "1.6.18"
DEF VERSION_LINE = b"VERSION 1.6.18\r\n"

# Item bits the protocol keeps beside the store's own (PC_ITEM_FETCHED/ACTIVE are 1 and 2):
# meta's win-token and stale marks, and "the key was stored base64 (binary)".
DEF ITEM_TOKEN_SENT = 0x20
DEF ITEM_STALE = 0x40
DEF ITEM_KEY_BINARY = 0x80

# Connection states: reading command lines, reading a value, discarding a value.
DEF ST_CMD = 0
DEF ST_NREAD = 1
DEF ST_SWALLOW = 2

DEF RBUF_INITIAL = 16384
# memcached's reqs_per_event: it writes replies out after 21, 41, 61... requests of a read
# event; a failed get ("release items") drops the replies not yet written since then.
DEF REQS_PER_EVENT = 20
# Pause reading a client whose unsent replies exceed this (resume at a quarter of it).
DEF WRITE_HIGH_WATER = 4 * 1024 * 1024
DEF KEY_MAX = 250
# Replies beyond this are handed to the transport before the next request is parsed.
DEF WBUF_FLUSH = 1024 * 1024


cdef inline bint _is(const char *tok, const char *lit) noexcept:
    return strcmp(tok, lit) == 0


@cython.final
cdef class ServerState:
    """What every connection of one listener shares: the store, settings and counters."""
    cdef public Store store
    cdef pc_store *s
    cdef public object settings          # pycache_cluster.config.Config
    cdef public object on_shutdown       # callable(graceful: bool), set by the node
    cdef public dict extensions          # command name (bytes) -> handler(conn, [bytes]) -> bytes
    # `stats <name>` sub-commands memcached does not have: name (bytes) -> handler([bytes]) ->
    # bytes (STAT lines then END). Consulted only after memcached's own sub-commands.
    cdef public dict stats_providers
    # Seam for a cluster router: None on a single node (every key is local).
    cdef public object router
    cdef public set conns
    cdef public int verbosity
    cdef public double started
    cdef public uint64_t curr_conns, total_conns, rejected_conns
    cdef public uint64_t cmd_get, cmd_set, cmd_touch, cmd_flush, cmd_meta
    cdef public uint64_t store_too_large, store_no_memory
    cdef public uint64_t bytes_read, bytes_written
    cdef public bint detail_enabled

    def __init__(self, Store store, settings):
        self.store = store
        self.s = store._s
        self.settings = settings
        self.on_shutdown = None
        self.extensions = {}
        self.stats_providers = {}
        self.router = None
        self.conns = set()
        self.verbosity = settings.verbosity
        self.started = time.time()
        self.detail_enabled = False

    def protocol_factory(self):
        return Connection(self)

    def reset_stats(self):
        self.total_conns = self.rejected_conns = 0
        self.cmd_get = self.cmd_set = self.cmd_touch = self.cmd_flush = self.cmd_meta = 0
        self.store_too_large = self.store_no_memory = 0
        self.bytes_read = self.bytes_written = 0
        memset(&self.s.stats, 0, sizeof(self.s.stats))


@cython.final
cdef class Connection:
    """One client: asyncio.BufferedProtocol whose buffer is the connection's own read buffer."""
    cdef ServerState srv
    cdef pc_store *s
    cdef object transport
    cdef char *rbuf
    cdef size_t rcap, rend
    cdef pc_wbuf wbuf
    cdef size_t mark            # wbuf offset of memcached's last write point in this batch
    # Items an unwritten mg reply still references (memcached holds a refcount until the
    # reply is written, which stops incr/decr from shrinking the value in place).
    cdef void *pin_ptr[32]
    cdef uint64_t pin_ver[32]
    cdef int npin
    cdef unsigned nreqs
    cdef int state
    cdef bint noreply, closing, close_after_write, paused, rejected
    cdef size_t swallow_left
    # The storage command waiting for its value (ST_NREAD).
    cdef pc_cmd p_cmd
    cdef bint p_meta
    cdef char p_key[256]
    cdef size_t p_nkey
    cdef uint32_t p_flags
    cdef int64_t p_exptime
    cdef uint64_t p_cas
    cdef size_t p_vlen           # value length including the trailing \r\n
    cdef bint p_noreply
    cdef pc_store_mode p_mode
    cdef bint p_key_binary, p_set_stale
    cdef char p_ret[PC_MAX_TOKENS]       # ms return flags in request order: 'O', 'k', 'c'
    cdef int p_nret
    cdef char p_opaque[40]
    cdef size_t p_nopaque
    cdef public object peername
    cdef int fd

    def __cinit__(self, ServerState srv):
        self.srv = srv
        self.s = srv.s
        self.rbuf = <char *>malloc(RBUF_INITIAL)
        if self.rbuf == NULL:
            raise MemoryError()
        self.rcap = RBUF_INITIAL
        self.rend = 0
        pc_wbuf_init(&self.wbuf)
        self.state = ST_CMD

    def __dealloc__(self):
        free(self.rbuf)
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
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if srv.verbosity > 1:
            _log("<%d new client connection" % self.fd)

    def connection_lost(self, exc):
        if self.srv.verbosity > 1 and not self.rejected:
            _log("<%d connection closed." % self.fd)
        if not self.rejected:
            self.srv.curr_conns -= 1
            self.srv.conns.discard(self)
        self.transport = None

    def get_buffer(self, Py_ssize_t sizehint):
        cdef size_t want = RBUF_INITIAL // 2
        if self.state == ST_NREAD and self.p_vlen > want:
            want = self.p_vlen
        if self.rcap - self.rend < want:
            self._grow(self.rend + want)
        return self

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.rbuf + self.rend, self.rcap - self.rend, 0, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def buffer_updated(self, Py_ssize_t nbytes):
        self.rend += nbytes
        self.srv.bytes_read += nbytes
        self.nreqs = 0                  # a new read event, as memcached counts them
        try:
            self._process()
        except BaseException:
            if self.transport is not None:
                self.transport.abort()
            raise

    def eof_received(self):
        # A half-closed client still gets the replies to what it sent; then we close. As in
        # memcached, replies held back for an unfinished value are dropped with it.
        if self.state != ST_CMD:
            self.wbuf.len = self.mark
            self._flush()
        return False

    def close_when_drained(self):
        """Shutdown: stop reading; replies already queued are sent, then the socket closes."""
        if self.transport is not None:
            self.closing = True
            self.transport.close()

    def pause_writing(self):
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume_writing(self):
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
            if self.rend:
                # Requests read before the pause are still waiting in the read buffer.
                try:
                    self._process()
                except BaseException:
                    if self.transport is not None:
                        self.transport.abort()
                    raise

    # -- buffers -----------------------------------------------------------------------------

    cdef int _grow(self, size_t need) except -1:
        cdef size_t cap = self.rcap
        while cap < need:
            cap *= 2
        cdef char *p = <char *>realloc(self.rbuf, cap)
        if p == NULL:
            raise MemoryError()
        self.rbuf = p
        self.rcap = cap
        return 0

    cdef inline void _out(self, const char *line) noexcept:
        """memcached's out_string: one line, silenced by noreply (which it consumes)."""
        if self.noreply:
            self.noreply = False
            return
        pc_wbuf_add(&self.wbuf, line, strlen(line))
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)

    cdef inline void _out_err(self, const char *line) noexcept:
        """memcached's out_errstring: meta errors ignore noreply."""
        self.noreply = False
        self._out(line)

    cdef void _flush_upto(self, size_t n):
        cdef bytes out
        if n == 0:
            return
        if self.transport is not None:
            out = PyBytes_FromStringAndSize(self.wbuf.data, n)
            self.srv.bytes_written += n
            self.transport.write(out)
        memmove(self.wbuf.data, self.wbuf.data + n, self.wbuf.len - n)
        self.wbuf.len -= n
        self.mark = 0

    cdef void _flush(self):
        cdef bytes out
        if self.wbuf.len and self.transport is not None:
            out = PyBytes_FromStringAndSize(self.wbuf.data, self.wbuf.len)
            self.srv.bytes_written += self.wbuf.len
            self.transport.write(out)
        pc_wbuf_clear(&self.wbuf)
        self.mark = 0
        self.npin = 0

    # -- the request loop --------------------------------------------------------------------

    cdef void _process(self):
        cdef size_t pos = 0, avail, line_end, n, nline
        cdef int r
        while not self.closing:
            if self.wbuf.len >= WBUF_FLUSH and self.state == ST_CMD:
                # Big replies leave as they are made, so a client that does not read holds
                # at most the transport's high-water mark plus one command's reply here.
                self._flush()
            if self.paused:
                break           # resume_writing() carries on from here
            avail = self.rend - pos
            if self.state == ST_SWALLOW:
                n = self.swallow_left if self.swallow_left < avail else avail
                pos += n
                self.swallow_left -= n
                if self.swallow_left:
                    break
                self.state = ST_CMD
                self._request_done()
                continue
            if self.state == ST_NREAD:
                if avail < self.p_vlen:
                    break
                self._complete_nread(self.rbuf + pos)
                pos += self.p_vlen
                self.state = ST_CMD
                self._request_done()
                continue
            if avail == 0:
                break
            r = pc_proto_find_line(self.rbuf + pos, avail, &line_end)
            if r == 0:
                break
            if r < 0:
                # memcached: no '\n' in the first 2048 bytes and not a get: close, leaving
                # the replies it had not written yet unanswered.
                self.closing = True
                break
            nline = line_end + 1
            self._command(self.rbuf + pos, line_end)
            pos += nline
            if self.state == ST_CMD:
                self._request_done()
        # Keep what is left (a partial line or value) at the front of the buffer.
        if pos:
            if pos < self.rend:
                memmove(self.rbuf, self.rbuf + pos, self.rend - pos)
            self.rend -= pos
        if self.rend == 0 and self.rcap > 16 * RBUF_INITIAL:
            free(self.rbuf)
            self.rbuf = <char *>malloc(RBUF_INITIAL)
            self.rcap = RBUF_INITIAL
        if self.closing:
            if not self.close_after_write:
                self.wbuf.len = self.mark
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        # memcached writes replies out while it waits for a command line, but not while it
        # reads (or discards) a value: replies after its last write point (`mark`) leave once
        # the value is complete.
        if self.state == ST_CMD:
            self._flush()
        else:
            self._flush_upto(self.mark)

    cdef inline void _request_done(self) noexcept:
        self.noreply = False
        self.nreqs += 1
        # memcached yields (and writes) after 21 requests of a read event, then every 20:
        # its counter starts at reqs_per_event and the write after a yield costs one count.
        if self.nreqs > REQS_PER_EVENT and self.nreqs % REQS_PER_EVENT == 1:
            self._write_point()

    cdef inline void _write_point(self) noexcept:
        self.mark = self.wbuf.len
        self.npin = 0

    cdef inline void _pin(self, pc_item *it) noexcept:
        if self.npin < 32:
            self.pin_ptr[self.npin] = <void *>it
            self.pin_ver[self.npin] = it.version
            self.npin += 1

    cdef bint _pinned(self, const char *key, size_t nkey) noexcept:
        cdef pc_item *it
        cdef int i
        if self.npin == 0:
            return False
        it = pc_store_peek(self.s, key, nkey)
        if it == NULL:
            return False
        for i in range(self.npin):
            if self.pin_ptr[i] == <void *>it and self.pin_ver[i] == it.version:
                return True
        return False

    cdef pc_item *_unpad(self, const char *key, size_t nkey, pc_item *it, uint64_t result) \
            noexcept:
        # memcached rewrites a shorter incr/decr result in place (space padded) only when no
        # one else holds the item; a pinned item is replaced by one of the exact length.
        cdef char num[24]
        cdef size_t n = _u64toa(result, num)
        cdef pc_item *fresh = NULL
        if it == NULL or it.nbytes <= n:
            return it
        if pc_store_store(self.s, PC_SET, key, nkey, it.flags,
                          pc_store_unix_time(self.s, it.exptime) if it.exptime else 0,
                          num, n, 0, 0, &fresh) == PC_STORED:
            return fresh
        return it

    cdef void _command(self, char *line, size_t line_end):
        cdef pc_token tokens[PC_MAX_TOKENS]
        cdef size_t ntokens
        pc_proto_terminate(line, line_end)
        if self.srv.verbosity > 1:
            # memcached -vv: every request line, as "<fd line".
            _log("<%d %s" % (self.fd, (<bytes>line).decode("utf-8", "replace")))
        ntokens = pc_tokenize(line, tokens, PC_MAX_TOKENS)
        cdef pc_cmd cmd = pc_proto_command(tokens, ntokens)
        if cmd == PC_CMD_GET:
            self._get(tokens, ntokens, False, False)
        elif cmd == PC_CMD_GETS:
            self._get(tokens, ntokens, True, False)
        elif cmd == PC_CMD_SET:
            self._update(tokens, ntokens, cmd, PC_SET)
        elif cmd == PC_CMD_DELETE:
            self._delete(tokens, ntokens)
        elif cmd == PC_CMD_MG:
            self._mg(tokens, ntokens)
        elif cmd == PC_CMD_MS:
            self._ms(tokens, ntokens)
        elif cmd == PC_CMD_ADD:
            self._update(tokens, ntokens, cmd, PC_ADD)
        elif cmd == PC_CMD_REPLACE:
            self._update(tokens, ntokens, cmd, PC_REPLACE)
        elif cmd == PC_CMD_APPEND:
            self._update(tokens, ntokens, cmd, PC_APPEND)
        elif cmd == PC_CMD_PREPEND:
            self._update(tokens, ntokens, cmd, PC_PREPEND)
        elif cmd == PC_CMD_CAS:
            self._update(tokens, ntokens, cmd, PC_CAS)
        elif cmd == PC_CMD_GAT:
            self._get(tokens, ntokens, False, True)
        elif cmd == PC_CMD_GATS:
            self._get(tokens, ntokens, True, True)
        elif cmd == PC_CMD_INCR:
            self._arith(tokens, ntokens, 1)
        elif cmd == PC_CMD_DECR:
            self._arith(tokens, ntokens, 0)
        elif cmd == PC_CMD_TOUCH:
            self._touch(tokens, ntokens)
        elif cmd == PC_CMD_MD:
            self._md(tokens, ntokens)
        elif cmd == PC_CMD_MA:
            self._ma(tokens, ntokens)
        elif cmd == PC_CMD_MN:
            self._out(b"MN")
            self._write_point()     # "mn command forces immediate writeback flush"
        elif cmd == PC_CMD_ME:
            self._me(tokens, ntokens)
        elif cmd == PC_CMD_VERSION:
            self._out(b"VERSION 1.6.18")
        elif cmd == PC_CMD_QUIT:
            self.closing = True
            self.close_after_write = True
        elif cmd == PC_CMD_HTTP:
            self.closing = True
        elif cmd == PC_CMD_ERROR or cmd == PC_CMD_EXTENSION:
            # The seam for commands that are not memcached's (cluster, locks): a Python
            # handler registered in ServerState.extensions, else memcached's ERROR.
            if self.srv.extensions and tokens[0].value != NULL:
                self._extension(tokens, ntokens)
            else:
                self._out(b"ERROR")
        else:
            # The rare commands: Python is fine here.
            self._slow_command(cmd, tokens, ntokens)

    # -- text protocol: retrieval ------------------------------------------------------------

    cdef inline void _value_line(self, pc_item *it, bint return_cas) noexcept:
        pc_wbuf_reserve(&self.wbuf, 6 + it.nkey + 48 + it.nbytes + 2)
        pc_wbuf_add(&self.wbuf, b"VALUE ", 6)
        pc_wbuf_add(&self.wbuf, pc_item_key(it), it.nkey)
        pc_wbuf_add(&self.wbuf, b" ", 1)
        pc_wbuf_add_u64(&self.wbuf, it.flags)
        pc_wbuf_add(&self.wbuf, b" ", 1)
        pc_wbuf_add_u64(&self.wbuf, it.nbytes)
        if return_cas:
            pc_wbuf_add(&self.wbuf, b" ", 1)
            pc_wbuf_add_u64(&self.wbuf, it.version)
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)
        pc_wbuf_add(&self.wbuf, pc_item_value(it), it.nbytes)
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)

    cdef void _get(self, pc_token *tokens, size_t ntokens, bint return_cas, bint touch):
        cdef pc_token *key_token = &tokens[1]
        cdef int32_t exptime = 0
        cdef pc_item *it
        if touch:
            if not pc_strtol(tokens[1].value, &exptime):
                self._out(b"CLIENT_ERROR invalid exptime argument")
                return
            key_token += 1
        while True:
            while key_token.length != 0:
                if key_token.length > KEY_MAX:
                    # memcached drops the replies it has not written yet, then errors.
                    self.wbuf.len = self.mark
                    self._out(b"CLIENT_ERROR bad command line format")
                    return
                if touch:
                    it = pc_store_touch(self.s, key_token.value, key_token.length, exptime)
                    self.srv.cmd_touch += 1
                else:
                    it = pc_store_get(self.s, key_token.value, key_token.length)
                    self.srv.cmd_get += 1
                if it != NULL:
                    self._value_line(it, return_cas)
                key_token += 1
            if key_token.value == NULL:
                break
            # More keys than one tokenize pass holds: go on from where it stopped.
            ntokens = pc_tokenize(key_token.value, tokens, PC_MAX_TOKENS)
            key_token = tokens
        pc_wbuf_add(&self.wbuf, b"END\r\n", 5)
        self._write_point()     # memcached writes out after every get (conn_mwrite)

    # -- text protocol: storage --------------------------------------------------------------

    cdef inline bint _noreply_maybe(self, pc_token *tokens, size_t ntokens) noexcept:
        cdef pc_token *t = &tokens[ntokens - 2]
        if t.value != NULL and _is(t.value, b"noreply"):
            self.noreply = True
        return self.noreply

    cdef void _update(self, pc_token *tokens, size_t ntokens, pc_cmd cmd, pc_store_mode mode):
        cdef uint32_t flags
        cdef int32_t exptime, vlen
        cdef uint64_t cas = 0
        self._noreply_maybe(tokens, ntokens)
        if tokens[1].length > KEY_MAX:
            self._out(b"CLIENT_ERROR bad command line format")
            return
        if not (pc_strtoul(tokens[2].value, &flags) and pc_strtol(tokens[3].value, &exptime)
                and pc_strtol(tokens[4].value, &vlen)):
            self._out(b"CLIENT_ERROR bad command line format")
            return
        if cmd == PC_CMD_CAS and not pc_strtoull(tokens[5].value, &cas):
            self._out(b"CLIENT_ERROR bad command line format")
            return
        if vlen < 0 or vlen > 2147483647 - 2:
            self._out(b"CLIENT_ERROR bad command line format")
            return
        self.p_meta = False
        self.p_cmd = cmd
        self.p_mode = mode
        memcpy(self.p_key, tokens[1].value, tokens[1].length)
        self.p_nkey = tokens[1].length
        self.p_flags = flags
        self.p_exptime = exptime
        self.p_cas = cas
        self.p_vlen = <size_t>vlen + 2
        self.p_noreply = self.noreply
        if pc_item_memcached_size(self.p_nkey, flags, vlen) > self.s.item_size_max:
            self.srv.store_too_large += 1
            self._out(b"SERVER_ERROR object too large for cache")
            if mode == PC_SET:
                # memcached: "Avoid stale data persisting in cache because we failed alloc."
                pc_store_delete(self.s, self.p_key, self.p_nkey, 0)
            self._swallow(self.p_vlen)
            return
        self.state = ST_NREAD

    cdef inline void _swallow(self, size_t n) noexcept:
        self.swallow_left = n
        self.state = ST_SWALLOW

    cdef void _complete_nread(self, const char *data):
        cdef size_t nbytes = self.p_vlen - 2
        cdef pc_status st
        cdef pc_item *it = NULL
        self.noreply = self.p_noreply
        if data[nbytes] != b'\r' or data[nbytes + 1] != b'\n':
            if self.p_meta:
                self.noreply = False      # meta set errors are always answered
            self._out(b"CLIENT_ERROR bad data chunk")
            return
        self.srv.cmd_set += 1
        if self.p_meta and self.p_set_stale and self.p_mode == PC_CAS and \
                self._stale_set(data, nbytes, &it):
            st = PC_STORED
        else:
            st = pc_store_store(self.s, self.p_mode, self.p_key, self.p_nkey, self.p_flags,
                                self.p_exptime, data, nbytes, self.p_cas, 0, &it)
        if self.p_meta:
            self._finish_ms(st, it)
            return
        if st == PC_STORED:
            self._out(b"STORED")
        elif st == PC_EXISTS:
            self._out(b"EXISTS")
        elif st == PC_NOT_FOUND:
            self._out(b"NOT_FOUND")
        elif st == PC_NOT_STORED:
            self._out(b"NOT_STORED")
        elif st == PC_NO_MEMORY:
            self.srv.store_no_memory += 1
            self._out(b"SERVER_ERROR out of memory storing object")
        elif st == PC_TOO_LARGE:
            self.srv.store_too_large += 1
            self._out(b"SERVER_ERROR object too large for cache")
        else:
            self._out(b"SERVER_ERROR Unhandled storage type.")

    cdef bint _stale_set(self, const char *data, size_t nbytes, pc_item **out) noexcept:
        # ms with I in CAS mode: a CAS older than the item's still stores, as a stale value
        # that keeps the old TTL and win token (memcached's do_store_item).
        cdef pc_item *old = pc_store_peek(self.s, self.p_key, self.p_nkey)
        cdef pc_reltime exptime
        cdef uint8_t token
        if old == NULL or self.p_cas == 0 or self.p_cas >= old.version:
            return False
        exptime = old.exptime
        token = old.bits & ITEM_TOKEN_SENT
        if pc_store_store(self.s, PC_SET, self.p_key, self.p_nkey, self.p_flags, 0, data, nbytes,
                          0, 0, out) != PC_STORED:
            return False
        out[0].exptime = exptime
        out[0].bits |= ITEM_STALE | token
        self.s.stats.cas_hits += 1
        return True

    cdef pc_item *_reversion(self, const char *key, size_t nkey, pc_item *it) noexcept:
        # A new CAS for an item that otherwise stays as it is (the store has no call for
        # that): store the same value again and carry the item's state over.
        cdef pc_item *fresh = NULL
        cdef pc_reltime exptime = it.exptime
        cdef uint8_t bits = it.bits
        cdef char *copy = <char *>malloc(it.nbytes + 1)
        if copy == NULL:
            return it
        memcpy(copy, pc_item_value(it), it.nbytes)
        if pc_store_store(self.s, PC_SET, key, nkey, it.flags, 0, copy, it.nbytes, 0, 0,
                          &fresh) != PC_STORED:
            free(copy)
            return it
        free(copy)
        fresh.exptime = exptime
        fresh.bits |= bits & (PC_ITEM_FETCHED | ITEM_TOKEN_SENT | ITEM_STALE | ITEM_KEY_BINARY)
        return fresh

    cdef void _delete(self, pc_token *tokens, size_t ntokens):
        cdef bint hold_is_zero, sets_noreply, valid
        if ntokens > 3:
            hold_is_zero = _is(tokens[2].value, b"0")
            sets_noreply = self._noreply_maybe(tokens, ntokens)
            valid = ((ntokens == 4 and (hold_is_zero or sets_noreply))
                     or (ntokens == 5 and hold_is_zero and sets_noreply))
            if not valid:
                self._out(b"CLIENT_ERROR bad command line format.  "
                          b"Usage: delete <key> [noreply]")
                return
        if tokens[1].length > KEY_MAX:
            self._out(b"CLIENT_ERROR bad command line format")
            return
        if pc_store_delete(self.s, tokens[1].value, tokens[1].length, 0) == PC_DELETED:
            self._out(b"DELETED")
        else:
            self._out(b"NOT_FOUND")

    cdef void _arith(self, pc_token *tokens, size_t ntokens, int incr):
        cdef uint64_t delta, result = 0
        cdef pc_status st
        cdef pc_item *it = NULL
        cdef bint pinned
        self._noreply_maybe(tokens, ntokens)
        if tokens[1].length > KEY_MAX:
            self._out(b"CLIENT_ERROR bad command line format")
            return
        if not pc_strtoull(tokens[2].value, &delta):
            self._out(b"CLIENT_ERROR invalid numeric delta argument")
            return
        pinned = self._pinned(tokens[1].value, tokens[1].length)
        st = pc_store_delta(self.s, tokens[1].value, tokens[1].length, incr, delta, 0, 0,
                            &result, &it)
        if st == PC_OK and pinned:
            self._unpad(tokens[1].value, tokens[1].length, it, result)
        if st == PC_OK:
            if self.noreply:
                self.noreply = False
                return
            pc_wbuf_add_u64(&self.wbuf, result)
            pc_wbuf_add(&self.wbuf, b"\r\n", 2)
        elif st == PC_NON_NUMERIC:
            self._out(b"CLIENT_ERROR cannot increment or decrement non-numeric value")
        elif st == PC_NO_MEMORY:
            self._out(b"SERVER_ERROR out of memory")
        else:
            self._out(b"NOT_FOUND")

    cdef void _touch(self, pc_token *tokens, size_t ntokens):
        cdef int32_t exptime
        self._noreply_maybe(tokens, ntokens)
        if tokens[1].length > KEY_MAX:
            self._out(b"CLIENT_ERROR bad command line format")
            return
        if not pc_strtol(tokens[2].value, &exptime):
            self._out(b"CLIENT_ERROR invalid exptime argument")
            return
        self.srv.cmd_touch += 1
        if pc_store_touch(self.s, tokens[1].value, tokens[1].length, exptime) != NULL:
            self._out(b"TOUCHED")
        else:
            self._out(b"NOT_FOUND")

    # -- meta protocol -----------------------------------------------------------------------

    cdef void _meta_key(self, const char *key, size_t nkey, bint binary) noexcept:
        cdef unsigned char enc[400]
        cdef size_t n
        pc_wbuf_add(&self.wbuf, b" k", 2)
        if not binary:
            pc_wbuf_add(&self.wbuf, key, nkey)
        else:
            n = pc_base64_encode(<const unsigned char *>key, nkey, enc, sizeof(enc))
            pc_wbuf_add(&self.wbuf, enc, n)
            pc_wbuf_add(&self.wbuf, b" b", 2)

    cdef inline void _meta_opaque(self, pc_token *t) noexcept:
        pc_wbuf_add(&self.wbuf, b" ", 1)
        pc_wbuf_add(&self.wbuf, t.value, t.length)

    cdef inline void _meta_ttl(self, pc_item *it) noexcept:
        pc_wbuf_add(&self.wbuf, b" t", 2)
        if it.exptime == 0:
            pc_wbuf_add(&self.wbuf, b"-1", 2)
        else:
            pc_wbuf_add_u64(&self.wbuf, <uint32_t>(it.exptime - self.s.now))

    cdef void _mg(self, pc_token *tokens, size_t ntokens):
        cdef pc_meta_flags of
        cdef const char *errstr = b"CLIENT_ERROR bad command line format"
        cdef pc_item *it
        cdef size_t i, start, nkey
        cdef bint created = False, won = False, ttl_set = False
        cdef char *key
        cdef pc_status st
        cdef char c
        cdef pc_reltime exptime
        memset(&of, 0, sizeof(of))
        if ntokens < 3:
            self._out(b"ERROR")
            return
        if tokens[1].length > KEY_MAX:
            self._out_err(b"CLIENT_ERROR bad command line format")
            return
        if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
            self._out_err(b"CLIENT_ERROR options flags are too long")
            return
        if pc_meta_preparse(tokens, 2, &of, &errstr) != 0:
            self._out_err(errstr)
            return
        self.noreply = of.no_reply
        key = tokens[1].value
        nkey = tokens[1].length
        it = pc_store_peek(self.s, key, nkey)
        if it == NULL and of.vivify:
            # Created without a TTL: N sets it in flag order (so "t N30" shows t-1).
            st = pc_store_store(self.s, PC_ADD, key, nkey, 0, 0, b"", 0, 0, 0, &it)
            if st == PC_STORED:
                # Not marked binary, as in memcached: its k flag then shows the raw key.
                created = True
            else:
                it = NULL
        start = self.wbuf.len
        if it != NULL:
            if of.value:
                pc_wbuf_add(&self.wbuf, b"VA ", 3)
                pc_wbuf_add_u64(&self.wbuf, it.nbytes)
            else:
                pc_wbuf_add(&self.wbuf, b"HD", 2)
            for i in range(2, ntokens - 1):
                c = tokens[i].value[0]
                if c == b'T':
                    ttl_set = True
                    it.exptime = pc_store_exptime(self.s, of.exptime)
                elif c == b'N':
                    if created:
                        it.exptime = pc_store_exptime(self.s, of.autoviv_exptime)
                        won = True
                elif c == b'R':
                    if (not (it.bits & ITEM_TOKEN_SENT) and not created and it.exptime != 0
                            and it.exptime < pc_store_exptime(self.s, of.recache_time)):
                        won = True
                elif c == b's':
                    pc_wbuf_add(&self.wbuf, b" s", 2)
                    pc_wbuf_add_u64(&self.wbuf, it.nbytes)
                elif c == b't':
                    self._meta_ttl(it)
                elif c == b'c':
                    pc_wbuf_add(&self.wbuf, b" c", 2)
                    pc_wbuf_add_u64(&self.wbuf, it.version)
                elif c == b'f':
                    pc_wbuf_add(&self.wbuf, b" f", 2)
                    pc_wbuf_add_u64(&self.wbuf, it.flags)
                elif c == b'l':
                    pc_wbuf_add(&self.wbuf, b" l", 2)
                    pc_wbuf_add_u64(&self.wbuf, <uint32_t>(self.s.now - it.time))
                elif c == b'h':
                    if it.bits & PC_ITEM_FETCHED:
                        pc_wbuf_add(&self.wbuf, b" h1", 3)
                    else:
                        pc_wbuf_add(&self.wbuf, b" h0", 3)
                elif c == b'O':
                    if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                        self.wbuf.len = start
                        self._out_err(b"CLIENT_ERROR opaque token too long")
                        return
                    self._meta_opaque(&tokens[i])
                elif c == b'k':
                    self._meta_key(pc_item_key(it), it.nkey, it.bits & ITEM_KEY_BINARY)
            if it.bits & ITEM_TOKEN_SENT:
                pc_wbuf_add(&self.wbuf, b" Z", 2)
            if it.bits & ITEM_STALE:
                pc_wbuf_add(&self.wbuf, b" X", 2)
                if not (it.bits & ITEM_TOKEN_SENT):
                    won = True
            if won:
                pc_wbuf_add(&self.wbuf, b" W", 2)
                it.bits |= ITEM_TOKEN_SENT
            pc_wbuf_add(&self.wbuf, b"\r\n", 2)
            if of.value:
                pc_wbuf_add(&self.wbuf, pc_item_value(it), it.nbytes)
                pc_wbuf_add(&self.wbuf, b"\r\n", 2)
            self._pin(it)
            # Counting and the LRU bump come last, so h and l saw the item as it was.
            if ttl_set:
                # The touch counts and bumps; the flags already set the TTL in their order
                # (an N after T wins on a created item), so keep what they left.
                self.srv.cmd_touch += 1
                exptime = it.exptime
                it = pc_store_touch(self.s, key, nkey, of.exptime)
                if it != NULL:
                    it.exptime = exptime
            else:
                self.srv.cmd_get += 1
                if not of.no_update:
                    pc_store_get(self.s, key, nkey)
                else:
                    self.s.stats.get_hits += 1
        else:
            self.srv.cmd_get += 1
            pc_store_get(self.s, key, nkey)
            pc_wbuf_add(&self.wbuf, b"EN", 2)
            if not self._echo_opaque_and_key(tokens, ntokens, start, key, nkey, of.key_binary):
                return
            pc_wbuf_add(&self.wbuf, b"\r\n", 2)
            if self.noreply:
                self.wbuf.len = start

    cdef void _ms(self, pc_token *tokens, size_t ntokens):
        cdef pc_meta_flags of
        cdef const char *errstr = b"CLIENT_ERROR bad command line format"
        cdef int32_t vlen = 0
        cdef size_t i
        cdef bint has_error = False
        cdef pc_store_mode mode = PC_SET
        cdef char c
        memset(&of, 0, sizeof(of))
        if ntokens < 3:
            self._out(b"ERROR")
            return
        if tokens[1].length > KEY_MAX or ntokens == 3:
            self._out_err(b"CLIENT_ERROR bad command line format")
            return
        if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
            self._out_err(b"CLIENT_ERROR options flags too long")
            return
        if not pc_strtol(tokens[2].value, &vlen) or vlen < 0 or vlen > 2147483647 - 2:
            self._out_err(b"CLIENT_ERROR bad command line format")
            return
        self.p_vlen = <size_t>vlen + 2
        if pc_meta_preparse(tokens, 3, &of, &errstr) != 0:
            self._out_err(errstr)
            self._swallow(self.p_vlen)
            return
        self.noreply = of.no_reply
        self.p_nret = 0
        self.p_nopaque = 0
        for i in range(2, ntokens - 1):
            c = tokens[i].value[0]
            if c == b'O':
                if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                    errstr = b"CLIENT_ERROR opaque token too long"
                    has_error = True
                    break
                memcpy(self.p_opaque, tokens[i].value, tokens[i].length)
                self.p_nopaque = tokens[i].length
                self.p_ret[self.p_nret] = b'O'
                self.p_nret += 1
            elif c == b'k' or c == b'c':
                self.p_ret[self.p_nret] = c
                self.p_nret += 1
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
            self._out_err(b"CLIENT_ERROR invalid mode for ms M token")
            self._swallow(self.p_vlen)
            return
        if of.has_cas and (mode == PC_SET or mode == PC_REPLACE):
            mode = PC_CAS
        if has_error:
            self._out_err(errstr)
            self._swallow(self.p_vlen)
            return
        memcpy(self.p_key, tokens[1].value, tokens[1].length)
        self.p_nkey = tokens[1].length
        if pc_item_memcached_size(self.p_nkey, of.client_flags, vlen) > self.s.item_size_max:
            self.srv.store_too_large += 1
            pc_store_delete(self.s, self.p_key, self.p_nkey, 0)
            self._out_err(b"SERVER_ERROR object too large for cache")
            self._swallow(self.p_vlen)
            return
        self.p_meta = True
        self.p_cmd = PC_CMD_MS
        self.p_mode = mode
        self.p_flags = of.client_flags
        self.p_exptime = of.exptime
        self.p_cas = of.req_cas_id
        self.p_noreply = of.no_reply
        self.p_key_binary = of.key_binary
        self.p_set_stale = of.set_stale
        self.noreply = False
        self.state = ST_NREAD

    cdef void _finish_ms(self, pc_status st, pc_item *it):
        cdef int i
        if st == PC_STORED:
            if self.p_noreply:
                return
            if self.p_key_binary:
                it.bits |= ITEM_KEY_BINARY
            pc_wbuf_add(&self.wbuf, b"HD", 2)
        elif st == PC_EXISTS:
            pc_wbuf_add(&self.wbuf, b"EX", 2)
        elif st == PC_NOT_FOUND:
            pc_wbuf_add(&self.wbuf, b"NF", 2)
        elif st == PC_NOT_STORED:
            pc_wbuf_add(&self.wbuf, b"NS", 2)
        elif st == PC_NO_MEMORY:
            self.srv.store_no_memory += 1
            self._out_err(b"SERVER_ERROR out of memory storing object")
            return
        else:
            self._out_err(b"SERVER_ERROR Unhandled storage type.")
            return
        for i in range(self.p_nret):
            if self.p_ret[i] == b'O':
                pc_wbuf_add(&self.wbuf, b" ", 1)
                pc_wbuf_add(&self.wbuf, self.p_opaque, self.p_nopaque)
            elif self.p_ret[i] == b'k':
                self._meta_key(self.p_key, self.p_nkey, self.p_key_binary)
            elif self.p_ret[i] == b'c':
                pc_wbuf_add(&self.wbuf, b" c", 2)
                pc_wbuf_add_u64(&self.wbuf, it.version if st == PC_STORED and it != NULL
                                else 0)
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)

    cdef bint _echo_opaque_and_key(self, pc_token *tokens, size_t ntokens, size_t start,
                                   const char *key, size_t nkey, bint key_binary) noexcept:
        """The O and k flags of a meta reply that carries no other return flags. False once a
        too-long opaque has been answered (the reply begun at `start` is dropped)."""
        cdef size_t i
        cdef char c
        for i in range(2, ntokens - 1):
            c = tokens[i].value[0]
            if c == b'O':
                if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                    self.wbuf.len = start
                    self._out_err(b"CLIENT_ERROR opaque token too long")
                    return False
                self._meta_opaque(&tokens[i])
            elif c == b'k':
                self._meta_key(key, nkey, key_binary)
        return True

    cdef bint _meta_begin(self, pc_token *tokens, size_t ntokens, pc_meta_flags *of) noexcept:
        """md's and ma's shared checks and flag parse, with their error lines (memcached's
        process_mdelete_command and process_marithmetic_command open alike). False once an
        error has been answered."""
        cdef const char *errstr = b"CLIENT_ERROR bad command line format"
        memset(of, 0, sizeof(of[0]))
        of.delta = 1                # ma's default step; md has no D flag
        if ntokens < 3:
            self._out(b"ERROR")
            return False
        if tokens[1].length > KEY_MAX:
            self._out(b"CLIENT_ERROR bad command line format")
            return False
        if ntokens > PC_MFLAG_MAX_OPT_LENGTH:
            self._out(b"CLIENT_ERROR options flags too long")
            return False
        if pc_meta_preparse(tokens, 2, of, &errstr) != 0:
            self._out_err(b"CLIENT_ERROR invalid or duplicate flag")
            return False
        self.noreply = of.no_reply
        return True

    cdef void _md(self, pc_token *tokens, size_t ntokens):
        cdef pc_meta_flags of
        cdef size_t start
        cdef pc_item *it
        cdef char *key
        cdef size_t nkey
        if not self._meta_begin(tokens, ntokens, &of):
            return
        key = tokens[1].value
        nkey = tokens[1].length
        start = self.wbuf.len
        pc_wbuf_add(&self.wbuf, b"XX", 2)
        if not self._echo_opaque_and_key(tokens, ntokens, start, key, nkey, of.key_binary):
            return
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)
        it = pc_store_peek(self.s, key, nkey)
        if it == NULL:
            pc_store_delete(self.s, key, nkey, 0)     # counts the miss
            memcpy(self.wbuf.data + start, b"NF", 2)
        elif of.has_cas and it.version != of.req_cas_id:
            self.s.stats.delete_misses += 1
            memcpy(self.wbuf.data + start, b"EX", 2)
        elif of.set_stale:
            # Invalidate: the item stays, marked stale, with a new CAS (and TTL if given).
            it = self._reversion(key, nkey, it)
            if of.new_ttl:
                it.exptime = pc_store_exptime(self.s, of.exptime)
            it.bits |= ITEM_STALE
            it.bits &= ~ITEM_TOKEN_SENT
            memcpy(self.wbuf.data + start, b"HD", 2)
            if self.noreply:
                self.wbuf.len = start
        else:
            pc_store_delete(self.s, key, nkey, 0)
            memcpy(self.wbuf.data + start, b"HD", 2)
            if self.noreply:
                self.wbuf.len = start
        self.noreply = False

    cdef void _ma(self, pc_token *tokens, size_t ntokens):
        cdef pc_meta_flags of
        cdef size_t i, start, nkey, nnum = 0
        cdef pc_item *it = NULL
        cdef char *key
        cdef bint incr = True, created = False
        cdef uint64_t result = 0
        cdef pc_status st
        cdef char num[24]
        cdef char c
        cdef bint ok_skip, pinned
        if not self._meta_begin(tokens, ntokens, &of):
            return
        key = tokens[1].value
        nkey = tokens[1].length
        if of.mode == 0 or of.mode == b'I' or of.mode == b'+':
            incr = True
        elif of.mode == b'D' or of.mode == b'-':
            incr = False
        else:
            self._out_err(b"CLIENT_ERROR invalid mode for ma M token")
            return
        start = self.wbuf.len
        pinned = self._pinned(key, nkey)
        st = pc_store_delta(self.s, key, nkey, incr, of.delta,
                            of.req_cas_id if of.has_cas else 0, 0, &result, &it)
        if st == PC_OK and pinned:
            it = self._unpad(key, nkey, it, result)
        # memcached silences the whole reply of an applied delta under q, and only that.
        ok_skip = st == PC_OK and self.noreply
        if st == PC_OK:
            nnum = _u64toa(result, num)
        elif st == PC_NON_NUMERIC:
            self._out_err(b"CLIENT_ERROR cannot increment or decrement non-numeric value")
            return
        elif st == PC_NO_MEMORY:
            self._out_err(b"SERVER_ERROR out of memory")
            return
        elif st == PC_NOT_FOUND:
            if of.vivify:
                nnum = _u64toa(of.initial, num)
                st = pc_store_store(self.s, PC_ADD, key, nkey, 0, 0, num, nnum, 0, 0, &it)
                if st == PC_STORED:
                    created = True
                else:
                    it = NULL
                    pc_wbuf_add(&self.wbuf, b"NS", 2)
            else:
                pc_wbuf_add(&self.wbuf, b"NF", 2)
        elif st == PC_EXISTS:
            it = NULL
            pc_wbuf_add(&self.wbuf, b"EX", 2)
        if it != NULL:
            if of.value:
                pc_wbuf_add(&self.wbuf, b"VA ", 3)
                pc_wbuf_add_u64(&self.wbuf, nnum)
            else:
                pc_wbuf_add(&self.wbuf, b"HD", 2)
            for i in range(2, ntokens - 1):
                c = tokens[i].value[0]
                if c == b'c':
                    pc_wbuf_add(&self.wbuf, b" c", 2)
                    pc_wbuf_add_u64(&self.wbuf, it.version)
                elif c == b't':
                    self._meta_ttl(it)
                elif c == b'T':
                    it.exptime = pc_store_exptime(self.s, of.exptime)
                elif c == b'N':
                    if created:
                        it.exptime = pc_store_exptime(self.s, of.autoviv_exptime)
                elif c == b'O':
                    if tokens[i].length > PC_MFLAG_MAX_OPAQUE_LENGTH:
                        self.wbuf.len = start
                        self._out_err(b"CLIENT_ERROR opaque token too long")
                        return
                    self._meta_opaque(&tokens[i])
                elif c == b'k':
                    self._meta_key(key, nkey, of.key_binary)
            if of.value:
                pc_wbuf_add(&self.wbuf, b"\r\n", 2)
                pc_wbuf_add(&self.wbuf, num, nnum)
        else:
            if not self._echo_opaque_and_key(tokens, ntokens, start, key, nkey, of.key_binary):
                return
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)
        if ok_skip:
            self.wbuf.len = start
        self.noreply = False

    cdef void _me(self, pc_token *tokens, size_t ntokens):
        cdef char *key
        cdef size_t nkey
        cdef pc_item *it
        cdef unsigned char buf[400]
        cdef size_t n, ntotal
        if ntokens < 3 or tokens[1].length > KEY_MAX:
            self._out(b"CLIENT_ERROR bad command line format")
            return
        key = tokens[1].value
        nkey = tokens[1].length
        if ntokens >= 4 and tokens[2].length == 1 and tokens[2].value[0] == b'b':
            n = pc_base64_decode_key(key, nkey)
            if n == 0:
                self._out(b"CLIENT_ERROR bad command line format")
                return
            nkey = n
        self.srv.cmd_meta += 1
        it = pc_store_peek(self.s, key, nkey)
        if it == NULL:
            self._out(b"EN")
            return
        pc_wbuf_add(&self.wbuf, b"ME ", 3)
        if it.bits & ITEM_KEY_BINARY:
            n = pc_base64_encode(<const unsigned char *>pc_item_key(it), it.nkey, buf,
                                 sizeof(buf))
            pc_wbuf_add(&self.wbuf, buf, n)
        else:
            pc_wbuf_add(&self.wbuf, pc_item_key(it), it.nkey)
        pc_wbuf_add(&self.wbuf, b" exp=", 5)
        if it.exptime == 0:
            pc_wbuf_add(&self.wbuf, b"-1", 2)
        else:
            pc_wbuf_add_i64(&self.wbuf, <int32_t>(self.s.now - it.exptime))
        pc_wbuf_add(&self.wbuf, b" la=", 4)
        pc_wbuf_add_u64(&self.wbuf, <uint32_t>(self.s.now - it.time))
        pc_wbuf_add(&self.wbuf, b" cas=", 5)
        pc_wbuf_add_u64(&self.wbuf, it.version)
        if it.bits & PC_ITEM_FETCHED:
            pc_wbuf_add(&self.wbuf, b" fetch=yes", 10)
        else:
            pc_wbuf_add(&self.wbuf, b" fetch=no", 9)
        ntotal = pc_item_memcached_size(it.nkey, it.flags, it.nbytes)
        pc_wbuf_add(&self.wbuf, b" cls=", 5)
        pc_wbuf_add_u64(&self.wbuf, pc_proto_slab_class(ntotal, self.s.item_size_max))
        pc_wbuf_add(&self.wbuf, b" size=", 6)
        pc_wbuf_add_u64(&self.wbuf, ntotal)
        pc_wbuf_add(&self.wbuf, b"\r\n", 2)

    # -- rare commands (Python) --------------------------------------------------------------

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
            pc_wbuf_add(&self.wbuf, PyBytes_AS_STRING(out), len(out))

    cdef void _extension(self, pc_token *tokens, size_t ntokens):
        cdef list args = self._args(tokens, ntokens)
        handler = self.srv.extensions.get(args[0]) if args else None
        if handler is None:
            self._out(b"ERROR")
            return
        self._write_py(handler(self, args))

    cdef void _slow_command(self, pc_cmd cmd, pc_token *tokens, size_t ntokens):
        cdef list args = self._args(tokens, ntokens)
        cdef bint noreply = False
        if cmd == PC_CMD_STATS:
            self._write_py(self._stats(args))
        elif cmd == PC_CMD_FLUSH_ALL:
            self._flush_all(tokens, ntokens)
        elif cmd == PC_CMD_VERBOSITY:
            self._noreply_maybe(tokens, ntokens)
            level = self._u32(tokens[1].value)
            if level is None:
                self._out(b"CLIENT_ERROR bad command line format")
            else:
                self.srv.verbosity = min(level, 2)
                self._out(b"OK")
        elif cmd == PC_CMD_SHUTDOWN:
            if not self.srv.settings.enable_shutdown:
                self._out(b"ERROR: shutdown not enabled")
            elif ntokens == 2 or (ntokens == 3 and args[1] == b"graceful"):
                self.closing = True
                if self.srv.on_shutdown is not None:
                    self.srv.on_shutdown(ntokens == 3)
            else:
                self._out(b"CLIENT_ERROR invalid shutdown mode")
        elif cmd == PC_CMD_CACHE_MEMLIMIT:
            self._noreply_maybe(tokens, ntokens)
            mb = self._u32(tokens[1].value)
            if mb is None:
                self._out(b"ERROR")
            elif mb < 8:
                self._out(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
            elif mb > 1000000000:
                self._out(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
            else:
                pc_store_set_limit(self.s, <size_t>mb * 1024 * 1024)
                self.srv.settings.memory_limit_mb = mb
                self._out(b"OK")
        else:
            self._write_py(other_command(self.srv, args))

    cdef object _u32(self, const char *tok):
        cdef uint32_t v
        if tok == NULL or not pc_strtoul(tok, &v):
            return None
        return v

    cdef void _flush_all(self, pc_token *tokens, size_t ntokens):
        cdef int32_t delay = 0
        self._noreply_maybe(tokens, ntokens)
        self.srv.cmd_flush += 1
        if ntokens != (3 if self.noreply else 2):
            if not pc_strtol(tokens[1].value, &delay):
                self._out(b"CLIENT_ERROR invalid exptime argument")
                return
        pc_store_flush(self.s, delay if delay > 0 else 0)
        self._out(b"OK")

    cdef bytes _stats(self, list args):
        if len(args) == 1:
            return stats_general(self.srv)
        sub = args[1]
        if sub == b"reset":
            self.srv.reset_stats()
            return b"RESET\r\n"
        if sub == b"detail":
            if len(args) < 3:
                return b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
            if args[2] == b"on" or args[2] == b"off":
                self.srv.detail_enabled = args[2] == b"on"
                return b"OK\r\n"
            if args[2] == b"dump":
                return b"END\r\n"
            return b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
        if sub == b"settings":
            return stats_settings(self.srv)
        if sub == b"conns":
            return stats_conns(self.srv)
        if sub == b"items":
            return stats_items(self.srv)
        if sub == b"slabs":
            return stats_slabs(self.srv)
        if sub == b"sizes":
            return b"STAT sizes_status disabled\r\nEND\r\n"
        if sub == b"cachedump":
            if len(args) < 4:
                return b"CLIENT_ERROR bad command line\r\n"
            return b"END\r\n"
        provider = self.srv.stats_providers.get(sub)
        if provider is not None:
            return provider(args)
        return b"ERROR\r\n"


def _log(str msg):
    sys.stderr.write(msg + "\n")


cdef size_t _u64toa(uint64_t v, char *p) noexcept:
    cdef char tmp[20]
    cdef size_t n = 0, i
    while True:
        tmp[n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    for i in range(n):
        p[i] = tmp[n - 1 - i]
    return n


cdef extern from *:
    """
    static size_t pc_base64_decode_key(char *key, size_t nkey) {
        return pc_base64_decode((const unsigned char *)key, nkey, (unsigned char *)key, nkey);
    }
    """
    size_t pc_base64_decode_key(char *key, size_t nkey)


# -- stats -------------------------------------------------------------------------------------

def _lines(pairs):
    return b"".join(b"STAT %s %s\r\n" % (k.encode(), str(v).encode()) for k, v in pairs) \
        + b"END\r\n"


def stats_general(ServerState srv):
    """`stats`: memcached 1.6.18's keys in its order (0 where we have no such thing), then
    ours."""
    from pycache_cluster import __version__
    st = srv.store.stats()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    now = time.time()
    cfg = srv.settings
    pairs = [
        ("pid", os.getpid()),
        ("uptime", int(now - srv.started)),
        ("time", int(now)),
        ("version", MEMCACHED_VERSION),
        ("libevent", "uvloop"),
        ("pointer_size", 64),
        ("rusage_user", "%.6f" % ru.ru_utime),
        ("rusage_system", "%.6f" % ru.ru_stime),
        ("max_connections", cfg.conn_limit),
        ("curr_connections", srv.curr_conns),
        ("total_connections", srv.total_conns),
        ("rejected_connections", srv.rejected_conns),
        ("connection_structures", srv.curr_conns + 1),
        ("response_obj_oom", 0),
        ("response_obj_count", 0),
        ("response_obj_bytes", 0),
        ("read_buf_count", srv.curr_conns),
        ("read_buf_bytes", srv.curr_conns * RBUF_INITIAL),
        ("read_buf_bytes_free", 0),
        ("read_buf_oom", 0),
        ("reserved_fds", 0),
        ("cmd_get", srv.cmd_get),
        ("cmd_set", srv.cmd_set),
        ("cmd_flush", srv.cmd_flush),
        ("cmd_touch", srv.cmd_touch),
        ("cmd_meta", srv.cmd_meta),
        ("get_hits", st["get_hits"]),
        ("get_misses", st["get_misses"]),
        ("get_expired", st["get_expired"]),
        ("get_flushed", st["get_flushed"]),
        ("delete_misses", st["delete_misses"]),
        ("delete_hits", st["delete_hits"]),
        ("incr_misses", st["incr_misses"]),
        ("incr_hits", st["incr_hits"]),
        ("decr_misses", st["decr_misses"]),
        ("decr_hits", st["decr_hits"]),
        ("cas_misses", st["cas_misses"]),
        ("cas_hits", st["cas_hits"]),
        ("cas_badval", st["cas_badval"]),
        ("touch_hits", st["touch_hits"]),
        ("touch_misses", st["touch_misses"]),
        ("store_too_large", srv.store_too_large),
        ("store_no_memory", srv.store_no_memory),
        ("auth_cmds", 0),
        ("auth_errors", 0),
        ("bytes_read", srv.bytes_read),
        ("bytes_written", srv.bytes_written),
        ("limit_maxbytes", st["limit_maxbytes"]),
        ("accepting_conns", 1),
        ("listen_disabled_num", 0),
        ("time_in_listen_disabled_us", 0),
        ("threads", 1),
        ("conn_yields", 0),
        ("hash_power_level", st["hash_power_level"]),
        ("hash_bytes", st["hash_bytes"]),
        ("hash_is_expanding", st["hash_is_expanding"]),
        ("slab_reassign_rescues", 0),
        ("slab_reassign_chunk_rescues", 0),
        ("slab_reassign_evictions_nomem", 0),
        ("slab_reassign_inline_reclaim", 0),
        ("slab_reassign_busy_items", 0),
        ("slab_reassign_busy_deletes", 0),
        ("slab_reassign_running", 0),
        ("slabs_moved", 0),
        ("lru_crawler_running", 0),
        ("lru_crawler_starts", 0),
        ("lru_maintainer_juggles", 0),
        ("malloc_fails", 0),
        ("log_worker_dropped", 0),
        ("log_worker_written", 0),
        ("log_watcher_skipped", 0),
        ("log_watcher_sent", 0),
        ("log_watchers", 0),
        ("unexpected_napi_ids", 0),
        ("round_robin_fallback", 0),
        ("bytes", st["bytes"]),
        ("curr_items", st["curr_items"]),
        ("total_items", st["total_items"]),
        ("slab_global_page_pool", 0),
        ("expired_unfetched", st["expired_unfetched"]),
        ("evicted_unfetched", st["evicted_unfetched"]),
        ("evicted_active", 0),
        ("evictions", st["evictions"]),
        ("reclaimed", st["reclaimed"]),
        ("crawler_reclaimed", st["crawler_reclaimed"]),
        ("crawler_items_checked", 0),
        ("lrutail_reflocked", 0),
        ("moves_to_cold", st["moves_to_cold"]),
        ("moves_to_warm", st["moves_to_warm"]),
        ("moves_within_lru", st["moves_within_lru"]),
        ("direct_reclaims", 0),
        ("lru_bumps_dropped", 0),
        ("pycache_version", __version__),
    ]
    return _lines(pairs)


def stats_settings(ServerState srv):
    cfg = srv.settings
    pairs = [
        ("maxbytes", cfg.memory_limit_mb * 1024 * 1024),
        ("maxconns", cfg.conn_limit),
        ("tcpport", cfg.port),
        ("udpport", 0),
        ("inter", cfg.listen),
        ("verbosity", srv.verbosity),
        ("oldest", 0),
        ("evictions", "on"),
        ("domain_socket", "NULL"),
        ("umask", 700),
        ("shutdown_command", "yes" if cfg.enable_shutdown else "no"),
        ("growth_factor", "1.25"),
        ("chunk_size", 48),
        ("num_threads", 1),
        ("num_threads_per_udp", 1),
        ("stat_key_prefix", ":"),
        ("detail_enabled", "yes" if srv.detail_enabled else "no"),
        ("reqs_per_event", REQS_PER_EVENT),
        ("cas_enabled", "yes"),
        ("tcp_backlog", 1024),
        ("binding_protocol", "ascii"),
        ("auth_enabled_sasl", "no"),
        ("auth_enabled_ascii", "no"),
        ("item_size_max", cfg.max_item_size),
        ("maxconns_fast", "yes"),
        ("hashpower_init", 0),
        ("slab_reassign", "no"),
        ("slab_automove", 0),
        ("lru_crawler", "yes"),
        ("lru_segmented", "yes"),
        ("hot_lru_pct", 20),
        ("warm_lru_pct", 40),
        ("flush_enabled", "yes"),
        ("hash_algorithm", "murmur3"),
        ("idle_timeout", 0),
    ]
    return _lines(pairs)


def stats_conns(ServerState srv):
    cfg = srv.settings
    out = [("0:addr", "tcp:%s:%d" % (cfg.listen, cfg.port)), ("0:state", "conn_listening")]
    for i, conn in enumerate(list(srv.conns), 1):
        peer = conn.peername
        addr = "tcp:%s:%s" % (peer[0], peer[1]) if peer else "tcp:?"
        out += [("%d:addr" % i, addr),
                ("%d:listen_addr" % i, "tcp:%s:%d" % (cfg.listen, cfg.port)),
                ("%d:state" % i, "conn_parse_cmd"),
                ("%d:secs_since_last_cmd" % i, 0)]
    return _lines(out)


def stats_items(ServerState srv):
    st = srv.store.stats()
    if not st["curr_items"]:
        return b"END\r\n"
    p = "items:1:"
    return _lines([
        (p + "number", st["curr_items"]),
        (p + "number_hot", st["number_hot"]),
        (p + "number_warm", st["number_warm"]),
        (p + "number_cold", st["number_cold"]),
        (p + "age_hot", 0), (p + "age_warm", 0), (p + "age", 0),
        (p + "mem_requested", st["bytes"]),
        (p + "evicted", st["evictions"]),
        (p + "evicted_nonzero", 0), (p + "evicted_time", 0), (p + "outofmemory", 0),
        (p + "tailrepairs", 0),
        (p + "reclaimed", st["reclaimed"]),
        (p + "expired_unfetched", st["expired_unfetched"]),
        (p + "evicted_unfetched", st["evicted_unfetched"]),
        (p + "evicted_active", 0),
        (p + "crawler_reclaimed", st["crawler_reclaimed"]),
        (p + "crawler_items_checked", 0), (p + "lrutail_reflocked", 0),
        (p + "moves_to_cold", st["moves_to_cold"]),
        (p + "moves_to_warm", st["moves_to_warm"]),
        (p + "moves_within_lru", st["moves_within_lru"]),
        (p + "direct_reclaims", 0),
        (p + "hits_to_hot", 0), (p + "hits_to_warm", 0), (p + "hits_to_cold", 0),
        (p + "hits_to_temp", 0),
    ])


def stats_slabs(ServerState srv):
    st = srv.store.stats()
    if not st["curr_items"]:
        return _lines([("active_slabs", 0), ("total_malloced", 0)])
    return _lines([
        ("1:chunk_size", 96),
        ("1:used_chunks", st["curr_items"]),
        ("1:get_hits", st["get_hits"]),
        ("1:cmd_set", srv.cmd_set),
        ("1:delete_hits", st["delete_hits"]),
        ("1:incr_hits", st["incr_hits"]),
        ("1:decr_hits", st["decr_hits"]),
        ("1:cas_hits", st["cas_hits"]),
        ("1:cas_badval", st["cas_badval"]),
        ("1:touch_hits", st["touch_hits"]),
        ("active_slabs", 1),
        ("total_malloced", st["bytes"]),
    ])


def _u32(bytes tok):
    cdef uint32_t v
    if not pc_strtoul(tok, &v):
        return None
    return v


def _float(bytes tok):
    try:
        return float(tok)
    except ValueError:
        return None


def other_command(ServerState srv, list args):
    """memcached commands about its own machinery (slabs, lru, lru_crawler, watch): their
    syntax and errors are memcached's; what they would tune does not exist here, so a valid
    request is simply acknowledged."""
    cmd = args[0]
    n = len(args) + 1   # memcached's ntokens (the terminal token included)
    if cmd == b"slabs":
        if n == 5 and args[1] == b"reassign":
            return b"BADCLASS invalid src or dst class id\r\n"
        if n >= 4 and args[1] == b"automove":
            if args[2] == b"ratio":
                return b"OK\r\n" if n >= 5 and _float(args[3]) is not None else b"ERROR\r\n"
            level = _u32(args[2])
            if level is None:
                return b"CLIENT_ERROR bad command line format\r\n"
            return b"OK\r\n" if level <= 2 else b"ERROR\r\n"
        return b"ERROR\r\n"
    if cmd == b"lru_crawler":
        if n == 4 and args[1] == b"crawl":
            return b"OK\r\n"
        if n == 4 and args[1] == b"metadump":
            return b"ERROR metadump not allowed\r\n"
        if n == 4 and args[1] == b"tocrawl":
            return b"OK\r\n" if _u32(args[2]) is not None else \
                b"CLIENT_ERROR bad command line format\r\n"
        if n == 4 and args[1] == b"sleep":
            v = _u32(args[2])
            if v is None:
                return b"CLIENT_ERROR bad command line format\r\n"
            if v > 1000000:
                return b"CLIENT_ERROR sleep must be one second or less\r\n"
            return b"OK\r\n"
        if n == 3 and args[1] in (b"enable", b"disable"):
            return b"OK\r\n"
        return b"ERROR\r\n"
    if cmd == b"lru":
        if args[1] == b"tune" and n >= 7:
            hot, warm = _u32(args[2]), _u32(args[3])
            hot_factor, factor = _float(args[4]), _float(args[5])
            if None in (hot, warm, hot_factor, factor):
                return b"ERROR\r\n"
            if hot + warm > 80:
                return b"ERROR hot and warm pcts must not exceed 80\r\n"
            if factor <= 0 or hot_factor <= 0:
                return b"ERROR hot/warm age factors must be greater than 0\r\n"
            return b"OK\r\n"
        if args[1] == b"mode" and n >= 4:
            return b"OK\r\n" if args[2] in (b"flat", b"segmented") else b"ERROR\r\n"
        if args[1] == b"temp_ttl" and n >= 4:
            return b"OK\r\n" if _u32(args[2].lstrip(b"-")) is not None else b"ERROR\r\n"
        return b"ERROR\r\n"
    if cmd == b"watch":
        return b"CLIENT_ERROR watch commands not allowed\r\n"
    return b"ERROR\r\n"
