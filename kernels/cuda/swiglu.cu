// SwiGLU: out = silu(gate)·up with silu(g) = g·σ(g); the CPU's formulas, fused
// into one pass (forward) and one pass writing both gradients (backward).
#include "kernels/cuda/context.h"

namespace {

// σ(g) = 1/(1 + e^-g): e^-g overflows to inf for very negative g, giving 0, not NaN.
__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + __expf(-g)); }

template <typename E> struct swiglu_fwd {
    using T = E;
    E *out;
    const E *gate, *up;
    template <int W> __device__ void apply(int64_t i) const {
        float g[W], u[W];
        etc_load<E, W>(g, gate, i);
        etc_load<E, W>(u, up, i);
#pragma unroll
        for (int k = 0; k < W; k++) g[k] = g[k] * sigmoid(g[k]) * u[k];
        etc_store<E, W>(out, i, g);
    }
};

// dgate += dout·up·σ·(1 + g·(1 − σ));  dup += dout·g·σ.
template <typename E> struct swiglu_bwd {
    using T = E;
    E *dgate, *dup;
    const E *dout, *gate, *up;
    template <int W> __device__ void apply(int64_t i) const {
        float g[W], u[W], d[W], dg[W], du[W];
        etc_load<E, W>(g, gate, i);
        etc_load<E, W>(u, up, i);
        etc_load<E, W>(d, dout, i);
        etc_load<E, W>(dg, dgate, i);
        etc_load<E, W>(du, dup, i);
#pragma unroll
        for (int k = 0; k < W; k++) {
            float s = sigmoid(g[k]);
            dg[k] += d[k] * u[k] * s * (1.0f + g[k] * (1.0f - s));
            du[k] += d[k] * g[k] * s;
        }
        etc_store<E, W>(dgate, i, dg);
        etc_store<E, W>(dup, i, du);
    }
};

}  // namespace

extern "C" int etc_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    return etc_map(swiglu_fwd<float>{out, gate, up}, n, etc_aligned16(out, gate, up),
                   "etc_swiglu_forward");
}
extern "C" int etc_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                                   const float *up, int64_t n) {
    return etc_map(swiglu_bwd<float>{dgate, dup, dout, gate, up}, n,
                   etc_aligned16(dgate, dup, dout, gate, up), "etc_swiglu_backward");
}
extern "C" int etc_swiglu_forward_bf16(etc_bf16 *out, const etc_bf16 *gate, const etc_bf16 *up,
                                       int64_t n) {
    typedef __nv_bfloat16 B;
    return etc_map(swiglu_fwd<B>{(B *)out, (const B *)gate, (const B *)up}, n,
                   etc_aligned16(out, gate, up), "etc_swiglu_forward_bf16");
}
extern "C" int etc_swiglu_backward_bf16(etc_bf16 *dgate, etc_bf16 *dup, const etc_bf16 *dout,
                                        const etc_bf16 *gate, const etc_bf16 *up, int64_t n) {
    typedef __nv_bfloat16 B;
    return etc_map(
        swiglu_bwd<B>{(B *)dgate, (B *)dup, (const B *)dout, (const B *)gate, (const B *)up}, n,
        etc_aligned16(dgate, dup, dout, gate, up), "etc_swiglu_backward_bf16");
}
