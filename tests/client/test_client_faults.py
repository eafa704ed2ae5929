"""Both clients under load while the cluster changes: a node killed (errors only for requests
on the dead node's keys, only until the clients route by the ring without it) and a node
joining (no error at all); afterwards each request goes straight to its owner again. And a
node that stops answering: timeouts for its keys' writes only."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Self

import pytest
from helpers.client import addresses, cluster_counters
from helpers.cluster import Fleet, owned_keys, wait_for

from pycache_cluster.client import AsyncClient, Client

OPTIONS = {"refresh_interval": 0.5, "retry_after": 0.3, "timeout": 3.0}


class Load:
    """A threaded Client (one thread) and an AsyncClient (a thread with its own loop), each
    setting then getting its own keys in a loop. Records every failure with its start time,
    and every read that returned neither the value just written nor a miss."""

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

    def _check(self, key, value, got) -> None:
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
                    for op in ("set", "get"):
                        start = time.monotonic()
                        try:
                            if op == "set":
                                client.set(key, value)
                            else:
                                self._check(key, value, client.get(key))
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
                        for op in ("set", "get"):
                            start = time.monotonic()
                            try:
                                if op == "set":
                                    await client.set(key, value)
                                else:
                                    self._check(key, value, await client.get(key))
                            except Exception as exc:  # noqa: BLE001
                                self.errors.append((start, op, key, repr(exc)))
                        self.done["async"] += 1
                    await asyncio.sleep(0.01)

        asyncio.run(main())

    def owners(self) -> dict[bytes, str]:
        client = self.clients["sync"]
        return {k: client.owners(k)[0].name for k in self.sync_keys + self.async_keys}

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


def test_a_node_killed_mid_run(tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 110, 3, "--forward-timeout", "1")
    try:
        fleet.start()
        victim, survivors = fleet[2], fleet.nodes[:2]
        with Load(addresses(fleet)) as load:
            old = load.owners()
            assert set(old.values()) == {n.name for n in fleet.nodes}
            assert all(load.progress(0.5).values())
            killed = time.monotonic()
            victim.kill()
            fleet.wait_converged(survivors)
            recovered = load.wait_for_ring(survivors)
            assert all(load.progress(0.5).values())
            before = cluster_counters(fleet, "forwarded", "cmd_set", nodes=survivors)
            assert all(load.progress(1.0).values())
            after = cluster_counters(fleet, "forwarded", "cmd_set", nodes=survivors)
            new = load.owners()
        # Only the dead node's keys failed, only writes (reads are retried elsewhere), and
        # only until both clients routed by the ring without it.
        assert load.errors, "writes to the dead node's keys must fail for a while"
        for start, op, key, error in load.errors:
            assert old[key] == victim.name, (op, key, error)
            assert op == "set" and killed - 0.1 <= start <= recovered, (op, key, error)
        # Keys of live owners always read what was just written; the dead node's keys miss
        # (or, moved to a survivor while writes raced the rings' change, read a value an
        # instant older: a cache's keys that change owner are not migrated).
        assert all(old[key] == victim.name for key, _, _ in load.wrong)
        assert all(old[key] == victim.name for _, key in load.misses)
        # The dead node's keys belong to the survivors now, served straight from them.
        assert set(new.values()) == {n.name for n in survivors}
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
            assert all(load.progress(0.5).values())
            joined = time.monotonic()
            joiner.start(join=[first[0].addr])
            fleet.wait_converged()
            load.wait_for_ring(fleet.nodes)
            assert all(load.progress(0.5).values())
            before = cluster_counters(fleet, "forwarded", "cmd_set", "cmd_get")
            assert all(load.progress(1.0).values())
            after = cluster_counters(fleet, "forwarded", "cmd_set", "cmd_get")
            new = load.owners()
        assert not load.errors
        # A key that moved to the new node starts cold there: only those miss (or, if a write
        # raced the rings' change, read a value an instant older: no data migration).
        moved = {k for k in old if new[k] != old[k]}
        assert moved and all(new[k] == joiner.name for k in moved)
        assert all(key in moved and t > joined for t, key in load.misses)
        assert all(key in moved for key, _, _ in load.wrong)
        for node in fleet.nodes:
            b, a = before[node.name], after[node.name]
            assert a["forwarded"] == b["forwarded"], node.name
            assert a["cmd_set"] > b["cmd_set"] and a["cmd_get"] > b["cmd_get"], node.name
    finally:
        fleet.stop()


def test_a_stalled_node_costs_its_own_keys_a_timeout(tmp_path_factory):
    """SIGSTOP: connections open but nothing answers. A write to the stalled owner raises
    after `timeout` (it may have been applied: not sent again); a read is sent again, to the
    next node, which answers the stalled owner's key as a miss once its own forward times out
    (so the client's timeout must exceed the nodes'); other keys are unaffected."""
    fleet = Fleet(tmp_path_factory, 130, 2, "--forward-timeout", "0.3")
    loop = asyncio.new_event_loop()
    sync = aio = None
    try:
        fleet.start()
        sync = Client(addresses(fleet), timeout=1.0, retry_after=10)
        aio = AsyncClient(addresses(fleet), timeout=1.0, retry_after=10)
        loop.run_until_complete(aio.start())
        stalled = dict(zip(("sync", "async"), owned_keys(fleet, 1, 2, "stall"), strict=True))
        fine = owned_keys(fleet, 0, 1, "fine")[0]
        for key in stalled.values():
            sync.set(key, b"before")
        os.kill(fleet[1].proc.pid, signal.SIGSTOP)
        try:
            for kind, client in (("sync", sync), ("async", aio)):
                def run(method, *args, client=client):
                    result = getattr(client, method)(*args)
                    return loop.run_until_complete(result) if client is aio else result

                start = time.monotonic()
                with pytest.raises(TimeoutError):
                    run("set", stalled[kind], b"after")
                assert 0.9 < time.monotonic() - start < 3
                assert run("get", stalled[kind]) is None
                assert run("set", fine, kind.encode()) is True
                assert run("get", fine) == kind.encode()
        finally:
            os.kill(fleet[1].proc.pid, signal.SIGCONT)
    finally:
        if sync is not None:
            sync.close()
        if aio is not None:
            loop.run_until_complete(aio.close())
        loop.close()
        fleet.stop()
