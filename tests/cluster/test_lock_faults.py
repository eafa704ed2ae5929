"""Locks with owners slow, dead, restarted or replaced: answers stay bounded in time, a
minority of owners never grants, a restarted node waits out the longest lease before it votes,
and owners that failure detection brings in wait too, so a lease granted by the old owners
cannot be granted again by the new ones. The same ring change with the waits switched off
(PYCACHE_LOCK_UNSAFE_NO_WAIT) is the negative control: the checker must see two holders."""
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster.lockcheck import History, Hold, Resource, overlaps, stale_writes
from cluster.replicas import owners
from helpers.cluster import wait_for
from helpers.servers import REPO

from pycache_cluster.locks.client import LockClient
from pycache_cluster.locks.service import UNSAFE_NO_WAIT

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


def replace_owners(make_fleet, base: int) -> History:
    """Five nodes, N=3: a lease is granted on all three owners of its name, then two of them
    are killed; once failure detection has given the name new owners, another client tries
    the lock through a survivor while the first lease is still valid."""
    fleet = make_fleet(base, 5, "--forward-timeout", "0.5", "--replicas", "3",
                       "--lock-max-ttl", str(MAX_TTL))
    fleet.start()
    wait_for(lambda: quiet(fleet, range(5)), 30, "lock quarantine over")
    first, t0, t1 = acquire(fleet[0], b"moved", b"first", MAX_TTL * 1000)
    assert first[0] == b"LOCKED", first
    history = History()
    history.add(Hold(b"moved", 1, int(first[1]), t0, t1, t0 + MAX_TTL * 0.99 - 0.002))
    old = owners(fleet, b"moved")
    for i in old[:2]:
        fleet[i].kill()
    survivors = [i for i in range(5) if i not in old[:2]]
    fleet.wait_converged([fleet[i] for i in survivors])
    assert owners(fleet, b"moved", via=survivors[0])[0] != old[0]
    got, s0, s1 = acquire(fleet[survivors[0]], b"moved", b"second", MAX_TTL * 1000)
    if got[0] == b"LOCKED":
        history.add(Hold(b"moved", 2, int(got[1]), s0, s1, s0 + MAX_TTL * 0.99 - 0.002))
    return history


@pytest.mark.slow
def test_new_owners_wait_before_they_vote(make_fleet):
    assert overlaps(replace_owners(make_fleet, 155)) == []


@pytest.mark.slow
def test_negative_control_owners_reassigned_at_once_grant_twice(make_fleet, monkeypatch):
    monkeypatch.setenv(UNSAFE_NO_WAIT, "1")
    assert overlaps(replace_owners(make_fleet, 160)), \
        "new owners voting at once must let a second holder in"


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
