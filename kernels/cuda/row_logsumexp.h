// log Σ exp over one row of logits by a whole block, reading each logit once: the
// shared first half of the cross-entropy kernels (cross_entropy.cu, the separate
// forward; cross_entropy_fused.cu, forward and backward in place). Device code, C++.
#ifndef EHRTUNE_CUDA_ROW_LOGSUMEXP_H
#define EHRTUNE_CUDA_ROW_LOGSUMEXP_H

#include <math.h>

#include "kernels/cuda/context.h"

// Merges the online pair (m2, s2) into (m, s); -inf maxima mean "nothing seen".
__device__ __forceinline__ void etc_lse_merge(float &m, float &s, float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == -INFINITY) return;
    s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
    m = mm;
}

// Every thread of the block calls it (blockDim.x a multiple of 32, at most 1024) and
// gets the row's log Σ exp. Each thread walks its V-element packs keeping an online
// (max, Σ exp) pair; the pairs merge within each warp, then across warps.
// `scratch` is the caller's shared memory (65 floats); it is free again on return.
template <typename T, int V>
__device__ __forceinline__ float etc_block_row_logsumexp(const T *row, int vocab, float *scratch) {
    float m = -INFINITY, s = 0.0f;
    for (int p = threadIdx.x; p < vocab / V; p += blockDim.x) {
        float v[V];
        etc_load<T, V>(v, row, p);
        float pm = v[0];
#pragma unroll
        for (int k = 1; k < V; k++) pm = fmaxf(pm, v[k]);
        if (pm > m) {
            s *= __expf(m - pm);  // m = -inf gives 0·0: s is still 0
            m = pm;
        }
#pragma unroll
        for (int k = 0; k < V; k++) s += __expf(v[k] - m);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        etc_lse_merge(m, s, m2, s2);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) scratch[warp] = m, scratch[32 + warp] = s;
    __syncthreads();
    if (warp == 0) {
        const int nwarps = blockDim.x >> 5;
        m = lane < nwarps ? scratch[lane] : -INFINITY;
        s = lane < nwarps ? scratch[32 + lane] : 0.0f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
            const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
            etc_lse_merge(m, s, m2, s2);
        }
        if (lane == 0) scratch[64] = m + logf(s);
    }
    __syncthreads();
    const float lse = scratch[64];
    __syncthreads();  // every thread has read it before the caller reuses scratch
    return lse;
}

#endif
