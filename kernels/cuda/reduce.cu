// Reductions for DP clipping: Σ x² in double with a fixed summation order
// (a fixed grid of per-block partials, then one block sums them in order), and
// in-place scaling.
#include "kernels/cuda/block_sum.h"
#include "kernels/cuda/context.h"

namespace {

#define SUMSQ_BLOCKS 1024
#define SUMSQ_THREADS 256

// Block b sums elements b·T + t, strided by the whole (fixed) grid.
__global__ void sumsq_partials(double *partials, const float *x, int64_t n) {
    __shared__ double scratch[32];
    double s = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = etc_block_sum_double(s, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sumsq_final(double *out, const double *partials, int count) {
    __shared__ double scratch[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
    s = etc_block_sum_double(s, scratch);
    if (threadIdx.x == 0) *out = s;
}

struct scale_op {
    using T = float;
    float *x;
    float s;
    template <int W> __device__ void apply(int64_t i) const {
        float v[W];
        etc_load<float, W>(v, x, i);
#pragma unroll
        for (int k = 0; k < W; k++) v[k] *= s;
        etc_store<float, W>(x, i, v);
    }
};

}  // namespace

static double *partials = nullptr;

void etc_reduce_forget(void) {
    if (partials) cudaFree(partials);
    partials = nullptr;
}

extern "C" int etc_sumsq(double *out, const float *x, int64_t n) {
    if (n < 0) return etc_fail("etc_sumsq: negative element count %lld", (long long)n);
    if (!partials) {  // 8 KB kept until etc_shutdown
        cudaError_t e = cudaMalloc(&partials, SUMSQ_BLOCKS * sizeof(double));
        if (e != cudaSuccess) {
            partials = nullptr;
            cudaGetLastError();  // not sticky: the next op must not see this error as its own
            return etc_fail("etc_sumsq: cannot allocate partials (%s)", cudaGetErrorString(e));
        }
    }
    sumsq_partials<<<SUMSQ_BLOCKS, SUMSQ_THREADS, 0, etc_stream()>>>(partials, x, n);
    if (etc_check_launch("etc_sumsq")) return -1;
    sumsq_final<<<1, 1024, 0, etc_stream()>>>(out, partials, SUMSQ_BLOCKS);
    return etc_check_launch("etc_sumsq");
}

extern "C" int etc_scale(float *x, float s, int64_t n) {
    return etc_map(scale_op{x, s}, n, etc_aligned16(x), "etc_scale");
}
