"""`pycache-cluster status` and `check`: what every member of a cluster is doing, asked over
the protocol.

One node is named; its `cluster members` and `cluster ring` say who else there is and where
their client ports are, and each ring member is asked, on one connection, `stats`, `stats
cluster`, `stats locks` and `cluster ring` (its own ring checksum, its status and hand-over
progress), twice `interval` seconds apart for its rate of operations. A node without gossip
(`cluster` answers ERROR) is shown alone. Members that cannot be reached are listed with the
error, never left out. Plain sockets and blocking reads: a tool for people and scripts, not a
node. ops/check.py judges the view.
"""
from __future__ import annotations

import socket
import ssl
import time

TIMEOUT = 3.0
# Operations counted for ops/s: memcached's per-command counters (a get counts its keys).
OPS = ("cmd_get", "cmd_set", "cmd_touch", "cmd_flush", "delete_hits", "delete_misses",
       "incr_hits", "incr_misses", "decr_hits", "decr_misses")


def ask(host: str, port: int, request: str, timeout: float = TIMEOUT,
        tls: ssl.SSLContext | None = None) -> list[str]:
    """The lines of one reply ending in END (or ERROR: the command is unknown there)."""
    return ask_many(host, port, [request], timeout, tls)[0]


def ask_many(host: str, port: int, requests: list[str], timeout: float = TIMEOUT,
             tls: ssl.SSLContext | None = None) -> list[list[str]]:
    """Several such replies, the requests pipelined on one connection."""
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            (tls.wrap_socket(raw, server_hostname=host) if tls else raw) as s:
        s.sendall(b"".join(r.encode() + b"\r\n" for r in requests))
        buf, replies, lines = b"", [], []
        while len(replies) < len(requests):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"{host}:{port} closed the connection")
            buf += chunk
            *done, buf = buf.split(b"\r\n")
            for line in done:
                text = line.decode(errors="replace")
                lines.append(text)
                if text in ("END", "ERROR") or text.startswith(("CLIENT_ERROR",
                                                                "SERVER_ERROR")):
                    replies.append(lines)
                    lines = []
    return replies


def parse_stats(lines: list[str]) -> dict[str, int | float | str]:
    out: dict[str, int | float | str] = {}
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = _number(parts[2])
    return out


def _number(text: str) -> int | float | str:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def split_addr(addr: str, default_port: int = 11211) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        return addr.strip("[]"), default_port
    return host.strip("[]"), int(port)


def discover(host: str, port: int, tls: ssl.SSLContext | None = None) -> dict:
    """{cluster, ring, members: [{name, state, gossip_address, address, weight, share}]}."""
    members = ask(host, port, "cluster members", tls=tls)
    if members == ["ERROR"]:
        return {"cluster": False, "ring": None,
                "members": [{"name": f"{host}:{port}", "state": "alive", "gossip_address": None,
                             "address": f"{host}:{port}", "weight": 1, "share": 1.0}]}
    out = {}
    for line in members:
        parts = line.split()
        if len(parts) == 5 and parts[0] == "MEMBER":
            out[parts[1]] = {"name": parts[1], "state": parts[3], "gossip_address": parts[2],
                             "address": None, "weight": None, "share": 0.0}
    ring = {}
    for line in ask(host, port, "cluster ring", tls=tls):
        parts = line.split()
        if parts and parts[0] == "RING":
            ring = dict(p.split("=", 1) for p in parts[1:])
            ring = {k: (v if k == "checksum" else int(v)) for k, v in ring.items()
                    if k in ("epoch", "checksum", "vnodes", "nodes")}   # replication apart
        elif parts and parts[0] == "NODE":
            fields = dict(p.split("=", 1) for p in parts[3:])
            m = out.setdefault(parts[1], {"name": parts[1], "state": "?",
                                          "gossip_address": None})
            m.update(address=parts[2], weight=int(fields["weight"]),
                     share=float(fields["share"]))
    return {"cluster": True, "ring": ring, "members": sorted(out.values(),
                                                             key=lambda m: m["name"])}


MEMBER_REQUESTS = ["stats", "stats cluster", "stats locks", "cluster ring"]


def _sample(member: dict, tls: ssl.SSLContext | None) -> tuple[float, dict, dict] | str:
    """(when, stats, stats cluster + stats locks + this member's `cluster ring` head) of one
    member, or why it could not be asked."""
    if member["address"] is None:
        return "not in the ring" if member["state"] in ("alive", "suspect") else "not serving"
    host, port = split_addr(member["address"])
    try:
        when = time.monotonic()
        general, cluster, locks, ring = ask_many(host, port, MEMBER_REQUESTS, tls=tls)
        own = {}
        if ring and ring[0].startswith("RING "):
            own = {f"own_{k}": _number(v) for k, v in
                   (p.split("=", 1) for p in ring[0].split()[1:])}
        extra = {**parse_stats(cluster), **parse_stats(locks), **own} \
            if cluster != ["ERROR"] else parse_stats(locks)
        return when, parse_stats(general), extra
    except (OSError, ConnectionError, ValueError) as e:
        return f"unreachable: {e}"


def collect(node: str, interval: float = 1.0, previous: dict | None = None,
            tls: ssl.SSLContext | None = None, rates: bool = True) -> dict:
    """The whole status of the cluster `node` belongs to. Rates come from `previous` (the
    last collect(), e.g. under --watch) or from a second sample `interval` seconds later
    (none without `rates`: `check` samples once)."""
    host, port = split_addr(node)
    view = discover(host, port, tls)
    first = {m["name"]: _sample(m, tls) for m in view["members"]}
    if not rates:
        earlier, now = {}, first
    elif previous is None:
        time.sleep(interval)
        earlier, now = first, {m["name"]: _sample(m, tls) for m in view["members"]}
    else:
        earlier, now = previous.get("_samples", {}), first
    for m in view["members"]:
        m.update(describe(now[m["name"]], earlier.get(m["name"])))
    view["node"] = node
    view["replication"] = _replication(now)
    view["totals"] = _totals(view["members"])
    view["_samples"] = now
    return view


def describe(sample, before) -> dict:
    """One member's figures from its latest sample and, for rates, the one before."""
    if isinstance(sample, str):
        return {"reachable": False, "error": sample}
    when, st, cl = sample
    hits, misses = st["get_hits"], st["get_misses"]
    ops_per_sec = None
    if isinstance(before, tuple) and when > before[0]:
        ops_per_sec = round(max(0, sum(st[k] - before[1][k] for k in OPS)) / (when - before[0]),
                            1)
    return {
        "reachable": True, "error": None, "version": st.get("pycache_version"),
        "uptime": st["uptime"], "connections": st["curr_connections"],
        "items": st["curr_items"], "bytes": st["bytes"], "limit_bytes": st["limit_maxbytes"],
        "memory_ratio": round(st["bytes"] / st["limit_maxbytes"], 4),
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
        "ops_per_sec": ops_per_sec, "evictions": st["evictions"],
        "hints_pending": cl.get("hints_pending", 0),
        "hints_pending_bytes": cl.get("hints_pending_bytes", 0),
        "replica_writes_failed": cl.get("replica_writes_failed", 0),
        "quorum_failures": cl.get("quorum_failures", 0),
        "read_repairs": cl.get("read_repairs", 0),
        "ring_epoch": cl.get("ring_epoch"),
        "ring_checksum": cl.get("ring_checksum"),
        "ring_nodes": cl.get("ring_nodes"),
        "lock_ring_checksum": cl.get("lock_ring_checksum"),
        "lock_ring_nodes": cl.get("lock_ring_nodes"),
        "status": cl.get("own_status"),
        "hints_pending_members": cl.get("hints_pending_members", 0),
        "handover": {k: cl.get(f"handover_{k}", 0) for k in
                     ("running", "walks", "keys_sent", "bytes_sent", "keys_dropped",
                      "failures")},
        "anti_entropy": {k: cl.get(f"anti_entropy_{k}", 0) for k in
                         ("rounds", "failures", "keys_pushed", "last_round_ms")},
    }


def _replication(samples: dict) -> dict | None:
    for sample in samples.values():
        if isinstance(sample, tuple) and "replicas" in sample[2]:
            cl = sample[2]
            return {k: cl[k] for k in ("replicas", "write_quorum", "read_quorum")}
    return None


def _totals(members: list[dict]) -> dict:
    up = [m for m in members if m.get("reachable")]
    return {"members": len(members), "reachable": len(up),
            **{k: sum(m[k] for m in up) for k in ("items", "bytes", "limit_bytes",
                                                   "evictions", "hints_pending")},
            "ops_per_sec": round(sum(m["ops_per_sec"] or 0 for m in up), 1)}


def public(view: dict) -> dict:
    """The view without its raw samples (what --json prints)."""
    return {k: v for k, v in view.items() if not k.startswith("_")}
