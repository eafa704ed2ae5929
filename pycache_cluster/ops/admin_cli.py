"""`pycache-cluster leave|forget|repair`: the cluster commands of cluster/admin.py from a shell.

Each sends one command to the node named by --node and prints its reply; exit 0 on OK, 1
otherwise. `leave --wait` waits until the member that leaves is gone: the local node's port
closed (a Kubernetes preStop hook leaves and waits this way), or the member listed as left.
"""
from __future__ import annotations

import argparse
import socket
import sys
import time

from pycache_cluster.ops.status import ask, split_addr


def add_parsers(sub) -> None:
    for name, helptext in (
            ("leave", "a graceful leave of this node or of a named member (needs -A there)"),
            ("forget", "drop a member that is dead for good from the rings"),
            ("repair", "run an anti-entropy round with every peer now")):
        p = sub.add_parser(name, help=helptext, description=helptext + ".")
        p.add_argument("--node", default="127.0.0.1:11211", metavar="HOST:PORT",
                       help="the member to ask (default: %(default)s)")
        if name == "leave":
            p.add_argument("member", nargs="?", help="who leaves (default: the --node)")
            p.add_argument("--wait", action="store_true",
                           help="return once the member is gone")
            p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                           help="longest --wait (default: %(default)s)")
        if name == "forget":
            p.add_argument("member", help="the dead member's name")
        p.add_argument("--tls", action="store_true", help="talk TLS to the node (-Z)")
        p.add_argument("--tls-ca", metavar="PEM")
        p.add_argument("--tls-cert", metavar="PEM")
        p.add_argument("--tls-key", metavar="PEM")


def _one_line(host: str, port: int, request: str, tls, timeout: float = 30.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            (tls.wrap_socket(raw, server_hostname=host) if tls else raw) as s:
        s.sendall(request.encode() + b"\r\n")
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").strip()


def run(args: argparse.Namespace) -> int:
    from pycache_cluster.ops.status_view import tls_context

    tls = tls_context(args)
    host, port = split_addr(args.node)
    member = getattr(args, "member", None)
    request = f"cluster {args.command}" + (f" {member}" if member else "")
    try:
        reply = _one_line(host, port, request, tls)
    except OSError as e:
        print(f"pycache-cluster {args.command}: cannot ask {args.node}: {e}", file=sys.stderr)
        return 1
    print(reply)
    if reply != "OK":
        return 1
    if args.command == "leave" and args.wait:
        return 0 if _wait_gone(host, port, member, tls, args.timeout) else 1
    return 0


def _wait_gone(host: str, port: int, member: str | None, tls, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if member is None:
                socket.create_connection((host, port), timeout=2).close()
            else:
                lines = ask(host, port, "cluster members", tls=tls)
                states = {p[1]: p[3] for p in (line.split() for line in lines)
                          if len(p) == 5 and p[0] == "MEMBER"}
                if states.get(member, "left") in ("left", "dead"):
                    return True
        except OSError:
            if member is None:
                return True     # the node's port is closed: it is gone
        time.sleep(0.2)
    print(f"pycache-cluster leave: still there after {timeout:.0f} s", file=sys.stderr)
    return False
