"""Cluster fixtures: real `pycache-cluster serve` nodes with gossip on, each on its own
127.0.0.x, joined into one ring; tests talk to them over TCP as any memcached client would."""
from __future__ import annotations

import pytest
from helpers.cluster import Fleet


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

