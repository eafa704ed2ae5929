"""Command line of the harness: `python -m bench compare|memory|list`.

    python -m bench compare [--seconds 5] [--rounds 3] [--workload NAME ...]
    python -m bench memory [--mode inproc|node] [--workload NAME ...]
    python -m bench list

`compare` runs each throughput workload against real memcached 1.6.18 and our node alternately
(A/B/A/B, a fresh server per run) and each memory workload once per server; `memory` runs only
the memory workloads, with ours either in process (`inproc`: the native Store in a fresh
interpreter, no server) or as the node (`node`). Both print a table, update
bench/results/latest.json, the ratio plots (bench/results/*.png) and bench/RESULTS.md.
`--self-check` runs memcached on both sides (validates the harness; ratios should be ~1.0).
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
import traceback

from bench import compare, memcaslap, memory, report, servers, workloads
from bench.compare import ServerSpec
from bench.report import Row, make_row

THROUGHPUT_TARGETS = {"get90", "set-heavy", "multiget10"}
CPU_TARGETS = {"cpu_us_per_op": "≤ 1.0", "user_us_per_op": "≤ 1.5"}
METRIC_LABELS = {
    "ops_per_sec": "throughput (ops/s)",
    "cpu_us_per_op": "server CPU µs/op (user+sys)",
    "user_us_per_op": "server user CPU µs/op",
    "peak_rss_mb": "server peak RSS (MB)",
}
MEMORY_METRICS = {  # workload -> [(result key, metric key, label, target, note)]
    "rss-per-item": [("bytes_per_item", "bytes_per_item", "RSS bytes per item", "≤ 1.0",
                      "stretch ≤ 0.9×")],
    "items-held": [("items", "items", "items held at -m 64", "≥ 1.2", "")],
    "zipf-hit": [("hit_ratio", "hit_ratio", "hit ratio (stats)", "≥ 1.0", "")],
    "zipf-large-hit": [("hit_ratio", "hit_ratio", "hit ratio (stats)", "≥ 1.0", "")],
    **{f"flood-{mb}": [
        ("peak_ratio_total", "peak_rss_ratio", "peak RSS / limit", "≤ 1.0",
         "gate: ours ≤ 1.1"),
        ("peak_ratio", "peak_over_idle_ratio", "(peak RSS - idle RSS) / limit", "≤ 1.0",
         "gate: ours ≤ 1.1 + 16 MiB / limit"),
        ("cpu_us_per_set", "cpu_us_per_set", "server CPU µs per set", "", "")]
       for mb in (64, 256)},
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers.install_signal_handlers()
    try:
        if args.cmd == "list":
            for w in workloads.THROUGHPUT + workloads.MEMORY:
                print(f"{w.name:16} {w.kind:7} {w.description}")
            return 0
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        servers.kill_all()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ours-cmd", default=servers.OURS_CMD,
                        help="command template of our node; placeholders {python} {host} "
                             "{port} {mb} {item_size} (default: %(default)s)")
    common.add_argument("--memcached-cmd", default=servers.MEMCACHED_CMD,
                        help="command template of the baseline (default: %(default)s)")
    common.add_argument("--self-check", action="store_true",
                        help="run memcached as 'ours' too: validates the harness")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="print the traceback of a failed run")
    common.add_argument("--no-save", action="store_true",
                        help="print only: leave latest.json, plots and RESULTS.md alone")
    c = sub.add_parser("compare", parents=[common], help="throughput and memory, A/B vs memcached")
    c.add_argument("--seconds", type=float, default=5.0, help="seconds per run (default 5)")
    c.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    c.add_argument("--workload", nargs="+", choices=list(workloads.ALL), metavar="NAME",
                   default=workloads.DEFAULT, help="workloads (default: all; see `list`)")
    c.add_argument("--slap-threads", type=int, default=1,
                   help="memcaslap threads (default 1: one core for the load, one for the server)")
    m = sub.add_parser("memory", parents=[common], help="memory workloads only")
    m.add_argument("--mode", choices=("inproc", "node"), default="inproc")
    m.add_argument("--workload", nargs="+", choices=[w.name for w in workloads.MEMORY],
                   metavar="NAME", default=[w.name for w in workloads.MEMORY])
    sub.add_parser("list", help="list the workloads")
    return p.parse_args(argv)


def run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # A pipe or a log gets a wide table rather than 80 columns of wrapped cells.
    console = Console(width=None if sys.stdout.isatty() else 132)
    baseline = ServerSpec("memcached", args.memcached_cmd)
    if args.self_check:
        ours, ours_label = ServerSpec("memcached-as-ours", args.memcached_cmd), "memcached (self)"
    else:
        ours, ours_label = ServerSpec("ours", args.ours_cmd), "ours"
    mode = "node" if args.cmd == "compare" else args.mode
    if mode == "inproc":
        ours_label = "ours (inproc)"
    selected = [workloads.ALL[n] for n in args.workload]
    thr = [w for w in selected if w.kind != "memory"]
    mem = [w for w in selected if w.kind == "memory"]
    rounds = getattr(args, "rounds", 0)
    seconds = getattr(args, "seconds", 0.0)
    if thr and not memcaslap.available() and any(w.kind == "slap" for w in thr):
        console.print("[red]memcaslap not found: run `make sysdeps` (libmemcached-tools)[/]")
        return 2

    mach = report.machine()
    started = time.monotonic()
    results: dict = {"throughput": {}, "memory": {}}
    rows: list[Row] = []
    errors: list[str] = []
    total = len(thr) * rounds * 2 + len(mem) * 2
    progress = Progress(TextColumn("{task.description:<42}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    with progress:
        task = progress.add_task("starting", total=total)

        def step(desc: str, fn):
            progress.update(task, description=desc)
            try:
                return fn()
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - one failing run must not sink the others
                errors.append(f"{desc}: {e}")
                console.print(f"[red]{desc} failed:[/] {e}")
                if getattr(args, "verbose", False):
                    traceback.print_exc()
                return {"error": str(e)}
            finally:
                progress.advance(task)

        for w in thr:
            runs: dict[str, list[dict]] = {"memcached": [], "ours": []}
            for rnd in range(rounds):
                for side, spec in (("memcached", baseline), ("ours", ours)):
                    runs[side].append(step(f"{w.name} {rnd + 1}/{rounds} {side}",
                                           lambda w=w, spec=spec: compare.run_once(
                                               w, spec, seconds, args.slap_threads)))
            med = {side: compare.medians(r) for side, r in runs.items()}
            results["throughput"][w.name] = {
                "description": w.description, "runs": runs, "median": med,
                "spread": {side: {m: compare.spread(r, m) for m in compare.METRICS}
                           for side, r in runs.items()},
                "paired_ratio": {m: compare.paired_ratio(runs["memcached"], runs["ours"], m)
                                 for m in compare.METRICS}}
            for metric in compare.METRICS:
                target = ""
                if w.name in THROUGHPUT_TARGETS:
                    target = CPU_TARGETS.get(metric, "")
                rows.append(make_row(w.name, metric, METRIC_LABELS[metric],
                                     med["memcached"][metric], med["ours"][metric], target))

        ranks = large_ranks = None
        for w in mem:
            if w.name == "zipf-hit" and ranks is None:
                from bench import zipf
                progress.update(task, description="zipf-hit: generating trace")
                ranks = zipf.trace()
            if w.name == "zipf-large-hit":
                from bench import zipf
                progress.update(task, description="zipf-large-hit: generating trace")
                large_ranks = zipf.large_trace()
            res = {}
            for side, spec in (("memcached", baseline), ("ours", ours)):
                if side == "ours" and mode == "inproc":
                    res[side] = step(f"{w.name} ours (inproc)", lambda w=w: memory.inproc(w.name))
                else:
                    res[side] = step(f"{w.name} {side}",
                                     lambda w=w, spec=spec, ranks=(
                                         large_ranks if w.name == "zipf-large-hit" else ranks):
                                     _memory_on_server(w, spec, ranks))
            results["memory"][w.name] = {"description": w.description, **res}
            for key, metric, label, target, note in MEMORY_METRICS[w.name]:
                rows.append(make_row(w.name, metric, label, res["memcached"].get(key, math.nan),
                                     res["ours"].get(key, math.nan), target, note))

    command = "python -m bench " + " ".join(shlex.quote(a) for a in (sys.argv[1:] or [args.cmd]))
    title = (f"pycache_cluster vs memcached — {args.cmd}"
             + (f" ({rounds} rounds × {seconds:g} s)" if thr else f" (mode {mode})"))
    console.print(report.rich_table(rows, title, ours_label))
    notes = _notes(args, results, thr, seconds, rounds, errors)
    ours_how = ("`pycache_cluster.store.Store` in a fresh interpreter (bench/inproc.py)"
                if mode == "inproc" else f"`{ours.template}`")
    notes.insert(0, f"Servers: memcached `{baseline.template}`; {ours_label} {ours_how}.")
    for n in notes:
        console.print(f"- {n}", highlight=False)
    for e in errors:
        console.print(f"[red]error:[/] {e}")
    elapsed = time.monotonic() - started
    console.print(f"took {elapsed:.0f} s; load average {mach['loadavg'][0]:.2f} at start")
    if not args.no_save:
        section = "compare" if args.cmd == "compare" else f"memory-{mode}"
        payload = {"date": report.now_utc(), "commit": report.git_commit(), "machine": mach,
                   "command": command, "ours": ours_label, "ours_cmd": ours.template,
                   "memcached_cmd": baseline.template, "seconds": seconds, "rounds": rounds,
                   "elapsed_s": elapsed, "rows": rows, "results": results, "errors": errors}
        paths = [report.save_json(section, payload)]
        paths += report.plot_ratios(rows, section)
        paths.append(report.update_results_md(section, title, command, mach, rows, ours_label,
                                              notes))
        console.print("wrote " + ", ".join(str(p.relative_to(report.BENCH_DIR.parent))
                                           for p in paths))
    return 1 if errors else 0


def _memory_on_server(w, spec: ServerSpec, ranks) -> dict:
    with spec.process(w.mb) as server:
        if w.name == "rss-per-item":
            return memory.server_rss_per_item(server)
        if w.name == "items-held":
            return memory.server_items_held(server)
        if w.name == "zipf-hit":
            return memory.server_zipf(server, ranks)
        if w.name == "zipf-large-hit":
            return memory.server_zipf_large(server, ranks)
        if w.name.startswith("flood-"):
            return memory.server_flood(server)
    raise ValueError(w.name)


def _notes(args, results, thr, seconds, rounds, errors) -> list[str]:
    notes = []
    if thr:
        notes.append(f"{rounds} alternating rounds of {seconds:g} s per workload, medians; "
                     f"memcaslap -T {args.slap_threads}, a fresh server (-m "
                     f"{workloads.THROUGHPUT_MB}) per run.")
        worst = max(((w, s, m, v) for w, r in results["throughput"].items()
                     for s, ms in r["spread"].items() for m, v in ms.items()
                     if m == "cpu_us_per_op" and not math.isnan(v)),
                    key=lambda t: t[3], default=None)
        if worst:
            paired = ", ".join(
                f"{w} {r['paired_ratio']['cpu_us_per_op']:.3f}×"
                for w, r in results["throughput"].items()
                if not math.isnan(r["paired_ratio"]["cpu_us_per_op"]))
            notes.append(f"Noise: the widest spread of CPU µs/op across rounds was "
                         f"{worst[3]:.0%} ({worst[1]}, {worst[0]}). Median of the per-round "
                         f"(back-to-back) CPU µs/op ratios: {paired}.")
        # The load generator's count against the server's own (cmd_get counts each key of a
        # multi-get, as memcaslap does): a server that dropped or miscounted requests shows here.
        dev = [abs(r["server_counted_ops"] - r["ops"]) / r["ops"]
               for w in results["throughput"].values() for runs in w["runs"].values()
               for r in runs if r.get("server_counted_ops") is not None and r.get("ops")]
        if dev:
            notes.append(f"Client vs server (stats cmd_get+cmd_set) operation counts agree "
                         f"within {max(dev):.2%} in every run.")
    mem = results["memory"]
    if "rss-per-item" in mem:
        r = mem["rss-per-item"]
        notes.append("rss-per-item: (RSS after - RSS before) / curr_items, read once RSS and the "
                     "hash stats are stable and memcached's hash table has grown to its items; "
                     f"memcached {_g(r['memcached'], 'items')} items, "
                     f"ours {_g(r['ours'], 'items')} items.")
    if "items-held" in mem:
        r = mem["items-held"]
        notes.append(f"items-held: {memory.HELD_SETS:,} sets of 14 B keys with values uniform "
                     f"in {memory.HELD_MIN}-{memory.HELD_MAX} B; curr_items afterwards. Mean "
                     f"stored item (stats bytes / curr_items): memcached "
                     f"{_mean_item(r['memcached'])}, ours {_mean_item(r['ours'])} (memcached "
                     f"evicts per slab class, so the classes that got pages first keep "
                     f"their items).")
    if "zipf-hit" in mem:
        from bench import zipf
        notes.append(f"zipf-hit: {zipf.REQUESTS:,} requests over {zipf.KEYS:,} keys, "
                     f"Zipf({zipf.THETA}), values {zipf.MIN_SIZE}-{zipf.MAX_SIZE} B per key; "
                     f"hit ratio from stats over the last {zipf.REQUESTS - zipf.WARMUP:,}.")
    if "zipf-large-hit" in mem:
        from bench import zipf
        notes.append(f"zipf-large-hit: {zipf.LARGE_REQUESTS:,} requests over "
                     f"{zipf.LARGE_KEYS:,} keys, Zipf({zipf.THETA}), values "
                     f"{zipf.LARGE_MIN_SIZE}-{zipf.LARGE_MAX_SIZE:,} B per key (log-uniform); "
                     f"hit ratio from stats over the last "
                     f"{zipf.LARGE_REQUESTS - zipf.LARGE_WARMUP:,}.")
    floods = [n for n in mem if n.startswith("flood-")]
    if floods:
        notes.append(f"{', '.join(floods)}: bench/flood.py, {memory.FLOOD_SECONDS:g} s of sets "
                     "of 10 B-1 MB values (log-uniform) over 200,000 keys from 8 connections "
                     "waiting for each reply; RSS read every second; idle RSS is the fresh "
                     "server's before the first set (ours: the interpreter, ~26 MiB). "
                     + "; ".join(f"{n}: idle memcached {_mib(mem[n]['memcached'], 'baseline_rss')}"
                                 f", ours {_mib(mem[n]['ours'], 'baseline_rss')}"
                                 for n in floods) + ".")
    if errors:
        notes.append(f"{len(errors)} run(s) failed; see latest.json.")
    return notes


def _mib(d: dict, k: str) -> str:
    v = d.get(k)
    return f"{v / (1 << 20):.1f} MiB" if isinstance(v, (int, float)) else "?"


def _mean_item(d: dict) -> str:
    items, nbytes = d.get("items"), d.get("stats_bytes")
    return f"{nbytes / items:,.0f} B" if items and nbytes else "?"


def _g(d: dict, k: str) -> str:
    v = d.get(k)
    return f"{v:,}" if isinstance(v, int) else "?"


if __name__ == "__main__":
    sys.exit(main())
