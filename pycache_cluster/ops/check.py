"""`pycache-cluster check`: is the cluster whole? Exit 0 when all is well, 1 on warnings, 2 on
errors, as redis-cli's `--cluster check` and nodetool report.

Errors: a ring member that cannot be asked, members whose ring checksums differ (they route
keys differently), lock ring checksums that differ (lock grants are refused between them),
fewer ring nodes than N (keys have fewer copies than promised; with W = N writes fail).
Warnings: dead or suspect members (a dead one keeps its lock names until it is back or
forgotten), a member joining or leaving, a hand-over running, hints pending.
`status` prints the same findings under its table and exits the same way.
"""
from __future__ import annotations

import argparse
import json
import sys

OK, WARNING, ERROR = 0, 1, 2
LABEL = {OK: "OK", WARNING: "WARNING", ERROR: "ERR"}


def findings(view: dict) -> list[tuple[int, str]]:
    """(level, sentence) for what is wrong, or one OK line when nothing is."""
    out: list[tuple[int, str]] = []
    members = view["members"]
    if not view["cluster"]:
        m = members[0]
        if not m.get("reachable"):
            return [(ERROR, f"{m['name']}: {m['error']}")]
        return [(OK, f"{m['name']} runs alone (no gossip): nothing to compare")]
    ring = [m for m in members if m["address"] is not None]
    up = [m for m in ring if m.get("reachable")]
    for m in ring:
        if not m.get("reachable"):
            out.append((ERROR, f"ring member {m['name']} cannot be asked: {m['error']}"))
    for field, what in (("ring_checksum", "ring"), ("lock_ring_checksum", "lock ring")):
        seen = {m[field] for m in up}
        if len(seen) > 1:
            detail = ", ".join(f"{m['name']} {m[field]}" for m in up)
            out.append((ERROR, f"members disagree on the {what} checksum: {detail}"))
    repl = view.get("replication") or {}
    n = repl.get("replicas", 1)
    nodes = (view.get("ring") or {}).get("nodes", len(ring))
    if nodes < n:
        out.append((ERROR, f"the ring has {nodes} node(s) but N={n}: keys have fewer than "
                    f"N copies" + (" and writes fail (W=N)" if repl.get("write_quorum") == n
                                   else "")))
    for m in members:
        if m["state"] == "dead":
            out.append((WARNING, (f"member {m['name']} is dead: its lock names wait for it; "
                        f"if it is gone for good, `pycache-cluster forget {m['name']}`")))
        elif m["state"] == "suspect":
            out.append((WARNING, f"member {m['name']} is suspect"))
    for m in up:
        if m.get("status") in ("joining", "leaving"):
            out.append((WARNING, f"member {m['name']} is {m['status']}"))
        ho = m.get("handover") or {}
        if ho.get("running"):
            out.append((WARNING, (f"hand-over running on {m['name']}: {ho['keys_sent']} key(s)"
                        f" sent in {ho['walks']} walk(s), {ho['failures']} failed")))
        if m.get("hints_pending"):
            out.append((WARNING, (f"{m['name']} holds {m['hints_pending']} hint(s) for owners "
                        f"that missed writes ({m['hints_pending_members']} for ring members)")))
    if not out:
        checksum = up[0]["ring_checksum"] if up else "-"
        out.append((OK, (f"{len(up)} member(s) agree on ring {checksum}, {nodes} ring node(s) "
                    f">= N={n}, no hand-over running, no hints pending")))
    return out


def level(found: list[tuple[int, str]]) -> int:
    return max(lvl for lvl, _ in found)


def lines(found: list[tuple[int, str]]) -> list[str]:
    return [f"[{LABEL[lvl]}] {text}" for lvl, text in found]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="check the cluster is whole (exit 0 ok, 1 warn, 2 error)",
                       description="Ask every member and judge: ring and lock ring checksums "
                       "agree, at least N ring nodes, no dead, suspect, joining or leaving "
                       "member, no hand-over running, no hints pending. Exit 0 when all is "
                       "well, 1 on warnings, 2 on errors.")
    p.add_argument("--node", default="127.0.0.1:11211", metavar="HOST:PORT",
                   help="any member's client address (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--tls", action="store_true", help="talk TLS to the members (-Z)")
    p.add_argument("--tls-ca", metavar="PEM", help="CA to check members' certificates with")
    p.add_argument("--tls-cert", metavar="PEM", help="client certificate")
    p.add_argument("--tls-key", metavar="PEM", help="its private key")
    return p


def run(args: argparse.Namespace) -> int:
    from pycache_cluster.ops.status import collect, public
    from pycache_cluster.ops.status_view import tls_context

    try:
        view = collect(args.node, tls=tls_context(args), rates=False)
    except (OSError, ConnectionError) as e:
        found = [(ERROR, f"cannot ask {args.node}: {e}")]
        view = None
    else:
        found = findings(view)
    if args.json:
        print(json.dumps({"exit": level(found), "findings": [
            {"level": LABEL[lvl], "text": text} for lvl, text in found],
            "view": public(view) if view else None}, indent=2, sort_keys=True))
    else:
        print("\n".join(lines(found)), file=sys.stdout)
    return level(found)
