"""Cluster fixtures: real `pycache-cluster serve` nodes with gossip on, each on its own
127.0.0.x, joined into one ring; tests talk to them over TCP as any memcached client would."""
from __future__ import annotations

import base64
import os

import pytest
from helpers.cluster import NodeProcess, wait_for


def converged(procs: list[NodeProcess]) -> bool:
    """Every node routes with the same ring of exactly these nodes."""
    try:
        seen = [p.stats("cluster") for p in procs]
    except (OSError, AssertionError):
        return False
    return (all(s.get("ring_nodes") == len(procs) for s in seen)
            and len({s.get("ring_checksum") for s in seen}) == 1)


class Fleet:
    """Nodes started as one cluster; extra flags (--forward-timeout...) for all of them."""

    def __init__(self, tmp_path_factory, base: int, n: int, *extra: str, keyed: bool = True):
        self.key_file = None
        if keyed:
            path = tmp_path_factory.mktemp("fleet") / "cluster.key"
            path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
            self.key_file = path
        self.nodes = [NodeProcess(f"c{base + i}", f"127.0.0.{base + i}", self.key_file,
                                  extra=extra) for i in range(n)]

    def start(self) -> Fleet:
        seeds = [self.nodes[0].addr]
        for node in self.nodes:
            node.start(join=seeds if node is not self.nodes[0] else [])
        self.wait_converged()
        return self

    def wait_converged(self, nodes=None, timeout: float = 30.0) -> None:
        nodes = nodes or self.nodes
        wait_for(lambda: converged(nodes), timeout, f"{len(nodes)} nodes on one ring",
                 detail=lambda: "\n".join(f"{p.name}: {p.stats('cluster')}" for p in nodes
                                          if p.server.alive()))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __getitem__(self, i: int) -> NodeProcess:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)


@pytest.fixture(scope="module")
def fleet3(request, tmp_path_factory):
    """Three keyed nodes on 127.0.0.71-73, for a whole module."""
    fleet = Fleet(tmp_path_factory, 71, 3, "--forward-timeout", "2")
    request.addfinalizer(fleet.stop)
    return fleet.start()


@pytest.fixture
def make_fleet(tmp_path_factory):
    made: list[Fleet] = []

    def make(base: int, n: int, *extra: str, keyed: bool = True) -> Fleet:
        fleet = Fleet(tmp_path_factory, base, n, *extra, keyed=keyed)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()
