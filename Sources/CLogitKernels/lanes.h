// What every kernel is built from: the sixteen-lane types, fixed-order horizontal reductions,
// loading (widening f16/bf16, applying a mask) and exp. Included by kernel_bodies.h, so it is
// compiled inside each variant's target region like the kernels themselves.

typedef float f32x16 __attribute__((ext_vector_type(16)));
typedef float f32x32 __attribute__((ext_vector_type(32)));
typedef float f32x8 __attribute__((ext_vector_type(8)));
typedef float f32x4 __attribute__((ext_vector_type(4)));
typedef float f32x2 __attribute__((ext_vector_type(2)));
typedef double f64x16 __attribute__((ext_vector_type(16)));
typedef double f64x8 __attribute__((ext_vector_type(8)));
typedef double f64x4 __attribute__((ext_vector_type(4)));
typedef double f64x2 __attribute__((ext_vector_type(2)));
typedef int32_t i32x16 __attribute__((ext_vector_type(16)));
typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));
typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
typedef _Bool b16 __attribute__((ext_vector_type(16)));
#if LK_F16C
typedef _Float16 h16x16 __attribute__((ext_vector_type(16)));
#endif

#define INLINE static inline __attribute__((always_inline))
#define CHUNK 2048
/// How far (× scale) a chunk may rise above the online sum's reference and still be summed
/// against it: e^60 × 2,048 terms stays far inside float32.
#define LARGEST_EXPONENT 60.0f

// MARK: Lanes

INLINE f32x16 splat(float x) { return (f32x16)(x); }

INLINE float hmax(f32x16 v) {
    f32x8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    f32x8 b = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    a = b > a ? b : a;
    f32x4 c = __builtin_shufflevector(a, a, 0, 1, 2, 3), d = __builtin_shufflevector(a, a, 4, 5, 6, 7);
    c = d > c ? d : c;
    f32x2 e = __builtin_shufflevector(c, c, 0, 1), f = __builtin_shufflevector(c, c, 2, 3);
    e = f > e ? f : e;
    return e[1] > e[0] ? e[1] : e[0];
}

INLINE float hsum(f32x16 v) {
    f32x8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    f32x4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    f32x2 c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
    return c[0] + c[1];
}

INLINE double hsum64(f64x16 v) {
    f64x8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    f64x4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    f64x2 c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
    return c[0] + c[1];
}

/// Lane i's truth as bit i (a mask lane is all ones or all zeros).
INLINE uint32_t lane_bits(i32x16 mask) {
#if LK_PACK_AVX2
    // Two sign-bit extractions: what the generic conversion becomes is several packs.
    __m256 halves[2];
    memcpy(halves, &mask, sizeof halves);
    return (uint32_t)_mm256_movemask_ps(halves[0]) | ((uint32_t)_mm256_movemask_ps(halves[1]) << 8);
#else
    b16 bits = __builtin_convertvector(mask, b16);
    uint16_t word;
    memcpy(&word, &bits, sizeof word);
    return word;
#endif
}

// MARK: Loading

/// f16 → f32, exactly: with F16C one instruction; without it from the bits (below), which gives
/// the same floats.
INLINE f32x16 widen_half(u16x16 halves) {
#if LK_F16C
    h16x16 h;
    memcpy(&h, &halves, sizeof h);
    return __builtin_convertvector(h, f32x16);
#else
    // The magnitude's bits moved into float32's fields read as a float32 that is 2^112 too small
    // (normal halves and subnormal ones alike, the latter as float32 subnormals): one exact
    // multiply. Infinity and NaN (half exponent 31) keep an all-ones exponent instead. Signed lanes,
    // since every value is below 2^16 and SSE2 compares signed.
    i32x16 x = __builtin_convertvector(halves, i32x16);
    i32x16 sign = (x & 0x8000) << 16;
    i32x16 magnitude = x & 0x7FFF;
    i32x16 finite = (i32x16)((f32x16)(magnitude << 13) * 0x1p112f);
    i32x16 bits = magnitude > 0x7BFF ? (magnitude << 13) | 0x7F800000 : finite;
    return (f32x16)(bits | sign);
#endif
}

/// A row as the kernels read it: its elements and, when not NULL, its allowed-token bitmask (bit j
/// of word w allows token 32·w + j); a token the mask disallows reads as -inf, whatever is stored.
typedef struct {
    const void *base;
    const uint32_t *mask;
} view;

/// The mask word holding token `index`'s bit (any alignment: a mask may sit anywhere in a frame).
INLINE uint32_t mask_word(const uint32_t *mask, int64_t index) {
    uint32_t word;
    memcpy(&word, (const char *)mask + (index >> 5) * 4, sizeof word);
    return word;
}

/// Elements index ..< index + 16 as float32 (index a multiple of 16).
INLINE f32x16 load16(view row, int64_t index, const int dtype) {
    const char *base = (const char *)row.base;
    f32x16 v;
    if (dtype == LK_F32) {
        memcpy(&v, base + index * 4, sizeof v);
    } else {
        u16x16 halves;
        memcpy(&halves, base + index * 2, sizeof halves);
        v = dtype == LK_BF16 ? (f32x16)(__builtin_convertvector(halves, u32x16) << 16) : widen_half(halves);
    }
    if (row.mask) {
        // Sixteen bits of one word: index is a multiple of 16. Grammar masks are mostly runs of
        // allowed or disallowed tokens, so whole groups skip the per-lane select.
        const int32_t word = (int32_t)(mask_word(row.mask, index) >> (index & 31));
        if ((word & 0xFFFF) == 0) {
            v = splat(-INFINITY);
        } else if ((word & 0xFFFF) != 0xFFFF) {
            const i32x16 lanes = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
            v = ((i32x16)(word) & lanes) != 0 ? v : splat(-INFINITY);
        }
    }
    return v;
}

/// Element index as float32, widened and masked exactly as load16 does it.
INLINE float load1(view row, int64_t index, const int dtype) {
    if (row.mask && !((mask_word(row.mask, index) >> (index & 31)) & 1)) return -INFINITY;
    const char *base = (const char *)row.base;
    if (dtype == LK_F32) {
        float v;
        memcpy(&v, base + index * 4, sizeof v);
        return v;
    }
    uint16_t half;
    memcpy(&half, base + index * 2, sizeof half);
    if (dtype == LK_BF16) {
        uint32_t bits = (uint32_t)half << 16;
        float v;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    return widen_half((u16x16)(half))[0];
}

// MARK: exp

/// e^x for x ≤ 88.3 and not NaN: Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, then
/// e^r ≈ 1 + r + r²·P(r) with P a cubic (relative error below 1.8e-7 over the whole range), and
/// 2ⁿ added to the exponent bits (for x ≥ -87.3 the result is never subnormal, so this equals a
/// multiply by 2ⁿ). Below -87.3 (and at -inf) exactly 0.
INLINE f32x16 exp_nonpositive(f32x16 x) {
    // Adding 1.5 × 2^23 rounds x·log2(e) to the nearest integer (ties to even) in the float's low
    // mantissa bits: subtracting it back gives n as a float, the bit difference n as an integer.
    const float rounding = 12582912.0f;
    f32x16 shifted = x * 1.44269504f + rounding;
    f32x16 n = shifted - rounding;
    u32x16 n_bits = (u32x16)shifted - 0x4B400000u;
    // ln 2 split in two so that n · ln2High is exact.
    f32x16 r = n * 2.1219444e-4f + (n * -0.693359375f + x);
    // P(r) = (c0 + c1·r) + r²·(c2 + c3·r), by Estrin's scheme (a shorter dependency chain than
    // Horner's): a minimax fit of (e^r − 1 − r) / r² for relative error on |r| ≤ ln2/2 (weighted
    // least squares iterated to equal ripple), one degree below Cephes' Taylor-like polynomial.
    f32x16 r2 = r * r;
    f32x16 low = r * 1.666709185e-1f + 4.999918342e-1f;
    f32x16 high = r * 8.316239342e-3f + 4.189589992e-2f;
    f32x16 p = r2 * high + low;
    f32x16 y = (p * r2 + r) + 1.0f;
    f32x16 scaled = (f32x16)((u32x16)y + (n_bits << 23));
    return x < -87.3f ? splat(0) : scaled;
}

/// e^x for any x: above 88.3 as at 88.3 (finite), NaN stays NaN.
INLINE f32x16 exp_any(f32x16 x) {
    f32x16 result = exp_nonpositive(x > 88.3f ? splat(88.3f) : x);
    return x != x ? x : result;
}

INLINE float exp1(float x) { return exp_any(splat(x))[0]; }
