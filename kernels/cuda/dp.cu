// DP-SGD kernels: per-unit gradient norms and clip factors, the clipped weighted
// sum, and the ChaCha20 Gaussian noise (kernels/cuda/dp_cuda.h). Written to give
// the CPU's numbers: the same float operation order wherever floats are summed,
// double where the CPU uses double, no FMA contraction where the CPU has none.
#include <math.h>

#include "kernels/cuda/block_sum.h"
#include "kernels/cuda/context.h"
#include "kernels/cuda/dp_cuda.h"

namespace {

#define DP_THREADS 256

// Un-contracted arithmetic (the CPU's x86-64 code has no FMA); the emulator runs
// on the host compiler, which does not contract at -O2 either.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float mul_f(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add_f(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double mul_d(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double add_d(double a, double b) { return __dadd_rn(a, b); }
#else
__device__ __forceinline__ float mul_f(float a, float b) { return a * b; }
__device__ __forceinline__ float add_f(float a, float b) { return a + b; }
__device__ __forceinline__ double mul_d(double a, double b) { return a * b; }
__device__ __forceinline__ double add_d(double a, double b) { return a + b; }
#endif

// grid (ETC_DP_NORM_BLOCKS, n_units): block (b, u) sums unit u's rows into its
// first row over elements b·T + t strided by the fixed grid, and Σ g² of them.
__global__ void unit_norm_partials(double *partials, float *g, int64_t n, int64_t stride,
                                   const int32_t *unit_first) {
    __shared__ double scratch[32];
    const int u = blockIdx.y;
    const int r0 = unit_first[u], r1 = unit_first[u + 1];
    float *first = g + (int64_t)r0 * stride;
    double s = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = first[i];
        if (r1 - r0 > 1) {
            for (int r = r0 + 1; r < r1; r++) v = add_f(v, g[(int64_t)r * stride + i]);
            first[i] = v;
        }
        s = add_d(s, mul_d((double)v, (double)v));
    }
    s = etc_block_sum_double(s, scratch);
    if (threadIdx.x == 0) partials[(int64_t)u * gridDim.x + blockIdx.x] = s;
}

// One block per unit: the partials in a fixed order, then the clip factor.
__global__ void unit_norm_final(double *norm2, float *factor, const double *partials, int count,
                                double clip) {
    __shared__ double scratch[32];
    const int u = blockIdx.x;
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[(int64_t)u * count + i];
    s = etc_block_sum_double(s, scratch);
    if (threadIdx.x == 0) {
        // et_dp_clip_add's formula, in double; a non-finite unit adds nothing (factor 0
        // alone would give 0*inf = NaN: clip_sum skips factor-0 units) and reads as +inf
        const bool finite = isfinite(s);
        norm2[u] = finite ? s : INFINITY;
        double f = finite ? clip / (sqrt(s) + 1e-6) : 0.0;
        if (f > 1.0) f = 1.0;
        factor[u] = (float)f;
    }
}

__global__ void clip_sum(float *sum, const float *g, int64_t n, int64_t stride,
                         const int32_t *unit_first, const float *factor, int n_units) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float acc = sum[i];
        for (int u = 0; u < n_units; u++)
            if (factor[u] != 0.0f)  // a non-finite unit (factor 0) adds nothing, not 0*inf
                acc = add_f(acc, mul_f(factor[u], g[(int64_t)unit_first[u] * stride + i]));
        sum[i] = acc;
    }
}

// ---- ChaCha20 (RFC 8439), as trainer/dp_rng.c ----
struct chacha_key {
    uint32_t k[8];
};

__device__ __forceinline__ uint32_t rotl32(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

#define DP_QR(a, b, c, d)                 \
    a += b; d ^= a; d = rotl32(d, 16);    \
    c += d; b ^= c; b = rotl32(b, 12);    \
    a += b; d ^= a; d = rotl32(d, 8);     \
    c += d; b ^= c; b = rotl32(b, 7)

__device__ void chacha20_block(uint32_t out[16], const chacha_key &key, uint32_t counter,
                               uint32_t n0, uint32_t n1, uint32_t n2) {
    const uint32_t s[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
                            key.k[0],    key.k[1],    key.k[2],    key.k[3],
                            key.k[4],    key.k[5],    key.k[6],    key.k[7],
                            counter,     n0,          n1,          n2};
    uint32_t x[16];
#pragma unroll
    for (int i = 0; i < 16; i++) x[i] = s[i];
#pragma unroll 1
    for (int i = 0; i < 10; i++) {
        DP_QR(x[0], x[4], x[8], x[12]);
        DP_QR(x[1], x[5], x[9], x[13]);
        DP_QR(x[2], x[6], x[10], x[14]);
        DP_QR(x[3], x[7], x[11], x[15]);
        DP_QR(x[0], x[5], x[10], x[15]);
        DP_QR(x[1], x[6], x[11], x[12]);
        DP_QR(x[2], x[7], x[8], x[13]);
        DP_QR(x[3], x[4], x[9], x[14]);
    }
#pragma unroll
    for (int i = 0; i < 16; i++) out[i] = x[i] + s[i];
}

__device__ __forceinline__ double u53(const uint32_t *w) {
    uint64_t bits = ((uint64_t)w[0] << 21) ^ (w[1] >> 11);
    return (double)(bits & ((1ull << 53) - 1)) * 0x1.0p-53;
}

// Thread per pair of elements (one ChaCha20 block each), grid-stride.
__global__ void add_noise(float *out, int64_t n, double std, chacha_key key, uint32_t n1,
                          uint32_t n2) {
    const double two_pi = 6.283185307179586476925286766559;  // 2.0 * M_PI, exact in double
    const int64_t pairs = (n + 1) / 2;
    for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < pairs;
         p += (int64_t)gridDim.x * blockDim.x) {
        uint32_t block[16];
        chacha20_block(block, key, (uint32_t)p, 3u /* ET_DP_PURPOSE_NOISE */, n1, n2);
        for (int e = 0; e < 2 && 2 * p + e < n; e++) {
            const uint32_t *w = block + 8 * e;
            double sum = 0;
            for (int pair = 0; pair < 2; pair++) {
                double u1 = u53(w + 4 * pair), u2 = u53(w + 4 * pair + 2);
                double rad = sqrt(mul_d(-2.0, log(1.0 - u1)));
                double ang = mul_d(two_pi, u2);
                sum = add_d(sum, add_d(mul_d(rad, cos(ang)), mul_d(rad, sin(ang))));
            }
            out[2 * p + e] += (float)(mul_d(std, sum) / 2.0);
        }
    }
}

}  // namespace

extern "C" int etc_dp_unit_norms(double *norm2, float *factor, double *scratch, float *g,
                                 int64_t n, int64_t stride, const int32_t *unit_first,
                                 int n_units, double clip) {
    if (n < 0 || stride < n || n_units < 0 || n_units > 65535)
        return etc_fail("etc_dp_unit_norms: bad shape (n %lld, stride %lld, %d units)",
                        (long long)n, (long long)stride, n_units);
    if (n_units == 0) return 0;
    unit_norm_partials<<<dim3(ETC_DP_NORM_BLOCKS, n_units), DP_THREADS, 0, etc_stream()>>>(
        scratch, g, n, stride, unit_first);
    if (etc_check_launch("etc_dp_unit_norms")) return -1;
    unit_norm_final<<<n_units, ETC_DP_NORM_BLOCKS, 0, etc_stream()>>>(norm2, factor, scratch,
                                                                      ETC_DP_NORM_BLOCKS, clip);
    return etc_check_launch("etc_dp_unit_norms");
}

extern "C" int etc_dp_clip_sum(float *sum, const float *g, int64_t n, int64_t stride,
                               const int32_t *unit_first, const float *factor, int n_units) {
    if (n < 0 || stride < n || n_units < 0)
        return etc_fail("etc_dp_clip_sum: bad shape (n %lld, stride %lld, %d units)", (long long)n,
                        (long long)stride, n_units);
    if (n == 0 || n_units == 0) return 0;
    clip_sum<<<etc_grid(n, DP_THREADS), DP_THREADS, 0, etc_stream()>>>(sum, g, n, stride, unit_first,
                                                                      factor, n_units);
    return etc_check_launch("etc_dp_clip_sum");
}

extern "C" int etc_dp_add_noise(float *out, int64_t n, double std, const uint32_t key[8],
                                uint64_t step) {
    if (n < 0) return etc_fail("etc_dp_add_noise: negative element count %lld", (long long)n);
    if ((n + 1) / 2 > 0xffffffffll)
        return etc_fail("etc_dp_add_noise: %lld elements exceed the 32-bit block counter",
                        (long long)n);
    if (n == 0) return 0;
    chacha_key k;
    for (int i = 0; i < 8; i++) k.k[i] = key[i];
    add_noise<<<etc_grid((n + 1) / 2, DP_THREADS), DP_THREADS, 0, etc_stream()>>>(
        out, n, std, k, (uint32_t)step, (uint32_t)(step >> 32));
    return etc_check_launch("etc_dp_add_noise");
}
