// AdamW over fp32 master weights, with kernels/cpu/adamw.c's operation order
// (torch.optim.AdamW's single-tensor path): the scalars are computed on the host
// in double and rounded to fp32 exactly as the CPU does, so the two backends
// differ only by fused multiply-adds and by --use_fast_math's sqrtf and division
// (about 2 ulp; denormals flushed): parity within the fp32 limit, not bit for bit.
#include <math.h>

#include "kernels/cuda/context.h"

namespace {

struct adamw_op {
    using T = float;
    float *param, *m, *v;
    const float *grad;
    float decay, w1, b2, w2, bias2_sqrt, neg_step_size, eps;
    template <int W> __device__ void apply(int64_t i) const {
        float p[W], mi[W], vi[W], g[W];
        etc_load<float, W>(p, param, i);
        etc_load<float, W>(mi, m, i);
        etc_load<float, W>(vi, v, i);
        etc_load<float, W>(g, grad, i);
#pragma unroll
        for (int k = 0; k < W; k++) {
            p[k] *= decay;
            mi[k] = mi[k] + w1 * (g[k] - mi[k]);
            vi[k] = vi[k] * b2;
            vi[k] = vi[k] + (w2 * g[k]) * g[k];
            const float denom = sqrtf(vi[k]) / bias2_sqrt + eps;
            p[k] = p[k] + (neg_step_size * mi[k]) / denom;
        }
        etc_store<float, W>(param, i, p);
        etc_store<float, W>(m, i, mi);
        etc_store<float, W>(v, i, vi);
    }
};

}  // namespace

extern "C" int etc_adamw_update(float *param, float *m, float *v, const float *grad, int64_t n,
                                float lr, float beta1, float beta2, float eps,
                                float weight_decay, int step) {
    if (step < 1) return etc_fail("etc_adamw_update: step must count from 1 (got %d)", step);
    adamw_op op;
    op.param = param, op.m = m, op.v = v, op.grad = grad;
    op.decay = (float)(1.0 - (double)lr * weight_decay);
    op.w1 = (float)(1.0 - (double)beta1);
    op.b2 = beta2;
    op.w2 = (float)(1.0 - (double)beta2);
    const double bias1 = 1.0 - pow((double)beta1, step);
    op.bias2_sqrt = (float)sqrt(1.0 - pow((double)beta2, step));
    op.neg_step_size = (float)(-((double)lr / bias1));
    op.eps = eps;
    return etc_map(op, n, etc_aligned16(param, m, v, grad), "etc_adamw_update");
}
