/* The CUDA side of the training loop (trainer/train.c calls these; the model is
 * trainer/model_cuda.h). The LoRA weights and AdamW moments live on the device
 * during the run; the host copies in train_state are refreshed for checkpoints and
 * the final adapter only. */
#ifndef EHRTUNE_TRAIN_CUDA_H
#define EHRTUNE_TRAIN_CUDA_H

#include "trainer/train_internal.h"

/* run.device: auto picks CUDA when this build has the backend, a GPU is visible,
 * and model.dtype is not fp32 (DP-SGD runs included); `cuda` fails when any of those does not
 * hold (with what to change). Sets s->use_cuda. */
int train_cuda_choose(train_state *s, et_error *err);

/* Builds the device model from the loaded base model and the LoRA state (and the
 * AdamW moments, after a resume). */
int train_cuda_setup(train_state *s, et_error *err);

/* One optimizer step on the device: the step's micro-batches (data order as
 * plain_step), global-norm clipping, AdamW at lr. */
int train_cuda_step(train_state *s, int64_t step, double lr, step_report *rep, et_error *err);

/* Copies the device LoRA weights and AdamW moments into s->lora.params, s->adam_m,
 * s->adam_v (before a checkpoint or the final adapter). */
int train_cuda_sync_host(train_state *s, et_error *err);

void train_cuda_free(train_state *s);

#endif
