"""The store under its S3-FIFO policy (csrc/pc_policy.h) against a Python model of it.

Exact where the policy is deterministic: with nothing read, every item goes through the
small queue in store order, so the survivors are exactly the newest items that the model of
the log's segment arithmetic fits in the limit. Otherwise the invariants: what -m bounds stays
within it, a value served is the one last stored and not expired, the queues account for
every item, and an item read since its store survives a flood of items nobody reads.
"""
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pycache_cluster.store import Store
from pycache_cluster.store import StoreResult as R

T0 = 1_700_000_000
LIMIT = 1 << 20
HEADER = 27                 # offsetof(pc_item, data)
SEG = 16 << 10              # the log's segments at this limit (1/64 of it, at least 16 KiB)
INLINE_MAX = SEG // 8
KEYS = st.integers(0, 60).map(lambda i: b"k:%d" % i)
SIZES = st.sampled_from([0, 1, 100, 1000, 2000, 3000, 20_000, 70_000])


def record(nkey, nbytes, flags=0):
    """A record's bytes in the log (csrc/pc_item.h)."""
    head = HEADER + (4 if flags else 0) + nkey
    if (head + nbytes + 7) // 8 * 8 > INLINE_MAX:
        return (head + 7) // 8 * 8 + 8
    return (head + nbytes + 7) // 8 * 8


def used(s):
    return s["log_bytes"] + s["external_bytes"] + s["hash_bytes"] + s["policy_ghost_bytes"]


class PolicyModel(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.store = Store(limit_bytes=LIMIT, item_size_max=1 << 20, now=T0)
        self.now = T0
        self.last = {}          # key -> (value, exptime unix or 0): what a hit must return
        self.cold = 0

    @rule(key=KEYS, size=SIZES, fill=st.binary(min_size=1, max_size=1),
          ttl=st.sampled_from([0, 0, 1, 3]))
    def set(self, key, size, fill, ttl):
        value = fill * size
        assert self.store.set(key, value, exptime=ttl) == R.STORED
        got = self.store.peek(key)
        assert got is not None and got.value == value   # never the victim of its own store
        self.last[key] = (value, self.now + ttl if ttl else 0)

    @rule(key=KEYS)
    def get(self, key):
        got = self.store.get(key)
        if got is not None:
            value, exp = self.last[key]
            assert got.value == value
            assert exp == 0 or exp > self.now, "an expired item was served"

    @rule(key=KEYS)
    def delete(self, key):
        self.store.delete(key)
        self.last.pop(key, None)

    @rule(seconds=st.integers(1, 2))
    def tick(self, seconds):
        self.now += seconds
        self.store.set_time(self.now)

    @rule(key=KEYS, size=st.sampled_from([10, 500, 3000]))
    def hot_survives_a_cold_flood(self, key, size):
        value = b"h" * size
        assert self.store.set(key, value) == R.STORED
        self.last[key] = (value, 0)
        assert self.store.get(key) is not None and self.store.get(key) is not None
        written = 0
        while written < 3 * LIMIT:           # three times the limit of keys read never
            self.cold += 1
            n = 200 + self.cold % 3000
            assert self.store.set(b"cold:%d" % self.cold, b"c" * n) == R.STORED
            written += n
        assert self.store.peek(key) is not None, "the read item was flushed by unread ones"

    @invariant()
    def bounded_and_accounted(self):
        if not hasattr(self, "store"):
            return
        s = self.store.stats()
        assert used(s) <= s["limit_maxbytes"]
        assert s["bytes"] <= s["log_bytes"] + s["external_bytes"]
        assert s["policy_small_items"] + s["policy_main_items"] == s["curr_items"]
        assert s["number_hot"] + s["number_warm"] + s["number_cold"] == s["curr_items"]


PolicyModel.TestCase.settings = settings(max_examples=40, stateful_step_count=40,
                                         deadline=None)
TestPolicyModel = PolicyModel.TestCase


def fifo_survivors(sizes, nkeys):
    """The model of a stream of stores nobody reads: records fill segments in order; a
    record that needs a new segment first evicts from the oldest segment on until the new
    one fits the limit beside the hash table (2**16 buckets of 4 bytes) and the ghost
    (1,024 slots of 4 bytes, made at the first eviction): each examined item goes, and a
    segment is freed once all of its items have gone."""
    avail = LIMIT - (1 << 16) * 4
    ghost = 0
    segs = [[]]                                    # [key index, ...] per segment
    fill = 0
    for i, n in enumerate(sizes):
        size = record(nkeys[i], n)
        if fill + size > SEG:
            while (len(segs) + 1) * SEG + ghost > avail:
                ghost = 1024 * 4
                segs.pop(0)
            segs.append([])
            fill = 0
        segs[-1].append(i)
        fill += size
    return [i for seg in segs for i in seg]


def test_unread_stores_leave_exactly_the_newest_that_fit():
    store = Store(limit_bytes=LIMIT, now=T0)
    sizes = [(i * 7919) % 1900 + 1 for i in range(5000)]
    keys = [b"u:%d" % i for i in range(5000)]
    for k, n in zip(keys, sizes):
        assert store.set(k, b"x" * n) == R.STORED
    present = [i for i, k in enumerate(keys) if store.peek(k) is not None]
    s = store.stats()
    assert s["policy_promotions"] == 0 and s["policy_main_items"] == s["policy_ghost_hits"]
    want = fifo_survivors(sizes, [len(k) for k in keys])
    if s["policy_ghost_hits"] == 0:
        assert present == want
    else:   # a ghost false positive (24-bit fingerprints) sent a key to the main queue
        assert len(set(present) ^ set(want)) <= 40 * s["policy_ghost_hits"]
