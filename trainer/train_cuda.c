#include "trainer/train_cuda.h"

#include <math.h>
#include <string.h>

#include "trainer/model_cuda.h"
#include "trainer/train_cuda_dp.h"

static const char *src(const et_recipe *r) { return r->source ? r->source : "recipe"; }

int train_cuda_choose(train_state *s, et_error *err) {
    const et_recipe *r = s->r;
    s->use_cuda = 0;
    if (r->run.device == ET_RECIPE_DEVICE_CPU) return 0;
    const int explicit = r->run.device == ET_RECIPE_DEVICE_CUDA;
    if (r->model.dtype == ET_RECIPE_DTYPE_FP32) {
        if (!explicit) return 0;
        return et_fail(err, "%s: run.device: cuda with model.dtype: fp32: the CUDA backend trains "
                            "in bf16; set model.dtype: bf16 (or auto), or run.device: cpu",
                       src(r));
    }
    if (et_cuda_device_count(NULL, 0) < 1) {
        if (!explicit) return 0;
#ifdef EHRTUNE_HAVE_CUDA
        const char *why = "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)";
#else
        const char *why = "this ehrtune was built without the CUDA backend (no nvcc at build time)";
#endif
        return et_fail(err, "%s: run.device: cuda but %s; set run.device: cpu or auto", src(r), why);
    }
    s->use_cuda = 1;
    return 0;
}

int train_cuda_setup(train_state *s, et_error *err) {
    const et_recipe *r = s->r;
    et_cuda_options o = {r->run.micro_batch, r->data.seq_len, r->run.activation_checkpointing, 0, 0};
    if (et_cuda_model_create(&s->cuda, &s->model, &s->lora, &o, err)) return -1;
    /* after a resume the moments are the checkpoint's; otherwise zeros either way */
    return et_cuda_model_upload(s->cuda, &s->lora, s->adam_m, s->adam_v, err);
}

int train_cuda_step(train_state *s, int64_t step, double lr, step_report *rep, et_error *err) {
    const et_recipe *r = s->r;
    const int mb = r->run.micro_batch, accum = r->optim.grad_accum;
    memset(rep, 0, sizeof *rep);
    if (s->dp.enabled) return train_cuda_dp_step(s, step, lr, rep, err);
    const int64_t g0 = step * accum * mb;
    for (int64_t i = 0; i < (int64_t)accum * mb; i++) {
        const int64_t row = train_order_row(s, g0 + i);
        rep->targets += s->rows.row_n_targets[row];
        rep->tokens += s->rows.row_n_valid[row];
    }
    if (et_cuda_model_zero_grads(s->cuda, err)) return -1;
    double loss_sum = 0;
    int64_t rows[4096];
    for (int a = 0; a < accum; a++) {
        for (int i = 0; i < mb; i++) rows[i] = train_order_row(s, g0 + (int64_t)a * mb + i);
        train_fill_batch(s, rows, mb);
        et_batch batch = {s->batch_ids, s->batch_targets, mb, r->data.seq_len, NULL};
        double ls;
        int64_t nv;
        if (et_cuda_model_step(s->cuda, &batch, 1.0f / (float)rep->targets,
                               et_dropout_seed(r->run.seed, step), (uint64_t)a, &ls, &nv, err))
            return -1;
        loss_sum += ls;
    }
    rep->loss = loss_sum / (double)rep->targets;
    if (et_cuda_model_grad_norm(s->cuda, &rep->grad_norm, err)) return -1;
    if (r->optim.max_grad_norm > 0) {
        /* torch.nn.utils.clip_grad_norm_: coef = max/(norm+1e-6), clamped to 1. */
        const double coef = r->optim.max_grad_norm / (rep->grad_norm + 1e-6);
        if (coef < 1.0 && et_cuda_model_scale_grads(s->cuda, (float)coef, err)) return -1;
    }
    return et_cuda_model_adamw(s->cuda, lr, r->optim.beta1, r->optim.beta2, r->optim.eps,
                               r->optim.weight_decay, (int)(step + 1), err);
}

int train_cuda_sync_host(train_state *s, et_error *err) {
    return et_cuda_model_download(s->cuda, &s->lora, s->adam_m, s->adam_v, err);
}

void train_cuda_free(train_state *s) {
    train_cuda_dp_free(s);
    et_cuda_model_free(s->cuda);
    s->cuda = NULL;
}
