"""The node's start-up report: one line saying what it is and where, more lines with -v.

Logged once every component has started, so the addresses are the bound ones (port 0
resolved) and a reader of the log knows the node serves from that line on. The one line is
always logged, whatever the verbosity (its logger is set to INFO): an operator looking at a
fleet's logs needs each node's address, limits and cluster settings without turning on the
per-request chatter of -vv.
"""
from __future__ import annotations

import logging
import os
import sys

from pycache_cluster import MEMCACHED_VERSION, __version__

log = logging.getLogger("pycache_cluster.startup")
log.setLevel(logging.INFO)

MIB = 1024 * 1024


def report(node) -> None:
    for line in lines(node):
        log.info("%s", line)


def lines(node) -> list[str]:
    """The summary line, then (with -v) one line per detail."""
    cfg = node.config
    tls = node.tls
    listen = f"unix://{cfg.unix_socket}" if cfg.unix_socket else \
        f"{'tls' if tls else 'tcp'}://{_host(cfg.listen)}:{cfg.port}"
    head = f"pycache-cluster {__version__} (memcached {MEMCACHED_VERSION} protocol)"
    parts = [f"{head} serving on {listen}",
             f"memory {_size(cfg.memory_limit_bytes)}",
             f"max item {_size(cfg.max_item_size)}",
             f"{cfg.conn_limit} connections"]
    cluster = node.cluster
    if cluster is None:
        parts.append("alone (gossip off)")
    else:
        host, port = _gossip_addr(cluster)
        secret = "encrypted" if cfg.cluster_key_file else "clear text"
        parts.append(f"member {cluster.name} gossiping on {_host(host)}:{port} "
                     f"({cfg.gossip_preset}, {secret})")
        parts.append(f"N={cfg.replicas} W={cfg.write_quorum} R={cfg.read_quorum}"
                     if cfg.replicas > 1 else "N=1 (no replicas)")
    metrics = node.metrics
    if metrics is not None:
        parts.append(f"metrics http://{_host(cfg.listen)}:{metrics.port}/metrics")
    out = [", ".join(parts)]
    if cfg.verbosity:
        out += details(node)
    return out


def details(node) -> list[str]:
    cfg = node.config
    import uvloop

    python = sys.version.split()[0]
    shutdown = "on" if cfg.enable_shutdown else "off"
    out = [f"process {os.getpid()}, Python {python}, uvloop {uvloop.__version__}",
           f"shutdown command {shutdown}, verbosity {cfg.verbosity}"]
    tls = node.tls
    if tls is not None:
        out.append(f"tls: {tls.describe()}")
    if cfg.gossip_port is not None:
        out.append(f"cluster: seeds {cfg.join or '(none: a new cluster)'}, advertise "
                   f"{cfg.advertise_addr or '(the -l address)'}, weight {cfg.weight}, "
                   f"vnodes {cfg.vnodes}, forward timeout {cfg.forward_timeout:g} s, "
                   f"peer links {cfg.peer_links}, tombstone ttl {cfg.tombstone_ttl} s")
    return out


def _gossip_addr(cluster) -> tuple[str, int]:
    ml = cluster.membership.memberlist
    if ml is None:
        return cluster.config.listen, cluster.config.gossip_port or 0
    return ml.config.advertise()


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _size(n: int) -> str:
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"
