"""The `status` sub-command: its flags, its screen (rich), its JSON, and --watch.

The screen is one table, a row per member, with the ring and replication settings in the
title and the cluster's totals in the last row, then what `check` finds (ops/check.py);
--json prints the same figures and findings for scripts (pycache_cluster/ops/status.py
builds them); --watch redraws every interval until Ctrl-C. The exit status is check's: 0 all
well, 1 warnings, 2 errors (a seed that cannot be asked included).
"""
from __future__ import annotations

import argparse
import json
import sys

from pycache_cluster.ops import check
from pycache_cluster.ops.status import collect, public

STATE_STYLE = {"alive": "green", "suspect": "yellow", "dead": "red", "left": "dim"}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("status", help="show every member of a cluster",
                       description="Ask one node who the members are, then each member its "
                       "stats: state, address, ring share, items, memory, hit ratio, "
                       "operations per second, evictions and replication hints.")
    p.add_argument("--node", default="127.0.0.1:11211", metavar="HOST:PORT",
                   help="any member's client address (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between samples (rates, --watch) (default: %(default)s)")
    p.add_argument("--tls", action="store_true", help="talk TLS to the members (-Z)")
    p.add_argument("--tls-ca", metavar="PEM", help="CA to check members' certificates with "
                   "(with --tls; default: the system's)")
    p.add_argument("--tls-cert", metavar="PEM", help="client certificate, for members with "
                   "ssl_verify_mode >= 1")
    p.add_argument("--tls-key", metavar="PEM", help="its private key")
    return p


def tls_context(args):
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    import ssl

    ctx = ssl.create_default_context(cafile=args.tls_ca)
    if args.tls_cert:
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return ctx


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    # Piped or captured, the table keeps its width rather than an 80-column guess.
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        args.tls_ctx = tls_context(args)
        if not args.watch:
            view = collect(args.node, args.interval, tls=args.tls_ctx)
            found = check.findings(view)
            if args.json:
                print(json.dumps(_document(view, found), indent=2, sort_keys=True))
            else:
                console.print(render(view))
                console.print("\n".join(check.lines(found)), markup=False, highlight=False)
            return check.level(found)
        return _watch(args, console)
    except BrokenPipeError:     # `| head`
        return 0
    except (OSError, ConnectionError) as e:
        print(f"pycache-cluster status: cannot ask {args.node}: {e}", file=sys.stderr)
        return check.ERROR
    except KeyboardInterrupt:
        return 0


def _watch(args, console) -> int:
    import time

    from rich.live import Live

    view = collect(args.node, args.interval, tls=args.tls_ctx)
    if args.json:
        while True:     # one JSON document per line, for `jq` and friends
            print(json.dumps(_document(view, check.findings(view)), sort_keys=True),
                  flush=True)
            time.sleep(args.interval)
            view = collect(args.node, args.interval, previous=view, tls=args.tls_ctx)
    with Live(render(view), console=console, auto_refresh=False) as live:
        while True:
            time.sleep(args.interval)
            view = collect(args.node, args.interval, previous=view, tls=args.tls_ctx)
            live.update(render(view), refresh=True)


def _document(view: dict, found) -> dict:
    return {**public(view), "findings": [{"level": check.LABEL[lvl], "text": text}
                                         for lvl, text in found],
            "exit": check.level(found)}


def render(view: dict):
    from rich.table import Table

    ring, repl = view.get("ring"), view.get("replication")
    title = f"pycache-cluster via {view['node']}"
    if ring:
        title += f" - ring epoch {ring.get('epoch')}, {ring.get('nodes')} owners"
    if repl:
        title += f", N={repl['replicas']} W={repl['write_quorum']} R={repl['read_quorum']}"
    if not view["cluster"]:
        title += " - single node (no gossip)"
    table = Table(title=title, title_justify="left")
    for col, justify in (("member", "left"), ("state", "left"), ("address", "left"),
                         ("share", "right"), ("items", "right"), ("memory", "right"),
                         ("hit ratio", "right"), ("ops/s", "right"), ("evictions", "right"),
                         ("hints", "right"), ("hand-over", "left")):
        table.add_column(col, justify=justify, no_wrap=True)
    for m in view["members"]:
        shown = m["state"] if m.get("status") in (None, "active") else \
            f"{m['state']}, {m['status']}"
        state = f"[{STATE_STYLE.get(m['state'], '')}]{shown}[/]"
        address = m["address"] or m.get("gossip_address") or "-"
        if not m.get("reachable"):
            table.add_row(m["name"], state, address, _pct(m.get("share")), m["error"],
                          "", "", "", "", "", "")
            continue
        table.add_row(m["name"], state, address, _pct(m["share"]), f"{m['items']:,}",
                      f"{_size(m['bytes'])} / {_size(m['limit_bytes'])}", _pct(m["hit_ratio"]),
                      _num(m["ops_per_sec"]), f"{m['evictions']:,}", _hints(m), _handover(m))
    t = view["totals"]
    table.add_section()
    table.add_row(f"total ({t['reachable']}/{t['members']} up)", "", "", "",
                  f"{t['items']:,}", f"{_size(t['bytes'])} / {_size(t['limit_bytes'])}", "",
                  _num(t["ops_per_sec"]), f"{t['evictions']:,}", str(t["hints_pending"]), "")
    return table


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "-" if x is None else f"{x:,.1f}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _handover(m: dict) -> str:
    """Hand-over progress: walking (keys and bytes sent so far) or idle after n walks."""
    ho = m.get("handover")
    if not ho:
        return "-"
    if ho["running"]:
        return f"walking: {ho['keys_sent']:,} keys, {_size(ho['bytes_sent'])} sent"
    failed = f", {ho['failures']} failed" if ho["failures"] else ""
    return f"idle ({ho['walks']} walks{failed})"


def _hints(m: dict) -> str:
    if not m["hints_pending"]:
        return "0"
    return f"{m['hints_pending']} ({_size(m['hints_pending_bytes'])})"
