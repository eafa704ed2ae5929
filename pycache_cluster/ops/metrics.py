"""What a node tells Prometheus: its stats as metric families, built at scrape time only.

Names of what memcached also has are memcached_exporter's (memcached_commands_total{command,
status}, memcached_current_bytes, ...), so dashboards made for memcached read a node as they
are; what only this node has is under pycache_. Nothing here runs per request: counters are
the ones `stats`, `stats cluster` and `stats gossip` answer, read when scraped, and command
latencies come from the sampled histograms the request loop keeps in C (csrc/pc_lat.h).
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from pycache_cluster import MEMCACHED_VERSION, __version__, memstats
from pycache_cluster.protocol.stats import general_pairs

# `stats` name -> (metric, kind, help): memcached_exporter's name wherever it exports the
# figure (pkg/exporter/exporter.go), else pycache_. kind "c" counter, "g" gauge. Counters
# lose their _total here: prometheus_client adds it. A figure the store no longer keeps is
# left out, as the exporter leaves out a key memcached does not send.
GENERAL = {
    "uptime": ("memcached_uptime_seconds", "g", "Number of seconds since the server started."),
    "time": ("memcached_time_seconds", "g", "current UNIX time according to the server."),
    "rusage_user": ("memcached_process_user_cpu_seconds", "c",
                    "Accumulated user time for this process."),
    "rusage_system": ("memcached_process_system_cpu_seconds", "c",
                      "Accumulated system time for this process."),
    "max_connections": ("memcached_max_connections", "g", "Maximum number of clients allowed."),
    "curr_connections": ("memcached_current_connections", "g",
                         "Current number of open connections."),
    "total_connections": ("memcached_connections", "c",
                          "Total number of connections opened since the server started."),
    "rejected_connections": ("memcached_connections_rejected", "c",
                             "Connections rejected at the -c limit (maxconns_fast)."),
    "conn_yields": ("memcached_connections_yielded", "c",
                    "Connections that yielded to others at the per-read request limit."),
    "listen_disabled_num": ("memcached_connections_listener_disabled", "c",
                            "Times the listener was disabled at the connection limit."),
    "accepting_conns": ("memcached_accepting_connections", "g",
                        "The server is currently accepting new connections."),
    "bytes_read": ("memcached_read_bytes", "c", "Bytes read by this server from the network."),
    "bytes_written": ("memcached_written_bytes", "c",
                      "Bytes sent by this server to the network."),
    "limit_maxbytes": ("memcached_limit_bytes", "g", "Bytes this server may use for items (-m)."),
    "bytes": ("memcached_current_bytes", "g", "Current number of bytes used to store items."),
    "curr_items": ("memcached_current_items", "g", "Current number of items stored."),
    "total_items": ("memcached_items", "c", "Items stored during the life of this instance."),
    "evictions": ("memcached_items_evicted", "c",
                  "Valid items removed from the cache to free memory for new items."),
    "reclaimed": ("memcached_items_reclaimed", "c",
                  "Times an entry was stored using memory from an expired entry."),
    "store_too_large": ("memcached_item_too_large", "c",
                        "Times an item exceeded the max-item-size when being stored."),
    "store_no_memory": ("memcached_item_no_memory", "c",
                        "Times an item could not be stored for lack of memory."),
    "direct_reclaims": ("memcached_direct_reclaims", "c",
                        "Times a request had to reclaim or evict items itself."),
    "lru_crawler_starts": ("memcached_lru_crawler_starts", "c",
                           "Times an LRU crawler was started."),
    "crawler_reclaimed": ("memcached_lru_crawler_reclaimed", "c",
                          "Items freed by the expiry crawler."),
    "crawler_items_checked": ("memcached_lru_crawler_items_checked", "c",
                              "Items examined by the LRU crawler."),
    "moves_to_cold": ("memcached_lru_crawler_moves_to_cold", "c",
                      "Items moved from HOT/WARM to COLD."),
    "moves_to_warm": ("memcached_lru_crawler_moves_to_warm", "c",
                      "Items moved from COLD to WARM."),
    "moves_within_lru": ("memcached_lru_crawler_moves_within_lru", "c",
                         "Items reshuffled within HOT or WARM."),
    # memcached_exporter has these per slab class only; there are no slabs here.
    "expired_unfetched": ("pycache_items_expired_unfetched", "c",
                          "Items expired without ever being read."),
    "evicted_unfetched": ("pycache_items_evicted_unfetched", "c",
                          "Items evicted without ever being read."),
    "get_expired": ("pycache_get_expired", "c", "Reads that found an expired item."),
    "get_flushed": ("pycache_get_flushed", "c", "Reads that found a flushed item."),
    "cmd_meta": ("pycache_meta_commands", "c", "Meta protocol commands."),
    "hash_bytes": ("pycache_hash_table_bytes", "g", "Bytes of the hash table."),
    "read_buf_bytes": ("pycache_read_buffer_bytes", "g", "Bytes of client read buffers."),
}

# memcached_commands_total{command, status}: memcached_exporter's breakdown. Its set count
# leaves out cas (memcached counts a cas in cmd_set too): set = cmd_set - cas_*.
COMMANDS = [(op, status, f"{op}_{key}") for op in ("get", "delete", "incr", "decr", "cas",
                                                  "touch")
            for status, key in (("hit", "hits"), ("miss", "misses"))] + \
    [("cas", "badval", "cas_badval"), ("flush", "hit", "cmd_flush")]


class NodeCollector:
    """A prometheus_client collector over one node's state (registered by MetricsServer).
    `up` is what the server's last probe of the node's own client port found."""

    def __init__(self, node):
        self.node = node
        self.up = 1

    def describe(self):
        return []       # families vary with the node's role: never checked at registration

    def collect(self):
        srv = self.node.state
        st = dict(general_pairs(srv))
        info = GaugeMetricFamily("pycache_build_info", "Versions of this node.",
                                 labels=["version", "protocol"])
        info.add_metric([__version__, MEMCACHED_VERSION], 1)
        yield info
        version = GaugeMetricFamily("memcached_version", "The version of this memcached "
                                    "server.", labels=["version"])
        version.add_metric([st["version"]], 1)
        yield version
        yield GaugeMetricFamily("memcached_up", "Could the server be reached: 1 when its "
                                "client port answered `version` just now.", value=self.up)
        for key, (name, kind, text) in GENERAL.items():
            if key in st:
                family = CounterMetricFamily if kind == "c" else GaugeMetricFamily
                yield family(name, text, value=float(st[key]))
        cmds = CounterMetricFamily("memcached_commands", "Total number of all requests broken "
                                   "down by command (get, set, etc.) and status.",
                                   labels=["command", "status"])
        for command, status, key in COMMANDS:
            cmds.add_metric([command, status], st[key])
        cmds.add_metric(["set", "hit"], st["cmd_set"] - st["cas_misses"] - st["cas_hits"]
                        - st["cas_badval"])
        yield cmds
        yield from _settings(srv.settings)
        yield from _memory()
        yield _latency(srv)
        cluster = self.node.cluster
        if cluster is not None:
            from pycache_cluster.ops.cluster_metrics import cluster_families
            yield from cluster_families(cluster)
        locks = self.node.locks
        if locks is not None and locks.placement is not None:
            from pycache_cluster.ops.cluster_metrics import lock_families
            yield from lock_families(locks)


def _settings(cfg):
    """memcached_exporter's figure from `stats settings` that means something here."""
    yield GaugeMetricFamily("memcached_lru_crawler_enabled", "Whether the LRU crawler is "
                            "enabled.", value=1 if cfg.lru_crawler else 0)


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
