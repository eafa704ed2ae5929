"""The resumable scan cursor: complete under concurrent inserts, deletes and table growth."""
from hypothesis import given, settings
from hypothesis import strategies as st

from pycache_cluster.store import Store

T0 = 1_700_000_000


def walk(store, count=16, between=lambda: None):
    cursor, seen = 0, []
    while True:
        cursor, items = store.scan(cursor, count)
        seen.extend(items)
        between()
        if cursor == 0:
            return seen


def test_scan_returns_every_item_with_its_fields():
    store = Store(now=T0)
    for i in range(1000):
        store.set(b"k%d" % i, b"v%d" % i, flags=i, exptime=0 if i % 2 else 3600)
    items = {item.key: item for item in walk(store)}
    assert len(items) == 1000
    item = items[b"k2"]
    assert (item.value, item.flags, item.exptime) == (b"v2", 2, T0 + 3600)
    assert item.version == store.peek(b"k2").version


def test_scan_of_an_empty_store_ends_at_once():
    assert Store(now=T0).scan(0) == (0, [])


def test_scan_skips_expired_items():
    store = Store(now=T0)
    store.set(b"live", b"1")
    store.set(b"dying", b"2", exptime=1)
    store.set_time(T0 + 1)
    assert [item.key for item in walk(store)] == [b"live"]


def test_scan_survives_the_table_growing_mid_walk():
    store = Store(limit_bytes=1 << 30, now=T0)
    stable = [b"stable:%d" % i for i in range(90_000)]
    for key in stable:
        store.set(key, b"x")
    extra = iter(range(10**9))

    def insert_many():  # drives the table through growth while the cursor is live
        for _ in range(2_000):
            store.set(b"new:%d" % next(extra), b"y")

    seen = {item.key for item in walk(store, count=500, between=insert_many)}
    s = store.stats()
    assert s["hash_power_level"] >= 19 and s["evictions"] == 0
    assert seen.issuperset(stable)


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "delete"]), st.integers(0, 3000)),
                    max_size=400),
       count=st.integers(1, 64))
def test_items_present_throughout_are_always_returned(ops, count):
    store = Store(now=T0)
    for i in range(0, 3000, 2):
        store.set(b"%d" % i, b"v")
    initially = {b"%d" % i for i in range(0, 3000, 2)}
    touched = set()
    pending = list(ops)

    def mutate():
        for _ in range(min(len(pending), 8)):
            op, n = pending.pop()
            key = b"%d" % n
            touched.add(key)
            store.set(key, b"w") if op == "set" else store.delete(key)

    seen = [item.key for item in walk(store, count, mutate)]
    assert set(seen).issuperset(initially - touched)
