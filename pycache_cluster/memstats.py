"""Where the node's memory is: `stats memory`, the allocator's, the kernel's and Python's view.

The store's own accounting (`bytes`, `hash_bytes`) says what the items should cost; these
figures say what the process really holds, so that the two can be compared in a running node:

- process_*: /proc/self/smaps_rollup (resident, anonymous, file-backed) and the peak (VmHWM);
- malloc_*: glibc's mallinfo2(): heap obtained from the kernel (`arena`), in use
  (`uordblks`), free inside the heap (`fordblks`: holes between live chunks and the top),
  and chunks served by mmap (`hblks`, `hblkhd`);
- large_*: items in mappings of their own and the cache of freed mappings (csrc/pc_large.h);
- python_*: the interpreter's allocated blocks (sys.getallocatedblocks()).
Every read is O(the allocator's free lists) at worst: meant for a stats call, not a hot path.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def mallinfo() -> dict[str, int]:
    """glibc's mallinfo2() (main arena plus the others), or {} on a libc without it."""
    try:
        fn = _c().mallinfo2
    except AttributeError:
        return {}
    fn.restype = _Mallinfo2
    mi = fn()
    return {name: int(getattr(mi, name)) for name, _ in _Mallinfo2._fields_}


def release() -> int:
    """Gives memory the process holds but does not use back to the kernel: cached mappings of
    big items not reused since the previous call, then every whole free page inside glibc's
    heap (malloc_trim). Returns the bytes of mappings unmapped (malloc_trim does not say)."""
    from pycache_cluster.store import large_trim
    released = large_trim()
    try:
        _c().malloc_trim(0)
    except AttributeError:
        pass
    return released


def _proc_kib(path: str, keys: tuple[bytes, ...]) -> dict[str, int]:
    out = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                if name in keys:
                    out[name.decode()] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def process() -> dict[str, int]:
    """Resident bytes of the whole process from the kernel (smaps_rollup, status)."""
    roll = _proc_kib("/proc/self/smaps_rollup", (b"Rss", b"Anonymous", b"Private_Dirty"))
    st = _proc_kib("/proc/self/status", (b"VmHWM", b"RssAnon", b"RssFile"))
    return {"rss": roll.get("Rss", 0), "anonymous": roll.get("Anonymous", 0),
            "rss_file": st.get("RssFile", 0), "peak_rss": st.get("VmHWM", 0)}


def pairs(store=None) -> list[tuple[str, int]]:
    """The `stats memory` lines: process_*, malloc_*, large_*, python_*, and with the node's
    store, store_unlinked_bytes (values being read straight into their items, charged to
    -m but not yet in `bytes`)."""
    out = [(f"process_{k}", v) for k, v in process().items()]
    mi = mallinfo()
    if mi:
        out += [("malloc_heap_bytes", mi["arena"]), ("malloc_heap_used", mi["uordblks"]),
                ("malloc_heap_free", mi["fordblks"]), ("malloc_heap_top_free", mi["keepcost"]),
                ("malloc_mmap_chunks", mi["hblks"]), ("malloc_mmap_bytes", mi["hblkhd"])]
    from pycache_cluster.store import large_stats
    out += list(large_stats().items())
    out.append(("python_allocated_blocks", sys.getallocatedblocks()))
    if store is not None:
        out.append(("store_unlinked_bytes", store.stats()["unlinked_bytes"]))
    return out


def stats_lines(args=None, store=None) -> bytes:
    """The `stats memory` provider (registered in the node's extensions)."""
    return b"".join(b"STAT %s %d\r\n" % (k.encode(), v) for k, v in pairs(store)) + b"END\r\n"
