// LoRA side path out += scale·(x·Aᵀ)·Bᵀ as four small-rank GEMMs, the same
// sequence as kernels/cpu/lora.c. bf16 variants take bf16 activations and bf16
// copies of A and B, and accumulate dA, dB into fp32.
#include "kernels/cuda/context.h"

namespace {

int check_shape(int n, int in_dim, int r, int out_dim, const char *name) {
    if (n < 0 || in_dim <= 0 || r <= 0 || out_dim <= 0)
        return etc_fail("%s: bad shape n=%d in=%d r=%d out=%d", name, n, in_dim, r, out_dim);
    return 0;
}

}  // namespace

extern "C" int etc_lora_forward(float *out, float *xa, const float *x, const float *a,
                                const float *b, float scale, int n, int in_dim, int r,
                                int out_dim) {
    if (check_shape(n, in_dim, r, out_dim, "etc_lora_forward")) return -1;
    if (etc_matmul(xa, x, a, n, r, in_dim, 0, 1, 1.0f, 0.0f)) return -1;      // xa = x·Aᵀ
    return etc_matmul(out, xa, b, n, out_dim, r, 0, 1, scale, 1.0f);         // out += s·xa·Bᵀ
}

extern "C" int etc_lora_backward(float *dx, float *da, float *db, float *scratch_dxa,
                                 const float *dout, const float *x, const float *xa,
                                 const float *a, const float *b, float scale, int n, int in_dim,
                                 int r, int out_dim) {
    if (check_shape(n, in_dim, r, out_dim, "etc_lora_backward")) return -1;
    if (n == 0) return 0;
    if (etc_matmul(db, dout, xa, out_dim, r, n, 1, 0, scale, 1.0f)) return -1;          // dB
    if (etc_matmul(scratch_dxa, dout, b, n, r, out_dim, 0, 0, scale, 0.0f)) return -1;  // dxa
    if (etc_matmul(da, scratch_dxa, x, r, in_dim, n, 1, 0, 1.0f, 1.0f)) return -1;       // dA
    if (dx) return etc_matmul(dx, scratch_dxa, a, n, in_dim, r, 0, 0, 1.0f, 1.0f);       // dx
    return 0;
}

extern "C" int etc_lora_forward_bf16(etc_bf16 *out, etc_bf16 *xa, const etc_bf16 *x,
                                     const etc_bf16 *a, const etc_bf16 *b, float scale, int n,
                                     int in_dim, int r, int out_dim) {
    if (check_shape(n, in_dim, r, out_dim, "etc_lora_forward_bf16")) return -1;
    if (etc_matmul_bf16(xa, x, a, n, r, in_dim, 0, 1, 1.0f, 0.0f)) return -1;
    return etc_matmul_bf16(out, xa, b, n, out_dim, r, 0, 1, scale, 1.0f);
}

extern "C" int etc_lora_backward_bf16(etc_bf16 *dx, float *da, float *db, etc_bf16 *scratch_dxa,
                                      const etc_bf16 *dout, const etc_bf16 *x,
                                      const etc_bf16 *xa, const etc_bf16 *a, const etc_bf16 *b,
                                      float scale, int n, int in_dim, int r, int out_dim) {
    if (check_shape(n, in_dim, r, out_dim, "etc_lora_backward_bf16")) return -1;
    if (n == 0) return 0;
    if (etc_matmul_bf16_f32out(db, dout, xa, out_dim, r, n, 1, 0, scale, 1.0f)) return -1;
    if (etc_matmul_bf16(scratch_dxa, dout, b, n, r, out_dim, 0, 0, scale, 0.0f)) return -1;
    if (etc_matmul_bf16_f32out(da, scratch_dxa, x, r, in_dim, n, 1, 0, 1.0f, 1.0f)) return -1;
    if (dx) return etc_matmul_bf16(dx, scratch_dxa, a, n, in_dim, r, 0, 0, 1.0f, 1.0f);
    return 0;
}

namespace {

// Segment blockIdx.y; element e of its rows × width block: the member's own r
// columns get scale·B, every other column 0.
__global__ void kext_weights_kernel(const etc_kext_seg *segs, const float *params, int r,
                                    float scale) {
    const etc_kext_seg sg = segs[blockIdx.y];
    const int64_t n = (int64_t)sg.rows * sg.width;
    __nv_bfloat16 *dst = (__nv_bfloat16 *)sg.dst;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = e / sg.width;
        const int c = (int)(e - row * sg.width) - sg.col0;
        const float v = sg.col0 >= 0 && c >= 0 && c < r ? scale * params[sg.b_off + row * r + c] : 0.0f;
        dst[row * sg.ld + (e - row * sg.width)] = __float2bfloat16_rn(v);
    }
}

}  // namespace

extern "C" int etc_lora_kext_weights_bf16(const etc_kext_seg *segs, int nseg, int64_t max_elems,
                                          const float *params, int r, float scale) {
    if (nseg < 0 || nseg > 65535 || r < 1 || max_elems < 0)
        return etc_fail("etc_lora_kext_weights_bf16: %d segments, r=%d", nseg, r);
    if (nseg == 0 || max_elems == 0) return 0;
    dim3 grid(etc_grid(max_elems, 256), (unsigned)nseg);
    kext_weights_kernel<<<grid, 256, 0, etc_stream()>>>(segs, params, r, scale);
    return etc_check_launch("etc_lora_kext_weights_bf16");
}
