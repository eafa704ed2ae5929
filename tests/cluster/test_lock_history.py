"""Lock histories under faults (LOCKS.md checkers 1-3): ten clients contend on two hot locks
through random nodes of a three- and a five-node ring (N=3) while an owner of one lock is killed with -9 and
restarted and an owner of the other is stopped (SIGSTOP) for longer than the TTL. Every grant
is recorded with monotonic times; no two holds of a lock overlap, tokens increase in
real-time order, and a fenced resource accepts every write made within a lease. Negative
controls: a client that trusts its lease too long is caught overlapping, and the same
resource without fencing accepts a paused holder's stale write."""
import random
import signal
import threading
import time

import pytest
from cluster.lockcheck import History, Hold, Resource, overlaps, stale_writes, token_order
from cluster.replicas import owners
from helpers.cluster import wait_for

from pycache_cluster.locks.client import LockClient, LockError

pytestmark = pytest.mark.python_logic

LOCKS = [b"hot0", b"hot1"]
TTL = 0.6
CLIENTS = 10


def unquarantined(fleet, nodes) -> bool:
    try:
        return all(fleet[i].stats("locks")["lock_quarantined"] == 0 for i in nodes)
    except (OSError, AssertionError):
        return False


def addresses(fleet, nodes=None) -> list[str]:
    return [f"{fleet[i].host}:{fleet[i].port}" for i in (nodes or range(len(fleet)))]


class Recorder:
    """One contending client: acquire, write to the resource while holding, release (or
    abandon the lease now and then), record the hold."""

    def __init__(self, cid, fleet, history, resource, stop, client_class=LockClient):
        self.cid, self.history, self.resource, self.stop = cid, history, resource, stop
        self.rnd = random.Random(cid)
        self.client = client_class(addresses(fleet), io_timeout=3)
        self.in_lease_writes: list[tuple[int, bool]] = []

    def run(self, hold=lambda rnd: rnd.uniform(0, 0.03), rounds=None):
        n = 0
        while not self.stop.is_set() and (rounds is None or n < rounds):
            n += 1
            name = self.rnd.choice(LOCKS)
            lease = self.client.lock(name, ttl=TTL, timeout=2)
            try:
                lease.acquire()
            except (LockError, OSError):
                continue
            start = time.monotonic()
            h = Hold(name, self.cid, lease.token, lease.acquired_at, start, lease.valid_until)
            self.history.add(h)
            time.sleep(hold(self.rnd))
            before = time.monotonic()
            ok = self.resource[name].write(lease.token, b"%d:%d" % (self.cid, lease.token))
            if time.monotonic() < lease.valid_until:
                self.in_lease_writes.append((lease.token, ok))
            if self.rnd.random() < 0.1:
                h.released = before     # abandoned: it ends at valid_until at the latest
                continue
            h.released = time.monotonic()
            try:
                lease.release()
            except (LockError, OSError):
                pass
            if self.rnd.random() < 0.2:
                self.client.close()     # the next request goes through another node


def contend(fleet, faults, client_class=LockClient, hold=None, clients=CLIENTS):
    history, stop = History(), threading.Event()
    resource = {name: Resource(fenced=True) for name in LOCKS}    # one resource per lock
    recs = [Recorder(c, fleet, history, resource, stop, client_class) for c in range(clients)]
    threads = [threading.Thread(target=r.run, kwargs={"hold": hold} if hold else {})
               for r in recs]
    for t in threads:
        t.start()
    try:
        for delay, action in faults:
            time.sleep(delay)
            action()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return history, resource, [w for r in recs for w in r.in_lease_writes]


def start(make_fleet, base: int, n: int):
    fleet = make_fleet(base, n, "--forward-timeout", "0.5", "--replicas", "3",
                       "--lock-max-ttl", "1.5")
    fleet.start()
    wait_for(lambda: unquarantined(fleet, range(n)), 30, "lock quarantine over")
    return fleet


@pytest.fixture
def fleet5(make_fleet):
    return start(make_fleet, 150, 5)


@pytest.mark.slow
@pytest.mark.parametrize("nodes", [3, 5])
def test_no_overlap_and_increasing_tokens_under_kill_and_stop(make_fleet, nodes):
    # Three nodes: every node owns both locks, and for a while two of three are down.
    fleet = start(make_fleet, 145 if nodes == 3 else 150, nodes)
    killed = owners(fleet, LOCKS[0])[0]
    stopped = next(i for i in owners(fleet, LOCKS[1]) if i != killed)
    history, resource, writes = contend(fleet, [
        (1.0, fleet[killed].kill),
        (0.5, lambda: fleet[stopped].proc.send_signal(signal.SIGSTOP)),
        (1.0, lambda: fleet[killed].start()),
        (1.0, lambda: fleet[stopped].proc.send_signal(signal.SIGCONT)),
        (2.0, lambda: None),
    ])
    assert overlaps(history) == []
    assert token_order(history) == []
    assert all(stale_writes(r) == [] for r in resource.values())
    assert all(ok for _, ok in writes), "a write made within its lease was refused"
    per_lock = history.by_lock()
    assert all(len(per_lock.get(name, [])) >= 5 for name in LOCKS), \
        {k: len(v) for k, v in per_lock.items()}


class TrustingClient(LockClient):
    """Broken on purpose: trusts its lease for four times the TTL."""

    def validity(self, t0, ttl):
        return t0 + 4 * ttl


def test_negative_control_a_client_trusting_too_long_is_caught(fleet5):
    history, _, _ = contend(fleet5, [(1.5, lambda: None)], client_class=TrustingClient,
                            hold=lambda rnd: 2 * TTL, clients=4)
    assert overlaps(history), "the checker saw no overlap though holders outlived leases"


def test_negative_control_a_paused_holder_without_fencing(fleet5):
    fenced, unfenced = Resource(fenced=True), Resource(fenced=False)
    locks = [LockClient(addresses(fleet5, [i])) for i in (0, 1)]
    paused = locks[0].lock("gc", ttl=TTL)
    assert paused.acquire()
    # The holder "pauses" (GC, SIGSTOP) past its lease; another takes the lock and writes.
    later = locks[1].lock("gc", ttl=TTL, timeout=10)
    assert later.acquire() and later.token > paused.token
    for r in (fenced, unfenced):
        r.write(later.token, b"new")
    later.release()
    for r in (fenced, unfenced):
        r.write(paused.token, b"stale")     # the paused holder resumes and writes
    assert stale_writes(fenced) == []
    assert stale_writes(unfenced), "without fencing the stale write went unseen"


def test_the_checkers_catch_bad_histories():
    h = History()
    h.add(Hold(b"k", 1, 10, 0.0, 1.0, 5.0, released=2.0))
    h.add(Hold(b"k", 2, 20, 2.5, 3.0, 9.0, released=3.5))
    assert overlaps(h) == [] and token_order(h) == []
    h.add(Hold(b"k", 3, 15, 3.6, 3.7, 9.0))               # lower token, invoked after 20
    assert token_order(h) and overlaps(h) == []
    h.add(Hold(b"k", 4, 30, 0.5, 0.6, 1.2))                # inside client 1's hold
    assert overlaps(h)
