# Peer requests, included by _coord.pyx: what this node does with a request another node
# routed here (the peer dialect: cluster/wire.py).

# What a peer request gets: run here, routed on to the key's owners, refused (a leaving
# node takes no write), or a replica read's miss that must not count (a fill window).
DEF PEER_HERE = 0
DEF PEER_ROUTE = 1
DEF PEER_REFUSE = 2
DEF PEER_NO_COPY = 3

cdef const char *LEAVING = b"SERVER_ERROR node leaving the cluster\r\n"
cdef const char *NO_COPY = b"SERVER_ERROR no copy yet\r\n"


cdef int peer_request(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                      uint32_t hv, bint hop) noexcept:
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef bint write = command_kind(cmd, tokens, ntokens) != KIND_READ
    if cmd >= PC_CMD_MG and cmd != PC_CMD_ME and has_version_flag(cmd, tokens, ntokens):
        if co.leaving and (cmd != PC_CMD_MG or write):
            co.rerouted += 1
            return PEER_REFUSE
        if cmd == PC_CMD_MG and not write and co.fill_until and not holds(c, cmd, tokens,
                                                                           ntokens, hv):
            if pc_lat_now() < co.fill_until:
                return PEER_NO_COPY
            co.fill_until = 0
        return PEER_HERE
    if hop:
        return PEER_REFUSE if co.leaving and write else PEER_HERE
    if co.leaving or (<int>pc_ring_primary(co.ring, hv) != co.self_slot and
                       (write or not owns_or_holds(c, cmd, tokens, ntokens, hv))):
        co.rerouted += 1
        return PEER_ROUTE
    return PEER_HERE


cdef bint owns_or_holds(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens,
                        uint32_t hv) noexcept:
    cdef ClusterCoordinator co = <ClusterCoordinator>c.srv.coord
    cdef uint16_t owners[MAX_REPLICAS]
    if co.replicas > 1 and is_owner(co, owners, owners_of(co, hv, owners)):
        return True
    return holds(c, cmd, tokens, ntokens, hv, True)


cdef bint holds(Connection c, pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t hv,
                bint live=False) noexcept:
    """This node holds something of the key: an item (live only) or a tombstone too."""
    cdef unsigned char decoded[256]
    cdef const char *key = tokens[1].value
    cdef size_t nkey = tokens[1].length
    if has_flag(cmd, tokens, ntokens, b'b'):
        nkey = pc_base64_decode(<const unsigned char *>key, nkey, decoded, sizeof(decoded))
        key = <const char *>decoded
    if nkey == 0:
        return False
    if live:
        return pc_store_find_hv(c.s, key, nkey, hv) != NULL
    return pc_store_slot_hv(c.s, key, nkey, hv) != NULL


cdef inline void mark_hop(Connection c, Link link, uint32_t hv):
    """Before a peer's request routed on: the next node answers it, whatever its ring."""
    if c.peer:
        link.send_waiter(None, hv, b"mn P\r\n", 6)     # its MN: nobody waits for it
