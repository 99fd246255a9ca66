/* Internal to trainer/model*.c: the activation layout. */
#ifndef EHRTUNE_MODEL_INTERNAL_H
#define EHRTUNE_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Per-layer tensors are stored as [L, ...] blocks; layer l of tensor X of per-layer
 * size S starts at X + l*S. */
struct et_acts {
    int b, t, r;
    float *block;
    size_t bytes;
    /* saved for backward */
    float *x;      /* [L+1, N, C] residual stream: x[0] embeddings, x[l+1] = layer l output */
    float *ln1, *rstd1, *q, *k, *v, *att, *lse, *h, *ln2, *rstd2, *gate, *up, *act;
    float *xa;     /* [L, 7, N, r] LoRA x·Aᵀ per projection */
    float *lnf, *rstdf, *logits, *losses, *lse_ce;
    /* backward scratch */
    float *dlogits, *dres, *dln, *dq, *dq2, *dk, *dk2, *dv, *datt, *dgate, *dup, *dact, *dxa;
    float *xdrop, *dxdrop, *keep, *dloss; /* keep: dropout mask bytes */
    /* the last forward's dropout settings, replayed by backward */
    int train_flag;
    uint64_t seed, step;
    /* RoPE tables [t, D/2] */
    float *rope_cos, *rope_sin;
};

#endif
