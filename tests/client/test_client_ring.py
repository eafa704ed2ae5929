"""The client's ring: rebuilt from `cluster ring` it places every key where the nodes do; a
reply that does not rebuild to its own checksum is refused; a stale ring costs hops, never
wrong answers, and the ring watch replaces it within its polling interval; reads go to any of
a key's owners only when each of them holds every acknowledged write."""
import asyncio
import time

import pytest
from helpers.client import addresses, cluster_counters, spread
from helpers.cluster import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycache_cluster.client import AsyncClient, Client
from pycache_cluster.client.router import Endpoint, Router
from pycache_cluster.client.topology import RingReplyError, Topology, parse_ring
from pycache_cluster.cluster.ring import Ring, checksum


@pytest.fixture(scope="module")
def routed(fleet):
    client = Client(addresses(fleet)[1:2])
    yield client
    client.close()


key_bytes = st.lists(st.integers(0x21, 0xFF).filter(lambda b: b != 0x7F), min_size=1,
                     max_size=250).map(bytes)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=key_bytes, node=st.integers(0, 2))
def test_the_client_routes_every_key_to_the_owner_any_node_names(fleet, routed, key, node):
    reply = fleet[node].call(b"cluster owners " + key + b"\r\n").split(b"\r\n")
    owners = [line.split()[1:] for line in reply if line.startswith(b"OWNER")]
    assert [(o.name.encode(), f"{o.host}:{o.port}".encode()) for o in routed.owners(key)] == \
        [tuple(o) for o in owners]


def test_a_ring_reply_that_does_not_rebuild_to_its_checksum_is_refused(fleet):
    reply = fleet[0].call(b"cluster ring\r\n")
    assert Topology.from_info(parse_ring(reply)).checksum == \
        fleet[0].stats("cluster")["ring_checksum"]
    node = fleet[2].name.encode()
    tampered = reply.replace(b"NODE %s " % node, b"NODE %sx " % node)
    with pytest.raises(RingReplyError, match="checksum"):
        Topology.from_info(parse_ring(tampered))
    with pytest.raises(RingReplyError, match="no ring yet"):
        parse_ring(b"RING epoch=0 checksum=0 vnodes=500 nodes=0\r\nEND\r\n")
    with pytest.raises(RingReplyError, match="lists 2 of 3"):
        parse_ring(reply.replace(reply.split(b"\r\n")[1] + b"\r\n", b""))


def pause(client, seconds: float) -> None:
    """Lets time pass, the asyncio client's loop running meanwhile."""
    loop = getattr(client, "_loop", None)
    if loop is None:
        time.sleep(seconds)
    else:
        loop.run_until_complete(asyncio.sleep(seconds))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_stale_ring_costs_hops_not_answers_and_the_watch_replaces_it(fleet, make_client,
                                                                         kind):
    client = make_client(kind, addresses(fleet)[:1], refresh_interval=0.3)
    current = client.ring_checksum
    # Keys that node 0 does not own (each key has two owners of the three nodes).
    keys = [k for k in spread(fleet, 6, "stale")
            if fleet[0].name not in [o.name for o in client.owners(k)]]
    assert keys
    # Route by a ring of node 0 alone, as a client that missed the others' joins would.
    reply = fleet[0].call(b"cluster ring\r\n").decode().splitlines()
    kept = [line for line in reply[1:-1] if line.split()[1] == fleet[0].name]
    head = reply[0].replace("nodes=3", "nodes=1")
    info = parse_ring("\r\n".join([head, *kept, "END"]).encode())
    weights = {line.split()[1]: int(line.split()[3][7:]) for line in kept}
    info = info._replace(checksum=checksum(weights, info.vnodes))
    client.router.install(Topology.from_info(info))
    assert client.ring_checksum != current
    before = cluster_counters(fleet, "forwarded")
    for i, k in enumerate(keys):
        assert client.set(k, b"%d" % i) is True
    assert client.get_many(keys) == {k: b"%d" % i for i, k in enumerate(keys)}
    hops = sum(a["forwarded"] - b["forwarded"]
               for a, b in zip(cluster_counters(fleet, "forwarded").values(), before.values(),
                               strict=True))
    # Node 0 wrote each key to its owners (replica writes), then had to ask them for it.
    assert hops >= len(keys)
    wait_for(lambda: pause(client, 0.1) or client.ring_checksum == current, 10,
             "the watch to install the cluster's ring again")
    before = cluster_counters(fleet, "forwarded")
    assert client.get_many(keys) == {k: b"%d" % i for i, k in enumerate(keys)}
    assert cluster_counters(fleet, "forwarded") == before


def reads_of(topology: Topology, key: bytes, times: int, down: str | None = None) -> set[str]:
    router = Router(Endpoint)
    router.install(topology)
    if down is not None:
        router.failed(router.nodes[down])
    return {router.reader(key).name for _ in range(times)}


def test_reads_spread_over_the_owners_only_when_every_owner_acknowledges_writes():
    ring = Ring(100, {"a": 1, "b": 1, "c": 1})
    addresses = {"a": ("127.0.0.1", 1), "b": ("127.0.0.1", 2), "c": ("127.0.0.1", 3)}
    key = b"some key"
    primary, second = ring.owners(key, 2)
    # W = N = 2: either owner holds every acknowledged write, reads take them in turn.
    both = Topology(ring.checksum, 100, addresses, ring, replicas=2, write_quorum=2)
    assert (both.replicas, both.spread) == (2, True)
    assert reads_of(both, key, 4) == {primary, second}
    assert reads_of(both, key, 4, down=primary) == {second}
    # W = 1: only the owner a write went through is sure to hold it: the primary, unless
    # it has failed.
    one = Topology(ring.checksum, 100, addresses, ring, replicas=2, write_quorum=1)
    assert (one.replicas, one.spread) == (2, False)
    assert reads_of(one, key, 4) == {primary}
    assert reads_of(one, key, 4, down=primary) == {second}
    # Fewer nodes than N: every node owns every key.
    assert Topology.policy(3, 3, 2) == (2, True) and Topology.policy(2, 2, 1) == (1, False)


def test_reads_of_a_key_reach_both_its_owners_and_no_other_node(fleet, routed):
    key = b"spread:1"
    assert routed.set(key, b"v") is True
    owners = [o.name for o in routed.owners(key)]
    before = cluster_counters(fleet, "cmd_get", "forwarded")
    for _ in range(6):
        assert routed.get(key) == b"v"
    after = cluster_counters(fleet, "cmd_get", "forwarded")
    for node in fleet.nodes:
        gets = after[node.name]["cmd_get"] - before[node.name]["cmd_get"]
        assert (gets > 0) == (node.name in owners), node.name
        assert after[node.name]["forwarded"] == before[node.name]["forwarded"], node.name


def test_closing_the_asyncio_client_as_its_ring_watch_wakes_does_not_hang(fleet):
    """A wake that lands in the same loop turn as close()'s cancel of the watch task: a
    wait that swallowed that cancel (Python 3.11's wait_for does) left close() waiting for
    a watch that polled on for ever."""
    async def close_as_it_wakes() -> None:
        client = AsyncClient(addresses(fleet))
        await client.start()
        await asyncio.sleep(0.05)              # the watch task waits for its next turn
        client.ring_watch.hurry()
        await asyncio.sleep(0)                 # its wake is in; the task has not run yet
        closing = asyncio.ensure_future(client.close())
        _, pending = await asyncio.wait({closing}, timeout=5)    # waits without cancelling
        for task in (closing, client.ring_watch._task):
            task.cancel()
        assert not pending, "close() still waits for the ring watch"

    for _ in range(3):
        asyncio.run(close_as_it_wakes())
