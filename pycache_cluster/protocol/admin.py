"""memcached's administrative commands that tune the server rather than touch items.

Plain Python: they are rare. Number parsing is memcached's own (safe_strtoul, in C).
"""
from __future__ import annotations

from pycache_cluster.protocol import dump
from pycache_cluster.protocol._native import parse_u32 as _u32


def setting_command(srv, args: list[bytes]) -> bytes:
    """`verbosity <level>` and `cache_memlimit <megabytes>`: the reply line (no CRLF; the
    connection applies noreply)."""
    value = _u32(args[1])
    if args[0] == b"verbosity":
        if value is None:
            return b"CLIENT_ERROR bad command line format"
        srv.verbosity = min(value, 2)
        return b"OK"
    if value is None:
        return b"ERROR"
    if value < 8:
        return b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"
    if value > 1000000000:
        return b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
    srv.store.set_limit(value * 1024 * 1024)
    srv.settings.memory_limit_mb = value
    return b"OK"


def _float(tok: bytes) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def machinery_command(srv, args: list[bytes]):
    """memcached commands about its own machinery (slabs, lru, lru_crawler, watch): their
    syntax and errors are memcached's; what they would tune does not exist here, so a valid
    request is simply acknowledged. The dumps (dump.py) answer with an awaitable."""
    cmd = args[0]
    n = len(args) + 1   # memcached's ntokens (the terminal token included)
    if cmd == b"slabs":
        if n == 5 and args[1] == b"reassign":
            return b"BADCLASS invalid src or dst class id\r\n"
        if n >= 4 and args[1] == b"automove":
            if args[2] == b"ratio":
                return b"OK\r\n" if n >= 5 and _float(args[3]) is not None else b"ERROR\r\n"
            level = _u32(args[2])
            if level is None:
                return b"CLIENT_ERROR bad command line format\r\n"
            return b"OK\r\n" if level <= 2 else b"ERROR\r\n"
        return b"ERROR\r\n"
    if cmd == b"lru_crawler":
        answer = dump.lru_crawler(srv, args)
        if answer is not None:
            return answer
        if n == 4 and args[1] == b"crawl":
            return b"OK\r\n"
        if n == 4 and args[1] == b"tocrawl":
            return b"OK\r\n" if _u32(args[2]) is not None else \
                b"CLIENT_ERROR bad command line format\r\n"
        if n == 4 and args[1] == b"sleep":
            v = _u32(args[2])
            if v is None:
                return b"CLIENT_ERROR bad command line format\r\n"
            if v > 1000000:
                return b"CLIENT_ERROR sleep must be one second or less\r\n"
            return b"OK\r\n"
        return b"ERROR\r\n"
    if cmd == b"lru":
        if args[1] == b"tune" and n >= 7:
            hot, warm = _u32(args[2]), _u32(args[3])
            hot_factor, factor = _float(args[4]), _float(args[5])
            if None in (hot, warm, hot_factor, factor):
                return b"ERROR\r\n"
            if hot + warm > 80:
                return b"ERROR hot and warm pcts must not exceed 80\r\n"
            if factor <= 0 or hot_factor <= 0:
                return b"ERROR hot/warm age factors must be greater than 0\r\n"
            return b"OK\r\n"
        if args[1] == b"mode" and n >= 4:
            return b"OK\r\n" if args[2] in (b"flat", b"segmented") else b"ERROR\r\n"
        if args[1] == b"temp_ttl" and n >= 4:
            return b"OK\r\n" if _u32(args[2].lstrip(b"-")) is not None else b"ERROR\r\n"
        return b"ERROR\r\n"
    if cmd == b"watch":
        return b"CLIENT_ERROR watch commands not allowed\r\n"
    return b"ERROR\r\n"
