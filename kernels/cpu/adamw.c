/* AdamW with torch.optim.AdamW's single-tensor (CPU default, non-fused,
 * non-amsgrad) arithmetic, in the same operation order, in fp32:
 *   param.mul_(1 − lr·wd)
 *   m.lerp_(g, 1 − β1)                    → m + (1−β1)·(g − m)
 *   v.mul_(β2).addcmul_(g, g, 1 − β2)     → v·β2 + ((1−β2)·g)·g
 *   denom = sqrt(v) / sqrt(1 − β2^step) + eps
 *   param.addcdiv_(m, denom, −lr/(1 − β1^step))  → param + (−step_size·m) / denom
 * Python computes the scalars (bias corrections, step size) in double; each is
 * rounded to fp32 where it meets a tensor, as here. PyTorch's vectorized kernels
 * fuse some multiply-adds, so results agree to fp32 rounding, not bit for bit. */
#include <math.h>

#include "kernels/ops.h"

void et_adamw_update(float *param, float *m, float *v, const float *grad, int64_t n, double lr,
                     double beta1, double beta2, double eps_d, double weight_decay, int step) {
    const float decay = (float)(1.0 - lr * weight_decay);
    const float w1 = (float)(1.0 - beta1); /* lerp weight < 0.5: a + w·(b − a) */
    const float b2 = (float)beta2, w2 = (float)(1.0 - beta2), eps = (float)eps_d;
    const double bias1 = 1.0 - pow((double)beta1, step);
    const float bias2_sqrt = (float)sqrt(1.0 - pow((double)beta2, step));
    const float neg_step_size = (float)(-(lr / bias1));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float g = grad[i];
        float p = param[i] * decay;
        float mi = m[i] + w1 * (g - m[i]);
        float vi = v[i] * b2;
        vi = vi + (w2 * g) * g;
        const float denom = sqrtf(vi) / bias2_sqrt + eps;
        param[i] = p + (neg_step_size * mi) / denom;
        m[i] = mi;
        v[i] = vi;
    }
}
