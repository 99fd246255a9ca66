/* GEMM for the CPU reference backend: a thin wrapper over OpenBLAS sgemm.
 *
 * Built with -DET_NO_BLAS (tests/gpu/check.sh builds the parity harness that way
 * on GPU machines that lack OpenBLAS), it is instead a plain OpenMP loop with
 * BLAS semantics (beta == 0 never reads C), fast enough for test-sized problems. */
#include "kernels/ops.h"

#ifndef ET_NO_BLAS
#include <cblas.h>
#include <omp.h>

/* Threads: OpenBLAS's own pthread pool and OpenMP's would compete for the same cores
 * (profiles showed a third of the time in sched_yield and OpenMP spin-waits). So
 * OpenBLAS runs single-threaded and the GEMM is split here, in an OpenMP region, into
 * one block of C per thread: rows of C when it has more rows than columns, else
 * columns. Each element of C still sums over K in OpenBLAS's order. */
static void sgemm_block(float *c, const float *a, const float *b, int m, int n, int k, int ldc,
                        int lda, int ldb, int trans_a, int trans_b, float alpha, float beta) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void et_matmul(float *c, const float *a, const float *b, int m, int n, int k,
               int trans_a, int trans_b, float alpha, float beta) {
    if (m == 0 || n == 0) return;
    static int single_threaded_blas;
    if (!single_threaded_blas) {
#pragma omp critical(et_blas_threads)
        {
            openblas_set_num_threads(1);
            single_threaded_blas = 1;
        }
    }
    const int lda = trans_a ? m : k, ldb = trans_b ? k : n;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    /* Small products are not worth a parallel region. */
    if ((double)m * n * (k > 0 ? k : 1) < 2e6) nt = 1;
    if (nt <= 1) {
        sgemm_block(c, a, b, m, n, k, n, lda, ldb, trans_a, trans_b, alpha, beta);
        return;
    }
    const int split_rows = m >= n;
    const int total = split_rows ? m : n;
    if (nt > total) nt = total;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++) {
        int lo = (int)((int64_t)total * t / nt), hi = (int)((int64_t)total * (t + 1) / nt);
        if (hi <= lo) continue;
        if (split_rows) {
            const float *at = trans_a ? a + lo : a + (int64_t)lo * k;
            sgemm_block(c + (int64_t)lo * n, at, b, hi - lo, n, k, n, lda, ldb, trans_a, trans_b,
                        alpha, beta);
        } else {
            const float *bt = trans_b ? b + (int64_t)lo * k : b + lo;
            sgemm_block(c + lo, a, bt, m, hi - lo, k, n, lda, ldb, trans_a, trans_b, alpha, beta);
        }
    }
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
