# The protocol's classes, declared so that other Cython modules can cimport them: the shared
# server state, a client connection, a reply hole and the waiter interface of peer links, and
# the seam the cluster plugs in at, Coordinator (cluster/_coord.pyx implements it).
from cpython.object cimport PyTypeObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from pycache_cluster.protocol._cdefs cimport (PC_MAX_TOKENS, pc_bin_req, pc_cmd, pc_lat, pc_prefix,
                                              pc_token, pc_wbuf)
from pycache_cluster.store._store cimport (PC_ITEM_KEY_BINARY, Store, pc_item, pc_store,
                                           pc_store_mode, pc_store_slot_hv)


# What a hole's reply becomes in the client's protocol (see _output.pxi, hole_reply).
cdef enum HoleKind:
    HK_RAW = 0          # the owner's reply, as it is (possibly nothing, for noreply or q)
    HK_GET = 1          # an `mg <key> v f` answer, re-spoken as get's VALUE line (or nothing)
    HK_GETS = 2         # the same with the CAS
    HK_PY = 3           # filled by Python (an extension's awaitable, a cluster broadcast)
    HK_QUORUM = 4       # a replicated write's reply, put there by its Quorum
    HK_WRITE_POINT = 5  # a binary error through the gate: memcached wrote it at once


# A storage command waiting for its value (ST_NREAD): decided when its line is read, acted on
# when the value is complete.
cdef struct Pending:
    pc_cmd cmd
    bint meta
    char key[256]
    size_t nkey
    uint32_t hv
    uint32_t flags
    int64_t exptime
    uint64_t cas
    size_t vlen              # value length including the trailing \r\n
    bint noreply
    pc_store_mode mode
    bint key_binary, set_stale
    char ret[PC_MAX_TOKENS]  # ms return flags in request order: 'O', 'k', 'c'
    int nret
    char opaque[40]
    size_t nopaque
    uint64_t version         # E: a replica's write at exactly this version (peer links)
    # The coordinator's marks (Coordinator.command said CO_VALUE): `routed`, its value goes
    # to Coordinator.stored(); what it does there, the coordinator's own fields.
    bint routed
    int owner                # ring slot of the owner it is forwarded to, -1 when local
    bint quiet               # forwarded with noreply or q: fenced by mn
    bint fanout              # a plain write this node replicates to every owner itself
    bint refuse              # a peer's write this node must not take (it is leaving)


# What Coordinator.command() makes of a keyed command.
cdef enum CoordAnswer:
    CO_HERE = 0         # run here, as on a single node
    CO_DONE = 1         # answered, or on its way to the owners: nothing more here
    CO_REPLICATED = 2   # run here (the key's first owner), then after_write()
    CO_REREAD = 3       # not run: its line goes back, read again once the coordinator resumes
    CO_VALUE = 4        # a storage command: its arm reads the value, then stored() has it


# The cluster's side of the request path: one entry point per place the protocol meets the
# cluster. A connection asks srv.coord only when it is not None (a cluster with a ring).
cdef class Coordinator:
    cdef public uint64_t peer_requests      # requests served on proven peer links
    cdef public uint64_t fanout_batches     # multi-gets whose keys went to other owners
    cdef bint replicated                    # N > 1: what runs here goes on to the owners

    # A single-key command, after its key was hashed (hop: the peer that sent it routed it
    # here, `mn P`).
    cdef int command(self, Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                     uint32_t hv, bint hop)
    # One key of get/gets/gat/gats: True when it went to its owners (a hole holds its place).
    cdef bint get_key(self, Connection c, const char *key, size_t nkey, uint32_t hv,
                      bint return_cas, bint touch, int32_t exptime)
    # The value of a storage command command() marked (CO_VALUE), complete and well formed.
    cdef void stored(self, Connection c, const char *data, size_t n)
    # A write ran here: what it changed goes to the other owners; the reply made since
    # `start` may wait for them. `before`: the key's version before it ran.
    cdef void after_write(self, Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                          const char *key, size_t nkey, uint32_t hv, size_t start,
                          uint64_t before)
    cdef void flush_all(self, Connection c, int32_t delay)
    # memcached deletes the key of a set too large to store: here, or at its owner.
    cdef void drop_key(self, Connection c)
    # The binary gate (_bingate.pxi): whether a keyed binary request goes through it, and
    # whether a gated get may be answered here natively.
    cdef bint gated(self, Connection c, uint32_t hv)
    cdef bint local_read(self, Connection c, uint32_t hv, const char *key, size_t nkey)


cdef class ServerState:
    cdef public Store store
    cdef pc_store *s
    cdef public object settings          # pycache_cluster.config.Config
    cdef public object on_shutdown       # callable(graceful: bool), set by the node
    cdef public object extensions        # pycache_cluster.protocol.extensions.Extensions
    cdef public set conns
    cdef public int verbosity
    cdef public double started
    cdef public uint64_t curr_conns, total_conns, rejected_conns
    cdef public uint64_t cmd_get, cmd_set, cmd_touch, cmd_flush, cmd_meta
    cdef public uint64_t store_too_large, store_no_memory
    cdef public uint64_t bytes_read, bytes_written
    cdef public bint detail_enabled      # `stats detail on`: per-prefix counters in `prefix`
    cdef pc_prefix *prefix               # NULL until detail is first turned on
    # What `lru_crawler enable|disable` and `stats sizes_enable|disable` last said
    # (protocol/dump.py): the crawler runs whatever they say.
    cdef public bint crawler_enabled, sizes_enabled
    # memcached's ascii auth (-Y): the users (protocol/auth.py AuthFile), None when off.
    cdef public object auth_users
    # The cluster's side of the request path (cluster/_coord.pyx), None on a single node
    # or while no ring is installed: every key is local, the single-node path exactly.
    cdef public Coordinator coord
    # Read buffers: connections take a 16 KiB buffer for a read and give it back when the
    # batch left nothing behind, so idle connections hold none (memcached's rbuf cache).
    cdef char *spare_rbufs[64]
    cdef int nspare
    cdef public uint64_t read_buf_count, read_buf_bytes, read_buf_bytes_free, read_buf_oom

    # Sampled service times per command (csrc/pc_lat.h), exported by latency().
    cdef pc_lat lat
    # memcached -S: binary connections authenticate with SASL PLAIN first, text is refused.
    cdef public bint sasl
    # While someone watches connevents (protocol/watch.py): called as (peername, fd, reason)
    # when a connection opens (reason None) and closes; None otherwise: one check each.
    cdef public object conn_watch
    # memcached's logger counters while `watch` is served (protocol/watch.py): a callable
    # returning log_worker_* and log_watcher_* by name; None otherwise.
    cdef public object log_counters

    cdef char *take_rbuf(self) noexcept
    cdef void give_rbuf(self, char *buf, size_t cap) noexcept


# What waits on a peer link for one reply: a client's hole, a replica's vote, a read's
# answer, a clock fence, a Python future. The link hands each reply frame to reply() and a
# failure (timeout, lost connection, no route) to fail(), whatever the waiter is.
cdef class Waiter:
    cdef void reply(self, const char *frame, size_t n)
    cdef void fail(self, bytes why)


cdef class Hole(Waiter):
    cdef Connection conn        # None once the client is gone
    cdef uint64_t at            # output offset (bytes ever queued) its reply goes before
    cdef uint64_t seq           # holes its connection made before it
    cdef object data            # bytes once filled
    cdef bint filled
    cdef bint dropped           # its reply is not sent (memcached dropped it), only awaited
    cdef uint8_t kind           # HoleKind
    cdef uint8_t nkey
    cdef char key[250]          # HK_GET/HK_GETS: the key its VALUE line names
    cdef public object task     # an asyncio task to cancel when the client goes away

    cdef void put(self, object data)


cdef class Connection:
    cdef ServerState srv
    cdef pc_store *s
    cdef object transport
    cdef char *rbuf
    cdef size_t rcap, rend
    cdef pc_wbuf wbuf
    cdef uint64_t wbase         # output offset of wbuf.data[0]
    cdef size_t mark            # wbuf offset of memcached's last write point in this batch
    # Items an unwritten mg reply still references (memcached holds a refcount until the
    # reply is written, which stops incr/decr from shrinking the value in place).
    cdef void *pin_ptr[32]
    cdef uint64_t pin_ver[32]
    cdef int npin
    cdef unsigned nreqs
    cdef pc_cmd cmd             # the command of the request line parsed last
    cdef int state
    cdef bint noreply, closing, close_after_write, paused, rejected
    cdef bint peer              # a proven peer link (cluster/wire.py: what only peers send)
    cdef bint hop               # `mn P` came: the next request was routed here by a peer
    # A fill (cluster/_fill.pxi) is fetching the key of the request at the front of rbuf, which
    # runs once it is in; `filled_hv`: that key, whose fill is done (none held it, maybe).
    cdef bint filling, filled
    cdef bint reread            # the line just parsed goes back, to be parsed again
    cdef uint32_t filled_hv
    cdef bint watcher           # turned into a watcher (protocol/watch.py): never run again
    cdef bint shut              # closed by a shutdown (memcached's close reason "shutdown")
    # Ascii auth (-Y): no user proven yet; `auth` is its protocol/auth.py Session.
    cdef bint unauth
    cdef object auth
    cdef size_t swallow_left
    # The value being read (or swallowed) did not arrive with its command line: memcached
    # reads such a value's rest straight from the socket, exactly, so once it is complete
    # its read buffer is empty and it writes every reply out before it reads on.
    cdef bint spanned
    cdef Pending p
    # A value of DIRECT_MIN bytes or more stored here read straight into its item (memcached's
    # conn_nread): allocated unlinked once its line is parsed, nread_got bytes of it filled;
    # get_buffer() hands out the rest of it while `direct` (the read buffer stays small).
    cdef pc_item *nread_it
    cdef size_t nread_got
    cdef bint direct
    cdef bint tls               # over TLS: values are read through the read buffer
    cdef object p_line          # a forwarded storage command's request line (bytes)
    cdef object p_ring          # the ring its owner (p.owner) is a slot of
    # Replies waiting on peers or Python, in request order (see _output.pxi).
    cdef object holes           # collections.deque of Hole
    cdef Py_ssize_t nholes
    cdef uint64_t hole_seq      # holes ever made
    cdef uint64_t mark_seq      # hole_seq at the last write point
    cdef bint holes_paused, reading_paused, draining, busy
    cdef bint stalled           # a flush_all waits for the holes before it (see _process)
    cdef bint barrier           # ...and what follows a flush_all waits for it
    cdef bint eof               # the client half-closed: close once everything is answered
    # Keys (hashes) of writes this connection sent to a first owner and not yet answered:
    # later commands on them go the same way, so they run after the write, as in one
    # memcached (replicated keys may otherwise be answered here first).
    cdef uint32_t pend_hv[8]
    cdef uint8_t npend
    # Reads and plain writes of replicated keys still waiting on owners, by key hash: a
    # write this connection routes through the key's first owner meanwhile is sent only once
    # every owner answered them (the first owner's replication could otherwise reach an
    # owner before they do). Values: ReadMerge or Quorum.
    cdef dict inflight
    cdef public object peername
    cdef public str peer_name
    cdef public object session      # a peer handshake's state while it runs
    cdef int fd
    # The protocol, decided by the first byte as memcached does (see _binary.pxi).
    cdef uint8_t proto
    cdef pc_bin_req breq            # the binary frame whose value is being read
    cdef uint8_t bop                # its command (the quiet twin's base opcode)
    cdef bint bin_authed, sasl_started, sasl_done
    # In a cluster: the inner text connection keyed binary requests are re-spoken to
    # (_bingate.pxi), made on first use; `gated`: the value being read goes there.
    cdef object gate
    cdef bint gated
    cdef bint drop_deferred     # _drop_to_mark waits for the gate's replies to decide

    cdef void _out(self, const char *line) noexcept
    cdef void _out_err(self, const char *line) noexcept
    cdef void _write_point(self) noexcept
    cdef void _value_read_apart(self) noexcept
    cdef void _pin(self, pc_item *it) noexcept
    cdef bint _pinned(self, const char *key, size_t nkey, uint32_t hv) noexcept
    cdef bint _noreply_maybe(self, pc_token *tokens, size_t ntokens) noexcept
    cdef void _swallow(self, size_t n) noexcept
    cdef void _update_reading(self)
    cdef void _run(self)
    cdef void _process(self)
    cdef void _finish(self, size_t pos)
    cdef void _request_done(self) noexcept
    cdef size_t _auth_step(self, size_t pos)
    cdef int _grow(self, size_t need) except -1
    cdef void _settle_rbuf(self) noexcept
    cdef void _command(self, char *line, size_t line_end)
    cdef void _command_replicated(self, Coordinator coord, pc_cmd cmd, pc_token *tokens,
                                  size_t ntokens, uint32_t hv)
    cdef void _dispatch(self, pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t hv)
    cdef void _complete_nread(self, const char *data)
    cdef void _nread_begin(self) noexcept
    cdef void _nread_done(self, const char *crlf)
    cdef void _nread_drop(self) noexcept
    cdef void _extension(self, pc_token *tokens, size_t ntokens)
    cdef void _reply_py(self, object result)
    cdef list _args(self, pc_token *tokens, size_t ntokens)
    cdef void _write_py(self, bytes out)


# A peer link fills holes of many connections from one read; between these two calls each
# connection is written once, at the end.
cdef void replies_begin() noexcept
cdef void replies_end()


# Shared with the coordinator.
cdef Hole out_hole(Connection c, uint8_t kind)
cdef void out_drain(Connection c)
cdef void meta_key(Connection c, const char *key, size_t nkey, bint binary) noexcept
cdef bint has_flag(pc_cmd cmd, pc_token *tokens, size_t ntokens, char flag) noexcept


cdef extern from "string.h":
    int strcmp(const char *a, const char *b) nogil


cdef inline bint _is(const char *tok, const char *lit) noexcept:
    return strcmp(tok, lit) == 0


cdef inline uint64_t slot_version(Connection c, const char *key, size_t nkey,
                                  uint32_t hv) noexcept:
    """The key's version in the store (0: nothing, not even a tombstone)."""
    cdef pc_item *it = pc_store_slot_hv(c.s, key, nkey, hv)
    return it.version if it != NULL else 0


cdef inline void mark_binary(pc_store *s, const char *key, size_t nkey, uint32_t hv) noexcept:
    """The key came base64 (meta b): its replies give it back that way."""
    cdef pc_item *it = pc_store_slot_hv(s, key, nkey, hv)
    if it != NULL:
        it.bits |= PC_ITEM_KEY_BINARY


# Free pools for the waiters made per request (Hole, ReadAnswer, ReplicaWrite): Cython keeps
# freelists only for types with no base type, and every waiter derives from Waiter, so
# without these each one would cost a trip through the allocator and the GC's lists. As in
# Cython's own freelists, a pooled object keeps the memory it was given (its GC header
# too), and is zeroed, initialised and tracked again when it is taken.
cdef extern from *:
    """
    #define PC_POOL(name) \
        static PyObject *name##_items[256]; \
        static int name##_n; \
        static PyObject *name##_alloc(PyTypeObject *t, Py_ssize_t nitems) { \
            if (nitems == 0 && name##_n > 0) { \
                PyObject *o = name##_items[--name##_n]; \
                memset((void *)o, 0, (size_t)t->tp_basicsize); \
                (void)PyObject_INIT(o, t); \
                PyObject_GC_Track(o); \
                return o; \
            } \
            return PyType_GenericAlloc(t, nitems); \
        } \
        static void name##_free(void *p) { \
            PyObject *o = (PyObject *)p; \
            if (PyObject_GC_IsTracked(o)) \
                PyObject_GC_UnTrack(o); \
            if (name##_n < 256) { \
                name##_items[name##_n++] = o; \
                return; \
            } \
            PyObject_GC_Del(p); \
        } \
        static int name##_install(PyTypeObject *t) { \
            if (!PyType_IS_GC(t) || t->tp_itemsize) \
                return -1; \
            t->tp_alloc = name##_alloc; \
            t->tp_free = name##_free; \
            return 0; \
        }
    """
