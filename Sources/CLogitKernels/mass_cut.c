// Where a rank-ordered cut by probability mass falls (top-p's rule), without sorting: compiled once,
// for every variant alike, since a cut is scalar work over a short list.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "logit_kernels.h"

enum { MAX_BUCKETS = 1024, STACK_MEMBERS = 256 };

/// A candidate of the bucket holding the cut, with its weight.
typedef struct {
    float logit;
    int32_t token;
    float weight;
} member;

/// Rank order: higher logit first, lower token among equals (tokens are distinct: a total order).
static int ranks_before(const member *a, const member *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->token < b->token);
}

static int compare_rank(const void *x, const void *y) {
    const member *a = x, *b = y;
    return ranks_before(a, b) ? -1 : ranks_before(b, a) ? 1 : 0;
}

typedef struct {
    double top;
    double per_unit;
    int64_t count;
} bucketing;

/// In double, so that logits a few ulps apart (whose float difference may be subnormal, making a
/// float scale infinite and 0 × inf NaN) still land in a bucket in range.
static int64_t bucket_of(const bucketing *b, float logit) {
    if (!(logit > -INFINITY)) return b->count - 1;
    const double position = (b->top - (double)logit) * b->per_unit;
    if (!(position >= 0)) return 0;
    return position < (double)(b->count - 1) ? (int64_t)position : b->count - 1;
}

lk_cut lk_mass_cut(const lk_candidate *candidates, int64_t count, const float *weights, double limit, int64_t min_keep) {
    const lk_cut everything = {-INFINITY, INT32_MAX};
    float top = -INFINITY, bottom = INFINITY;
    for (int64_t i = 0; i < count; i++) {
        const float logit = candidates[i].logit;
        if (!(logit > -INFINITY)) continue;
        if (logit > top) top = logit;
        if (logit < bottom) bottom = logit;
    }
    if (!(top > -INFINITY)) return everything;
    int64_t buckets = count / 8 < MAX_BUCKETS ? count / 8 : MAX_BUCKETS;
    if (buckets < 1) buckets = 1;
    // Buckets are equal slices of [bottom, top], the top one first; -inf goes to the last.
    const bucketing b = {top, top > bottom ? (double)buckets / ((double)top - (double)bottom) : 0, buckets};
    double mass[MAX_BUCKETS] = {0};
    int64_t size[MAX_BUCKETS] = {0};
    for (int64_t i = 0; i < count; i++) {
        const int64_t index = bucket_of(&b, candidates[i].logit);
        mass[index] += (double)weights[i];
        size[index] += 1;
    }
    double mass_before = 0;
    int64_t count_before = 0, cut = 0;
    while (cut < buckets && !(mass_before + mass[cut] >= limit && count_before + size[cut] >= min_keep)) {
        mass_before += mass[cut];
        count_before += size[cut];
        cut++;
    }
    if (cut == buckets) return everything;
    // Only the bucket holding the cut is put in rank order.
    member stack[STACK_MEMBERS];
    member *members = size[cut] <= STACK_MEMBERS ? stack : malloc((size_t)size[cut] * sizeof *members);
    int64_t n = 0;
    for (int64_t i = 0; i < count; i++) {
        if (bucket_of(&b, candidates[i].logit) == cut) members[n++] = (member){candidates[i].logit, candidates[i].token, weights[i]};
    }
    if (n == 0) {
        if (members != stack) free(members);
        return everything;
    }
    qsort(members, (size_t)n, sizeof *members, compare_rank);
    // Falling through keeps the whole bucket: its total reached the limit in one summation order
    // and not in this one, by a rounding.
    lk_cut result = {members[n - 1].logit, members[n - 1].token};
    for (int64_t m = 0; m < n; m++) {
        count_before += 1;
        mass_before += (double)members[m].weight;
        if (mass_before >= limit && count_before >= min_keep) {
            result = (lk_cut){members[m].logit, members[m].token};
            break;
        }
    }
    if (members != stack) free(members);
    return result;
}

int64_t lk_keep(lk_candidate *candidates, int64_t count, lk_cut cut) {
    int64_t kept = 0;
    for (int64_t i = 0; i < count; i++) {
        const lk_candidate c = candidates[i];
        candidates[kept] = c;
        kept += c.logit > cut.logit || (c.logit == cut.logit && c.token <= cut.last_tied_token);
    }
    return kept;
}
