// Cross-entropy forward and backward in one kernel, in place: one block per row
// reads the bf16 logits once for an online (max, Σexp), then overwrites them with
// dloss·(softmax − onehot). The training step's lm_head works on chunks of rows
// (trainer/model_cuda.c), so neither fp32 logits nor a second [rows, vocab] buffer
// for their gradient ever exists.
#include <math.h>

#include "kernels/cuda/context.h"

namespace {

typedef __nv_bfloat16 bf16;
#define FUSED_THREADS 512

__device__ __forceinline__ void merge(float &m, float &s, float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == -INFINITY) return;
    s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
    m = mm;
}

template <int V>
__global__ void __launch_bounds__(FUSED_THREADS)
    ce_fused(float *losses, float *lse, bf16 *logits, const int32_t *targets, const float *dloss,
             int vocab) {
    __shared__ float sm[32], ss[32], row_stats[2];
    const int64_t row = blockIdx.x;
    bf16 *lr = logits + row * vocab;
    const int32_t t = targets[row];
    float m = -INFINITY, s = 0.0f;
    for (int p = threadIdx.x; p < vocab / V; p += blockDim.x) {
        float v[V];
        etc_load<bf16, V>(v, lr, p);
        float pm = v[0];
#pragma unroll
        for (int k = 1; k < V; k++) pm = fmaxf(pm, v[k]);
        if (pm > m) {
            s *= __expf(m - pm);
            m = pm;
        }
#pragma unroll
        for (int k = 0; k < V; k++) s += __expf(v[k] - m);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        merge(m, s, m2, s2);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sm[warp] = m, ss[warp] = s;
    __syncthreads();
    if (warp == 0) {
        const int nwarps = blockDim.x >> 5;
        m = lane < nwarps ? sm[lane] : -INFINITY;
        s = lane < nwarps ? ss[lane] : 0.0f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
            const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
            merge(m, s, m2, s2);
        }
        if (lane == 0) {
            const float row_lse = m + logf(s);
            lse[row] = row_lse;
            losses[row] = t < 0 ? 0.0f : row_lse - etc_f32(lr[t]);
            row_stats[0] = row_lse;
            row_stats[1] = t < 0 || !dloss ? 0.0f : dloss[row];
        }
    }
    __syncthreads();  // every read of the row (the target logit too) precedes the writes
    if (!dloss) return;
    const float row_lse = row_stats[0], gsc = row_stats[1];
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
