/* metrics.jsonl: one JSON object per logged optimizer step. Opening for a resumed
 * run keeps only the lines of steps already covered by the checkpoint, so a run
 * interrupted between a log line and its checkpoint never shows a step twice. */
#ifndef EHRTUNE_METRICS_H
#define EHRTUNE_METRICS_H

#include <stdint.h>

#include "data/error.h"

typedef struct et_metrics et_metrics;

typedef struct {
    int64_t step;          /* optimizer steps completed (1-based) */
    double loss;           /* mean loss over the step's targets */
    double lr;             /* learning rate used by this step */
    double grad_norm;      /* global L2 norm of the LoRA gradient, before clipping (non-DP) */
    double tokens_per_s;   /* real (non-padding) tokens of the step / its wall time */
    int64_t tokens;        /* real tokens in the step */
    int64_t targets;       /* positions with a loss */
    /* DP-SGD steps only (dp = 1): */
    int dp;
    double epsilon;          /* ε spent after this step */
    int64_t units;           /* privacy units sampled into this step's batch */
    double clipped_fraction; /* of those, the fraction whose gradient norm exceeded C */
    double norm_p50, norm_p90, norm_max; /* per-unit gradient norms before clipping */
} et_metrics_row;

/* keep_through_step: lines with "step" > this are dropped (0 = start afresh). */
int et_metrics_open(et_metrics **m, const char *path, int64_t keep_through_step, et_error *err);
int et_metrics_write(et_metrics *m, const et_metrics_row *row, et_error *err);
/* fsync: a checkpoint's metrics are on disk before the checkpoint is, so a resume
 * from it finds every line up to its step. */
int et_metrics_sync(et_metrics *m, et_error *err);
void et_metrics_close(et_metrics *m);

#endif
