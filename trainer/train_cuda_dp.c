#include "trainer/train_cuda_dp.h"

#include "trainer/model_cuda.h"
#include "trainer/model_cuda_dp.h"

int train_cuda_dp_setup(train_state *s, et_error *err) {
    return et_cuda_dp_create(&s->cuda_dp, s->cuda, s->r->run.micro_batch, err);
}

int train_cuda_dp_microbatch(train_state *s, const et_batch *batch, int64_t step, int mb_index,
                             int64_t u0, int64_t u1, double *loss_sum, int64_t *n_clipped,
                             et_error *err) {
    dp_state *d = &s->dp;
    const et_dp_batch *b = &d->batch;
    double ls;
    int64_t nv, first[4097];
    const int n_units = (int)(u1 - u0);
    if (n_units > 4096) return et_fail(err, "CUDA DP: %d units in one micro-batch", n_units);
    for (int u = 0; u <= n_units; u++) first[u] = b->unit_first[u0 + u] - b->unit_first[u0];
    /* the same dropout stream as the CPU's microbatch(): keyed by the DP generator */
    if (et_cuda_dp_step(s->cuda, s->cuda_dp, batch, 1.0f, et_dp_dropout_seed(&d->rng, (uint64_t)step),
                        (uint64_t)mb_index, &ls, &nv, err) ||
        et_cuda_dp_clip_accumulate(s->cuda, s->cuda_dp, first, n_units, d->clip, d->norms + u0,
                                   err))
        return -1;
    *loss_sum += ls;
    for (int64_t u = u0; u < u1; u++) *n_clipped += d->clip / (d->norms[u] + 1e-6) < 1.0;
    return 0;
}

int train_cuda_dp_noise(train_state *s, int64_t step, et_error *err) {
    const dp_state *d = &s->dp;
    return et_cuda_dp_noise(s->cuda, d->sigma * d->clip, d->rng.key, (uint64_t)step,
                            (float)(1.0 / (d->q * (double)d->units.n_units)), err);
}

int train_cuda_dp_step(train_state *s, int64_t step, double lr, step_report *rep, et_error *err) {
    const et_recipe *r = s->r;
    if (dp_step(s, step, rep, err)) return -1;
    return et_cuda_model_adamw(s->cuda, lr, r->optim.beta1, r->optim.beta2, r->optim.eps,
                               r->optim.weight_decay, (int)(step + 1), err);
}

void train_cuda_dp_free(train_state *s) {
    et_cuda_dp_free(s->cuda_dp);
    s->cuda_dp = NULL;
}
