"""The `serve` sub-command's flags: memcached 1.6.18's names and meanings, PYCACHE_* env."""
from __future__ import annotations

import argparse
import os

from pycache_cluster import __version__
from pycache_cluster.config import GOSSIP_PRESETS, Config
from pycache_cluster.memcached_options import add_refused

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
    "auth_file": "PYCACHE_AUTH_FILE",
    "prefix_delimiter": "PYCACHE_PREFIX_DELIMITER",
    "metrics_port": "PYCACHE_METRICS_PORT",
    "tls": "PYCACHE_TLS",
    "sasl": "PYCACHE_SASL",
    "sasl_pwdb": "PYCACHE_SASL_PWDB",
    "ssl_chain_cert": "PYCACHE_SSL_CHAIN_CERT",
    "ssl_key": "PYCACHE_SSL_KEY",
    "ssl_ca_cert": "PYCACHE_SSL_CA_CERT",
    "ssl_verify_mode": "PYCACHE_SSL_VERIFY_MODE",
    "ssl_min_version": "PYCACHE_SSL_MIN_VERSION",
    "ssl_ciphers": "PYCACHE_SSL_CIPHERS",
    "node_name": "PYCACHE_NODE_NAME",
    "gossip_port": "PYCACHE_GOSSIP_PORT",
    "join": "PYCACHE_JOIN",
    "cluster_key_file": "PYCACHE_CLUSTER_KEY_FILE",
    "gossip_preset": "PYCACHE_GOSSIP_PRESET",
    "advertise_addr": "PYCACHE_ADVERTISE_ADDR",
    "weight": "PYCACHE_WEIGHT",
    "zone": "PYCACHE_ZONE",
    "vnodes": "PYCACHE_VNODES",
    "forward_timeout": "PYCACHE_FORWARD_TIMEOUT",
    "peer_links": "PYCACHE_PEER_LINKS",
    "replicas": "PYCACHE_REPLICAS",
    "write_quorum": "PYCACHE_WRITE_QUORUM",
    "read_quorum": "PYCACHE_READ_QUORUM",
    "tombstone_ttl": "PYCACHE_TOMBSTONE_TTL",
    "handover_rate": "PYCACHE_HANDOVER_RATE",
    "leave_timeout": "PYCACHE_LEAVE_TIMEOUT",
    "anti_entropy_interval": "PYCACHE_ANTI_ENTROPY_INTERVAL",
    "lock_max_ttl": "PYCACHE_LOCK_MAX_TTL",
    "lock_drift": "PYCACHE_LOCK_DRIFT",
    "lock_limit": "PYCACHE_LOCK_LIMIT",
    "lock_state_dir": "PYCACHE_LOCK_STATE_DIR",
    "lock_wait_grace": "PYCACHE_LOCK_WAIT_GRACE",
    "flush_enabled": "PYCACHE_DISABLE_FLUSH_ALL",
    "evictions": "PYCACHE_DISABLE_EVICTIONS",
    "dump_enabled": "PYCACHE_DISABLE_DUMPING",
    "watch_enabled": "PYCACHE_DISABLE_WATCH",
    "user": "PYCACHE_USER",
    "backlog": "PYCACHE_LISTEN_BACKLOG",
    "unix_socket": "PYCACHE_UNIX_SOCKET",
    "unix_mask": "PYCACHE_UNIX_MASK",
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones (an off switch or a derived value says so itself)."""

    def _get_help_string(self, action):
        if action.default is None or action.default == "":
            return action.help
        return super()._get_help_string(action)


def add_serve(sub) -> argparse.ArgumentParser:
    """The `serve` sub-command: memcached's flags (and ours), each with a PYCACHE_* variable."""
    d = Config()
    serve = sub.add_parser(
        "serve", help="run a cache node",
        description="Run a cache node speaking memcached's text, meta and binary protocols. Flags "
        "have memcached's names and meanings; each also reads an environment variable "
        "(flag wins).",
        epilog="SIGTERM or SIGINT (and `shutdown` with -A) stop the node cleanly: a cluster "
        "member first announces its leave (peers list it as left), then the node stops "
        "accepting, sends the replies already in flight, closes its connections and exits 0. "
        "Cluster: --gossip-port turns gossip membership on (without it the node runs alone, "
        "as memcached); `cluster members` then answers one line per member, `MEMBER <name> "
        "<host>:<gossip-port> <state> <incarnation>` (state alive, suspect, dead or left), "
        "then END, and `stats gossip` the protocol's counters. `cluster` with a missing or "
        "unknown sub-command answers ERROR; `cluster members` with arguments answers "
        "CLIENT_ERROR bad command line format.",
        formatter_class=_HelpFormatter)
    serve.add_argument("-V", "--version", action="version",
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
    serve.add_argument("-Y", "--auth-file", dest="auth_file", metavar="FILE",
                       default=_env_default("auth_file", str, d.auth_file),
                       help="memcached's ascii authentication: user:password lines; a client "
                       "first sends `set <key> 0 0 <len>` with `<user> <password>` as the "
                       f"value; default: off [env {ENV['auth_file']}]")
    serve.add_argument("-D", "--prefix-delimiter", dest="prefix_delimiter", metavar="CHAR",
                       default=_env_default("prefix_delimiter", str, None),
                       help="prefix delimiter of `stats detail` (default ':'); giving it "
                       f"turns detail on, as in memcached [env {ENV['prefix_delimiter']}]")
    serve.add_argument("--metrics-port", type=int, dest="metrics_port", metavar="PORT",
                       default=_env_default("metrics_port", int, d.metrics_port),
                       help="serve Prometheus metrics at http://<-l address>:PORT/metrics; "
                       f"default: off [env {ENV['metrics_port']}]")
    serve.add_argument("-Z", "--enable-ssl", action="store_true", dest="tls",
                       default=_env_default("tls", _bool, d.tls),
                       help="TLS on the client port (and peer links); needs -o "
                       f"ssl_chain_cert=...,ssl_key=... [env {ENV['tls']}]")
    serve.add_argument("-S", "--enable-sasl", action="store_true", dest="sasl",
                       default=_env_default("sasl", _bool, d.sasl),
                       help="SASL PLAIN on the binary protocol; text connections are "
                       f"refused [env {ENV['sasl']}]")
    serve.add_argument("--sasl-pwdb", dest="sasl_pwdb", metavar="FILE",
                       default=_env_default("sasl_pwdb", str, d.sasl_pwdb)
                       or os.environ.get("MEMCACHED_SASL_PWDB", ""),
                       help="SASL password file, user:password a line, read at every "
                       f"authentication [env {ENV['sasl_pwdb']} or MEMCACHED_SASL_PWDB]")
    serve.add_argument("-o", "--extended", action="append", default=[], metavar="OPTIONS",
                       help="memcached's comma-separated options; taken: "
                       "ssl_chain_cert=<pem>, ssl_key=<pem>, ssl_ca_cert=<pem>, "
                       "ssl_verify_mode=<0 none, 1 check if given, 2/3 require>, "
                       "ssl_min_version=<0..3: TLS 1.0..1.3, default 2>, ssl_ciphers=<list>, "
                       "idle_timeout=<seconds>, track_sizes, no_lru_crawler, lru_crawler, "
                       "maxconns_fast, modern, hash_algorithm=murmur3, [no_]inline_ascii_resp; "
                       "every other 1.6.18 suboption is refused with the reason "
                       "[env PYCACHE_SSL_CHAIN_CERT, PYCACHE_SSL_KEY, ...]")
    cluster = serve.add_argument_group(
        "cluster membership (gossip)",
        "Off unless --gossip-port is given; the other cluster flags need it.")
    cluster.add_argument("--gossip-port", type=int, dest="gossip_port",
                         default=_env_default("gossip_port", int, d.gossip_port),
                         help="UDP and TCP port for gossip, on the -l address (with -l "
                         "0.0.0.0 the address this host's name resolves to is advertised); "
                         "default: no gossip "
                         f"[env {ENV['gossip_port']}]")
    cluster.add_argument("--node-name", dest="node_name",
                         default=_env_default("node_name", str, d.node_name),
                         help="this node's unique name in the cluster; keep it across "
                         "restarts (default: <hostname>:<port>, the client port -p) "
                         f"[env {ENV['node_name']}]")
    cluster.add_argument("--join", dest="join", metavar="SEEDS",
                         default=_env_default("join", str, d.join),
                         help="members to join, host[:port],... (port defaults to "
                         "--gossip-port; a DNS name joins every address it resolves to); "
                         "retried with backoff until one answers; none: start a cluster "
                         f"[env {ENV['join']}]")
    cluster.add_argument("--cluster-key-file", dest="cluster_key_file", metavar="PATH",
                         default=_env_default("cluster_key_file", str, d.cluster_key_file),
                         help="AES-GCM keyring: one base64 key (16, 24 or 32 bytes) per line, "
                         "the first encrypts, all decrypt; every member needs a common key. "
                         "Without it gossip runs in clear text (a warning at start-up) "
                         f"[env {ENV['cluster_key_file']}]")
    cluster.add_argument("--gossip-preset", dest="gossip_preset", choices=GOSSIP_PRESETS,
                         default=_env_default("gossip_preset", str, d.gossip_preset),
                         help="protocol timers: lan (detection in a few seconds), local "
                         "(one machine, tighter), memberlist (hashicorp/memberlist's LAN "
                         f"defaults) [env {ENV['gossip_preset']}]")
    cluster.add_argument("--advertise-addr", dest="advertise_addr", metavar="HOST",
                         default=_env_default("advertise_addr", str, d.advertise_addr),
                         help="address peers and clients should use to reach this node "
                         "(containers, -l 0.0.0.0); default: the -l address "
                         f"[env {ENV['advertise_addr']}]")
    cluster.add_argument("--weight", type=int, dest="weight",
                         default=_env_default("weight", int, d.weight),
                         help="this node's share of the keys relative to the others, 1..100 "
                         f"[env {ENV['weight']}]")
    cluster.add_argument("--zone", dest="zone", metavar="NAME",
                         default=_env_default("zone", str, d.zone),
                         help="this node's failure domain (rack, zone): a key's N owners "
                         "take at most ceil(N / zones) nodes of one zone "
                         f"[env {ENV['zone']}]")
    cluster.add_argument("--vnodes", type=int, dest="vnodes",
                         default=_env_default("vnodes", int, d.vnodes),
                         help="ring points per unit of weight; give every node the same "
                         f"[env {ENV['vnodes']}]")
    cluster.add_argument("--forward-timeout", type=float, dest="forward_timeout",
                         metavar="SECONDS",
                         default=_env_default("forward_timeout", float, d.forward_timeout),
                         help="how long a request forwarded to its owner may wait before "
                         f"its client gets SERVER_ERROR [env {ENV['forward_timeout']}]")
    cluster.add_argument("--peer-links", type=int, dest="peer_links",
                         default=_env_default("peer_links", int, d.peer_links),
                         help="pipelined connections to each peer, 1..16 "
                         f"[env {ENV['peer_links']}]")
    repl = serve.add_argument_group(
        "replication", "With gossip: every key on its first N owners; see docs/guarantees.md for "
        "what each N/W/R setting guarantees.")
    repl.add_argument("--replicas", type=int, dest="replicas", metavar="N",
                      default=_env_default("replicas", int, d.replicas),
                      help=f"owners per key, 1..16 [env {ENV['replicas']}]")
    repl.add_argument("--write-quorum", type=int, dest="write_quorum", metavar="W",
                      default=_env_default("write_quorum", int, d.write_quorum),
                      help="owners holding a write before it is acknowledged, 1..N "
                      f"[env {ENV['write_quorum']}]")
    repl.add_argument("--read-quorum", type=int, dest="read_quorum", metavar="R",
                      default=_env_default("read_quorum", int, d.read_quorum),
                      help="owners a read asks, the newest answer wins, 1..N "
                      f"[env {ENV['read_quorum']}]")
    repl.add_argument("--tombstone-ttl", type=int, dest="tombstone_ttl", metavar="SECONDS",
                      default=_env_default("tombstone_ttl", int, d.tombstone_ttl),
                      help="how long a deleted key's tombstone keeps older writes out "
                      f"[env {ENV['tombstone_ttl']}]")
    repl.add_argument("--handover-rate", type=int, dest="handover_rate", metavar="BYTES",
                      default=_env_default("handover_rate", int, d.handover_rate),
                      help="bytes/s a hand-over may send after a ring change, 0 unlimited "
                      f"[env {ENV['handover_rate']}]")
    repl.add_argument("--leave-timeout", type=float, dest="leave_timeout", metavar="SECONDS",
                      default=_env_default("leave_timeout", float, d.leave_timeout),
                      help="how long a graceful leave waits for its hand-over "
                      f"[env {ENV['leave_timeout']}]")
    repl.add_argument("--anti-entropy-interval", type=float, dest="anti_entropy_interval",
                      metavar="SECONDS",
                      default=_env_default("anti_entropy_interval", float,
                                           d.anti_entropy_interval),
                      help="seconds between comparisons of this node's replicas with a peer's, "
                      f"0 none [env {ENV['anti_entropy_interval']}]")
    locks = serve.add_argument_group("locks", "Leases with fencing tokens (docs/locks.md).")
    locks.add_argument("--lock-max-ttl", type=float, dest="lock_max_ttl", metavar="SECONDS",
                       default=_env_default("lock_max_ttl", float, d.lock_max_ttl),
                       help="longest lease; a restarted node or a new owner waits this long "
                       f"before it votes [env {ENV['lock_max_ttl']}]")
    locks.add_argument("--lock-drift", type=float, dest="lock_drift", metavar="RHO",
                       default=_env_default("lock_drift", float, d.lock_drift),
                       help=f"clock-rate bound between machines [env {ENV['lock_drift']}]")
    locks.add_argument("--lock-limit", type=int, dest="lock_limit",
                       default=_env_default("lock_limit", int, d.lock_limit),
                       help=f"lock names per node [env {ENV['lock_limit']}]")
    locks.add_argument("--lock-state-dir", dest="lock_state_dir", metavar="DIR",
                       default=_env_default("lock_state_dir", str, d.lock_state_dir),
                       help="where the lock token mark persists (fsync'd), so tokens never "
                       f"go back across restarts [env {ENV['lock_state_dir']}]")
    locks.add_argument("--lock-wait-grace", type=float, dest="lock_wait_grace",
                       metavar="SECONDS",
                       default=_env_default("lock_wait_grace", float, d.lock_wait_grace),
                       help="how long a waiter woken at a release has to take the lock "
                       f"before the next is woken [env {ENV['lock_wait_grace']}]")
    add_memcached_flags(serve, d)
    add_refused(serve)
    return serve




def _octal(text: str) -> int:
    try:
        return int(str(text), 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid octal mask {text!r}") from None


def _protocol(text: str) -> str:
    if text not in ("auto", "binary", "ascii"):
        raise argparse.ArgumentTypeError(
            f"Invalid value for binding protocol: {text}\n -- should be one of auto, binary, "
            "or ascii")
    if text != "auto":
        raise argparse.ArgumentTypeError(
            f"-B {text} is not supported here: the protocol is chosen per connection by its "
            "first byte (-B auto), binary only with -S, text only with -Y")
    return text


def add_memcached_flags(serve, d: Config) -> None:
    """memcached's operational flags that keep their meaning here."""
    g = serve.add_argument_group("memcached's process and safety flags")
    g.add_argument("-F", "--disable-flush-all", action="store_false", dest="flush_enabled",
                   default=not _env_default("flush_enabled", _bool, not d.flush_enabled),
                   help="flush_all answers CLIENT_ERROR flush_all not allowed (in a cluster "
                   f"it would empty every member) [env {ENV['flush_enabled']}=1]")
    g.add_argument("-M", "--disable-evictions", action="store_false", dest="evictions",
                   default=not _env_default("evictions", _bool, not d.evictions),
                   help="a write that needs memory held by live items answers SERVER_ERROR "
                   f"out of memory instead of evicting [env {ENV['evictions']}=1]")
    g.add_argument("-X", "--disable-dumping", action="store_false", dest="dump_enabled",
                   default=not _env_default("dump_enabled", _bool, not d.dump_enabled),
                   help="refuse stats cachedump and lru_crawler metadump "
                   f"[env {ENV['dump_enabled']}=1]")
    g.add_argument("-W", "--disable-watch", action="store_false", dest="watch_enabled",
                   default=not _env_default("watch_enabled", _bool, not d.watch_enabled),
                   help=f"refuse watch commands [env {ENV['watch_enabled']}=1]")
    g.add_argument("-u", "--user", default=_env_default("user", str, d.user),
                   help="run as this user once started as root (ignored otherwise) "
                   f"[env {ENV['user']}]")
    g.add_argument("-d", "--daemon", action="store_true", default=d.daemon,
                   help="run in the background, detached from the terminal")
    g.add_argument("-P", "--pidfile", default=d.pidfile, metavar="FILE",
                   help="write the process id to FILE (removed at exit with -d)")
    g.add_argument("-r", "--enable-coredumps", action="store_true", dest="coredumps",
                   default=d.coredumps, help="raise the core file limit to its maximum")
    g.add_argument("-k", "--lock-memory", action="store_true", dest="lock_memory",
                   default=d.lock_memory, help="lock all paged memory (mlockall)")
    g.add_argument("-b", "--listen-backlog", type=int, dest="backlog",
                   default=_env_default("backlog", int, d.backlog),
                   help=f"the listen backlog [env {ENV['backlog']}]")
    g.add_argument("-s", "--unix-socket", dest="unix_socket", metavar="FILE",
                   default=_env_default("unix_socket", str, d.unix_socket),
                   help="listen on this Unix socket instead of TCP (a node alone: members "
                   f"reach each other over TCP) [env {ENV['unix_socket']}]")
    g.add_argument("-a", "--unix-mask", type=_octal, dest="unix_mask", metavar="MASK",
                   default=_env_default("unix_mask", _octal, d.unix_mask),
                   help=f"access mask of the Unix socket, octal (default 700) "
                   f"[env {ENV['unix_mask']}]")
    g.add_argument("-B", "--protocol", type=_protocol, default="auto",
                   help="auto only: the protocol is chosen per connection")
