"""The ring: its documented definition, the native snapshot the request path uses, balance,
weights, movement on a join, and when epoch and checksum change."""
import bisect
import random

import mmh3
from hypothesis import given, settings
from hypothesis import strategies as st
from pycache_cluster.cluster._ring import RingSnapshot

from pycache_cluster.cluster.ring import DEFAULT_VNODES, Ring, checksum


def definition_owners(weights, vnodes, key, n):
    """The definition in docs/architecture.md (The ring), written out independently of ring.py."""
    pts = sorted((mmh3.hash(f"{name}#{i}".encode(), 0, signed=False), name)
                 for name, w in weights.items() for i in range(w * vnodes))
    pos = mmh3.hash(key, 0, signed=False)
    i = bisect.bisect_left([p for p, _ in pts], pos)
    out = []
    for step in range(len(pts)):
        name = pts[(i + step) % len(pts)][1]
        if name not in out:
            out.append(name)
        if len(out) == min(n, len(weights)):
            break
    return out


def snapshot(ring):
    positions, slots = ring.arrays()
    return RingSnapshot(positions, slots, ring.nodes)


names = st.lists(st.text("abcdefghij:-.0123456789", min_size=1, max_size=12), min_size=1,
                 max_size=12, unique=True)


@settings(max_examples=60, deadline=None)
@given(names, st.lists(st.integers(1, 3), min_size=12, max_size=12), st.integers(1, 40),
       st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30))
def test_native_lookup_and_reference_follow_the_definition(members, ws, vnodes, keys):
    weights = dict(zip(members, ws, strict=False))
    ring = Ring(vnodes, weights)
    native = snapshot(ring)
    for key in keys:
        for n in (1, 2, len(weights)):
            want = definition_owners(weights, vnodes, key, n)
            assert ring.owners(key, n) == want
            assert native.owners(key, n) == want


def test_placement_does_not_depend_on_the_order_members_arrived():
    names = [f"node-{i}" for i in range(8)]
    a, b = Ring(50), Ring(50)
    for i in range(1, len(names) + 1):
        a.update({n: 1 for n in names[:i]})
    shuffled = names[:]
    random.Random(5).shuffle(shuffled)
    b.update({n: 1 for n in shuffled})
    assert list(a.points) == list(b.points) and a.checksum == b.checksum
    keys = [b"k%d" % i for i in range(500)]
    assert [a.owners(k, 3) for k in keys] == [b.owners(k, 3) for k in keys]


def test_points_on_the_same_position_are_ordered_by_name():
    ring = Ring(1, {"b": 1, "a": 1})
    ring.points.clear()
    ring.points.update([(100, "b"), (100, "a")])
    assert ring.owners_at(100, 2) == ["a", "b"]
    positions, slots = ring.arrays()
    assert RingSnapshot(positions, slots, ring.nodes).primary(50) == "a"


def test_a_weight_scales_the_share():
    ring = Ring(1000, {"small": 1, "big": 3, "other": 1})
    shares = ring.shares()
    assert abs(sum(shares.values()) - 1.0) < 1e-9
    assert 2.6 < shares["big"] / shares["small"] < 3.4


def test_a_joining_node_takes_about_its_share_and_only_from_others():
    before = Ring(1000, {f"n{i}": 1 for i in range(9)})
    after = Ring(1000, {f"n{i}": 1 for i in range(10)})
    keys = [b"key:%d" % i for i in range(20000)]
    moved = [k for k in keys if before.owners(k)[0] != after.owners(k)[0]]
    # Consistent hashing: every key that moves, moves to the new node...
    assert all(after.owners(k)[0] == "n9" for k in moved)
    # ...and the new node takes close to 1/(n+1) of the key space.
    assert abs(after.shares()["n9"] - 0.1) < 0.02
    assert abs(len(moved) / len(keys) - after.shares()["n9"]) < 0.01


def test_balance_at_10_and_100_nodes_within_ten_percent_of_the_mean():
    for n in (10, 100):
        shares = Ring(DEFAULT_VNODES, {f"10.0.0.{i}:11211": 1 for i in range(n)}).shares()
        assert max(shares.values()) * n <= 1.10


def test_epoch_and_checksum_change_exactly_when_the_inputs_do():
    ring = Ring(100)
    assert ring.epoch == 0
    assert ring.update({"a": 1, "b": 1})
    first = (ring.epoch, ring.checksum)
    assert not ring.update({"b": 1, "a": 1})
    assert (ring.epoch, ring.checksum) == first
    assert ring.update({"a": 1, "b": 2})
    assert ring.epoch == first[0] + 1 and ring.checksum != first[1]
    assert ring.update({"a": 1, "b": 1})
    assert ring.epoch == first[0] + 2 and ring.checksum == first[1]
    # vnodes are part of the inputs.
    assert checksum({"a": 1, "b": 1}, 100) != checksum({"a": 1, "b": 1}, 101)


def test_bad_inputs_are_refused():
    import pytest

    with pytest.raises(ValueError):
        Ring(0)
    with pytest.raises(ValueError):
        Ring(10, {"a": 0})
    with pytest.raises(ValueError):
        RingSnapshot(*Ring(10, {"a": 1}).arrays(), [])


def test_the_config_default_is_the_rings():
    from pycache_cluster import config

    assert config.DEFAULT_VNODES == DEFAULT_VNODES
