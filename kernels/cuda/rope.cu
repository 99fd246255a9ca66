// RoPE, HF rotate_half convention: one thread per rotated pair (i, i + d/2), so
// out may alias x (each thread reads both values before writing either).
#include "kernels/cuda/context.h"

namespace {

// pairs = b·t·h·(d/2); pair e: i = e % half, row = e / half, pos = (row / h) % t.
template <typename T, bool BACKWARD>
__global__ void rope_kernel(T *out, const T *x, const float *cos_tab, const float *sin_tab,
                            int64_t pairs, int t, int h, int d) {
    const int half = d / 2;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < pairs;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int i = (int)(e % half);
        const int64_t row = e / half;
        const int64_t pos = (row / h) % t;
        const int64_t at = row * d + i;
        const float c = cos_tab[pos * half + i], s = sin_tab[pos * half + i];
        const float x1 = etc_f32(x[at]), x2 = etc_f32(x[at + half]);
        if (!BACKWARD) {
            out[at] = etc_to<T>(x1 * c - x2 * s);
            out[at + half] = etc_to<T>(x2 * c + x1 * s);
        } else {  // out is dx (+=), x is dout: rotation by −θ
            out[at] = etc_to<T>(etc_f32(out[at]) + (x1 * c + x2 * s));
            out[at + half] = etc_to<T>(etc_f32(out[at + half]) + (x2 * c - x1 * s));
        }
    }
}

template <typename T, bool BACKWARD>
int launch(T *out, const T *x, const float *cos_tab, const float *sin_tab, int b, int t, int h,
           int d, const char *name) {
    if (b < 0 || t < 0 || h < 0 || d <= 0 || d % 2)
        return etc_fail("%s: bad shape b=%d t=%d h=%d d=%d (d must be even)", name, b, t, h, d);
    const int64_t pairs = (int64_t)b * t * h * (d / 2);
    if (pairs == 0) return 0;
    rope_kernel<T, BACKWARD><<<etc_grid(pairs, 256), 256, 0, etc_stream()>>>(
        out, x, cos_tab, sin_tab, pairs, t, h, d);
    return etc_check_launch(name);
}

}  // namespace

typedef __nv_bfloat16 bf16;

extern "C" int etc_rope_forward(float *out, const float *x, const float *cos_tab,
                                const float *sin_tab, int b, int t, int h, int d) {
    return launch<float, false>(out, x, cos_tab, sin_tab, b, t, h, d, "etc_rope_forward");
}
extern "C" int etc_rope_backward(float *dx, const float *dout, const float *cos_tab,
                                 const float *sin_tab, int b, int t, int h, int d) {
    return launch<float, true>(dx, dout, cos_tab, sin_tab, b, t, h, d, "etc_rope_backward");
}
extern "C" int etc_rope_forward_bf16(etc_bf16 *out, const etc_bf16 *x, const float *cos_tab,
                                     const float *sin_tab, int b, int t, int h, int d) {
    return launch<bf16, false>((bf16 *)out, (const bf16 *)x, cos_tab, sin_tab, b, t, h, d,
                               "etc_rope_forward_bf16");
}
extern "C" int etc_rope_backward_bf16(etc_bf16 *dx, const etc_bf16 *dout, const float *cos_tab,
                                      const float *sin_tab, int b, int t, int h, int d) {
    return launch<bf16, true>((bf16 *)dx, (const bf16 *)dout, cos_tab, sin_tab, b, t, h, d,
                              "etc_rope_backward_bf16");
}
