// Cross-entropy forward and backward in one kernel, in place: one block per row
// reads the bf16 logits once for an online (max, Σexp), then overwrites them with
// dloss·(softmax − onehot). The training step's lm_head works on chunks of rows
// (trainer/model_cuda.c), so neither fp32 logits nor a second [rows, vocab] buffer
// for their gradient ever exists.
#include <math.h>

#include "kernels/cuda/context.h"
#include "kernels/cuda/row_logsumexp.h"

namespace {

typedef __nv_bfloat16 bf16;
#define FUSED_THREADS 512

template <int V>
__global__ void __launch_bounds__(FUSED_THREADS)
    ce_fused(float *losses, float *lse, bf16 *logits, const int32_t *targets, const float *dloss,
             int vocab) {
    __shared__ float scratch[65];
    const int64_t row = blockIdx.x;
    bf16 *lr = logits + row * vocab;
    const int32_t t = targets[row];
    // returns after a barrier: every thread's reads of the row are done
    const float row_lse = etc_block_row_logsumexp<bf16, V>(lr, vocab, scratch);
    if (threadIdx.x == 0) {
        lse[row] = row_lse;
        losses[row] = t < 0 ? 0.0f : row_lse - etc_f32(lr[t]);
    }
    if (!dloss) return;
    const float gsc = t < 0 ? 0.0f : dloss[row];
    __syncthreads();  // thread 0's read of the target logit precedes its overwrite
    for (int p = threadIdx.x; p < vocab / V; p += blockDim.x) {
        float v[V];
        etc_load<bf16, V>(v, lr, p);
#pragma unroll
        for (int k = 0; k < V; k++) v[k] = gsc * __expf(v[k] - row_lse) - (p * V + k == t ? gsc : 0.0f);
        etc_store<bf16, V>(lr, p, v);
    }
}

}  // namespace

extern "C" int etc_cross_entropy_fused_bf16(float *losses, float *lse, etc_bf16 *logits,
                                            const int32_t *targets, const float *dloss, int n,
                                            int vocab) {
    if (n < 0 || vocab <= 0)
        return etc_fail("etc_cross_entropy_fused_bf16: bad shape n=%d vocab=%d", n, vocab);
    if (n == 0) return 0;
    bf16 *lg = (bf16 *)logits;
    if (vocab % 8 == 0 && etc_aligned16(logits))
        ce_fused<8><<<n, FUSED_THREADS, 0, etc_stream()>>>(losses, lse, lg, targets, dloss, vocab);
    else
        ce_fused<1><<<n, FUSED_THREADS, 0, etc_stream()>>>(losses, lse, lg, targets, dloss, vocab);
    return etc_check_launch("etc_cross_entropy_fused_bf16");
}
