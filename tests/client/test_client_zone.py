"""A client in a zone reads from the owners in its zone when reads may go to any owner, in
turn among them; the others only when those are marked failed; never with W < N."""
from pycache_cluster.client.router import Endpoint, Router
from pycache_cluster.client.topology import Topology
from pycache_cluster.cluster.ring import Ring

ZONES = {"a1": "a", "a2": "a", "b1": "b", "b2": "b", "c1": "c", "c2": "c"}
ADDRESSES = {name: ("127.0.0.1", i + 1) for i, name in enumerate(ZONES)}


def topology(replicas: int, write_quorum: int) -> Topology:
    ring = Ring(100, dict.fromkeys(ZONES, 1), ZONES)
    return Topology(ring.checksum, 100, ADDRESSES, ring, replicas=replicas,
                    write_quorum=write_quorum)


def reads(router: Router, key: bytes, times: int = 8) -> list[str]:
    return [router.reader(key).name for _ in range(times)]


def test_reads_stay_in_the_readers_zone_and_take_its_owners_in_turn():
    t = topology(3, 3)
    router = Router(Endpoint, zone="b")
    router.install(t)
    for i in range(50):
        key = b"zk:%d" % i
        owners = t.owners(key, 3)          # one per zone
        assert sorted(ZONES[o] for o in owners) == ["a", "b", "c"]
        assert set(reads(router, key)) == {o for o in owners if ZONES[o] == "b"}
    # Four owners over three zones: two may be in the reader's zone; both serve in turn.
    t4 = topology(4, 4)
    router.install(t4)
    both = [b"zk:%d" % i for i in range(200)
            if sum(ZONES[o] == "b" for o in t4.owners(b"zk:%d" % i, 4)) == 2]
    assert both
    assert set(reads(router, both[0])) == {o for o in t4.owners(both[0], 4) if ZONES[o] == "b"}


def test_a_failed_zone_owner_sends_reads_to_the_other_zones():
    t = topology(3, 3)
    router = Router(Endpoint, zone="a")
    router.install(t)
    key = b"zk:failover"
    near = next(o for o in t.owners(key, 3) if ZONES[o] == "a")
    router.failed(router.nodes[near])
    got = set(reads(router, key))
    assert near not in got and got <= set(t.owners(key, 3))


def test_without_spread_or_a_zone_nothing_changes():
    key = b"zk:plain"
    primary_only = topology(3, 2)              # W < N: the primary, whatever the zone
    router = Router(Endpoint, zone="c")
    router.install(primary_only)
    assert set(reads(router, key)) == {primary_only.owners(key, 1)[0]}
    everywhere = topology(3, 3)
    zoneless = Router(Endpoint)
    zoneless.install(everywhere)
    assert set(reads(zoneless, key, 12)) == set(everywhere.owners(key, 3))
    far = Router(Endpoint, zone="nowhere")         # a zone no owner is in: all owners in turn
    far.install(everywhere)
    assert set(reads(far, key, 12)) == set(everywhere.owners(key, 3))
