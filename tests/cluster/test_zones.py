"""Zones: `--zone` is advertised in gossip, `cluster ring` shows it and the client rebuilds the
same ring (and, in a zone itself, reads from the owners there); with copies placed across zones, killing a whole zone loses no acknowledged write,
while the same kill of the same nodes without zones does (the negative control)."""
import pytest
from helpers.client import cluster_counters
from helpers.cluster import Fleet, wait_for

from pycache_cluster.client import Client
from pycache_cluster.client.topology import Topology, parse_ring
from pycache_cluster.gossip.state import State

ZONES = ("a", "a", "b", "b")
KEYS = [b"z:%d" % i for i in range(300)]


def zoned_fleet(tmp_path_factory, base, zones):
    fleet = Fleet(tmp_path_factory, base, len(zones), "--replicas", "2", "--write-quorum", "2")
    for node, zone in zip(fleet.nodes, zones):
        if zone:
            node._flags += ["--zone", zone]
    return fleet.start()


@pytest.fixture
def fleets(tmp_path_factory):
    made = []

    def make(base, zones):
        made.append(zoned_fleet(tmp_path_factory, base, zones))
        return made[-1]

    yield make
    for fleet in made:
        fleet.stop()


def owners(fleet, key):
    reply = fleet[0].call(b"cluster owners " + key + b"\r\n").split(b"\r\n")
    return [line.split()[1].decode() for line in reply if line.startswith(b"OWNER")]


def lost_after_killing(fleet, dead):
    """Writes KEYS (acknowledged by W=2), kills the nodes `dead` with -9, and returns the keys
    the survivors no longer have once they hold their two copies again."""
    for key in KEYS:
        assert fleet[3].call(b"set %s 0 0 2\r\nok\r\n" % key) == b"STORED\r\n"
    for i in dead:
        fleet[i].kill()
    alive = [node for i, node in enumerate(fleet.nodes) if i not in dead]
    wait_for(lambda: all(node.members().get(fleet[i].name, (0, 0, None))[2] == State.DEAD
                         for node in alive for i in dead), 30, "the zone declared dead")
    fleet.wait_converged(alive)

    def settled():
        stats = [node.stats("cluster") for node in alive]
        return all(s.get("handover_running") == 0 for s in stats)

    wait_for(settled, 30, "hand-over idle")
    with alive[0].conn() as c:
        return [key for key in KEYS if c.call(b"get %s\r\n" % key) == b"END\r\n"]


def test_the_ring_shows_zones_and_the_client_rebuilds_it(fleets):
    fleet = fleets(190, ZONES)
    reply = fleet[1].call(b"cluster ring\r\n")
    nodes = [line.split() for line in reply.split(b"\r\n") if line.startswith(b"NODE")]
    assert [n[-1] for n in nodes] == [b"zone=" + z.encode() for z in ZONES]
    assert Topology.from_info(parse_ring(reply)).checksum == \
        fleet[0].stats("cluster")["ring_checksum"]
    zone_of = {node.name: zone for node, zone in zip(fleet.nodes, ZONES)}
    for key in KEYS[:100]:
        assert sorted(zone_of[o] for o in owners(fleet, key)) == ["a", "b"]
    # W = N: a client in zone b reads every key from its zone-b owner only.
    with Client([f"{fleet[0].host}:{fleet[0].port}"], zone="b") as client:
        for key in KEYS[:50]:
            assert client.set(key, b"v") is True
        before = cluster_counters(fleet, "cmd_get")
        assert client.get_many(KEYS[:50]) == dict.fromkeys(KEYS[:50], b"v")
        after = cluster_counters(fleet, "cmd_get")
    gets = {n: after[n]["cmd_get"] - before[n]["cmd_get"] for n in after}
    assert [gets[node.name] > 0 for node in fleet.nodes] == [z == "b" for z in ZONES]


def test_a_zone_that_goes_dark_loses_no_acknowledged_write(fleets):
    fleet = fleets(190, ZONES)
    assert lost_after_killing(fleet, (0, 1)) == []


def test_without_zones_the_same_kill_loses_writes(fleets):
    # The negative control: the same two nodes die, but nothing kept copies apart.
    fleet = fleets(194, ("", "", "", ""))
    both = [k for k in KEYS if set(owners(fleet, k)) == {fleet[0].name, fleet[1].name}]
    assert both                 # about a sixth of the keys live on these two nodes only
    assert sorted(lost_after_killing(fleet, (0, 1))) == sorted(both)
