"""Locks on a three-node ring with every lock on all three (N=3, majority 2), through the
wire protocol and the Python lease API: acquire through any node, refusal while held, release,
renewal, expiry of an abandoned lease, tokens strictly increasing per lock, a lease recorded
on a majority of the name's owners, the replica commands kept for peers, and the asyncio API
(its watchdog cancelling a body whose lease ran out)."""
import asyncio
import re
import time

import pytest
from cluster.conftest import Fleet
from cluster.replicas import owners
from helpers.cluster import wait_for

from pycache_cluster.locks.aio import AsyncLockClient
from pycache_cluster.locks.client import LockClient, LockLost, LockNotOwned, LockTimeout

pytestmark = pytest.mark.python_logic

MAX_TTL = "2"


def unquarantined(fleet) -> bool:
    return all(n.stats("locks")["lock_quarantined"] == 0 for n in fleet.nodes)


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 140, 3, "--forward-timeout", "2", "--replicas", "3",
                  "--lock-max-ttl", MAX_TTL)
    request.addfinalizer(fleet.stop)
    fleet.start()
    # A started node waits out the longest lease before it votes (it may have restarted).
    wait_for(lambda: unquarantined(fleet), 30, "the nodes' lock quarantine over")
    return fleet


def acquire(node, name: bytes, owner: bytes, ttl_ms: int = 1500) -> list[bytes]:
    return node.call(b"lock acquire %s %s %d\r\n" % (name, owner, ttl_ms)).split()


def test_acquire_refuse_release_through_every_node(fleet):
    tokens = []
    for i in range(3):
        node = fleet[i]
        got = acquire(node, b"L1", b"own%d" % i)
        assert got[0] == b"LOCKED", got
        tokens.append(int(got[1]))
        assert 0 < int(got[2]) <= 1500
        other = acquire(fleet[(i + 1) % 3], b"L1", b"other")
        assert other[0] == b"BUSY" and int(other[1]) == tokens[-1], other
        assert node.call(b"lock release L1 own%d %d\r\n" % (i, tokens[-1])) == \
            b"RELEASED 3 3\r\n"
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


def test_the_lease_is_on_a_majority_of_the_names_owners(fleet):
    got = acquire(fleet[0], b"L2", b"me", 1900)
    assert got[0] == b"LOCKED"
    reply = fleet[1].call(b"lock inspect L2\r\n")
    rows = re.findall(rb"OWNER (\S+) (\S+) (\d+) (\d+) (\d+)\r\n", reply)
    assert [r[0].decode() for r in rows] == [fleet[i].name for i in owners(fleet, b"L2")]
    holding = [r for r in rows if r[1] == b"me" and int(r[2]) == int(got[1])]
    assert len(holding) >= 2, reply
    fleet[2].call(b"lock release L2 me %s\r\n" % got[1])
    reply = fleet[0].call(b"lock inspect L2\r\n")
    assert reply.count(b" - 0 0 ") == 3 and reply.endswith(b"END\r\n"), reply


def test_renew_by_the_holder_only(fleet):
    got = acquire(fleet[0], b"L3", b"me")
    token = int(got[1])
    assert fleet[1].call(b"lock renew L3 me %d 1500\r\n" % token).startswith(
        b"LOCKED %d " % token)
    assert fleet[2].call(b"lock renew L3 you %d 1500\r\n" % token) == b"LOST\r\n"
    assert fleet[2].call(b"lock renew L3 me %d 1500\r\n" % (token - 1)) == b"LOST\r\n"
    fleet[0].call(b"lock release L3 me %d\r\n" % token)
    # Released: a late renewal must not bring it back.
    assert fleet[0].call(b"lock renew L3 me %d 1500\r\n" % token) == b"LOST\r\n"


def test_an_abandoned_lease_expires_and_the_next_token_is_higher(fleet):
    first = acquire(fleet[0], b"L4", b"gone", 300)
    assert first[0] == b"LOCKED"
    seen = []

    def taken():
        seen.append(acquire(fleet[1], b"L4", b"next", 1500))
        return seen[-1][0] == b"LOCKED"
    wait_for(taken, 10, "the abandoned lease to expire", interval=0.05)
    assert int(seen[-1][1]) > int(first[1])
    assert all(s[0] in (b"LOCKED", b"BUSY") for s in seen), seen


def test_bad_requests_and_peer_only_commands(fleet):
    n = fleet[0]
    assert n.call(b"lock\r\n") == b"ERROR\r\n"
    assert n.call(b"lock frobnicate x\r\n") == b"ERROR\r\n"
    assert n.call(b"lock acquire x me 0\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert n.call(b"lock acquire x me 2001\r\n").startswith(b"CLIENT_ERROR")   # > max ttl
    assert n.call(b"lock acquire x me\r\n").startswith(b"CLIENT_ERROR")
    assert n.call(b"lock grant x me 99999999999999999 1000 -\r\n") == \
        b"CLIENT_ERROR lock grant is for cluster peers\r\n"
    # The cache's own SETNX is untouched: a cache key and a lock of one name are unrelated.
    assert n.call(b"add x 0 0 1\r\n1\r\n") == b"STORED\r\n"
    assert acquire(n, b"x", b"me")[0] == b"LOCKED"
    assert n.call(b"add x 0 0 1\r\n1\r\n") == b"NOT_STORED\r\n"
    # flush_all empties the cache, never the lock table.
    assert n.call(b"flush_all\r\n") == b"OK\r\n"
    assert acquire(fleet[1], b"x", b"you")[0] == b"BUSY"


def test_the_lease_api(fleet):
    locks = LockClient([f"{fleet[i].host}:{fleet[i].port}" for i in range(3)])
    other = LockClient([f"{fleet[2].host}:{fleet[2].port}"])
    with locks.lock("api", ttl=1.5) as held:
        assert held.held and held.token > 0 and held.valid_until > time.monotonic() - 10
        assert not other.lock("api", ttl=1.5, blocking=False).acquire()
        with pytest.raises(LockTimeout):
            other.lock("api", ttl=1.5, timeout=0.2).acquire()
        before = held.valid_until
        assert held.extend() >= before
    assert not held.held
    with pytest.raises(LockNotOwned):
        held.release()
    later = other.lock("api", ttl=1.5)
    assert later.acquire() and later.token > held.token
    later.release()


def test_the_watchdog_keeps_a_lease_past_its_ttl(fleet):
    locks = LockClient([f"{fleet[0].host}:{fleet[0].port}"])
    other = LockClient([f"{fleet[1].host}:{fleet[1].port}"])
    with locks.lock("dog", ttl=0.9, auto_renew=True) as held:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            took = other.lock("dog", ttl=0.9, blocking=False)
            # A loaded machine may starve the watchdog: then the lease is honestly lost.
            assert not took.acquire() or held.lost.is_set()
            time.sleep(0.1)


def test_the_async_lease_api(fleet):
    async def main():
        locks = AsyncLockClient([f"{fleet[1].host}:{fleet[1].port}"])
        other = AsyncLockClient([f"{fleet[2].host}:{fleet[2].port}"])
        async with locks.lock("aio", ttl=1.5) as held:
            assert held.held and held.token > 0
            assert not await other.lock("aio", ttl=1.5, blocking=False).acquire()
            assert await held.extend() >= held.valid_until - 10
        assert not held.held
        # A watchdog that stops renewing (max_hold) lets the lease run out: the body is
        # cancelled at its next await and the block raises LockLost.
        seen = []
        with pytest.raises(LockLost):
            async with other.lock("aio", ttl=0.6, auto_renew=True, max_hold=0.3,
                                  on_lost=seen.append) as short:
                await asyncio.sleep(30)
        assert seen == [short] and short.lost.is_set() and short.token > held.token
        await locks.close()
        await other.close()
    asyncio.run(main())
