"""The client's ring: rebuilt from `cluster ring` it places every key where the nodes do; a
reply that does not rebuild to its own checksum is refused; a stale ring costs hops, never
wrong answers, and the ring watch replaces it within its polling interval."""
import asyncio
import time

import pytest
from helpers.client import addresses, cluster_counters, spread
from helpers.cluster import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycache_cluster.client import Client
from pycache_cluster.client.topology import RingReplyError, Topology, parse_ring
from pycache_cluster.cluster.ring import checksum


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
    # Route by a ring without node 2, as a client that missed its join would.
    reply = fleet[0].call(b"cluster ring\r\n").decode().splitlines()
    kept = [line for line in reply[1:-1] if line.split()[1] != fleet[2].name]
    head = reply[0].replace("nodes=3", "nodes=2")
    info = parse_ring("\r\n".join([head, *kept, "END"]).encode())
    weights = {line.split()[1]: int(line.split()[3][7:]) for line in kept}
    info = info._replace(checksum=checksum(weights, info.vnodes))
    client.router.install(Topology.from_info(info))
    assert client.ring_checksum != current
    keys = spread(fleet, 3, "stale")
    before = cluster_counters(fleet, "forwarded")
    for i, k in enumerate(keys):
        assert client.set(k, b"%d" % i) is True
    assert client.get_many(keys) == {k: b"%d" % i for i, k in enumerate(keys)}
    hops = sum(a["forwarded"] - b["forwarded"]
               for a, b in zip(cluster_counters(fleet, "forwarded").values(), before.values(),
                               strict=True))
    assert hops > 0            # node 2's keys went to the others, which forwarded them
    wait_for(lambda: pause(client, 0.1) or client.ring_checksum == current, 10,
             "the watch to install the cluster's ring again")
    before = cluster_counters(fleet, "forwarded")
    assert client.get_many(keys) == {k: b"%d" % i for i, k in enumerate(keys)}
    assert cluster_counters(fleet, "forwarded") == before
