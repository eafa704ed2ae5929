"""The cluster's text commands, in memcached's style (extensions of the protocol):

    cluster members       MEMBER <name> <host>:<gossip-port> <state> <incarnation> ... END
    cluster ring          RING epoch=<n> checksum=<hex> replicas=<N> write_quorum=<W>
                          read_quorum=<R> vnodes=<per weight> nodes=<n>
                          status=<joining|active|leaving> handover=<idle|walking>
                          handover_walks=<n> handover_keys_sent=<n>   (this node's own)
                          NODE <name> <host>:<client-port> weight=<w> share=<fraction>
                          [zone=<name>] ...   (zone= only on a node that names one)
                          END        (nodes in name order; RING ... nodes=0 and END alone
                          while this node has no ring)
    cluster owners <key>  OWNER <name> <host>:<client-port> ... END   (preference order)
    cluster peer|auth     the peer handshake (cluster/handshake.py)
    cluster forget|leave|repair      the operator's commands (cluster/admin.py)
    cluster digest|versions|repair <peer>   anti-entropy between peers (cluster/antientropy.py)
    stats cluster         STAT <counter> <value> ... END

`cluster` with no or an unknown sub-command answers ERROR, as `stats <unknown>` does; a known
one with the wrong arguments answers CLIENT_ERROR bad command line format.
"""
from __future__ import annotations

from pycache_cluster.gossip import members_reply
from pycache_cluster.protocol.stats import lines

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
KEY_MAX = 250


class Commands:
    """Answers the commands above for one node's Cluster component."""

    def __init__(self, cluster):
        self.cluster = cluster

    def cluster_command(self, conn, args: list[bytes]) -> bytes:
        sub = args[1] if len(args) > 1 else None
        if sub == b"members":
            return members_reply(self.cluster.members()) if len(args) == 2 else BAD_FORMAT
        if sub == b"ring":
            return self.ring() if len(args) == 2 else BAD_FORMAT
        if sub == b"owners":
            if len(args) != 3 or len(args[2]) > KEY_MAX:
                return BAD_FORMAT
            return self.owners(args[2])
        if sub in (b"forget", b"forgotten", b"leave") or (sub == b"repair" and len(args) == 2):
            return self.cluster.admin.command(conn, args)
        if sub in (b"digest", b"versions", b"repair"):
            if not conn.is_peer:
                return b"CLIENT_ERROR cluster " + sub + b" is for cluster peers\r\n"
            return self.cluster.anti_entropy.command(args) or BAD_FORMAT
        if sub == b"peer":
            return self.cluster.handshake.on_peer(conn, args)
        if sub == b"auth":
            return self.cluster.handshake.on_auth(conn, args)
        return b"ERROR\r\n"

    def ring(self) -> bytes:
        ring = self.cluster.ring
        addrs = self.cluster.routes.addresses
        shares = ring.shares() if ring.weights else {}
        config = self.cluster.config
        # N, W and R ride along so that a client reads from the owners this node writes to;
        # this node's own status and hand-over progress, for an operator watching a change.
        ml = self.cluster.membership.memberlist
        status = ml.local_member.meta.status.name.lower() if ml is not None else "stopping"
        ho = self.cluster.handover
        out = [b"RING epoch=%d checksum=%s replicas=%d write_quorum=%d read_quorum=%d "
               b"vnodes=%d nodes=%d status=%s handover=%s handover_walks=%d "
               b"handover_keys_sent=%d\r\n"
               % (ring.epoch, ring.checksum.encode(), config.replicas, config.write_quorum,
                  config.read_quorum, ring.vnodes, len(ring.weights), status.encode(),
                  b"walking" if ho.task is not None else b"idle", ho.walks_done, ho.keys_sent)]
        for name in ring.nodes:
            host, port = addrs.get(name, ("?", 0))
            zone = ring.zone(name)
            out.append(b"NODE %s %s:%d weight=%d share=%.6f%s\r\n"
                       % (name.encode(), host.encode(), port, ring.weights[name], shares[name],
                          b" zone=" + zone.encode() if zone else b""))
        out.append(b"END\r\n")
        return b"".join(out)

    def owners(self, key: bytes) -> bytes:
        cluster = self.cluster
        addrs = cluster.routes.addresses
        out = []
        for name in cluster.ring.owners(key, cluster.config.replicas):
            host, port = addrs[name]
            out.append(b"OWNER %s %s:%d\r\n" % (name.encode(), host.encode(), port))
        out.append(b"END\r\n")
        return b"".join(out)

    def stats(self, args: list[bytes]) -> bytes:
        return lines(self.pairs()) if len(args) == 2 else BAD_FORMAT

    def pairs(self) -> list[tuple[str, object]]:
        """What `stats cluster` answers, as (name, value) pairs (the metrics read them too)."""
        c = self.cluster
        st = c.coord
        peers = c.pool.counters() if c.pool is not None else {}
        ring = c.ring
        return [
            ("ring_epoch", ring.epoch),
            ("ring_checksum", ring.checksum),
            ("ring_nodes", len(ring.weights)),
            ("ring_vnodes", ring.vnodes),
            ("ring_owner", 1 if c.name in ring.weights else 0),
            ("forwarded", st.forwarded),
            ("forward_errors", peers.get("failed", 0)),
            ("forward_timeouts", peers.get("timeouts", 0)),
            ("fanout_batches", st.fanout_batches),
            ("peer_requests_sent", peers.get("requests", 0)),
            ("peer_replies_received", peers.get("replies", 0)),
            ("peer_requests_waiting", peers.get("waiting", 0)),
            ("peer_connects", peers.get("connects", 0)),
            ("peer_links_ready", peers.get("links_ready", 0)),
            ("peer_requests_served", st.peer_requests),
            ("peer_requests_rerouted", st.rerouted),
            ("fills", st.fills),
            ("replicas", st.replicas),
            ("write_quorum", st.write_quorum),
            ("read_quorum", st.read_quorum),
            ("replica_writes_sent", st.replica_writes_sent),
            ("replica_writes_acked", st.replica_writes_acked),
            ("replica_writes_failed", st.replica_writes_failed),
            ("quorum_failures", st.quorum_failures),
            ("read_repairs", st.read_repairs),
            *c.hints.counters(c.routes.addresses).items(),
            *c.handover.counters().items(),
            *c.anti_entropy.counters().items(),
        ]
