// Cross-entropy over logits [n, V], one block per row, chunked over the vocab:
// each thread walks its 16-byte packs of the row keeping an online (max, sum of
// exp) pair, the pairs merge across the block, and lse = max + log(sum)
// (row_logsumexp.h). Forward
// reads each logit once; backward reads it once more and adds
// dloss·(softmax − onehot) in place. No [n, V] softmax buffer is ever made.
#include <math.h>

#include "kernels/cuda/context.h"
#include "kernels/cuda/row_logsumexp.h"

namespace {

#define CE_THREADS 512

template <typename T, int V>
__global__ void ce_fwd(float *losses, float *lse, const T *logits, const int32_t *targets,
                       int vocab) {
    __shared__ float scratch[65];
    const int64_t row = blockIdx.x;
    const T *lr = logits + row * vocab;
    const float row_lse = etc_block_row_logsumexp<T, V>(lr, vocab, scratch);
    if (threadIdx.x == 0) {
        const int32_t t = targets[row];
        lse[row] = row_lse;
        losses[row] = t < 0 ? 0.0f : row_lse - etc_f32(lr[t]);
    }
}

template <typename T, int V>
__global__ void ce_bwd(T *dlogits, const T *logits, const float *lse, const int32_t *targets,
                       const float *dloss, int vocab) {
    const int64_t row = blockIdx.x;
    const int32_t t = targets[row];
    if (t < 0) return;
    const T *lr = logits + row * vocab;
    T *dr = dlogits + row * vocab;
    const float g = dloss[row], row_lse = lse[row];
    for (int p = threadIdx.x; p < vocab / V; p += blockDim.x) {
        float v[V], d[V];
        etc_load<T, V>(v, lr, p);
        etc_load<T, V>(d, dr, p);
#pragma unroll
        for (int k = 0; k < V; k++) d[k] += g * __expf(v[k] - row_lse) - (p * V + k == t ? g : 0.0f);
        etc_store<T, V>(dr, p, d);
    }
}

template <typename T>
int forward(float *losses, float *lse, const T *logits, const int32_t *targets, int n, int vocab,
            const char *name) {
    if (n < 0 || vocab <= 0) return etc_fail("%s: bad shape n=%d vocab=%d", name, n, vocab);
    if (n == 0) return 0;
    constexpr int V = 16 / sizeof(T);
    if (vocab % V == 0 && etc_aligned16(logits))
        ce_fwd<T, V><<<n, CE_THREADS, 0, etc_stream()>>>(losses, lse, logits, targets, vocab);
    else
        ce_fwd<T, 1><<<n, CE_THREADS, 0, etc_stream()>>>(losses, lse, logits, targets, vocab);
    return etc_check_launch(name);
}

template <typename T>
int backward(T *dlogits, const T *logits, const float *lse, const int32_t *targets,
             const float *dloss, int n, int vocab, const char *name) {
    if (n < 0 || vocab <= 0) return etc_fail("%s: bad shape n=%d vocab=%d", name, n, vocab);
    if (n == 0) return 0;
    constexpr int V = 16 / sizeof(T);
    if (vocab % V == 0 && etc_aligned16(dlogits, logits))
        ce_bwd<T, V><<<n, CE_THREADS, 0, etc_stream()>>>(dlogits, logits, lse, targets, dloss,
                                                          vocab);
    else
        ce_bwd<T, 1><<<n, CE_THREADS, 0, etc_stream()>>>(dlogits, logits, lse, targets, dloss,
                                                          vocab);
    return etc_check_launch(name);
}

}  // namespace

typedef __nv_bfloat16 bf16;

extern "C" int etc_cross_entropy_forward(float *losses, float *lse, const float *logits,
                                         const int32_t *targets, int n, int vocab) {
    return forward(losses, lse, logits, targets, n, vocab, "etc_cross_entropy_forward");
}
extern "C" int etc_cross_entropy_backward(float *dlogits, const float *logits, const float *lse,
                                          const int32_t *targets, const float *dloss, int n,
                                          int vocab) {
    return backward(dlogits, logits, lse, targets, dloss, n, vocab, "etc_cross_entropy_backward");
}
extern "C" int etc_cross_entropy_forward_bf16(float *losses, float *lse, const etc_bf16 *logits,
                                              const int32_t *targets, int n, int vocab) {
    return forward(losses, lse, (const bf16 *)logits, targets, n, vocab,
                   "etc_cross_entropy_forward_bf16");
}
extern "C" int etc_cross_entropy_backward_bf16(etc_bf16 *dlogits, const etc_bf16 *logits,
                                               const float *lse, const int32_t *targets,
                                               const float *dloss, int n, int vocab) {
    return backward((bf16 *)dlogits, (const bf16 *)logits, lse, targets, dloss, n, vocab,
                    "etc_cross_entropy_backward_bf16");
}
