// Philox4x32-10 on the device, the same 32-bit integer arithmetic as
// kernels/cpu/philox.c: the four draws of one counter block, each the top 24 bits
// of an output word scaled by 2^-24 (et_dropout_uniform4), so masks drawn here are
// bit-identical to the CPU's. Shared by the dropout kernels.
#ifndef EHRTUNE_CUDA_PHILOX_H
#define EHRTUNE_CUDA_PHILOX_H

#include <stdint.h>

__device__ __forceinline__ void etc_philox_uniform4(uint64_t seed, uint64_t block, float (&u)[4]) {
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    u[0] = (float)(c0 >> 8) * 0x1p-24f;
    u[1] = (float)(c1 >> 8) * 0x1p-24f;
    u[2] = (float)(c2 >> 8) * 0x1p-24f;
    u[3] = (float)(c3 >> 8) * 0x1p-24f;
}

// The dropout conventions of kernels/cpu/dropout.c, for kernels that draw a mask
// again: p <= 0 keeps every element at scale 1 (the threshold −1 lies below every
// draw), p >= 1 keeps none (scale 0, no NaN), else the kept scale is 1/(1 − p) in fp32.
static inline float etc_dropout_scale(float p) {
    return p <= 0.0f ? 1.0f : p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}
static inline float etc_dropout_threshold(float p) { return p <= 0.0f ? -1.0f : p; }

// Keep decisions of W consecutive stream positions offset + first .. + W − 1.
template <int W>
__device__ __forceinline__ void etc_draw_keep(bool (&kept)[W], uint64_t seed, uint64_t offset,
                                              int64_t first, float p) {
    float u[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int k = 0; k < W; k++) {
        const uint64_t j = offset + (uint64_t)(first + k);
        if (k == 0 || (j & 3) == 0) etc_philox_uniform4(seed, j >> 2, u);
        kept[k] = u[j & 3] >= p;
    }
}

#endif
