"""Client fixtures: a real three-node cluster (127.0.0.100-102, one node of weight 2, 500
vnodes per weight so the client's ring is not the default one), the threaded Client and the
AsyncClient on it. `api` runs a test once with each client: the asyncio one through Blocking,
which runs each of its coroutines to completion on one event loop."""
from __future__ import annotations

import asyncio

import pytest
from helpers.client import Blocking, addresses
from helpers.cluster import Fleet

from pycache_cluster.client import AsyncClient, Client


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 100, 3, "--vnodes", "500", "--forward-timeout", "1")
    fleet.nodes[2]._flags += ["--weight", "2"]
    request.addfinalizer(fleet.stop)
    return fleet.start()


@pytest.fixture
def make_client():
    """make_client(kind, seeds, **options): a threaded Client ("sync") or an AsyncClient
    behind Blocking ("async"), started; all closed after the test."""
    made = []

    def make(kind: str, seeds: list[str], **options):
        if kind == "sync":
            client = Client(seeds, **options)
            made.append((client, None))
            return client
        loop = asyncio.new_event_loop()
        client = Blocking(AsyncClient(seeds, **options), loop)
        made.append((client, loop))
        return client.start()

    yield make
    for client, loop in made:
        client.close()
        if loop is not None:
            loop.close()


@pytest.fixture(params=["sync", "async"])
def api(request, fleet, make_client):
    """Each client in turn, seeded with node 0 only, on an emptied cluster."""
    client = make_client(request.param, addresses(fleet)[:1], refresh_interval=1.0)
    client.flush_all()
    return client
