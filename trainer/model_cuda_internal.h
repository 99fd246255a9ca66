/* Internal to trainer/model_cuda*.c: the device model. All pointers are device
 * pointers unless named h_*. */
#ifndef EHRTUNE_MODEL_CUDA_INTERNAL_H
#define EHRTUNE_MODEL_CUDA_INTERNAL_H

#include <stdint.h>

#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/timeline.h" /* etc_timeline_mark(et_prof) after each op group */
#include "trainer/model_cuda.h"

typedef struct {
    etc_bf16 *attn_norm, *mlp_norm;
    etc_bf16 *w[ET_PROJ_COUNT];    /* [out, in], rows cuda_weight_ld() apart */
    etc_bf16 *bias[ET_PROJ_COUNT]; /* [out] or NULL */
} cuda_layer_weights;

/* Saved activations of one layer ("slot"): every layer has its own slot, or with
 * activation checkpointing all layers share slot 0 and backward refills it. */
typedef struct {
    etc_bf16 *ln1, *q, *k, *v, *att, *h, *ln2, *gate, *up, *act;
    float *rstd1, *rstd2, *lse;
    etc_bf16 *xa[ET_PROJ_COUNT]; /* [n, r] LoRA x·Aᵀ */
} cuda_slot;

struct et_cuda_model {
    et_hf_config cfg;
    et_cuda_options opt;
    int n_slots;   /* cfg.num_layers, or 1 with activation checkpointing */
    int lm_chunk;  /* rows per lm_head chunk */
    /* LoRA hyperparameters and layout (offsets into params; -1: not targeted) */
    int r;
    unsigned targets;
    float lora_scale, dropout;
    int dropout_fused; /* the fused LoRA-dropout kernels (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1: on) */
    int64_t n_params;
    int64_t *off_a, *off_b; /* [num_layers * ET_PROJ_COUNT] */

    /* K-extended LoRA (docs/cuda.md; 0s when off): extra columns after the hidden
     * size in ln1 (kext_cols[0]: x·Aᵀ of the LoRA'd q, k, v) and ln2 ([1]: gate, up),
     * and after the input features of those projections' weights (s·B of the
     * member, zeros elsewhere), refreshed from the fp32 B by kext_segs */
    int kext_cols[2];
    etc_kext_seg *kext_segs; /* device [n_kext_segs] */
    int n_kext_segs;
    int64_t kext_max_elems;

    /* the three allocations */
    void *wblock, *lblock, *ablock;
    size_t wbytes, lbytes, abytes;

    /* base weights (bf16) */
    etc_bf16 *embed, *lm_head, *final_norm;
    cuda_layer_weights *layers; /* host array [num_layers] of device pointers */

    /* LoRA state: fp32 masters, gradients, AdamW moments; bf16 copy of the weights */
    float *params, *grads, *adam_m, *adam_v;
    etc_bf16 *params16;
    double *norm2; /* one double: Σ grad² */
    float *pe_grads; /* DP: [b, n_params] per-example LoRA gradients, or NULL (model_cuda_dp.c) */

    /* activations */
    etc_bf16 *x; /* [L+1, n, C] residual stream: x[0] embeddings, x[l+1] layer l's output */
    cuda_slot *slots; /* host array [n_slots] */
    etc_bf16 *lnf, *logits; /* final norm output [n, C]; one lm_head chunk [lm_chunk, V] */
    float *rstdf, *losses, *lse_ce, *dloss;
    int32_t *ids, *targets_d;
    float *rope_cos, *rope_sin;
    /* backward scratch */
    etc_bf16 *dres, *dln, *datt, *dq, *dk, *dv, *dact, *dxa;
    float *delta;
    etc_bf16 *xdrop, *dxdrop; /* LoRA dropout (NULL when dropout is 0) */
    size_t xdrop_bytes;       /* xdrop's size: the planned batch's, not the pass's */
    /* fp32 attention fallback buffers (NULL unless the fallback is in use) */
    int attn_fp32;
    int attn_cudnn; /* cuDNN's fused attention (self-checked; model_cuda_attn.c) */
    int attn_cudnn_strict;      /* cuDNN only with its deterministic backward (the default) */
    int attn_cudnn_b;           /* the micro-batch size whose cuDNN graphs are built */
    int attn_fallback;          /* our pair to leave cuDNN for (self-checked), or -1 */
    char attn_note[448];
    float *f_q, *f_k, *f_v, *f_o, *f_g, *f_dq, *f_dk, *f_dv;

    /* host staging for one micro-batch */
    float *h_dloss, *h_losses;
    /* the dropout settings of the last forward, replayed by the backward */
    int train;
    uint64_t seed, step;
};

/* Row stride (elements) of projection p's bf16 weight. */
static inline int64_t cuda_weight_ld(const et_cuda_model *cm, int p) {
    int in, out;
    et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
    const int g = et_cuda_kext_group(p);
    return in + (g >= 0 ? cm->kext_cols[g] : 0);
}
/* Refreshes the K-extended weight columns from the fp32 LoRA B's (no-op when off). */
int cuda_kext_refresh(et_cuda_model *cm);

/* trainer/model_cuda_plan.c: carves the three allocations (cm's shape fields set).
 * Fails naming the first tensor that does not fit and the plan's total. */
int cuda_model_alloc(et_cuda_model *cm, et_error *err);
void cuda_model_release(et_cuda_model *cm);

/* trainer/model_cuda_attn.c */
/* Runs the bf16 kernel against the fp32 kernel on random inputs of this model's
 * head shape; sets cm->attn_fp32 and cm->attn_note. Before cuda_model_alloc (the
 * fallback's buffers are planned only when needed). */
int cuda_attention_select(et_cuda_model *cm, et_error *err);
int cuda_attention_forward(et_cuda_model *cm, const cuda_slot *s, int b, int t, int window);
/* dq, dk, dv are zero on entry (our kernels accumulate; cm->attn_cudnn: any values,
 * cuDNN overwrites them) and receive the gradients. */
int cuda_attention_backward(et_cuda_model *cm, const cuda_slot *s, int b, int t, int window);

/* trainer/model_cuda_pass.c */
int cuda_model_pass(et_cuda_model *cm, const et_batch *batch, int train, int backward,
                    float loss_scale, double *loss_sum, int64_t *n_valid, et_error *err);

/* An etc_* failure as an et_error naming what ran. */
int cuda_fail(et_error *err, const char *what);

#endif
