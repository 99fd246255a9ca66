/* Training checkpoints: RUN/checkpoints/step-N/state.safetensors.
 *
 * Atomic: written into RUN/checkpoints/.tmp-step-N, every file fsync'd, the
 * folder renamed to step-N and fsync'd, then RUN/checkpoints/latest (a one-line
 * file naming the folder) replaced by rename. A crash at any point leaves either
 * the previous `latest` or the new one, never a half-written checkpoint. A step-N
 * already there (a resumed run re-saving a step) is swapped with the new folder
 * (renameat2 RENAME_EXCHANGE, else moved aside first) and deleted only once the
 * new one is in place: any failure leaves the old checkpoint as it was.
 *
 * Content: LoRA parameters and AdamW moments (fp32, exact), the optimizer step,
 * the facts resume must agree on (rank, targets, parameter count) and the resolved
 * recipe the run started with (config.resolved.yaml's text, carried unchanged
 * across resumes). The data order and dropout masks are pure functions of (seed,
 * step), so nothing else is needed to continue bit-identically on the CPU backend. */
#ifndef EHRTUNE_CHECKPOINT_H
#define EHRTUNE_CHECKPOINT_H

#include <stdint.h>

#include "data/error.h"
#include "trainer/lora.h"

typedef struct {
    int64_t step;          /* optimizer steps completed */
    const float *adam_m;   /* [n_params] */
    const float *adam_v;   /* [n_params] */
    const char *extra_json; /* optional JSON object stored verbatim (accountant state, ...) */
    const char *recipe_resolved; /* optional: the run's config.resolved.yaml text as written
                                    at its start (metadata "recipe_resolved") */
    int keep;              /* > 0: afterwards delete all step-N folders but the `keep`
                              newest (and this one); 0: keep every checkpoint */
} et_checkpoint_out;

int et_checkpoint_save(const char *run_dir, const et_lora *l, const et_checkpoint_out *c,
                       et_error *err);

/* Reads RUN/checkpoints/latest (which must name step-N, N the step stored in that
 * folder) into l->params (l already created with the run's shape), adam_m and adam_v;
 * *step receives the step. *extra_json and *recipe_resolved (each if non-NULL)
 * receive a malloc'd copy of the stored JSON / recipe text, or NULL when the
 * checkpoint has none (recipe: written by an older ehrtune). Returns 1 when
 * the run has no checkpoint, 0 on success, -1 on error. */
int et_checkpoint_load_latest(const char *run_dir, et_lora *l, float *adam_m, float *adam_v,
                              int64_t *step, char **extra_json, char **recipe_resolved,
                              et_error *err);

#endif
