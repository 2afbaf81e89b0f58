// The passes over a logit row, in C so that one binary carries several builds of them — AVX-512,
// AVX2 + F16C, baseline x86-64 (and a portable build elsewhere) — and uses the widest the CPU
// has, chosen once at start-up (or forced with LOGITD_KERNELS). Every variant is the same source
// (kernel_bodies.h) compiled for another target, and gives bit-identical results: see
// docs/DECODING.md, "Kernel variants".
#ifndef LOGIT_KERNELS_H
#define LOGIT_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Element types, numbered as on the wire (LogitDType).
enum { LK_F32 = 1, LK_F16 = 2, LK_BF16 = 3 };

/// Elements per block of a row summary's block maxima.
enum { LK_BLOCK = 128 };

/// The kernel variants, widest first.
typedef enum { LK_AVX512 = 0, LK_AVX2 = 1, LK_BASELINE = 2, LK_PORTABLE = 3, LK_VARIANT_COUNT = 4 } lk_variant;

/// A candidate token: the same layout as Decoding's `Candidate` (token, then logit).
typedef struct { int32_t token; float logit; } lk_candidate;

/// What one scan of a row learns.
typedef struct {
    float max_value;
    /// The lowest index holding `max_value` (0 when every element is -inf).
    int64_t max_index;
    /// Whether any element is NaN or +inf.
    int32_t saw_invalid;
    /// Σ exp((xᵢ − max_value) × scale) when the scan was asked to sum, else 0.
    double exponential_sum;
} lk_scan_result;

/// Variant names ("avx512", "avx2", "baseline", "portable"), whether this build has a variant and
/// this CPU runs it, the variant for a name (-1 when unknown).
const char *lk_variant_name(lk_variant variant);
int lk_variant_supported(lk_variant variant);
int lk_variant_named(const char *name);

/// The variant in use. On first use: LOGITD_KERNELS when it names a supported variant, else the
/// widest supported (executables check the variable with lk_environment_error first).
lk_variant lk_active_variant(void);
/// Uses `variant` from now on; returns 0, or -1 (nothing changed) when it is not supported.
int lk_select(lk_variant variant);
/// nil when LOGITD_KERNELS is unset or names a supported variant; else why it cannot be used.
const char *lk_environment_error(void);

// The kernels, through the active variant. `row` holds `count` elements of `dtype`, little-endian,
// any alignment; `mask`, when not NULL, holds ceil(count / 32) words of an allowed-token bitmask
// (bit j of word w allows token 32·w + j, least significant bit first, the layout grammar engines
// write): a token it disallows reads as -inf in every kernel, in the same pass. Every exponential
// is the same single-precision polynomial (lk_exp).

/// One pass: maximum (lowest index), NaN/+inf, the maximum of every LK_BLOCK elements into
/// `block_maxima` when not NULL, and with `sums` the online normaliser Σ exp((xᵢ − max) × scale).
void lk_scan(const void *row, int64_t count, int dtype, const uint32_t *mask, float *block_maxima, int sums, float scale, lk_scan_result *result);
/// Σ exp((xᵢ − shift) × scale) in Double.
double lk_exp_sum(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale);
/// Σ eᵢ·yᵢ, yᵢ = (xᵢ − shift) × scale, eᵢ = exp(yᵢ), terms with eᵢ = 0 left out: the entropy's
/// other sum (H = ln Σe − Σey / Σe).
double lk_exp_moment(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale);
/// outᵢ = exp((xᵢ − shift) × scale); returns their sum in Double.
double lk_exp_write(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, float *out);
/// outᵢ = (xᵢ − shift) × scale, widened to float32.
void lk_affine_write(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, float *out);
/// valuesᵢ ×= factor.
void lk_scale_in_place(float *values, int64_t count, float factor);
/// The elements ≥ `threshold` (and > -inf) of the blocks whose maximum reaches it, in token
/// order, logits × scale, written to `out`; returns how many. `out` needs room for `count` + 16
/// (the AVX2 packing stores whole groups of eight).
int64_t lk_collect(const void *row, int64_t count, int dtype, const uint32_t *mask, const float *block_maxima, float threshold, float scale, lk_candidate *out);
/// The first token where the running sum of exp((xᵢ − shift) × scale), in token order, reaches
/// `target` (the last token with a positive weight when rounding leaves the sum short).
int64_t lk_inverse_cdf(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, double target);
/// outᵢ = exp(candidatesᵢ.logit − shift).
void lk_candidate_weights(const lk_candidate *candidates, int64_t count, float shift, float *out);
/// The plain pass the benchmarks measure against: the sum of the row.
float lk_sum(const void *row, int64_t count, int dtype);
/// How many elements are ≥ `threshold`, masked ones reading -inf: the rank of a token (ties count
/// against it, as vLLM ranks).
int64_t lk_count_at_least(const void *row, int64_t count, int dtype, const uint32_t *mask, float threshold);
/// Over the finite elements: returns how many, and writes Σ (xᵢ − shift) and Σ (xᵢ − shift)² to
/// sums[0] and sums[1] (Double): top-n-σ's mean and population variance.
int64_t lk_finite_moments(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, double *sums);
/// Σ xᵢ in Double into `sum`; returns the first index whose element is NaN or negative, or -1
/// (a draft distribution's check).
int64_t lk_distribution(const void *row, int64_t count, int dtype, double *sum);

/// A cut in rank order (logit descending, token ascending among equals): tokens with a logit above
/// `logit` are kept, and at `logit` those up to `last_tied_token`.
typedef struct { float logit; int32_t last_tied_token; } lk_cut;
/// The smallest prefix of `candidates` in rank order whose `weights` reach `limit` and which holds
/// at least `min_keep` tokens (top-p's rule), found by bucketing the logits (about eight to a
/// bucket, equal logits together) and ranking only the bucket that holds the cut. Everything
/// ({-inf, INT32_MAX}) when no prefix qualifies. Not dispatched: the same scalar code everywhere.
lk_cut lk_mass_cut(const lk_candidate *candidates, int64_t count, const float *weights, double limit, int64_t min_keep);

/// Keeps, in place and in order, the candidates `cut` keeps; returns how many.
int64_t lk_keep(lk_candidate *candidates, int64_t count, lk_cut cut);

/// e^x in single precision, the polynomial every kernel uses (relative error < 2e-7 on
/// [-87.3, 88.3]; 0 below -87.3 and for -inf; NaN stays NaN); the same bits in every variant.
float lk_exp(float x);
/// e^x in double precision without libm, so that no result depends on the C library's build.
double lk_exp64(double x);

#ifdef __cplusplus
}
#endif

#endif
