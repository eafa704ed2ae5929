"""Waiting without a herd: clients blocked on a held lock queue on the name's first owner, each
release wakes only the head, and the lock passes down the queue in arrival order; the
waiters' acquire attempts stay a few per waiter instead of a poll loop each; a woken head
that never takes the lock does not keep it from the rest.

A woken head has --lock-wait-grace to take the lock before the next waiter is woken too: the
fleet's grace (3 s) is far above what a client takes here even on a loaded machine (the
default 0.25 s is not: a count of wakeups would then depend on the machine's load)."""
import socket
import threading
import time

import pytest
from cluster.conftest import Fleet
from cluster.replicas import owners
from helpers.cluster import wait_for

from pycache_cluster.locks.aio import AsyncLockClient
from pycache_cluster.locks.client import LockClient

pytestmark = pytest.mark.python_logic

WAITERS = 4


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 165, 3, "--forward-timeout", "2", "--replicas", "3",
                  "--lock-max-ttl", "3", "--lock-wait-grace", "3")
    request.addfinalizer(fleet.stop)
    fleet.start()
    wait_for(lambda: all(n.stats("locks")["lock_quarantined"] == 0 for n in fleet.nodes), 30,
             "the nodes' lock quarantine over")
    return fleet


def total(fleet, stat: str) -> int:
    return sum(n.stats("locks")[stat] for n in fleet.nodes)


def test_the_lock_passes_down_the_queue_one_wakeup_per_release(fleet):
    first = fleet[owners(fleet, b"q")[0]]
    holder = LockClient([f"{fleet[0].host}:{fleet[0].port}"]).lock("q", ttl=2, auto_renew=True)
    assert holder.acquire()
    busy_before, t0 = total(fleet, "lock_busy"), time.monotonic()
    order, leases, threads = [], {}, []
    go = {i: threading.Event() for i in range(WAITERS)}

    def waiter(i):
        node = fleet[i % 3]
        lease = LockClient([f"{node.host}:{node.port}"]).lock("q", ttl=2, timeout=60,
                                                              auto_renew=True)
        lease.acquire()
        order.append(i)
        leases[i] = lease
        go[i].wait(60)
        lease.release()

    for i in range(WAITERS):
        threads.append(threading.Thread(target=waiter, args=(i,)))
        threads[-1].start()
        # Arrival order is the queue's order: the next waiter starts once this one queued.
        wait_for(lambda n=i + 1: first.stats("locks")["lock_waiting"] == n, 20, f"waiter {i}")
    wakeups = first.stats("locks")["lock_wakeups"]
    holder.release()
    for i in range(WAITERS):
        wait_for(lambda n=i + 1: len(order) == n, 20, f"waiter {i} to hold the lock")
        # The head alone was woken: everyone behind it still waits (the holder renews).
        assert first.stats("locks")["lock_wakeups"] - wakeups == i + 1
        assert first.stats("locks")["lock_waiting"] == WAITERS - i - 1
        go[order[-1]].set()
    for t in threads:
        t.join(30)
    assert order == list(range(WAITERS))
    tokens = [leases[i].token for i in order]
    assert tokens == sorted(tokens) and tokens[0] > holder.token
    # Without the queue each waiter polls all owners every ~0.1 s while it waits; with it,
    # one BUSY to start and one more per expired `lock wait` (<= 4 s) at most.
    elapsed = time.monotonic() - t0
    assert total(fleet, "lock_busy") - busy_before <= WAITERS * (2 + 2 * elapsed / 3.5)


def test_a_woken_waiter_that_never_takes_the_lock_does_not_keep_it(fleet):
    first = fleet[owners(fleet, b"q2")[0]]
    holder = LockClient([f"{fleet[0].host}:{fleet[0].port}"]).lock("q2", ttl=2, auto_renew=True)
    assert holder.acquire()
    busy = fleet[0].call(b"lock acquire q2 dead 2000\r\n").split()
    assert busy[0] == b"BUSY", busy
    # A client that queues, is woken, and then never acquires (it hung, say).
    dead = socket.create_connection((first.host, first.port), timeout=10)
    dead.sendall(b"lock wait q2 %s 4000\r\n" % busy[1])
    wait_for(lambda: first.stats("locks")["lock_waiting"] == 1, 20, "the dead waiter queued")
    got = []
    later = LockClient([f"{fleet[1].host}:{fleet[1].port}"]).lock("q2", ttl=2, timeout=30)
    t = threading.Thread(target=lambda: got.append(later.acquire()))
    t.start()
    wait_for(lambda: first.stats("locks")["lock_waiting"] == 2, 20, "the live waiter queued")
    holder.release()
    t.join(30)
    dead.close()
    assert got == [True] and later.token > holder.token
    later.release()


def test_async_waiters_take_the_lock_after_a_release(fleet):
    import asyncio

    async def main():
        a = AsyncLockClient([f"{fleet[1].host}:{fleet[1].port}"])
        b = AsyncLockClient([f"{fleet[2].host}:{fleet[2].port}"])
        held = a.lock("aq", ttl=2)
        assert await held.acquire()
        waiting = asyncio.ensure_future(b.lock("aq", ttl=2, timeout=30).acquire())
        await asyncio.sleep(0.2)
        await held.release()
        assert await asyncio.wait_for(waiting, 30)
        await a.close()
        await b.close()
    asyncio.run(main())
