/* Internal to trainer/train*.c: the state of one training run. */
#ifndef EHRTUNE_TRAIN_INTERNAL_H
#define EHRTUNE_TRAIN_INTERNAL_H

#include <stdint.h>

#include "data/corpus.h"
#include "data/recipe.h"
#include "data/sequences.h"
#include "trainer/accountant.h"
#include "trainer/dp.h"
#include "trainer/lora.h"
#include "trainer/manifest.h"
#include "trainer/metrics.h"
#include "trainer/model.h"

/* The privacy side of a run: fixed before step 1 (dp_plan), then advanced by dp_step. */
typedef struct {
    int enabled;
    et_dp_units units;
    et_dp_batch batch;
    et_dp_rng rng;
    et_accountant acc;
    double q, sigma, delta, clip, target_epsilon; /* target_epsilon 0 = none */
    int64_t steps;
    float *pe_grads;    /* [micro_batch, n_params] per-example gradients (the clipped sum
                           accumulates in lora.grads) */
    float *row_scale;   /* [micro_batch] */
    double *norms;      /* [cap] unit norms of the current step */
    int64_t cap_norms;
} dp_state;

typedef struct {
    const et_recipe *r;
    et_model model;
    int have_model;
    et_corpus corpus;
    int have_corpus;
    et_rows rows;
    et_lora lora;
    int have_lora;
    et_acts *acts;
    float *adam_m, *adam_v;
    int32_t *batch_ids, *batch_targets;
    struct {
        int64_t n, epoch;
        int64_t *perm;
        uint64_t seed;
    } order;
    et_metrics *metrics;
    et_manifest *manifest;
    dp_state dp;
    int use_cuda;              /* run.device resolved to CUDA (trainer/train_cuda.c) */
    struct et_cuda_model *cuda; /* the device model, or NULL */
    struct et_cuda_dp *cuda_dp; /* DP buffers on the device (trainer/train_cuda_dp.c), or NULL */
    /* --init-adapter: its weights' sha256 ("" = none), path, and whether the user declared
     * it free of this run's data; kept in every checkpoint so a resumed run says it too */
    char init_sha256[65];
    char init_path[1024];
    int init_public;
} train_state;

/* What one optimizer step reports. */
typedef struct {
    double loss;           /* mean token loss (DP: mean over sampled units' targets) */
    double grad_norm;      /* non-DP: global norm before clipping; DP: NaN */
    int64_t tokens, targets;
    /* DP only */
    int64_t units;
    double epsilon, clipped_fraction, norm_p50, norm_p90, norm_max;
} step_report;

/* Copies rows into the batch buffers (first n entries of `rows`). */
void train_fill_batch(train_state *s, const int64_t *rows, int n);
/* The corpus row of sample g of the run (the non-DP data order). */
int64_t train_order_row(train_state *s, int64_t g);

/* DP (trainer/train_dp.c). dp_plan fixes q, δ, σ and the step count before step 1;
 * resume_json (may be NULL) is the accountant state from a checkpoint. */
int dp_plan(train_state *s, const char *resume_json, int64_t start, et_error *err);
/* One DP-SGD step: sample, per-unit clip, noise, AdamW input in s->lora.grads. */
int dp_step(train_state *s, int64_t step, step_report *rep, et_error *err);
/* ε after `extra_steps` more steps at the planned (σ, q). */
int dp_epsilon_after(const train_state *s, int64_t extra_steps, double *eps, et_error *err);
/* Checkpoint JSON (malloc'd) of the accountant state, or NULL when DP is off. */
/* The checkpoint's "extra" JSON: the DP state (accountant, σ, q, δ, unit, clip, sequences
 * per unit, the corpus's identity) and the init adapter's identity; NULL when neither. */
char *dp_checkpoint_json(const train_state *s);
void dp_free(dp_state *d);

/* ---- the recipe a run keeps (train_recipe.c) ---- */
#define TRAIN_RECIPE_MAX ((size_t)1 << 20) /* a resolved recipe is a few KB */
/* 1 when s is valid UTF-8 (checkpoint metadata must be; a recipe's path might not be). */
int utf8_valid(const char *s);
/* Compares the recipe the run started with (old) and a resume's (now): -1 (err set)
 * when a key that must not change did (refuse != 0), 1 when only keys a resume may
 * change differ, 0 when they are the same recipe. */
int recipe_compare(const char *run_dir, const char *old, const char *now, int refuse, et_error *err);
/* This invocation's resolved recipe, written to a check file in run_dir (*tmp_path; the
 * caller renames or removes it) and read back into *text (malloc'd). */
int resolved_now(const et_recipe *r, const char *run_dir, char *tmp_path, size_t n, char **text,
                 et_error *err);
/* Adds config.resolved.resume-N.yaml of each resume up to step `upto` to the manifest. */
int manifest_resume_recipes(et_manifest *m, const char *run_dir, int64_t upto, et_error *err);

#endif
