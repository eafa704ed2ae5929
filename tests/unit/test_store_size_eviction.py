"""Size-aware eviction: small items are not displaced by big items nobody reads."""
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pycache_cluster.store import Store
from pycache_cluster.store import StoreResult as R

T0 = 1_700_000_000
LIMIT = 4 << 20


def test_small_read_items_survive_a_flood_of_large_unread_items():
    # With one LRU for all sizes, items read once sink to COLD and the flood evicts them
    # (test_store_eviction's scan tests); big unread items now go first.
    store = Store(limit_bytes=LIMIT, now=T0)
    small = [b"s:%d" % i for i in range(5000)]  # ~0.7 MB with headers
    for key in small:
        assert store.set(key, b"v" * 100) == R.STORED
    for key in small:
        assert store.get(key) is not None
    big = b"B" * (64 << 10)
    for i in range(8 * LIMIT // len(big)):  # 8x the limit, read never
        assert store.set(b"big:%d" % i, big) == R.STORED
    assert all(store.peek(key) is not None for key in small)
    s = store.stats()
    assert s["evictions"] >= 7 * LIMIT // len(big)
    assert s["bytes"] + s["hash_bytes"] <= LIMIT


def test_a_big_item_read_twice_is_kept_like_a_small_one():
    store = Store(limit_bytes=LIMIT, now=T0)
    big = b"B" * (64 << 10)
    assert store.set(b"keep", big) == R.STORED
    assert store.get(b"keep").value == big and store.get(b"keep").value == big  # ACTIVE: to WARM
    for i in range(4 * LIMIT // len(big)):
        store.set(b"big:%d" % i, big)
    assert store.peek(b"keep").value == big


def test_a_big_item_just_stored_can_be_read():
    store = Store(limit_bytes=LIMIT, now=T0)
    big = b"B" * (64 << 10)
    for i in range(4 * LIMIT // len(big)):
        assert store.set(b"big:%d" % i, big) == R.STORED
        assert store.get(b"big:%d" % i).value == big


def test_unread_items_of_mixed_sizes_are_evicted_oldest_first():
    store = Store(limit_bytes=LIMIT, now=T0)
    n = 60_000
    for i in range(n):
        store.set(b"k:%d" % i, b"x" * (10 + i % 3000))  # all below the big threshold
    present = [store.peek(b"k:%d" % i) is not None for i in range(n)]
    newest = n - present[::-1].index(False)      # the newest items, all present from here
    # Nothing was read: all went through the small queue in order, but for a key whose hash
    # the ghost took for a victim's (a 24-bit fingerprint), which went to the main queue.
    assert sum(present[:newest]) <= store.stats()["policy_ghost_hits"]
    assert n - newest > 1000


SIZES = st.sampled_from([0, 10, 100, 3000, 4100, 20_000, 70_000, 200_000])
KEYS = st.integers(0, 40).map(lambda i: b"k:%d" % i)


class SizeEviction(RuleBasedStateMachine):
    """Mixed sizes at a small limit: what is held is what was last stored, within the limit,
    the LRU segments account for every item, and nothing vanishes uncounted."""

    @initialize()
    def start(self):
        self.store = Store(limit_bytes=1 << 20, item_size_max=1 << 20, now=T0)
        self.values = {}  # key -> the value last stored (present or evicted)
        self.deleted = 0

    @rule(key=KEYS, size=SIZES, fill=st.binary(min_size=1, max_size=1))
    def set(self, key, size, fill):
        value = fill * size
        assert self.store.set(key, value) == R.STORED
        assert self.store.peek(key).value == value  # never the victim of its own store
        self.values[key] = value

    @rule(key=KEYS)
    def get(self, key):
        got = self.store.get(key)
        assert got is None or got.value == self.values.get(key)

    @rule(key=KEYS)
    def delete(self, key):
        if self.store.delete(key) == R.DELETED:
            self.deleted += 1

    @invariant()
    def bounded_and_accounted(self):
        if not hasattr(self, "store"):
            return
        s = self.store.stats()
        assert s["bytes"] + s["hash_bytes"] <= s["limit_maxbytes"]
        assert s["number_hot"] + s["number_warm"] + s["number_cold"] == s["curr_items"]
        held = sum(self.store.peek(k) is not None for k in self.values)
        assert held == s["curr_items"]


SizeEviction.TestCase.settings = settings(max_examples=60, stateful_step_count=60,
                                          deadline=None)
TestSizeEviction = SizeEviction.TestCase
