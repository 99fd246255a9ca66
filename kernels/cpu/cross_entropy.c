/* Cross-entropy of logits [n, V] against integer targets, max-subtracted so large
 * logits never overflow. Sums over the vocabulary are accumulated in double. */
#include <math.h>

#include "kernels/ops.h"

void et_cross_entropy_forward(float *losses, float *lse, const float *logits,
                              const int32_t *targets, int n, int vocab) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *row = logits + (int64_t)i * vocab;
        float m = -INFINITY;
        for (int j = 0; j < vocab; j++) m = row[j] > m ? row[j] : m;
        double sum = 0.0;
        for (int j = 0; j < vocab; j++) sum += exp((double)row[j] - m);
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
        for (int j = 0; j < vocab; j++) drow[j] += g * expf(row[j] - row_lse);
        drow[targets[i]] -= g;
    }
}
