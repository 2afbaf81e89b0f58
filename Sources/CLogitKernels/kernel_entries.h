// The entry points of one variant's kernels and its table, from the bodies in kernel_bodies.h:
// included right after it by each variant_*.c, inside the same target region.

// MARK: Entry points: one specialisation per element type, with and without a mask, and for
// scale 1 (no multiply) where a kernel scales.

/// One case per element type; PREFIX and SUFFIX make each case return (see DISPATCH).
#define BY_DTYPE(PREFIX, SUFFIX, BODY, VIEW, ...) \
    switch (dtype) { \
    case LK_F16: PREFIX BODY(VIEW, count, LK_F16, __VA_ARGS__) SUFFIX; \
    case LK_BF16: PREFIX BODY(VIEW, count, LK_BF16, __VA_ARGS__) SUFFIX; \
    default: PREFIX BODY(VIEW, count, LK_F32, __VA_ARGS__) SUFFIX; \
    }

#define DISPATCH_WITH(PREFIX, SUFFIX, BODY, ...) \
    do { \
        if (mask) { \
            const view masked = {row, mask}; \
            BY_DTYPE(PREFIX, SUFFIX, BODY, masked, __VA_ARGS__) \
        } \
        const view plain = {row, NULL}; \
        BY_DTYPE(PREFIX, SUFFIX, BODY, plain, __VA_ARGS__) \
    } while (0)

/// Calls BODY specialised for the element type and the mask's presence, and returns its value.
#define DISPATCH(BODY, ...) DISPATCH_WITH(return, , BODY, __VA_ARGS__)
/// The same for a kernel with no value.
#define DISPATCH_VOID(BODY, ...) DISPATCH_WITH(, ; return, BODY, __VA_ARGS__)

static void LK_NAME(scan)(const void *row, int64_t count, int dtype, const uint32_t *mask, float *block_maxima, int sums, float scale, lk_scan_result *result) {
    if (!sums) DISPATCH_VOID(scan_body, block_maxima, 0, 1, result);
    if (scale == 1.0f) DISPATCH_VOID(scan_body, block_maxima, 1, 1, result);
    DISPATCH_VOID(scan_body, block_maxima, 1, scale, result);
}

static double LK_NAME(exp_sum)(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale) {
    if (scale == 1.0f) DISPATCH(exp_sum_body, shift, 1);
    DISPATCH(exp_sum_body, shift, scale);
}

static double LK_NAME(exp_moment)(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale) {
    DISPATCH(exp_moment_body, shift, scale);
}

static double LK_NAME(exp_write)(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, float *out) {
    if (scale == 1.0f) DISPATCH(exp_write_body, shift, 1, out);
    DISPATCH(exp_write_body, shift, scale, out);
}

static void LK_NAME(affine_write)(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, float *out) {
    DISPATCH_VOID(affine_write_body, shift, scale, out);
}

static void LK_NAME(scale_in_place)(float *values, int64_t count, float factor) {
    affine_write_body((view){values, NULL}, count, LK_F32, 0, factor, values);
}

static int64_t LK_NAME(collect)(const void *row, int64_t count, int dtype, const uint32_t *mask, const float *block_maxima, float threshold, float scale, lk_candidate *out) {
    if (threshold > -INFINITY) DISPATCH(collect_body, block_maxima, threshold, scale, 1, out);
    DISPATCH(collect_body, block_maxima, threshold, scale, 0, out);
}

static int64_t LK_NAME(inverse_cdf)(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, float scale, double target) {
    if (scale == 1.0f) DISPATCH(inverse_cdf_body, shift, 1, target);
    DISPATCH(inverse_cdf_body, shift, scale, target);
}

/// Sixteen candidates are 32 floats, tokens in the even lanes and logits in the odd ones.
static void LK_NAME(candidate_weights)(const lk_candidate *candidates, int64_t count, float shift, float *out) {
    int64_t index = 0;
    for (; index + 16 <= count; index += 16) {
        f32x32 pairs;
        memcpy(&pairs, candidates + index, sizeof pairs);
        f32x16 logits = __builtin_shufflevector(pairs, pairs, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        f32x16 e = exp_nonpositive(logits - shift);
        memcpy(out + index, &e, sizeof e);
    }
    for (; index < count; index++) out[index] = exp1(candidates[index].logit - shift);
}

static float LK_NAME(sum)(const void *row, int64_t count, int dtype) {
    const view plain = {row, NULL};
    switch (dtype) {
    case LK_F16: return sum_body(plain, count, LK_F16);
    case LK_BF16: return sum_body(plain, count, LK_BF16);
    default: return sum_body(plain, count, LK_F32);
    }
}

static int64_t LK_NAME(count_at_least)(const void *row, int64_t count, int dtype, const uint32_t *mask, float threshold) {
    DISPATCH(count_body, threshold);
}

static int64_t LK_NAME(finite_moments)(const void *row, int64_t count, int dtype, const uint32_t *mask, float shift, double *sums) {
    DISPATCH(moments_body, shift, sums);
}

static int64_t LK_NAME(distribution)(const void *row, int64_t count, int dtype, double *sum) {
    const view plain = {row, NULL};
    switch (dtype) {
    case LK_F16: return distribution_body(plain, count, LK_F16, sum);
    case LK_BF16: return distribution_body(plain, count, LK_BF16, sum);
    default: return distribution_body(plain, count, LK_F32, sum);
    }
}

static float LK_NAME(exp)(float x) { return exp1(x); }

const lk_table LK_NAME(table) = {
    .scan = LK_NAME(scan),
    .exp_sum = LK_NAME(exp_sum),
    .exp_moment = LK_NAME(exp_moment),
    .exp_write = LK_NAME(exp_write),
    .affine_write = LK_NAME(affine_write),
    .scale_in_place = LK_NAME(scale_in_place),
    .collect = LK_NAME(collect),
    .inverse_cdf = LK_NAME(inverse_cdf),
    .candidate_weights = LK_NAME(candidate_weights),
    .sum = LK_NAME(sum),
    .count_at_least = LK_NAME(count_at_least),
    .finite_moments = LK_NAME(finite_moments),
    .distribution = LK_NAME(distribution),
    .exp = LK_NAME(exp),
};
