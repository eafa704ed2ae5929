"""The store's entry points for values filled in place (pc_store_alloc_unlinked, link_hv,
free_unlinked): storing through them is storing through pc_store_store_hv, status for
status, counter for counter, item for item; an unlinked item is charged to the limit (not to
`bytes`) until it is linked or freed."""
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pycache_cluster.store import Store
from pycache_cluster.store import StoreResult as R

T0 = 1_700_000_000
KEYS = st.sampled_from([b"a", b"b", b"k" * 250])
VALUES = st.one_of(st.binary(max_size=40), st.sampled_from([b"x" * 20_000, b"y" * 70_000]))
MODES = st.sampled_from(["set", "add", "replace", "append", "prepend", "cas", "cas_stale"])
EXPTIMES = st.sampled_from([0, 100, -1])


class SamePaths(RuleBasedStateMachine):
    """Two stores with room for everything: one stores as the protocol does for small
    values, the other through unlinked items; they must stay the same."""

    def __init__(self):
        super().__init__()
        self.plain = Store(64 << 20, 1 << 20, now=T0)
        self.filled = Store(64 << 20, 1 << 20, now=T0)

    def _plain(self, mode, key, value, flags, exptime, cas):
        s = self.plain
        if mode in ("set", "add", "replace"):
            return getattr(s, mode)(key, value, flags, exptime)
        if mode in ("append", "prepend"):
            return getattr(s, mode)(key, value, cas)
        if mode == "cas":
            return s.cas(key, value, cas, flags, exptime)
        # cas_stale has no Python entry of its own: through the protocol's meta path only.
        return None

    @rule(mode=MODES, key=KEYS, value=VALUES, flags=st.sampled_from([0, 5]), exptime=EXPTIMES,
          cas=st.sampled_from([0, 1, 2, 3, 99]))
    def store(self, mode, key, value, flags, exptime, cas):
        if mode == "cas_stale":
            return
        if mode in ("append", "prepend"):
            flags, exptime = 0, 0
        want = self._plain(mode, key, value, flags, exptime, cas)
        got = self.filled.store_filled(mode, key, value, flags, exptime, cas)
        assert got == want, (mode, key, len(value))

    @rule(key=KEYS, value=VALUES)
    def abandoned(self, key, value):
        assert self.filled.store_filled("set", key, value, abandon=True) is None

    @rule(key=KEYS)
    def delete(self, key):
        assert self.plain.delete(key) == self.filled.delete(key)

    @invariant()
    def same(self):
        a, b = self.plain.stats(), self.filled.stats()
        assert b["unlinked_bytes"] == 0
        # `bytes` is what malloc really holds, which may be a chunk a little larger than
        # asked for (glibc does not split off a remainder too small to use): within 32 bytes
        # an item. The same holds of what counts values kept apart (malloc'd) by their
        # chunks: the external bytes and the queue that holds them.
        for name in ("bytes", "external_bytes", "policy_small_bytes", "policy_main_bytes"):
            assert abs(a.pop(name) - b.pop(name)) <= 32 * a["curr_items"], name
        assert a == b
        for key in (b"a", b"b", b"k" * 250):
            x, y = self.plain.peek(key), self.filled.peek(key)
            assert (x is None) == (y is None)
            if x is not None:
                assert (x.value, x.flags, x.version, x.exptime) == \
                    (y.value, y.flags, y.version, y.exptime)


TestSamePaths = SamePaths.TestCase
TestSamePaths.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_unlinked_item_is_charged_to_the_limit_not_to_bytes():
    s = Store(4 << 20, 1 << 20, now=T0)
    for i in range(3):
        assert s.set(b"k%d" % i, b"v" * 1_000_000) == R.STORED
    before = s.stats()
    assert s.store_filled("set", b"new", b"w" * 1_000_000, abandon=True) is None
    st = s.stats()
    # Room was made for it (an eviction), and its charge went with it.
    assert st["evictions"] == before["evictions"] + 1
    assert st["unlinked_bytes"] == 0
    assert st["bytes"] < before["bytes"]
    assert s.store_filled("set", b"new", b"w" * 1_000_000) == R.STORED
    st = s.stats()
    assert st["unlinked_bytes"] == 0 and st["bytes"] <= 4 << 20
    assert s.get(b"new").value == b"w" * 1_000_000


def test_no_room_for_an_unlinked_item():
    s = Store(1 << 20, 2 << 20, now=T0)
    assert s.store_filled("set", b"huge", b"h" * 1_500_000) is None
    assert s.stats()["unlinked_bytes"] == 0
    assert s.get(b"huge") is None


def test_the_item_it_replaces_is_not_evicted_for_it():
    s = Store(3 << 20, 1 << 20, now=T0)
    assert s.set(b"k", b"a" * 1_000_000) == R.STORED
    assert s.set(b"other", b"b" * 1_000_000) == R.STORED
    # Room for the new value: `other` goes, not `k`, which the replace then finds.
    assert s.store_filled("replace", b"k", b"c" * 1_000_000) == R.STORED
    assert s.get(b"other") is None
    assert s.get(b"k").value == b"c" * 1_000_000
