#include "trainer/train.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "data/atomic_file.h"
#include "data/sha256.h"
#include "kernels/ops.h"
#include "trainer/checkpoint.h"
#include "trainer/schedule.h"
#include "trainer/train_cuda.h"
#include "trainer/model_cuda.h"
#include "trainer/train_internal.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void utc_now(char *out, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *src(const et_recipe *r) { return r->source ? r->source : "recipe"; }

int64_t et_train_total_steps(const et_recipe *r, int64_t n_rows) {
    int64_t steps = r->optim.steps;
    if (steps <= 0) {
        int64_t per_step = (int64_t)r->run.micro_batch * r->optim.grad_accum;
        /* in double first: optim.epochs = 1e300 cast straight to int64 was undefined
         * (INT64_MIN on x86, then clamped to one step: found 2026-11-26) */
        const double want = ceil(r->optim.epochs * (double)n_rows / (double)per_step);
        steps = !(want < 9.2e18) ? INT64_MAX : (int64_t)want; /* et_train refuses > INT_MAX */
        if (steps < 1) steps = 1;
    }
    if (r->run.max_steps > 0 && steps > r->run.max_steps) steps = r->run.max_steps;
    return steps;
}

/* ---- data order (non-DP) -------------------------------------------------------
 * Sample g (counting every row drawn since step 0) is row perm_e[g mod n] of
 * epoch e = g / n, where perm_e is a Fisher-Yates shuffle keyed by (seed, e). */
static void order_epoch(train_state *s, int64_t epoch) {
    if (s->order.epoch == epoch) return;
    int64_t *perm = s->order.perm;
    for (int64_t i = 0; i < s->order.n; i++) perm[i] = i;
    uint64_t key = s->order.seed ^ 0x6461746f72646572ull; /* "datorder": apart from other streams */
    for (int64_t i = s->order.n - 1; i > 0; i--) {
        uint64_t ctr = ((uint64_t)epoch << 40) + (uint64_t)i;
        int64_t j = (int64_t)(et_uniform(key, ctr) * (double)(i + 1));
        if (j > i) j = i;
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    s->order.epoch = epoch;
}

static int64_t order_row(train_state *s, int64_t g) {
    order_epoch(s, g / s->order.n);
    return s->order.perm[g % s->order.n];
}
int64_t train_order_row(train_state *s, int64_t g) { return order_row(s, g); }

void train_fill_batch(train_state *s, const int64_t *rows, int n) {
    int T = s->rows.seq_len;
    for (int i = 0; i < n; i++) {
        memcpy(s->batch_ids + (size_t)i * T, et_rows_input_ids(&s->rows, rows[i]),
               sizeof(int32_t) * (size_t)T);
        memcpy(s->batch_targets + (size_t)i * T, et_rows_targets(&s->rows, rows[i]),
               sizeof(int32_t) * (size_t)T);
    }
}

/* One ordinary (non-private) step: accumulate micro-batches, clip the global norm.
 * Every target of the step weighs the same, so accumulating k micro-batches equals
 * one batch k times larger. */
static int plain_step(train_state *s, int64_t step, step_report *rep, et_error *err) {
    const et_recipe *r = s->r;
    int mb = r->run.micro_batch, accum = r->optim.grad_accum;
    size_t np = (size_t)s->lora.n_params;
    memset(s->lora.grads, 0, np * sizeof(float));
    int64_t g0 = step * accum * mb, rows[4096];
    memset(rep, 0, sizeof *rep);
    for (int64_t i = 0; i < (int64_t)accum * mb; i++) {
        int64_t row = order_row(s, g0 + i);
        rep->targets += s->rows.row_n_targets[row];
        rep->tokens += s->rows.row_n_valid[row];
    }
    double loss_sum = 0;
    for (int a = 0; a < accum; a++) {
        for (int i = 0; i < mb; i++) rows[i] = order_row(s, g0 + (int64_t)a * mb + i);
        train_fill_batch(s, rows, mb);
        et_batch batch = {s->batch_ids, s->batch_targets, mb, r->data.seq_len, NULL};
        double ls;
        int64_t nv;
        if (et_model_forward(&s->model, &s->lora, s->acts, &batch, 1,
                             et_dropout_seed(r->run.seed, step), (uint64_t)a, &ls, &nv, err))
            return -1;
        et_model_backward(&s->model, &s->lora, s->acts, &batch, 1.0f / (float)rep->targets);
        loss_sum += ls;
    }
    rep->loss = loss_sum / (double)rep->targets;
    rep->grad_norm = sqrt(et_sumsq(s->lora.grads, (int64_t)np));
    if (r->optim.max_grad_norm > 0) {
        /* torch.nn.utils.clip_grad_norm_: coef = max/(norm+1e-6), clamped to 1. */
        double coef = r->optim.max_grad_norm / (rep->grad_norm + 1e-6);
        if (coef < 1.0) et_scale(s->lora.grads, (float)coef, (int64_t)np);
    }
    return 0;
}

/* ---- run directory ---------------------------------------------------------- */
static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- progress ------------------------------------------------------------------ */
static void fmt_eta(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(out, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress_line(const et_train_options *o, const train_state *s, int64_t step,
                          int64_t total, const step_report *rep, double lr, double tps,
                          double eta_s) {
    if (!o->progress) return;
    char eta[32], dp[64] = "";
    fmt_eta(eta, sizeof eta, eta_s);
    if (s->dp.enabled) snprintf(dp, sizeof dp, "  eps %.3f", rep->epsilon);
    fprintf(o->progress, "%sstep %lld/%lld  loss %.4f  lr %.3e  %.0f tok/s%s  ETA %s%s",
            o->progress_is_tty ? "\r\033[K" : "", (long long)step, (long long)total, rep->loss,
            lr, tps, dp, eta, o->progress_is_tty ? "" : "\n");
    fflush(o->progress);
}

/* ---- set-up and tear-down ----------------------------------------------------------- */
static void state_free(train_state *s) {
    et_metrics_close(s->metrics);
    et_manifest_free(s->manifest);
    dp_free(&s->dp);
    free(s->order.perm);
    free(s->batch_ids);
    free(s->batch_targets);
    free(s->adam_m);
    free(s->adam_v);
    et_acts_free(s->acts);
    train_cuda_free(s);
    if (s->have_lora) et_lora_free(&s->lora);
    et_rows_free(&s->rows);
    if (s->have_corpus) et_corpus_close(&s->corpus);
    if (s->have_model) et_model_free(&s->model);
}

static int check_supported(const et_recipe *r, et_error *err) {
    if (r->model.quantize != ET_RECIPE_QUANT_NONE)
        return et_fail(err, "%s: model.quantize: nf4 (QLoRA) is not available in this version; "
                            "set model.quantize: none",
                       src(r));
    if ((int64_t)r->run.micro_batch * r->optim.grad_accum > 4096) /* int would wrap */
        return et_fail(err, "%s: run.micro_batch x optim.grad_accum must be <= 4096", src(r));
    return 0;
}

/* The guarantee in plain words, for the manifest (and, through it, the model card). */
static void manifest_privacy(train_state *s, double eps_spent, int64_t steps_done) {
    et_manifest *m = s->manifest;
    const dp_state *d = &s->dp;
    const et_recipe_privacy *p = &s->r->privacy;
    et_manifest_set_bool(m, "privacy.enabled", d->enabled);
    if (!d->enabled) {
        et_manifest_set_str(m, "privacy.statement",
                            "No differential-privacy guarantee: this run trained without DP-SGD.");
        return;
    }
    const char *unit = et_recipe_unit_names[p->unit];
    et_manifest_set_str(m, "privacy.unit", unit);
    et_manifest_set_str(m, "privacy.adjacency", "add/remove"); /* what dp.c's units mean */
    et_manifest_set_str(m, "privacy.sampling", "poisson");     /* dp.c's sampler */
    et_manifest_set_str(m, "privacy.accountant", et_accountant_kind_name(d->acc.kind));
    et_manifest_set_num(m, "privacy.epsilon", eps_spent);
    et_manifest_set_num(m, "privacy.delta", d->delta);
    if (d->target_epsilon > 0) et_manifest_set_num(m, "privacy.target_epsilon", d->target_epsilon);
    et_manifest_set_num(m, "privacy.noise_multiplier", d->sigma);
    et_manifest_set_num(m, "privacy.sample_rate", d->q);
    et_manifest_set_num(m, "privacy.n_units", (double)d->units.n_units);
    et_manifest_set_num(m, "privacy.steps", (double)steps_done);
    et_manifest_set_num(m, "privacy.steps_planned", (double)d->steps);
    et_manifest_set_num(m, "privacy.max_grad_norm", d->clip);
    et_manifest_set_num(m, "privacy.max_sequences_per_unit", p->max_sequences_per_unit);
    et_manifest_set_bool(m, "privacy.secure_rng", p->secure_rng);
    /* the noise and sampling actually used: one phase, or (after a resume that changed
     * σ or q) each phase the accountant composed */
    char how[320];
    if (d->acc.n_phases <= 1) {
        snprintf(how, sizeof how, "q=%.4g, sigma=%.4g, %lld steps", d->q, d->sigma,
                 (long long)steps_done);
    } else {
        size_t at = (size_t)snprintf(how, sizeof how, "%d phases:", d->acc.n_phases);
        for (int i = 0; i < d->acc.n_phases && at < sizeof how; i++)
            at += (size_t)snprintf(how + at, sizeof how - at, "%s q=%.4g, sigma=%.4g for %lld steps",
                                   i ? ";" : "", d->acc.phases[i].sample_rate,
                                   d->acc.phases[i].noise_multiplier,
                                   (long long)d->acc.phases[i].steps);
    }
    cJSON *phases = cJSON_CreateArray();
    for (int i = 0; phases && i < d->acc.n_phases; i++) {
        const double row[3] = {d->acc.phases[i].noise_multiplier, d->acc.phases[i].sample_rate,
                               (double)d->acc.phases[i].steps};
        cJSON_AddItemToArray(phases, cJSON_CreateDoubleArray(row, 3));
    }
    et_manifest_set_json(m, "privacy.phases", phases); /* [[sigma, q, steps], ...] */
    char init[200] = "";
    if (s->init_sha256[0])
        snprintf(init, sizeof init, " Training started from an adapter (sha256 %.16s...) that the "
                                    "user declared free of this run's patients' data; the "
                                    "guarantee assumes it.", s->init_sha256);
    char mech[2048], text[2560];
    snprintf(mech, sizeof mech,
             "(%.4g, %.3g)-differential privacy at the %s level (%s accountant, Poisson-"
             "subsampled Gaussian DP-SGD: %s, clip %.3g): adding or "
             "removing all training data of any one %s changes the probability of any outcome "
             "of training by at most a factor e^epsilon, except with probability delta.%s",
             eps_spent, d->delta, unit, et_accountant_kind_name(d->acc.kind), how, d->clip, unit,
             init);
    /* Without secure_rng the noise came from run.seed, which config.resolved.yaml and
     * the model card publish: whoever knows it can regenerate and subtract the noise, so
     * the numbers describe the mechanism, not this adapter (found 2026-11-26: the
     * statement claimed the guarantee, with a trailing warning). */
    snprintf(text, sizeof text, "%s%s",
             p->secure_rng ? "" : "NO GUARANTEE: privacy.secure_rng was false, so the DP noise "
                                  "was drawn from a generator seeded by run.seed (recorded with "
                                  "the run); anyone who knows it can reproduce and remove the "
                                  "noise. For tests only. With a secure generator the same "
                                  "settings would give: ",
             mech);
    et_manifest_set_str(m, "privacy.statement", text);
    cJSON *outside = cJSON_CreateArray();
    static const char *const not_covered[] = {
        "the base model's pre-training data and any public data",
        "hyperparameter search or evaluation done on the same patients' data",
        "facts shared by many patients",
        "the PHI scan at ingest (a heuristic, no formal guarantee)",
        "the training log metrics.jsonl (loss, counts, gradient-norm statistics without noise) "
        "and the console's progress and summary lines (each step's loss)",
        "the number of units N itself: q = expected_batch_size / N, the step count from the "
        "epochs and the noise calibrated from both are taken as public, as Opacus does (set "
        "privacy.sample_rate and privacy.steps to fix them when N is sensitive)",
        "the dataset sizes in this manifest and the model card (data.patients, privacy.n_units, "
        "data.training_rows, data.truncated_documents*, the corpus's document and token "
        "counts) and run.tokens_per_s: "
        "exact, without noise",
    };
    for (size_t i = 0; outside && i < sizeof not_covered / sizeof *not_covered; i++)
        cJSON_AddItemToArray(outside, cJSON_CreateString(not_covered[i]));
    et_manifest_set_json(m, "privacy.outside_guarantee", outside);
}

/* The audit record: exact inputs (sha256), code, host, recipe. Written at the start
 * (status "running") so an interrupted run still documents what it read, and again
 * at the end with the outcome. */
static int manifest_begin(train_state *s, const et_train_options *o, int64_t start,
                          et_error *err) {
    const et_recipe *r = s->r;
    s->manifest = et_manifest_new();
    if (!s->manifest) return et_fail(err, "out of memory");
    et_manifest *m = s->manifest;
    et_manifest_add_environment(m, o->version ? o->version : "unknown");
    if (et_manifest_add_file(m, "corpus", r->data.train, err) ||
        et_manifest_add_dir_files(m, "base_model", r->model.path, NULL, err) ||
        (r->source && et_manifest_add_file(m, "recipe", r->source, err)))
        return -1;
    char path[4200], now[32];
    snprintf(path, sizeof path, "%s/config.resolved.yaml", r->run.out);
    if (et_manifest_add_file(m, "recipe_resolved", path, err) ||
        (start > 0 && manifest_resume_recipes(m, r->run.out, start, err)))
        return -1;
    utc_now(now, sizeof now);
    et_manifest_set_str(m, "run.started_utc", now);
    et_manifest_set_str(m, "run.status", "running");
    et_manifest_set_str(m, "run.device", s->use_cuda ? "cuda" : "cpu");
    if (s->init_sha256[0]) {
        et_manifest_set_str(m, "run.init_adapter.path", s->init_path);
        et_manifest_set_str(m, "run.init_adapter.sha256", s->init_sha256);
        et_manifest_set_bool(m, "run.init_adapter.declared_public", s->init_public);
    }
    /* kernel variants round differently: a rerun that means to repeat this one needs it */
    if (s->use_cuda) {
        char gpu[128] = "";
        const int n_gpus = et_cuda_device_count(gpu, sizeof gpu);
        if (n_gpus > 0) {
            et_manifest_set_str(m, "host.gpu.name", gpu);
            et_manifest_set_num(m, "host.gpu.count", n_gpus);
        }
        et_manifest_set_str(m, "run.cuda_attention", et_cuda_model_attention_path(s->cuda));
        et_manifest_set_bool(m, "run.cuda_lora_kext", et_cuda_model_lora_kext(s->cuda));
        et_manifest_set_bool(m, "run.cuda_lora_dropout_fused", et_cuda_model_dropout_fused(s->cuda));
    }
    et_manifest_set_num(m, "run.resumed_from_step", (double)start);
    et_manifest_set_num(m, "data.training_rows", (double)s->rows.n_rows);
    et_manifest_set_num(m, "data.patients", (double)s->rows.n_patients);
    et_manifest_set_num(m, "data.truncated_documents", (double)s->rows.n_truncated);
    et_manifest_set_num(m, "data.truncated_documents_unused", (double)s->rows.n_truncated_empty);
    manifest_privacy(s, 0.0, start);
    snprintf(path, sizeof path, "%s/manifest.json", r->run.out);
    return et_manifest_write(m, path, err);
}

/* Loads model and corpus, builds rows, checks they agree. */
static int load_inputs(train_state *s, et_error *err) {
    const et_recipe *r = s->r;
    if (et_model_load(&s->model, r->model.path, err)) return -1;
    s->have_model = 1;
    const et_hf_config *c = &s->model.cfg;
    if (et_corpus_open(&s->corpus, r->data.train, err)) return -1;
    s->have_corpus = 1;
    if (s->corpus.vocab_size > c->vocab_size)
        return et_fail(err, "%s: corpus vocab_size %lld exceeds the model's %d (%s/config.json) "
                            "— corpus tokenized for a different model?",
                       r->data.train, (long long)s->corpus.vocab_size, c->vocab_size,
                       r->model.path);
    int split = r->data.split == ET_RECIPE_SPLIT_ALL ? ET_SPLIT_ALL : (int)r->data.split;
    if (et_rows_build(&s->rows, &s->corpus, r->data.seq_len, split, 0, err)) return -1;
    if (s->rows.n_rows == 0)
        return et_fail(err, "%s: no training sequences in split '%s' (data.split) — empty "
                            "corpus or every target masked",
                       r->data.train, et_recipe_split_names[r->data.split]);
    for (int64_t i = 0; i < s->rows.n_rows * s->rows.seq_len; i++)
        if (s->rows.input_ids[i] >= c->vocab_size)
            return et_fail(err, "%s: document %lld holds a token id >= the model's vocabulary "
                                "size %d — corpus tokenized for a different model?",
                           r->data.train, (long long)s->rows.row_doc[i / s->rows.seq_len],
                           c->vocab_size);
    return 0;
}

static int init_lora(train_state *s, const et_train_options *o, et_error *err) {
    const et_recipe *r = s->r;
    const et_hf_config *c = &s->model.cfg;
    if (!o->init_adapter) {
        if (et_lora_create(&s->lora, c, r->lora.r, (float)r->lora.alpha, r->lora.use_rslora,
                           (float)r->lora.dropout, r->lora.targets, err))
            return -1;
        s->have_lora = 1;
        et_lora_init_weights(&s->lora, (et_lora_init)r->lora.init, r->run.seed);
        return 0;
    }
    if (et_lora_load_peft(&s->lora, c, o->init_adapter, err)) return -1;
    s->have_lora = 1;
    if (s->lora.r != r->lora.r || s->lora.targets != r->lora.targets)
        return et_fail(err, "--init-adapter %s has r=%d and targets mask %u; the recipe says "
                            "r=%d, mask %u — make lora.r and lora.targets match the adapter",
                       o->init_adapter, s->lora.r, s->lora.targets, r->lora.r, r->lora.targets);
    /* The recipe's scaling and dropout govern training from here. */
    s->lora.alpha = (float)r->lora.alpha;
    s->lora.use_rslora = r->lora.use_rslora;
    s->lora.scale = et_lora_scale(r->lora.alpha, r->lora.r, r->lora.use_rslora);
    s->lora.dropout = (float)r->lora.dropout;
    return 0;
}

/* The adapter a run started from (--init-adapter, or the checkpoint's record of it on
 * --resume): its weights' sha256 for the manifest, and — with privacy on — the user's
 * declaration that it holds nothing of this run's patients' data without privacy: an
 * adapter trained on them without DP would void the guarantee, and the run cannot tell
 * (found 2026-11-26: such runs were labelled (ε, δ)-DP with no trace of the adapter). */
static int init_adapter_identity(train_state *s, const et_train_options *o,
                                 const char *resume_json, et_error *err) {
    const et_recipe *r = s->r;
    if (o->init_adapter) {
        char path[4200];
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", o->init_adapter);
        if (et_sha256_file(path, s->init_sha256, err))
            return et_wrap(err, "--init-adapter %s", o->init_adapter);
        snprintf(s->init_path, sizeof s->init_path, "%s", o->init_adapter);
        s->init_public = o->init_adapter_public;
    } else if (resume_json) {
        cJSON *j = cJSON_Parse(resume_json);
        const cJSON *a = j ? cJSON_GetObjectItemCaseSensitive(j, "init_adapter") : NULL;
        const cJSON *sha = a ? cJSON_GetObjectItemCaseSensitive(a, "sha256") : NULL;
        const cJSON *pth = a ? cJSON_GetObjectItemCaseSensitive(a, "path") : NULL;
        if (cJSON_IsString(sha) && strlen(sha->valuestring) == 64) {
            snprintf(s->init_sha256, sizeof s->init_sha256, "%s", sha->valuestring);
            snprintf(s->init_path, sizeof s->init_path, "%s",
                     cJSON_IsString(pth) ? pth->valuestring : "");
            s->init_public = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "declared_public"));
        }
        cJSON_Delete(j);
    }
    if (r->privacy.enabled && s->init_sha256[0] && !s->init_public)
        return et_fail(err, "%s: privacy.enabled with a run that starts from an adapter (%s): the "
                            "guarantee holds only if that adapter was not trained on these "
                            "patients without privacy; if so, say it with --init-adapter-public "
                            "(recorded in the manifest), or train from a fresh initialisation",
                       src(r), s->init_path[0] ? s->init_path : "recorded in the checkpoint");
    return 0;
}

static int alloc_buffers(train_state *s, et_error *err) {
    const et_recipe *r = s->r;
    int mb = r->run.micro_batch, T = r->data.seq_len;
    if (!s->use_cuda && et_acts_create(&s->acts, &s->model.cfg, &s->lora, mb, T, err)) return -1;
    size_t np = (size_t)s->lora.n_params;
    s->adam_m = calloc(np, sizeof(float));
    s->adam_v = calloc(np, sizeof(float));
    s->batch_ids = malloc(sizeof(int32_t) * (size_t)mb * T);
    s->batch_targets = malloc(sizeof(int32_t) * (size_t)mb * T);
    s->order.n = s->rows.n_rows;
    s->order.epoch = -1;
    s->order.seed = r->run.seed;
    s->order.perm = malloc(sizeof(int64_t) * (size_t)s->rows.n_rows);
    if (!s->adam_m || !s->adam_v || !s->batch_ids || !s->batch_targets || !s->order.perm)
        return et_fail(err, "out of memory");
    return 0;
}

/* ---- the loop --------------------------------------------------------------------- */
int et_train(const et_recipe *r, const et_train_options *o, et_train_result *res, et_error *err) {
    memset(res, 0, sizeof *res);
    if (check_supported(r, err)) return -1;
    train_state s;
    memset(&s, 0, sizeof s);
    s.r = r;
    if (train_cuda_choose(&s, err)) return -1;
    int rc = -1;
    const char *run_dir = r->run.out;
    snprintf(res->run_dir, sizeof res->run_dir, "%s", run_dir);
    char path[4400];
    char *resume_json = NULL;
    char *recipe_text = NULL; /* config.resolved.yaml as the run began: in every checkpoint */
    char *resumed_text = NULL, check_path[4400] = ""; /* on resume: this invocation's recipe */
    int recipe_differs = 0;

    /* The run directory: refuse to silently mix two runs. */
    snprintf(path, sizeof path, "%s/checkpoints/latest", run_dir);
    if (file_exists(path) && !o->resume)
        return et_fail(err, "%s already holds a run (checkpoints/latest exists): pass --resume "
                            "to continue it, or set run.out to a new directory",
                       run_dir);
    if (o->resume && o->init_adapter)
        return et_fail(err, "--resume and --init-adapter cannot be combined");
    if (et_make_dirs(run_dir, 1, err)) return -1;
    if (load_inputs(&s, err) || init_lora(&s, o, err) || alloc_buffers(&s, err)) goto done;

    int64_t start = 0;
    if (o->resume) {
        int got = et_checkpoint_load_latest(run_dir, &s.lora, s.adam_m, s.adam_v, &start,
                                            &resume_json, &recipe_text, err);
        if (got < 0) goto done;
        if (got == 1) {
            et_fail(err, "%s: --resume given but the run has no checkpoint", run_dir);
            goto done;
        }
        if (resolved_now(r, run_dir, check_path, sizeof check_path, &resumed_text, err)) goto done;
        if (recipe_text) {
            recipe_differs = recipe_compare(run_dir, recipe_text, resumed_text, 1, err);
            if (recipe_differs < 0) goto done;
        } else {
            /* An older ehrtune's checkpoint: no record of the recipe the run began with (its
             * config.resolved.yaml was rewritten at each resume), so nothing to check. */
            char *before;
            snprintf(path, sizeof path, "%s/config.resolved.yaml", run_dir);
            et_error ignored;
            before = et_read_file_text(path, TRAIN_RECIPE_MAX, &ignored);
            recipe_differs = before ? recipe_compare(run_dir, before, resumed_text, 0, err) : 1;
            free(before);
            if (o->progress)
                fprintf(o->progress,
                        "note: %s's checkpoint was written by an older ehrtune and records no "
                        "recipe; this resume is not checked against the recipe the run began "
                        "with\n",
                        run_dir);
        }
    }
    if (o->resume && !r->privacy.enabled && resume_json && strstr(resume_json, "\"accountant\"")) {
        /* found 2026-11-26: following --stop-after's hint without the overrides resumed a
         * DP run without privacy; its remaining steps trained with no noise, silently */
        et_fail(err, "%s: the run trains with DP-SGD (its checkpoint carries the accountant), "
                     "but this resume has privacy.enabled false: the remaining steps would "
                     "train without privacy and the adapter would carry no guarantee; resume "
                     "with %s/config.resolved.yaml, or start a new run from its adapter "
                     "(--init-adapter)",
                run_dir, run_dir);
        goto done;
    }
    if (init_adapter_identity(&s, o, resume_json, err)) goto done;
    if (s.use_cuda && train_cuda_setup(&s, err)) goto done;
    int64_t total = et_train_total_steps(r, s.rows.n_rows);
    if (o->progress && s.rows.n_truncated > 0) /* counts only: nothing from the text */
        fprintf(o->progress,
                "note: %lld prompt/response documents are longer than data.seq_len %d and keep "
                "their first %d tokens (%lld of them with no target left, so unused); raise "
                "data.seq_len to train on them whole\n",
                (long long)s.rows.n_truncated, r->data.seq_len, r->data.seq_len,
                (long long)s.rows.n_truncated_empty);
    if (r->privacy.enabled) {
        if (dp_plan(&s, resume_json, start, err)) goto done;
        total = s.dp.steps;
        if (o->progress)
            fprintf(o->progress,
                    "DP-SGD: unit %s, %lld units, q=%.4g, sigma=%.4g, clip %.3g, %lld steps, "
                    "delta=%.3g%s (%s)\n",
                    et_recipe_unit_names[r->privacy.unit], (long long)s.dp.units.n_units, s.dp.q,
                    s.dp.sigma, s.dp.clip, (long long)total, s.dp.delta,
                    s.dp.target_epsilon > 0 ? ", calibrated to the target epsilon" : "",
                    et_accountant_kind_name(s.dp.acc.kind));
    }
    if (total > INT_MAX) { /* the schedule and AdamW's bias correction count in int */
        et_fail(err, "%s: the run would take %lld steps; at most %d are supported (lower "
                     "optim.steps or optim.epochs, or raise the batch)",
                r->run.out, (long long)total, INT_MAX);
        goto done;
    }
    if (start >= total) {
        et_fail(err, "%s: the run already finished (%lld of %lld steps); nothing to resume",
                run_dir, (long long)start, (long long)total);
        goto done;
    }
    snprintf(path, sizeof path, "%s/config.resolved.yaml", run_dir);
    if (!o->resume) {
        if (et_recipe_write_yaml(r, path, err)) goto done;
        recipe_text = et_read_file_text(path, TRAIN_RECIPE_MAX, err);
        if (!recipe_text) goto done;
        if (!utf8_valid(recipe_text)) { /* checkpoint metadata is UTF-8: not stored, not checked */
            if (o->progress)
                fprintf(o->progress, "note: %s is not UTF-8 (a path?); checkpoints will not "
                                     "record it and a resume cannot check its recipe\n", path);
            free(recipe_text);
            recipe_text = NULL;
        }
    } else {
        /* The original stays; a missing one is restored from the checkpoint's copy (or,
         * for an older checkpoint, written from this recipe as before). */
        if (!file_exists(path)) {
            if (recipe_text) {
                if (et_write_file_atomic(path, recipe_text, strlen(recipe_text), ET_FILE_PRIVATE,
                                         "resolved recipe", err))
                    goto done;
            } else {
                if (rename(check_path, path) != 0) {
                    et_fail(err, "%s: cannot write (%s)", path, strerror(errno));
                    goto done;
                }
                check_path[0] = 0;
                recipe_differs = 0;
            }
        }
        char resumed[4400];
        snprintf(resumed, sizeof resumed, "%s/config.resolved.resume-%lld.yaml", run_dir,
                 (long long)start);
        if (recipe_differs) {
            if (rename(check_path, resumed) != 0) {
                et_fail(err, "%s: cannot write (%s)", resumed, strerror(errno));
                goto done;
            }
            check_path[0] = 0;
        } else {
            unlink(resumed); /* left by an attempt from this step that saved nothing */
        }
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    if (et_metrics_open(&s.metrics, path, start, err)) goto done;
    if (manifest_begin(&s, o, start, err)) goto done;

    size_t np = (size_t)s.lora.n_params;
    double t_start = now_s(), tokens_total = 0, eps_spent = 0;
    res->steps_done = start; /* even when the budget stops the first step */
    int64_t saved_step = start; /* the newest checkpoint on disk */
    for (int64_t step = start; step < total; step++) {
        if (s.dp.enabled && s.dp.target_epsilon > 0) {
            /* Never take a step that would exceed the budget. */
            double eps_next;
            if (dp_epsilon_after(&s, 1, &eps_next, err)) goto done;
            if (eps_next > s.dp.target_epsilon) {
                res->budget_exhausted = 1;
                break;
            }
        }
        double t0 = now_s();
        step_report rep;
        memset(&rep, 0, sizeof rep);
        double lr = et_schedule_lr((et_schedule_kind)r->optim.schedule, r->optim.lr, (int)step,
                                   r->optim.warmup_steps, (int)total);
        if (s.use_cuda) { /* the device runs the whole step, AdamW included */
            if (train_cuda_step(&s, step, lr, &rep, err)) goto done;
        } else {
            if ((s.dp.enabled ? dp_step(&s, step, &rep, err) : plain_step(&s, step, &rep, err)))
                goto done;
            et_adamw_update(s.lora.params, s.adam_m, s.adam_v, s.lora.grads, (int64_t)np, lr,
                            r->optim.beta1, r->optim.beta2, r->optim.eps, r->optim.weight_decay,
                            (int)(step + 1));
        }
        double dt = now_s() - t0;
        tokens_total += (double)rep.tokens;
        double tps = (double)rep.tokens / (dt > 0 ? dt : 1e-9);
        if (step == start) res->first_loss = rep.loss;
        res->last_loss = rep.loss;
        eps_spent = rep.epsilon;
        int64_t done_steps = step + 1;
        if (done_steps % r->run.log_every == 0 || done_steps == total) {
            et_metrics_row m = {done_steps, rep.loss, lr, rep.grad_norm, tps, rep.tokens,
                                rep.targets, s.dp.enabled, rep.epsilon, rep.units,
                                rep.clipped_fraction, rep.norm_p50, rep.norm_p90, rep.norm_max};
            if (et_metrics_write(s.metrics, &m, err)) goto done;
        }
        double elapsed = now_s() - t_start;
        progress_line(o, &s, done_steps, total, &rep, lr, tps,
                      elapsed / (double)(done_steps - start) * (double)(total - done_steps));
        int stopping = o->stop_after > 0 && done_steps - start >= o->stop_after;
        if ((r->run.checkpoint_every > 0 && done_steps % r->run.checkpoint_every == 0) ||
            done_steps == total || stopping) {
            if (s.use_cuda && train_cuda_sync_host(&s, err)) goto done;
            if (et_metrics_sync(s.metrics, err)) goto done;
            char *extra = dp_checkpoint_json(&s);
            et_checkpoint_out ck = {done_steps, s.adam_m, s.adam_v, extra, recipe_text,
                                    r->run.keep_checkpoints};
            int bad = et_checkpoint_save(run_dir, &s.lora, &ck, err);
            free(extra);
            if (bad) goto done;
            saved_step = done_steps;
        }
        res->steps_done = done_steps;
        if (stopping && done_steps < total) {
            res->stopped_early = 1;
            break;
        }
    }
    if (o->progress && o->progress_is_tty) fputc('\n', o->progress);
    double elapsed = now_s() - t_start;
    res->tokens_per_s = tokens_total / (elapsed > 0 ? elapsed : 1e-9);
    if (s.dp.enabled && dp_epsilon_after(&s, 0, &eps_spent, err)) goto done;
    res->epsilon = eps_spent;
    res->dp = s.dp.enabled;
    if (res->stopped_early) {
        rc = 0; /* the final adapter comes when the run completes (--resume) */
        goto done;
    }
    /* On CUDA the weights live on the device: the adapter below (and the budget's
     * checkpoint) need the last step's, which only a checkpoint step has copied back. */
    if (s.use_cuda && res->steps_done > saved_step && train_cuda_sync_host(&s, err)) goto done;
    if (res->budget_exhausted && res->steps_done > saved_step) {
        /* The last step before the budget ran out has no checkpoint yet (re-saving a step
         * already saved would replace the folder `latest` points to). */
        char *extra = dp_checkpoint_json(&s);
        et_checkpoint_out ck = {res->steps_done, s.adam_m, s.adam_v, extra, recipe_text,
                                r->run.keep_checkpoints};
        int bad = et_checkpoint_save(run_dir, &s.lora, &ck, err);
        free(extra);
        if (bad) goto done;
    }

    snprintf(path, sizeof path, "%s/adapter", run_dir);
    char eps_text[64];
    snprintf(eps_text, sizeof eps_text, "%.6g", eps_spent);
    const char *meta[] = {"ehrtune_version", o->version ? o->version : "unknown",
                          s.dp.enabled ? "ehrtune_dp_epsilon" : NULL, eps_text, NULL};
    if (et_lora_save_peft(&s.lora, path, r->model.path, meta, err)) goto done;
    et_manifest_set_str(s.manifest, "run.status",
                        res->budget_exhausted ? "completed (privacy budget reached)" : "completed");
    et_manifest_set_num(s.manifest, "run.steps_completed", (double)res->steps_done);
    /* Under DP the last batch's loss is a noise-free statistic of about q·N patients,
     * and this manifest travels with every export: recorded only without privacy
     * (metrics.jsonl, which stays with the patient data, has it either way). */
    if (!s.dp.enabled) et_manifest_set_num(s.manifest, "run.final_loss", res->last_loss);
    et_manifest_set_num(s.manifest, "run.tokens_per_s", res->tokens_per_s);
    if (s.use_cuda) /* the attention note grows if the run left cuDNN for a batch size */
        et_manifest_set_str(s.manifest, "run.cuda_attention", et_cuda_model_attention_path(s.cuda));
    manifest_privacy(&s, eps_spent, res->steps_done);
    utc_now(path, sizeof path);
    et_manifest_set_str(s.manifest, "run.finished_utc", path);
    snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", run_dir);
    if (et_manifest_add_file(s.manifest, "output/adapter_model.safetensors", path, err))
        goto done;
    snprintf(path, sizeof path, "%s/manifest.json", run_dir);
    if (et_manifest_write(s.manifest, path, err)) goto done;
    rc = 0;
done:
    if (check_path[0]) unlink(check_path);
    free(resume_json);
    free(recipe_text);
    free(resumed_text);
    state_free(&s);
    return rc;
}
