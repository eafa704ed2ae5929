"""`stats` and its sub-commands: memcached 1.6.18's names in its order, read at request time.

Plain Python on purpose: these run once per request for them, never per cached operation.
"""
from __future__ import annotations

import os
import resource
import time

from pycache_cluster import MEMCACHED_VERSION, __version__
from pycache_cluster.protocol import dump
from pycache_cluster.protocol._native import class_stats

DETAIL_USAGE = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"


def command(srv, args: list[bytes]):
    """`stats [<sub-command> ...]`: bytes, or an awaitable of them from a provider."""
    if len(args) == 1:
        return general(srv)
    sub = args[1]
    if sub == b"reset":
        srv.reset_stats()
        return b"RESET\r\n"
    if sub == b"detail":
        if len(args) < 3:
            return DETAIL_USAGE
        if args[2] == b"on" or args[2] == b"off":
            srv.set_detail(args[2] == b"on")
            return b"OK\r\n"
        if args[2] == b"dump":
            return srv.prefix_dump()
        return DETAIL_USAGE
    fixed = _SUBCOMMANDS.get(sub)
    if fixed is not None:
        return fixed(srv)
    if sub in (b"sizes", b"sizes_enable", b"sizes_disable"):
        return dump.sizes(srv, args)
    if sub == b"cachedump":
        return dump.cachedump(srv, args)
    if sub == b"extstore":
        return b"END\r\n"         # memcached without an external store configured
    provider = srv.extensions.stats(sub)
    if provider is not None:
        return provider(args)
    return b"ERROR\r\n"


LOG_COUNTERS = ("log_worker_dropped", "log_worker_written", "log_watcher_skipped",
                "log_watcher_sent", "log_watchers")


def _log_counters(srv) -> list[tuple[str, int]]:
    counters = srv.log_counters() if srv.log_counters is not None else {}
    return [(name, counters.get(name, 0)) for name in LOG_COUNTERS]


def lines(pairs) -> bytes:
    """STAT lines for (name, value) pairs, then END."""
    return b"".join(b"STAT %s %s\r\n" % (k.encode(), str(v).encode()) for k, v in pairs) \
        + b"END\r\n"


def general(srv) -> bytes:
    """`stats`: memcached 1.6.18's keys in its order (0 where we have no such thing), then
    ours."""
    return lines(general_pairs(srv))


def general_pairs(srv) -> list[tuple[str, object]]:
    """What `stats` answers, as (name, value) pairs (the metrics endpoint reads them too)."""
    st = srv.store.stats()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    now = time.time()
    cfg = srv.settings
    auth = srv.auth_users
    pairs = [
        ("pid", os.getpid()),
        ("uptime", int(now - srv.started)),
        ("time", int(now)),
        ("version", MEMCACHED_VERSION),
        ("libevent", "uvloop"),
        ("pointer_size", 64),
        ("rusage_user", f"{ru.ru_utime:.6f}"),
        ("rusage_system", f"{ru.ru_stime:.6f}"),
        ("max_connections", cfg.conn_limit),
        ("curr_connections", srv.curr_conns),
        ("total_connections", srv.total_conns),
        ("rejected_connections", srv.rejected_conns),
        ("connection_structures", srv.curr_conns + 1),
        ("response_obj_oom", 0),
        ("response_obj_count", 0),
        ("response_obj_bytes", 0),
        ("read_buf_count", srv.read_buf_count),
        ("read_buf_bytes", srv.read_buf_bytes),
        ("read_buf_bytes_free", srv.read_buf_bytes_free),
        ("read_buf_oom", srv.read_buf_oom),
        ("reserved_fds", 0),
        ("cmd_get", srv.cmd_get),
        ("cmd_set", srv.cmd_set),
        ("cmd_flush", srv.cmd_flush),
        ("cmd_touch", srv.cmd_touch),
        ("cmd_meta", srv.cmd_meta),
        ("get_hits", st["get_hits"]),
        ("get_misses", st["get_misses"]),
        ("get_expired", st["get_expired"]),
        ("get_flushed", st["get_flushed"]),
        ("delete_misses", st["delete_misses"]),
        ("delete_hits", st["delete_hits"]),
        ("incr_misses", st["incr_misses"]),
        ("incr_hits", st["incr_hits"]),
        ("decr_misses", st["decr_misses"]),
        ("decr_hits", st["decr_hits"]),
        ("cas_misses", st["cas_misses"]),
        ("cas_hits", st["cas_hits"]),
        ("cas_badval", st["cas_badval"]),
        ("touch_hits", st["touch_hits"]),
        ("touch_misses", st["touch_misses"]),
        ("store_too_large", srv.store_too_large),
        ("store_no_memory", srv.store_no_memory),
        ("auth_cmds", auth.cmds if auth is not None else 0),
        ("auth_errors", auth.errors if auth is not None else 0),
        *((("idle_kicks", srv.extensions.general["idle_kicks"]()),)
          if "idle_kicks" in srv.extensions.general else ()),
        ("bytes_read", srv.bytes_read),
        ("bytes_written", srv.bytes_written),
        ("limit_maxbytes", st["limit_maxbytes"]),
        ("accepting_conns", 1),
        ("listen_disabled_num", 0),
        ("time_in_listen_disabled_us", 0),
        ("threads", 1),
        ("conn_yields", 0),
        ("hash_power_level", st["hash_power_level"]),
        ("hash_bytes", st["hash_bytes"]),
        ("hash_is_expanding", st["hash_is_expanding"]),
        ("slab_reassign_rescues", 0),
        ("slab_reassign_chunk_rescues", 0),
        ("slab_reassign_evictions_nomem", 0),
        ("slab_reassign_inline_reclaim", 0),
        ("slab_reassign_busy_items", 0),
        ("slab_reassign_busy_deletes", 0),
        ("slab_reassign_running", 0),
        ("slabs_moved", 0),
        ("lru_crawler_running", 0),
        ("lru_crawler_starts", 0),
        ("lru_maintainer_juggles", 0),
        ("malloc_fails", 0),
        *_log_counters(srv),
        ("unexpected_napi_ids", 0),
        ("round_robin_fallback", 0),
        ("bytes", st["bytes"]),
        ("curr_items", st["curr_items"]),
        ("total_items", st["total_items"]),
        ("slab_global_page_pool", 0),
        ("expired_unfetched", st["expired_unfetched"]),
        ("evicted_unfetched", st["evicted_unfetched"]),
        ("evicted_active", 0),
        ("evictions", st["evictions"]),
        ("reclaimed", st["reclaimed"]),
        ("crawler_reclaimed", st["crawler_reclaimed"]),
        ("crawler_items_checked", 0),
        ("lrutail_reflocked", 0),
        ("moves_to_cold", st["moves_to_cold"]),
        ("moves_to_warm", st["moves_to_warm"]),
        ("moves_within_lru", st["moves_within_lru"]),
        ("direct_reclaims", 0),
        ("lru_bumps_dropped", 0),
        ("pycache_version", __version__),
        # The store's S3-FIFO (csrc/pc_policy.h): memcached has no such lines.
        *((name, st[name]) for name in POLICY_STATS),
    ]
    return pairs


POLICY_STATS = ("policy_small_items", "policy_small_bytes", "policy_main_items",
                "policy_main_bytes", "policy_promotions", "policy_reinsertions",
                "policy_small_evictions", "policy_main_evictions", "policy_ghost_hits",
                "policy_ghost_bytes", "log_bytes", "log_segment_bytes", "log_compactions")


def settings(srv) -> bytes:
    cfg = srv.settings
    pairs = [
        ("maxbytes", cfg.memory_limit_mb * 1024 * 1024),
        ("maxconns", cfg.conn_limit),
        ("tcpport", cfg.port),
        ("udpport", 0),
        ("inter", cfg.listen),
        ("verbosity", srv.verbosity),
        ("oldest", 0),
        ("evictions", "on" if cfg.evictions else "off"),
        ("domain_socket", cfg.unix_socket or "NULL"),
        ("umask", f"{cfg.unix_mask:o}"),
        ("shutdown_command", "yes" if cfg.enable_shutdown else "no"),
        ("growth_factor", "1.25"),
        ("chunk_size", 48),
        ("num_threads", 1),
        ("num_threads_per_udp", 1),
        ("stat_key_prefix", cfg.prefix_delimiter),
        ("detail_enabled", "yes" if srv.detail_enabled else "no"),
        ("reqs_per_event", srv.reqs_per_event),
        ("cas_enabled", "yes"),
        ("tcp_backlog", cfg.backlog),
        ("binding_protocol", "binary" if cfg.sasl else "ascii" if cfg.auth_file
         else "auto-negotiate"),
        ("auth_enabled_sasl", "yes" if cfg.sasl else "no"),
        ("auth_enabled_ascii", cfg.auth_file or "no"),
        ("item_size_max", cfg.max_item_size),
        ("maxconns_fast", "yes"),
        ("hashpower_init", 0),
        ("slab_reassign", "no"),
        ("slab_automove", 0),
        # Settings of what there is none of here (slabs, a maintainer thread, factors of
        # HOT and WARM, which are capped by -m instead): memcached's defaults, as tools
        # read them, changing nothing.
        ("slab_automove_ratio", "0.80"),
        ("slab_automove_window", 30),
        ("slab_chunk_max", 524288),
        ("lru_crawler", "yes" if cfg.lru_crawler else "no"),
        ("lru_crawler_sleep", 100),
        ("lru_crawler_tocrawl", 0),
        ("tail_repair_time", 0),
        ("flush_enabled", "yes" if cfg.flush_enabled else "no"),
        ("dump_enabled", "yes" if cfg.dump_enabled else "no"),
        ("hash_algorithm", "murmur3"),
        ("lru_maintainer_thread", "no"),
        ("lru_segmented", "yes"),
        ("hot_lru_pct", 20),
        ("warm_lru_pct", 40),
        ("hot_max_factor", "0.20"),
        ("warm_max_factor", "2.00"),
        ("temp_lru", "no"),
        ("temporary_ttl", 61),
        ("idle_timeout", cfg.idle_timeout),
        ("watcher_logbuf_size", 262144),
        ("worker_logbuf_size", 65536),
        ("read_buf_mem_limit", 0),
        ("track_sizes", "yes" if srv.sizes_enabled else "no"),
        ("inline_ascii_response", "no"),
        ("slab_automove_freeratio", "0.010"),
        ("ssl_enabled", "yes" if cfg.tls else "no"),
        ("ssl_chain_cert", cfg.ssl_chain_cert or "(null)"),
        ("ssl_key", cfg.ssl_key or "(null)"),
        ("ssl_verify_mode", cfg.ssl_verify_mode),
        ("ssl_keyformat", 1),
        ("ssl_ciphers", cfg.ssl_ciphers or "NULL"),
        ("ssl_ca_cert", cfg.ssl_ca_cert or "NULL"),
        ("ssl_wbuf_size", 16384),
        ("ssl_session_cache", "no"),
        ("ssl_kernel_tls", "no"),
        ("ssl_min_version", f"tlsv1.{cfg.ssl_min_version}"),
        ("num_napi_ids", "(null)"),
        ("memory_file", "(null)"),
    ]
    return lines(pairs)


def conns(srv) -> bytes:
    cfg = srv.settings
    listening = f"unix:{cfg.unix_socket}" if cfg.unix_socket else f"tcp:{cfg.listen}:{cfg.port}"
    out = [("0:addr", listening), ("0:state", "conn_listening")]
    for i, conn in enumerate(list(srv.conns), 1):
        peer = conn.peername
        addr = listening if cfg.unix_socket else f"tcp:{peer[0]}:{peer[1]}" if peer else "tcp:?"
        out += [(f"{i}:addr", addr),
                (f"{i}:listen_addr", listening),
                (f"{i}:state", "conn_parse_cmd"),
                (f"{i}:secs_since_last_cmd", 0)]
    return lines(out)


def _classes(srv) -> dict:
    return class_stats(srv.store)


def items(srv) -> bytes:
    """`stats items`: per memcached class of the items held (dump.py). Counters the store
    keeps only in total (evictions, reclaims, LRU moves) are on the first class, so sums
    over classes are right; ages are those of each class's oldest item per segment."""
    classes = _classes(srv)
    if not classes:
        return b"END\r\n"
    st = srv.store.stats()
    out = []
    for n, cls in enumerate(sorted(classes)):
        count, nbytes, (hot, warm, cold), (age_hot, age_warm, age_cold) = classes[cls]
        p = f"items:{cls}:"
        total = st.get if n == 0 else (lambda _name: 0)
        out += [
            (p + "number", count), (p + "number_hot", hot), (p + "number_warm", warm),
            (p + "number_cold", cold), (p + "age_hot", age_hot), (p + "age_warm", age_warm),
            (p + "age", age_cold), (p + "mem_requested", nbytes),
            (p + "evicted", total("evictions")), (p + "evicted_nonzero", 0),
            (p + "evicted_time", 0), (p + "outofmemory", 0), (p + "tailrepairs", 0),
            (p + "reclaimed", total("reclaimed")),
            (p + "expired_unfetched", total("expired_unfetched")),
            (p + "evicted_unfetched", total("evicted_unfetched")),
            (p + "evicted_active", 0),
            (p + "crawler_reclaimed", total("crawler_reclaimed")),
            (p + "crawler_items_checked", 0), (p + "lrutail_reflocked", 0),
            (p + "moves_to_cold", total("moves_to_cold")),
            (p + "moves_to_warm", total("moves_to_warm")),
            (p + "moves_within_lru", total("moves_within_lru")),
            (p + "direct_reclaims", 0),
            (p + "hits_to_hot", 0), (p + "hits_to_warm", 0), (p + "hits_to_cold", 0),
            (p + "hits_to_temp", 0),
        ]
    return lines(out)


def slabs(srv) -> bytes:
    """`stats slabs`: per memcached class of the items held. No memory is in pages here:
    chunk_size and chunks_per_page are memcached's for the class, total_pages the pages
    memcached would need for these items, total_malloced the bytes the items really take
    (docs/protocol.md, "Slab-shaped numbers"). Command counters are kept in total
    only: they are on the first class."""
    classes = _classes(srv)
    st = srv.store.stats()
    sizes = dump.chunk_sizes(srv.settings.max_item_size)
    page = dump.page_size(srv.settings.max_item_size)
    out = []
    for n, cls in enumerate(sorted(classes)):
        count = classes[cls][0]
        chunk = sizes.get(cls, max(sizes.values()))
        per_page = max(1, page // chunk)
        pages = -(-count // per_page)
        total = (lambda value: value) if n == 0 else (lambda _value: 0)
        p = f"{cls}:"
        out += [
            (p + "chunk_size", chunk), (p + "chunks_per_page", per_page),
            (p + "total_pages", pages), (p + "total_chunks", pages * per_page),
            (p + "used_chunks", count), (p + "free_chunks", pages * per_page - count),
            (p + "free_chunks_end", 0),
            (p + "get_hits", total(st["get_hits"])), (p + "cmd_set", total(srv.cmd_set)),
            (p + "delete_hits", total(st["delete_hits"])),
            (p + "incr_hits", total(st["incr_hits"])),
            (p + "decr_hits", total(st["decr_hits"])),
            (p + "cas_hits", total(st["cas_hits"])),
            (p + "cas_badval", total(st["cas_badval"])),
            (p + "touch_hits", total(st["touch_hits"])),
        ]
    out += [("active_slabs", len(classes)), ("total_malloced", st["bytes"] if classes else 0)]
    return lines(out)


_SUBCOMMANDS = {b"settings": settings, b"conns": conns, b"items": items, b"slabs": slabs}
