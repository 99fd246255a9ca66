// Residual add and its backward (the gradient passes through to both inputs).
#include "kernels/cuda/context.h"

namespace {

template <typename E> struct add_fwd {
    using T = E;
    E *out;
    const E *a, *b;
    template <int W> __device__ void apply(int64_t i) const {
        float x[W], y[W];
        etc_load<E, W>(x, a, i);
        etc_load<E, W>(y, b, i);
#pragma unroll
        for (int k = 0; k < W; k++) x[k] += y[k];
        etc_store<E, W>(out, i, x);
    }
};

// acc += dout for one gradient; NULL gradients are skipped by the host.
template <typename E> struct accumulate {
    using T = E;
    E *acc;
    const E *dout;
    template <int W> __device__ void apply(int64_t i) const {
        float x[W], g[W];
        etc_load<E, W>(x, acc, i);
        etc_load<E, W>(g, dout, i);
#pragma unroll
        for (int k = 0; k < W; k++) x[k] += g[k];
        etc_store<E, W>(acc, i, x);
    }
};

template <typename E> int forward(E *out, const E *a, const E *b, int64_t n, const char *name) {
    return etc_map(add_fwd<E>{out, a, b}, n, etc_aligned16(out, a, b), name);
}

template <typename E> int backward(E *da, E *db, const E *dout, int64_t n, const char *name) {
    if (da && etc_map(accumulate<E>{da, dout}, n, etc_aligned16(da, dout), name)) return -1;
    if (db && etc_map(accumulate<E>{db, dout}, n, etc_aligned16(db, dout), name)) return -1;
    return 0;
}

}  // namespace

extern "C" int etc_add_forward(float *out, const float *a, const float *b, int64_t n) {
    return forward(out, a, b, n, "etc_add_forward");
}
extern "C" int etc_add_backward(float *da, float *db, const float *dout, int64_t n) {
    return backward(da, db, dout, n, "etc_add_backward");
}
extern "C" int etc_add_forward_bf16(etc_bf16 *out, const etc_bf16 *a, const etc_bf16 *b,
                                    int64_t n) {
    return forward((__nv_bfloat16 *)out, (const __nv_bfloat16 *)a, (const __nv_bfloat16 *)b, n,
                   "etc_add_forward_bf16");
}
extern "C" int etc_add_backward_bf16(etc_bf16 *da, etc_bf16 *db, const etc_bf16 *dout,
                                     int64_t n) {
    return backward((__nv_bfloat16 *)da, (__nv_bfloat16 *)db, (const __nv_bfloat16 *)dout, n,
                    "etc_add_backward_bf16");
}
