"""Random operation sequences against a pure-Python model of memcached's item semantics."""
import re

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pycache_cluster.store import Store
from pycache_cluster.store import StoreResult as R

T0 = 1_700_000_000
EPOCH = T0 - 62  # memcached's process_started lies 62 s before its birth; so does the store's
MAXDELTA = 30 * 24 * 3600
ITEM_SIZE_MAX = 256
KEYS = st.sampled_from([b"a", b"b", b"c", b"k" * 250])
VALUES = st.one_of(
    st.binary(max_size=24),
    st.integers(0, 2**64 - 1).map(lambda n: str(n).encode()),
    st.sampled_from([b"0", b"9", b"10", b"99", b" 5", b"-1", b"18446744073709551615"]),
    st.binary(min_size=180, max_size=200),  # around -I
)
EXPTIMES = st.sampled_from([0, 0, 1, 2, 5, -1, T0 + 3, T0 - 5, MAXDELTA, MAXDELTA + 1])
FLAGS = st.sampled_from([0, 1, 2**32 - 1])
NUMBER = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def memcached_strtoull(raw):
    """What memcached's safe_strtoull accepts, read off its definition."""
    m = NUMBER.match(raw)
    if not m:
        return None
    rest = raw[m.end():]
    if rest and rest[:1] not in b" \t\n\v\f\r\0":
        return None
    n = int(m.group(2))
    if n >= 2**64:
        return None
    if m.group(1) == b"-":
        n = (-n) % 2**64
        if n >= 2**63:
            return None
    return n


class Model:
    """memcached 1.6 semantics: items, versions, exptime rules, flush_all, incr/decr."""

    def __init__(self):
        self.items = {}  # key -> [value, flags, exp_rel, version, time_rel]
        self.now = 62  # seconds since EPOCH
        self.last_version = 0
        self.oldest_live = 0
        self.oldest_version = 0
        # Every flush_all in effect before the current one: what they flushed stays flushed
        # (memcached's LRU maintainer reclaims it within a second; the store at once).
        self.floor_live = 0
        self.floor_version = 0

    def realtime(self, exptime):
        if exptime == 0:
            return 0
        if exptime < 0:
            return 1
        if exptime > MAXDELTA:
            return 1 if exptime <= EPOCH else exptime - EPOCH
        return exptime + self.now

    def live(self, key):
        it = self.items.get(key)
        if it is None:
            return None
        flushed = it[4] <= self.floor_live or it[3] < self.floor_version or (
            0 < self.oldest_live <= self.now and (
                it[4] <= self.oldest_live
                or (self.oldest_version and it[3] < self.oldest_version)))
        expired = it[2] != 0 and it[2] <= self.now
        if flushed or expired:
            del self.items[key]
            return None
        return it

    def version(self):
        self.last_version += 1
        return self.last_version

    def put(self, key, value, flags, exp_rel):
        self.items[key] = [value, flags, exp_rel, self.version(), self.now]

    @staticmethod
    def too_large(key, flags, value):
        # memcached's item header (56 B with CAS), key + NUL, 4 B for non-zero flags, CRLF.
        return 56 + len(key) + 1 + (4 if flags else 0) + len(value) + 2 > ITEM_SIZE_MAX

    def store(self, mode, key, value, flags, exptime, cas=0):
        if self.too_large(key, 0 if mode in ("append", "prepend") else flags, value):
            return R.TOO_LARGE
        it = self.live(key)
        if mode == "cas":
            if it is None:
                return R.NOT_FOUND
            if cas == 0 or cas != it[3]:
                return R.EXISTS
        if mode in ("set", "cas") or (mode == "add" and it is None) or (mode == "replace" and it):
            self.put(key, value, flags, self.realtime(exptime))
            return R.STORED
        if mode in ("append", "prepend") and it is not None:
            if cas and cas != it[3]:
                return R.EXISTS
            joined = it[0] + value if mode == "append" else value + it[0]
            if self.too_large(key, it[1], joined):
                return R.NOT_STORED
            self.put(key, joined, it[1], it[2])
            return R.STORED
        return R.NOT_STORED

    def delta(self, key, incr, delta):
        it = self.live(key)
        if it is None:
            return R.NOT_FOUND, None
        n = memcached_strtoull(it[0]) if it[0] else None
        if n is None:
            return R.NON_NUMERIC, None
        n = (n + delta) % 2**64 if incr else max(n - delta, 0)
        digits = str(n).encode()
        if len(digits) <= len(it[0]):
            it[0] = digits.ljust(len(it[0]), b" ")
            it[3] = self.version()
        else:
            self.put(key, digits, it[1], it[2])
        return R.OK, n

    def flush(self, delay):
        new_oldest = self.realtime(delay) if delay > 0 else self.now
        if 0 < self.oldest_live <= self.now:
            self.floor_live = max(self.floor_live, self.oldest_live)
            self.floor_version = max(self.floor_version, self.oldest_version)
        self.oldest_live = new_oldest - 1
        if self.oldest_live <= self.now:
            self.oldest_version = self.version()


class StoreVsModel(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.store = Store(limit_bytes=256 << 20, item_size_max=ITEM_SIZE_MAX, now=T0)
        self.model = Model()

    def seen(self, key):
        it = self.model.live(key)
        return None if it is None else (it[0], it[1], it[3])

    def got(self, item):
        return None if item is None else (item.value, item.flags, item.version)

    @rule(mode=st.sampled_from(["set", "add", "replace", "append", "prepend"]), key=KEYS,
          value=VALUES, flags=FLAGS, exptime=EXPTIMES)
    def store_value(self, mode, key, value, flags, exptime):
        if mode in ("append", "prepend"):
            got = getattr(self.store, mode)(key, value)
        else:
            got = getattr(self.store, mode)(key, value, flags=flags, exptime=exptime)
        assert got == self.model.store(mode, key, value, flags, exptime)

    @rule(key=KEYS, value=VALUES, exptime=EXPTIMES, stale=st.booleans())
    def cas(self, key, value, exptime, stale):
        it = self.model.live(key)
        cas = (it[3] if it else 1) + (7 if stale else 0)
        got = self.store.cas(key, value, cas, exptime=exptime)
        assert got == self.model.store("cas", key, value, 0, exptime, cas)

    @rule(key=KEYS)
    def get(self, key):
        assert self.got(self.store.get(key)) == self.seen(key)

    @rule(key=KEYS, exptime=EXPTIMES)
    def gat(self, key, exptime):
        # The item is returned even when its new exptime has already passed (as memcached).
        expected = self.seen(key)
        it = self.model.live(key)
        if it is not None:
            it[2] = self.model.realtime(exptime)
        assert self.got(self.store.gat(key, exptime)) == expected

    @rule(key=KEYS, incr=st.booleans(), delta=st.sampled_from([0, 1, 7, 2**63, 2**64 - 1]))
    def delta(self, key, incr, delta):
        got = self.store.incr(key, delta) if incr else self.store.decr(key, delta)
        assert got == self.model.delta(key, incr, delta)

    @rule(key=KEYS)
    def delete(self, key):
        expected = R.DELETED if self.model.live(key) is not None else R.NOT_FOUND
        self.model.items.pop(key, None)
        assert self.store.delete(key) == expected

    @rule(delay=st.sampled_from([0, 0, 1, 2, 3, -1, T0 + 2]))
    def flush_all(self, delay):
        self.store.flush_all(delay)
        self.model.flush(delay)

    @rule(seconds=st.sampled_from([0, 1, 1, 2, 4]))
    def advance(self, seconds):
        self.model.now += seconds
        self.store.set_time(EPOCH + self.model.now)

    @rule()
    def crawl(self):
        self.store.crawl(max_buckets=1 << 16)

    @invariant()
    def same_items(self):
        if not hasattr(self, "store"):
            return
        for key in (b"a", b"b", b"c", b"k" * 250):
            assert self.got(self.store.peek(key)) == self.seen(key)
        assert len(self.store) >= len(self.model.items)


StoreVsModel.TestCase.settings = settings(max_examples=300, stateful_step_count=60,
                                          deadline=None)
TestStoreVsModel = StoreVsModel.TestCase
