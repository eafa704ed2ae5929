"""Anti-entropy: replicas that drifted apart (a partition, a crash, hints dropped past their
bound) come back into agreement without a read having to notice.

Every `interval` seconds (jittered) this node compares the keys it shares with one peer, the
next member in name order, so every pair is compared from both sides within a few rounds:

1. Both sides digest the keys whose first N owners include both of them: the hash space is
   cut into BUCKETS equal ranges (a key's murmur3 >> SHIFT, the hash the store already
   keeps), and a bucket's digest is the XOR of a 64-bit hash of (key, version) over its keys,
   tombstones included. XOR does not depend on the order the two tables are walked in.
   `cluster digest` asks the peer for its side.
2. Equal digests: nothing more is sent. For the buckets that differ, `cluster versions` asks
   the peer for its (key, version) pairs there; this node pushes every key it holds newer
   (a live item as `ms ... E<version>`, a delete as `md ... E<version>`), which the peer
   applies last-write-wins. When the peer holds something newer, `cluster repair` asks it to
   run its own round with this node now, instead of a cycle later.

Why one level of fixed buckets rather than a Merkle tree: the walk over the store, not the
comparison, is the cost (every key is hashed either way), and a whole level of 1,024
digests is 8 KiB a round; a tree would save bytes only in that exchange, and add a
round trip per level when a partition left many buckets different
(bench/antientropy_bench.py measures the cost when replicas agree).

Tombstones live --tombstone-ttl seconds: a replica that missed a delete for longer than that
can bring the value back (as Cassandra's gc_grace_seconds documents for its repair).
"""
from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from array import array

import mmh3

from pycache_cluster.cluster import wire
from pycache_cluster.cluster._link import PeerError

log = logging.getLogger(__name__)

BUCKETS = 1024
SHIFT = 22                  # 32-bit key hash >> 22: its bucket
STEP = 512                  # store slots per walk step; the loop serves requests in between
ROUND_TIMEOUT = 10.0        # seconds for each exchange with the peer
ENTRY = struct.Struct("<HQ")    # key length, version; the key follows


def bucket_bits(buckets) -> bytes:
    """Bucket numbers as a hex bitmap: one request line whatever their count."""
    bits = 0
    for b in buckets:
        bits |= 1 << b
    return b"%0*x" % (BUCKETS // 4, bits)


def bits_buckets(text: bytes) -> set[int]:
    bits = int(text, 16)
    return {b for b in range(BUCKETS) if bits >> b & 1}


class AntiEntropy:
    """The rounds of one node; `stats cluster` shows the anti_entropy_* counters."""

    def __init__(self, cluster, interval: float):
        self.cluster = cluster
        self.interval = interval
        self.task: asyncio.Task | None = None
        self._next = 0
        self._asked: set[str] = set()       # peers whose `cluster repair` is pending
        self.rounds = self.buckets_differing = self.keys_pushed = self.failures = 0
        self.bytes = 0
        self.last_round_ms = 0.0

    def start(self) -> None:
        if self.interval > 0:
            self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))
            peers = [n for n in self.cluster.ring.nodes if n != self.cluster.name]
            if peers:
                self._next = (self._next + 1) % len(peers)
                await self.round(peers[self._next])

    # -- the walk ------------------------------------------------------------------------

    async def shared(self, peer: str, buckets: set[int] | None = None):
        """(key, version, is_tombstone, bucket) of this node's slots that `peer` owns too."""
        store, me = self.cluster.state.store, self.cluster.name
        n = self.cluster.config.replicas
        cursor = 0
        while True:
            snapshot = self.cluster.routes.snapshot
            cursor, rows = store.versions(cursor, STEP)
            for key, version, tomb in rows:
                b = mmh3.hash(key, 0, signed=False) >> SHIFT
                if buckets is not None and b not in buckets:
                    continue
                owners = snapshot.owners(key, n) if snapshot is not None else ()
                if me in owners and peer in owners:
                    yield key, version, tomb, b
            if cursor == 0:
                return
            await asyncio.sleep(0)

    async def digest(self, peer: str) -> bytes:
        acc = array("Q", bytes(8 * BUCKETS))
        async for key, version, _, b in self.shared(peer):
            acc[b] ^= mmh3.hash64(key + version.to_bytes(8, "little"), 0, signed=False)[0]
        return acc.tobytes()

    async def versions(self, peer: str, buckets: set[int]) -> bytes:
        out = []
        async for key, version, _, _ in self.shared(peer, buckets):
            out.append(ENTRY.pack(len(key), version) + key)
        return b"".join(out)

    # -- a round, from this side ---------------------------------------------------------

    async def round(self, peer: str) -> None:
        link = self.cluster.bulk_link(peer)
        if link is None:
            return
        start = time.monotonic()
        ring = self.cluster.ring.checksum.encode()
        me = self.cluster.name.encode()
        try:
            mine = await self.digest(peer)
            theirs = await self._ask(link, b"cluster digest %s %s\r\n" % (ring, me))
            if theirs is None or len(theirs) != len(mine):
                return
            a, b = array("Q", mine), array("Q", theirs)
            differ = {i for i in range(BUCKETS) if a[i] != b[i]}
            if differ:
                self.buckets_differing += len(differ)
                listing = await self._ask(link, b"cluster versions %s %s %s\r\n"
                                          % (ring, me, bucket_bits(differ)))
                if listing is not None and await self._push(link, peer, differ, listing):
                    link.call(b"cluster repair %s\r\n" % me)
            self.rounds += 1
        except (PeerError, TimeoutError, OSError) as exc:
            self.failures += 1
            log.debug("anti-entropy with %s: %r", peer, exc)
        except (ValueError, struct.error) as exc:       # a peer's bytes that do not parse
            self.failures += 1
            log.warning("anti-entropy with %s: %r", peer, exc)
        finally:
            self.last_round_ms = (time.monotonic() - start) * 1000

    async def _ask(self, link, request: bytes) -> bytes | None:
        async with asyncio.timeout(ROUND_TIMEOUT):
            reply = await link.call(request)
        self.bytes += len(request) + len(reply)
        payload = wire.unframe(reply)
        if payload is None:
            log.info("anti-entropy: %s answered %r", request.split()[1].decode(), reply[:80])
        return payload

    async def _push(self, link, peer: str, differ: set[int], listing: bytes) -> bool:
        """Sends the peer what this node holds newer; True when the peer holds something
        newer (or something this node lacks) in return."""
        theirs, i = {}, 0
        while i < len(listing):
            nkey, version = ENTRY.unpack_from(listing, i)
            i += ENTRY.size
            theirs[listing[i:i + nkey]] = version
            i += nkey
        store, pending, peer_newer = self.cluster.state.store, [], False
        async for key, version, tomb, _ in self.shared(peer, differ):
            held = theirs.pop(key, 0)
            if version <= held:
                peer_newer |= version < held
                continue
            if tomb:
                request = wire.replica_delete(key, version)
            else:
                item = store.peek(key)
                if item is None:
                    continue
                request = wire.push_request(item)
            pending.append(link.call_key(request, mmh3.hash(key, 0, signed=False)))
            self.bytes += len(request)
        self.keys_pushed += len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
        return peer_newer or bool(theirs)     # what is left in theirs, this node lacks

    # -- the peer's side -----------------------------------------------------------------

    def command(self, args: list[bytes]):
        """cluster digest|versions|repair ... from a peer (cluster/commands.py)."""
        sub = args[1]
        if sub == b"repair" and len(args) == 3:
            peer = args[2].decode(errors="replace")
            if peer in self.cluster.ring.weights and peer not in self._asked:
                self._asked.add(peer)
                asyncio.ensure_future(self._repair(peer))
            return b"OK\r\n"
        if len(args) < 4:
            return None
        if args[2] != self.cluster.ring.checksum.encode():
            return b"RING %s\r\n" % self.cluster.ring.checksum.encode()
        peer = args[3].decode(errors="replace")
        if sub == b"digest" and len(args) == 4:
            return self._framed(self.digest(peer))
        if sub == b"versions" and len(args) == 5 and len(args[4]) == BUCKETS // 4:
            try:
                buckets = bits_buckets(args[4])
            except ValueError:
                return None
            return self._framed(self.versions(peer, buckets))
        return None

    async def _framed(self, work) -> bytes:
        payload = await work
        self.bytes += len(payload)
        return wire.frame(payload)

    async def _repair(self, peer: str) -> None:
        try:
            await self.round(peer)
        finally:
            self._asked.discard(peer)

    def counters(self) -> dict[str, float]:
        return {"anti_entropy_rounds": self.rounds,
                "anti_entropy_buckets_differing": self.buckets_differing,
                "anti_entropy_keys_pushed": self.keys_pushed,
                "anti_entropy_failures": self.failures,
                "anti_entropy_bytes": self.bytes,
                "anti_entropy_last_round_ms": round(self.last_round_ms, 1)}
