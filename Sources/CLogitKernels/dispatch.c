// Which variant runs: found once from what the CPU reports (cpuid, and xgetbv for the registers
// the OS saves), or forced by LOGITD_KERNELS; every lk_* kernel calls through the chosen table.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel_table.h"

#if defined(__x86_64__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

static int cpu_has(lk_variant variant) {
    if (variant == LK_BASELINE) return 1;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1, popcnt = (c >> 23) & 1;
    if (!(osxsave && avx && f16c && popcnt)) return 0;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; // the OS saves xmm and ymm state
    unsigned e, f, g, h;
    if (!__get_cpuid_count(7, 0, &e, &f, &g, &h)) return 0;
    const int avx2 = (f >> 5) & 1, bmi1 = (f >> 3) & 1, bmi2 = (f >> 8) & 1;
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d)) return 0;
    const int lzcnt = (c >> 5) & 1;
    if (!(avx2 && bmi1 && bmi2 && lzcnt)) return 0;
    if (variant == LK_AVX2) return 1;
    const int avx512f = (f >> 16) & 1, avx512dq = (f >> 17) & 1, avx512bw = (f >> 30) & 1, avx512vl = (f >> 31) & 1;
    // ...and opmask and zmm state.
    return variant == LK_AVX512 && avx512f && avx512dq && avx512bw && avx512vl && (xcr0 & 0xE0) == 0xE0;
}

static const lk_table *table_of(lk_variant variant) {
    switch (variant) {
    case LK_AVX512: return &lk_avx512_table;
    case LK_AVX2: return &lk_avx2_table;
    case LK_BASELINE: return &lk_baseline_table;
    default: return NULL;
    }
}
#else
static int cpu_has(lk_variant variant) { return variant == LK_PORTABLE; }

static const lk_table *table_of(lk_variant variant) { return variant == LK_PORTABLE ? &lk_portable_table : NULL; }
#endif

static const char *const names[LK_VARIANT_COUNT] = {"avx512", "avx2", "baseline", "portable"};

const char *lk_variant_name(lk_variant variant) { return variant < LK_VARIANT_COUNT ? names[variant] : "unknown"; }

int lk_variant_supported(lk_variant variant) { return variant < LK_VARIANT_COUNT && table_of(variant) && cpu_has(variant); }

int lk_variant_named(const char *name) {
    for (int variant = 0; variant < LK_VARIANT_COUNT; variant++) {
        if (strcmp(name, names[variant]) == 0) return variant;
    }
    return -1;
}

static _Atomic int active = -1;

static lk_variant widest(void) {
    for (int variant = 0; variant < LK_VARIANT_COUNT; variant++) {
        if (lk_variant_supported((lk_variant)variant)) return (lk_variant)variant;
    }
    return LK_BASELINE;
}

static lk_variant initial(void) {
    const char *forced = getenv("LOGITD_KERNELS");
    const int named = forced ? lk_variant_named(forced) : -1;
    return named >= 0 && lk_variant_supported((lk_variant)named) ? (lk_variant)named : widest();
}

lk_variant lk_active_variant(void) {
    int variant = atomic_load_explicit(&active, memory_order_relaxed);
    if (variant < 0) {
        // Racing first callers compute the same answer.
        variant = initial();
        atomic_store_explicit(&active, variant, memory_order_relaxed);
    }
    return (lk_variant)variant;
}

int lk_select(lk_variant variant) {
    if (!lk_variant_supported(variant)) return -1;
    atomic_store_explicit(&active, (int)variant, memory_order_relaxed);
    return 0;
}

const char *lk_environment_error(void) {
    static char message[256];
    const char *forced = getenv("LOGITD_KERNELS");
    if (!forced) return NULL;
    const int named = lk_variant_named(forced);
    if (named < 0) {
        snprintf(message, sizeof message, "LOGITD_KERNELS=%s is not a kernel variant (avx512, avx2, baseline, portable)", forced);
        return message;
    }
    if (!lk_variant_supported((lk_variant)named)) {
        snprintf(message, sizeof message, "LOGITD_KERNELS=%s: this CPU or build cannot run the %s kernels (widest here: %s)", forced, forced, names[widest()]);
        return message;
    }
    return NULL;
}

static inline const lk_table *kernels(void) { return table_of(lk_active_variant()); }

void lk_scan(const void *row, int64_t count, int dtype, const uint32_t *mask, float *block_maxima, int sums, float scale, lk_scan_result *result) {
    kernels()->scan(row, count, dtype, mask, block_maxima, sums, scale, result);
}

double lk_exp_sum(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale) {
    return kernels()->exp_sum(row, count, dtype, mask, shift, scale);
}

double lk_exp_moment(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale) {
    return kernels()->exp_moment(row, count, dtype, mask, shift, scale);
}

double lk_exp_write(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, float *out) {
    return kernels()->exp_write(row, count, dtype, mask, shift, scale, out);
}

void lk_affine_write(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, float *out) {
    kernels()->affine_write(row, count, dtype, mask, shift, scale, out);
}

void lk_scale_in_place(float *values, int64_t count, float factor) { kernels()->scale_in_place(values, count, factor); }

int64_t lk_collect(const void *row, int64_t count, int dtype, const uint32_t *mask, const float *block_maxima, float threshold, float scale, lk_candidate *out) {
    return kernels()->collect(row, count, dtype, mask, block_maxima, threshold, scale, out);
}

int64_t lk_inverse_cdf(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, double target) {
    return kernels()->inverse_cdf(row, count, dtype, mask, shift, scale, target);
}

void lk_candidate_weights(const lk_candidate *candidates, int64_t count, float shift, float *out) {
    kernels()->candidate_weights(candidates, count, shift, out);
}

float lk_sum(const void *row, int64_t count, int dtype) { return kernels()->sum(row, count, dtype); }

int64_t lk_count_at_least(const void *row, int64_t count, int dtype, const uint32_t *mask, float threshold) {
    return kernels()->count_at_least(row, count, dtype, mask, threshold);
}

int64_t lk_finite_moments(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, double *sums) {
    return kernels()->finite_moments(row, count, dtype, mask, shift, sums);
}

int64_t lk_distribution(const void *row, int64_t count, int dtype, double *sum) { return kernels()->distribution(row, count, dtype, sum); }

float lk_exp(float x) { return kernels()->exp(x); }
