"""The binary protocol's `stat`: which statistics a key names, as memcached's
process_bin_stat and get_stats choose them, taken from the text protocol's `stats`."""
from __future__ import annotations

from pycache_cluster.protocol import stats

# Groups get_stats knows, matched exactly (memcached's nz_strcmp).
_EXACT = (b"items", b"slabs", b"sizes", b"sizes_enable", b"sizes_disable")


def pairs(srv, key: bytes) -> list[tuple[bytes, bytes]] | None:
    """(name, value) per statistic, without the empty packet that ends them; None when
    memcached answers "Not found". Prefix matches are memcached's (strncmp)."""
    if not key:
        return _from_text(stats.command(srv, [b"stats"]))
    if key.startswith(b"reset"):
        srv.reset_stats()
        return []
    if key.startswith(b"settings"):
        return _from_text(stats.command(srv, [b"stats", b"settings"]))
    if key.startswith(b"detail"):
        rest = key[6:]
        if rest.startswith(b" dump"):
            return [(b"detailed", stats.command(srv, [b"stats", b"detail", b"dump"]))]
        for word in (b"on", b"off"):
            if rest.startswith(b" " + word):
                stats.command(srv, [b"stats", b"detail", word])
                return []
        return None
    if key in _EXACT:
        out = stats.command(srv, [b"stats", key])
        if isinstance(out, bytes) and out.startswith((b"STAT ", b"END")):
            return _from_text(out)
    return None


def _from_text(out) -> list[tuple[bytes, bytes]]:
    """`STAT <name> <value>` lines up to END as pairs."""
    result = []
    if not isinstance(out, bytes):
        return result
    for line in out.split(b"\r\n"):
        if line.startswith(b"STAT "):
            name, _, value = line[5:].partition(b" ")
            result.append((name, value))
    return result
