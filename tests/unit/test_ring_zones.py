"""Zones on the ring: owners take at most ceil(N / zones) nodes of one zone, by the documented
walk, in Python and in the native snapshot alike; the checksum covers zones."""
import bisect
import math

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycache_cluster.cluster._ring import RingSnapshot

from pycache_cluster.cluster.ring import Ring, check_zone, checksum


def definition_owners(weights, zones, vnodes, key, n):
    """cluster/ring.py's definition with zones, written out independently of ring.py."""
    pts = sorted((mmh3.hash(f"{name}#{i}".encode(), 0, signed=False), name)
                 for name, w in weights.items() for i in range(w * vnodes))
    zone = {name: zones.get(name, "") for name in weights}
    n = min(n, len(weights))
    cap = math.ceil(n / len(set(zone.values())))
    start = bisect.bisect_left([p for p, _ in pts], mmh3.hash(key, 0, signed=False))
    walk = [pts[(start + step) % len(pts)][1] for step in range(len(pts))]
    out = []
    for name in walk:
        if len(out) < n and name not in out and \
                sum(zone[o] == zone[name] for o in out) < cap:
            out.append(name)
    for name in walk:
        if len(out) < n and name not in out:
            out.append(name)
    return out


def snapshot(ring):
    return RingSnapshot(*ring.arrays(), ring.nodes, ring.zone_slots())


members = st.dictionaries(st.text("abcdefgh0123456789", min_size=1, max_size=6),
                          st.tuples(st.integers(1, 3), st.sampled_from(["", "a", "b", "c"])),
                          min_size=1, max_size=9)


@settings(max_examples=80, deadline=None)
@given(members, st.integers(1, 12), st.lists(st.binary(min_size=1, max_size=20),
                                             min_size=1, max_size=20), st.integers(1, 6))
def test_native_lookup_and_reference_follow_the_zone_definition(nodes, vnodes, keys, n):
    weights = {name: w for name, (w, _) in nodes.items()}
    zones = {name: z for name, (_, z) in nodes.items()}
    ring = Ring(vnodes, weights, zones)
    snap = snapshot(ring)
    for key in keys:
        want = definition_owners(weights, zones, vnodes, key, n)
        assert ring.owners(key, n) == want
        assert snap.owners(key, n) == want


def test_every_key_has_its_owners_in_distinct_zones_when_the_zones_allow():
    weights = {f"n{i}": 1 for i in range(9)}
    zones = {f"n{i}": "abc"[i % 3] for i in range(9)}
    ring = Ring(200, weights, zones)
    snap = snapshot(ring)
    for i in range(3000):
        key = b"k:%d" % i
        for n, most in ((2, 1), (3, 1), (4, 2), (6, 2)):
            owners = snap.owners(key, n)
            assert len(set(owners)) == n
            per_zone = [sum(zones[o] == z for o in owners) for z in "abc"]
            assert max(per_zone) <= most
        assert snap.owners(key, 1) == [ring.owners(key, 1)[0]]


def test_a_zone_too_small_for_its_share_is_filled_from_the_others():
    # N=3 over two zones: at most two of one zone, and zone b has one node only.
    weights = {"a1": 1, "a2": 1, "a3": 1, "b1": 1}
    zones = {"a1": "a", "a2": "a", "a3": "a", "b1": "b"}
    ring = Ring(100, weights, zones)
    snap = snapshot(ring)
    for i in range(500):
        owners = snap.owners(b"s:%d" % i, 3)
        assert "b1" in owners and len(set(owners)) == 3
        assert snap.owners(b"s:%d" % i, 4) == ring.owners(b"s:%d" % i, 4)
        assert sorted(ring.owners(b"s:%d" % i, 4)) == sorted(weights)


def test_no_zones_is_the_plain_ring_with_the_same_checksum():
    weights = {"x": 1, "y": 2, "z": 1}
    plain, zoneless = Ring(50, weights), Ring(50, weights, {"x": "", "y": ""})
    one_zone = Ring(50, weights, {"x": "a", "y": "a", "z": "a"})
    assert zoneless.checksum == plain.checksum == checksum(weights, 50)
    assert zoneless.zone_slots() is None and one_zone.zone_slots() is None
    for i in range(300):
        key = b"p:%d" % i
        assert one_zone.owners(key, 2) == plain.owners(key, 2) == zoneless.owners(key, 2)


def test_the_checksum_and_epoch_follow_the_zones():
    weights = {"x": 1, "y": 1, "z": 1}
    ring = Ring(50, weights, {"x": "a"})
    first, epoch = ring.checksum, ring.epoch
    assert first != checksum(weights, 50)
    assert not ring.update(weights, {"x": "a"}) and ring.epoch == epoch
    assert ring.update(weights, {"x": "b"}) and ring.epoch == epoch + 1
    assert ring.checksum not in (first, checksum(weights, 50))
    assert ring.update(weights, {}) and ring.checksum == checksum(weights, 50)
    # A zone of a node that is not on the ring places nothing and changes nothing.
    assert not ring.update(weights, {"gone": "a"})


def test_bad_zones_are_refused():
    for bad in ("a b", "x" * 65, "zone\r\n", "é"):
        with pytest.raises(ValueError):
            check_zone(bad)
        with pytest.raises(ValueError):
            Ring(10, {"x": 1}, {"x": bad})
    assert check_zone("eu-west-1a") == "eu-west-1a" and check_zone("") == ""
    ring = Ring(10, {"x": 1, "y": 1}, {"x": "a", "y": "b"})
    positions, slots = ring.arrays()
    from array import array
    for zones in (array("H", [0]), array("H", [0, 0]), array("H", [0, 2])):
        with pytest.raises(ValueError):
            RingSnapshot(positions, slots, ring.nodes, zones)
