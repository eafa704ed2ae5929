"""The client's copy of the cluster's ring: read from `cluster ring`, rebuilt with ring.Ring.

The ring is a pure function of (member names, weights, zones, vnodes per weight), so the client does
not trust a list of owners from the server: it rebuilds the ring from those inputs with the
very code the nodes use (cluster/ring.py), checks that the result has the checksum the node
reported, and looks keys up with the nodes' own native snapshot (cluster/_ring.pyx), so a
key's owner here is, by construction, the owner any node with the same checksum computes.
"""
from __future__ import annotations

from typing import NamedTuple

from pycache_cluster.cluster._ring import RingSnapshot
from pycache_cluster.cluster.ring import Ring


class RingReplyError(ValueError):
    """A `cluster ring` reply that cannot be used (malformed, empty, or a checksum that the
    rebuilt ring does not reproduce)."""


class Owner(NamedTuple):
    name: str
    host: str
    port: int


class RingInfo(NamedTuple):
    """What `cluster ring` says: `RING epoch=.. checksum=.. replicas=.. write_quorum=..
    read_quorum=.. vnodes=.. nodes=..`, then one `NODE <name> <host>:<port> weight=<w>
    share=<f> [zone=<z>]` per node. A node from before replication names no replicas: one
    owner."""
    epoch: int
    checksum: str
    vnodes: int
    nodes: dict[str, tuple[str, int, int]]      # name -> (host, port, weight)
    replicas: int = 1
    write_quorum: int = 1
    zones: dict[str, str] | None = None         # name -> zone, the nodes that name one


def parse_ring(reply: bytes) -> RingInfo:
    lines = reply.decode("ascii", "replace").splitlines()
    if not lines or not lines[0].startswith("RING "):
        raise RingReplyError(f"not a ring reply: {reply[:80]!r}")
    try:
        head = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
        nodes, zones = {}, {}
        for line in lines[1:]:
            parts = line.split()
            if not parts or parts[0] == "END":
                continue
            if parts[0] != "NODE" or len(parts) < 4:
                raise RingReplyError(f"not a node line: {line!r}")
            host, _, port = parts[2].rpartition(":")
            weight = int(parts[3].partition("=")[2])
            nodes[parts[1]] = (host.strip("[]"), int(port), weight)
            for part in parts[4:]:
                if part.startswith("zone="):
                    zones[parts[1]] = part[5:]
        info = RingInfo(int(head["epoch"]), head["checksum"], int(head["vnodes"]), nodes,
                        int(head.get("replicas", 1)), int(head.get("write_quorum", 1)),
                        zones)
        listed = int(head.get("nodes", -1))
    except (KeyError, ValueError) as exc:
        raise RingReplyError(f"malformed ring reply {reply[:120]!r}: {exc}") from None
    if len(nodes) != listed:
        raise RingReplyError(f"ring reply lists {len(nodes)} of {head.get('nodes')} nodes")
    if not nodes:
        # A clustered node that has not formed a ring yet: nothing to route by.
        raise RingReplyError("the node has no ring yet")
    return info


class Topology:
    """One immutable view of the cluster: the ring, where each member listens, and how many
    owners hold each key (`replicas`, N).

    `spread` says whether a read may go to any owner: only when every acknowledged write is
    on all N owners (W = N). With W < N an owner other than the one the write went through
    may answer an older value, so reads then start at the primary, where this client's
    writes are applied first, and go to another owner only when it has failed."""

    __slots__ = ("_ring", "_snapshot", "addresses", "checksum", "owners", "replicas", "spread",
                 "standalone", "vnodes")

    def __init__(self, checksum: str, vnodes: int, addresses: dict[str, tuple[str, int]],
                 ring: Ring, standalone: bool = False, snapshot: RingSnapshot | None = None,
                 replicas: int = 1, write_quorum: int = 1):
        self.checksum = checksum
        self.vnodes = vnodes
        self.addresses = addresses
        self.standalone = standalone
        self.replicas, self.spread = self.policy(replicas, write_quorum, len(addresses))
        self._ring = ring
        if snapshot is None:
            positions, slots = ring.arrays()
            snapshot = RingSnapshot(positions, slots, ring.nodes, ring.zone_slots())
        self._snapshot = snapshot
        #: owners(key: bytes, n=1) -> the key's first n distinct owners in preference order,
        #: by the native lookup the nodes route with (bound here: one call less per request).
        self.owners = self._snapshot.owners

    @classmethod
    def from_info(cls, info: RingInfo, previous: Topology | None = None) -> Topology:
        """The topology `info` describes. Building a ring costs w*vnodes hashes per node, so
        the ring (and its snapshot) of a `previous` topology with the same checksum is reused;
        only the addresses are taken from `info`."""
        addresses = {name: (host, port) for name, (host, port, _) in info.nodes.items()}
        if (previous is not None and not previous.standalone
                and previous.checksum == info.checksum and previous.vnodes == info.vnodes):
            if previous.addresses == addresses and (previous.replicas, previous.spread) == \
                    cls.policy(info.replicas, info.write_quorum, len(addresses)):
                return previous
            return cls(info.checksum, info.vnodes, addresses, previous._ring,
                       snapshot=previous._snapshot, replicas=info.replicas,
                       write_quorum=info.write_quorum)
        try:
            ring = Ring(info.vnodes, {name: w for name, (_, _, w) in info.nodes.items()},
                        info.zones)
        except ValueError as exc:       # weights or vnodes no ring can have
            raise RingReplyError(f"unusable ring reply: {exc}") from None
        if ring.checksum != info.checksum:
            raise RingReplyError(f"rebuilt ring has checksum {ring.checksum}, the node "
                                 f"reported {info.checksum}")
        return cls(info.checksum, info.vnodes, addresses, ring, replicas=info.replicas,
                   write_quorum=info.write_quorum)

    @classmethod
    def single(cls, host: str, port: int) -> Topology:
        """A node that is not clustered (it answers `cluster ring` with ERROR): it owns every
        key. Named by its address; its checksum can never equal a real ring's."""
        name = f"{host}:{port}"
        return cls("standalone:" + name, 1, {name: (host, port)}, Ring(1, {name: 1}),
                   standalone=True)

    @property
    def names(self) -> list[str]:
        return self._ring.nodes

    def zone(self, name: str) -> str:
        """The zone a node named (`--zone`), "" for none."""
        return self._ring.zone(name)

    @staticmethod
    def policy(replicas: int, write_quorum: int, nodes: int) -> tuple[int, bool]:
        """(owners per key, whether reads spread over them); a ring of fewer nodes than N
        gives each key all of them."""
        replicas = max(1, min(replicas, nodes))
        return replicas, replicas > 1 and write_quorum >= replicas

    def same_as(self, other: Topology | None) -> bool:
        return (other is not None and other.checksum == self.checksum
                and other.addresses == self.addresses and other.replicas == self.replicas
                and other.spread == self.spread)

    def __len__(self) -> int:
        return len(self.addresses)
