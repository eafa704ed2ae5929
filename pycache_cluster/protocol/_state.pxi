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
        if getattr(settings, "detail_enabled", False):
            self.set_detail(True)
        self.ring = NULL
        self.self_slot = -1
        self.links = []
        self.side_links = []
        self.cluster = None
        self.fence = ClockFence.__new__(ClockFence)
        self.fence.srv = self
        auth_file = getattr(settings, "auth_file", "")
        self.auth_users = AuthFile(auth_file) if auth_file else None
        self.replicas = getattr(settings, "replicas", 1)
        self.write_quorum = getattr(settings, "write_quorum", 1)
        self.read_quorum = getattr(settings, "read_quorum", 1)
        self.sasl = getattr(settings, "sasl", False)
        self.conn_watch = None

    def set_detail(self, bint on):
        """`stats detail on|off` (and -D): counting starts or stops; the counts stay."""
        if on and self.prefix == NULL:
            self.prefix = pc_prefix_new(ord(getattr(self.settings, "prefix_delimiter", ":")[0]))
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
        self.forwarded = self.fanout_batches = self.peer_requests = 0
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

    @property
    def routing(self):
        """True while a ring is installed (keys may belong to other nodes)."""
        return self.ring != NULL

    cdef Link link(self, unsigned slot):
        return <Link>self.links[slot]

    cdef Link link_in(self, object ring, unsigned slot):
        """The link to owner `slot` of `ring`, the ring a request was routed by. A request
        that waited (behind a read, for its value, for another round) across a ring change
        still goes to the node it was routed to; a link the new ring dropped fails it."""
        if ring is self.ring_ref:
            return <Link>self.links[slot]
        link = ring.links[slot] if ring is not None else None
        return NO_ROUTE if link is None else <Link>link

    cdef Link side_link_in(self, object ring, unsigned slot):
        links = self.side_links if ring is self.ring_ref else \
            ring.side_links if ring is not None else None
        link = links[slot] if links else None
        return NO_ROUTE if link is None else <Link>link

    cdef int self_slot_in(self, object ring):
        if ring is self.ring_ref:
            return self.self_slot
        return ring.self_slot if ring is not None else -1
