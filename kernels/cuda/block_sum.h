// Sum of one double per thread over a whole block, in a fixed order (warp shuffles,
// then the warps' partials by the first warp): the same bits on every run, which the
// DP norms and etc_sumsq rely on. Device code, C++.
#ifndef EHRTUNE_CUDA_BLOCK_SUM_H
#define EHRTUNE_CUDA_BLOCK_SUM_H

#include "kernels/cuda/context.h"

// Every thread of the block calls it (blockDim.x a multiple of 32, at most 1024);
// scratch holds 32 doubles in shared memory. Every thread returns the total. A
// second call with the same scratch needs a __syncthreads() before it: other warps
// may still be reading the partials.
__device__ __forceinline__ double etc_block_sum_double(double x, double *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    if (lane == 0) scratch[warp] = x;
    __syncthreads();
    x = lane < nwarps ? scratch[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

#endif
