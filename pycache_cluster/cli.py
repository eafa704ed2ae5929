"""Command line: `pycache-cluster serve` with memcached's flags (serve_args.py), and the
operator's tools: `status`, `check`, `leave`, `health`."""
from __future__ import annotations

import argparse
import sys

from pycache_cluster import MEMCACHED_VERSION, __version__
from pycache_cluster.config import Config
from pycache_cluster.memcached_options import ACCEPTED
from pycache_cluster.memcached_options import parse as parse_suboptions
from pycache_cluster.serve_args import ENV, _env_default, add_serve

__all__ = ["ENV", "build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pycache-cluster",
        description="The memcached you can cluster: a memcached-compatible cache node.")
    parser.add_argument("-V", "--version", action="version",
                        version=f"pycache-cluster {__version__} "
                        f"(memcached {MEMCACHED_VERSION} protocol)")
    sub = parser.add_subparsers(dest="command", metavar="command")
    add_serve(sub)
    from pycache_cluster.ops import admin_cli, check, health, status_view
    status_view.add_parser(sub)
    check.add_parser(sub)
    admin_cli.add_parsers(sub)
    health.add_parser(sub)
    return parser


def _suboptions(args: argparse.Namespace) -> dict:
    """-o's fields (memcached_options.py); the TLS ones default to PYCACHE_SSL_*, -o wins."""
    d = Config()
    out = {field: _env_default(field, conv, getattr(d, field))
           for field, conv in (ACCEPTED[n] for n in ACCEPTED if n.startswith("ssl_"))}
    try:
        out.update(parse_suboptions(args.extended))
    except ValueError as e:
        print(e, file=sys.stderr)
        raise SystemExit(2) from None
    return out


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(tls=args.tls, **_suboptions(args), port=args.port, listen=args.listen, memory_limit_mb=args.memory_limit_mb,
                  conn_limit=args.conn_limit, max_item_size=args.max_item_size,
                  udp_port=args.udp_port, verbosity=args.verbosity or 0,
                  enable_shutdown=args.enable_shutdown, metrics_port=args.metrics_port,
                  sasl=args.sasl, sasl_pwdb=args.sasl_pwdb,
                  auth_file=args.auth_file,
                  prefix_delimiter=args.prefix_delimiter or ":",
                  detail_enabled=args.prefix_delimiter is not None,
                  gossip_port=args.gossip_port,
                  node_name=args.node_name, join=args.join,
                  cluster_key_file=args.cluster_key_file, gossip_preset=args.gossip_preset,
                  advertise_addr=args.advertise_addr, weight=args.weight, vnodes=args.vnodes,
                  zone=args.zone,
                  forward_timeout=args.forward_timeout, peer_links=args.peer_links,
                  replicas=args.replicas, write_quorum=args.write_quorum,
                  read_quorum=args.read_quorum, tombstone_ttl=args.tombstone_ttl,
                  handover_rate=args.handover_rate, leave_timeout=args.leave_timeout,
                  anti_entropy_interval=args.anti_entropy_interval,
                  lock_max_ttl=args.lock_max_ttl, lock_drift=args.lock_drift,
                  lock_limit=args.lock_limit, lock_state_dir=args.lock_state_dir,
                  lock_wait_grace=args.lock_wait_grace,
                  flush_enabled=args.flush_enabled, evictions=args.evictions,
                  dump_enabled=args.dump_enabled, watch_enabled=args.watch_enabled,
                  user=args.user, daemon=args.daemon, pidfile=args.pidfile,
                  coredumps=args.coredumps, lock_memory=args.lock_memory,
                  backlog=args.backlog, unix_socket=args.unix_socket,
                  unix_mask=args.unix_mask)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "health":
        args.serve_flags = rest         # the node's own serve flags, as it was started
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "status":
        from pycache_cluster.ops.status_view import run as status
        return status(args)
    if args.command == "check":
        from pycache_cluster.ops.check import run as check
        return check(args)
    if args.command in ("leave", "forget", "repair"):
        from pycache_cluster.ops.admin_cli import run as admin
        return admin(args)
    if args.command == "health":
        from pycache_cluster.ops.health import run as health
        return health(args)
    if args.command != "serve":
        parser.print_help()
        return 2
    cfg = config_from_args(args)
    try:
        cfg.validate()
    except ValueError as e:
        print(f"pycache-cluster: {e}", file=sys.stderr)
        return 2
    from pycache_cluster.node import run
    return run(cfg)
