/* Forward and backward of the CUDA model: trainer/model.c's list of ops, in bf16.
 *
 * Differences from the CPU list, all for memory or speed:
 *   - RoPE's backward rotates the attention's dq and dk in place (no pre-RoPE
 *     gradient buffers, no zeroing them);
 *   - the SwiGLU backward writes the gradients over the saved gate and up (dead
 *     after it), so there are no dgate/dup buffers to zero;
 *   - a projection with LoRA and no bias writes scale·(x·Aᵀ)·Bᵀ first and lets the
 *     base GEMM add onto it (beta = 1), one pass over the output fewer; the residual
 *     adds after o_proj and down_proj happen inside their first GEMM (C = residual);
 *   - the first gradient written into a buffer overwrites it (beta = 0) instead of
 *     a memset followed by accumulation;
 *   - lm_head and the loss run over chunks of rows, the loss gradient written in
 *     place of the chunk's logits (etc_cross_entropy_fused_bf16), so forward and
 *     backward of the head happen in the forward pass (the loss scale is known
 *     before it starts);
 *   - with activation checkpointing, backward re-runs each layer's forward into
 *     the one shared slot first (the dropout masks are regenerated identically);
 *   - projections reading one input share their LoRA x·Aᵀ, dA and dxa·A GEMMs
 *     (grouped LoRA, below), or under LoRA dropout one fused kernel adds all their
 *     masked input gradients into dx; opt-in, the K-extended layout folds each
 *     q/k/v/gate/up projection's LoRA into its frozen GEMM. */
#include <stdio.h>
#include <string.h>

#ifdef EHRTUNE_HAVE_CUDA

#include "trainer/model_cuda_internal.h"

/* trainer/model.c's dropout stream (same formula), so both backends drop the same
 * LoRA inputs for the same (seed, step). */
static uint64_t dropout_offset(uint64_t step, int layer, int p, int num_layers) {
    return (((step * (uint64_t)num_layers + (uint64_t)layer) * ET_PROJ_COUNT + (uint64_t)p)) << 36;
}

typedef struct {
    et_cuda_model *cm;
    int n, b, t, train;
    char where[96]; /* what ran last, for the error message */
} pass;

#define STEP(ps, ...) snprintf((ps)->where, sizeof (ps)->where, __VA_ARGS__)

/* Queues one op (or op group) of category `cat` (et_prof without its prefix):
 * returns -1 from the enclosing function when it fails, else closes it on the
 * device timeline (et_cuda_profile_begin; off by default, then a mark is one branch). */
#define OP(cat, call)                                \
    do {                                             \
        if (call) return -1;                         \
        etc_timeline_mark(ET_PROF_##cat);            \
    } while (0)

/* y = x·Wᵀ (+ bias) + beta·c over projection p's frozen weight (rows
 * cuda_weight_ld apart); x's rows ldx apart (0: packed), K = in + extra (the
 * K-extended LoRA columns, which the weight rows carry as s·B; 0: the plain product). */
static int base_forward(pass *ps, int layer, int p, etc_bf16 *y, const etc_bf16 *c, float beta,
                        const etc_bf16 *x, int64_t ldx, int extra) {
    const cuda_layer_weights *w = &ps->cm->layers[layer];
    int in, out;
    et_proj_shape(&ps->cm->cfg, (et_proj)p, &in, &out);
    return etc_matmul_bf16_ld(y, 0, c, x, ldx, w->w[p], cuda_weight_ld(ps->cm, p), w->bias[p],
                              ps->n, out, in + extra, 0, 1, 1.0f, beta);
}

/* dx (overwrite ? = : +=) dy·W over the weight's first `in` columns. */
static int base_backward(pass *ps, int layer, int p, etc_bf16 *dx, const etc_bf16 *dy, int overwrite) {
    int in, out;
    et_proj_shape(&ps->cm->cfg, (et_proj)p, &in, &out);
    return etc_matmul_bf16_ld(dx, 0, NULL, dy, 0, ps->cm->layers[layer].w[p],
                              cuda_weight_ld(ps->cm, p), NULL, ps->n, in, out, 0, 0, 1.0f,
                              overwrite ? 0.0f : 1.0f);
}

/* y = x·Wᵀ + bias (+ scale·(drop(x)·Aᵀ)·Bᵀ) (+ res). With a residual and no bias the
 * add happens inside the GEMMs (the first one reads res as its C), sparing a pass
 * that reads y and res and writes y again. */
static int proj_forward(pass *ps, int layer, int p, etc_bf16 *y, const etc_bf16 *x, etc_bf16 *xa,
                        const etc_bf16 *res) {
    et_cuda_model *cm = ps->cm;
    const cuda_layer_weights *w = &cm->layers[layer];
    int in, out;
    et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
    const int64_t oa = cm->off_a[layer * ET_PROJ_COUNT + p];
    const int lora = oa >= 0, bias = w->bias[p] != NULL;
    if (!lora && !bias) {
        OP(FROZEN_GEMM, base_forward(ps, layer, p, y, res, res ? 1.0f : 0.0f, x, 0, 0));
        return 0;
    }
    const etc_bf16 *A = lora ? cm->params16 + oa : NULL;
    const etc_bf16 *B = lora ? cm->params16 + cm->off_b[layer * ET_PROJ_COUNT + p] : NULL;
    const etc_bf16 *lx = x;
    if (lora && ps->train && cm->dropout > 0) {
        /* the mask is regenerated in backward: not stored here */
        OP(DROPOUT, etc_dropout_forward_bf16(cm->xdrop, NULL, x, cm->dropout, cm->seed,
                                             dropout_offset(cm->step, layer, p, cm->cfg.num_layers),
                                             (int64_t)ps->n * in));
        lx = cm->xdrop;
    }
    if (bias) { /* Qwen2's q, k, v: the bias epilogue first, LoRA and residual onto it */
        OP(FROZEN_GEMM, base_forward(ps, layer, p, y, NULL, 0.0f, x, 0, 0));
        if (lora)
            OP(LORA_GEMM, etc_lora_forward_bf16(y, xa, lx, A, B, cm->lora_scale, ps->n, in, cm->r, out));
        if (res) OP(ADD, etc_add_forward_bf16(y, y, res, (int64_t)ps->n * out));
        return 0;
    }
    /* the rank-r GEMM writes scale·xa·Bᵀ (+ res), the base GEMM adds onto it */
    OP(LORA_GEMM, etc_matmul_bf16(xa, lx, A, ps->n, cm->r, in, 0, 1, 1.0f, 0.0f) ||
                      etc_matmul_bf16_ld(y, 0, res, xa, 0, B, 0, NULL, ps->n, out, cm->r, 0, 1,
                                         cm->lora_scale, res ? 1.0f : 0.0f));
    OP(FROZEN_GEMM, base_forward(ps, layer, p, y, NULL, 1.0f, x, 0, 0));
    return 0;
}

/* dx (+)= dy·W + the LoRA path's input gradient (overwrite: dx starts as this
 * projection's own gradient); LoRA gradients += into the device gradient vector.
 * etc_lora_backward_bf16's four GEMMs, ordered so that an overwritten dx is
 * written by the rank-r GEMM (beta 0) and the base GEMM adds onto it (beta 1):
 * one pass over dx fewer than base-then-LoRA. */
static int proj_backward(pass *ps, int layer, int p, etc_bf16 *dx, const etc_bf16 *dy,
                         const etc_bf16 *x, const etc_bf16 *xa, int overwrite) {
    et_cuda_model *cm = ps->cm;
    const int n = ps->n, r = cm->r;
    int in, out;
    et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
    const int64_t oa = cm->off_a[layer * ET_PROJ_COUNT + p];
    if (oa < 0) {
        OP(FROZEN_GEMM, base_backward(ps, layer, p, dx, dy, overwrite));
        return 0;
    }
    const int64_t ob = cm->off_b[layer * ET_PROJ_COUNT + p];
    const etc_bf16 *A = cm->params16 + oa, *B = cm->params16 + ob;
    float *da = cm->grads + oa, *db = cm->grads + ob;
    const int drop = ps->train && cm->dropout > 0;
    const int64_t cnt = (int64_t)n * in;
    const etc_bf16 *lx = x;
    const uint64_t doff = dropout_offset(cm->step, layer, p, cm->cfg.num_layers);
    if (drop) { /* regenerate the masked input: the mask is a pure function of seed,
                 * step, layer, projection (drawn a third time in the backward below) */
        OP(DROPOUT, etc_dropout_forward_bf16(cm->xdrop, NULL, x, cm->dropout, cm->seed, doff, cnt));
        lx = cm->xdrop;
    }
    if (cm->pe_grads) { /* DP: one dB and dA slice per example (rows e·t ..), overwritten */
        if (etc_matmul_bf16(cm->dxa, dy, B, n, r, out, 0, 0, cm->lora_scale, 0.0f)) return -1;
        for (int e = 0; e < ps->b; e++) {
            float *g = cm->pe_grads + (size_t)e * (size_t)cm->n_params;
            const size_t row = (size_t)e * (size_t)ps->t;
            if (etc_matmul_bf16_f32out(g + ob, dy + row * out, xa + row * r, out, r, ps->t, 1, 0,
                                       cm->lora_scale, 0.0f) ||
                etc_matmul_bf16_f32out(g + oa, cm->dxa + row * r, lx + row * in, r, in, ps->t, 1, 0,
                                       1.0f, 0.0f))
                return -1;
        }
        etc_timeline_mark(ET_PROF_LORA_GEMM);
    } else { /* dB, dxa, dA */
        OP(LORA_GEMM, etc_matmul_bf16_f32out(db, dy, xa, out, r, n, 1, 0, cm->lora_scale, 1.0f) ||
                          etc_matmul_bf16(cm->dxa, dy, B, n, r, out, 0, 0, cm->lora_scale, 0.0f) ||
                          etc_matmul_bf16_f32out(da, cm->dxa, lx, r, in, n, 1, 0, 1.0f, 1.0f));
    }
    if (drop) { /* dx (+)= dy·W, then += the dropout-masked LoRA input gradient */
        OP(FROZEN_GEMM, base_backward(ps, layer, p, dx, dy, overwrite));
        OP(LORA_GEMM, etc_matmul_bf16(cm->dxdrop, cm->dxa, A, n, in, r, 0, 0, 1.0f, 0.0f));
        OP(DROPOUT, etc_dropout_backward_redraw_bf16(dx, cm->dxdrop, cm->dropout, cm->seed, doff, cnt));
        return 0;
    }
    OP(LORA_GEMM, etc_matmul_bf16(dx, cm->dxa, A, n, in, r, 0, 0, 1.0f, overwrite ? 0.0f : 1.0f));
    OP(FROZEN_GEMM, base_backward(ps, layer, p, dx, dy, 0));
    return 0;
}

/* ---- grouped LoRA: projections that read one input (q, k, v; o; gate, up; down) ----
 * The LoRA'd members of a group have their A's side by side in the parameter vector
 * (trainer/lora.h), one [k·r, in] matrix, so the group makes one x·Aᵀ GEMM into the
 * slot's xa rows (k·r wide, member j's columns j·r ..), one dA GEMM and one dxa·A GEMM
 * into dx: the input is read once instead of k times, and dx takes one LoRA pass
 * instead of k. Not with LoRA dropout (each member masks its input differently) or
 * DP (per-example dA slices): then every projection runs on its own. */
typedef struct {
    int first, count; /* projections first .. first + count - 1 */
} proj_group;

static const proj_group GROUP_QKV = {ET_PROJ_Q, 3}, GROUP_O = {ET_PROJ_O, 1},
                        GROUP_GATE_UP = {ET_PROJ_GATE, 2}, GROUP_DOWN = {ET_PROJ_DOWN, 1};

static int grouped(const pass *ps) {
    return !ps->cm->pe_grads && !(ps->train && ps->cm->dropout > 0);
}

/* LoRA'd members of g (their count) and the first of them. */
static int group_lora(const et_cuda_model *cm, int layer, proj_group g, int *first) {
    int k = 0;
    for (int p = g.first; p < g.first + g.count; p++)
        if (cm->off_a[layer * ET_PROJ_COUNT + p] >= 0)
            if (k++ == 0) *first = p;
    return k;
}

/* Extra K-extended columns in the rows of g's input for this pass (0: packed rows).
 * Only grouped passes use them; the dropout and DP paths read packed rows. */
static int kext_cols(const pass *ps, proj_group g) {
    const int kg = et_cuda_kext_group(g.first);
    return kg >= 0 && grouped(ps) ? ps->cm->kext_cols[kg] : 0;
}

/* ys[j] = projection g.first + j of x (+ res, for single-member groups). With the
 * K-extended layout (kext_cols > 0) x's rows carry its LoRA'd members' x·Aᵀ after the
 * input features and each weight row s·B there: one GEMM a projection, LoRA included. */
static int group_forward(pass *ps, int layer, const cuda_slot *s, proj_group g, etc_bf16 *const *ys,
                         etc_bf16 *x, const etc_bf16 *res) {
    et_cuda_model *cm = ps->cm;
    const cuda_layer_weights *w = &cm->layers[layer];
    const int n = ps->n, r = cm->r, kx = kext_cols(ps, g);
    int first = 0, in, out;
    const int k = group_lora(cm, layer, g, &first);
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    const etc_bf16 *A = k ? cm->params16 + cm->off_a[layer * ET_PROJ_COUNT + first] : NULL;
    /* under LoRA dropout: every member's x·Aᵀ of its own masked x in one kernel,
     * into the slot's per-projection xa (the dropout/DP backward reads those) */
    const int drop = !grouped(ps) && ps->train && cm->dropout > 0 && k && cm->dropout_fused &&
                     etc_lora_dropout_xa_supported(in, k, r);
    if (!grouped(ps) && !drop) {
        for (int j = 0; j < g.count; j++)
            if (proj_forward(ps, layer, g.first + j, ys[j], x, s->xa[g.first + j], res)) return -1;
        return 0;
    }
    /* xa: the slot's [n, k·r] rows, or x's own extra columns (K-extended), or per
     * projection (dropout) */
    etc_bf16 *xa = kx ? x + in : s->xa[g.first];
    const int64_t ldx = kx ? in + kx : 0, ldxa = kx ? in + kx : drop ? r : (int64_t)k * r;
    if (drop) {
        etc_bf16 *outs[3];
        uint64_t offs[3];
        for (int p = g.first, m = 0; p < g.first + g.count; p++)
            if (cm->off_a[layer * ET_PROJ_COUNT + p] >= 0) {
                outs[m] = s->xa[p];
                offs[m++] = dropout_offset(cm->step, layer, p, cm->cfg.num_layers);
            }
        OP(LORA_GEMM, etc_lora_dropout_xa_bf16(outs, r, x, A, n, in, k, r, cm->dropout, cm->seed, offs));
    } else if (k) {
        OP(LORA_GEMM, etc_matmul_bf16_ld(xa, ldxa, NULL, x, ldx, A, 0, NULL, n, k * r, in, 0, 1, 1.0f,
                                         0.0f));
    }
    for (int j = 0, m = 0; j < g.count; j++) {
        const int p = g.first + j;
        const int64_t ob = cm->off_b[layer * ET_PROJ_COUNT + p];
        if (kx) {
            OP(FROZEN_GEMM, base_forward(ps, layer, p, ys[j], res, res ? 1.0f : 0.0f, x, ldx, kx));
            continue;
        }
        if (cm->off_a[layer * ET_PROJ_COUNT + p] < 0) {
            if (proj_forward(ps, layer, p, ys[j], x, NULL, res)) return -1;
            continue;
        }
        et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
        const etc_bf16 *xa_p = drop ? s->xa[p] : xa + (size_t)m++ * r, *B = cm->params16 + ob;
        if (w->bias[p]) { /* the bias epilogue first, the rank-r product and residual onto it */
            OP(FROZEN_GEMM, base_forward(ps, layer, p, ys[j], NULL, 0.0f, x, 0, 0));
            OP(LORA_GEMM, etc_matmul_bf16_ld(ys[j], 0, NULL, xa_p, ldxa, B, 0, NULL, n, out, r, 0, 1,
                                             cm->lora_scale, 1.0f));
            if (res) OP(ADD, etc_add_forward_bf16(ys[j], ys[j], res, (int64_t)n * out));
            continue;
        }
        OP(LORA_GEMM, etc_matmul_bf16_ld(ys[j], 0, res, xa_p, ldxa, B, 0, NULL, n, out, r, 0, 1,
                                         cm->lora_scale, res ? 1.0f : 0.0f));
        OP(FROZEN_GEMM, base_forward(ps, layer, p, ys[j], NULL, 1.0f, x, 0, 0));
    }
    return 0;
}

/* The K-extended backward (kx > 0; dx overwritten, its rows in + kx apart): each
 * projection's dy·[W | s·B] (N = in + kx) adds its input gradient into dx's first
 * `in` columns and writes its member's dxa block into the kx after them (zeros into
 * the other blocks), so no GEMM reads dy again for dxa; then dB a member, and for
 * the group dA from those columns and dx += dxa·A. */
static int group_backward_kext(pass *ps, int layer, proj_group g, etc_bf16 *dx,
                               const etc_bf16 *const *dys, const etc_bf16 *x, int kx) {
    et_cuda_model *cm = ps->cm;
    const int n = ps->n, r = cm->r;
    int first = 0, in, out;
    const int k = group_lora(cm, layer, g, &first);
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    const int64_t ld = in + kx;
    for (int j = 0; j < g.count; j++) {
        const int p = g.first + j;
        et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
        OP(FROZEN_GEMM, etc_matmul_bf16_ld(dx, ld, NULL, dys[j], 0, cm->layers[layer].w[p],
                                           cuda_weight_ld(cm, p), NULL, n, in + kx, out, 0, 0, 1.0f,
                                           j ? 1.0f : 0.0f));
    }
    for (int j = 0, m = 0; j < g.count; j++) { /* dB = s·dyᵀ·xa, xa in x's extra columns */
        const int p = g.first + j;
        if (cm->off_a[layer * ET_PROJ_COUNT + p] < 0) continue;
        et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
        OP(LORA_GEMM, etc_matmul_bf16_f32out_ld(cm->grads + cm->off_b[layer * ET_PROJ_COUNT + p], 0,
                                                dys[j], 0, x + in + (size_t)m++ * r, ld, out, r, n, 1,
                                                0, cm->lora_scale, 1.0f));
    }
    if (k) {
        const int64_t oa = cm->off_a[layer * ET_PROJ_COUNT + first];
        OP(LORA_GEMM, etc_matmul_bf16_f32out_ld(cm->grads + oa, 0, dx + in, ld, x, ld, k * r, in, n, 1,
                                                0, 1.0f, 1.0f) ||
                          etc_matmul_bf16_ld(dx, ld, NULL, dx + in, ld, cm->params16 + oa, 0, NULL, n,
                                             in, k * r, 0, 0, 1.0f, 1.0f));
    }
    return 0;
}

/* The backward of a group under LoRA dropout (training, no DP), when
 * etc_lora_dropout_dx_supported: per LoRA'd member its masked input again (dA needs
 * it), dB, dxa into its columns of cm->dxa and dA; then the frozen products into dx,
 * and all members' masked dxa·A in one pass over dx (etc_lora_dropout_dx_bf16)
 * instead of a scratch tensor and a dropout backward a member. */
static int group_backward_dropout(pass *ps, int layer, const cuda_slot *s, proj_group g,
                                  etc_bf16 *dx, const etc_bf16 *const *dys, const etc_bf16 *x,
                                  int overwrite, int k, int first) {
    et_cuda_model *cm = ps->cm;
    const int n = ps->n, r = cm->r;
    int in, out;
    uint64_t offs[3];
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    /* dA of every member from x in one kernel (masks drawn while x is in shared
     * memory; the masked-copy buffer, unused then, holds its partial sums) */
    const int da_fused = etc_lora_dropout_da_supported(in, k, r) &&
                         cm->xdrop_bytes >= (size_t)k * r * in * sizeof(float); /* one split */
    for (int j = 0, m = 0; j < g.count; j++) {
        const int p = g.first + j;
        const int64_t oa = cm->off_a[layer * ET_PROJ_COUNT + p], ob = cm->off_b[layer * ET_PROJ_COUNT + p];
        if (oa < 0) continue;
        et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
        offs[m] = dropout_offset(cm->step, layer, p, cm->cfg.num_layers);
        etc_bf16 *dxa = cm->dxa + (size_t)m * r;
        OP(LORA_GEMM, etc_matmul_bf16_f32out(cm->grads + ob, dys[j], s->xa[p], out, r, n, 1, 0,
                                             cm->lora_scale, 1.0f) ||
                          etc_matmul_bf16_ld(dxa, (int64_t)k * r, NULL, dys[j], 0, cm->params16 + ob, 0,
                                             NULL, n, r, out, 0, 0, cm->lora_scale, 0.0f));
        if (!da_fused) {
            OP(DROPOUT, etc_dropout_forward_bf16(cm->xdrop, NULL, x, cm->dropout, cm->seed, offs[m],
                                                 (int64_t)n * in));
            OP(LORA_GEMM, etc_matmul_bf16_f32out_ld(cm->grads + oa, 0, dxa, (int64_t)k * r, cm->xdrop,
                                                    0, r, in, n, 1, 0, 1.0f, 1.0f));
        }
        m++;
    }
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    if (da_fused)
        OP(LORA_GEMM, etc_lora_dropout_da_bf16(cm->grads + cm->off_a[layer * ET_PROJ_COUNT + first],
                                               cm->dxa, (int64_t)k * r, x, n, in, k, r, cm->dropout,
                                               cm->seed, offs, cm->xdrop, cm->xdrop_bytes));
    for (int j = 0; j < g.count; j++) {
        OP(FROZEN_GEMM, base_backward(ps, layer, g.first + j, dx, dys[j], overwrite));
        overwrite = 0;
    }
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    OP(LORA_GEMM, etc_lora_dropout_dx_bf16(dx, cm->dxa, (int64_t)k * r,
                                           cm->params16 + cm->off_a[layer * ET_PROJ_COUNT + first], n,
                                           in, k, r, cm->dropout, cm->seed, offs, 0));
    return 0;
}

/* dx (+)= Σ_j the input gradient of projection g.first + j given dys[j]; LoRA
 * gradients += into the device gradient vector. */
static int group_backward(pass *ps, int layer, const cuda_slot *s, proj_group g, etc_bf16 *dx,
                          const etc_bf16 *const *dys, const etc_bf16 *x, int overwrite) {
    et_cuda_model *cm = ps->cm;
    if (!grouped(ps)) {
        int first = 0, in, out;
        const int k = group_lora(cm, layer, g, &first);
        et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
        if (!cm->pe_grads && k && cm->dropout_fused && etc_lora_dropout_dx_supported(in, k, cm->r))
            return group_backward_dropout(ps, layer, s, g, dx, dys, x, overwrite, k, first);
        for (int j = 0; j < g.count; j++)
            if (proj_backward(ps, layer, g.first + j, dx, dys[j], x, s->xa[g.first + j],
                              overwrite && j == 0))
                return -1;
        return 0;
    }
    const int n = ps->n, r = cm->r, kx = kext_cols(ps, g);
    if (kx && overwrite) return group_backward_kext(ps, layer, g, dx, dys, x, kx);
    int first = 0, in, out;
    const int k = group_lora(cm, layer, g, &first);
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    const etc_bf16 *xa = kx ? x + in : s->xa[g.first];
    const int64_t ldx = kx ? in + kx : 0, ldxa = kx ? in + kx : (int64_t)k * r;
    const int64_t lddxa = (int64_t)k * r;
    for (int j = 0, m = 0; j < g.count; j++) { /* dB, and dxa into the member's columns */
        const int p = g.first + j;
        if (cm->off_a[layer * ET_PROJ_COUNT + p] < 0) continue;
        et_proj_shape(&cm->cfg, (et_proj)p, &in, &out);
        const int64_t ob = cm->off_b[layer * ET_PROJ_COUNT + p];
        OP(LORA_GEMM, etc_matmul_bf16_f32out_ld(cm->grads + ob, 0, dys[j], 0, xa + (size_t)m * r, ldxa,
                                                out, r, n, 1, 0, cm->lora_scale, 1.0f) ||
                          etc_matmul_bf16_ld(cm->dxa + (size_t)m * r, lddxa, NULL, dys[j], 0,
                                             cm->params16 + ob, 0, NULL, n, r, out, 0, 0, cm->lora_scale,
                                             0.0f));
        m++;
    }
    et_proj_shape(&cm->cfg, (et_proj)g.first, &in, &out);
    if (k) { /* dA of every member at once, then their input gradient into dx */
        const int64_t oa = cm->off_a[layer * ET_PROJ_COUNT + first];
        OP(LORA_GEMM, etc_matmul_bf16_f32out_ld(cm->grads + oa, 0, cm->dxa, 0, x, ldx, k * r, in, n, 1, 0,
                                                1.0f, 1.0f) ||
                          etc_matmul_bf16(dx, cm->dxa, cm->params16 + oa, n, in, k * r, 0, 0, 1.0f,
                                          overwrite ? 0.0f : 1.0f));
        overwrite = 0;
    }
    for (int j = 0; j < g.count; j++) {
        OP(FROZEN_GEMM, base_backward(ps, layer, g.first + j, dx, dys[j], overwrite));
        overwrite = 0;
    }
    return 0;
}

static int layer_forward(pass *ps, int layer, const cuda_slot *s) {
    et_cuda_model *cm = ps->cm;
    const et_hf_config *c = &cm->cfg;
    const cuda_layer_weights *w = &cm->layers[layer];
    const int n = ps->n, C = c->hidden_size, hq = c->num_heads, hkv = c->num_kv_heads;
    const etc_bf16 *x = cm->x + (size_t)layer * n * C;
    etc_bf16 *xout = cm->x + (size_t)(layer + 1) * n * C;
    STEP(ps, "layer %d forward (attention block)", layer);
    /* rows of ln1 and ln2 leave room for the K-extended x·Aᵀ columns when in use */
    OP(RMSNORM, etc_rmsnorm_forward_ld_bf16(s->ln1, C + kext_cols(ps, GROUP_QKV), s->rstd1, x,
                                            w->attn_norm, n, C, c->rms_norm_eps));
    etc_bf16 *const qkv[3] = {s->q, s->k, s->v}, *const gate_up[2] = {s->gate, s->up};
    if (group_forward(ps, layer, s, GROUP_QKV, qkv, s->ln1, NULL)) return -1;
    OP(ROPE, etc_rope_forward_bf16(s->q, s->q, cm->rope_cos, cm->rope_sin, ps->b, ps->t, hq,
                                   c->head_dim) ||
                 etc_rope_forward_bf16(s->k, s->k, cm->rope_cos, cm->rope_sin, ps->b, ps->t, hkv,
                                       c->head_dim));
    OP(ATTN_FWD, cuda_attention_forward(cm, s, ps->b, ps->t, et_hf_layer_window(c, layer)));
    if (group_forward(ps, layer, s, GROUP_O, &s->h, s->att, x)) return -1;
    STEP(ps, "layer %d forward (MLP block)", layer);
    OP(RMSNORM, etc_rmsnorm_forward_ld_bf16(s->ln2, C + kext_cols(ps, GROUP_GATE_UP), s->rstd2, s->h,
                                            w->mlp_norm, n, C, c->rms_norm_eps));
    if (group_forward(ps, layer, s, GROUP_GATE_UP, gate_up, s->ln2, NULL)) return -1;
    OP(SWIGLU, etc_swiglu_forward_bf16(s->act, s->gate, s->up, (int64_t)n * c->intermediate_size));
    if (group_forward(ps, layer, s, GROUP_DOWN, &xout, s->act, s->h)) return -1;
    return 0;
}

/* cm->dres holds d(layer output) on entry and d(layer input) on return. */
static int layer_backward(pass *ps, int layer, const cuda_slot *s) {
    et_cuda_model *cm = ps->cm;
    const et_hf_config *c = &cm->cfg;
    const cuda_layer_weights *w = &cm->layers[layer];
    const int n = ps->n, C = c->hidden_size, hq = c->num_heads, hkv = c->num_kv_heads;
    const int64_t nF = (int64_t)n * c->intermediate_size;
    const size_t QD = (size_t)hq * c->head_dim, KD = (size_t)hkv * c->head_dim;
    const etc_bf16 *x = cm->x + (size_t)layer * n * C;
    STEP(ps, "layer %d backward (MLP block)", layer);
    /* gate and up become their own gradients (they are dead after this) */
    const etc_bf16 *dres = cm->dres;
    if (group_backward(ps, layer, s, GROUP_DOWN, cm->dact, &dres, s->act, 1)) return -1;
    OP(SWIGLU, etc_swiglu_backward_inplace_bf16(s->gate, s->up, cm->dact, nF));
    const etc_bf16 *const dgate_up[2] = {s->gate, s->up};
    if (group_backward(ps, layer, s, GROUP_GATE_UP, cm->dln, dgate_up, s->ln2, 1)) return -1;
    /* d(ln2) rows carry the K-extended dxa columns after C when in use */
    OP(RMSNORM, etc_rmsnorm_backward_ld_bf16(cm->dres, cm->dln, C + kext_cols(ps, GROUP_GATE_UP), s->h,
                                             w->mlp_norm, s->rstd2, n, C));
    STEP(ps, "layer %d backward (attention block)", layer);
    if (group_backward(ps, layer, s, GROUP_O, cm->datt, &dres, s->att, 1)) return -1;
    if (!cm->attn_cudnn) /* our kernels accumulate; cuDNN's overwrite */
        OP(MEMSET, etc_memset(cm->dq, 0, (size_t)n * QD * 2) ||
                       etc_memset(cm->dk, 0, (size_t)n * KD * 2) ||
                       etc_memset(cm->dv, 0, (size_t)n * KD * 2));
    OP(ATTN_BWD, cuda_attention_backward(cm, s, ps->b, ps->t, et_hf_layer_window(c, layer)));
    /* RoPE backward rotates dq and dk in place (overwriting: no pre-RoPE buffers) */
    OP(ROPE, etc_rope_backward_set_bf16(cm->dq, cm->dq, cm->rope_cos, cm->rope_sin, ps->b, ps->t,
                                        hq, c->head_dim) ||
                 etc_rope_backward_set_bf16(cm->dk, cm->dk, cm->rope_cos, cm->rope_sin, ps->b,
                                            ps->t, hkv, c->head_dim));
    const etc_bf16 *const dqkv[3] = {cm->dq, cm->dk, cm->dv};
    if (group_backward(ps, layer, s, GROUP_QKV, cm->dln, dqkv, s->ln1, 1)) return -1;
    OP(RMSNORM, etc_rmsnorm_backward_ld_bf16(cm->dres, cm->dln, C + kext_cols(ps, GROUP_QKV), x,
                                             w->attn_norm, s->rstd1, n, C));
    return 0;
}

/* Final norm, lm_head and loss over row chunks; with dloss, the head's backward
 * too: cm->dln receives d(final norm output). */
static int head(pass *ps, int backward) {
    et_cuda_model *cm = ps->cm;
    const et_hf_config *c = &cm->cfg;
    const int n = ps->n, C = c->hidden_size, V = c->vocab_size;
    const etc_bf16 *xl = cm->x + (size_t)c->num_layers * n * C;
    STEP(ps, "final norm, lm_head and loss");
    OP(RMSNORM, etc_rmsnorm_forward_bf16(cm->lnf, cm->rstdf, xl, cm->final_norm, n, C, c->rms_norm_eps));
    for (int r0 = 0; r0 < n; r0 += cm->lm_chunk) {
        const int cn = n - r0 < cm->lm_chunk ? n - r0 : cm->lm_chunk;
        OP(HEAD_GEMM, etc_linear_forward_bf16(cm->logits, cm->lnf + (size_t)r0 * C, cm->lm_head, NULL,
                                              cn, C, V));
        OP(LOSS, etc_cross_entropy_fused_bf16(cm->losses + r0, cm->lse_ce + r0, cm->logits,
                                              cm->targets_d + r0, backward ? cm->dloss + r0 : NULL,
                                              cn, V));
        if (backward)
            OP(HEAD_GEMM, etc_matmul_bf16(cm->dln + (size_t)r0 * C, cm->logits, cm->lm_head, cn, C, V,
                                          0, 0, 1.0f, 0.0f));
    }
    if (!backward) return 0;
    OP(MEMSET, etc_memset(cm->dres, 0, (size_t)n * C * 2));
    OP(RMSNORM, etc_rmsnorm_backward_bf16(cm->dres, NULL, cm->dln, xl, cm->final_norm, cm->rstdf, n, C));
    return 0;
}

int cuda_model_pass(et_cuda_model *cm, const et_batch *batch, int train, int backward,
                    float loss_scale, double *loss_sum, int64_t *n_valid, et_error *err) {
    const et_hf_config *c = &cm->cfg;
    if (batch->b > cm->opt.b || batch->t != cm->opt.t)
        return et_fail(err, "CUDA model: batch %d x %d does not fit the planned %d x %d", batch->b,
                       batch->t, cm->opt.b, cm->opt.t);
    pass ps = {cm, batch->b * batch->t, batch->b, batch->t, train, ""};
    const int n = ps.n;
    int64_t valid = 0;
    for (int i = 0; i < n; i++) {
        if (batch->input_ids[i] < 0 || batch->input_ids[i] >= c->vocab_size)
            return et_fail(err, "token id at row %d position %d is outside the vocabulary (size "
                                "%d) — corpus tokenized for a different model?",
                           i / batch->t, i % batch->t, c->vocab_size);
        valid += batch->targets[i] >= 0;
    }
    for (int i = 0; i < n && backward; i++)
        cm->h_dloss[i] = loss_scale * (batch->row_loss_scale ? batch->row_loss_scale[i / batch->t] : 1.0f);
    STEP(&ps, "uploading the batch");
    if (etc_memcpy_h2d(cm->ids, batch->input_ids, (size_t)n * 4) ||
        etc_memcpy_h2d(cm->targets_d, batch->targets, (size_t)n * 4) ||
        (backward && etc_memcpy_h2d(cm->dloss, cm->h_dloss, (size_t)n * 4)))
        return cuda_fail(err, ps.where);
    etc_timeline_mark(ET_PROF_OTHER);
    STEP(&ps, "embedding");
    int bad = etc_embedding_forward_bf16(cm->x, cm->ids, cm->embed, n, c->hidden_size);
    if (!bad) etc_timeline_mark(ET_PROF_EMBEDDING);
    const int ckpt = cm->n_slots == 1 && c->num_layers > 1;
    for (int layer = 0; layer < c->num_layers && !bad; layer++)
        bad = layer_forward(&ps, layer, &cm->slots[ckpt ? 0 : layer]);
    bad = bad || head(&ps, backward);
    for (int layer = c->num_layers - 1; layer >= 0 && backward && !bad; layer--) {
        /* the shared slot holds the last layer's activations already */
        if (ckpt && layer < c->num_layers - 1) bad = layer_forward(&ps, layer, &cm->slots[0]);
        bad = bad || layer_backward(&ps, layer, &cm->slots[ckpt ? 0 : layer]);
    }
    if (bad) return cuda_fail(err, ps.where);
    STEP(&ps, "reading the losses");
    if (etc_memcpy_d2h(cm->h_losses, cm->losses, (size_t)n * 4)) return cuda_fail(err, ps.where);
    etc_timeline_mark(ET_PROF_OTHER);
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (batch->targets[i] >= 0) sum += cm->h_losses[i];
    *loss_sum = sum;
    *n_valid = valid;
    return 0;
}

#endif
