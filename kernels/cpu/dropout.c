/* Inverted dropout with a counter-based mask: element i of a call with (seed,
 * offset) is kept iff et_uniform(seed, offset + i) >= p (Philox4x32-10, see
 * philox.c), so any backend, thread count or chunking reproduces the same mask.
 * Kept values are multiplied by scale = 1.0f / (1.0f − p), computed in fp32. */
#include <string.h>

#include "kernels/ops.h"

void et_dropout_forward(float *out, uint8_t *keep, const float *x, float p, uint64_t seed,
                        uint64_t offset, int64_t n) {
    if (p <= 0.0f) {
        if (out != x) memmove(out, x, (size_t)n * sizeof(float));
        memset(keep, 1, (size_t)n);
        return;
    }
    /* p >= 1 drops everything (every uniform is < 1); written as a select, not
     * x · 0 · inf, so no NaN appears. */
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint8_t k = et_uniform(seed, offset + (uint64_t)i) >= p;
        keep[i] = k;
        out[i] = k ? x[i] * scale : 0.0f;
    }
}

void et_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float p, int64_t n) {
    const float scale = p <= 0.0f ? 1.0f : p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        if (keep[i]) dx[i] += dout[i] * scale;
}
