/* The Llama-family model (Llama, Mistral, Qwen2) on the CPU reference backend:
 * frozen fp32 base weights, LoRA side paths, forward and backward as flat lists
 * of op calls (kernels/ops.h). Gradients flow through the frozen network to the
 * LoRA weights only.
 *
 * Memory is planned up front: et_model_plan() sizes every buffer from the config,
 * batch and sequence length, and et_acts_create() makes one allocation of that size. */
#ifndef EHRTUNE_MODEL_H
#define EHRTUNE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"
#include "data/hf_config.h"
#include "trainer/lora.h"

typedef struct {
    float *attn_norm;               /* [C] */
    float *w[ET_PROJ_COUNT];        /* HF layout [out, in] */
    float *bias[ET_PROJ_COUNT];     /* [out] or NULL */
    float *mlp_norm;                /* [C] */
} et_layer_weights;

typedef struct {
    et_hf_config cfg;
    float *embed;      /* [V, C] */
    float *lm_head;    /* [V, C]; == embed when tie_word_embeddings */
    float *final_norm; /* [C] */
    et_layer_weights *layers;
    float *block;      /* the one allocation holding all base weights */
    size_t block_floats;
} et_model;

/* Loads config.json + safetensors (single or sharded) from an HF model directory. */
int et_model_load(et_model *m, const char *dir, et_error *err);
/* Random weights for a config (demo, benchmarks). */
int et_model_init_random(et_model *m, const et_hf_config *cfg, uint64_t seed, et_error *err);
/* Writes the model as an HF directory (config.json + model.safetensors, F32). */
int et_model_save_hf(const et_model *m, const char *dir, et_error *err);
void et_model_free(et_model *m);

/* ---- memory plan ---------------------------------------------------------- */
#define ET_PLAN_MAX 48
typedef struct {
    const char *name;   /* e.g. "acts.layer_inputs" */
    const char *shape;  /* human-readable shape */
    size_t bytes;
} et_plan_item;

typedef struct {
    int n;
    et_plan_item item[ET_PLAN_MAX];
    size_t total;
} et_plan;

/* Fills the plan for training with micro-batch b, sequence t, LoRA rank r over the
 * given targets (base weights, LoRA params/grads/AdamW state, activations, scratch). */
void et_model_plan(et_plan *p, const et_hf_config *c, int b, int t, int r, unsigned targets,
                   float lora_dropout);

/* ---- activations ---------------------------------------------------------- */
typedef struct et_acts et_acts; /* opaque: carved out of one allocation */

/* Plans and allocates activations for batches of up to b rows of t tokens. */
int et_acts_create(et_acts **a, const et_hf_config *c, const et_lora *l, int b, int t,
                   et_error *err);
void et_acts_free(et_acts *a);
size_t et_acts_bytes(const et_acts *a);

/* One batch: input_ids [b, t]; targets [b, t] (target of position i, -1 = no loss).
 * row_loss_scale [b] (optional): extra weight of each row's summed loss in backward
 * (DP-SGD weighs each row by 1/targets of its privacy unit). */
typedef struct {
    const int32_t *input_ids;
    const int32_t *targets;
    int b, t;
    const float *row_loss_scale;
} et_batch;

/* Forward pass. Writes per-token losses inside acts and returns, through *loss_sum
 * and *n_valid, the summed loss and the number of positions with a target.
 * dropout_seed/dropout_step select the LoRA dropout masks (dropout is skipped when
 * `train` is 0): the masks sit in one Philox stream per seed at counter offsets
 * ((dropout_step·layers + layer)·7 + projection) << 36, so dropout_step must stay small
 * (below 2^28 / (7·layers)); the trainer passes et_dropout_seed(run seed, optimizer
 * step) and the micro-batch's index within the step. keep_logits: leave logits
 * [b*t, V] readable via et_acts_logits(). */
int et_model_forward(const et_model *m, const et_lora *l, et_acts *a, const et_batch *batch,
                     int train, uint64_t dropout_seed, uint64_t dropout_step,
                     double *loss_sum, int64_t *n_valid, et_error *err);

/* The LoRA-dropout seed of optimizer step `step` of a run seeded `seed` (splitmix64 of
 * both): each step draws from its own Philox key, so no step's masks repeat another's
 * however long the run. (Until 2026-11-26 DP packed step·65536 + micro-batch into
 * dropout_step, which wrapped the counter: a 32-layer model's masks repeated every 128
 * steps.) CPU and CUDA trainers alike. */
static inline uint64_t et_dropout_seed(uint64_t seed, int64_t step) {
    uint64_t z = seed ^ (0x9e3779b97f4a7c15ull * ((uint64_t)step + 1u));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Backward pass after et_model_forward on the same batch: accumulates
 * d(loss_scale · loss_sum)/d(LoRA) into l->grads (+=). Use loss_scale = 1/n_valid
 * for the mean loss. */
void et_model_backward(const et_model *m, et_lora *l, et_acts *a, const et_batch *batch,
                       float loss_scale);

/* Per-example backward (DP-SGD): the same pass, but the LoRA gradient of batch row i
 * is accumulated into pe_grads + i*l->n_params (same layout as l->grads) instead of
 * l->grads; l->grads is left untouched. The per-row GEMMs are one slice per example,
 * so memory grows by b × n_params floats only. */
void et_model_backward_per_example(const et_model *m, et_lora *l, et_acts *a,
                                   const et_batch *batch, float loss_scale, float *pe_grads);

const float *et_acts_logits(const et_acts *a);

#endif
