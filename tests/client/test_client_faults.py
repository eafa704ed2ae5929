"""Both clients under load while the cluster changes, two owners per key (the nodes'
default, writes acknowledged by both): a node killed (errors only for writes of the keys it
owned, only until the clients route by the ring without it; every acknowledged write is read
back, from the other owner) and a node joining (no error at all); afterwards each request
goes straight to an owner again. And a node that stops answering: timeouts for the writes
sent to it, quorum errors for writes of the keys it owns with another node, nothing else."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Self

import pytest
from helpers.client import addresses, cluster_counters
from helpers.cluster import Fleet, wait_for
from pymemcache.exceptions import MemcacheServerError

from pycache_cluster.client import AsyncClient, Client

OPTIONS = {"refresh_interval": 0.5, "retry_after": 0.3, "timeout": 3.0}


class Load:
    """A threaded Client (one thread) and an AsyncClient (a thread with its own loop), each
    setting then getting its own keys in a loop. Records every failure with its start time;
    after a set that succeeded, every read that missed or returned another value (after a
    set that failed, the write may or may not have been applied: any answer is right)."""

    def __init__(self, seeds: list[str], keys: int = 60):
        self.sync_keys = [b"load:s:%d" % i for i in range(keys)]
        self.async_keys = [b"load:a:%d" % i for i in range(keys)]
        self.seeds = seeds
        self.errors: list[tuple[float, str, bytes, str]] = []
        self.wrong: list[tuple[bytes, bytes, bytes]] = []
        self.misses: list[tuple[float, bytes]] = []
        self.done = {"sync": 0, "async": 0}
        self.stop = threading.Event()
        self.clients: dict = {}
        self.ready = threading.Barrier(3)
        self.threads = [threading.Thread(target=self._sync), threading.Thread(target=self._aio)]

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _check(self, key, value, got, written: bool) -> None:
        if not written:
            return
        if got is None:
            self.misses.append((time.monotonic(), key))
        elif got != value:
            self.wrong.append((key, value, got))

    def _sync(self) -> None:
        with Client(self.seeds, **OPTIONS) as client:
            self.clients["sync"] = client
            self.ready.wait(30)
            n = 0
            while not self.stop.is_set():
                n += 1
                for key in self.sync_keys:
                    value = b"%d" % n
                    written = False
                    for op in ("set", "get"):
                        start = time.monotonic()
                        try:
                            if op == "set":
                                written = client.set(key, value)
                            else:
                                self._check(key, value, client.get(key), written)
                        except Exception as exc:  # noqa: BLE001 (every failure is recorded)
                            self.errors.append((start, op, key, repr(exc)))
                    self.done["sync"] += 1
                time.sleep(0.01)        # leave the nodes (and their gossip) CPU to run

    def _aio(self) -> None:
        async def main():
            async with AsyncClient(self.seeds, **OPTIONS) as client:
                self.clients["async"] = client
                self.ready.wait(30)
                n = 0
                while not self.stop.is_set():
                    n += 1
                    for key in self.async_keys:
                        value = b"%d" % n
                        written = False
                        for op in ("set", "get"):
                            start = time.monotonic()
                            try:
                                if op == "set":
                                    written = await client.set(key, value)
                                else:
                                    self._check(key, value, await client.get(key), written)
                            except Exception as exc:  # noqa: BLE001
                                self.errors.append((start, op, key, repr(exc)))
                        self.done["async"] += 1
                    await asyncio.sleep(0.01)

        asyncio.run(main())

    def owners(self) -> dict[bytes, frozenset[str]]:
        client = self.clients["sync"]
        return {k: frozenset(o.name for o in client.owners(k))
                for k in self.sync_keys + self.async_keys}

    def wait_for_ring(self, nodes, timeout: float = 30.0) -> float:
        """Waits until both clients route by the ring these nodes agree on; returns when."""
        checksum = nodes[0].stats("cluster")["ring_checksum"]
        wait_for(lambda: all(c.ring_checksum == checksum for c in self.clients.values()),
                 timeout, "both clients on the new ring")
        return time.monotonic()

    def progress(self, seconds: float) -> dict:
        """Operations done by each client over the next `seconds`."""
        before = dict(self.done)
        time.sleep(seconds)
        return {k: self.done[k] - before[k] for k in before}

    def full_round(self, timeout: float = 30.0) -> None:
        """Waits until each client has set and read every one of its keys once more."""
        before = dict(self.done)
        # Wherever a client is in its loop, twice its keys holds one whole pass.
        need = 2 * len(self.sync_keys)
        wait_for(lambda: all(self.done[k] - before[k] >= need for k in before), timeout,
                 "a full round of both clients", detail=lambda: repr(self.errors[-5:]))


def test_a_node_killed_mid_run(tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 110, 3, "--forward-timeout", "1")
    try:
        fleet.start()
        victim, survivors = fleet[2], fleet.nodes[:2]
        with Load(addresses(fleet)) as load:
            old = load.owners()
            assert set().union(*old.values()) == {n.name for n in fleet.nodes}
            assert any(victim.name not in names for names in old.values())
            load.full_round()
            killed = time.monotonic()
            victim.kill()
            fleet.wait_converged(survivors)
            recovered = load.wait_for_ring(survivors)
            load.full_round()
            before = cluster_counters(fleet, "forwarded", "cmd_set", nodes=survivors)
            load.full_round()
            after = cluster_counters(fleet, "forwarded", "cmd_set", nodes=survivors)
            new = load.owners()
        # Only writes of keys the dead node owned failed (both owners must acknowledge; reads
        # are sent again to the other owner), and only until both clients routed by the ring
        # without it.
        assert load.errors, "writes to the dead node's keys must fail for a while"
        for start, op, key, error in load.errors:
            assert victim.name in old[key], (op, key, error)
            assert op == "set" and killed - 0.1 <= start <= recovered, (op, key, error)
        # The other owner held every acknowledged write: nothing was read stale. A read may
        # still miss while the ring changes (an owner's link to another failing: a cache
        # answers a miss), for the dead node's keys only.
        assert not load.wrong, load.wrong[:5]
        assert all(victim.name in old[key] and t >= killed for t, key in load.misses)
        # The dead node's keys belong to the survivors now, served straight from them.
        assert set(new.values()) == {frozenset(n.name for n in survivors)}
        for node in survivors:
            b, a = before[node.name], after[node.name]
            assert a["forwarded"] == b["forwarded"] and a["cmd_set"] > b["cmd_set"], node.name
    finally:
        fleet.stop()


def test_a_node_joining_mid_run(tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 120, 4, "--forward-timeout", "1")
    try:
        first, joiner = fleet.nodes[:3], fleet[3]
        for node in first:
            node.start(join=[first[0].addr] if node is not first[0] else [])
        fleet.wait_converged(first)
        with Load(addresses(fleet, first)) as load:
            old = load.owners()
            load.full_round()
            joined = time.monotonic()
            joiner.start(join=[first[0].addr])
            fleet.wait_converged()
            load.wait_for_ring(fleet.nodes)
            load.full_round()
            before = cluster_counters(fleet, "forwarded", "cmd_set", "cmd_get")
            load.full_round()
            after = cluster_counters(fleet, "forwarded", "cmd_set", "cmd_get")
            new = load.owners()
        assert not load.errors
        # A key that gained the new node as an owner kept one of its old owners, which the
        # new one asks while it has no copy. Only such a key may miss (the new owner's link
        # to the old one still opening: a cache answers a miss) or read a value an instant
        # older, when a write raced the rings' change (no data migration).
        moved = {k for k in old if new[k] != old[k]}
        assert moved and all(joiner.name in new[k] and new[k] & old[k] for k in moved)
        assert all(key in moved and t > joined for t, key in load.misses)
        assert all(key in moved for key, _, _ in load.wrong)
        for node in fleet.nodes:
            b, a = before[node.name], after[node.name]
            assert a["forwarded"] == b["forwarded"], node.name
            assert a["cmd_set"] > b["cmd_set"] and a["cmd_get"] > b["cmd_get"], node.name
    finally:
        fleet.stop()


def test_a_stalled_node_costs_its_own_keys_a_timeout(tmp_path_factory):
    """SIGSTOP: connections open but nothing answers. A write sent to the stalled node (a key
    it is the primary of) raises after `timeout` (it may have been applied: not sent again);
    a read is sent again, to the key's other owner, which holds it. A write of a key the
    stalled node owns second fails at its primary, which cannot get the second
    acknowledgement within its forward timeout; keys the node does not own are unaffected."""
    # Gossip at its LAN pace takes seconds to declare the stalled node dead: the writes of
    # its keys below reach the nodes while it is still an owner.
    fleet = Fleet(tmp_path_factory, 125, 3, "--forward-timeout", "0.3", "--gossip-preset",
                  "lan")
    loop = asyncio.new_event_loop()
    sync = aio = None
    try:
        fleet.start()
        sync = Client(addresses(fleet), timeout=1.0, retry_after=10)
        aio = AsyncClient(addresses(fleet), timeout=1.0, retry_after=10)
        loop.run_until_complete(aio.start())
        stalled_name = fleet[1].name

        def keys(prefix: str, test) -> list[bytes]:
            names = ([o.name for o in sync.owners(b"%s%d" % (prefix, i))] for i in range(500))
            return [b"%s%d" % (prefix, i) for i, n in enumerate(names) if test(n)][:2]

        stalled = dict(zip(("sync", "async"), keys(b"stall", lambda n: n[0] == stalled_name),
                           strict=True))
        second = dict(zip(("sync", "async"), keys(b"second", lambda n: n[1] == stalled_name),
                          strict=True))
        fine = keys(b"fine", lambda n: stalled_name not in n)[0]
        for key in [*stalled.values(), *second.values()]:
            sync.set(key, b"before")
        os.kill(fleet[1].proc.pid, signal.SIGSTOP)

        def run(client, method, *args):
            result = getattr(client, method)(*args)
            return loop.run_until_complete(result) if client is aio else result

        try:
            for kind, client in (("sync", sync), ("async", aio)):
                with pytest.raises(MemcacheServerError, match="quorum not met"):
                    run(client, "set", second[kind], b"after")
            for kind, client in (("sync", sync), ("async", aio)):
                start = time.monotonic()
                with pytest.raises(TimeoutError):
                    run(client, "set", stalled[kind], b"after")
                assert 0.9 < time.monotonic() - start < 3
                assert run(client, "get", stalled[kind]) == b"before"
                assert run(client, "set", fine, kind.encode()) is True
                assert run(client, "get", fine) == kind.encode()
        finally:
            os.kill(fleet[1].proc.pid, signal.SIGCONT)
    finally:
        fleet.stop()        # first: a client that fails to close must not leak the nodes
        if sync is not None:
            sync.close()
        if aio is not None:
            loop.run_until_complete(aio.close())
        loop.close()
