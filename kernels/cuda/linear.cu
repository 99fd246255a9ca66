// Linear layer on cuBLASLt: forward is one GEMM with the bias fused into its
// epilogue; backward is up to two GEMMs (dx, dw; beta = 1 accumulates) and a
// column-sum kernel for dbias.
#include "kernels/cuda/context.h"

namespace {

#define COLSUM_ROWS_PER_BLOCK 64

// dbias[j] += Σ_i dout[i, j] over one chunk of rows; thread = column, so reads
// are coalesced; chunks combine with atomics.
template <typename T>
__global__ void colsum_accumulate(float *dbias, const T *dout, int n, int cols) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    const int r0 = blockIdx.y * COLSUM_ROWS_PER_BLOCK, r1 = min(n, r0 + COLSUM_ROWS_PER_BLOCK);
    float s = 0.0f;
    for (int i = r0; i < r1; i++) s += etc_f32(dout[(int64_t)i * cols + j]);
    atomicAdd(dbias + j, s);
}

template <typename T> int colsum(float *dbias, const T *dout, int n, int cols, const char *name) {
    if (n == 0 || cols == 0) return 0;
    dim3 grid((cols + 255) / 256, (n + COLSUM_ROWS_PER_BLOCK - 1) / COLSUM_ROWS_PER_BLOCK);
    colsum_accumulate<T><<<grid, 256, 0, etc_stream()>>>(dbias, dout, n, cols);
    return etc_check_launch(name);
}

int check_shape(int n, int in_dim, int out_dim, const char *name) {
    if (n < 0 || in_dim <= 0 || out_dim <= 0)
        return etc_fail("%s: bad shape n=%d in=%d out=%d", name, n, in_dim, out_dim);
    return 0;
}

}  // namespace

typedef __nv_bfloat16 bf16;

extern "C" int etc_linear_forward(float *out, const float *x, const float *w, const float *bias,
                                  int n, int in_dim, int out_dim) {
    if (check_shape(n, in_dim, out_dim, "etc_linear_forward")) return -1;
    return etc_gemm_bias(0, out, x, w, bias, n, out_dim, in_dim, 0, 1, 1.0f, 0.0f);
}

extern "C" int etc_linear_backward(float *dx, float *dw, float *dbias, const float *dout,
                                   const float *x, const float *w, int n, int in_dim,
                                   int out_dim) {
    if (check_shape(n, in_dim, out_dim, "etc_linear_backward")) return -1;
    if (dx && etc_matmul(dx, dout, w, n, in_dim, out_dim, 0, 0, 1.0f, 1.0f)) return -1;
    if (dw && n > 0 && etc_matmul(dw, dout, x, out_dim, in_dim, n, 1, 0, 1.0f, 1.0f)) return -1;
    if (dbias) return colsum(dbias, dout, n, out_dim, "etc_linear_backward");
    return 0;
}

extern "C" int etc_linear_forward_bf16(etc_bf16 *out, const etc_bf16 *x, const etc_bf16 *w,
                                       const etc_bf16 *bias, int n, int in_dim, int out_dim) {
    if (check_shape(n, in_dim, out_dim, "etc_linear_forward_bf16")) return -1;
    return etc_gemm_bias(1, out, x, w, bias, n, out_dim, in_dim, 0, 1, 1.0f, 0.0f);
}

extern "C" int etc_linear_backward_bf16(etc_bf16 *dx, float *dw, float *dbias,
                                        const etc_bf16 *dout, const etc_bf16 *x,
                                        const etc_bf16 *w, int n, int in_dim, int out_dim) {
    if (check_shape(n, in_dim, out_dim, "etc_linear_backward_bf16")) return -1;
    if (dx && etc_matmul_bf16(dx, dout, w, n, in_dim, out_dim, 0, 0, 1.0f, 1.0f)) return -1;
    if (dw && n > 0 && etc_matmul_bf16_f32out(dw, dout, x, out_dim, in_dim, n, 1, 0, 1.0f, 1.0f))
        return -1;
    if (dbias) return colsum(dbias, (const bf16 *)dout, n, out_dim, "etc_linear_backward_bf16");
    return 0;
}
