# The state every connection of one listener shares (included by _conn.pyx): the store,
# the settings, the counters memcached reports, the spare read buffers, the latency
# samples, and the cluster's coordinator when there is one.

@cython.final
cdef class ServerState:
    """What every connection of one listener shares: the store, settings and counters."""

    def __init__(self, Store store, settings):
        self.store = store
        self.s = store._s
        self.settings = settings
        self.on_shutdown = None
        self.extensions = Extensions()
        self.conns = set()
        self.verbosity = settings.verbosity
        self.started = __import__("time").time()
        self.detail_enabled = False
        self.prefix = NULL
        self.crawler_enabled = True
        self.sizes_enabled = False
        if settings.detail_enabled:
            self.set_detail(True)
        self.coord = None
        auth_file = settings.auth_file
        self.auth_users = AuthFile(auth_file) if auth_file else None
        self.sasl = settings.sasl
        self.conn_watch = None

    def set_detail(self, bint on):
        """`stats detail on|off` (and -D): counting starts or stops; the counts stay."""
        if on and self.prefix == NULL:
            self.prefix = pc_prefix_new(ord(self.settings.prefix_delimiter[0]))
            if self.prefix == NULL:
                raise MemoryError()
        self.detail_enabled = on

    def prefix_dump(self):
        """`stats detail dump`: memcached's PREFIX lines, then END."""
        cdef pc_wbuf out
        if self.prefix == NULL:
            return b"END\r\n"
        pc_wbuf_init(&out)
        try:
            if pc_prefix_dump(self.prefix, &out) != 0:
                raise MemoryError()
            return PyBytes_FromStringAndSize(out.data, out.len)
        finally:
            pc_wbuf_free(&out)

    @property
    def prefixes(self):
        return 0 if self.prefix == NULL else pc_prefix_count(self.prefix)

    def protocol_factory(self):
        return Connection(self)

    def reset_stats(self):
        self.total_conns = self.rejected_conns = 0
        self.cmd_get = self.cmd_set = self.cmd_touch = self.cmd_flush = self.cmd_meta = 0
        self.store_too_large = self.store_no_memory = 0
        self.bytes_read = self.bytes_written = 0
        if self.coord is not None:
            self.coord.reset_stats()
        if self.auth_users is not None:
            self.auth_users.cmds = self.auth_users.errors = 0
        if self.prefix != NULL:
            pc_prefix_clear(self.prefix)
        self.store.reset_stats()

    @property
    def reqs_per_event(self):
        return REQS_PER_EVENT

    def latency(self):
        """Sampled service times (csrc/pc_lat.h), read at scrape time: (one sample per so
        many requests, bucket upper bounds in seconds, {command: (bucket counts, not
        cumulative, the last one above every bound; sum of the samples in seconds)})."""
        cdef int c, b
        out = {}
        for c, name in _LAT_NAMES.items():
            counts = [self.lat.count[c][b] for b in range(PC_LAT_BUCKETS + 1)]
            if any(counts):
                out[name] = (counts, self.lat.sum_ns[c] / 1e9)
        return PC_LAT_EVERY, [(1000 << b) / 1e9 for b in range(PC_LAT_BUCKETS)], out

    def __dealloc__(self):
        pc_prefix_free(self.prefix)
        while self.nspare:
            self.nspare -= 1
            free(self.spare_rbufs[self.nspare])

    cdef char *take_rbuf(self) noexcept:
        cdef char *buf
        if self.nspare:
            self.nspare -= 1
            self.read_buf_bytes_free -= RBUF_INITIAL
            return self.spare_rbufs[self.nspare]
        buf = <char *>malloc(RBUF_INITIAL)
        if buf == NULL:
            self.read_buf_oom += 1
            return NULL
        self.read_buf_count += 1
        self.read_buf_bytes += RBUF_INITIAL
        return buf

    cdef void give_rbuf(self, char *buf, size_t cap) noexcept:
        if cap == RBUF_INITIAL and self.nspare < 64:
            self.spare_rbufs[self.nspare] = buf
            self.nspare += 1
            self.read_buf_bytes_free += RBUF_INITIAL
            return
        free(buf)
        self.read_buf_count -= 1
        self.read_buf_bytes -= cap


cdef class Coordinator:
    """The seam's base (see _conn.pxd): runs everything here, as a single node does. The
    cluster's coordinator (cluster/_coord.pyx) overrides every entry point."""

    cdef int command(self, Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                     uint32_t hv, bint hop):
        return CO_HERE

    cdef bint get_key(self, Connection c, const char *key, size_t nkey, uint32_t hv,
                      bint return_cas, bint touch, int32_t exptime):
        return False

    cdef void stored(self, Connection c, const char *data, size_t n):
        pass

    cdef void after_write(self, Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                          const char *key, size_t nkey, uint32_t hv, size_t start,
                          uint64_t before):
        pass

    cdef void flush_all(self, Connection c, int32_t delay):
        c._out(b"OK")

    cdef void drop_key(self, Connection c):
        pc_store_delete_hv(c.s, c.p.key, c.p.nkey, c.p.hv, 0, 0)

    cdef bint gated(self, Connection c, uint32_t hv):
        return False

    cdef bint local_read(self, Connection c, uint32_t hv, const char *key, size_t nkey):
        return False

    def reset_stats(self):
        self.peer_requests = self.fanout_batches = 0
