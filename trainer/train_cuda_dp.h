/* DP-SGD steps on the CUDA backend: trainer/train_dp.c keeps sampling, unit packing,
 * the step report and the accountant; these replace its per-micro-batch CPU work
 * (per-example backward, per-unit clipping) and the noise with the device's
 * (trainer/model_cuda_dp.h). */
#ifndef EHRTUNE_TRAIN_CUDA_DP_H
#define EHRTUNE_TRAIN_CUDA_DP_H

#include "trainer/train_internal.h"

/* Device buffers for run.micro_batch rows of per-example gradients (from dp_plan,
 * after train_cuda_setup). */
int train_cuda_dp_setup(train_state *s, et_error *err);

/* The device side of train_dp.c's microbatch(): `batch` holds the rows of units
 * [u0, u1) of the sampled batch (host arrays, filled); forward, per-example backward,
 * each unit clipped into the device gradient; unit norms into s->dp.norms[u]. */
int train_cuda_dp_microbatch(train_state *s, const et_batch *batch, int64_t step, int mb_index,
                             int64_t u0, int64_t u1, double *loss_sum, int64_t *n_clipped,
                             et_error *err);

/* Noise σC on the device gradient, then the division by q·N (dp_step's last part). */
int train_cuda_dp_noise(train_state *s, int64_t step, et_error *err);

/* A whole DP step on the device: dp_step, then AdamW at lr. */
int train_cuda_dp_step(train_state *s, int64_t step, double lr, step_report *rep, et_error *err);

void train_cuda_dp_free(train_state *s);

#endif
