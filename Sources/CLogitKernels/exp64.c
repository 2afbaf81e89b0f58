// e^x in double precision with no libm: the online normaliser rescales its running total with it,
// and a token choice depends on that total, so its bits must not depend on the C library.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "logit_kernels.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

double lk_exp64(double x) {
    if (x != x) return x;
    if (x > 709.0) return INFINITY;
    if (x < -708.0) return 0.0;
    // x = n·ln2 + r, |r| ≤ ln2/2, with ln2 in two parts (fdlibm's) so that n·ln2High is exact.
    const double rounding = 6755399441055744.0; // 1.5 × 2^52
    const double shifted = x * 1.4426950408889634 + rounding;
    const double n = shifted - rounding;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    // Taylor to r¹³: the remainder is below 4e-18 for |r| ≤ ln2/2.
    static const double inverse_factorials[] = {
        1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
        1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0,
    };
    double y = inverse_factorials[0];
    for (int k = 1; k < 14; k++) y = y * r + inverse_factorials[k];
    // 2ⁿ into the exponent bits: for x ≥ -708, n ≥ -1022 and y ≥ 0.7, so the result is normal.
    uint64_t bits;
    memcpy(&bits, &y, sizeof bits);
    bits += (uint64_t)(int64_t)n << 52;
    memcpy(&y, &bits, sizeof y);
    return y;
}
