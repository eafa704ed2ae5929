"""Which node serves a key: the current topology, each node's health, and the fallback walk.

Shared by the threaded and the asyncio client (no I/O here). Writes go to a key's first owner
(its primary): a plain write is then applied there and sent to the N - 1 other owners, where
through any other node it would cost one more replica write, and a conditional write runs
only on the primary, so through any other node it would be forwarded. Reads go to one of the
key's N owners, taken in turn when the topology allows spreading them (W = N: every
acknowledged write is on every owner), those in the client's own zone first when it names
one, else the primary; an owner marked failed is skipped,
so with N > 1 a dead primary's keys are read from another owner. A key whose owners are all
marked failed goes to the next node on its ring walk: that node asks the owners its own ring
names (exactly once), so the answer is right whichever ring is newer, and once gossip has
dropped a dead owner that next node is the key's new owner.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable

from pycache_cluster.client.errors import ClusterUnavailable
from pycache_cluster.client.topology import Topology

monotonic = time.monotonic


class Endpoint:
    """A member as a client sees it: its address and whether it answers. The clients subclass
    it with their connections."""

    def __init__(self, name: str, host: str, port: int):
        self.name = name
        self.host = host
        self.port = port
        #: monotonic time before which requests avoid this node; 0.0 while it answers.
        self.down_until = 0.0
        self.failures = 0

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"


class Router:
    """The view (topology, nodes by name) is replaced as one tuple, so a request never sees a
    ring from one refresh and the nodes of another."""

    def __init__(self, make_node: Callable[[str, str, int], Endpoint], retry_after: float = 1.0,
                 max_retry_after: float = 30.0, zone: str = ""):
        self._make = make_node
        #: The reader's zone: spread reads go to the owners in it first (see topology.zone).
        self.zone = zone
        self.retry_after = retry_after
        self.max_retry_after = max_retry_after
        self.view: tuple[Topology | None, dict[str, Endpoint]] = (None, {})
        self._turn = itertools.count()
        self.closed = False

    @property
    def topology(self) -> Topology | None:
        return self.view[0]

    @property
    def nodes(self) -> dict[str, Endpoint]:
        return self.view[1]

    def install(self, topology: Topology) -> list[Endpoint]:
        """Routes by `topology` from now on. Nodes that kept their name and address keep their
        connections and health; returns the nodes that left, for the caller to close. After
        close() it installs nothing: a refresh under way must not reopen a closed client."""
        if self.closed:
            return []
        _, old = self.view
        nodes = {}
        for name, (host, port) in topology.addresses.items():
            node = old.get(name)
            if node is None or (node.host, node.port) != (host, port):
                node = self._make(name, host, port)
            nodes[name] = node
        self.view = (topology, nodes)
        return [node for name, node in old.items() if nodes.get(name) is not node]

    def writer(self, key: bytes) -> Endpoint:
        topology, nodes = self.view
        try:
            node = nodes[topology.owners(key, 1)[0]]
        except KeyError:                # only once closed: the nodes follow the topology
            raise self.closed_error() from None
        if node.down_until and node.down_until > monotonic():
            return self.fallback(key, ()) or node
        return node

    def reader(self, key: bytes) -> Endpoint:
        topology, nodes = self.view
        if topology.replicas == 1:
            owners = topology.owners(key, 1)
        else:
            owners = topology.owners(key, topology.replicas)
            if topology.spread:
                # In turn among the owners in the reader's zone when it has some, else among
                # all; the others stay behind them for when those are marked failed.
                span = len(owners)
                if self.zone:
                    near = [o for o in owners if topology.zone(o) == self.zone]
                    if near:
                        owners = near + [o for o in owners if o not in near]
                        span = len(near)
                # next() on a count is one C call, safe across threads.
                turn = next(self._turn) % span
                owners = owners[turn:span] + owners[:turn] + owners[span:]
        try:
            node = nodes[owners[0]]
        except KeyError:
            raise self.closed_error() from None
        if node.down_until:
            now = monotonic()
            for name in owners:
                if nodes[name].down_until <= now:
                    return nodes[name]
            return self.fallback(key, ()) or node
        return node

    def fallback(self, key: bytes, tried: Iterable[Endpoint]) -> Endpoint | None:
        """The first node on the key's ring walk not yet tried, preferring nodes not marked
        failed; None once every node was tried."""
        topology, nodes = self.view
        if self.closed:
            raise self.closed_error()
        tried = set(tried)
        walk = [nodes[name] for name in topology.owners(key, len(nodes))]
        now = monotonic()
        untried = [node for node in walk if node not in tried]
        for node in untried:
            if node.down_until <= now:
                return node
        return untried[0] if untried else None

    def any_node(self, tried: Iterable[Endpoint] = ()) -> Endpoint | None:
        """A node for a request that is not about one key (flush_all, cluster members), taken
        in turn among the nodes not marked failed."""
        tried = set(tried)
        for node in self.ask_order():
            if node not in tried:
                return node
        return None

    def ask_order(self) -> list[Endpoint]:
        """Every node, those not marked failed first, starting at a different one each time
        (spreads the periodic ring checks)."""
        _, nodes = self.view
        members = list(nodes.values())
        if not members:
            return []
        start = next(self._turn) % len(members)
        members = members[start:] + members[:start]
        now = monotonic()
        return ([n for n in members if n.down_until <= now]
                + [n for n in members if n.down_until > now])

    def group(self, keys: Iterable, full_keys: Iterable[bytes], write: bool) -> dict:
        """{node: [key, ...]} in the callers' key order, for a multi-key call."""
        pick = self.writer if write else self.reader
        groups: dict[Endpoint, list] = {}
        for key, full in zip(keys, full_keys, strict=True):
            groups.setdefault(pick(full), []).append(key)
        return groups

    def failed(self, node: Endpoint) -> None:
        """The node did not answer: avoid it for a while (doubling up to max_retry_after while
        it keeps failing), then try it again."""
        node.failures += 1
        backoff = min(self.max_retry_after, self.retry_after * 2 ** (node.failures - 1))
        node.down_until = monotonic() + backoff

    @staticmethod
    def answered(node: Endpoint) -> None:
        node.failures = 0
        node.down_until = 0.0

    def close(self) -> None:
        self.closed = True
        _, nodes = self.view
        self.view = (self.view[0], {})
        for node in nodes.values():
            node.close()

    @staticmethod
    def closed_error() -> ClusterUnavailable:
        return ClusterUnavailable("the client is closed")
