"""The store's change feed (csrc/pc_watch.h through store/_feed.pyx): what each change notes,
in order, and that a full ring drops notes and counts them instead of blocking the store."""
from pycache_cluster.store._feed import CHANGES, CMDS, FOUND, STATUSES, Feed

from pycache_cluster.store import Store


def names(records):
    return [(CHANGES[r[0]], CMDS[r[1]], STATUSES[r[2]], r[3]) for r in records]


def test_each_change_is_noted_once_in_order_with_its_version():
    s = Store(now=1_000_000)
    feed = Feed(s, 64)
    s.set(b"a", b"1", exptime=100)
    s.add(b"a", b"2")
    s.incr(b"a", 5)
    s.delete(b"a")
    s.set(b"gone", b"x", exptime=10)
    s.set_time(1_000_011)
    assert s.get(b"gone") is None                 # noticed expired
    s.flush_all()
    records, dropped = feed.take()
    assert dropped == 0
    assert names(records) == [
        ("store", "set", "stored", b"a"), ("store", "add", "not_stored", b"a"),
        ("store", "incr", "stored", b"a"), ("delete", "null", "stored", b"a"),
        ("store", "set", "stored", b"gone"), ("expire", "null", "stored", b"gone"),
        ("flush", "null", "stored", b"")]
    versions = [r[4] for r in records]
    assert versions[1] == 0                       # a failure stores no version
    live = [v for v in versions if v]
    assert live[:4] == sorted(live[:4]) and versions[5] == versions[4]
    assert records[0][5] == 1_000_100 and records[0][6] == 1     # exptime, value bytes
    assert feed.take() == ([], 0)


def test_replicas_writes_and_tombstones_are_noted_at_their_versions():
    s = Store()
    s.set_replicated(1)
    feed = Feed(s, 16)
    s.apply(b"k", b"v", version=1000)
    s.apply(b"k", b"old", version=999)            # older: not applied, not noted
    s.apply(b"k", b"", version=1001, tombstone=True)
    assert [(CHANGES[r[0]], CMDS[r[1]], r[4]) for r in feed.take()[0]] == [
        ("store", "replica", 1000), ("delete", "replica", 1001)]


def test_a_full_ring_drops_notes_and_says_how_many():
    s = Store()
    feed = Feed(s, 8)
    for i in range(20):
        s.set(b"k%d" % i, b"v")
    records, dropped = feed.take()
    assert [r[3] for r in records] == [b"k%d" % i for i in range(8)] and dropped == 12
    assert feed.take() == ([], 0)
    feed.close()
    s.set(b"after", b"v")                         # detached: the store goes on alone
    assert feed.take() == ([], 0)


def test_evictions_are_noted():
    s = Store(limit_bytes=2 << 20)
    feed = Feed(s, 1 << 16)
    for i in range(5000):
        s.set(b"k%d" % i, b"v" * 1000)
    kinds = {CHANGES[r[0]] for r in feed.take()[0]}
    assert "evict" in kinds


def fetches(records):
    return [(r[3], FOUND[r[2]], r[6]) for r in records if CHANGES[r[0]] == "fetch"]


def test_lookups_are_noted_only_while_fetches_are_watched_each_with_its_status():
    s = Store(now=1_000_000)
    feed = Feed(s, 64)
    s.set(b"a", b"12")
    s.get(b"a")                                   # fetches off: no note
    assert fetches(feed.take()[0]) == []
    feed.fetches(True)
    s.get(b"a")
    s.set(b"a", b"123")                           # a store looks the key up first
    s.get(b"nope")
    s.set(b"gone", b"x", exptime=10)
    s.set_time(1_000_011)
    s.get(b"gone")
    s.flush_all()
    s.get(b"a")
    s.incr(b"a", 1)
    s.delete(b"a")
    assert fetches(feed.take()[0]) == [
        (b"a", "found", 2), (b"a", "found", 2), (b"nope", "not_found", 0),
        (b"gone", "not_found", 0), (b"gone", "expired", 0), (b"a", "flushed", 0),
        (b"a", "not_found", 0), (b"a", "not_found", 0)]
    feed.fetches(False)
    s.get(b"a")
    assert fetches(feed.take()[0]) == []
    feed.fetches(True)
    feed.close()                                  # detaching turns fetches off with it
    s.get(b"a")


def test_an_eviction_says_how_long_the_item_sat_and_whether_it_was_read():
    # the table (2**16 buckets of 4 bytes), one log segment and 3 values of 10,000 bytes
    s = Store(limit_bytes=(1 << 18) + (16 << 10) + 32_000, now=1_000_000)
    feed = Feed(s, 256)
    s.set(b"old", b"x" * 10_000, exptime=500)
    s.set(b"read", b"x" * 10_000)
    s.get(b"read")
    s.set_time(1_000_007)
    for i in range(12):
        s.set(b"new%d" % i, b"x" * 10_000)
    evicted = {r[3]: (r[5], r[6], r[7], r[8]) for r in feed.take()[0]
               if CHANGES[r[0]] == "evict"}
    # Unread, "old" goes first; "read" was read, so the policy kept it once (to its main
    # queue) and it goes later, still saying it was read and idle since its store.
    assert evicted[b"old"] == (1_000_500, 10_000, 7, 0)
    assert evicted[b"read"] == (0, 10_000, 7, 1)
    assert list(evicted).index(b"old") < list(evicted).index(b"read")
