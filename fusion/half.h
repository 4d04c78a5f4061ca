/* fusion/half.h: IEEE binary16 (F16) and bfloat16 (BF16) <-> binary32.
 *
 * Widening is exact (every F16 and BF16 value is a float), including
 * subnormals, infinities and NaN (the payload is kept, shifted). Narrowing
 * rounds to nearest, ties to even; values beyond the format's range become
 * +-inf; NaN stays a (quiet) NaN, never turns into inf.
 */
#ifndef PLORA_HALF_H
#define PLORA_HALF_H

#include <stdint.h>

float half_f16_to_f32(uint16_t h);
float half_bf16_to_f32(uint16_t h);
uint16_t half_f32_to_f16(float f);
uint16_t half_f32_to_bf16(float f);

#endif
