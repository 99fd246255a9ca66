/* Training checkpoints: RUN/checkpoints/step-N/state.safetensors.
 *
 * Atomic: written into RUN/checkpoints/.tmp-step-N, every file fsync'd, the
 * folder renamed to step-N and fsync'd, then RUN/checkpoints/latest (a one-line
 * file naming the folder) replaced by rename. A crash at any point leaves either
 * the previous `latest` or the new one, never a half-written checkpoint.
 *
 * Content: LoRA parameters and AdamW moments (fp32, exact), the optimizer step,
 * and the facts resume must agree on (rank, targets, parameter count). The data
 * order and dropout masks are pure functions of (seed, step), so nothing else is
 * needed to continue bit-identically on the CPU backend. */
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
} et_checkpoint_out;

int et_checkpoint_save(const char *run_dir, const et_lora *l, const et_checkpoint_out *c,
                       et_error *err);

/* Reads RUN/checkpoints/latest into l->params (l already created with the run's
 * shape), adam_m and adam_v; *step receives the step. *extra_json (if non-NULL)
 * receives a malloc'd copy of the stored JSON or NULL. Returns 1 when the run has
 * no checkpoint, 0 on success, -1 on error. */
int et_checkpoint_load_latest(const char *run_dir, et_lora *l, float *adam_m, float *adam_v,
                              int64_t *step, char **extra_json, et_error *err);

#endif
