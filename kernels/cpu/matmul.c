/* GEMM for the CPU reference backend: a thin wrapper over OpenBLAS sgemm. */
#include <cblas.h>

#include "kernels/ops.h"

void et_matmul(float *c, const float *a, const float *b, int m, int n, int k,
               int trans_a, int trans_b, float alpha, float beta) {
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, trans_a ? m : k, b,
                trans_b ? k : n, beta, c, n);
}
