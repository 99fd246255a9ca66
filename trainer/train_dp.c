/* DP-SGD inside the training loop: planning (q, δ, σ, steps) and one step. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "trainer/model_cuda.h"
#include "trainer/train_cuda_dp.h"
#include "trainer/train_internal.h"

void dp_free(dp_state *d) {
    et_dp_units_free(&d->units);
    et_dp_batch_free(&d->batch);
    et_accountant_free(&d->acc);
    free(d->pe_grads);
    free(d->row_scale);
    free(d->norms);
    memset(d, 0, sizeof *d);
}

static const char *src(const et_recipe *r) { return r->source ? r->source : "recipe"; }

int dp_plan(train_state *s, const char *resume_json, int64_t start, et_error *err) {
    const et_recipe *r = s->r;
    const et_recipe_privacy *p = &r->privacy;
    dp_state *d = &s->dp;
    d->enabled = 1;
    if (r->optim.grad_accum != 1)
        return et_fail(err, "%s: optim.grad_accum must be 1 with privacy.enabled: a DP step "
                            "already processes its whole Poisson batch in micro-batches "
                            "(set privacy.expected_batch_size instead)",
                       src(r));
    if (p->max_sequences_per_unit > r->run.micro_batch)
        return et_fail(err, "%s: privacy.max_sequences_per_unit (%d) exceeds run.micro_batch "
                            "(%d): a unit must fit in one micro-batch",
                       src(r), p->max_sequences_per_unit, r->run.micro_batch);
    if (et_dp_units_build(&d->units, &s->rows, (et_dp_unit)p->unit, err)) return -1;
    int64_t n = d->units.n_units;
    if (n < 2)
        return et_fail(err, "%s: only %lld privacy unit(s) (%s) in the training split; DP needs "
                            "many",
                       r->data.train, (long long)n, et_recipe_unit_names[p->unit]);
    /* Sampling rate. */
    if (p->has_sample_rate) d->q = p->sample_rate;
    else {
        int ebs = p->has_expected_batch_size ? p->expected_batch_size
                                             : r->run.micro_batch * r->optim.grad_accum;
        d->q = (double)ebs / (double)n;
        if (d->q > 1.0)
            return et_fail(err, "%s: expected batch size %d exceeds the %lld privacy units; "
                                "lower privacy.expected_batch_size",
                           src(r), ebs, (long long)n);
    }
    if (!(d->q > 0 && d->q <= 1))
        return et_fail(err, "%s: privacy sample rate %g is outside (0, 1]", src(r), d->q);
    /* δ: explicit values must be below 1/N (a guarantee that allows one unit's data to be
     * released outright would be meaningless); auto = min(1e-5, 1/(10 N)). */
    if (p->has_delta) {
        if (!(p->delta > 0 && p->delta < 1.0 / (double)n))
            return et_fail(err, "%s: privacy.delta %g is not below 1/N = %g for N = %lld units; "
                                "choose a smaller delta (or leave it unset for auto)",
                           src(r), p->delta, 1.0 / (double)n, (long long)n);
        d->delta = p->delta;
    } else {
        d->delta = fmin(1e-5, 1.0 / (10.0 * (double)n));
    }
    /* Steps. */
    if (p->has_steps) d->steps = p->steps;
    else {
        double epochs = p->has_epochs ? p->epochs : r->optim.epochs;
        d->steps = r->optim.steps > 0 && !p->has_epochs ? r->optim.steps
                                                        : et_steps_for_epochs(epochs, d->q);
    }
    if (r->run.max_steps > 0 && d->steps > r->run.max_steps) d->steps = r->run.max_steps;
    if (d->steps < 0) /* et_steps_for_epochs: epochs / q beyond int64 */
        return et_fail(err, "%s: the DP run would take more than 9.2e18 steps (epochs / q); "
                            "at most %d are supported: lower the epochs", src(r), INT_MAX);
    if (d->steps < 1)
        return et_fail(err, "%s: the DP run has no steps (epochs / q < 1)", src(r));
    d->clip = p->max_grad_norm;
    et_accountant_kind kind = p->accountant == ET_RECIPE_ACCOUNTANT_RDP ? ET_ACCOUNTANT_RDP
                                                                       : ET_ACCOUNTANT_PRV;
    et_accountant_init(&d->acc, kind);
    if (p->has_target_epsilon) {
        double eps;
        d->target_epsilon = p->target_epsilon;
        if (et_sigma_for_epsilon(kind, p->target_epsilon, d->delta, d->q, d->steps, 0.01,
                                 &d->sigma, &eps, err))
            return et_wrap(err, "%s: calibrating the noise for privacy.target_epsilon %g",
                           src(r), p->target_epsilon);
    } else {
        d->sigma = p->noise_multiplier;
    }
    if (start > 0) {
        /* A resumed run's guarantee covers every step it took: the checkpoint must carry
         * the accountant of all `start` of them (a run that began without privacy has
         * none, and its steps cannot be made private afterwards). */
        cJSON *j = resume_json ? cJSON_Parse(resume_json) : NULL;
        const cJSON *a = j ? cJSON_GetObjectItemCaseSensitive(j, "accountant") : NULL;
        if (!a) {
            cJSON_Delete(j);
            return et_fail(err, "%s: its checkpoint at step %lld was trained without privacy "
                                "(no accountant in it); privacy.enabled cannot cover steps that "
                                "were not private: start a new run (a new run.out) with privacy "
                                "on, or resume with privacy.enabled: false",
                           r->run.out, (long long)start);
        }
        /* the settings that say what the guarantee protects and how: fixed for a run
         * (σ and q may change: the accountant composes the phases, the statement lists
         * them). Keys an older checkpoint lacks are not checked. */
        char changed[200] = "";
        const cJSON *v;
        if ((v = cJSON_GetObjectItemCaseSensitive(j, "unit")) && cJSON_IsString(v) &&
            strcmp(v->valuestring, et_recipe_unit_names[p->unit]))
            snprintf(changed, sizeof changed, "privacy.unit (%s, now %s)", v->valuestring,
                     et_recipe_unit_names[p->unit]);
        else if ((v = cJSON_GetObjectItemCaseSensitive(j, "delta")) && cJSON_IsNumber(v) &&
                 v->valuedouble != d->delta)
            snprintf(changed, sizeof changed, "privacy.delta (%g, now %g)", v->valuedouble, d->delta);
        else if ((v = cJSON_GetObjectItemCaseSensitive(j, "max_grad_norm")) && cJSON_IsNumber(v) &&
                 v->valuedouble != d->clip)
            snprintf(changed, sizeof changed, "privacy.max_grad_norm (%g, now %g)", v->valuedouble,
                     d->clip);
        else if ((v = cJSON_GetObjectItemCaseSensitive(j, "secure_rng")) && cJSON_IsBool(v) &&
                 cJSON_IsTrue(v) != (p->secure_rng != 0))
            /* seeded noise in any phase is reproducible from run.seed: a resume cannot make
             * those steps private, and the statement covers one noise source (found
             * 2026-11-26: false then true was stated as a full guarantee) */
            snprintf(changed, sizeof changed, "privacy.secure_rng (%s, now %s)",
                     cJSON_IsTrue(v) ? "true" : "false", p->secure_rng ? "true" : "false");
        else if ((v = cJSON_GetObjectItemCaseSensitive(j, "max_sequences_per_unit")) &&
                 cJSON_IsNumber(v) && v->valuedouble != (double)p->max_sequences_per_unit)
            snprintf(changed, sizeof changed, "privacy.max_sequences_per_unit (%g, now %d)",
                     v->valuedouble, p->max_sequences_per_unit);
        else if ((v = cJSON_GetObjectItemCaseSensitive(j, "corpus")) && cJSON_IsObject(v)) {
            const cJSON *sha = cJSON_GetObjectItemCaseSensitive(v, "source_sha256");
            const cJSON *nd = cJSON_GetObjectItemCaseSensitive(v, "n_docs");
            const cJSON *nt = cJSON_GetObjectItemCaseSensitive(v, "n_tokens");
            const char *now = s->corpus.source_sha256 ? s->corpus.source_sha256 : "";
            if ((cJSON_IsString(sha) && strcmp(sha->valuestring, now)) ||
                (cJSON_IsNumber(nd) && nd->valuedouble != (double)s->corpus.n_docs) ||
                (cJSON_IsNumber(nt) && nt->valuedouble != (double)s->corpus.n_tokens))
                snprintf(changed, sizeof changed, "the corpus (data.train: another file than the "
                                                  "run began with)");
        }
        if (changed[0]) {
            cJSON_Delete(j);
            return et_fail(err, "%s: resuming with another %s: one guarantee cannot cover two "
                                "settings; resume with the run's own, or start a new run (a new "
                                "run.out)",
                           r->run.out, changed);
        }
        et_accountant_free(&d->acc);
        int bad = et_accountant_from_json(a, &d->acc, err);
        cJSON_Delete(j);
        if (bad)
            return et_wrap(err, "%s: checkpoint accountant state", r->run.out);
        if (d->acc.kind != kind)
            return et_fail(err, "%s: the run was accounted with %s; the recipe says %s", r->run.out,
                           et_accountant_kind_name(d->acc.kind), et_accountant_kind_name(kind));
        int64_t accounted = 0;
        for (int i = 0; i < d->acc.n_phases; i++) accounted += d->acc.phases[i].steps;
        if (accounted != start)
            return et_fail(err, "%s: the checkpoint is at step %lld but its accountant holds %lld "
                                "private steps: some steps were taken without privacy; start a "
                                "new run (a new run.out)",
                           r->run.out, (long long)start, (long long)accounted);
    }
    if (et_dp_rng_init(&d->rng, p->secure_rng, r->run.seed, err)) return -1;
    size_t np = (size_t)s->lora.n_params, mb = (size_t)r->run.micro_batch;
    /* on CUDA the per-example gradients live on the device (trainer/train_cuda_dp.c) */
    if (s->use_cuda && train_cuda_dp_setup(s, err)) return -1;
    d->pe_grads = s->use_cuda ? NULL : malloc(sizeof(float) * np * mb);
    d->row_scale = malloc(sizeof(float) * mb);
    if ((!s->use_cuda && !d->pe_grads) || !d->row_scale)
        return et_fail(err, "out of memory: per-example LoRA gradients need %.1f MiB "
                            "(run.micro_batch x LoRA parameters x 4 bytes)",
                       np * mb * 4.0 / (1 << 20));
    return 0;
}

int dp_epsilon_after(const train_state *s, int64_t extra, double *eps, et_error *err) {
    const dp_state *d = &s->dp;
    et_accountant tmp = d->acc;
    tmp.phases = malloc(sizeof(et_dp_phase) * (size_t)(d->acc.n_phases + 1));
    if (!tmp.phases) return et_fail(err, "out of memory");
    memcpy(tmp.phases, d->acc.phases, sizeof(et_dp_phase) * (size_t)d->acc.n_phases);
    tmp.cap_phases = d->acc.n_phases + 1;
    int rc = extra > 0 ? et_accountant_step(&tmp, d->sigma, d->q, extra, err) : 0;
    if (!rc) rc = et_accountant_epsilon(&tmp, d->delta, eps, NULL, err);
    free(tmp.phases);
    return rc;
}

char *dp_checkpoint_json(const train_state *s) {
    if (!s->dp.enabled && !s->init_sha256[0]) return NULL;
    cJSON *j = cJSON_CreateObject();
    if (s->dp.enabled) {
        const et_recipe_privacy *p = &s->r->privacy;
        cJSON_AddItemToObject(j, "accountant", et_accountant_to_json(&s->dp.acc));
        cJSON_AddNumberToObject(j, "noise_multiplier", s->dp.sigma);
        cJSON_AddNumberToObject(j, "sample_rate", s->dp.q);
        cJSON_AddNumberToObject(j, "delta", s->dp.delta);
        /* what the guarantee means: a resume must not change it (dp_plan checks) */
        cJSON_AddStringToObject(j, "unit", et_recipe_unit_names[p->unit]);
        cJSON_AddNumberToObject(j, "max_grad_norm", s->dp.clip);
        cJSON_AddNumberToObject(j, "max_sequences_per_unit", p->max_sequences_per_unit);
        cJSON_AddBoolToObject(j, "secure_rng", p->secure_rng);
        cJSON *c = cJSON_AddObjectToObject(j, "corpus");
        cJSON_AddStringToObject(c, "source_sha256", s->corpus.source_sha256 ? s->corpus.source_sha256 : "");
        cJSON_AddNumberToObject(c, "n_docs", (double)s->corpus.n_docs);
        cJSON_AddNumberToObject(c, "n_tokens", (double)s->corpus.n_tokens);
    }
    if (s->init_sha256[0]) {
        cJSON *a = cJSON_AddObjectToObject(j, "init_adapter");
        cJSON_AddStringToObject(a, "sha256", s->init_sha256);
        cJSON_AddStringToObject(a, "path", s->init_path);
        cJSON_AddBoolToObject(a, "declared_public", s->init_public);
    }
    char *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return out;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Forward + per-example backward of the units [u0, u1) of the sampled batch (they fit
 * one micro-batch), then each unit's summed gradient is clipped into lora.grads. */
static int microbatch(train_state *s, int64_t step, int mb_index, int64_t u0, int64_t u1,
                      double *loss_sum, int64_t *targets, int64_t *tokens, int64_t *n_clipped,
                      et_error *err) {
    dp_state *d = &s->dp;
    et_dp_batch *b = &d->batch;
    int64_t r0 = b->unit_first[u0], r1 = b->unit_first[u1];
    int n = (int)(r1 - r0);
    size_t np = (size_t)s->lora.n_params;
    train_fill_batch(s, b->rows + r0, n);
    for (int64_t u = u0; u < u1; u++) {
        int64_t tg = 0;
        for (int64_t k = b->unit_first[u]; k < b->unit_first[u + 1]; k++)
            tg += s->rows.row_n_targets[b->rows[k]];
        for (int64_t k = b->unit_first[u]; k < b->unit_first[u + 1]; k++)
            d->row_scale[k - r0] = 1.0f / (float)tg;
        *targets += tg;
    }
    for (int i = 0; i < n; i++) *tokens += s->rows.row_n_valid[b->rows[r0 + i]];
    et_batch batch = {s->batch_ids, s->batch_targets, n, s->r->data.seq_len, d->row_scale};
    if (s->use_cuda)
        return train_cuda_dp_microbatch(s, &batch, step, mb_index, u0, u1, loss_sum, n_clipped, err);
    double ls;
    int64_t nv;
    if (et_model_forward(&s->model, &s->lora, s->acts, &batch, 1,
                         et_dp_dropout_seed(&d->rng, (uint64_t)step), (uint64_t)mb_index, &ls, &nv, err))
        return -1;
    *loss_sum += ls;
    memset(d->pe_grads, 0, sizeof(float) * np * (size_t)n);
    et_model_backward_per_example(&s->model, &s->lora, s->acts, &batch, 1.0f, d->pe_grads);
    for (int64_t u = u0; u < u1; u++) {
        /* Sum the unit's per-example gradients into its first row's slot, then clip. */
        float *g = d->pe_grads + (size_t)(b->unit_first[u] - r0) * np;
        for (int64_t k = b->unit_first[u] + 1; k < b->unit_first[u + 1]; k++) {
            const float *h = d->pe_grads + (size_t)(k - r0) * np;
            for (size_t i = 0; i < np; i++) g[i] += h[i];
        }
        double norm;
        double f = et_dp_clip_add(s->lora.grads, g, (int64_t)np, d->clip, &norm);
        d->norms[u] = norm;
        *n_clipped += f < 1.0;
    }
    return 0;
}

int dp_step(train_state *s, int64_t step, step_report *rep, et_error *err) {
    dp_state *d = &s->dp;
    size_t np = (size_t)s->lora.n_params;
    int mb = s->r->run.micro_batch;
    if (et_dp_sample(&d->batch, &d->units, d->q, s->r->privacy.max_sequences_per_unit, &d->rng,
                     (uint64_t)step, err))
        return -1;
    et_dp_batch *b = &d->batch;
    if (b->n_units > d->cap_norms) {
        free(d->norms);
        d->cap_norms = b->n_units * 2;
        d->norms = malloc(sizeof(double) * (size_t)d->cap_norms);
        if (!d->norms) return et_fail(err, "out of memory");
    }
    /* The clipped sum accumulates in lora.grads itself: the only extra memory of DP
     * is the per-example gradients of one micro-batch. */
    if (s->use_cuda) {
        if (et_cuda_model_zero_grads(s->cuda, err)) return -1;
    } else {
        memset(s->lora.grads, 0, sizeof(float) * np);
    }
    double loss_sum = 0;
    int64_t targets = 0, tokens = 0, n_clipped = 0;
    /* Pack whole units greedily into micro-batches of at most mb rows. */
    int mb_index = 0;
    for (int64_t u0 = 0; u0 < b->n_units;) {
        int64_t u1 = u0;
        while (u1 < b->n_units && b->unit_first[u1 + 1] - b->unit_first[u0] <= mb) u1++;
        if (microbatch(s, step, mb_index++, u0, u1, &loss_sum, &targets, &tokens, &n_clipped,
                       err))
            return -1;
        u0 = u1;
    }
    /* Noise once on the clipped sum, then divide by the expected batch size q·N. */
    if (s->use_cuda) {
        if (train_cuda_dp_noise(s, step, err)) return -1;
    } else {
        et_dp_add_noise(s->lora.grads, (int64_t)np, d->sigma * d->clip, &d->rng, (uint64_t)step);
        et_scale(s->lora.grads, (float)(1.0 / (d->q * (double)d->units.n_units)), (int64_t)np);
    }
    if (et_accountant_step(&d->acc, d->sigma, d->q, 1, err)) return -1;
    if (et_accountant_epsilon(&d->acc, d->delta, &rep->epsilon, NULL, err)) return -1;

    rep->loss = targets ? loss_sum / (double)targets : NAN;
    rep->grad_norm = NAN;
    rep->tokens = tokens;
    rep->targets = targets;
    rep->units = b->n_units;
    rep->clipped_fraction = b->n_units ? (double)n_clipped / (double)b->n_units : 0.0;
    rep->norm_p50 = rep->norm_p90 = rep->norm_max = NAN;
    if (b->n_units) {
        qsort(d->norms, (size_t)b->n_units, sizeof(double), cmp_double);
        rep->norm_p50 = d->norms[(b->n_units - 1) / 2];
        rep->norm_p90 = d->norms[(int64_t)((double)(b->n_units - 1) * 0.9)];
        rep->norm_max = d->norms[b->n_units - 1];
    }
    return 0;
}
