/* LoRA side path (PEFT): out += scale · (x·Aᵀ)·Bᵀ, A [r, in], B [out, r]. */
#include "kernels/ops.h"

void et_lora_forward(float *out, float *xa, const float *x, const float *a, const float *b,
                     float scale, int n, int in_dim, int r, int out_dim) {
    et_matmul(xa, x, a, n, r, in_dim, 0, 1, 1.0f, 0.0f);      /* xa = x · Aᵀ */
    et_matmul(out, xa, b, n, out_dim, r, 0, 1, scale, 1.0f);  /* out += scale · xa · Bᵀ */
}

void et_lora_backward(float *dx, float *da, float *db, float *scratch_dxa, const float *dout,
                      const float *x, const float *xa, const float *a, const float *b,
                      float scale, int n, int in_dim, int r, int out_dim) {
    et_matmul(db, dout, xa, out_dim, r, n, 1, 0, scale, 1.0f);          /* dB += s·doutᵀ·xa */
    et_matmul(scratch_dxa, dout, b, n, r, out_dim, 0, 0, scale, 0.0f);  /* dxa = s·dout·B */
    et_matmul(da, scratch_dxa, x, r, in_dim, n, 1, 0, 1.0f, 1.0f);      /* dA += dxaᵀ·x */
    if (dx) et_matmul(dx, scratch_dxa, a, n, in_dim, r, 0, 0, 1.0f, 1.0f); /* dx += dxa·A */
}
