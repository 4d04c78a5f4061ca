/* graph/rng.c: splitmix64 seeding + xoshiro256** (public-domain algorithms,
 * written here from their published definitions). */
#include "rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void graph_rng_seed(struct graph_rng *r, uint64_t seed)
{
    /* splitmix64 never yields four zero words in a row, so the
     * all-zero state (a fixed point of xoshiro) cannot occur. */
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t graph_rng_next(struct graph_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double graph_rng_uniform(struct graph_rng *r)
{
    return (double)(graph_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t graph_rng_below(struct graph_rng *r, uint64_t bound)
{
    unsigned __int128 prod;
    uint64_t low, threshold;

    if (bound == 0)
        return 0;
    prod = (unsigned __int128)graph_rng_next(r) * bound;
    low = (uint64_t)prod;
    if (low < bound) {
        threshold = -bound % bound;   /* 2^64 mod bound */
        while (low < threshold) {
            prod = (unsigned __int128)graph_rng_next(r) * bound;
            low = (uint64_t)prod;
        }
    }
    return (uint64_t)(prod >> 64);
}
