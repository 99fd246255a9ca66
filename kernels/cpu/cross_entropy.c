/* Cross-entropy of logits [n, V] against integer targets, max-subtracted so large
 * logits never overflow. Sums over the vocabulary are accumulated in double; the
 * exponentials use the vectorisable et_expf (they dominate at a 32k-128k vocabulary). */
#include <math.h>

#include "kernels/cpu/fast_exp.h"
#include "kernels/ops.h"

void et_cross_entropy_forward(float *losses, float *lse, const float *logits,
                              const int32_t *targets, int n, int vocab) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *row = logits + (int64_t)i * vocab;
        float m = -INFINITY;
        for (int j = 0; j < vocab; j++) m = row[j] > m ? row[j] : m;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < vocab; j++) sum += (double)et_expf(row[j] - m);
        double row_lse = m + log(sum);
        lse[i] = (float)row_lse;
        losses[i] = targets[i] < 0 ? 0.0f : (float)(row_lse - row[targets[i]]);
    }
}

void et_cross_entropy_backward(float *dlogits, const float *logits, const float *lse,
                               const int32_t *targets, const float *dloss, int n, int vocab) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        if (targets[i] < 0) continue;
        const float *row = logits + (int64_t)i * vocab;
        float *drow = dlogits + (int64_t)i * vocab;
        const float g = dloss[i], row_lse = lse[i];
#pragma omp simd
        for (int j = 0; j < vocab; j++) drow[j] += g * et_expf(row[j] - row_lse);
        drow[targets[i]] -= g;
    }
}
