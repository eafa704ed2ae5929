"""Command line: `pycache-cluster serve` with memcached's flags, and PYCACHE_* environment."""
from __future__ import annotations

import argparse
import os
import sys

from pycache_cluster import __version__
from pycache_cluster.config import Config

# Environment variables (for containers) give defaults; flags on the command line win.
ENV = {
    "port": "PYCACHE_PORT",
    "listen": "PYCACHE_LISTEN",
    "memory_limit_mb": "PYCACHE_MEMORY_LIMIT",
    "conn_limit": "PYCACHE_CONN_LIMIT",
    "max_item_size": "PYCACHE_MAX_ITEM_SIZE",
    "udp_port": "PYCACHE_UDP_PORT",
    "verbosity": "PYCACHE_VERBOSITY",
    "enable_shutdown": "PYCACHE_ENABLE_SHUTDOWN",
}


def parse_size(text: str) -> int:
    """memcached's -I: bytes, or with a k/m suffix (1m = 1048576)."""
    t = str(text).strip().lower()
    mult = 1
    if t.endswith("k"):
        mult, t = 1024, t[:-1]
    elif t.endswith("m"):
        mult, t = 1024 * 1024, t[:-1]
    try:
        n = int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: use bytes, or k/m") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}")
    return n * mult


def parse_udp(text: str) -> int:
    """memcached's -U: a port, 0 or "off" meaning no UDP."""
    t = str(text).strip().lower()
    if t in ("off", "no", "false"):
        return 0
    try:
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid UDP port {text!r}") from None


def _bool(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "on")


def _env_default(field: str, conv, fallback):
    raw = os.environ.get(ENV[field])
    if raw is None or raw == "":
        return fallback
    try:
        return conv(raw)
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise SystemExit(f"pycache-cluster: bad {ENV[field]}={raw!r}: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    d = Config()
    parser = argparse.ArgumentParser(
        prog="pycache-cluster",
        description="The memcached you can cluster: a memcached-compatible cache node.")
    parser.add_argument("--version", action="version",
                        version=f"pycache-cluster {__version__} (memcached 1.6.18 protocol)")
    sub = parser.add_subparsers(dest="command", metavar="command")
    serve = sub.add_parser(
        "serve", help="run a cache node",
        description="Run a cache node speaking memcached's text and meta protocols. Flags "
        "have memcached's names and meanings; each also reads an environment variable "
        "(flag wins).",
        epilog="SIGTERM or SIGINT (and `shutdown` with -A) stop the node cleanly: it stops "
        "accepting, sends the replies already in flight, closes its connections and exits 0.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    serve.add_argument("--version", action="version",
                       version=f"pycache-cluster {__version__} (memcached 1.6.18 protocol)")
    serve.add_argument("-p", "--port", type=int,
                       default=_env_default("port", int, d.port),
                       help=f"TCP port to listen on [env {ENV['port']}]")
    serve.add_argument("-l", "--listen", default=_env_default("listen", str, d.listen),
                       help="interface to listen on; loopback unless you ask for more "
                       f"[env {ENV['listen']}]")
    serve.add_argument("-m", "--memory-limit", type=int, dest="memory_limit_mb",
                       default=_env_default("memory_limit_mb", int, d.memory_limit_mb),
                       help=f"item memory in megabytes [env {ENV['memory_limit_mb']}]")
    serve.add_argument("-c", "--conn-limit", type=int, dest="conn_limit",
                       default=_env_default("conn_limit", int, d.conn_limit),
                       help=f"max simultaneous connections [env {ENV['conn_limit']}]")
    serve.add_argument("-I", "--max-item-size", type=parse_size, dest="max_item_size",
                       default=_env_default("max_item_size", parse_size, d.max_item_size),
                       help="largest item, bytes or with k/m suffix, e.g. 1m "
                       f"[env {ENV['max_item_size']}]")
    serve.add_argument("-U", "--udp-port", type=parse_udp, dest="udp_port",
                       default=_env_default("udp_port", parse_udp, d.udp_port),
                       help=f"UDP port; only 0 (off) is supported [env {ENV['udp_port']}]")
    serve.add_argument("-v", "--verbose", action="count", dest="verbosity",
                       default=_env_default("verbosity", int, d.verbosity),
                       help="verbose (-v errors, -vv every request) "
                       f"[env {ENV['verbosity']}]")
    serve.add_argument("-A", "--enable-shutdown", action="store_true",
                       default=_env_default("enable_shutdown", _bool, d.enable_shutdown),
                       help=f"enable the shutdown command [env {ENV['enable_shutdown']}]")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(port=args.port, listen=args.listen, memory_limit_mb=args.memory_limit_mb,
                  conn_limit=args.conn_limit, max_item_size=args.max_item_size,
                  udp_port=args.udp_port, verbosity=args.verbosity or 0,
                  enable_shutdown=args.enable_shutdown)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
