/* SwiGLU gate of the Llama MLP: out = silu(gate) · up, silu(g) = g·σ(g). */
#include <math.h>

#include "kernels/ops.h"

/* σ(g) = 1 / (1 + e^-g): for very negative g, e^-g overflows to inf and σ → 0,
 * never NaN. */
static inline float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

void et_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

/* d silu/dg = σ(g)·(1 + g·(1 − σ(g))). */
void et_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], s = sigmoid(g);
        dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] += dout[i] * g * s;
    }
}
