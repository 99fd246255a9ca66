/* Elementwise ops and reductions: residual add, in-place scale, sum of squares. */
#include <omp.h>

#include "kernels/ops.h"

void et_add_forward(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void et_add_backward(float *da, float *db, const float *dout, int64_t n) {
    if (da) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) da[i] += dout[i];
    }
    if (db) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) db[i] += dout[i];
    }
}

void et_scale(float *x, float s, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

/* Used for gradient norms (DP clipping), so it sums in double. Each thread sums
 * one contiguous block and the block sums are added in block order, so the result
 * is reproducible for a given thread count (an OpenMP reduction clause combines
 * partials in arrival order). */
double et_sumsq(const float *x, int64_t n) {
    enum { MAX_BLOCKS = 256 };
    double block_sum[MAX_BLOCKS] = {0};
    int nblocks = omp_get_max_threads();
    if (nblocks > MAX_BLOCKS) nblocks = MAX_BLOCKS;
#pragma omp parallel for schedule(static) num_threads(nblocks)
    for (int blk = 0; blk < nblocks; blk++) {
        int64_t lo = n * blk / nblocks, hi = n * (blk + 1) / nblocks;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
        block_sum[blk] = s;
    }
    double s = 0.0;
    for (int blk = 0; blk < nblocks; blk++) s += block_sum[blk];
    return s;
}
