"""The cluster differential fuzz at length: seeded short sequences to one node of a 3-node
cluster (default flags, or those given) and to memcached 1.6.18, one at a time; prints each
difference shrunk to its smallest sequence, grouped by its first command's word.

    python -m bench.cluster_fuzz [--sequences 20000] [--seed 0] [-- node flags...]

The same generator runs, bounded, in tests/cluster/test_cluster_fuzz.py.
"""
from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from cluster.fuzzrun import Fuzz
from helpers.cluster import Fleet
from helpers.servers import start_memcached


class _Tmp:
    def mktemp(self, name):
        return pathlib.Path(tempfile.mkdtemp(prefix=name))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("flags", nargs="*", help="extra node flags (after --)")
    args = ap.parse_args()
    fleet = Fleet(_Tmp(), 240, 3, "--forward-timeout", "2", *args.flags).start()
    memcached = start_memcached()
    found: dict[bytes, list] = collections.defaultdict(list)
    start = time.monotonic()
    try:
        fuzz = Fuzz(fleet, memcached.port)
        for seed in range(args.seed, args.seed + args.sequences):
            diff = fuzz.check(seed)
            if diff is not None:
                word = diff.sent[-1].split(b" ", 1)[0].strip()
                if not found[word]:
                    print(diff, flush=True)
                found[word].append(diff.seed)
    finally:
        fleet.stop()
        memcached.stop()
    took = time.monotonic() - start
    print(f"\n{args.sequences} sequences in {took:.0f} s; "
          f"{sum(map(len, found.values()))} differ")
    for word, seeds in sorted(found.items()):
        print(f"  {word.decode(errors='replace')}: {len(seeds)} (seeds {seeds[:8]})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
