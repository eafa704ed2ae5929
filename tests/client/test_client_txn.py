"""Transactions and update() through both clients on a real cluster: each compare and write
as documented, atomic per key however many threads, tasks or plain memcached clients write
the same key through whatever node (no lost update)."""
import asyncio
import threading

import pytest
from helpers.client import addresses, spread
from pymemcache.client.base import Client as Pymemcache

from pycache_cluster.client import AsyncClient, Client, TxnConflict, TxnResult


@pytest.fixture
def plain(fleet):
    c = Pymemcache((fleet[0].host, fleet[0].port), default_noreply=False, timeout=10)
    yield c
    c.close()


def version(plain, key) -> int | None:
    _, cas = plain.gets(key)
    return None if cas is None else int(cas)


def test_compare_on_value(api, plain, fleet):
    for k in spread(fleet, 1, "tv"):
        api.set(k, b"old")
        r = api.txn(k).if_value(b"old").then_set(b"new").commit()
        assert r == TxnResult(True, b"new", version(plain, k)) and plain.get(k) == b"new"
        # The compare fails: nothing written, the Else read reports the current state.
        r = api.txn(k).if_value(b"old").then_set(b"other").commit()
        assert r == TxnResult(False, b"new", version(plain, k)) and plain.get(k) == b"new"
        assert api.txn(k).if_value(b"new").then_delete().commit() == TxnResult(True, None,
                                                                                 None)
        assert plain.get(k) is None
        assert api.txn(k).if_value(b"new").then_set(b"x").commit() == TxnResult(False, None,
                                                                                 None)
        assert plain.get(k) is None


def test_compare_on_version_and_on_absence(api, plain, fleet):
    for k in spread(fleet, 1, "tver"):
        assert api.txn(k).if_missing().then_set(b"first").commit() == \
            TxnResult(True, b"first", version(plain, k))
        lost = api.txn(k).if_missing().then_set(b"second").commit()
        assert lost == TxnResult(False, b"first", version(plain, k))
        _, cas = api.gets(k)
        r = api.txn(k).if_version(cas).then_set(b"v2", expire=100).commit()
        assert r.succeeded and r.version == version(plain, k) != int(cas)
        assert int(fleet[0].call(b"mg %s t\r\n" % k).split()[1][1:]) > 90
        stale = api.txn(k).if_version(cas).then_set(b"v3").commit()
        assert stale == TxnResult(False, b"v2", r.version) and plain.get(k) == b"v2"
        assert not api.txn(k).if_version(cas).then_delete().commit().succeeded
        assert api.txn(k).if_version(r.version).then_delete().commit().succeeded
        assert plain.get(k) is None


def test_reads_and_unconditional_writes(api, plain, fleet):
    k = spread(fleet, 1, "tr")[2]
    assert api.txn(k).commit() == TxnResult(True, None, None)
    assert api.txn(k).if_missing().commit().succeeded
    w = api.txn(k).then_set(b"u").commit()
    assert w == TxnResult(True, b"u", version(plain, k))
    assert api.txn(k).if_value(b"u").commit() == w
    assert api.txn(k).if_version(w.version).commit().succeeded
    assert not api.txn(k).if_missing().commit().succeeded
    assert api.txn(k).if_missing().then_delete().commit() == TxnResult(False, b"u", w.version)
    assert api.txn(k).then_delete().commit().succeeded and plain.get(k) is None
    with pytest.raises(ValueError, match="one compare"):
        api.txn(k).if_value(b"a").if_missing()
    with pytest.raises(ValueError, match="one write"):
        api.txn(k).then_set(b"a").then_delete()


def test_update_reads_again_after_another_writer_wins(api, plain, fleet):
    k = spread(fleet, 1, "tu")[1]
    seen = []

    def bump(value):
        seen.append(value)
        if len(seen) == 1:
            plain.set(k, b"10")         # another client writes between our read and write
        return b"%d" % (int(value or 0) + 1)

    # Absent when read, created by another client before our add: read again.
    assert api.update(k, bump) == b"11" and seen == [None, b"10"]
    seen.clear()
    # Present when read, changed before our conditional set: read again.
    assert api.update(k, bump) == b"11" and seen == [b"11", b"10"]
    assert plain.get(k) == b"11"
    assert api.update(k, lambda v: v + b"!") == b"11!" and plain.get(k) == b"11!"
    plain.set(k, b"11")

    def always_loses(value):
        plain.set(k, b"%d" % (int(value) + 100))
        return b"never"

    with pytest.raises(TxnConflict):
        api.update(k, always_loses, max_attempts=3)
    assert plain.get(k) == b"311"


WORKERS, ROUNDS = 8, 25


def increment_by_txn(client, key) -> None:
    """etcd's pattern: compare on the value read, retry with the Else read."""
    current = client.gets(key)[0]
    for _ in range(ROUNDS):
        while True:
            r = client.txn(key).if_value(current).then_set(b"%d" % (int(current) + 1)).commit()
            if r.succeeded:
                current = r.value
                break
            current = r.value


def increment_by_cas(node, key) -> None:
    """A plain memcached client through one node (forwarding to the owner): gets/cas."""
    c = Pymemcache((node.host, node.port), default_noreply=False, timeout=10)
    for _ in range(ROUNDS):
        while True:
            value, cas = c.gets(key)
            if c.cas(key, b"%d" % (int(value) + 1), cas):
                break
    c.close()


def test_no_lost_update_from_8_threads(fleet, plain):
    key_txn, key_update = spread(fleet, 1, "hot")[1:3]
    plain.set(key_txn, b"0")
    clients = [Client(addresses(fleet)[i % 3:i % 3 + 1]) for i in range(2)]
    workers = [threading.Thread(target=increment_by_txn, args=(clients[i % 2], key_txn))
               for i in range(WORKERS - 2)]
    # Two of the eight are plain clients on non-owner nodes: atomic through any node.
    owner = clients[0].owners(key_txn)[0].name
    others = [n for n in fleet.nodes if n.name != owner]
    workers += [threading.Thread(target=increment_by_cas, args=(others[i], key_txn))
                for i in range(2)]
    workers += [threading.Thread(target=lambda c=clients[i % 2]: [
        c.update(key_update, lambda v: b"%d" % (int(v or 0) + 1)) for _ in range(ROUNDS)])
        for i in range(WORKERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    for c in clients:
        c.close()
    assert not any(w.is_alive() for w in workers)
    assert int(plain.get(key_txn)) == WORKERS * ROUNDS
    assert int(plain.get(key_update)) == WORKERS * ROUNDS


def test_no_lost_update_from_8_tasks(fleet, plain):
    key_txn, key_update = spread(fleet, 1, "ahot")[:2]
    plain.set(key_txn, b"0")

    async def by_txn(client):
        current = (await client.gets(key_txn))[0]
        for _ in range(ROUNDS):
            while True:
                r = await client.txn(key_txn).if_value(current).then_set(
                    b"%d" % (int(current) + 1)).commit()
                current = r.value
                if r.succeeded:
                    break

    async def by_update(client):
        for _ in range(ROUNDS):
            await client.update(key_update, lambda v: b"%d" % (int(v or 0) + 1))

    async def main():
        async with AsyncClient(addresses(fleet)[2:]) as one, \
                AsyncClient(addresses(fleet)[:1], connections=2) as two:
            await asyncio.gather(*(by_txn((one, two)[i % 2]) for i in range(WORKERS)),
                                 *(by_update((one, two)[i % 2]) for i in range(WORKERS)))

    asyncio.run(asyncio.wait_for(main(), 120))
    assert int(plain.get(key_txn)) == WORKERS * ROUNDS
    assert int(plain.get(key_update)) == WORKERS * ROUNDS
