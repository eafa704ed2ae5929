# The protocol's classes, declared so that other Cython modules (the cluster's peer links and
# ring) can cimport them: the shared server state, a client connection, a reply hole, a link.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from pycache_cluster.protocol._cdefs cimport (PC_MAX_TOKENS, pc_bin_req, pc_cmd, pc_lat, pc_prefix,
                                              pc_ring,
                                              pc_token, pc_wbuf)
from pycache_cluster.store._store cimport Store, pc_item, pc_store, pc_store_mode


# What a hole's reply becomes in the client's protocol (see _route.pxi).
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
    int owner                # ring slot of the owner it is forwarded to, -1 when local
    bint quiet               # forwarded with noreply or q: fenced by mn
    bint fanout              # a plain write this node replicates to every owner itself
    bint refuse              # a peer's write this node must not take (it is leaving)
    uint64_t version         # E: a replica's write at exactly this version (peer links)


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
    # Routing: installed by the cluster (pycache_cluster.cluster._ring). NULL ring: every key
    # is local, the single-node path exactly.
    cdef const pc_ring *ring
    cdef object ring_ref                 # keeps the snapshot behind `ring` alive
    cdef int self_slot                   # this node's slot, -1 when it owns nothing
    cdef list links                      # Link per slot (None at self_slot)
    # Links of their own for fills' fetches (_replica.pxi): they carry nothing a receiving
    # connection could stall on, so two nodes filling at once never wait for each other.
    cdef list side_links
    cdef public object cluster           # the cluster component (broadcasts), None alone
    cdef public uint64_t forwarded, fanout_batches, peer_requests
    # A graceful leave has begun (cluster/component.py): peers' writes are no longer taken
    # here, and their other keyed requests go on to the key's owners (see _conn.pyx,
    # "peer requests"); `rerouted` counts those requests.
    cdef public bint leaving
    cdef public uint64_t rerouted
    # Until this CLOCK_MONOTONIC time (ns; 0 never) after a ring change, hand-overs may still
    # be bringing this node keys: a conditional write it runs as a key's first owner on a key
    # it does not hold fetches the other owners' copies first (see _replica.pxi, "fills").
    cdef public uint64_t fill_until
    cdef public uint64_t fills
    # Replication: every key on its first `replicas` owners, writes acknowledged after
    # `write_quorum` of them, reads from `read_quorum` (1 = this node when it is an owner).
    cdef public int replicas, write_quorum, read_quorum
    cdef public uint64_t replica_writes_sent, replica_writes_acked, replica_writes_failed
    cdef public uint64_t quorum_failures, read_repairs
    # Read buffers: connections take a 16 KiB buffer for a read and give it back when the
    # batch left nothing behind, so idle connections hold none (memcached's rbuf cache).
    cdef char *spare_rbufs[64]
    cdef int nspare
    cdef public uint64_t read_buf_count, read_buf_bytes, read_buf_bytes_free, read_buf_oom

    cdef ClockFence fence               # the waiter of the clock fences (see _replica.pxi)
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

    cdef Link link(self, unsigned slot)
    cdef Link link_in(self, object ring, unsigned slot)
    cdef Link side_link_in(self, object ring, unsigned slot)
    cdef int self_slot_in(self, object ring)
    cdef char *take_rbuf(self) noexcept
    cdef void give_rbuf(self, char *buf, size_t cap) noexcept


# What waits on a peer link for one reply: a client's hole, a replica's vote, a read's
# answer, a clock fence, a Python future. The link hands each reply frame to reply() and a
# failure (timeout, lost connection, no route) to fail(), whatever the waiter is.
cdef class Waiter:
    cdef void reply(self, const char *frame, size_t n)
    cdef void fail(self, bytes why)


cdef class Link:
    # One request (head, then tail: a line and a value) for the owner of the key hashed hv;
    # h receives its reply (None: the reply is dropped). A quiet request (noreply, q) may
    # have no reply: the link fences it with mn, and h receives what came before MN.
    cdef int send(self, Waiter h, uint32_t hv, const char *head, size_t nhead,
                  const char *tail, size_t ntail, bint quiet) except -1
    # One request (never quiet) whose reply goes to `waiter`.
    cdef int send_waiter(self, Waiter waiter, uint32_t hv, const char *req,
                         size_t n) except -1


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


# A write on its way to a key's owners (see _replica.pxi): their votes, the client's reply
# once W applied it, and what it takes to send it again above a newer version.
cdef class Quorum:
    cdef ServerState srv
    cdef Hole hole              # the client's reply (None: nobody waits, e.g. noreply)
    cdef object yes, no         # that reply when an owner had the key, and when none did
    cdef uint8_t need, acks, fails, superseded, answered, sent, retries, round
    cdef bint found, replied, local, retryable
    cdef bint primary           # replicates an item that ran here (it is re-versioned)
    cdef bint sending           # requests still going out: no verdict before they all left
    cdef uint32_t hv
    cdef uint16_t owners[16]
    cdef uint8_t nowners
    cdef object ring            # the snapshot the owners' slots belong to
    # The write itself: key, flags, exptime (unix), value (None: a tombstone; b"touch":
    # a touch), version, and the request the owners apply.
    cdef bytes key, flag, value
    cdef uint32_t flags
    cdef int64_t exptime
    cdef uint64_t version, seen
    cdef bytes request
    cdef list after             # sends held back until every owner answered (inflight)
    cdef Connection conn

    cdef void vote(self, int round, int result, uint64_t held)
    cdef void settle(self)
    cdef void again(self)


# Follows a write sent to a key's first owner on the same link: its answer (`MN c<version>`)
# moves this node's clock past the version that write got there, so that what this node
# versions next for the key is newer (read-your-writes across the two ways writes go).
cdef class ClockFence(Waiter):
    cdef ServerState srv


# A replicated key's read (text get/gets) that this node could not answer alone (it is no
# owner, it misses the key, or R > 1): every owner is asked, the newest answer is the reply,
# and the owners that answered older or nothing are repaired.
cdef class ReadMerge:
    cdef ServerState srv
    cdef Hole hole
    cdef bint with_cas, replied, asking
    cdef uint32_t hv
    cdef bytes key, keytok, flag    # the key; as a meta token, with its b flag if any
    cdef uint16_t owners[16]
    cdef uint8_t nowners, next, need, answered, outstanding, hits
    cdef object ring
    cdef uint64_t best_version
    cdef uint32_t best_flags
    cdef int64_t best_exptime       # unix seconds, 0: never
    cdef bytes best_value           # None: nobody had it
    cdef list answers               # (slot, version) of the owners that answered
    cdef list after                 # sends held back until this read is answered
    cdef Connection conn
    cdef bint fill                  # a fill's fetch: no hole; the newest copy is stored here

    cdef void answer(self, int slot, uint64_t version, uint32_t flags, int64_t exptime,
                     object value)
    cdef void ask_next(self)
    cdef void ask_all(self)
    cdef void settle(self)


cdef class ReadAnswer(Waiter):
    cdef ReadMerge merge
    cdef int slot


# One owner's copy of a write, waiting on a peer link: its answer is a vote of its Quorum;
# its failure also keeps the request as a hint for that owner.
cdef class ReplicaWrite(Waiter):
    cdef Quorum quorum
    cdef int slot
    cdef uint8_t round
    cdef bytes request


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
    cdef bint peer              # a proven peer link (see _conn.pyx, "peer requests")
    cdef bint hop               # `mn P` came: the next request was routed here by a peer
    # A fill (_replica.pxi) is fetching the key of the request at the front of rbuf, which
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
    # Replies waiting on peers or Python, in request order (see _conn.pyx, "holes").
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
    cdef void _command_replicated(self, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                                  uint32_t hv)
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
