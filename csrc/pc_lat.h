/* pc_lat: per-command service-time histograms, sampled on the request path, read at scrape. */
#ifndef PC_LAT_H
#define PC_LAT_H

#include <stdint.h>
#include <time.h>

/* One request in PC_LAT_EVERY is timed (two clock reads, no allocation, no Python): timing
 * every request would cost two vDSO clock calls each (~40 ns, a few percent of a get). The
 * histograms therefore count samples, not requests; the cmd_* counters count requests.
 *
 * Bucket i (0 <= i < PC_LAT_BUCKETS) counts samples with ns < 1000 << i and not in a lower
 * bucket: upper bounds 1 us, 2 us, 4 us ... 2.1 s. Bucket PC_LAT_BUCKETS counts the rest.
 * Indexes are the protocol's command numbers (pc_cmd); others are never recorded. */
enum { PC_LAT_CMDS = 32, PC_LAT_BUCKETS = 22, PC_LAT_EVERY = 16 };

typedef struct pc_lat {
    uint64_t count[PC_LAT_CMDS][PC_LAT_BUCKETS + 1];
    uint64_t sum_ns[PC_LAT_CMDS];
    uint32_t tick;
} pc_lat;

/* True for one call in PC_LAT_EVERY. */
static inline int pc_lat_due(pc_lat *l)
{
    return (++l->tick & (PC_LAT_EVERY - 1)) == 0;
}

static inline uint64_t pc_lat_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void pc_lat_add(pc_lat *l, unsigned cmd, uint64_t ns)
{
    uint64_t us = ns / 1000;
    unsigned b = us == 0 ? 0 : 64 - (unsigned)__builtin_clzll(us);
    if (cmd >= PC_LAT_CMDS)
        return;
    if (b > PC_LAT_BUCKETS)
        b = PC_LAT_BUCKETS;
    l->count[cmd][b]++;
    l->sum_ns[cmd] += ns;
}

#endif
