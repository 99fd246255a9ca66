/* Inverted dropout with a counter-based mask: element i of a call with (seed,
 * offset) is kept iff et_dropout_uniform(seed, offset + i) >= p (Philox4x32-10, all
 * four words of a block, see philox.c), so any backend, thread count or chunking
 * reproduces the same mask. Kept values are multiplied by scale = 1.0f / (1.0f − p),
 * computed in fp32. */
#include <string.h>

#include "kernels/ops.h"

void et_dropout_forward(float *out, uint8_t *keep, const float *x, float p, uint64_t seed,
                        uint64_t offset, int64_t n) {
    if (n <= 0) return;
    if (p <= 0.0f) {
        if (out != x) memmove(out, x, (size_t)n * sizeof(float));
        if (keep) memset(keep, 1, (size_t)n);
        return;
    }
    /* p >= 1 drops everything (every uniform is < 1); written as a select, not
     * x · 0 · inf, so no NaN appears. */
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    /* one Philox block per four stream positions: blocks first .. last cover
     * positions offset .. offset + n − 1 */
    const int64_t first = (int64_t)(offset >> 2);
    const int64_t blocks = (int64_t)((offset + (uint64_t)n - 1) >> 2) - first + 1;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        float u[4];
        et_dropout_uniform4(seed, (uint64_t)(first + b), u);
        for (int w = 0; w < 4; w++) {
            const int64_t i = (int64_t)(((uint64_t)(first + b) << 2) + (uint64_t)w - offset);
            if (i < 0 || i >= n) continue;
            const uint8_t k = u[w] >= p;
            if (keep) keep[i] = k;
            out[i] = k ? x[i] * scale : 0.0f;
        }
    }
}

void et_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float p, int64_t n) {
    const float scale = p <= 0.0f ? 1.0f : p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        if (keep[i]) dx[i] += dout[i] * scale;
}
