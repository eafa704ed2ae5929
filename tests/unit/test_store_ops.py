"""Every store operation and its memcached edge cases, on one store with a fake clock."""
import pytest

from pycache_cluster.store import Store
from pycache_cluster.store import StoreResult as R

T0 = 1_700_000_000  # the clock fixture's start (conftest.T0)

DAY = 24 * 3600


def value(store, key):
    item = store.peek(key)
    return None if item is None else item.value


# --- storage commands -------------------------------------------------------------------

def test_set_then_get_returns_value_flags_and_version(store):
    assert store.set(b"k", b"v1", flags=0xDEADBEEF) == R.STORED
    item = store.get(b"k")
    assert (item.key, item.value, item.flags) == (b"k", b"v1", 0xDEADBEEF)
    assert item.version == 1


def test_versions_are_monotonic_across_operations(store):
    store.set(b"a", b"1")
    store.set(b"b", b"2")
    store.append(b"a", b"x")
    store.incr(b"b", 1)
    versions = [store.peek(b"b").version, store.peek(b"a").version]
    assert versions == [4, 3]


def test_empty_value_and_binary_value_round_trip(store):
    assert store.set(b"e", b"") == R.STORED
    assert store.get(b"e").value == b""
    blob = bytes(range(256)) * 4 + b"\r\n\0"
    store.set(b"b", blob)
    assert store.get(b"b").value == blob


def test_add_only_when_absent(store):
    assert store.add(b"k", b"1") == R.STORED
    assert store.add(b"k", b"2") == R.NOT_STORED
    assert value(store, b"k") == b"1"


def test_replace_only_when_present(store):
    assert store.replace(b"k", b"1") == R.NOT_STORED
    store.set(b"k", b"1")
    assert store.replace(b"k", b"2", flags=7) == R.STORED
    item = store.peek(b"k")
    assert (item.value, item.flags) == (b"2", 7)


def test_append_prepend_keep_flags_and_exptime(store, clock):
    store.set(b"k", b"mid", flags=5, exptime=100)
    assert store.append(b"k", b">>") == R.STORED
    assert store.prepend(b"k", b"<<") == R.STORED
    item = store.peek(b"k")
    assert (item.value, item.flags, item.exptime) == (b"<<mid>>", 5, T0 + 100)
    assert store.append(b"missing", b"x") == R.NOT_STORED
    assert store.prepend(b"missing", b"x") == R.NOT_STORED


def test_append_with_cas_must_match(store):
    store.set(b"k", b"a")
    v = store.peek(b"k").version
    assert store.append(b"k", b"b", cas=v + 1) == R.EXISTS
    assert store.append(b"k", b"b", cas=v) == R.STORED
    assert value(store, b"k") == b"ab"


def test_cas_outcomes_and_counters(store):
    assert store.cas(b"k", b"x", cas=1) == R.NOT_FOUND
    store.set(b"k", b"1")
    v = store.peek(b"k").version
    assert store.cas(b"k", b"2", cas=v + 10) == R.EXISTS
    assert store.cas(b"k", b"2", cas=0) == R.EXISTS
    assert store.cas(b"k", b"2", cas=v) == R.STORED
    assert store.cas(b"k", b"3", cas=v) == R.EXISTS  # the version moved on
    s = store.stats()
    assert (s["cas_misses"], s["cas_badval"], s["cas_hits"]) == (1, 3, 1)


def test_caller_supplied_version_is_kept_and_local_versions_continue_above(store):
    assert store.set(b"r", b"x", version=1_000_000) == R.STORED
    assert store.peek(b"r").version == 1_000_000
    store.set(b"l", b"y")
    assert store.peek(b"l").version == 1_000_001
    store.set(b"old", b"z", version=5)  # an older replica write still gets stored as given
    assert store.peek(b"old").version == 5
    store.set(b"l2", b"y")
    assert store.peek(b"l2").version == 1_000_002


# --- item size limit ---------------------------------------------------------------------

def test_item_size_limit_uses_memcacheds_arithmetic():
    store = Store(limit_bytes=64 << 20, item_size_max=1 << 20, now=T0)
    key = b"k" * 10
    # memcached: 56-byte header + key + NUL + value + CRLF must fit in -I.
    largest = (1 << 20) - 56 - len(key) - 1 - 2
    assert store.set(key, b"v" * largest) == R.STORED
    assert store.set(key, b"v" * (largest + 1)) == R.TOO_LARGE
    assert len(store.peek(key).value) == largest  # the store itself leaves the old value


def test_nonzero_flags_cost_four_bytes_of_the_limit_as_in_memcached():
    store = Store(item_size_max=1 << 20, now=T0)
    largest = (1 << 20) - 56 - 1 - 1 - 2
    assert store.set(b"k", b"v" * largest, flags=0) == R.STORED
    assert store.set(b"k", b"v" * largest, flags=1) == R.TOO_LARGE
    assert store.set(b"k", b"v" * (largest - 4), flags=1) == R.STORED
    assert store.append(b"k", b"vvvv") == R.NOT_STORED  # joined item keeps the flags


def test_append_past_the_limit_is_not_stored():
    store = Store(item_size_max=1024, now=T0)
    store.set(b"k", b"x" * 900)
    assert store.append(b"k", b"y" * 100) == R.NOT_STORED
    assert value(store, b"k") == b"x" * 900


def test_keys_outside_1_to_250_bytes_are_refused(store):
    assert store.set(b"k" * 250, b"v") == R.STORED
    with pytest.raises(ValueError):
        store.set(b"k" * 251, b"v")
    with pytest.raises(ValueError):
        store.get(b"")


# --- retrieval ---------------------------------------------------------------------------

def test_get_counts_hits_and_misses(store):
    store.set(b"k", b"v")
    store.get(b"k")
    store.get(b"nope")
    store.peek(b"k")  # peeks count nothing
    s = store.stats()
    assert (s["get_hits"], s["get_misses"]) == (1, 1)


def test_get_into_copies_value_without_bytes(store):
    store.set(b"k", b"hello")
    buf = bytearray(16)
    assert store.get_into(b"k", buf) == 5
    assert bytes(buf[:5]) == b"hello"
    assert store.get_into(b"missing", buf) == -1
    with pytest.raises(ValueError):
        store.get_into(b"k", bytearray(2))


def test_touch_and_gat_set_new_exptime(store, clock):
    store.set(b"k", b"v", exptime=10)
    assert store.touch(b"k", 100)
    clock.advance(50)
    assert store.get(b"k") is not None
    item = store.gat(b"k", 5)
    assert item.value == b"v" and item.exptime == clock.now + 5
    clock.advance(5)
    assert store.get(b"k") is None
    assert not store.touch(b"k", 1)
    assert store.gat(b"k", 1) is None
    s = store.stats()
    assert (s["touch_hits"], s["touch_misses"]) == (2, 2)


def test_touch_keeps_the_version(store):
    store.set(b"k", b"v")
    v = store.peek(b"k").version
    store.touch(b"k", 100)
    assert store.gat(b"k", 0).version == v


# --- exptime rules -----------------------------------------------------------------------

def test_relative_exptime_expires_at_that_second(store, clock):
    store.set(b"k", b"v", exptime=10)
    clock.advance(9)
    assert store.get(b"k") is not None
    clock.advance(1)
    assert store.get(b"k") is None
    assert store.stats()["get_expired"] == 1


def test_exptime_up_to_30_days_is_relative_beyond_is_absolute(store, clock):
    store.set(b"rel", b"v", exptime=30 * DAY)
    assert store.peek(b"rel").exptime == T0 + 30 * DAY
    store.set(b"abs", b"v", exptime=T0 + 100)
    assert store.peek(b"abs").exptime == T0 + 100
    clock.advance(100)
    assert store.peek(b"abs") is None
    assert store.peek(b"rel") is not None


def test_absolute_exptime_in_the_past_and_negative_exptime_are_expired(store):
    assert store.set(b"past", b"v", exptime=T0 - 1) == R.STORED
    assert store.set(b"neg", b"v", exptime=-1) == R.STORED
    assert store.get(b"past") is None
    assert store.get(b"neg") is None


def test_zero_exptime_never_expires(store, clock):
    store.set(b"k", b"v", exptime=0)
    clock.advance(365 * DAY)
    assert store.get(b"k").exptime == 0


def test_expired_item_frees_its_key_for_add(store, clock):
    store.set(b"k", b"old", exptime=1)
    clock.advance(1)
    assert store.add(b"k", b"new") == R.STORED
    assert store.replace(b"gone", b"x") == R.NOT_STORED


# --- incr / decr -------------------------------------------------------------------------

def test_incr_decr_basics_and_counters(store):
    store.set(b"n", b"10")
    assert store.incr(b"n", 5) == (R.OK, 15)
    assert store.decr(b"n", 3) == (R.OK, 12)
    assert store.incr(b"missing", 1) == (R.NOT_FOUND, None)
    assert store.decr(b"missing", 1) == (R.NOT_FOUND, None)
    s = store.stats()
    assert (s["incr_hits"], s["incr_misses"], s["decr_hits"], s["decr_misses"]) == (1, 1, 1, 1)


def test_incr_wraps_at_64_bits_and_decr_floors_at_zero(store):
    store.set(b"n", str(2**64 - 1).encode())
    assert store.incr(b"n", 2) == (R.OK, 1)
    store.set(b"m", b"5")
    assert store.decr(b"m", 6) == (R.OK, 0)


def test_shortening_decr_pads_with_spaces_in_place(store):
    store.set(b"n", b"100")
    assert store.decr(b"n", 91) == (R.OK, 9)
    assert value(store, b"n") == b"9  "
    assert store.incr(b"n", 1) == (R.OK, 10)
    assert value(store, b"n") == b"10 "


def test_growing_incr_makes_a_longer_value_and_keeps_flags_exptime(store):
    store.set(b"n", b"99", flags=3, exptime=100)
    assert store.incr(b"n", 1) == (R.OK, 100)
    item = store.peek(b"n")
    assert (item.value, item.flags, item.exptime) == (b"100", 3, T0 + 100)


def test_incr_changes_the_version(store):
    store.set(b"n", b"1")
    v = store.peek(b"n").version
    store.incr(b"n", 1)
    assert store.peek(b"n").version > v


@pytest.mark.parametrize("bad", [b"", b"abc", b"12abc", b"-1", b"1.5", b" ", b"18446744073709551616"])
def test_non_numeric_values_are_refused(store, bad):
    store.set(b"n", bad)
    assert store.incr(b"n", 1) == (R.NON_NUMERIC, None)
    assert value(store, b"n") == bad


@pytest.mark.parametrize("raw,parsed", [(b" 7", 7), (b"7 ", 7), (b"+7", 7), (b"007", 7),
                                        (b"-0", 0), (b"18446744073709551615", 2**64 - 1)])
def test_numbers_parse_as_memcacheds_strtoull(store, raw, parsed):
    store.set(b"n", raw)
    assert store.incr(b"n", 0) == (R.OK, parsed)


def test_delta_with_cas(store):
    store.set(b"n", b"1")
    v = store.peek(b"n").version
    assert store.incr(b"n", 1, cas=v + 1) == (R.EXISTS, None)
    assert store.incr(b"n", 1, cas=v) == (R.OK, 2)


# --- delete / flush_all ------------------------------------------------------------------

def test_delete(store):
    store.set(b"k", b"v")
    assert store.delete(b"k") == R.DELETED
    assert store.delete(b"k") == R.NOT_FOUND
    assert store.get(b"k") is None
    s = store.stats()
    assert (s["delete_hits"], s["delete_misses"], s["curr_items"]) == (1, 1, 0)


def test_delete_with_cas(store):
    store.set(b"k", b"v")
    v = store.peek(b"k").version
    assert store.delete(b"k", cas=v + 1) == R.EXISTS
    assert store.delete(b"k", cas=v) == R.DELETED


def test_flush_all_now_hides_everything_stored_before(store, clock):
    store.set(b"a", b"1")
    store.set(b"b", b"2")
    store.flush_all()
    assert store.get(b"a") is None and store.get(b"b") is None
    assert store.stats()["get_flushed"] == 2
    store.set(b"c", b"3")  # in the same second: still visible
    assert store.get(b"c").value == b"3"


def test_flush_all_with_delay_takes_effect_then(store, clock):
    store.set(b"a", b"1")
    store.flush_all(10)
    clock.advance(8)
    assert store.get(b"a") is not None
    clock.advance(1)  # memcached flushes from delay - 1
    assert store.get(b"a") is None
    clock.advance(5)
    store.set(b"b", b"2")
    assert store.get(b"b") is not None


def test_flush_all_now_cancels_a_pending_delay(store, clock):
    store.flush_all(100)
    store.flush_all(0)
    clock.advance(1)
    store.set(b"a", b"1")
    clock.advance(200)
    assert store.get(b"a") is not None


# --- crawler -----------------------------------------------------------------------------

def test_crawler_reclaims_expired_items_in_bounded_steps(store, clock):
    for i in range(1000):
        store.set(b"k%d" % i, b"v", exptime=5 if i % 2 else 0)
    clock.advance(5)
    reclaimed_first_step = store.crawl(max_buckets=16)
    assert reclaimed_first_step < 500  # a step only covers part of the table
    total = reclaimed_first_step
    for _ in range(70_000):
        total += store.crawl(max_buckets=16)
        if total == 500:
            break
    s = store.stats()
    assert total == 500 and s["curr_items"] == 500
    assert s["crawler_reclaimed"] == 500 and s["expired_unfetched"] == 500


def test_crawler_reclaims_flushed_items(store, clock):
    for i in range(100):
        store.set(b"k%d" % i, b"v")
    store.flush_all()
    reclaimed = sum(store.crawl(max_buckets=1 << 17) for _ in range(1))
    assert reclaimed == 100 and len(store) == 0


# --- hash table growth -------------------------------------------------------------------

def test_table_grows_incrementally_without_losing_items(store):
    n = 300_000  # 2**16 buckets grow twice
    for i in range(n):
        store.set(b"key:%d" % i, b"%d" % i)
        if i % 50_000 == 0:
            assert store.peek(b"key:%d" % (i // 2)).value == b"%d" % (i // 2)
    s = store.stats()
    assert s["hash_power_level"] >= 18 and s["curr_items"] == n
    assert all(store.peek(b"key:%d" % i).value == b"%d" % i for i in range(0, n, 997))


def test_growth_is_spread_over_requests(store):
    # Right after the load factor passes 1.5 the table is mid-growth: only a bounded number of
    # buckets moved with the insert that triggered it.
    threshold = (1 << 16) * 3 // 2
    for i in range(threshold):
        store.set(b"%d" % i, b"")
    assert store.stats()["hash_is_expanding"] == 0
    store.set(b"trigger", b"")
    s = store.stats()
    assert s["hash_is_expanding"] == 1 and s["hash_power_level"] == 17
    for i in range(threshold):
        assert store.peek(b"%d" % i) is not None
    for _ in range((1 << 16) // 8 + 1):
        store.crawl(max_buckets=0)  # housekeeping finishes the move
    assert store.stats()["hash_is_expanding"] == 0
