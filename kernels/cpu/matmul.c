/* GEMM for the CPU reference backend: a thin wrapper over OpenBLAS sgemm.
 *
 * Built with -DET_NO_BLAS (tests/gpu/check.sh builds the parity harness that way
 * on GPU machines that lack OpenBLAS), it is instead a plain OpenMP loop with
 * BLAS semantics (beta == 0 never reads C), fast enough for test-sized problems. */
#include "kernels/ops.h"

#ifndef ET_NO_BLAS
#include <cblas.h>

void et_matmul(float *c, const float *a, const float *b, int m, int n, int k,
               int trans_a, int trans_b, float alpha, float beta) {
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, trans_a ? m : k, b,
                trans_b ? k : n, beta, c, n);
}

#else

void et_matmul(float *c, const float *a, const float *b, int m, int n, int k,
               int trans_a, int trans_b, float alpha, float beta) {
    if (m == 0 || n == 0) return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; i++) {
        float *ci = c + (int64_t)i * n;
#define A_AT(p) (trans_a ? a[(int64_t)(p) * m + i] : a[(int64_t)i * k + (p)])
        if (trans_b) { /* B stored [n, k]: each C element is a contiguous dot product */
            for (int j = 0; j < n; j++) {
                const float *bj = b + (int64_t)j * k;
                float s = 0.0f;
                for (int p = 0; p < k; p++) s += A_AT(p) * bj[p];
                ci[j] = alpha * s + (beta == 0.0f ? 0.0f : beta * ci[j]);
            }
        } else { /* B stored [k, n]: accumulate rows of B into the row of C */
            for (int j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
            for (int p = 0; p < k; p++) {
                const float aip = alpha * A_AT(p);
                const float *bp = b + (int64_t)p * n;
                for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
#undef A_AT
    }
}

#endif
