/* pc_large: big items in pages of their own, with a bounded cache of freed ranges.
 *
 * Why: from malloc, values of mixed sizes up to 1 MB leave freed holes between live items in
 * the heap (glibc's dynamic mmap threshold puts everything below the largest freed chunk
 * there), and those holes stay resident: a node at -m 64 held 20-25 MiB more than its items.
 * Pages of its own give a big item's memory back whole when it is freed. Giving every freed
 * page back costs page faults on the next store (3-4x the CPU per set in a 1 MB flood), so
 * freed ranges are kept, at most pc_large_cache_max() bytes, split and merged to serve the
 * next big items (a range too small is grown by mremap: only the difference is new memory).
 * bench/MEMORY.md has the measurements.
 *
 * Process-wide state, not thread-safe: the store is used from one thread. */
#ifndef PC_LARGE_H
#define PC_LARGE_H

#include <stddef.h>
#include <stdint.h>

/* Allocations of at least this many bytes are mapped (pc_item decides). Below it malloc's
 * chunks are denser; above it a page of rounding is at most 6.25%. */
#define PC_LARGE_MIN ((size_t)64 * 1024)
/* Mappings never exceed this count, far below vm.max_map_count's default of 65530, so that
 * the interpreter's own mmaps never fail because of ours: past it, callers fall back to
 * malloc. */
#define PC_LARGE_MAX_MAPPINGS 32768
#define PC_LARGE_CACHE_DEFAULT ((size_t)4 << 20)

/* Makes this copy of the core's state the one every other copy in the process uses (see
 * pc_large.c); call it once, when the first extension loads. 0 on success. */
int pc_large_share(void);

/* The bytes a block of `size` bytes holds: whole pages. */
size_t pc_large_size(size_t size);

/* A block of `size` bytes, 16-byte aligned, alone in pc_large_size(size) bytes of pages (it
 * ends where they end), or NULL (out of mappings or memory). */
void *pc_large_alloc(size_t size);
/* Frees a block from pc_large_alloc(size): into the cache, or back to the kernel. */
void pc_large_free(void *p, size_t size);

/* Unmaps the cached ranges that were not reused since the previous call (call it every second
 * or few: an idle process then gives its cache back); with all != 0, every cached one.
 * Returns the bytes released. */
size_t pc_large_trim(int all);

/* Bytes kept in the cache at most (0: every freed range is unmapped at once). */
void pc_large_set_cache_max(size_t bytes);
size_t pc_large_cache_max(void);

typedef struct pc_large_stats {
    uint64_t mapped;          /* blocks handed out and not freed */
    uint64_t mapped_bytes;
    uint64_t cached;          /* freed ranges kept for reuse */
    uint64_t cached_bytes;
    uint64_t cache_hits;      /* allocations served from a cached range large enough */
    uint64_t cache_grows;     /* ... from a cached range grown by mremap */
    uint64_t cache_misses;    /* allocations that needed a new mapping */
    uint64_t fallbacks;       /* allocations refused (count cap or mmap failure) */
} pc_large_stats;

void pc_large_get_stats(pc_large_stats *out);

#endif
