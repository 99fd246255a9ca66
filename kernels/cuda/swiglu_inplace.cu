// SwiGLU backward in place, for training where gate and up are not needed after
// it: gate ← dout·up·σ(g)·(1 + g·(1 − σ(g))), up ← dout·g·σ(g) (the gradients of
// kernels/cpu/swiglu.c, written over the saved inputs). Three reads and two writes
// per element, and no zeroed gradient buffers.
#include "kernels/cuda/context.h"

namespace {

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + __expf(-g)); }

struct swiglu_bwd_inplace {
    using T = bf16;
    bf16 *gate, *up;
    const bf16 *dout;
    template <int W> __device__ void apply(int64_t i) const {
        float g[W], u[W], d[W];
        etc_load<bf16, W>(g, gate, i);
        etc_load<bf16, W>(u, up, i);
        etc_load<bf16, W>(d, dout, i);
#pragma unroll
        for (int k = 0; k < W; k++) {
            const float s = sigmoid(g[k]), dg = d[k] * u[k] * s * (1.0f + g[k] * (1.0f - s));
            u[k] = d[k] * g[k] * s;
            g[k] = dg;
        }
        etc_store<bf16, W>(gate, i, g);
        etc_store<bf16, W>(up, i, u);
    }
};

}  // namespace

extern "C" int etc_swiglu_backward_inplace_bf16(etc_bf16 *gate, etc_bf16 *up, const etc_bf16 *dout,
                                                int64_t n) {
    return etc_map(swiglu_bwd_inplace{(bf16 *)gate, (bf16 *)up, (const bf16 *)dout}, n,
                   etc_aligned16(gate, up, dout), "etc_swiglu_backward_inplace_bf16");
}
