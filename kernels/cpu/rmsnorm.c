/* RMSNorm as HF Llama computes it in fp32: out = weight · (x · rsqrt(mean(x²) + eps)). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/ops.h"

void et_rmsnorm_forward(float *out, float *rstd, const float *x, const float *weight,
                        int n, int dim, float eps) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * dim;
        float *oi = out + (int64_t)i * dim;
        double ss = 0.0;
        for (int j = 0; j < dim; j++) ss += (double)xi[j] * xi[j];
        float r = 1.0f / sqrtf((float)(ss / dim) + eps);
        rstd[i] = r;
        for (int j = 0; j < dim; j++) oi[j] = weight[j] * (xi[j] * r);
    }
}

/* With x̂ = x·r and r = (mean(x²)+eps)^-1/2:
 *   dx_j = r·w_j·g_j − (r³/dim)·x_j·Σ_k w_k·g_k·x_k,   dweight_j = Σ_rows g_j·x̂_j. */
void et_rmsnorm_backward(float *dx, float *dweight, const float *dout, const float *x,
                         const float *weight, const float *rstd, int n, int dim) {
    /* One dweight partial per thread, summed in a fixed order afterwards, so the
     * result does not depend on scheduling. Without memory for them, dweight is
     * summed serially afterwards (same math). */
    int nthreads = omp_get_max_threads();
    double *partial = dweight ? calloc((size_t)nthreads * dim, sizeof(double)) : NULL;
#pragma omp parallel num_threads(nthreads)
    {
        double *mine = partial ? partial + (size_t)omp_get_thread_num() * dim : NULL;
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            const float *xi = x + (int64_t)i * dim, *gi = dout + (int64_t)i * dim;
            float *dxi = dx + (int64_t)i * dim;
            double r = rstd[i], dot = 0.0;
            for (int j = 0; j < dim; j++) dot += (double)weight[j] * gi[j] * xi[j];
            double c = r * r * r * dot / dim;
            for (int j = 0; j < dim; j++) dxi[j] += (float)(r * weight[j] * gi[j] - c * xi[j]);
            if (mine)
                for (int j = 0; j < dim; j++) mine[j] += (double)gi[j] * xi[j] * r;
        }
    }
    if (!dweight) return;
    for (int j = 0; j < dim; j++) {
        double s = 0.0;
        if (partial)
            for (int t = 0; t < nthreads; t++) s += partial[(size_t)t * dim + j];
        else
            for (int i = 0; i < n; i++)
                s += (double)dout[(int64_t)i * dim + j] * x[(int64_t)i * dim + j] * rstd[i];
        dweight[j] += (float)s;
    }
    free(partial);
}
