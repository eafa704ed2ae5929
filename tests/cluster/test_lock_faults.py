"""Locks with owners slow, dead, restarted or gone: answers stay bounded in time, a minority
of owners never grants, a restarted node waits out the longest lease before it votes, owners
killed and declared dead by failure detection keep their names (the lock ring keeps dead
members), so the name is BUSY or UNAVAILABLE until they are back, and owners that left
gracefully hand their names to new owners that wait out the old leases before they vote.
The same kill or leave with owners following the cache's ring and voting at once
(PYCACHE_LOCK_UNSAFE_NO_WAIT) is the negative control: the checker must see two holders."""
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster.lockcheck import History, Hold, Resource, overlaps, stale_writes
from cluster.replicas import owners
from helpers.cluster import NodeProcess, wait_for
from helpers.servers import REPO

from pycache_cluster.locks.client import LockClient
from pycache_cluster.locks.service import UNSAFE_NO_WAIT

pytestmark = pytest.mark.python_logic

HOLDER = Path(__file__).with_name("lock_holder.py")

MAX_TTL = 6


def quiet(fleet, nodes) -> bool:
    try:
        return all(fleet[i].stats("locks")["lock_quarantined"] == 0 for i in nodes)
    except (OSError, AssertionError):
        return False


def acquire(node, name: bytes, owner: bytes, ttl_ms: int) -> tuple[list[bytes], float, float]:
    """(reply words, invoked, completed) on the monotonic clock."""
    t0 = time.monotonic()
    with node.conn(timeout=10) as c:
        reply = c.call(b"lock acquire %s %s %d\r\n" % (name, owner, ttl_ms)).split()
    return reply, t0, time.monotonic()


def test_a_minority_stops_the_lock_a_majority_keeps_it_free_of_hangs(make_fleet):
    fleet = make_fleet(145, 3, "--forward-timeout", "0.5", "--replicas", "3",
                       "--lock-max-ttl", "1")
    fleet.start()
    wait_for(lambda: quiet(fleet, range(3)), 30, "lock quarantine over")
    fleet[1].proc.send_signal(signal.SIGSTOP)
    try:
        got, _, _ = acquire(fleet[0], b"m", b"one", 800)
        assert got[0] == b"LOCKED", got          # two of three owners answer
        assert fleet[0].call(b"lock release m one %s\r\n" % got[1]).startswith(b"RELEASED")
        fleet[2].proc.send_signal(signal.SIGSTOP)
        got, _, _ = acquire(fleet[0], b"m", b"two", 800)
        assert got[0] == b"UNAVAILABLE" and got[1:3] == [b"1", b"2"], got
        assert b"TIMEOUT" in got[3] or b"ERROR" in got[3], got
        # The attempt's own grant on the live owner was given back at once.
        reply = fleet[0].call(b"lock inspect m\r\n")
        mine = [ln for ln in reply.split(b"\r\n") if ln.startswith(b"OWNER c145 ")]
        assert mine and b" two " not in mine[0], reply
    finally:
        for i in (1, 2):
            fleet[i].proc.send_signal(signal.SIGCONT)


def test_a_restarted_node_waits_out_the_longest_lease(make_fleet):
    fleet = make_fleet(148, 2, "--forward-timeout", "0.5", "--replicas", "2",
                       "--lock-max-ttl", "3")
    fleet.start()
    wait_for(lambda: quiet(fleet, range(2)), 30, "lock quarantine over")
    got, _, _ = acquire(fleet[0], b"r", b"before", 3000)
    assert got[0] == b"LOCKED"
    fleet[1].kill()
    fleet[1].start()
    fleet.wait_converged()
    # Its table is empty; voting now could grant beside the lease it granted before.
    assert fleet[1].stats("locks")["lock_quarantined"] == 1
    after, _, _ = acquire(fleet[1], b"r", b"after", 3000)
    assert after[0] in (b"BUSY", b"UNAVAILABLE"), after
    wait_for(lambda: quiet(fleet, [1]), 30, "the restarted node's quarantine over")
    wait_for(lambda: acquire(fleet[1], b"r", b"later", 3000)[0][0] == b"LOCKED", 30,
             "the lock after the old lease")


def lock_owners(fleet, name: bytes, via: int) -> list[int]:
    """Indices in `fleet` of a lock name's owners as `lock inspect` on node `via` lists them."""
    reply = fleet[via].call(b"lock inspect %s\r\n" % name)
    index = {node.name.encode(): i for i, node in enumerate(fleet.nodes)}
    return [index[ln.split()[1]] for ln in reply.split(b"\r\n") if ln.startswith(b"OWNER ")]


@dataclass
class Lost:
    """Two of a name's three owners gone while a lease on it is valid, and what followed."""
    fleet: object           # conftest.Fleet
    history: History
    first: list[bytes]      # the lease granted before (LOCKED <token> <validity>)
    second: list[bytes]     # another client's acquire through a survivor after
    old: list[int]          # the name's owners before
    survivors: list[int]
    at: float               # when the owners were stopped (monotonic)


def lose_two_owners(make_fleet, base: int, stop, until_locked: bool = False) -> Lost:
    """Five nodes, N=3: a lease is granted on all three owners of its name, then `stop` takes
    two of them down (kill -9, or a graceful leave); once the survivors' cache ring has moved
    the name's keys to other nodes, another client tries the lock through a survivor while
    the first lease is still valid (with until_locked, again and again while it is: the
    survivors' lock ring may follow their cache ring a moment later)."""
    fleet = make_fleet(base, 5, "--forward-timeout", "0.5", "--replicas", "3",
                       "--lock-max-ttl", str(MAX_TTL))
    fleet.start()
    wait_for(lambda: quiet(fleet, range(5)), 30, "lock quarantine over")
    first, t0, t1 = acquire(fleet[0], b"moved", b"first", MAX_TTL * 1000)
    assert first[0] == b"LOCKED", first
    history = History()
    history.add(Hold(b"moved", 1, int(first[1]), t0, t1, t0 + MAX_TTL * 0.99 - 0.002))
    old = owners(fleet, b"moved")
    assert lock_owners(fleet, b"moved", 0) == old      # one member set while all are up
    at = time.monotonic()
    for i in old[:2]:
        stop(fleet[i])
    survivors = [i for i in range(5) if i not in old[:2]]
    fleet.wait_converged([fleet[i] for i in survivors])
    assert owners(fleet, b"moved", via=survivors[0])[0] != old[0]
    got, s0, s1 = acquire(fleet[survivors[0]], b"moved", b"second", MAX_TTL * 1000)
    # UNAVAILABLE: the surviving owner's vote did not come within the vote timeout (a
    # loaded machine); asked again, it must refuse (BUSY), never grant.
    while (until_locked and got[0] != b"LOCKED" or got[0] == b"UNAVAILABLE") and \
            time.monotonic() < t0 + MAX_TTL * 0.5:
        time.sleep(0.05)
        got, s0, s1 = acquire(fleet[survivors[0]], b"moved", b"second", MAX_TTL * 1000)
    if got[0] == b"LOCKED":
        history.add(Hold(b"moved", 2, int(got[1]), s0, s1, s0 + MAX_TTL * 0.99 - 0.002))
    return Lost(fleet, history, first, got, old, survivors, at)


@pytest.mark.slow
def test_killed_owners_keep_their_names(make_fleet):
    lost = lose_two_owners(make_fleet, 155, NodeProcess.kill)
    fleet, old, via = lost.fleet, lost.old, lost.survivors[0]
    # The surviving owner holds the first lease: refused, never a second holder.
    assert lost.second[0] == b"BUSY", lost.second
    assert overlaps(lost.history) == []
    assert fleet[via].stats("locks")["lock_ring_nodes"] == 5
    assert lock_owners(fleet, b"moved", via) == old
    # Released, the name stays unavailable: one of its three owners answers.
    released = fleet[via].call(b"lock release moved first %s\r\n" % lost.first[1])
    assert released.split() == [b"RELEASED", b"1", b"3"], released
    got, _, _ = acquire(fleet[via], b"moved", b"third", 1000)
    assert got[:3] == [b"UNAVAILABLE", b"1", b"2"], got
    # A name with a majority of its owners alive is granted at once: no one waits.
    names = (b"n%d" % i for i in range(200))
    name = next(n for n in names if len(set(lock_owners(fleet, n, via)) & set(old[:2])) < 2)
    got, _, _ = acquire(fleet[via], name, b"fourth", 1000)
    assert got[0] == b"LOCKED", got
    # One killed owner restarts (joining through a survivor, as the first node may be one of
    # them). Gossip does not tell it of the other, still dead: it copies a peer's lock ring,
    # so it counts the same owners as everyone. After its quarantine, the name (two of three
    # owners up) is granted through it.
    back = old[0]
    fleet[back].start(join=[fleet[via].addr])
    fleet.wait_converged([fleet[i] for i in [*lost.survivors, back]])
    wait_for(lambda: quiet(fleet, [back]), 30, "the restarted owner's quarantine over")
    assert fleet[back].stats("locks")["lock_ring_nodes"] == 5
    wait_for(lambda: acquire(fleet[back], b"moved", b"fifth", 1000)[0][0] == b"LOCKED", 30,
             "the lock on its restarted owner")


@pytest.mark.slow
def test_owners_that_left_hand_their_names_to_owners_that_wait(make_fleet):
    lost = lose_two_owners(make_fleet, 160, NodeProcess.terminate)
    fleet, via = lost.fleet, lost.survivors[0]
    assert lost.second[0] == b"BUSY", lost.second
    assert overlaps(lost.history) == []
    # A graceful leave does move the name: the three survivors own it now.
    assert fleet[via].stats("locks")["lock_ring_nodes"] == 3
    assert sorted(lock_owners(fleet, b"moved", via)) == lost.survivors
    # Released, the name is still refused by its two new owners until every lease granted
    # before the leave has run out (the ring changed after `at`).
    released = fleet[via].call(b"lock release moved first %s\r\n" % lost.first[1])
    assert released.startswith(b"RELEASED"), released
    got, _, done = acquire(fleet[via], b"moved", b"third", 1000)
    assert done < lost.at + MAX_TTL, "too slow to see the new owners wait"
    assert got[0] == b"UNAVAILABLE" and b"NOT_OWNER" in got[3], got
    wait_for(lambda: acquire(fleet[via], b"moved", b"fourth", 1000)[0][0] == b"LOCKED", 30,
             "the lock on its new owners")


@pytest.mark.slow
@pytest.mark.parametrize("stop", [NodeProcess.kill, NodeProcess.terminate],
                         ids=["killed", "left"])
def test_negative_control_owners_following_failure_detection_grant_twice(make_fleet,
                                                                         monkeypatch, stop):
    monkeypatch.setenv(UNSAFE_NO_WAIT, "1")
    lost = lose_two_owners(make_fleet, 165 if stop is NodeProcess.kill else 145, stop,
                           until_locked=True)
    assert lost.second[0] == b"LOCKED", lost.second
    assert overlaps(lost.history), "owners moved at once must let a second holder in"


def ask(proc, line: str | None, timeout: float = 15) -> list[str]:
    """Sends a line to the holder process (None: none) and reads its answer, bounded."""
    if line is not None:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), f"holder did not answer {line!r}"
    return proc.stdout.readline().split()


def test_a_paused_holder_is_fenced_off_and_learns_it_lost(make_fleet):
    fleet = make_fleet(145, 3, "--forward-timeout", "0.5", "--replicas", "3",
                       "--lock-max-ttl", "1")
    fleet.start()
    wait_for(lambda: quiet(fleet, range(3)), 30, "lock quarantine over")
    holder = subprocess.Popen([sys.executable, str(HOLDER), f"{fleet[0].host}:{fleet[0].port}",
                               "gc", "0.6"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        held = ask(holder, None)
        assert held[0] == "HELD", held
        token = int(held[1])
        fenced, unfenced = Resource(fenced=True), Resource(fenced=False)
        # The holder stops (its watchdog too) past its TTL; another client takes over.
        holder.send_signal(signal.SIGSTOP)
        try:
            other = LockClient([f"{fleet[1].host}:{fleet[1].port}"]).lock("gc", ttl=0.6,
                                                                         timeout=10)
            assert other.acquire() and other.token > token
            for r in (fenced, unfenced):
                r.write(other.token, b"new")
            other.release()
        finally:
            holder.send_signal(signal.SIGCONT)
        wrote = ask(holder, "write")
        assert wrote[:2] == ["WRITE", str(token)] and wrote[3] == "1", wrote
        for r in (fenced, unfenced):
            r.write(token, b"stale")
        assert stale_writes(fenced) == []
        assert stale_writes(unfenced), "without fencing the paused holder's write went unseen"
        # Its watchdog, awake again, declares the lease lost rather than renewing it.
        wait_for(lambda: ask(holder, "write")[2] == "1", 15, "the holder's watchdog")
        assert ask(holder, "release") == ["RELEASED", "0"]
    finally:
        holder.kill()
        holder.wait(10)
