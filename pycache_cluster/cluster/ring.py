"""The consistent-hash ring: which nodes own a key. A pure function of its inputs.

Inputs: the owning members' names, weights and zones (a failure domain: a rack, a zone; ""
when the node names none), and the vnodes per unit of weight (the same on every node).
Definition, which any client may rebuild exactly:

- a node of weight w has w * vnodes points; point i (0 <= i < w * vnodes) sits at position
  murmur3_32(utf8(name) + b"#" + ascii(i), seed 0) (mmh3.hash(..., signed=False));
- the points are ordered by (position, name);
- a key sits at murmur3_32(key bytes, seed 0), the hash the store itself uses;
- the key's owners are the first n distinct nodes met from the first point at or after the
  key's position, walking up and wrapping past 2**32 - 1 to 0, taking at most ceil(n / Z)
  nodes of any one zone, Z being the number of distinct zones among the ring's nodes; if
  that walk, once around the ring, found fewer than n (zones too small to give their
  share), a second walk from the same point takes the nodes skipped, in ring order, until
  there are n. With one zone (none named: every zone "") the cap is n: the plain walk.

The checksum is the first 16 hex digits of sha256 over "vnodes\\n" then "name weight\\n" per
node in name order, or "name weight zone\\n" once any node names a zone: equal checksums,
equal rings. The epoch counts this node's changes.
Invariant: `points` holds exactly the points of `weights`, ordered by (position, name).
"""
from __future__ import annotations

import hashlib
from array import array

import mmh3
from sortedcontainers import SortedList

#: Default points per unit of weight. bench/ring_bench.py, busiest node's share over the mean,
#: worst of 20 random memberships of 100 nodes: 1.123 at 1000 vnodes, 1.084 at 2000, 1.061
#: at 3000 (target 1.10); lookups stay near 20 ns.
DEFAULT_VNODES = 2000
MAX_WEIGHT = 100


def point(name: str, index: int) -> int:
    return mmh3.hash(name.encode() + b"#" + str(index).encode(), 0, signed=False)


def key_position(key: bytes) -> int:
    return mmh3.hash(key, 0, signed=False)


MAX_ZONES = 256
ZONE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def checksum(weights: dict[str, int], vnodes: int, zones: dict[str, str] | None = None) -> str:
    zones = {n: z for n, z in (zones or {}).items() if z and n in weights}
    h = hashlib.sha256(f"{vnodes}\n".encode())
    for name in sorted(weights):
        if zones:
            h.update(f"{name} {weights[name]} {zones.get(name, '')}\n".encode())
        else:
            h.update(f"{name} {weights[name]}\n".encode())
    return h.hexdigest()[:16]


def check_zone(zone: str) -> str:
    """A zone name: 1-64 of [A-Za-z0-9._-] ("" = none), so it fits any reply line."""
    if zone and (len(zone) > 64 or not set(zone) <= ZONE_CHARS):
        raise ValueError(f"zone {zone!r}: 1-64 characters of A-Z a-z 0-9 . _ -")
    return zone


class Ring:
    """The ring's points, kept sorted as members come and go (no full rebuild)."""

    def __init__(self, vnodes: int = DEFAULT_VNODES, weights: dict[str, int] | None = None,
                 zones: dict[str, str] | None = None):
        if vnodes < 1:
            raise ValueError("vnodes must be at least 1")
        self.vnodes = vnodes
        self.weights: dict[str, int] = {}
        self.zones: dict[str, str] = {}     # name -> zone, only the nodes that name one
        self.points: SortedList = SortedList()
        self.epoch = 0
        self.checksum = checksum({}, vnodes)
        if weights:
            self.update(weights, zones)

    def update(self, weights: dict[str, int], zones: dict[str, str] | None = None) -> bool:
        """Makes the ring hold exactly these (name -> weight) nodes, in these (name -> zone)
        zones (a node missing from `zones` names none). True when it changed (the epoch
        moved on)."""
        for name, weight in weights.items():
            if not 1 <= weight <= MAX_WEIGHT:
                raise ValueError(f"weight of {name!r} must be 1..{MAX_WEIGHT}, got {weight}")
        zones = {n: check_zone(z) for n, z in (zones or {}).items() if z and n in weights}
        if len(set(zones.values())) > MAX_ZONES:
            raise ValueError(f"a ring spans at most {MAX_ZONES} zones")
        changed = zones != self.zones
        self.zones = zones
        for name in [n for n, w in self.weights.items() if weights.get(n) != w]:
            self._remove(name)
            changed = True
        for name, weight in weights.items():
            if name not in self.weights:
                self._add(name, weight)
                changed = True
        if changed:
            self.epoch += 1
            self.checksum = checksum(self.weights, self.vnodes, self.zones)
        return changed

    def zone(self, name: str) -> str:
        return self.zones.get(name, "")

    def _add(self, name: str, weight: int) -> None:
        self.weights[name] = weight
        self.points.update((point(name, i), name) for i in range(weight * self.vnodes))

    def _remove(self, name: str) -> None:
        weight = self.weights.pop(name)
        for i in range(weight * self.vnodes):
            self.points.remove((point(name, i), name))

    @property
    def nodes(self) -> list[str]:
        """Member names in name order: a node's index here is its slot in the snapshot."""
        return sorted(self.weights)

    def owners(self, key: bytes, n: int = 1) -> list[str]:
        """The key's first n distinct owners in preference order (the reference lookup)."""
        return self.owners_at(key_position(key), n)

    def owners_at(self, position: int, n: int = 1) -> list[str]:
        total = len(self.points)
        if total == 0:
            return []
        n = min(n, len(self.weights))
        i = self.points.bisect_left((position, ""))
        nzones = len(set(self.zones.values()) | ({""} if len(self.zones) < len(self.weights)
                                                 else set()))
        cap = -(-n // nzones)
        taken: dict[str, int] = {}
        out: list[str] = []
        for step in range(total):
            name = self.points[(i + step) % total][1]
            zone = self.zones.get(name, "")
            if name not in out and taken.get(zone, 0) < cap:
                out.append(name)
                taken[zone] = taken.get(zone, 0) + 1
                if len(out) == n:
                    return out
        for step in range(total):       # the zones could not give n: fill in ring order
            name = self.points[(i + step) % total][1]
            if name not in out:
                out.append(name)
                if len(out) == n:
                    break
        return out

    def shares(self) -> dict[str, float]:
        """Each node's exact share of the key space (the arcs that end at its points)."""
        share = dict.fromkeys(self.weights, 0)
        total = len(self.points)
        for i, (pos, name) in enumerate(self.points):
            prev = self.points[i - 1][0] if i else self.points[total - 1][0] - (1 << 32)
            share[name] += pos - prev
        return {name: arc / (1 << 32) for name, arc in share.items()}

    def zone_slots(self) -> array | None:
        """The zone number of each slot (zones numbered in name order), None with one zone:
        what the native snapshot needs to walk as owners_at does."""
        if not self.zones:
            return None
        names = sorted({self.zone(n) for n in self.weights})
        if len(names) < 2:
            return None
        number = {z: i for i, z in enumerate(names)}
        return array("H", (number[self.zone(n)] for n in self.nodes))

    def arrays(self) -> tuple[array, array]:
        """(positions, slots) in ring order, for the native snapshot."""
        slot = {name: i for i, name in enumerate(self.nodes)}
        positions = array("I", (p for p, _ in self.points))
        slots = array("H", (slot[name] for _, name in self.points))
        return positions, slots
