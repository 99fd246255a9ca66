/* CPU-vs-CUDA training parity: the same tiny random Llama-family model, the same
 * LoRA initialisation and the same batch, trained for N AdamW steps on the CPU
 * reference (fp32, trainer/model.c) and on the CUDA path (bf16, trainer/
 * model_cuda*.c); the two loss curves must agree within 2e-2 relative at every
 * step, and the first step's LoRA gradients within 5e-2 (relative L2). The base
 * weights are rounded to bf16 first, so the curves differ only by
 * arithmetic precision, not by the weights. Every fifth step trains on one
 * sequence fewer (a partial batch, on both sides).
 *
 * Header-only (static functions): shared by tests/gpu/bench_train.c (built by
 * tests/gpu/check.sh without CMake) and tests/unit/test_cuda_train.c (ctest). */
#ifndef EHRTUNE_TRAIN_PARITY_H
#define EHRTUNE_TRAIN_PARITY_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "trainer/lora.h"
#include "trainer/model.h"
#include "trainer/model_cuda.h"
#include "trainer/dp.h"
#include "trainer/dp_rng.h"
#include "trainer/model_cuda_dp.h"

#define TRAIN_PARITY_LIMIT 2e-2
/* The first step's LoRA gradient, bf16 against fp32: ~1e-2 when both backends drop
 * the same LoRA inputs, ~0.4 when the dropout masks differ (the loss alone barely
 * moves), so this catches what the curve cannot. */
#define TRAIN_PARITY_GRAD_LIMIT 5e-2
#define TRAIN_PARITY_MAX_STEPS 64
/* DP case: clip below the typical unit norm (most units clipped), noise σ = 0.5 */
#define TRAIN_PARITY_DP_CLIP 0.05
#define TRAIN_PARITY_DP_SIGMA 0.5

typedef struct {
    const char *name;
    et_hf_config cfg;
    int batch, seq, r, steps, activation_checkpointing;
    float alpha, dropout;
    double lr, max_grad_norm;
    unsigned targets; /* LoRA'd projections (bit p = et_proj p) */
} train_parity_case;

#define TRAIN_PARITY_CASES 4

typedef struct {
    int steps;
    double cpu[TRAIN_PARITY_MAX_STEPS], gpu[TRAIN_PARITY_MAX_STEPS];
    double worst;      /* max over steps of |gpu − cpu| / |cpu| */
    int worst_step;
    double grad_err0;  /* ‖g_gpu − g_cpu‖ / ‖g_cpu‖ of the first step's LoRA gradient */
    char attention[448];
    int lora_kext, dropout_fused; /* the CUDA model's LoRA paths (their defaults or the env's) */
} train_parity_result;

static inline int train_parity_ok(const train_parity_result *r) {
    return r->worst <= TRAIN_PARITY_LIMIT && r->grad_err0 <= TRAIN_PARITY_GRAD_LIMIT;
}

/* Four cases: a Llama-3-like GQA model with tied embeddings and LoRA dropout; a
 * Qwen2/Mistral-like one with q/k/v biases, an untied head, a sliding window and
 * activation checkpointing; the first model without dropout, LoRA on q, v, gate and
 * down only (the CUDA step's grouped LoRA GEMMs with members left out); and LoRA on
 * the MLP only (gate, up, down: under the K-extended layout only the gate/up group is
 * extended — found 2026-11-26, its s·B columns were never written). */
static int train_parity_cases(train_parity_case *out) {
    memset(out, 0, TRAIN_PARITY_CASES * sizeof *out);
    for (int i = 0; i < TRAIN_PARITY_CASES; i++) {
        const int qwen = i == 1;
        et_hf_config *c = &out[i].cfg;
        c->arch = qwen ? ET_ARCH_QWEN2 : ET_ARCH_LLAMA;
        c->vocab_size = 512;
        c->hidden_size = 64;
        c->intermediate_size = 176;
        c->num_layers = 2;
        c->num_heads = 4;
        c->num_kv_heads = 2;
        c->head_dim = 16;
        c->max_position_embeddings = 128;
        c->rms_norm_eps = 1e-5f;
        c->rope = (et_rope_params){qwen ? ET_ROPE_DEFAULT : ET_ROPE_LLAMA3, 500000.0, 8.0, 1.0,
                                   4.0, 32.0};
        c->tie_word_embeddings = !qwen;
        c->attention_bias = qwen;
        c->sliding_window = qwen ? 24 : 0;
        c->bos_token_id = c->eos_token_id = -1;
        out[i].batch = 2;
        out[i].seq = 64;
        out[i].r = i == 0 ? 16 : 8; /* 16: the dropout case runs the tensor-core dA kernel */
        out[i].alpha = 16.0f;
        out[i].steps = 20;
        out[i].lr = 2e-3;
        out[i].max_grad_norm = 1.0;
        out[i].dropout = i == 0 ? 0.1f : 0.0f;
        out[i].activation_checkpointing = qwen;
        out[i].targets = i == 2   ? (1u << ET_PROJ_Q) | (1u << ET_PROJ_V) | (1u << ET_PROJ_GATE) |
                                        (1u << ET_PROJ_DOWN)
                         : i == 3 ? (1u << ET_PROJ_GATE) | (1u << ET_PROJ_UP) | (1u << ET_PROJ_DOWN)
                                  : (1u << ET_PROJ_COUNT) - 1;
        out[i].name = i == 0 ? "llama-gqa-tied-dropout"
                      : qwen ? "qwen2-bias-window-ckpt"
                      : i == 2 ? "llama-partial-targets"
                               : "llama-mlp-only";
    }
    return TRAIN_PARITY_CASES;
}

/* B = 0 would make the first dA zero: a small random B tests every path. */
static void tp_random_b(et_lora *lc, int num_layers) {
    for (int layer = 0; layer < num_layers; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            et_lora_slot *s = et_lora_slot_at(lc, layer, (et_proj)p);
            for (int j = 0; s->b && j < s->out * lc->r; j++)
                s->b[j] = 0.02f * (2.0f * et_uniform(31, (uint64_t)(layer * 7 + p) << 20 | j) - 1.0f);
        }
}

static float tp_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* A random model in host memory, laid out as et_model (weights rounded to bf16). */
static int tp_model(et_model *m, const et_hf_config *c, uint64_t seed, et_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    const size_t C = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    size_t total = V * C * (c->tie_word_embeddings ? 1 : 2) + C;
    for (int p = 0; p < ET_PROJ_COUNT; p++) {
        int in, out;
        et_proj_shape(c, (et_proj)p, &in, &out);
        total += ((size_t)in * out + (size_t)out) * c->num_layers;
    }
    total += 2 * C * c->num_layers;
    m->block = calloc(total, sizeof(float));
    m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
    if (!m->block || !m->layers) return et_fail(err, "out of memory");
    m->block_floats = total;
    float *at = m->block;
    uint64_t stream = seed * 1000003u;
#define TP_TAKE(dst, count, center, sd)                                                  \
    do {                                                                                 \
        (dst) = at;                                                                      \
        for (size_t j_ = 0; j_ < (size_t)(count); j_++)                                  \
            at[j_] = tp_bf16_round((center) + (float)((sd) * sqrt(3.0)) *                \
                                                  (2.0f * et_uniform(stream, j_) - 1.0f)); \
        at += (count);                                                                   \
        stream++;                                                                        \
    } while (0)
    TP_TAKE(m->embed, V * C, 0.0f, 1.0);
    if (!c->tie_word_embeddings) TP_TAKE(m->lm_head, V * C, 0.0f, 1.0 / sqrt((double)C));
    else m->lm_head = m->embed;
    TP_TAKE(m->final_norm, C, 1.0f, 0.05);
    for (int l = 0; l < c->num_layers; l++) {
        et_layer_weights *w = &m->layers[l];
        TP_TAKE(w->attn_norm, C, 1.0f, 0.05);
        TP_TAKE(w->mlp_norm, C, 1.0f, 0.05);
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            int in, out;
            et_proj_shape(c, (et_proj)p, &in, &out);
            TP_TAKE(w->w[p], (size_t)in * out, 0.0f, 1.0 / sqrt((double)in));
            int has_bias = (p <= ET_PROJ_V && c->attention_bias) || (p == ET_PROJ_O && c->o_bias) ||
                           (p >= ET_PROJ_GATE && c->mlp_bias);
            if (has_bias) TP_TAKE(w->bias[p], out, 0.0f, 0.02);
        }
    }
#undef TP_TAKE
    return 0;
}

static void tp_model_free(et_model *m) {
    free(m->block);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* One case: fills res; returns non-zero only when something failed to run (a
 * parity miss is !train_parity_ok(res), for the caller to judge). */
static int train_parity_run(const train_parity_case *tc, train_parity_result *res, et_error *err) {
    memset(res, 0, sizeof *res);
    const et_hf_config *c = &tc->cfg;
    const int n = tc->batch * tc->seq;
    et_model m;
    et_lora lc;
    et_acts *acts = NULL;
    et_cuda_model *cm = NULL;
    int rc = -1;
    int32_t *ids = malloc(sizeof(int32_t) * n), *tg = malloc(sizeof(int32_t) * n);
    float *am = NULL, *av = NULL, *g_gpu = NULL;
    memset(&lc, 0, sizeof lc);
    memset(&m, 0, sizeof m);
    if (!ids || !tg) {
        et_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(et_uniform(77, (uint64_t)i) * c->vocab_size);
    for (int i = 0; i < n; i++)
        tg[i] = (i + 1) % tc->seq == 0 || i % 13 == 5 ? -1 : ids[i + 1];
    et_batch batch = {ids, tg, tc->batch, tc->seq, NULL};
    if (tp_model(&m, c, 5, err)) goto done;
    if (et_lora_create(&lc, c, tc->r, tc->alpha, 0, tc->dropout, tc->targets, err))
        goto done;
    et_lora_init_weights(&lc, ET_LORA_INIT_DEFAULT, 9);
    tp_random_b(&lc, c->num_layers);
    if (et_acts_create(&acts, c, &lc, tc->batch, tc->seq, err)) goto done;
    et_cuda_options o = {tc->batch, tc->seq, tc->activation_checkpointing, 48, 0};
    if (et_cuda_model_create(&cm, &m, &lc, &o, err)) goto done;
    snprintf(res->attention, sizeof res->attention, "%s", et_cuda_model_attention_path(cm));
    res->lora_kext = et_cuda_model_lora_kext(cm), res->dropout_fused = et_cuda_model_dropout_fused(cm);
    am = calloc((size_t)lc.n_params, sizeof(float));
    av = calloc((size_t)lc.n_params, sizeof(float));
    g_gpu = malloc(sizeof(float) * (size_t)lc.n_params);
    if (!am || !av || !g_gpu) {
        et_fail(err, "out of memory");
        goto done;
    }
    res->steps = tc->steps < TRAIN_PARITY_MAX_STEPS ? tc->steps : TRAIN_PARITY_MAX_STEPS;
    for (int step = 0; step < res->steps; step++) {
        double ls_c, ls_g, norm_c, norm_g;
        int64_t nv_c, nv_g;
        /* every fifth step a partial batch (one sequence fewer), as a data loader's
         * last one: a micro-batch size the CUDA model meets mid-run */
        batch.b = step % 5 == 4 && tc->batch > 1 ? tc->batch - 1 : tc->batch;
        memset(lc.grads, 0, sizeof(float) * (size_t)lc.n_params);
        if (et_model_forward(&m, &lc, acts, &batch, 1, 3, (uint64_t)step, &ls_c, &nv_c, err)) goto done;
        et_model_backward(&m, &lc, acts, &batch, 1.0f / (float)nv_c);
        if (et_cuda_model_zero_grads(cm, err) ||
            et_cuda_model_step(cm, &batch, 1.0f / (float)nv_c, 3, (uint64_t)step, &ls_g, &nv_g, err))
            goto done;
        if (step == 0) {
            if (et_cuda_model_download_grads(cm, g_gpu, err)) goto done;
            double num = 0, den = 0;
            for (int64_t i = 0; i < lc.n_params; i++) {
                num += ((double)g_gpu[i] - lc.grads[i]) * ((double)g_gpu[i] - lc.grads[i]);
                den += (double)lc.grads[i] * lc.grads[i];
            }
            res->grad_err0 = den > 0 ? sqrt(num / den) : sqrt(num);
        }
        res->cpu[step] = ls_c / (double)nv_c;
        res->gpu[step] = ls_g / (double)nv_g;
        const double rel = fabs(res->gpu[step] - res->cpu[step]) / fabs(res->cpu[step]);
        if (!(rel <= res->worst)) res->worst = rel, res->worst_step = step;
        /* clip and AdamW on each side, as trainer/train.c does */
        norm_c = sqrt(et_sumsq(lc.grads, lc.n_params));
        if (et_cuda_model_grad_norm(cm, &norm_g, err)) goto done;
        if (tc->max_grad_norm > 0) {
            double cc = tc->max_grad_norm / (norm_c + 1e-6), cg = tc->max_grad_norm / (norm_g + 1e-6);
            if (cc < 1.0) et_scale(lc.grads, (float)cc, lc.n_params);
            if (cg < 1.0 && et_cuda_model_scale_grads(cm, (float)cg, err)) goto done;
        }
        et_adamw_update(lc.params, am, av, lc.grads, lc.n_params, tc->lr, 0.9, 0.999, 1e-8, 0.01,
                        step + 1);
        if (et_cuda_model_adamw(cm, tc->lr, 0.9, 0.999, 1e-8, 0.01, step + 1, err)) goto done;
    }
    /* again: the note says if the model changed attention kernels mid-run */
    snprintf(res->attention, sizeof res->attention, "%s", et_cuda_model_attention_path(cm));
    res->lora_kext = et_cuda_model_lora_kext(cm), res->dropout_fused = et_cuda_model_dropout_fused(cm);
    rc = 0;
done:
    et_cuda_model_free(cm);
    et_acts_free(acts);
    if (lc.params) et_lora_free(&lc);
    if (m.block) tp_model_free(&m);
    free(ids), free(tg), free(am), free(av), free(g_gpu);
    return rc;
}

/* DP-SGD parity: the same model and LoRA as train_parity_run(tc), `tc->batch` rows in
 * units {0}, {1, 2}, {3}, ... (a unit of two rows tests the unit sum), per-unit
 * clipping at `clip`, noise σ·clip from the deterministic ChaCha20 key of seed 11
 * (privacy.secure_rng: false) on both sides, division by the unit count, AdamW.
 * The CPU runs trainer/train_dp.c's arithmetic (et_model_backward_per_example,
 * et_dp_clip_add, et_dp_add_noise); CUDA runs trainer/model_cuda_dp.h. grad_err0 is
 * the first step's per-unit summed gradients (before clipping, where noise cannot
 * hide a difference); *norm_err0 the worst relative unit-norm difference there. */
static inline int train_parity_run_dp(const train_parity_case *tc, double clip, double sigma,
                               train_parity_result *res, double *norm_err0, et_error *err) {
    memset(res, 0, sizeof *res);
    *norm_err0 = 0;
    const et_hf_config *c = &tc->cfg;
    const int n = tc->batch * tc->seq;
    et_model m;
    et_lora lc;
    et_acts *acts = NULL;
    et_cuda_model *cm = NULL;
    et_cuda_dp *dp = NULL;
    et_dp_rng rng;
    int rc = -1, n_units = 0;
    int64_t first[TRAIN_PARITY_MAX_STEPS + 1];
    float row_scale[TRAIN_PARITY_MAX_STEPS];
    int32_t *ids = malloc(sizeof(int32_t) * n), *tg = malloc(sizeof(int32_t) * n);
    float *am = NULL, *av = NULL, *pe = NULL, *pe_gpu = NULL;
    memset(&lc, 0, sizeof lc);
    memset(&m, 0, sizeof m);
    if (!ids || !tg || tc->batch > TRAIN_PARITY_MAX_STEPS) {
        et_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(et_uniform(78, (uint64_t)i) * c->vocab_size);
    for (int i = 0; i < n; i++)
        tg[i] = (i + 1) % tc->seq == 0 || i % 11 == 4 ? -1 : ids[i + 1];
    /* units: row 0 alone, rows 1-2 together, then one row each */
    first[n_units++] = 0;
    for (int row = 1; row <= tc->batch; row++)
        if (row != 2) first[n_units++] = row;
    n_units--;
    for (int u = 0; u < n_units; u++) {
        int targets = 0;
        for (int64_t i = first[u] * tc->seq; i < first[u + 1] * tc->seq; i++) targets += tg[i] >= 0;
        for (int64_t row = first[u]; row < first[u + 1]; row++) row_scale[row] = 1.0f / (float)targets;
    }
    et_batch batch = {ids, tg, tc->batch, tc->seq, row_scale};
    if (tp_model(&m, c, 5, err)) goto done;
    if (et_lora_create(&lc, c, tc->r, tc->alpha, 0, tc->dropout, tc->targets, err))
        goto done;
    et_lora_init_weights(&lc, ET_LORA_INIT_DEFAULT, 9);
    tp_random_b(&lc, c->num_layers);
    if (et_acts_create(&acts, c, &lc, tc->batch, tc->seq, err)) goto done;
    et_cuda_options o = {tc->batch, tc->seq, tc->activation_checkpointing, 48, 0};
    if (et_cuda_model_create(&cm, &m, &lc, &o, err) || et_cuda_dp_create(&dp, cm, tc->batch, err) ||
        et_dp_rng_init(&rng, 0, 11, err))
        goto done;
    snprintf(res->attention, sizeof res->attention, "%s", et_cuda_model_attention_path(cm));
    res->lora_kext = et_cuda_model_lora_kext(cm), res->dropout_fused = et_cuda_model_dropout_fused(cm);
    const size_t np = (size_t)lc.n_params;
    am = calloc(np, sizeof(float));
    av = calloc(np, sizeof(float));
    pe = malloc(sizeof(float) * np * (size_t)tc->batch);
    pe_gpu = malloc(sizeof(float) * np * (size_t)tc->batch);
    if (!am || !av || !pe || !pe_gpu) {
        et_fail(err, "out of memory");
        goto done;
    }
    res->steps = tc->steps < TRAIN_PARITY_MAX_STEPS ? tc->steps : TRAIN_PARITY_MAX_STEPS;
    for (int step = 0; step < res->steps; step++) {
        double ls_c, ls_g, norms_c[TRAIN_PARITY_MAX_STEPS], norms_g[TRAIN_PARITY_MAX_STEPS];
        int64_t nv_c, nv_g;
        /* train_dp.c's dropout stream: the step's seed, micro-batch 0 */
        const uint64_t dseed = et_dropout_seed(3, step), dstep = 0;
        const float inv_units = (float)(1.0 / n_units);
        /* CPU: trainer/train_dp.c's microbatch() and dp_step() */
        memset(lc.grads, 0, sizeof(float) * np);
        memset(pe, 0, sizeof(float) * np * (size_t)tc->batch);
        if (et_model_forward(&m, &lc, acts, &batch, 1, dseed, dstep, &ls_c, &nv_c, err)) goto done;
        et_model_backward_per_example(&m, &lc, acts, &batch, 1.0f, pe);
        for (int u = 0; u < n_units; u++) {
            float *g = pe + (size_t)first[u] * np;
            for (int64_t k = first[u] + 1; k < first[u + 1]; k++)
                for (size_t i = 0; i < np; i++) g[i] += pe[(size_t)k * np + i];
            et_dp_clip_add(lc.grads, g, (int64_t)np, clip, &norms_c[u]);
        }
        et_dp_add_noise(lc.grads, (int64_t)np, sigma * clip, &rng, (uint64_t)step);
        et_scale(lc.grads, inv_units, (int64_t)np);
        /* CUDA */
        if (et_cuda_model_zero_grads(cm, err) ||
            et_cuda_dp_step(cm, dp, &batch, 1.0f, dseed, dstep, &ls_g, &nv_g, err) ||
            et_cuda_dp_clip_accumulate(cm, dp, first, n_units, clip, norms_g, err))
            goto done;
        if (step == 0) {
            if (et_cuda_dp_download(dp, pe_gpu, tc->batch, err)) goto done;
            double num = 0, den = 0;
            for (int u = 0; u < n_units; u++) {
                const float *a = pe_gpu + (size_t)first[u] * np, *b = pe + (size_t)first[u] * np;
                for (size_t i = 0; i < np; i++) {
                    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                    den += (double)b[i] * b[i];
                }
                double e = fabs(norms_g[u] - norms_c[u]) / norms_c[u];
                if (!(e <= *norm_err0)) *norm_err0 = e;
            }
            res->grad_err0 = den > 0 ? sqrt(num / den) : sqrt(num);
        }
        if (et_cuda_dp_noise(cm, sigma * clip, rng.key, (uint64_t)step, inv_units, err)) goto done;
        res->cpu[step] = ls_c / (double)nv_c;
        res->gpu[step] = ls_g / (double)nv_g;
        const double rel = fabs(res->gpu[step] - res->cpu[step]) / fabs(res->cpu[step]);
        if (!(rel <= res->worst)) res->worst = rel, res->worst_step = step;
        et_adamw_update(lc.params, am, av, lc.grads, lc.n_params, tc->lr, 0.9, 0.999, 1e-8, 0.01,
                        step + 1);
        if (et_cuda_model_adamw(cm, tc->lr, 0.9, 0.999, 1e-8, 0.01, step + 1, err)) goto done;
    }
    rc = 0;
done:
    et_cuda_dp_free(dp);
    et_cuda_model_free(cm);
    et_acts_free(acts);
    if (lc.params) et_lora_free(&lc);
    if (m.block) tp_model_free(&m);
    free(ids), free(tg), free(am), free(av), free(pe), free(pe_gpu);
    return rc;
}

#endif
