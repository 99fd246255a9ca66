// Token embedding: one block per token row copies the table row (16-byte packs
// when the row width allows); backward scatters with atomics, since ids repeat.
#include "kernels/cuda/context.h"

namespace {

template <typename T, int V>
__global__ void embedding_fwd(T *out, const int32_t *ids, const T *table, int dim) {
    const int64_t row = blockIdx.x;
    const int64_t src = (int64_t)ids[row] * dim / V, dst = row * dim / V;
    typedef etc_pack<T, V> P;
    for (int p = threadIdx.x; p < dim / V; p += blockDim.x)
        reinterpret_cast<P *>(out)[dst + p] = reinterpret_cast<const P *>(table)[src + p];
}

__global__ void embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int dim) {
    const int64_t row = blockIdx.x;
    float *dst = dtable + (int64_t)ids[row] * dim;
    const float *g = dout + row * dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) atomicAdd(dst + j, g[j]);
}

template <typename T>
int forward(T *out, const int32_t *ids, const T *table, int n, int dim, const char *name) {
    if (n < 0 || dim <= 0) return etc_fail("%s: bad shape n=%d dim=%d", name, n, dim);
    if (n == 0) return 0;
    constexpr int V = 16 / sizeof(T);
    if (dim % V == 0 && etc_aligned16(out, table))
        embedding_fwd<T, V><<<n, 128, 0, etc_stream()>>>(out, ids, table, dim);
    else
        embedding_fwd<T, 1><<<n, 128, 0, etc_stream()>>>(out, ids, table, dim);
    return etc_check_launch(name);
}

}  // namespace

extern "C" int etc_embedding_forward(float *out, const int32_t *ids, const float *table, int n,
                                     int dim) {
    return forward(out, ids, table, n, dim, "etc_embedding_forward");
}
extern "C" int etc_embedding_forward_bf16(etc_bf16 *out, const int32_t *ids, const etc_bf16 *table,
                                          int n, int dim) {
    return forward((__nv_bfloat16 *)out, ids, (const __nv_bfloat16 *)table, n, dim,
                   "etc_embedding_forward_bf16");
}
extern "C" int etc_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int n,
                                      int dim) {
    if (n < 0 || dim <= 0) return etc_fail("etc_embedding_backward: bad shape n=%d dim=%d", n, dim);
    if (n == 0) return 0;
    embedding_bwd<<<n, 256, 0, etc_stream()>>>(dtable, dout, ids, dim);
    return etc_check_launch("etc_embedding_backward");
}
