"""The ring's two numbers: what an owner lookup costs in the node, and how evenly the key space
is spread, for the vnode counts one might choose.

    python -m bench.ring_bench [--lookups 2000000] [--trials 20]

Lookup: the native snapshot's primary-owner lookup (csrc/pc_ring, what the request path
calls) over random positions, timed in C in one loop; owners(3) likewise, also with the
nodes spread over 3 zones (at most one owner per zone). Balance: exact arc
shares (no sampling) of n equal nodes with random names, `--trials` memberships per row; the
busiest node's share over the mean, worst of the trials. Target: lookup <= 200 ns, busiest
<= 1.10x the mean at 10 and 100 nodes.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from array import array

from pycache_cluster.cluster._ring import RingSnapshot

from pycache_cluster.cluster.ring import DEFAULT_VNODES, Ring


def snapshot(ring: Ring) -> RingSnapshot:
    positions, slots = ring.arrays()
    return RingSnapshot(positions, slots, ring.nodes, ring.zone_slots())


def lookup_ns(nodes: int, vnodes: int, lookups: int, n_owners: int = 1, zones: int = 0) -> float:
    names = [f"10.0.{i // 256}.{i % 256}:11211" for i in range(nodes)]
    ring = Ring(vnodes, dict.fromkeys(names, 1),
                {name: f"z{i % zones}" for i, name in enumerate(names)} if zones else None)
    snap = snapshot(ring)
    rnd = random.Random(1)
    positions = array("I", (rnd.getrandbits(32) for _ in range(lookups)))
    snap.lookup_loop(positions, 1, n_owners)          # warm the caches
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        snap.lookup_loop(positions, 1, n_owners)
        best = min(best, time.perf_counter() - t)
    return best / lookups * 1e9


def worst_balance(nodes: int, vnodes: int, trials: int) -> float:
    worst = 0.0
    for t in range(trials):
        rnd = random.Random(t)
        names = {f"node-{rnd.getrandbits(48):012x}": 1 for _ in range(nodes)}
        shares = Ring(vnodes, names).shares()
        worst = max(worst, max(shares.values()) * nodes)
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ring_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lookups", type=int, default=2_000_000)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--vnodes", type=int, nargs="+", default=[160, 500, 1000, 2000, 3000])
    args = p.parse_args(argv)
    print("owner lookup in the node (native, best of 5 loops), ns per lookup; target <= 200")
    print(f"{'nodes':>6} {'vnodes':>7} {'points':>8} {'primary':>9} {'owners(3)':>10} "
          f"{'owners(3), 3 zones':>19}")
    for nodes in (3, 10, 100):
        for vnodes in (DEFAULT_VNODES,):
            print(f"{nodes:>6} {vnodes:>7} {nodes * vnodes:>8} "
                  f"{lookup_ns(nodes, vnodes, args.lookups):>9.1f} "
                  f"{lookup_ns(nodes, vnodes, args.lookups // 4, 3):>10.1f} "
                  f"{lookup_ns(nodes, vnodes, args.lookups // 4, 3, zones=3):>19.1f}")
    print()
    print(f"busiest node / mean share, worst of {args.trials} random memberships; "
          "target <= 1.10")
    print(f"{'vnodes':>7} {'10 nodes':>9} {'100 nodes':>10}")
    for vnodes in args.vnodes:
        print(f"{vnodes:>7} {worst_balance(10, vnodes, args.trials):>9.3f} "
              f"{worst_balance(100, vnodes, args.trials):>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
