/* DP-SGD on the device model (trainer/model_cuda.h): per-example LoRA gradients of
 * one micro-batch, per-unit clipping into the model's gradient, and the noise.
 * The device twin of what trainer/train_dp.c does with et_model_backward_per_example,
 * et_dp_clip_add and et_dp_add_noise; sampling, unit packing and the accountant stay
 * on the host. Extra device memory: rows x n_params x 4 bytes for the per-example
 * gradients plus rows x ~1 KiB for the norms (et_cuda_dp_bytes). Without the CUDA
 * backend every function fails saying so. */
#ifndef EHRTUNE_MODEL_CUDA_DP_H
#define EHRTUNE_MODEL_CUDA_DP_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"
#include "trainer/model.h"
#include "trainer/model_cuda.h"

typedef struct et_cuda_dp et_cuda_dp;

/* Buffers for micro-batches of up to max_rows rows of this model. */
int et_cuda_dp_create(et_cuda_dp **out, const et_cuda_model *cm, int max_rows, et_error *err);
void et_cuda_dp_free(et_cuda_dp *dp);
size_t et_cuda_dp_bytes(const et_cuda_dp *dp);

/* Forward + backward of one micro-batch (train mode, as et_cuda_model_step) with row
 * e's LoRA gradient of loss_scale·row_scale[e]·Σ its token losses written into the
 * per-example buffer's row e (overwritten); the model's gradient is untouched. */
int et_cuda_dp_step(et_cuda_model *cm, et_cuda_dp *dp, const et_batch *batch, float loss_scale,
                    uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                    int64_t *n_valid, et_error *err);

/* Units of the last micro-batch: unit u owns rows unit_first[u] .. unit_first[u+1]
 * (host array, n_units + 1 entries, from 0). Sums each unit's rows, clips the sum to
 * norm `clip` with min(1, C/(‖g‖ + 1e-6)) and adds it to the model's gradient;
 * norms (host, may be NULL) receives each unit's ‖g‖. */
int et_cuda_dp_clip_accumulate(et_cuda_model *cm, et_cuda_dp *dp, const int64_t *unit_first,
                               int n_units, double clip, double *norms, et_error *err);

/* The model's gradient: += N(0, std²) noise (et_dp_add_noise's values for this key and
 * step), then *= scale. */
int et_cuda_dp_noise(et_cuda_model *cm, double std, const uint32_t key[8], uint64_t step,
                     float scale, et_error *err);

/* The per-example buffer's first `rows` rows into host[rows, n_params] (tests). */
int et_cuda_dp_download(const et_cuda_dp *dp, float *host, int rows, et_error *err);

#endif
