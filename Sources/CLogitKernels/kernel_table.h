// One variant's kernels: the table each variant_*.c fills and dispatch.c chooses from.
#ifndef LOGIT_KERNEL_TABLE_H
#define LOGIT_KERNEL_TABLE_H

#include "logit_kernels.h"

typedef struct {
    void (*scan)(const void *, int64_t, int, const uint32_t *, float *, int, float, lk_scan_result *);
    double (*exp_sum)(const void *, int64_t, int, const uint32_t *, float, float);
    double (*exp_moment)(const void *, int64_t, int, const uint32_t *, float, float);
    double (*exp_write)(const void *, int64_t, int, const uint32_t *, float, float, float *);
    void (*affine_write)(const void *, int64_t, int, const uint32_t *, float, float, float *);
    void (*scale_in_place)(float *, int64_t, float);
    int64_t (*collect)(const void *, int64_t, int, const uint32_t *, const float *, float, float, lk_candidate *);
    int64_t (*inverse_cdf)(const void *, int64_t, int, const uint32_t *, float, float, double);
    void (*candidate_weights)(const lk_candidate *, int64_t, float, float *);
    float (*sum)(const void *, int64_t, int);
    int64_t (*count_at_least)(const void *, int64_t, int, const uint32_t *, float);
    int64_t (*finite_moments)(const void *, int64_t, int, const uint32_t *, float, double *);
    int64_t (*distribution)(const void *, int64_t, int, double *);
    float (*exp)(float);
} lk_table;

#if defined(__x86_64__)
extern const lk_table lk_avx512_table;
extern const lk_table lk_avx2_table;
extern const lk_table lk_baseline_table;
#else
extern const lk_table lk_portable_table;
#endif

#endif
