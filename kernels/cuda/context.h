// Internal to the CUDA backend: error reporting, the one stream, launch sizing,
// the shared cuBLASLt handle, and the element-type helpers every kernel uses.
#ifndef EHRTUNE_CUDA_CONTEXT_H
#define EHRTUNE_CUDA_CONTEXT_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/ops_cuda.h"

// Formats the message returned by etc_last_error() and returns -1.
int etc_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// After a launch: 0, or etc_fail naming `op` and the CUDA error.
int etc_check_launch(const char *op);
// The stream every op launches on.
cudaStream_t etc_stream(void);
// Multiprocessors of the current device (cached per device).
int etc_sm_count(void);
// Blocks for a grid-stride loop over `work` items with `threads` per block:
// enough to fill the chip a few times over, never more than the work needs.
unsigned etc_grid(int64_t work, int threads);
// The shared cuBLASLt handle and workspace, created on first use.
int etc_cublaslt(cublasLtHandle_t *handle, void **workspace, size_t *workspace_bytes);
// The GEMM of matmul.cu for linear.cu: C = alpha·op(A)·op(B) + beta·C (+ bias[col]
// when bias is non-NULL), all operands fp32 or all bf16.
int etc_gemm_bias(int bf16, void *c, const void *a, const void *b, const void *bias, int m, int n,
                  int k, int trans_a, int trans_b, float alpha, float beta);
// Frees the cached GEMM plans (matmul.cu), called by etc_shutdown before the handle goes.
void etc_matmul_forget_plans(void);
// Frees etc_sumsq's partials buffer (reduce.cu), called by etc_shutdown.
void etc_reduce_forget(void);

// ---- element types: kernels are templates over float and __nv_bfloat16; all
// arithmetic is fp32 ----
__device__ __forceinline__ float etc_f32(float x) { return x; }
__device__ __forceinline__ float etc_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T etc_to(float x);
template <> __device__ __forceinline__ float etc_to<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 etc_to<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

// V consecutive elements moved as one 16-byte access when V·sizeof(T) == 16.
template <typename T, int V> struct alignas(V * sizeof(T)) etc_pack { T v[V]; };

template <typename T, int V>
__device__ __forceinline__ void etc_load(float (&dst)[V], const T *p, int64_t pack) {
    etc_pack<T, V> pk = reinterpret_cast<const etc_pack<T, V> *>(p)[pack];
#pragma unroll
    for (int i = 0; i < V; i++) dst[i] = etc_f32(pk.v[i]);
}
template <typename T, int V>
__device__ __forceinline__ void etc_store(T *p, int64_t pack, const float (&src)[V]) {
    etc_pack<T, V> pk;
#pragma unroll
    for (int i = 0; i < V; i++) pk.v[i] = etc_to<T>(src[i]);
    reinterpret_cast<etc_pack<T, V> *>(p)[pack] = pk;
}

// True when every pointer is 16-byte aligned (NULLs count as aligned).
static inline bool etc_aligned16(const void *a, const void *b = nullptr, const void *c = nullptr,
                                 const void *d = nullptr, const void *e = nullptr) {
    return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e) & 15) == 0;
}

// Block-wide reductions for blockDim.x a multiple of 32 (<= 1024). `scratch`
// holds 32 floats of shared memory; every thread gets the result.
__device__ __forceinline__ float etc_warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float etc_warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
__device__ __forceinline__ float etc_block_sum(float x, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    x = etc_warp_sum(x);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = x;
    __syncthreads();
    x = lane < nwarps ? scratch[lane] : 0.0f;
    return etc_warp_sum(x);
}

// ---- elementwise maps ----
// An op is a struct with `using T = <element type that sets the pack width>` and
// `template <int W> __device__ void apply(int64_t i)`, which handles elements
// [i·W, i·W + W). etc_map runs it over packs of 16/sizeof(T) elements when every
// pointer is 16-byte aligned, then over the tail one element at a time.
template <int V, typename Op> __global__ void etc_map_kernel(Op op, int64_t n) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t packs = n / V;
    for (int64_t p = first; p < packs; p += stride) op.template apply<V>(p);
    for (int64_t i = packs * V + first; i < n; i += stride) op.template apply<1>(i);
}

template <typename Op> int etc_map(const Op &op, int64_t n, bool aligned, const char *name) {
    if (n < 0) return etc_fail("%s: negative element count %lld", name, (long long)n);
    if (n == 0) return 0;
    constexpr int V = 16 / sizeof(typename Op::T);
    const int threads = 256;
    if (aligned && V > 1)
        etc_map_kernel<V, Op><<<etc_grid(n / V > 0 ? n / V : 1, threads), threads, 0,
                                etc_stream()>>>(op, n);
    else
        etc_map_kernel<1, Op><<<etc_grid(n, threads), threads, 0, etc_stream()>>>(op, n);
    return etc_check_launch(name);
}

#endif
