"""Cluster mode of the store: hybrid-logical-clock versions, tombstones, and last-write-wins
replicas that converge whatever order the writes reach them in."""
import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from pycache_cluster.store import HybridClock, Store, StoreResult

MS_2026 = 1_780_000_000_000


def test_the_clock_is_monotonic_whatever_the_wall_clock_does():
    c = HybridClock(7)
    seen = [c.next(MS_2026)]
    for wall in (MS_2026, MS_2026 + 5, MS_2026 - 60_000, MS_2026 - 60_000, MS_2026 + 1):
        seen.append(c.next(wall))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    # A step back of a minute: versions keep going up, and catch up with time again.
    assert c.next(MS_2026 + 120_000) > seen[-1]
    assert HybridClock.millis(c.next(MS_2026 + 200_000)) == MS_2026 + 200_000


def test_versions_carry_the_node_and_pass_what_was_observed():
    a, b = HybridClock(1), HybridClock(2)
    va, vb = a.next(MS_2026), b.next(MS_2026)
    assert va != vb and va >> 10 == vb >> 10      # same millisecond, the node decides
    far = b.next(MS_2026 + 10_000)
    a.observe(far)
    assert a.next(MS_2026) > far                   # a clock behind learns from what it saw
    assert HybridClock.millis(va) == MS_2026


def test_store_versions_are_close_to_wall_time_and_increase():
    s = Store()
    s.set_replicated(3)
    before = int(time.time() * 1000)
    versions = [s.next_version() for _ in range(1000)]
    assert versions == sorted(set(versions))
    assert before - 5 <= HybridClock.millis(versions[0]) <= int(time.time() * 1000) + 5
    s.set(b"k", b"v")
    assert s.get(b"k").version > versions[-1]


def test_a_tombstone_hides_the_key_and_stops_older_writes():
    s = Store()
    s.set_replicated(1, tombstone_ttl=60)
    assert s.apply(b"k", b"v1", version=10) == (StoreResult.STORED, False)
    assert s.apply(b"k", b"", version=20, tombstone=True) == (StoreResult.DELETED, True)
    assert s.get(b"k") is None and s.peek(b"k") is None and len(s) == 0
    assert s.slot(b"k") == (20, True)
    assert s.stats()["tombstones"] == 1 and s.stats()["curr_items"] == 0
    # A delayed older write cannot bring it back; a newer one can.
    assert s.apply(b"k", b"old", version=15)[0] == StoreResult.EXISTS
    assert s.get(b"k") is None
    assert s.add(b"k", b"fresh") == StoreResult.STORED          # a local write is newer
    assert s.get(b"k").value == b"fresh" and s.stats()["tombstones"] == 0
    # A delete in cluster mode leaves a tombstone too.
    assert s.delete(b"k") == StoreResult.DELETED
    assert s.slot(b"k")[1] is True and s.get(b"k") is None


def test_tombstones_expire_after_their_ttl():
    s = Store(now=1_000_000_000)
    s.set_replicated(1, tombstone_ttl=30)
    s.apply(b"k", b"", version=5, tombstone=True)
    s.set_time(1_000_000_029)
    assert s.slot(b"k") == (5, True)
    s.set_time(1_000_000_031)
    assert s.slot(b"k") is None
    assert s.apply(b"k", b"late", version=4)[0] == StoreResult.STORED


def test_a_flush_stops_writes_from_before_it():
    s = Store()
    s.set_replicated(1)
    old = s.next_version()
    s.flush_all()
    assert s.apply(b"k", b"before", version=old)[0] == StoreResult.EXISTS
    assert s.get(b"k") is None
    assert s.apply(b"k", b"after", version=s.next_version())[0] == StoreResult.STORED


def test_without_cluster_mode_nothing_changes():
    s = Store()
    s.set(b"k", b"v")
    assert s.get(b"k").version == 1
    s.delete(b"k")
    assert s.slot(b"k") is None and s.stats()["tombstones"] == 0


OP = st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.integers(1, 12), st.booleans(),
               st.sampled_from([b"", b"x", b"y", b"zz"]), st.integers(0, 2))


@settings(max_examples=300, deadline=None)
@given(st.lists(OP, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_replicas_converge_whatever_order_writes_arrive_in(ops, rnd):
    """Three replicas receive the same versioned writes and deletes in three orders, some
    twice: they end up holding exactly the same, which is the last write of each key."""
    stores = []
    for _ in range(3):
        s = Store()
        s.set_replicated(1, tombstone_ttl=3600)
        order = ops + rnd.sample(ops, k=len(ops) // 2)    # replays
        rnd.shuffle(order)
        for key, version, tomb, value, flags in order:
            s.apply(key, value, flags=flags, version=version, tombstone=tomb)
        stores.append(s)
    for key in (b"a", b"b", b"c"):
        states = [(s.slot(key), s.peek(key)) for s in stores]
        assert states.count(states[0]) == 3, (key, states)
        writes = [op for op in ops if op[0] == key]
        if writes:
            last = max(writes, key=lambda w: (w[1], w[2], w[4], len(w[3]), w[3]))
            slot, item = states[0]
            assert slot == (last[1], last[2])
            assert (item is None) == last[2]
            if item is not None:
                assert (item.value, item.flags) == (last[3], last[4])


def test_negative_control_the_check_sees_a_replica_that_ignores_versions():
    """The same check against replicas that apply plain sets in arrival order must fail:
    otherwise the convergence test could not see the bug it is there for."""
    ops = [(b"a", v, False, bytes([97 + v]), 0) for v in range(1, 6)]
    finals = set()
    for seed in range(5):
        s = Store()
        order = ops[:]
        random.Random(seed).shuffle(order)
        for key, _version, _tomb, value, _flags in order:
            s.set(key, value)
        finals.add(s.get(b"a").value)
    assert len(finals) > 1
