"""Miss ratio and bytes per item, ours beside memcached 1.6.18 and libCacheSim's policies.

    python -m bench.hitratio [--scale 1.0] [--stream NAME ...] [--sizes 1 10]

For each stream (bench/hitratio/streams.py) and each cache size (a percentage of the
stream's footprint, as -m in whole MiB), our node and memcached each get a fresh process
that the stream is replayed to over the text protocol (look-aside: a get, and a set after a
miss), and libCacheSim runs its policies on the same stream at the same size in bytes. One
table per stream: the miss ratio (misses / gets, counted by the client) and, for the
servers, items held at the end and resident bytes above the idle process per item held.
Results go to bench/hitratio/latest.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench import servers
from bench.hitratio import replay, sim, streams
from bench.mcclient import TextClient, stat_int

HERE = os.path.dirname(os.path.abspath(__file__))


def run_server(name: str, template: str, mb: int, s: streams.Stream) -> dict:
    with servers.ServerProcess(name, template, mb).start() as server:
        idle = server.rss()
        t = time.monotonic()
        res = replay.replay(server.address, s.ids, s.sizes)
        res["seconds"] = time.monotonic() - t
        with TextClient(server.address) as c:
            st = c.stats()
        res["items"] = stat_int(st, "curr_items")
        res["rss_above_idle"] = server.rss() - idle
        res["miss_ratio"] = res["misses"] / res["requests"]
        res["bytes_per_item"] = res["rss_above_idle"] / max(res["items"], 1)
        res["stats"] = {k: st[k] for k in st if k.startswith(("policy_", "evictions"))}
    return res


def table(name: str, desc: str, footprint: int, rows: dict) -> str:
    sizes = sorted(rows)
    lines = [f"### {name}", "", f"{desc}; footprint {footprint / 2**20:,.0f} MiB.", "",
             "| policy | " + " | ".join(f"miss @ -m {mb} ({pct} %)" for pct, mb in sizes)
             + " | " + " | ".join(f"items / B per item @ {pct} %" for pct, _ in sizes) + " |",
             "|---" * (1 + 2 * len(sizes)) + "|"]
    names = ["ours", "memcached"] + sorted({p for r in rows.values() for p in r["sim"]})
    for p in names:
        cells, extra = [], []
        for key in sizes:
            r = rows[key]
            if p in ("ours", "memcached"):
                d = r[p]
                cells.append(f"{d['miss_ratio']:.4f}")
                extra.append(f"{d['items']:,} / {d['bytes_per_item']:,.0f}")
            else:
                v = r["sim"].get(p)
                cells.append("" if v is None else f"{v:.4f}")
                extra.append("")
        lines.append(f"| {p} | " + " | ".join(cells) + " | " + " | ".join(extra) + " |")
    ratios = []
    for key in sizes:
        r = rows[key]
        ours, mc = r["ours"]["miss_ratio"], r["memcached"]["miss_ratio"]
        best = min(r["sim"].items(), key=lambda kv: kv[1]) if r["sim"] else ("-", float("nan"))
        ratios.append(f"{key[0]} %: ours/memcached {ours / mc:.3f}×, ours/best libCacheSim "
                      f"({best[0]}) {ours / best[1]:.3f}×")
    lines += ["", "; ".join(ratios), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hitratio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="key and request counts × this")
    p.add_argument("--stream", nargs="+", help="streams to run (default: all)")
    p.add_argument("--sizes", nargs="+", type=float, default=[1, 10],
                   help="cache sizes, percent of the footprint (default 1 10)")
    p.add_argument("--ours-cmd", default=servers.OURS_CMD)
    p.add_argument("--memcached-cmd", default=servers.MEMCACHED_CMD)
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    out, text = {}, []
    try:
        for name, make in streams.all_streams(args.scale):
            if args.stream and name not in args.stream:
                continue
            s = make()
            fp = s.footprint
            rows = {}
            # -m at least 2: -I 1m may be at most half of it (memcached refuses it otherwise)
            mbs = {pct: max(2, round(fp * pct / 100 / 2**20)) for pct in args.sizes}
            simulated = sim.simulate(s.ids, s.sizes, [mb << 20 for mb in mbs.values()])
            for pct, mb in mbs.items():
                rows[(pct, mb)] = {
                    "ours": run_server("ours", args.ours_cmd, mb, s),
                    "memcached": run_server("memcached", args.memcached_cmd, mb, s),
                    "sim": simulated.get(mb << 20, {})}
            text.append(table(name, s.description, fp, rows))
            print(text[-1], flush=True)
            out[name] = {"description": s.description, "footprint": fp,
                         "runs": {f"{pct}%": {"mb": mb, **rows[(pct, mb)]}
                                  for pct, mb in rows}}
    finally:
        servers.kill_all()
    with open(os.path.join(HERE, "latest.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
