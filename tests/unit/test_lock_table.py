"""One replica's lock table on a fake clock: a hypothesis state machine drives grants,
releases, clock steps and a tiny entry limit, and checks the invariants the quorum relies on
after every step (highest token never decreases; no other owner while a lease is valid; a
grant's token is above every earlier one unless its owner repeats it)."""
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pycache_cluster.locks.table import LockTable, Verdict

NAMES = [b"a", b"b", b"c"]
OWNERS = [b"o1", b"o2", b"o3"]
RHO = 0.01


class TableMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.now = 100.0
        self.table = LockTable(limit=2, rho=RHO, quarantine_until=101.0, floor=5)
        self.seen_highest = dict.fromkeys(NAMES, 5)
        self.lease: dict[bytes, tuple[bytes, int, float]] = {}  # the model: owner, token, end

    @rule(dt=st.floats(0, 3))
    def tick(self, dt):
        self.now += dt

    @rule(name=st.sampled_from(NAMES), owner=st.sampled_from(OWNERS),
          token=st.integers(0, 40), ttl=st.floats(0.1, 2))
    def grant(self, name, owner, token, ttl):
        verdict, highest = self.table.grant(name, owner, token, ttl, self.now)
        held = self.lease.get(name)
        valid = held is not None and self.now < held[2]
        if self.now < 101.0:
            assert verdict is Verdict.QUARANTINE
            return
        if verdict is Verdict.GRANTED:
            assert not valid or held[0] == owner, "granted over another owner's valid lease"
            repeat = held is not None and held[:2] == (owner, token)
            assert token > self.seen_highest[name] or (repeat and token == highest)
            self.lease[name] = (owner, token, self.now + ttl * (1 + RHO))
        elif verdict is Verdict.HELD:
            assert valid and held[0] != owner
        elif verdict is Verdict.LOW:
            assert token <= highest
        elif verdict is Verdict.FULL:
            # Room is made from free entries only: every entry's lease must be valid.
            held_now = [n for n in NAMES if n in self.lease and self.now < self.lease[n][2]]
            assert name not in held_now and len(held_now) >= self.table.limit
        self.seen_highest[name] = max(self.seen_highest[name], highest)

    @rule(name=st.sampled_from(NAMES), owner=st.sampled_from(OWNERS),
          token=st.integers(0, 40))
    def release(self, name, owner, token):
        freed = self.table.release(name, owner, token)
        held = self.lease.get(name)
        if freed:
            assert held is not None and held[:2] == (owner, token)
            self.lease[name] = (b"", 0, 0.0)

    @invariant()
    def highest_never_decreases(self):
        for name in NAMES:
            assert self.table.highest(name) >= self.seen_highest[name]

    @invariant()
    def inspect_agrees(self):
        for name in NAMES:
            holder, token, left, _ = self.table.inspect(name, self.now)
            held = self.lease.get(name)
            if holder:
                assert held is not None and held[:2] == (holder, token) and left > 0


TestLockTable = TableMachine.TestCase
TestLockTable.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_repeat_renew_and_release():
    t = LockTable(limit=10, rho=RHO)
    assert t.grant(b"k", b"a", 7, 1.0, 0.0) == (Verdict.GRANTED, 7)
    assert t.grant(b"k", b"a", 7, 1.0, 0.5) == (Verdict.GRANTED, 7)    # idempotent, renewed
    assert t.grant(b"k", b"b", 8, 1.0, 1.4) == (Verdict.HELD, 7)       # renewed lease valid
    assert t.grant(b"k", b"b", 8, 1.0, 1.6) == (Verdict.GRANTED, 8)    # a's lease ran out
    assert t.grant(b"k", b"a", 7, 1.0, 1.7) == (Verdict.HELD, 8)
    assert t.release(b"k", b"b", 8)
    assert t.grant(b"k", b"a", 7, 1.0, 1.8) == (Verdict.LOW, 8)        # a was superseded
    assert t.grant(b"k", b"b", 8, 1.0, 1.9) == (Verdict.LOW, 8)        # no revival after release
    assert t.highest(b"k") == 8


def test_full_table_drops_free_entries_into_the_floor():
    t = LockTable(limit=1, rho=RHO)
    assert t.grant(b"x", b"a", 50, 1.0, 0.0)[0] is Verdict.GRANTED
    assert t.grant(b"y", b"b", 1, 1.0, 0.5)[0] is Verdict.FULL         # x still held
    assert t.grant(b"y", b"b", 1, 1.0, 2.0) == (Verdict.LOW, 50)       # x dropped, floor 50
    assert t.grant(b"y", b"b", 51, 1.0, 2.0) == (Verdict.GRANTED, 51)
    assert t.highest(b"x") == 50 and len(t) == 1                       # x: the floor
