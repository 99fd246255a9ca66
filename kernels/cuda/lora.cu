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
