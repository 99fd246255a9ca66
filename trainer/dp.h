/* DP-SGD with per-unit clipping (patient, document or sequence), Opacus semantics:
 *
 *   each unit is sampled independently with probability q (Poisson; the logical
 *   batch varies and may be empty); a sampled unit contributes at most
 *   max_sequences_per_unit of its rows; its gradient (of the mean loss over its
 *   sampled rows' targets) is clipped to norm C with min(1, C/(‖g‖ + 1e-6)) over all
 *   LoRA parameters together; the clipped sum gets N(0, σ²C²) noise once and is
 *   divided by the EXPECTED batch size q·N (never the realised one).
 *
 * Units are packed whole into micro-batches, so a unit's per-example gradients are
 * summed before its norm is taken. */
#ifndef EHRTUNE_DP_H
#define EHRTUNE_DP_H

#include <stdint.h>

#include "data/error.h"
#include "data/sequences.h"
#include "trainer/dp_rng.h"

typedef enum { ET_DP_UNIT_PATIENT = 0, ET_DP_UNIT_DOCUMENT = 1, ET_DP_UNIT_SEQUENCE = 2 } et_dp_unit;

/* Rows grouped by privacy unit (CSR): unit u owns rows[offsets[u] .. offsets[u+1]). */
typedef struct {
    int64_t n_units;
    int64_t *offsets; /* [n_units + 1] */
    int64_t *rows;    /* [n_rows] */
} et_dp_units;

int et_dp_units_build(et_dp_units *u, const et_rows *rows, et_dp_unit kind, et_error *err);
void et_dp_units_free(et_dp_units *u);

/* The sampled logical batch of one step. */
typedef struct {
    int64_t n_units;      /* units sampled */
    int64_t *units;       /* [n_units] */
    int64_t *unit_first;  /* [n_units + 1] index into rows[] of each unit's first row */
    int64_t *rows;        /* selected rows, unit by unit */
    int64_t n_rows;
    int64_t cap_units, cap_first, cap_rows;
} et_dp_batch;

/* Poisson-samples units at rate q for `step` and picks up to max_per_unit rows of
 * each (a uniformly random subset when the unit has more). Reuses b's buffers. */
int et_dp_sample(et_dp_batch *b, const et_dp_units *u, double q, int max_per_unit,
                 const et_dp_rng *rng, uint64_t step, et_error *err);
void et_dp_batch_free(et_dp_batch *b);

/* Clips g (n values) to norm C and adds it to sum: returns the factor used,
 * min(1, C/(‖g‖ + 1e-6)); *norm receives ‖g‖ (accumulated in double). */
double et_dp_clip_add(float *sum, const float *g, int64_t n, double clip, double *norm);

#endif
