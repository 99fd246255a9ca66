/* Linear layer in the HF layout: out[n, out] = x[n, in] · w[out, in]ᵀ + bias. */
#include <omp.h>
#include <stdlib.h>

#include "kernels/ops.h"

void et_linear_forward(float *out, const float *x, const float *w, const float *bias,
                       int n, int in_dim, int out_dim) {
    et_matmul(out, x, w, n, out_dim, in_dim, 0, 1, 1.0f, 0.0f);
    if (!bias) return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out_dim; j++) out[(int64_t)i * out_dim + j] += bias[j];
}

/* dbias[j] += Σ_i dout[i, j], with one double partial per thread summed in a
 * fixed order so the result does not depend on scheduling. */
static void column_sums_accumulate(float *dbias, const float *dout, int n, int out_dim) {
    int nthreads = omp_get_max_threads();
    double *partial = calloc((size_t)nthreads * out_dim, sizeof(double));
    if (!partial) { /* out of memory for partials: serial, same math */
        for (int j = 0; j < out_dim; j++) {
            double s = 0.0;
            for (int i = 0; i < n; i++) s += dout[(int64_t)i * out_dim + j];
            dbias[j] += (float)s;
        }
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        double *mine = partial + (size_t)omp_get_thread_num() * out_dim;
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out_dim; j++) mine[j] += dout[(int64_t)i * out_dim + j];
    }
    for (int j = 0; j < out_dim; j++) {
        double s = 0.0;
        for (int t = 0; t < nthreads; t++) s += partial[(size_t)t * out_dim + j];
        dbias[j] += (float)s;
    }
    free(partial);
}

void et_linear_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x,
                        const float *w, int n, int in_dim, int out_dim) {
    if (dx) et_matmul(dx, dout, w, n, in_dim, out_dim, 0, 0, 1.0f, 1.0f);  /* dout · w */
    if (dw) et_matmul(dw, dout, x, out_dim, in_dim, n, 1, 0, 1.0f, 1.0f);  /* doutᵀ · x */
    if (dbias) column_sums_accumulate(dbias, dout, n, out_dim);
}
