"""What a node tells Prometheus: its stats as metric families, built at scrape time only.

Names of what memcached also has are memcached_exporter's (memcached_commands_total{command,
status}, memcached_current_bytes, ...), so dashboards made for memcached read a node as they
are; what only this node has is under pycache_. Nothing here runs per request: counters are
the ones `stats`, `stats cluster` and `stats gossip` answer, read when scraped, and command
latencies come from the sampled histograms the request loop keeps in C (csrc/pc_lat.h).
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from pycache_cluster import __version__, memstats
from pycache_cluster.protocol.stats import MEMCACHED_VERSION, general_pairs

# `stats` name -> (metric, kind, help); kind "c" counter, "g" gauge. Counters lose their
# _total here: prometheus_client adds it.
GENERAL = {
    "uptime": ("memcached_uptime_seconds", "g", "Seconds since the node started."),
    "rusage_user": ("memcached_process_user_cpu_seconds", "c", "User CPU time."),
    "rusage_system": ("memcached_process_system_cpu_seconds", "c", "System CPU time."),
    "max_connections": ("memcached_max_connections", "g", "Client connection limit (-c)."),
    "curr_connections": ("memcached_current_connections", "g", "Open client connections."),
    "total_connections": ("memcached_connections", "c", "Connections accepted."),
    "rejected_connections": ("memcached_connections_rejected", "c",
                             "Connections refused at the connection limit."),
    "bytes_read": ("memcached_read_bytes", "c", "Bytes read from clients."),
    "bytes_written": ("memcached_written_bytes", "c", "Bytes written to clients."),
    "limit_maxbytes": ("memcached_limit_bytes", "g", "Item memory limit (-m)."),
    "bytes": ("memcached_current_bytes", "g", "Bytes used by items."),
    "curr_items": ("memcached_current_items", "g", "Items stored now."),
    "total_items": ("memcached_items", "c", "Items stored since start."),
    "evictions": ("memcached_items_evicted", "c", "Live items evicted to make room."),
    "reclaimed": ("memcached_items_reclaimed", "c",
                  "Items stored in the memory of an expired item."),
    "expired_unfetched": ("memcached_items_expired_unfetched", "c",
                          "Items expired without ever being read."),
    "evicted_unfetched": ("memcached_items_evicted_unfetched", "c",
                          "Items evicted without ever being read."),
    "crawler_reclaimed": ("pycache_items_crawler_reclaimed", "c",
                          "Expired items freed by the expiry crawler."),
    "get_expired": ("pycache_get_expired", "c", "Reads that found an expired item."),
    "get_flushed": ("pycache_get_flushed", "c", "Reads that found a flushed item."),
    "cmd_meta": ("pycache_meta_commands", "c", "Meta protocol commands."),
    "store_too_large": ("pycache_store_too_large", "c", "Writes refused as too large."),
    "store_no_memory": ("pycache_store_no_memory", "c", "Writes refused for lack of memory."),
    "hash_bytes": ("pycache_hash_table_bytes", "g", "Bytes of the hash table."),
    "read_buf_bytes": ("pycache_read_buffer_bytes", "g", "Bytes of client read buffers."),
}

# memcached_commands_total{command, status}: memcached_exporter's breakdown.
COMMANDS = [("get", "hit", "get_hits"), ("get", "miss", "get_misses"),
            ("set", "hit", "cmd_set"), ("touch", "hit", "touch_hits"),
            ("touch", "miss", "touch_misses"), ("delete", "hit", "delete_hits"),
            ("delete", "miss", "delete_misses"), ("incr", "hit", "incr_hits"),
            ("incr", "miss", "incr_misses"), ("decr", "hit", "decr_hits"),
            ("decr", "miss", "decr_misses"), ("cas", "hit", "cas_hits"),
            ("cas", "miss", "cas_misses"), ("cas", "badval", "cas_badval"),
            ("flush", "hit", "cmd_flush")]


class NodeCollector:
    """A prometheus_client collector over one node's state (registered by MetricsServer)."""

    def __init__(self, node):
        self.node = node

    def describe(self):
        return []       # families vary with the node's role: never checked at registration

    def collect(self):
        srv = self.node.state
        st = dict(general_pairs(srv))
        info = GaugeMetricFamily("pycache_build_info", "Versions of this node.",
                                 labels=["version", "protocol"])
        info.add_metric([__version__, MEMCACHED_VERSION], 1)
        yield info
        yield GaugeMetricFamily("memcached_up", "The node answers.", value=1)
        for key, (name, kind, text) in GENERAL.items():
            family = CounterMetricFamily if kind == "c" else GaugeMetricFamily
            yield family(name, text, value=float(st[key]))
        cmds = CounterMetricFamily("memcached_commands", "Requests by command and status.",
                                   labels=["command", "status"])
        for command, status, key in COMMANDS:
            cmds.add_metric([command, status], st[key])
        yield cmds
        lru = CounterMetricFamily("pycache_lru_moves", "Items moved between LRU segments.",
                                  labels=["move"])
        for move in ("to_cold", "to_warm", "within_lru"):
            lru.add_metric([move], st["moves_" + move])
        yield lru
        yield from _memory()
        yield _latency(srv)
        cluster = srv.cluster
        if cluster is not None:
            from pycache_cluster.ops.cluster_metrics import cluster_families
            yield from cluster_families(cluster)


def _memory():
    gauge = GaugeMetricFamily("pycache_memory_bytes", "Process memory by kind (`stats "
                              "memory`): resident, allocator heap, large-item mappings.",
                              labels=["kind"])
    for name, value in memstats.pairs():
        if name.endswith(("_bytes", "_rss", "_anonymous", "_file", "_used", "_free")):
            gauge.add_metric([name], value)
    return [gauge]


def _latency(srv):
    every, bounds, per_cmd = srv.latency()
    family = HistogramMetricFamily(
        "pycache_command_duration_seconds",
        f"Time this node's loop spent on a request, sampled: one request in {every} is "
        "timed, so counts are samples (memcached_commands_total counts requests). A "
        "storage command is timed from its complete value; a request answered by a peer "
        "only for its local part.", labels=["command"])
    for name, (counts, total) in sorted(per_cmd.items()):
        buckets, running = [], 0
        for bound, n in zip(bounds, counts, strict=False):
            running += n
            buckets.append((repr(bound), running))
        buckets.append(("+Inf", running + counts[-1]))
        family.add_metric([name], buckets, total)
    return family
