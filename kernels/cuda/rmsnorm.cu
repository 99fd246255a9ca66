// RMSNorm (HF Llama): out = weight · (x · rsqrt(mean(x²) + eps)), one block per row
// so the row's sum of squares is one block reduction and x stays in L1/L2 between
// its two reads. Backward computes dx the same way; dweight, a sum over rows, is a
// second kernel over column strips (rows split into chunks, combined by atomics).
#include "kernels/cuda/context.h"

namespace {

#define ROW_THREADS 256
#define DW_ROWS_PER_BLOCK 64

template <typename T, int V>
__global__ void rmsnorm_fwd(T *out, int64_t ld_out, float *rstd, const T *x, const T *weight,
                            int dim, float eps) {
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x;
    const T *xr = x + row * dim;
    T *outr = out + row * ld_out;
    const int packs = dim / V;
    float ss = 0.0f;
    for (int p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[V];
        etc_load<T, V>(v, xr, p);
#pragma unroll
        for (int k = 0; k < V; k++) ss += v[k] * v[k];
    }
    ss = etc_block_sum(ss, scratch);
    const float r = 1.0f / sqrtf(ss / (float)dim + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    for (int p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[V], w[V];
        etc_load<T, V>(v, xr, p);
        etc_load<T, V>(w, weight, p);
        // HF rounds x̂ to the activation dtype before the weight multiply.
#pragma unroll
        for (int k = 0; k < V; k++) v[k] = w[k] * etc_f32(etc_to<T>(v[k] * r));
        etc_store<T, V>(outr, p, v);
    }
}

// dx_j += r·w_j·g_j − (r³/dim)·x_j·Σ_k w_k·g_k·x_k
template <typename T, int V>
__global__ void rmsnorm_bwd_dx(T *dx, const T *dout, int64_t ld_dout, const T *x, const T *weight,
                               const float *rstd, int dim) {
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x;
    const T *xr = x + row * dim, *gr = dout + row * ld_dout;
    T *dxr = dx + row * dim;
    const int packs = dim / V;
    float dot = 0.0f;
    for (int p = threadIdx.x; p < packs; p += blockDim.x) {
        float xv[V], gv[V], wv[V];
        etc_load<T, V>(xv, xr, p);
        etc_load<T, V>(gv, gr, p);
        etc_load<T, V>(wv, weight, p);
#pragma unroll
        for (int k = 0; k < V; k++) dot += wv[k] * gv[k] * xv[k];
    }
    dot = etc_block_sum(dot, scratch);
    const float r = rstd[row];
    const float c = r * r * r * dot / (float)dim;
    for (int p = threadIdx.x; p < packs; p += blockDim.x) {
        float xv[V], gv[V], wv[V], dv[V];
        etc_load<T, V>(xv, xr, p);
        etc_load<T, V>(gv, gr, p);
        etc_load<T, V>(wv, weight, p);
        etc_load<T, V>(dv, dxr, p);
#pragma unroll
        for (int k = 0; k < V; k++) dv[k] += r * wv[k] * gv[k] - c * xv[k];
        etc_store<T, V>(dxr, p, dv);
    }
}

// dweight_j += Σ_rows g_j·x_j·r over one chunk of rows; thread = column.
template <typename T>
__global__ void rmsnorm_bwd_dw(float *dweight, const T *dout, const T *x, const float *rstd, int n,
                               int dim) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= dim) return;
    const int r0 = blockIdx.y * DW_ROWS_PER_BLOCK;
    const int r1 = min(n, r0 + DW_ROWS_PER_BLOCK);
    float s = 0.0f;
    for (int i = r0; i < r1; i++) {
        const int64_t at = (int64_t)i * dim + j;
        s += etc_f32(dout[at]) * etc_f32(x[at]) * rstd[i];
    }
    atomicAdd(dweight + j, s);
}

// ld_out: the output's row stride in elements (>= dim; the CUDA trainer leaves room
// after each row for the LoRA x·Aᵀ columns of the projections that read it).
template <typename T>
int forward(T *out, int64_t ld_out, float *rstd, const T *x, const T *weight, int n, int dim,
            float eps, const char *name) {
    if (n < 0 || dim <= 0 || ld_out < dim)
        return etc_fail("%s: bad shape n=%d dim=%d row stride %lld", name, n, dim,
                        (long long)ld_out);
    if (n == 0) return 0;
    constexpr int V = 16 / sizeof(T);
    if (dim % V == 0 && ld_out % V == 0 && etc_aligned16(out, x, weight))
        rmsnorm_fwd<T, V><<<n, ROW_THREADS, 0, etc_stream()>>>(out, ld_out, rstd, x, weight, dim,
                                                                eps);
    else
        rmsnorm_fwd<T, 1><<<n, ROW_THREADS, 0, etc_stream()>>>(out, ld_out, rstd, x, weight, dim,
                                                                eps);
    return etc_check_launch(name);
}

// ld_dout: dout's row stride (>= dim); dweight needs packed rows (ld_dout == dim).
template <typename T>
int backward(T *dx, float *dweight, const T *dout, int64_t ld_dout, const T *x, const T *weight,
             const float *rstd, int n, int dim, const char *name) {
    if (n < 0 || dim <= 0 || ld_dout < dim || (dweight && ld_dout != dim))
        return etc_fail("%s: bad shape n=%d dim=%d row stride %lld", name, n, dim,
                        (long long)ld_dout);
    if (n == 0) return 0;
    constexpr int V = 16 / sizeof(T);
    if (dx) {
        if (dim % V == 0 && ld_dout % V == 0 && etc_aligned16(dx, dout, x, weight))
            rmsnorm_bwd_dx<T, V><<<n, ROW_THREADS, 0, etc_stream()>>>(dx, dout, ld_dout, x, weight,
                                                                       rstd, dim);
        else
            rmsnorm_bwd_dx<T, 1><<<n, ROW_THREADS, 0, etc_stream()>>>(dx, dout, ld_dout, x, weight,
                                                                       rstd, dim);
        if (etc_check_launch(name)) return -1;
    }
    if (dweight) {
        dim3 grid((dim + 255) / 256, (n + DW_ROWS_PER_BLOCK - 1) / DW_ROWS_PER_BLOCK);
        rmsnorm_bwd_dw<T><<<grid, 256, 0, etc_stream()>>>(dweight, dout, x, rstd, n, dim);
        if (etc_check_launch(name)) return -1;
    }
    return 0;
}

}  // namespace

typedef __nv_bfloat16 bf16;

extern "C" int etc_rmsnorm_forward(float *out, float *rstd, const float *x, const float *weight,
                                   int n, int dim, float eps) {
    return forward(out, dim, rstd, x, weight, n, dim, eps, "etc_rmsnorm_forward");
}
extern "C" int etc_rmsnorm_backward(float *dx, float *dweight, const float *dout, const float *x,
                                    const float *weight, const float *rstd, int n, int dim) {
    return backward(dx, dweight, dout, dim, x, weight, rstd, n, dim, "etc_rmsnorm_backward");
}
extern "C" int etc_rmsnorm_forward_bf16(etc_bf16 *out, float *rstd, const etc_bf16 *x,
                                        const etc_bf16 *weight, int n, int dim, float eps) {
    return forward((bf16 *)out, dim, rstd, (const bf16 *)x, (const bf16 *)weight, n, dim, eps,
                   "etc_rmsnorm_forward_bf16");
}
extern "C" int etc_rmsnorm_forward_ld_bf16(etc_bf16 *out, int64_t ld_out, float *rstd,
                                           const etc_bf16 *x, const etc_bf16 *weight, int n,
                                           int dim, float eps) {
    return forward((bf16 *)out, ld_out, rstd, (const bf16 *)x, (const bf16 *)weight, n, dim, eps,
                   "etc_rmsnorm_forward_ld_bf16");
}
extern "C" int etc_rmsnorm_backward_bf16(etc_bf16 *dx, float *dweight, const etc_bf16 *dout,
                                         const etc_bf16 *x, const etc_bf16 *weight,
                                         const float *rstd, int n, int dim) {
    return backward((bf16 *)dx, dweight, (const bf16 *)dout, dim, (const bf16 *)x,
                    (const bf16 *)weight, rstd, n, dim, "etc_rmsnorm_backward_bf16");
}
extern "C" int etc_rmsnorm_backward_ld_bf16(etc_bf16 *dx, const etc_bf16 *dout, int64_t ld_dout,
                                            const etc_bf16 *x, const etc_bf16 *weight,
                                            const float *rstd, int n, int dim) {
    return backward((bf16 *)dx, (float *)nullptr, (const bf16 *)dout, ld_dout, (const bf16 *)x,
                    (const bf16 *)weight, rstd, n, dim, "etc_rmsnorm_backward_ld_bf16");
}
