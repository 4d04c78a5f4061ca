/* fusion/half.c: F16 / BF16 <-> F32 by bit manipulation (no FPU mode
 * dependence, no hardware half support needed). */
#include "half.h"

#include <string.h>

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

float half_bf16_to_f32(uint16_t h)
{
    return bits_to_f32((uint32_t)h << 16);  /* BF16 is the top half of a float */
}

float half_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;

    if (exp == 0x1f)                       /* inf / NaN: keep the payload */
        return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp != 0)                          /* normal: rebias 15 -> 127 */
        return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0)
        return bits_to_f32(sign);
    /* subnormal: man * 2^-24, exact in float */
    float v = (float)man * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

uint16_t half_f32_to_bf16(float f)
{
    uint32_t u = f32_to_bits(f);

    if ((u & 0x7fffffffu) > 0x7f800000u)   /* NaN: keep it quiet, never inf */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);       /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* Round the magnitude `a` (float bits without sign) to F16 bits. */
static uint16_t f16_magnitude(uint32_t a)
{
    if (a > 0x7f800000u)
        return (uint16_t)(0x7e00u | ((a >> 13) & 0x3ffu));  /* quiet NaN */
    if (a >= 0x477ff000u)                  /* >= 65520 rounds to inf */
        return 0x7c00u;
    if (a >= 0x38800000u) {                /* >= 2^-14: normal F16 */
        uint32_t r = a - 0x38000000u;      /* rebias 127 -> 15 */
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(r >> 13);
    }
    if (a < 0x33000000u)                   /* < 2^-25: rounds to zero */
        return 0;
    /* subnormal F16: shift the full significand, round to nearest even */
    uint32_t exp = a >> 23;
    uint32_t man = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - exp;           /* 14..24 */
    uint32_t q = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)q;
}

uint16_t half_f32_to_f16(float f)
{
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)(sign | f16_magnitude(u & 0x7fffffffu));
}
