# The cluster's side of the request path: the coordinator a connection asks about every keyed
# request (protocol/_conn.pxd, Coordinator), and the parts it is made of, each in a file:
#
#   _forward.pxi  a request for a key another node owns goes there; a get's keys one by one
#   _peers.pxi    what this node does with a request a peer routed here
#   _order.pxi    later requests on a key follow an earlier one of the same connection
#   _quorum.pxi   a write's votes at its owners (Quorum, ReplicaWrite, the clock fence)
#   _writes.pxi   the first owner's replication of what ran here; plain writes to every owner
#   _merge.pxi    reads of replicated keys: every owner asked, the newest answer, repair
#   _fill.pxi     a new first owner's conditional write on a key it does not hold yet
#
# The owner test is native and object-free: murmur3 of the key (the hash the store uses,
# computed once by the connection and passed down) looked up in the ring snapshot. A single
# node has no coordinator (srv.coord is None) and pays one pointer test.
#
# The peer dialect these parts speak is described once, in cluster/wire.py; its replies are
# read by csrc/pc_reply.h's one parser.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyTypeObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset, strlen

from pycache_cluster.cluster._ring cimport RingSnapshot
from pycache_cluster.protocol._cdefs cimport *
from pycache_cluster.protocol._conn cimport (
    CO_DONE, CO_HERE, CO_REPLICATED, CO_REREAD, CO_VALUE, HK_GET, HK_GETS, HK_PY, HK_QUORUM,
    HK_RAW, Connection, Coordinator, Hole, ServerState, Waiter, _is, has_flag, mark_binary,
    meta_key,
    out_drain, out_hole, slot_version)
from pycache_cluster.store._store cimport *

from pycache_cluster.protocol.extensions import settle

DEF KEY_MAX = 250           # memcached's KEY_MAX_LENGTH
DEF MAX_REPLICAS = 16       # the most owners a key can have (--replicas)

include "_forward.pxi"
include "_peers.pxi"
include "_order.pxi"
include "_quorum.pxi"
include "_writes.pxi"
include "_merge.pxi"
include "_fill.pxi"


cdef class Link:
    """Where a forwarded request goes. The cluster's peer link (_link.pyx) is the real one;
    this base answers every request with an error, so a slot without a peer fails cleanly
    instead of hanging."""

    cdef int send(self, Waiter h, uint32_t hv, const char *head, size_t nhead,
                  const char *tail, size_t ntail, bint quiet) except -1:
        if h is not None:
            h.fail(b"no route to owner")
        return 0

    cdef int send_waiter(self, Waiter waiter, uint32_t hv, const char *req,
                         size_t n) except -1:
        if waiter is not None:
            waiter.fail(b"no route to owner")
        return 0


# Where a request goes whose owner is gone from every ring: it fails at once.
cdef Link NO_ROUTE = Link.__new__(Link)


@cython.final
cdef class ClusterCoordinator(Coordinator):
    """See _coord.pxd. Made by the cluster component, which installs each new ring."""

    def __init__(self, ServerState srv, int replicas, int write_quorum, int read_quorum,
                 on_hint, broadcast_flush):
        self.srv = srv
        self.s = srv.s
        self.replicas = replicas
        self.write_quorum = write_quorum
        self.read_quorum = read_quorum
        self.replicated = replicas > 1
        self.on_hint = on_hint
        self.broadcast_flush = broadcast_flush
        self.ring = NULL
        self.self_slot = -1
        self.links = []
        self.side_links = []
        self.fence = ClockFence.__new__(ClockFence)
        self.fence.co = self

    def install(self, RingSnapshot ring, int self_slot, list links, list side_links=None):
        """Routes the server's requests by `ring` from now on: links[slot] carries the
        requests of each other slot's keys (None at self_slot); side_links[slot], if given,
        a fill's fetches."""
        side_links = side_links or [None] * len(links)
        if len(links) != len(ring.names) or len(side_links) != len(links):
            raise ValueError("one link per slot")
        for i, link in enumerate(links):
            if i != self_slot and not isinstance(link, Link):
                raise TypeError(f"slot {i}: {link!r} is not a Link")
        ring.links = tuple(links)
        ring.side_links = tuple(side_links)
        ring.self_slot = self_slot
        self.links = list(links)
        self.side_links = list(side_links)
        self.self_slot = self_slot
        self.ring_ref = ring
        self.ring = ring.r
        self.srv.coord = self

    def uninstall(self):
        """Back to the single-node path: every key is local."""
        self.srv.coord = None
        self.ring = NULL
        self.ring_ref = None
        self.self_slot = -1
        self.links = []
        self.side_links = []

    def reset_stats(self):
        """`stats reset`: the forwarding counters with the seam's own (as before the seam)."""
        Coordinator.reset_stats(self)
        self.forwarded = 0

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

    # -- the entry points (protocol/_conn.pxd) -----------------------------------------------

    cdef int command(self, Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                     uint32_t hv, bint hop):
        cdef int where = PEER_ROUTE
        if c.peer:
            where = peer_request(c, cmd, tokens, ntokens, hv, hop)
            if where == PEER_NO_COPY:
                pc_wbuf_add(&c.wbuf, NO_COPY, strlen(NO_COPY))
                return CO_DONE
            if where == PEER_REFUSE:
                if cmd == PC_CMD_MS or PC_CMD_SET <= cmd <= PC_CMD_CAS:
                    c.p.refuse = c.p.routed = True      # answered once its value is read
                    return CO_VALUE
                pc_wbuf_add(&c.wbuf, LEAVING, strlen(LEAVING))
                return CO_DONE
        if where == PEER_ROUTE and route_command(c, cmd, tokens, ntokens, hv):
            return CO_DONE
        if c.p.owner >= 0 or c.p.fanout:
            c.p.routed = True
            return CO_VALUE
        if self.fill_until and fill_first(c, cmd, tokens, ntokens, hv, hop):
            return CO_REREAD
        if self.replicated and replicated_here(cmd, tokens, ntokens):
            return CO_REPLICATED
        return CO_HERE

    cdef bint get_key(self, Connection c, const char *key, size_t nkey, uint32_t hv,
                      bint return_cas, bint touch, int32_t exptime):
        return route_get_key(c, key, nkey, hv, return_cas, touch, exptime)

    cdef void stored(self, Connection c, const char *data, size_t n):
        if c.p.refuse:
            pc_wbuf_add(&c.wbuf, LEAVING, strlen(LEAVING))
        elif c.p.fanout:
            fanout_store(c, data, n)
        else:
            route_store(c, data, n)

    cdef void after_write(self, Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                          const char *key, size_t nkey, uint32_t hv, size_t start,
                          uint64_t before):
        replicate_local(c, key, nkey, hv, start, before)
        if cmd == PC_CMD_MG and has_flag(cmd, tokens, ntokens, b'T'):
            touch_others(c, key, nkey, hv, start, before)

    cdef void flush_all(self, Connection c, int32_t delay):
        route_flush_all(c, delay)

    cdef void drop_key(self, Connection c):
        drop_pending_key(c)

    cdef bint gated(self, Connection c, uint32_t hv):
        return self.replicas > 1 or <int>pc_ring_primary(self.ring, hv) != self.self_slot

    cdef bint local_read(self, Connection c, uint32_t hv, const char *key, size_t nkey):
        cdef uint16_t owners[MAX_REPLICAS]
        cdef unsigned n
        if self.read_quorum != 1 or self.replicas < 2:
            return False
        n = owners_of(self, hv, owners)
        return is_owner(self, owners, n) and pc_store_find_hv(c.s, key, nkey, hv) != NULL


cdef inline bint replicated_here(pc_cmd cmd, pc_token *tokens, size_t ntokens) noexcept:
    # Writes other than storage (whose value is stored in _complete_nread), not replicas'
    # own writes (E).
    return (cmd == PC_CMD_DELETE or cmd == PC_CMD_INCR or cmd == PC_CMD_DECR
            or cmd == PC_CMD_TOUCH or cmd == PC_CMD_MD or cmd == PC_CMD_MA
            or cmd == PC_CMD_MG) and not has_flag(cmd, tokens, ntokens, b'E') \
        and tokens[1].length <= KEY_MAX


_STATUS_NAMES = {PC_MR_VA: b"VA", PC_MR_HD: b"HD", PC_MR_EN: b"EN", PC_MR_NF: b"NF",
                 PC_MR_NS: b"NS", PC_MR_EX: b"EX", PC_MR_MN: b"MN", PC_MR_OK: b"OK",
                 PC_MR_TOUCHED: b"TOUCHED", PC_MR_NOT_FOUND: b"NOT_FOUND"}


def reply_fields(bytes frame):
    """One peer reply read by the request path's parser (csrc/pc_reply.h): (status, c
    number, value). status: the meta code or TOUCHED/NOT_FOUND, None for anything else;
    the c number: a CAS, version, clock or cut-off (0 when absent); value: a VA's bytes."""
    cdef pc_meta_reply m
    cdef int st = pc_reply_meta(frame, len(frame), &m)
    value = PyBytes_FromStringAndSize(m.value, m.nbytes) if st == PC_MR_VA else None
    return _STATUS_NAMES.get(st), m.cas, value
