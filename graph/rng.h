/* graph/rng.h: the overlay's pseudo-random generator, fixed for all builds.
 *
 * xoshiro256** (Blackman & Vigna, 2018) seeded by four outputs of splitmix64
 * from one 64-bit seed. Integer arithmetic only, so the stream is identical
 * on every machine: every node of a cluster that knows the seed draws the
 * same numbers and so derives the same overlay. Never rand().
 * The state is a plain value (copy it to fork a stream); not thread-safe.
 */
#ifndef PLORA_GRAPH_RNG_H
#define PLORA_GRAPH_RNG_H

#include <stdint.h>

struct graph_rng {
    uint64_t s[4];
};

/* Seed from one 64-bit value (any value, 0 included, gives a valid state). */
void graph_rng_seed(struct graph_rng *r, uint64_t seed);
/* Next 64 random bits. */
uint64_t graph_rng_next(struct graph_rng *r);
/* Uniform double in [0, 1): the top 53 bits times 2^-53 (exact, no libm). */
double graph_rng_uniform(struct graph_rng *r);
/* Uniform integer in [0, bound), bound >= 1, without modulo bias
 * (Lemire's multiply-and-reject); bound 0 returns 0. */
uint64_t graph_rng_below(struct graph_rng *r, uint64_t bound);

#endif
