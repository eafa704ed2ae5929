"""The streams of bench/hitratio replayed into the native Store in this process: the same
look-aside miss ratio as over the protocol (the node adds nothing to the policy), in a
fraction of the time, for choosing the policy's parameters by measurement.

    python -m bench.hitratio.inproc [--scale 1.0] [--stream NAME ...] [--sizes 1 10]
"""
from __future__ import annotations

import argparse
import sys

from bench.hitratio import streams

_VALUE = b"v" * (1 << 20)


def replay(s: streams.Stream, limit: int) -> dict:
    from pycache_cluster.store import Store
    store = Store(limit_bytes=limit, item_size_max=1 << 20)
    get, set_ = store.get, store.set
    sizes = s.sizes.tolist()
    value = memoryview(_VALUE)
    misses = 0
    for k in s.ids.tolist():
        key = b"k%d" % k
        if get(key) is None:
            misses += 1
            set_(key, value[:sizes[k]])
    st = store.stats()
    return {"miss_ratio": misses / len(s.ids), "items": st["curr_items"],
            **{k: v for k, v in st.items() if k.startswith("policy_")}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hitratio.inproc", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--stream", nargs="+")
    p.add_argument("--sizes", nargs="+", type=float, default=[1, 10])
    args = p.parse_args(argv)
    for name, make in streams.all_streams(args.scale):
        if args.stream and name not in args.stream:
            continue
        s = make()
        fp = s.footprint
        for pct in args.sizes:
            mb = max(2, round(fp * pct / 100 / 2**20))
            r = replay(s, mb << 20)
            print(f"{name:16} {pct:>4g} % -m {mb:<4} miss {r['miss_ratio']:.4f} "
                  f"items {r['items']:>7,} promotions {r['policy_promotions']:>8,} "
                  f"ghost hits {r['policy_ghost_hits']:>8,}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
