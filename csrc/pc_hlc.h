/* pc_hlc: a hybrid logical clock, the source of the versions a cluster's replicas share. */
#ifndef PC_HLC_H
#define PC_HLC_H

#include <stdint.h>

/* A version is 64 bits: milliseconds since 2020-01-01 UTC (42 bits, until 2159), a logical
 * counter (12 bits) for more than one version in a millisecond or a clock behind what was
 * seen, and the node (10 bits) so that two nodes never make the same version in the same
 * millisecond unless their node bits collide. Versions compare as plain integers: later
 * writes compare greater. Invariant: every version next() returns is greater than every
 * version it returned or observed before, whatever the wall clock does. */
#define PC_HLC_EPOCH_MS 1577836800000ull
#define PC_HLC_NODE_BITS 10
#define PC_HLC_LOGICAL_BITS 12

typedef struct pc_hlc {
    uint64_t last;      /* the greatest version made or observed */
    uint16_t node;      /* < 1 << PC_HLC_NODE_BITS */
} pc_hlc;

static inline void pc_hlc_init(pc_hlc *h, uint16_t node)
{
    h->last = 0;
    h->node = (uint16_t)(node & ((1u << PC_HLC_NODE_BITS) - 1));
}

/* The next version at wall time unix_ms. */
static inline uint64_t pc_hlc_next(pc_hlc *h, uint64_t unix_ms)
{
    uint64_t ms = unix_ms > PC_HLC_EPOCH_MS ? unix_ms - PC_HLC_EPOCH_MS : 0;
    uint64_t physical = ms << PC_HLC_LOGICAL_BITS;            /* logical part 0 */
    uint64_t seen = (h->last >> PC_HLC_NODE_BITS) + 1;         /* one past the last */
    uint64_t tick = physical > seen ? physical : seen;
    h->last = (tick << PC_HLC_NODE_BITS) | h->node;
    return h->last;
}

/* A version made elsewhere: later versions from here will be greater. */
static inline void pc_hlc_observe(pc_hlc *h, uint64_t version)
{
    if (version > h->last)
        h->last = version;
}

/* The wall time (unix ms) a version was made at, for people and tests. */
static inline uint64_t pc_hlc_millis(uint64_t version)
{
    return (version >> (PC_HLC_NODE_BITS + PC_HLC_LOGICAL_BITS)) + PC_HLC_EPOCH_MS;
}

#endif
