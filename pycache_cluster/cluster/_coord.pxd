# The cluster's side of the request path, declared for its parts (the .pxi files _coord.pyx
# includes) and for the peer links (_link.pyx): the coordinator, the link base, and what
# waits on links (a write's quorum and its replicas' votes, a read's merge and answers, the
# clock fence).
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from pycache_cluster.cluster._ring cimport RingSnapshot
from pycache_cluster.protocol._cdefs cimport pc_ring
from pycache_cluster.protocol._conn cimport Connection, Coordinator, Hole, ServerState, Waiter
from pycache_cluster.store._store cimport pc_store


cdef class ClusterCoordinator(Coordinator):
    cdef ServerState srv
    cdef pc_store *s
    # The ring requests are routed by (installed whole on every change), and its links.
    cdef const pc_ring *ring
    cdef RingSnapshot ring_ref
    cdef int self_slot                   # this node's slot, -1 when it owns nothing
    cdef list links                      # Link per slot (None at self_slot)
    # Links of their own for fills' fetches (_fill.pxi): they carry nothing a receiving
    # connection could stall on, so two nodes filling at once never wait for each other.
    cdef list side_links
    # Replication: every key on its first `replicas` owners, writes acknowledged after
    # `write_quorum` of them, reads from `read_quorum` (1 = this node when it is an owner).
    cdef public int replicas, write_quorum, read_quorum
    cdef public uint64_t forwarded, replica_writes_sent, replica_writes_acked
    cdef public uint64_t replica_writes_failed, quorum_failures, read_repairs
    # A graceful leave has begun (cluster/component.py): peers' writes are no longer taken
    # here, and their other keyed requests go on to the key's owners (_peers.pxi);
    # `rerouted` counts those requests.
    cdef public bint leaving
    cdef public uint64_t rerouted
    # Until this CLOCK_MONOTONIC time (ns; 0 never) after a ring change, hand-overs may still
    # be bringing this node keys (_fill.pxi).
    cdef public uint64_t fill_until
    cdef public uint64_t fills
    cdef ClockFence fence                # the waiter of the clock fences (_quorum.pxi)
    # Typed callbacks into the cluster component: a replica's write an owner did not take
    # (owner name, request), and flush_all's broadcast ((delay, version) -> awaitable reply).
    cdef public object on_hint, broadcast_flush

    cdef Link link(self, unsigned slot)
    cdef Link link_in(self, object ring, unsigned slot)
    cdef Link side_link_in(self, object ring, unsigned slot)
    cdef int self_slot_in(self, object ring)

cdef class Link:
    # One request (head, then tail: a line and a value) for the owner of the key hashed hv;
    # h receives its reply (None: the reply is dropped). A quiet request (noreply, q) may
    # have no reply: the link fences it with mn, and h receives what came before MN.
    cdef int send(self, Waiter h, uint32_t hv, const char *head, size_t nhead,
                  const char *tail, size_t ntail, bint quiet) except -1
    # One request (never quiet) whose reply goes to `waiter`.
    cdef int send_waiter(self, Waiter waiter, uint32_t hv, const char *req,
                         size_t n) except -1


# A write on its way to a key's owners (see _quorum.pxi): their votes, the client's reply
# once W applied it, and what it takes to send it again above a newer version.
cdef class Quorum:
    cdef ClusterCoordinator co
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
    cdef ClusterCoordinator co


# A replicated key's read (text get/gets) that this node could not answer alone (it is no
# owner, it misses the key, or R > 1): every owner is asked, the newest answer is the reply,
# and the owners that answered older or nothing are repaired.
cdef class ReadMerge:
    cdef ClusterCoordinator co
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
