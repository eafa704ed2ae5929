/* pc_large: big items in pages of their own, with a bounded cache of freed ranges. */
#include "pc_large.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

/* Few slots: under a flood each store takes one range and its evictions give back about as
 * many bytes, so the cache turns over rather than grows. */
#define PC_LARGE_CACHE_SLOTS 32

/* A freed range that is still mapped and resident, kept for the next big item. Ranges are
 * split (an item takes the head of a larger one, the tail stays cached) and merged with
 * cached neighbours, so that what the evictions free can serve the next store whatever its
 * size, without page faults; only bytes beyond the cache's bound go back to the kernel. */
typedef struct range {
    char *p;
    size_t len;       /* whole pages */
    unsigned gen;     /* trim generation it was cached in */
} range;

typedef struct pc_large_state {
    range cache[PC_LARGE_CACHE_SLOTS];
    size_t ncached;
    size_t cache_bytes;
    size_t cache_max;
    unsigned gen;
    pc_large_stats st;
} pc_large_state;

/* Each Python extension links its own copy of the core (a static library), and the node
 * allocates items in one extension while its expiry crawler frees some in another: separate
 * copies of this state would each keep a cache and counters that drift apart. So the copy in
 * the extension that calls pc_large_share() first exports its state under this name (its
 * library is made RTLD_GLOBAL), and every copy looks the name up on first use. */
__attribute__((visibility("default"))) pc_large_state pc_large_shared_state = {
    .cache_max = PC_LARGE_CACHE_DEFAULT,
};
static pc_large_state *shared;

static pc_large_state *state(void)
{
    if (shared == NULL) {
        shared = dlsym(RTLD_DEFAULT, "pc_large_shared_state");
        if (shared == NULL)
            shared = &pc_large_shared_state;
    }
    return shared;
}

int pc_large_share(void)
{
    Dl_info info;
    if (!dladdr(&pc_large_shared_state, &info) || info.dli_fname == NULL)
        return -1;
    /* Already loaded: this only widens the scope of its symbols to the whole process. */
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    if (h == NULL)
        return -1;
    dlclose(h);
    return state() == &pc_large_shared_state ? 0 : -1;
}

size_t pc_large_size(size_t size)
{
    static size_t page;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return (size + page - 1) & ~(page - 1);
}

static void drop(pc_large_state *L, size_t i)
{
    L->cache_bytes -= L->cache[i].len;
    L->cache[i] = L->cache[--L->ncached];
}

static size_t smallest(const pc_large_state *L)
{
    size_t s = 0;
    for (size_t i = 1; i < L->ncached; i++)
        if (L->cache[i].len < L->cache[s].len)
            s = i;
    return s;
}

/* Caches a freed range: merged with the cached ranges it touches, then the smallest ranges
 * (the new one included) are unmapped until the cache is within its bounds. */
static void put(pc_large_state *L, char *p, size_t len)
{
    for (size_t i = 0; i < L->ncached;) {
        range *r = &L->cache[i];
        if (r->p + r->len == p || p + len == r->p) {
            if (r->p < p)
                p = r->p;
            len += r->len;
            drop(L, i);
            i = 0;
        } else {
            i++;
        }
    }
    if (len > L->cache_max) {       /* could never fit: keep what is cached */
        munmap(p, len);
        return;
    }
    while (L->ncached == PC_LARGE_CACHE_SLOTS || L->cache_bytes + len > L->cache_max) {
        size_t s = smallest(L);
        if (L->ncached == 0 || L->cache[s].len >= len) {
            munmap(p, len);
            return;
        }
        munmap(L->cache[s].p, L->cache[s].len);
        drop(L, s);
    }
    L->cache[L->ncached++] = (range){p, len, L->gen};
    L->cache_bytes += len;
}

/* n bytes from the cache: the head of the smallest range that holds them (its tail stays
 * cached), else the largest range grown by mremap (only the difference is new memory).
 * MAP_FAILED when the cache is empty or mremap fails. */
static void *take(pc_large_state *L, size_t n)
{
    if (L->ncached == 0)
        return MAP_FAILED;
    size_t best = L->ncached, largest = 0;
    for (size_t i = 0; i < L->ncached; i++) {
        if (L->cache[i].len >= n && (best == L->ncached || L->cache[i].len < L->cache[best].len))
            best = i;
        if (L->cache[i].len > L->cache[largest].len)
            largest = i;
    }
    if (best < L->ncached) {
        range *r = &L->cache[best];
        char *p = r->p;
        if (r->len == n) {
            drop(L, best);
        } else {
            r->p += n;
            r->len -= n;
            L->cache_bytes -= n;
        }
        L->st.cache_hits++;
        return p;
    }
    char *old = L->cache[largest].p;
    size_t len = L->cache[largest].len;
    drop(L, largest);
    /* A range merged from two mappings the kernel kept apart cannot be remapped. */
    void *p = mremap(old, len, n, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        munmap(old, len);
    else
        L->st.cache_grows++;
    return p;
}

/* Where a block of `size` bytes starts in its pages: at their end (16-byte aligned), not their
 * start. Values are copied in from read buffers, where they start a few dozen bytes into a
 * page; a block at a page's start puts the copy's source and destination at nearly the same
 * offset in their pages, which the CPU mistakes for overlapping stores ("4K aliasing"):
 * memmove of the value ran at half speed in the 1 MB flood. Ending at the pages' end spreads
 * the offsets at no cost in bytes. */
static size_t block_offset(size_t size)
{
    return (pc_large_size(size) - size) & ~(size_t)15;
}

void *pc_large_alloc(size_t size)
{
    pc_large_state *L = state();
    size_t n = pc_large_size(size);
    void *p = take(L, n);
    if (p == MAP_FAILED) {
        if (L->st.mapped + L->ncached >= PC_LARGE_MAX_MAPPINGS) {
            L->st.fallbacks++;
            return NULL;
        }
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            L->st.fallbacks++;
            return NULL;
        }
        L->st.cache_misses++;
    }
    L->st.mapped++;
    L->st.mapped_bytes += n;
    return (char *)p + block_offset(size);
}

void pc_large_free(void *p, size_t size)
{
    pc_large_state *L = state();
    size_t n = pc_large_size(size);
    L->st.mapped--;
    L->st.mapped_bytes -= n;
    put(L, (char *)p - block_offset(size), n);
}

size_t pc_large_trim(int all)
{
    pc_large_state *L = state();
    size_t released = 0;
    for (size_t i = 0; i < L->ncached;) {
        if (all || L->cache[i].gen != L->gen) {
            released += L->cache[i].len;
            munmap(L->cache[i].p, L->cache[i].len);
            drop(L, i);
        } else {
            i++;
        }
    }
    L->gen++;
    return released;
}

void pc_large_set_cache_max(size_t bytes)
{
    pc_large_state *L = state();
    L->cache_max = bytes;
    while (L->ncached && L->cache_bytes > L->cache_max) {
        size_t s = smallest(L);
        munmap(L->cache[s].p, L->cache[s].len);
        drop(L, s);
    }
}

size_t pc_large_cache_max(void) { return state()->cache_max; }

void pc_large_get_stats(pc_large_stats *out)
{
    pc_large_state *L = state();
    *out = L->st;
    out->cached = L->ncached;
    out->cached_bytes = L->cache_bytes;
}
