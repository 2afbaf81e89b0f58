// The kernels, written once. Each variant_*.c includes this file inside its own target region
// (`#pragma clang attribute push(__attribute__((target(...))))`), with LK_NAME naming the table
// it defines and LK_F16C set when the variant may widen f16 with F16C.
//
// Why every variant gives the same bits: the code works on vectors of sixteen lanes whatever the
// hardware width (the compiler splits them into one zmm, two ymm or four xmm registers); lane i
// always accumulates the same elements in the same order; horizontal sums and maxima run in one
// fixed tree; no multiply-add is fused (FP_CONTRACT OFF — avx512f would allow it); and the only
// operations are IEEE multiply, add, subtract, compare, select and exact conversions, which round
// the same way on every x86-64 (and every IEEE) CPU. Nothing here calls libm.

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)
#pragma clang diagnostic ignored "-Wpsabi"

#include "lanes.h"

// MARK: Kernels

/// Adds Σ exp((xᵢ − shift) × scale) over whole vectors [start, end): sixteen float lanes
/// accumulate blocks of 256 elements, and the blocks are added in Double.
INLINE void add_exponentials(f64x16 *total, view row, int64_t start, int64_t end, const int dtype, float shift, float scale) {
    int64_t index = start;
    while (index < end) {
        f32x16 block = splat(0);
        int64_t block_end = end < index + 256 ? end : index + 256;
        for (; index < block_end; index += 16) block += exp_nonpositive((load16(row, index, dtype) - shift) * scale);
        *total += __builtin_convertvector(block, f64x16);
    }
}

/// The scan: per block of 128 its maximum (NaN never wins a comparison), the running maximum and
/// the first block reaching it, NaN seen in any lane; when summing, the online normaliser: each
/// chunk of 2,048 elements summed against `reference`, the largest value before the chunk, the
/// Double total rescaled by exp((old − new) × scale) whenever a chunk raises it, and a chunk rising
/// more than e^60 above it summed again (still in L1) against its own maximum. The argmax index is
/// found afterwards in the one block that first reached the maximum.
INLINE void scan_body(view row, int64_t count, const int dtype, float *block_maxima, const int sums, const float scale, lk_scan_result *result) {
    i32x16 nan = (i32x16)(0);
    float maximum = -INFINITY;
    int64_t maximum_block = -1;
    float reference = count >= 16 ? hmax(load16(row, 0, dtype)) : -INFINITY;
    f64x16 total = (f64x16)(0.0);
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0, block = 0;
    while (index < vector_end) {
        const int64_t chunk_start = index;
        const int64_t chunk_end = vector_end < index + CHUNK ? vector_end : index + CHUNK;
        float chunk_maximum = -INFINITY;
        f64x16 chunk_total = (f64x16)(0.0);
        const f32x16 shift = splat(reference);
        while (index < chunk_end) {
            const int64_t block_end = chunk_end < index + LK_BLOCK ? chunk_end : index + LK_BLOCK;
            f32x16 block_best = splat(-INFINITY);
            f32x16 block_sum = splat(0);
            for (; index < block_end; index += 16) {
                f32x16 v = load16(row, index, dtype);
                nan |= v != v;
                block_best = v > block_best ? v : block_best;
                if (sums) block_sum += exp_nonpositive((v - shift) * scale);
            }
            float block_maximum = hmax(block_best);
            if (block_maxima) block_maxima[block] = block_maximum;
            if (block_maximum > maximum) {
                maximum = block_maximum;
                maximum_block = block;
            }
            if (block_maximum > chunk_maximum) chunk_maximum = block_maximum;
            block += 1;
            if (sums) chunk_total += __builtin_convertvector(block_sum, f64x16);
        }
        if (!sums) continue;
        if (reference > -INFINITY && (chunk_maximum - reference) * scale <= LARGEST_EXPONENT) {
            total += chunk_total;
            if (chunk_maximum > reference) {
                total *= lk_exp64((double)(reference - chunk_maximum) * (double)scale);
                reference = chunk_maximum;
            }
        } else {
            // The chunk rose too far above the reference for its exponentials (or there was none
            // yet): sum it again against its own maximum.
            if (chunk_maximum > reference) {
                if (reference > -INFINITY) total *= lk_exp64((double)(reference - chunk_maximum) * (double)scale);
                reference = chunk_maximum;
            }
            if (reference > -INFINITY) add_exponentials(&total, row, chunk_start, chunk_end, dtype, reference, scale);
        }
    }
    int saw_invalid = lane_bits(nan) != 0;
    int64_t position = -1;
    if (maximum_block >= 0) {
        // The first element equal to the maximum, in the first block that reached it (load1 reads
        // what load16 read, so it is there; the bound only keeps a broken invariant inside the row).
        const int64_t start = maximum_block * LK_BLOCK, end = start + LK_BLOCK < vector_end ? start + LK_BLOCK : vector_end;
        for (int64_t i = start; i < end && position < 0; i++) {
            if (load1(row, i, dtype) == maximum) position = i;
        }
    }
    if (block_maxima && index < count && index % LK_BLOCK == 0) block_maxima[index / LK_BLOCK] = -INFINITY;
    double exponential_sum = hsum64(total);
    for (; index < count; index++) {
        float x = load1(row, index, dtype);
        if (x != x) saw_invalid = 1;
        if (x > maximum) {
            maximum = x;
            position = index;
        }
        if (block_maxima && x > block_maxima[index / LK_BLOCK]) block_maxima[index / LK_BLOCK] = x;
        if (sums && x > -INFINITY) {
            if (x > reference) {
                if (reference > -INFINITY) exponential_sum *= lk_exp64((double)(reference - x) * (double)scale);
                reference = x;
            }
            exponential_sum += (double)exp1((x - reference) * scale);
        }
    }
    if (maximum == INFINITY) saw_invalid = 1;
    result->max_index = position < 0 ? 0 : position;
    result->max_value = position < 0 ? -INFINITY : load1(row, position, dtype);
    result->saw_invalid = saw_invalid;
    result->exponential_sum = sums ? exponential_sum : 0;
}

INLINE double exp_sum_body(view row, int64_t count, const int dtype, float shift, float scale) {
    f64x16 total = (f64x16)(0.0);
    const int64_t vector_end = count & ~(int64_t)15;
    add_exponentials(&total, row, 0, vector_end, dtype, shift, scale);
    double sum = hsum64(total);
    for (int64_t index = vector_end; index < count; index++) sum += (double)exp1((load1(row, index, dtype) - shift) * scale);
    return sum;
}

/// Σ eᵢ·yᵢ with yᵢ = (xᵢ − shift) × scale and eᵢ = exp(yᵢ) (0 where eᵢ is 0): with Σ eᵢ, the
/// entropy log Σe − Σey / Σe.
INLINE double exp_moment_body(view row, int64_t count, const int dtype, float shift, float scale) {
    f64x16 total = (f64x16)(0.0);
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    while (index < vector_end) {
        f32x16 block = splat(0);
        int64_t block_end = vector_end < index + 256 ? vector_end : index + 256;
        for (; index < block_end; index += 16) {
            const f32x16 y = (load16(row, index, dtype) - shift) * scale;
            const f32x16 e = exp_nonpositive(y);
            block += e > 0 ? e * y : splat(0);
        }
        total += __builtin_convertvector(block, f64x16);
    }
    double sum = hsum64(total);
    for (; index < count; index++) {
        const float y = (load1(row, index, dtype) - shift) * scale;
        const float e = exp1(y);
        if (e > 0) sum += (double)(e * y);
    }
    return sum;
}

INLINE double exp_write_body(view row, int64_t count, const int dtype, float shift, float scale, float *out) {
    f64x16 total = (f64x16)(0.0);
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    while (index < vector_end) {
        f32x16 block = splat(0);
        int64_t block_end = vector_end < index + 256 ? vector_end : index + 256;
        for (; index < block_end; index += 16) {
            f32x16 e = exp_nonpositive((load16(row, index, dtype) - shift) * scale);
            memcpy(out + index, &e, sizeof e);
            block += e;
        }
        total += __builtin_convertvector(block, f64x16);
    }
    double sum = hsum64(total);
    for (; index < count; index++) {
        float e = exp1((load1(row, index, dtype) - shift) * scale);
        out[index] = e;
        sum += (double)e;
    }
    return sum;
}

INLINE void affine_write_body(view row, int64_t count, const int dtype, float shift, float scale, float *out) {
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    for (; index < vector_end; index += 16) {
        f32x16 v = (load16(row, index, dtype) - shift) * scale;
        memcpy(out + index, &v, sizeof v);
    }
    for (; index < count; index++) out[index] = (load1(row, index, dtype) - shift) * scale;
}

#if LK_PACK_AVX2
#include "compress_table.h"

/// Writes the lanes of `values` whose bit is set, as (index + lane, value), packed to the front of
/// `out`; returns how many. Two groups of eight, each moved with one permutation from a table of
/// the 256 lane masks, so no branch depends on the data. Writes up to 8 candidates past the count
/// returned (the caller leaves room).
INLINE int64_t pack(f32x16 values, int64_t index, uint32_t bits, lk_candidate *out) {
    __m256 halves[2];
    memcpy(halves, &values, sizeof halves);
    int64_t written = 0;
    for (int half = 0; half < 2; half++) {
        const uint32_t mask = (bits >> (8 * half)) & 0xFF;
        const __m256i positions = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)compress_positions[mask]));
        const __m256i logits = _mm256_castps_si256(_mm256_permutevar8x32_ps(halves[half], positions));
        const __m256i tokens = _mm256_add_epi32(positions, _mm256_set1_epi32((int32_t)(index + 8 * half)));
        const __m256i low = _mm256_unpacklo_epi32(tokens, logits), high = _mm256_unpackhi_epi32(tokens, logits);
        _mm256_storeu_si256((__m256i *)(out + written), _mm256_permute2x128_si256(low, high, 0x20));
        _mm256_storeu_si256((__m256i *)(out + written + 4), _mm256_permute2x128_si256(low, high, 0x31));
        written += __builtin_popcount(mask);
    }
    return written;
}
#else
/// The same, one set bit at a time.
INLINE int64_t pack(f32x16 values, int64_t index, uint32_t bits, lk_candidate *out) {
    int64_t written = 0;
    while (bits) {
        const int lane = __builtin_ctz(bits);
        out[written].token = (int32_t)(index + lane);
        out[written].logit = values[lane];
        written++;
        bits &= bits - 1;
    }
    return written;
}
#endif

INLINE int64_t collect_body(view row, int64_t count, const int dtype, const float *block_maxima, float threshold, float scale, const int finite_threshold, lk_candidate *out) {
    int64_t written = 0;
    const int64_t blocks = (count + LK_BLOCK - 1) / LK_BLOCK;
    for (int64_t block = 0; block < blocks; block++) {
        float block_maximum = block_maxima[block];
        if (!(block_maximum >= threshold && block_maximum > -INFINITY)) continue;
        int64_t index = block * LK_BLOCK;
        const int64_t end = count < index + LK_BLOCK ? count : index + LK_BLOCK;
        for (; index + 16 <= end; index += 16) {
            f32x16 v = load16(row, index, dtype);
            // A finite threshold already excludes -inf.
            i32x16 passing = finite_threshold ? v >= threshold : (v >= threshold) & (v > -INFINITY);
            written += pack(v * scale, index, lane_bits(passing), out + written);
        }
        for (; index < end; index++) {
            float value = load1(row, index, dtype);
            if (value >= threshold && value > -INFINITY) {
                out[written].token = (int32_t)index;
                out[written].logit = value * scale;
                written++;
            }
        }
    }
    return written;
}

/// Whole vectors below the target are skipped with one sum each.
INLINE int64_t inverse_cdf_body(view row, int64_t count, const int dtype, float shift, float scale, double target) {
    double cumulative = 0;
    int64_t last_candidate = -1;
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    for (; index < vector_end; index += 16) {
        f32x16 weights = exp_nonpositive((load16(row, index, dtype) - shift) * scale);
        double vector_sum = (double)hsum(weights);
        if (cumulative + vector_sum >= target) {
            for (int lane = 0; lane < 16; lane++) {
                if (!(weights[lane] > 0)) continue;
                cumulative += (double)weights[lane];
                last_candidate = index + lane;
                if (cumulative >= target) return last_candidate;
            }
        } else {
            cumulative += vector_sum;
            uint32_t positive = lane_bits(weights > 0);
            if (positive) last_candidate = index + 31 - __builtin_clz(positive);
        }
    }
    for (; index < count; index++) {
        float weight = exp1((load1(row, index, dtype) - shift) * scale);
        if (weight > 0) {
            cumulative += (double)weight;
            last_candidate = index;
            if (cumulative >= target) return index;
        }
    }
    // Rounding left the sum a hair short of the target: the last possible token.
    return last_candidate;
}

INLINE float sum_body(view row, int64_t count, const int dtype) {
    f32x16 total = splat(0);
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    for (; index < vector_end; index += 16) total += load16(row, index, dtype);
    float result = hsum(total);
    for (; index < count; index++) result += load1(row, index, dtype);
    return result;
}

/// How many elements are ≥ threshold (masked elements read as -inf): a token's rank.
INLINE int64_t count_body(view row, int64_t count, const int dtype, float threshold) {
    int64_t total = 0;
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    for (; index < vector_end; index += 16) total += __builtin_popcount(lane_bits(load16(row, index, dtype) >= threshold));
    for (; index < count; index++) total += load1(row, index, dtype) >= threshold;
    return total;
}

/// Over the finite elements (masked ones read -inf and are left out): how many, Σ (xᵢ − shift)
/// and Σ (xᵢ − shift)² in Double — the mean and population variance of top-n-σ.
INLINE int64_t moments_body(view row, int64_t count, const int dtype, float shift, double *sums) {
    f64x16 linear = (f64x16)(0.0), squares = (f64x16)(0.0);
    i32x16 finite = (i32x16)(0);
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    while (index < vector_end) {
        f32x16 block_linear = splat(0), block_squares = splat(0);
        const int64_t block_end = vector_end < index + 256 ? vector_end : index + 256;
        for (; index < block_end; index += 16) {
            const f32x16 v = load16(row, index, dtype);
            const i32x16 keep = v > -INFINITY;
            const f32x16 d = keep ? v - shift : splat(0);
            block_linear += d;
            block_squares += d * d;
            finite -= keep;
        }
        linear += __builtin_convertvector(block_linear, f64x16);
        squares += __builtin_convertvector(block_squares, f64x16);
    }
    int64_t total = 0;
    for (int lane = 0; lane < 16; lane++) total += finite[lane];
    double sum = hsum64(linear), sum_squares = hsum64(squares);
    for (; index < count; index++) {
        const float v = load1(row, index, dtype);
        if (v > -INFINITY) {
            const float d = v - shift;
            sum += (double)d;
            sum_squares += (double)(d * d);
            total++;
        }
    }
    sums[0] = sum;
    sums[1] = sum_squares;
    return total;
}

/// Σ xᵢ in Double, and the first index whose element is not a probability (NaN or negative), or
/// -1: the check of a draft distribution.
INLINE int64_t distribution_body(view row, int64_t count, const int dtype, double *sum) {
    f64x16 total = (f64x16)(0.0);
    i32x16 invalid = (i32x16)(0);
    const int64_t vector_end = count & ~(int64_t)15;
    int64_t index = 0;
    while (index < vector_end) {
        // Eight vectors summed in float (each lane adds eight values), then widened once.
        const int64_t block_end = index + 128 < vector_end ? index + 128 : vector_end;
        f32x16 block = splat(0);
        for (; index < block_end; index += 16) {
            const f32x16 v = load16(row, index, dtype);
            invalid |= ~(v >= splat(0));
            block += v;
        }
        total += __builtin_convertvector(block, f64x16);
    }
    double result = hsum64(total);
    for (; index < count; index++) result += (double)load1(row, index, dtype);
    *sum = result;
    if (!lane_bits(invalid)) {
        for (index = vector_end; index < count; index++) if (!(load1(row, index, dtype) >= 0)) return index;
        return -1;
    }
    for (index = 0; index < count; index++) if (!(load1(row, index, dtype) >= 0)) return index;
    return -1;
}
