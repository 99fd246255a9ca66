// RoPE, HF rotate_half convention: each head's pair (i, i + d/2) is rotated by pos·θ_i.
// A thread rotates W consecutive pairs: W = 16 bytes of T (8 bf16, 4 fp32) when d/2
// is a multiple of W and every pointer is 16-byte aligned — both halves and both
// table rows move as 16-byte accesses — else one pair. A thread reads its pairs
// before writing them, so out may alias x.
//
// Three modes: the forward (out = R(θ)·x), the ops.h backward (dx += R(−θ)·dout) and
// an overwriting backward for the CUDA trainer (dx = R(−θ)·dout, in place), which
// spares it a zeroed gradient buffer and a read of it per layer.
#include "kernels/cuda/context.h"

namespace {

enum rope_mode { ROPE_FORWARD, ROPE_BACKWARD_ADD, ROPE_BACKWARD_SET };

// W table floats at `at` (a multiple of W) as 16-byte loads when W >= 4: the tables
// are only known to be 16-byte aligned, so never one 32-byte access.
template <int W> __device__ __forceinline__ void load_table(float (&dst)[W], const float *tab,
                                                            int64_t at) {
    constexpr int V = W >= 4 ? 4 : 1;
#pragma unroll
    for (int j = 0; j < W / V; j++) {
        float part[V];
        etc_load<float, V>(part, tab + at + j * V, 0);
#pragma unroll
        for (int k = 0; k < V; k++) dst[j * V + k] = part[k];
    }
}

// groups = b·t·h·(d/2)/W; group e: row = e / per_row (row = (batch·t + pos)·h + head),
// first pair i0 = (e % per_row)·W.
template <typename T, int W, rope_mode MODE>
__global__ void rope_kernel(T *out, const T *x, const float *cos_tab, const float *sin_tab,
                            int64_t groups, int t, int h, int d) {
    const int half = d / 2, per_row = half / W;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < groups;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = e / per_row;
        const int i0 = (int)(e - row * per_row) * W;
        const int64_t pos = (row / h) % t;
        const int64_t at = row * d + i0, tab = pos * half + i0;
        float x1[W], x2[W], c[W], s[W];
        etc_load<T, W>(x1, x, at / W);
        etc_load<T, W>(x2, x, (at + half) / W);
        load_table<W>(c, cos_tab, tab);
        load_table<W>(s, sin_tab, tab);
        float y1[W], y2[W];
#pragma unroll
        for (int k = 0; k < W; k++) {
            const float sk = MODE == ROPE_FORWARD ? s[k] : -s[k];  // backward: rotate by −θ
            y1[k] = x1[k] * c[k] - x2[k] * sk;
            y2[k] = x2[k] * c[k] + x1[k] * sk;
        }
        if (MODE == ROPE_BACKWARD_ADD) {
            float o1[W], o2[W];
            etc_load<T, W>(o1, out, at / W);
            etc_load<T, W>(o2, out, (at + half) / W);
#pragma unroll
            for (int k = 0; k < W; k++) y1[k] += o1[k], y2[k] += o2[k];
        }
        etc_store<T, W>(out, at / W, y1);
        etc_store<T, W>(out, (at + half) / W, y2);
    }
}

template <typename T, rope_mode MODE>
int launch(T *out, const T *x, const float *cos_tab, const float *sin_tab, int b, int t, int h,
           int d, const char *name) {
    if (b < 0 || t < 0 || h < 0 || d <= 0 || d % 2)
        return etc_fail("%s: bad shape b=%d t=%d h=%d d=%d (d must be even)", name, b, t, h, d);
    const int64_t pairs = (int64_t)b * t * h * (d / 2);
    if (pairs == 0) return 0;
    constexpr int W = 16 / sizeof(T);
    if ((d / 2) % W == 0 && etc_aligned16(out, x, cos_tab, sin_tab)) {
        rope_kernel<T, W, MODE><<<etc_grid(pairs / W, 256), 256, 0, etc_stream()>>>(
            out, x, cos_tab, sin_tab, pairs / W, t, h, d);
    } else {
        rope_kernel<T, 1, MODE><<<etc_grid(pairs, 256), 256, 0, etc_stream()>>>(
            out, x, cos_tab, sin_tab, pairs, t, h, d);
    }
    return etc_check_launch(name);
}

}  // namespace

typedef __nv_bfloat16 bf16;

extern "C" int etc_rope_forward(float *out, const float *x, const float *cos_tab,
                                const float *sin_tab, int b, int t, int h, int d) {
    return launch<float, ROPE_FORWARD>(out, x, cos_tab, sin_tab, b, t, h, d, "etc_rope_forward");
}
extern "C" int etc_rope_backward(float *dx, const float *dout, const float *cos_tab,
                                 const float *sin_tab, int b, int t, int h, int d) {
    return launch<float, ROPE_BACKWARD_ADD>(dx, dout, cos_tab, sin_tab, b, t, h, d,
                                            "etc_rope_backward");
}
extern "C" int etc_rope_forward_bf16(etc_bf16 *out, const etc_bf16 *x, const float *cos_tab,
                                     const float *sin_tab, int b, int t, int h, int d) {
    return launch<bf16, ROPE_FORWARD>((bf16 *)out, (const bf16 *)x, cos_tab, sin_tab, b, t, h, d,
                                      "etc_rope_forward_bf16");
}
extern "C" int etc_rope_backward_bf16(etc_bf16 *dx, const etc_bf16 *dout, const float *cos_tab,
                                      const float *sin_tab, int b, int t, int h, int d) {
    return launch<bf16, ROPE_BACKWARD_ADD>((bf16 *)dx, (const bf16 *)dout, cos_tab, sin_tab, b, t,
                                           h, d, "etc_rope_backward_bf16");
}
extern "C" int etc_rope_backward_set_bf16(etc_bf16 *dx, const etc_bf16 *dout,
                                          const float *cos_tab, const float *sin_tab, int b, int t,
                                          int h, int d) {
    return launch<bf16, ROPE_BACKWARD_SET>((bf16 *)dx, (const bf16 *)dout, cos_tab, sin_tab, b, t,
                                           h, d, "etc_rope_backward_set_bf16");
}
