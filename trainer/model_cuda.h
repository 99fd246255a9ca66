/* The Llama-family model on the CUDA backend (kernels/cuda/ops_cuda.h).
 *
 * The same flat list of ops as trainer/model.c, in bf16: base weights and
 * activations bf16 with fp32 accumulation; LoRA master weights, their gradients
 * and the AdamW moments fp32 on the device (a bf16 copy of the LoRA weights feeds
 * the GEMMs and is refreshed after each optimizer step). The host copy of the LoRA
 * state is only written on request (checkpoints, the final adapter).
 *
 * Memory is planned up front (et_cuda_model_plan, the same table that allocates):
 * one allocation for the base weights, one for the LoRA state, one for activations
 * and scratch. The lm_head and the loss run over chunks of rows with the loss
 * gradient written in place of the logits, so [tokens, vocab] exists only for one
 * chunk, in bf16. With activation checkpointing only each layer's input is kept
 * and backward recomputes the layer.
 *
 * Attention runs on the bf16 tensor-core kernel when its self-check at creation
 * agrees with the fp32 kernel; otherwise on the fp32 kernel through casts (slower,
 * said by et_cuda_model_attention_path). Without the CUDA backend every function
 * fails with a message saying so. Per-example gradients (DP-SGD): trainer/model_cuda_dp.h. */
#ifndef EHRTUNE_MODEL_CUDA_H
#define EHRTUNE_MODEL_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"
#include "data/hf_config.h"
#include "trainer/lora.h"
#include "trainer/model.h"

typedef struct et_cuda_model et_cuda_model;

typedef struct {
    int b, t;                     /* micro-batch rows and tokens per row (planned maxima) */
    int activation_checkpointing; /* keep layer inputs only; recompute layers in backward */
    int lm_chunk;                 /* rows per lm_head/loss chunk; 0 = auto */
    int lora_kext;                /* K-extended LoRA layout (docs/cuda.md): 1 on, -1 off, 0 the
                                     default (on unless EHRTUNE_CUDA_LORA_KEXT=0) */
} et_cuda_options;

/* The input group of projection p whose rows can carry K-extended LoRA columns:
 * 0 (ln1: q, k, v), 1 (ln2: gate, up), -1 (o, down: never extended). */
static inline int et_cuda_kext_group(int p) {
    return p <= ET_PROJ_V ? 0 : p == ET_PROJ_GATE || p == ET_PROJ_UP ? 1 : -1;
}
/* The extra columns of ln1 (cols[0]) and ln2 (cols[1]) under the K-extended LoRA
 * layout: r per LoRA'd member of the group; both 0 when `on` is 0 or a group's
 * count would leave rows not 16-byte aligned (k·r not a multiple of 8). */
void et_cuda_kext_cols(int r, unsigned targets, int on, int cols[2]);
/* Whether o asks for the K-extended layout: o->lora_kext when set, else 1 (the default:
 * an H100 run timed it 1.5% faster end to end at batch 4, docs/perf.md) unless
 * EHRTUNE_CUDA_LORA_KEXT=0 asks for packed LoRA rows; et_cuda_kext_cols may still turn
 * it off for a shape. */
int et_cuda_kext_requested(const et_cuda_options *o);

/* Number of CUDA devices usable by this build (0 without the CUDA backend). When
 * name is non-NULL it receives device 0's name. */
int et_cuda_device_count(char *name, int len);

/* The device memory plan for these shapes: every tensor and the total, as
 * allocated. `lora_dropout` > 0 adds the dropout buffers. */
void et_cuda_model_plan(et_plan *p, const et_hf_config *c, int r, unsigned targets,
                        float lora_dropout, const et_cuda_options *o);

/* Device model from host fp32 weights (converted to bf16 once) and a LoRA state
 * (weights copied; gradients and AdamW moments zero). */
int et_cuda_model_create(et_cuda_model **out, const et_model *m, const et_lora *l,
                         const et_cuda_options *o, et_error *err);
/* The same with random bf16 base weights made on the device (benchmarks: no host
 * copy of the base model; matrices uniform with std 1/sqrt(in), embeddings std 1,
 * norms 1 ± 0.05, biases std 0.02). */
int et_cuda_model_create_random(et_cuda_model **out, const et_hf_config *c, const et_lora *l,
                                const et_cuda_options *o, uint64_t seed, et_error *err);
void et_cuda_model_free(et_cuda_model *cm);

/* Bytes of device memory the model holds (the plan's total), and a one-line note on
 * the attention kernel in use. */
size_t et_cuda_model_bytes(const et_cuda_model *cm);
const char *et_cuda_model_attention_path(const et_cuda_model *cm);
/* 1 when the model runs the K-extended LoRA layout (docs/cuda.md), else 0. */
int et_cuda_model_lora_kext(const et_cuda_model *cm);
/* 1 when LoRA dropout runs the fused kernels (kernels/cuda/lora_dropout.cu), asked
 * for by EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1; 0 (the default) for the masked copies and
 * GEMMs, which an H100 run timed faster (docs/perf.md: 70.6k against 65.3k tokens/s). */
int et_cuda_model_dropout_fused(const et_cuda_model *cm);

/* Forward and backward of one micro-batch (train mode: LoRA dropout on):
 * accumulates d(loss_scale · Σ_rows row_scale · Σ token losses)/d(LoRA) into the
 * device gradient; *loss_sum and *n_valid as et_model_forward. */
int et_cuda_model_step(et_cuda_model *cm, const et_batch *batch, float loss_scale,
                       uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                       int64_t *n_valid, et_error *err);
/* Forward only, dropout off (evaluation). */
int et_cuda_model_forward(et_cuda_model *cm, const et_batch *batch, double *loss_sum,
                          int64_t *n_valid, et_error *err);

/* The optimizer side, all on the device. */
int et_cuda_model_zero_grads(et_cuda_model *cm, et_error *err);
/* ‖gradient‖₂ over all LoRA parameters (summed in double, deterministic). */
int et_cuda_model_grad_norm(et_cuda_model *cm, double *norm, et_error *err);
int et_cuda_model_scale_grads(et_cuda_model *cm, float s, et_error *err);
/* AdamW step (same semantics as et_adamw_update), then refreshes the bf16 copy. */
int et_cuda_model_adamw(et_cuda_model *cm, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int step, et_error *err);

/* Where a training step's device time goes, by op class. While a profile is open
 * (one per process, one host thread), the pass and the optimizer functions above
 * mark the stream after each op or op group (kernels/cuda/timeline.h); closed (the
 * default) a mark is one branch. A category gets the device time since the previous
 * mark, so idle time waiting for the host goes to the op after it. DP's own ops
 * (model_cuda_dp.c) are not marked. */
typedef enum {
    ET_PROF_EMBEDDING,
    ET_PROF_RMSNORM,     /* forward and backward, final norm included */
    ET_PROF_FROZEN_GEMM, /* base-weight GEMMs of the seven projections, fwd and bwd */
    ET_PROF_LORA_GEMM,   /* rank-r GEMMs: x·Aᵀ, ·Bᵀ, dA, dB, the input gradient */
    ET_PROF_DROPOUT,     /* LoRA dropout masks (regenerated in backward) */
    ET_PROF_ROPE,
    ET_PROF_ATTN_FWD,    /* the fp32 fallback's casts included */
    ET_PROF_ATTN_BWD,
    ET_PROF_SWIGLU,
    ET_PROF_ADD,         /* residual adds */
    ET_PROF_HEAD_GEMM,   /* lm_head chunks: the logits GEMM and the d(final norm) GEMM */
    ET_PROF_LOSS,        /* the fused cross-entropy of each chunk (loss and its gradient) */
    ET_PROF_MEMSET,      /* zeroing attention and residual gradient buffers */
    ET_PROF_OPTIMIZER,   /* zero grads, grad norm (with its read-back), clip, AdamW */
    ET_PROF_OTHER,       /* batch upload, loss read-back */
    ET_PROF_COUNT
} et_prof;

/* Short snake_case name of a category ("frozen_gemm"): JSON keys and tables. */
const char *et_prof_name(int category);

typedef struct {
    double ms[ET_PROF_COUNT];
    int marks[ET_PROF_COUNT];
    int n_marks, dropped; /* dropped: marks past the capacity; their time is missing */
    double total_ms;      /* device time from begin to the last mark: Σ ms up to rounding */
} et_cuda_profile;

/* Opens a profile with room for `capacity` marks (a Llama-1B step makes ~800: about
 * 50 a layer, 80 with LoRA dropout, the head's chunks, the optimizer; checkpointing
 * adds a layer's forward again). Fails when one is already open. */
int et_cuda_profile_begin(int capacity, et_error *err);
/* Waits for the device, fills *p and closes the profile. */
int et_cuda_profile_end(et_cuda_profile *p, et_error *err);

/* Host <-> device copies of the LoRA state: weights into l->params (layouts are
 * identical), AdamW moments into m and v (either may be NULL). Upload the same way
 * (resume); the bf16 copy is refreshed. */
int et_cuda_model_download(et_cuda_model *cm, et_lora *l, float *m, float *v, et_error *err);
int et_cuda_model_upload(et_cuda_model *cm, const et_lora *l, const float *m, const float *v,
                         et_error *err);
/* The device gradient into grads[n_params] (tests). */
int et_cuda_model_download_grads(et_cuda_model *cm, float *grads, et_error *err);

#endif
