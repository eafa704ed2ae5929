"""Keeping a client's ring current: whom to ask for `cluster ring`, when, and what changes.

Epochs are per node (each counts its own ring changes), so a client never compares epochs:
two rings are the same exactly when their checksums are (cluster/ring.py). A watch asks some
node for `cluster ring` every refresh_interval seconds, and right away after a node fails or
answers a SERVER_ERROR about a peer or a quorum (an owner it could not reach: the membership
may be changing), then every HURRY_INTERVAL for HURRY_FOR seconds, since gossip needs a few
seconds to agree on a death or a join. A reply with the current checksum, addresses and
replication settings changes nothing; otherwise the ring is rebuilt and requests route by it
from then on. Until then a stale ring costs a hop, never a wrong answer: a node that does
not own a key asks its owners.

Nodes are asked in turn, those not marked failed first, then the seeds. A seed that answers
`cluster ring` with ERROR is a node without clustering: a ring of that one node.
The threaded client watches from a daemon thread, the asyncio client from a task; each asks
through its own connections (client._ask_ring: the ring's lines, or None for ERROR).
"""
from __future__ import annotations

import asyncio
import logging
import threading

from pymemcache.exceptions import MemcacheError

from pycache_cluster.client.errors import CONNECTION_LOST, ClusterUnavailable
from pycache_cluster.client.router import monotonic
from pycache_cluster.client.topology import RingInfo, RingReplyError, Topology, parse_ring

log = logging.getLogger(__name__)
HURRY_INTERVAL = 0.25
HURRY_FOR = 10.0
ASKED = (OSError, MemcacheError, RingReplyError)       # what one node's answer may raise


class RingWatch:
    #: Rings built lately, by checksum: while gossip converges, nodes asked in turn may name
    #: two rings alternately, and each costs weight x vnodes hashes per node to build.
    KEEP_RINGS = 4

    def __init__(self, client, refresh_interval: float):
        self.client = client
        self.refresh_interval = refresh_interval
        self._hurry_until = 0.0
        self._rings: dict[str, Topology] = {}

    def ask_order(self) -> list:
        """[(host, port, node or None)]: the ring's nodes, healthy first, then the seeds."""
        known = [(n.host, n.port, n) for n in self.client.router.ask_order()]
        addresses = {(host, port) for host, port, _ in known}
        return known + [(host, port, None) for host, port in self.client.seeds
                        if (host, port) not in addresses]

    def read(self, host: str, port: int, reply: bytes | None) -> RingInfo | Topology:
        """The answer: a Topology at once, or a RingInfo to build one from (slow)."""
        if reply is None:
            return Topology.single(host, port)
        info = parse_ring(reply)
        built = self._rings.get(info.checksum)
        if built is not None:
            return Topology.from_info(info, built)            # same ring, maybe new addresses
        return info

    def install(self, topology: Topology) -> bool:
        router = self.client.router
        if not topology.standalone:
            self._rings.pop(topology.checksum, None)
            self._rings[topology.checksum] = topology
            while len(self._rings) > self.KEEP_RINGS:
                del self._rings[next(iter(self._rings))]
        if topology.same_as(router.topology):
            return False
        for node in router.install(topology):
            node.close()
        return True

    def failed(self, node, host: str, port: int, exc: BaseException, errors: list) -> None:
        errors.append(f"{host}:{port}: {exc}")
        if node is not None and isinstance(exc, CONNECTION_LOST):
            self.client.router.failed(node)

    def none_answered(self, errors: list) -> bool:
        if self.client.router.topology is None:
            raise ClusterUnavailable("no seed answered `cluster ring`: " + "; ".join(errors))
        return False

    def next_wait(self) -> float:
        return HURRY_INTERVAL if monotonic() < self._hurry_until else self.refresh_interval

    def hurry(self) -> None:
        self._hurry_until = monotonic() + HURRY_FOR


class ThreadWatch(RingWatch):
    """For the threaded client: refresh() on demand, and a daemon thread polling."""

    def __init__(self, client, refresh_interval: float):
        super().__init__(client, refresh_interval)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pycache-client-ring",
                                        daemon=True)

    def refresh(self) -> bool:
        with self._lock:
            errors: list = []
            for host, port, node in self.ask_order():
                try:
                    found = self.read(host, port, self.client._ask_ring(host, port, node))
                    if isinstance(found, RingInfo):
                        found = Topology.from_info(found, self.client.router.topology)
                except ASKED as exc:
                    self.failed(node, host, port, exc, errors)
                    continue
                return self.install(found)
            return self.none_answered(errors)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.next_wait())
            self._wake.clear()
            if self._closed.is_set():
                break
            try:
                self.refresh()
            except MemcacheError as exc:          # none answered: keep polling
                log.debug("ring refresh failed: %s", exc)
            except Exception:                     # a bug must not end the watch unseen
                log.exception("ring refresh failed")

    def hurry(self) -> None:
        super().hurry()
        self._wake.set()

    def stop(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)


class TaskWatch(RingWatch):
    """For the asyncio client: refresh() on demand, and a task polling. A ring that must be
    rebuilt is built in the loop's default executor: it hashes weight x vnodes points per
    node, milliseconds to tens of milliseconds the loop should not stall for."""

    def __init__(self, client, refresh_interval: float):
        super().__init__(client, refresh_interval)
        # Neither binds to an event loop before its first use (Python >= 3.10).
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def refresh(self) -> bool:
        async with self._lock:
            errors: list = []
            for host, port, node in self.ask_order():
                try:
                    found = self.read(host, port, await self.client._ask_ring(host, port, node))
                    if isinstance(found, RingInfo):
                        found = await asyncio.get_running_loop().run_in_executor(
                            None, Topology.from_info, found, self.client.router.topology)
                except ASKED as exc:
                    self.failed(node, host, port, exc, errors)
                    continue
                return self.install(found)
            return self.none_answered(errors)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the inner result when
        # a cancel arrives as the wake is set, and a lost cancel left stop() waiting forever.
        while True:
            try:
                async with asyncio.timeout(self.next_wait()):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.refresh()
            except MemcacheError as exc:          # none answered: keep polling
                log.debug("ring refresh failed: %s", exc)
            except Exception:                     # a bug must not end the watch unseen
                log.exception("ring refresh failed")

    def hurry(self) -> None:
        super().hurry()
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            await finish(self._task)


async def finish(task: asyncio.Task) -> None:
    """Cancels task and waits for it to end, without taking its errors or its cancel for the
    caller's: a cancel of the caller still ends the wait."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        log.error("%s ended with %r", task.get_coro().__qualname__, task.exception())
