/* The training loop: recipe in, run directory out.
 *
 *   load base model → open corpus → build rows → LoRA init (or resume)
 *   for each step: micro-batches (forward, backward) → clip → AdamW → metrics
 *                  → checkpoint every N steps
 *   final adapter (PEFT format) + manifest.json
 *
 * The run directory is created 0700 and every file in it 0600 (they derive from
 * patient data). The data order and dropout masks are pure functions of
 * (run.seed, step), so --resume continues bit-identically on the CPU backend. */
#ifndef EHRTUNE_TRAIN_H
#define EHRTUNE_TRAIN_H

#include <stdio.h>

#include "data/error.h"
#include "data/recipe.h"

typedef struct {
    int resume;              /* continue from RUN/checkpoints/latest */
    const char *init_adapter;/* PEFT adapter directory to start from (NULL = fresh init) */
    int init_adapter_public; /* the user declares init_adapter free of this run's data (or
                                privately trained): required with privacy.enabled */
    FILE *progress;          /* progress lines (stdout); NULL = silent */
    int progress_is_tty;     /* rewrite one line with \r instead of printing lines */
    const char *version;     /* code version for the manifest */
    int64_t stop_after;      /* > 0: stop (with a checkpoint) after this many steps in this
                                invocation, e.g. to fit a scheduler's time slot; resume later */
} et_train_options;

typedef struct {
    int64_t steps_done;
    int stopped_early;             /* --stop-after ended the invocation before the last step */
    int budget_exhausted;          /* DP: stopped because one more step would exceed target ε */
    int dp;                        /* trained with DP-SGD */
    double epsilon;                /* DP: ε spent (at the run's δ) */
    double first_loss, last_loss;  /* mean loss of the first and last logged step */
    double tokens_per_s;           /* over the whole run */
    char run_dir[4096];
} et_train_result;

int et_train(const et_recipe *r, const et_train_options *o, et_train_result *res, et_error *err);

/* Number of optimizer steps the recipe asks for, given the number of rows. */
int64_t et_train_total_steps(const et_recipe *r, int64_t n_rows);

#endif
