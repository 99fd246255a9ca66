/* Device memory of the CUDA model: one table of every tensor, used both for
 * `et_cuda_model_plan` (what `ehrtune bench --device cuda` and the OOM message
 * print) and for carving the three allocations, so the plan shown is the memory
 * used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/model_cuda.h"

#ifdef EHRTUNE_HAVE_CUDA
#include "trainer/model_cuda_internal.h"
#endif

#define ALIGN 256
static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

enum { GROUP_WEIGHTS = 0, GROUP_LORA = 1, GROUP_ACTS = 2 };

typedef struct {
    void **ptr; /* where the carved pointer goes (NULL when only planning) */
    size_t bytes;
    int group;
    const char *name;
    char shape[64];
} cuda_spec;

/* The shapes every table entry needs. */
typedef struct {
    const et_hf_config *c;
    int r, b, t, n_slots, lm_chunk, attn_fp32;
    unsigned targets;
    float dropout;
    int64_t n_params;
    int kext_cols[2]; /* K-extended LoRA columns of ln1, ln2 (et_cuda_kext_cols) */
} plan_shape;

int et_cuda_kext_requested(const et_cuda_options *o) {
    if (o->lora_kext) return o->lora_kext > 0;
    const char *env = getenv("EHRTUNE_CUDA_LORA_KEXT");
    return !(env && !strcmp(env, "0"));
}

void et_cuda_kext_cols(int r, unsigned targets, int on, int cols[2]) {
    cols[0] = cols[1] = 0;
    for (int p = 0; on && p < ET_PROJ_COUNT; p++) {
        const int g = et_cuda_kext_group(p);
        if (g >= 0 && (targets & (1u << p))) cols[g] += r;
    }
    /* the GEMMs and RMSNorm want 16-byte rows; padding columns would hold garbage
     * that the zero weight columns multiply (NaN · 0), so such shapes stay packed */
    if (cols[0] % 8 || cols[1] % 8) cols[0] = cols[1] = 0;
}

static int has_bias(const et_hf_config *c, int p) {
    return (p <= ET_PROJ_V && c->attention_bias) || (p == ET_PROJ_O && c->o_bias) ||
           (p >= ET_PROJ_GATE && c->mlp_bias);
}

/* Bytes of the bf16 base weights, each tensor 256-byte aligned; with cm (CUDA
 * builds), points cm's weight pointers into `base`. */
static size_t weight_bytes(const et_hf_config *c, const int kext_cols[2], void *cm_, char *base) {
    size_t off = 0, C = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
#ifdef EHRTUNE_HAVE_CUDA
    et_cuda_model *cm = cm_;
#define TAKE(dst, count)                                        \
    do {                                                        \
        if (cm) (dst) = (etc_bf16 *)(base + off);               \
        off += align_up((size_t)(count) * 2);                   \
    } while (0)
#else
    (void)cm_, (void)base;
#define TAKE(dst, count) (off += align_up((size_t)(count) * 2))
#endif
    TAKE(cm->embed, V * C);
    if (!c->tie_word_embeddings) TAKE(cm->lm_head, V * C);
    TAKE(cm->final_norm, C);
    for (int l = 0; l < c->num_layers; l++) {
        TAKE(cm->layers[l].attn_norm, C);
        TAKE(cm->layers[l].mlp_norm, C);
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            int in, out;
            et_proj_shape(c, (et_proj)p, &in, &out);
            const int g = et_cuda_kext_group(p);
            TAKE(cm->layers[l].w[p], (size_t)(in + (g >= 0 ? kext_cols[g] : 0)) * out);
            if (has_bias(c, p)) TAKE(cm->layers[l].bias[p], out);
        }
    }
#undef TAKE
#ifdef EHRTUNE_HAVE_CUDA
    if (cm && c->tie_word_embeddings) cm->lm_head = cm->embed;
#endif
    return off;
}

#define MAX_SPECS 96

/* Where the [n_slots, ...] saved tensors start (split into slots afterwards). */
typedef struct {
    void *ln1, *q, *k, *v, *att, *h, *ln2, *gate, *up, *act, *rstd, *lse, *xa;
} slot_bases;

/* Every tensor of the CUDA model. cm NULL: sizes only. */
static int cuda_specs(cuda_spec *s, void *cm_, slot_bases *sb, const plan_shape *ps) {
    const et_hf_config *c = ps->c;
    const size_t n = (size_t)ps->b * ps->t, C = (size_t)c->hidden_size;
    const size_t F = (size_t)c->intermediate_size, V = (size_t)c->vocab_size;
    const size_t L = (size_t)c->num_layers, H = (size_t)c->num_heads, S = (size_t)ps->n_slots;
    const size_t QD = H * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    const size_t R = (size_t)ps->r, NP = (size_t)ps->n_params, CH = (size_t)ps->lm_chunk;
    size_t max_in = C > F ? C : F;
    if (QD > max_in) max_in = QD;
    int k = 0;
#ifdef EHRTUNE_HAVE_CUDA
    et_cuda_model *cm = cm_;
#define DST(field) (cm ? (void **)&cm->field : NULL)
#else
    (void)cm_;
#define DST(field) NULL
#endif
#define SPEC(dst, count, esize, grp, nm, ...)                                   \
    do {                                                                        \
        s[k].ptr = (dst);                                                       \
        s[k].bytes = align_up((size_t)(count) * (esize));                       \
        s[k].group = (grp);                                                     \
        s[k].name = (nm);                                                       \
        snprintf(s[k].shape, sizeof s[k].shape, __VA_ARGS__);                   \
        k++;                                                                    \
    } while (0)
    SPEC(DST(wblock), weight_bytes(c, ps->kext_cols, NULL, NULL), 1, GROUP_WEIGHTS,
         "weights.base (frozen)", "bf16, %d layers%s%s", c->num_layers,
         c->tie_word_embeddings ? ", tied head" : "", ps->kext_cols[0] || ps->kext_cols[1] ? ", K-extended" : "");
    const size_t C1 = C + (size_t)ps->kext_cols[0], C2 = C + (size_t)ps->kext_cols[1];
    SPEC(DST(params), NP, 4, GROUP_LORA, "lora.weights", "[%zu] fp32", NP);
    SPEC(DST(grads), NP, 4, GROUP_LORA, "lora.grads", "[%zu] fp32", NP);
    SPEC(DST(adam_m), NP, 4, GROUP_LORA, "optim.adamw_m", "[%zu] fp32", NP);
    SPEC(DST(adam_v), NP, 4, GROUP_LORA, "optim.adamw_v", "[%zu] fp32", NP);
    SPEC(DST(params16), NP, 2, GROUP_LORA, "lora.weights_bf16", "[%zu] bf16", NP);
    SPEC(DST(norm2), 1, 8, GROUP_LORA, "lora.grad_sumsq", "[1] fp64");
#define SB(field) (sb ? &sb->field : NULL)
    /* Saved activations: [n_slots, ...] each, split into slots by cuda_model_alloc. */
    SPEC(DST(x), (L + 1) * n * C, 2, GROUP_ACTS, "acts.residual", "[%zu+1, %zu, %zu] bf16", L, n, C);
    SPEC(SB(ln1), S * n * C1, 2, GROUP_ACTS, "acts.attn_norm_out", "[%zu, %zu, %zu] bf16", S, n, C1);
    SPEC(SB(q), S * n * QD, 2, GROUP_ACTS, "acts.q", "[%zu, %zu, %zu] bf16", S, n, QD);
    SPEC(SB(k), S * n * KD, 2, GROUP_ACTS, "acts.k", "[%zu, %zu, %zu] bf16", S, n, KD);
    SPEC(SB(v), S * n * KD, 2, GROUP_ACTS, "acts.v", "[%zu, %zu, %zu] bf16", S, n, KD);
    SPEC(SB(att), S * n * QD, 2, GROUP_ACTS, "acts.attn_out", "[%zu, %zu, %zu] bf16", S, n, QD);
    SPEC(SB(h), S * n * C, 2, GROUP_ACTS, "acts.attn_residual", "[%zu, %zu, %zu] bf16", S, n, C);
    SPEC(SB(ln2), S * n * C2, 2, GROUP_ACTS, "acts.mlp_norm_out", "[%zu, %zu, %zu] bf16", S, n, C2);
    SPEC(SB(gate), S * n * F, 2, GROUP_ACTS, "acts.gate", "[%zu, %zu, %zu] bf16", S, n, F);
    SPEC(SB(up), S * n * F, 2, GROUP_ACTS, "acts.up", "[%zu, %zu, %zu] bf16", S, n, F);
    SPEC(SB(act), S * n * F, 2, GROUP_ACTS, "acts.swiglu", "[%zu, %zu, %zu] bf16", S, n, F);
    SPEC(SB(rstd), S * n * 2, 4, GROUP_ACTS, "acts.norm_rstd", "[%zu, 2, %zu] fp32", S, n);
    SPEC(SB(lse), S * (size_t)ps->b * H * ps->t, 4, GROUP_ACTS, "acts.attn_lse",
         "[%zu, %d, %zu, %d] fp32", S, ps->b, H, ps->t);
    SPEC(SB(xa), S * ET_PROJ_COUNT * n * R, 2, GROUP_ACTS, "acts.lora_xa",
         "[%zu, 7, %zu, %zu] bf16", S, n, R);
#undef SB
    SPEC(DST(lnf), n * C, 2, GROUP_ACTS, "acts.final_norm_out", "[%zu, %zu] bf16", n, C);
    SPEC(DST(rstdf), n, 4, GROUP_ACTS, "acts.final_norm_rstd", "[%zu] fp32", n);
    SPEC(DST(logits), CH * V, 2, GROUP_ACTS, "acts.logits_chunk (grad in place)",
         "[%zu, %zu] bf16", CH, V);
    SPEC(DST(losses), n, 4, GROUP_ACTS, "acts.token_loss", "[%zu] fp32", n);
    SPEC(DST(lse_ce), n, 4, GROUP_ACTS, "acts.logit_lse", "[%zu] fp32", n);
    SPEC(DST(dloss), n, 4, GROUP_ACTS, "batch.dloss", "[%zu] fp32", n);
    SPEC(DST(ids), n, 4, GROUP_ACTS, "batch.input_ids", "[%zu] int32", n);
    SPEC(DST(targets_d), n, 4, GROUP_ACTS, "batch.targets", "[%zu] int32", n);
    SPEC(DST(rope_cos), (size_t)ps->t * c->head_dim / 2, 4, GROUP_ACTS, "tables.rope_cos",
         "[%d, %d] fp32", ps->t, c->head_dim / 2);
    SPEC(DST(rope_sin), (size_t)ps->t * c->head_dim / 2, 4, GROUP_ACTS, "tables.rope_sin",
         "[%d, %d] fp32", ps->t, c->head_dim / 2);
    SPEC(DST(dres), n * C, 2, GROUP_ACTS, "scratch.dresidual", "[%zu, %zu] bf16", n, C);
    /* d(ln1), d(ln2) take the K-extended dxa columns after C (the wider of the two) */
    const size_t CX = C1 > C2 ? C1 : C2;
    SPEC(DST(dln), n * CX, 2, GROUP_ACTS, "scratch.dnorm", "[%zu, %zu] bf16", n, CX);
    SPEC(DST(datt), n * QD, 2, GROUP_ACTS, "scratch.dattn", "[%zu, %zu] bf16", n, QD);
    SPEC(DST(dq), n * QD, 2, GROUP_ACTS, "scratch.dq", "[%zu, %zu] bf16", n, QD);
    SPEC(DST(dk), n * KD, 2, GROUP_ACTS, "scratch.dk", "[%zu, %zu] bf16", n, KD);
    SPEC(DST(dv), n * KD, 2, GROUP_ACTS, "scratch.dv", "[%zu, %zu] bf16", n, KD);
    SPEC(DST(dact), n * F, 2, GROUP_ACTS, "scratch.dswiglu", "[%zu, %zu] bf16", n, F);
    /* three projections' dxa side by side (grouped LoRA: q, k, v) */
    SPEC(DST(dxa), n * 3 * R, 2, GROUP_ACTS, "scratch.lora_dxa", "[%zu, %zu] bf16", n, 3 * R);
    SPEC(DST(delta), (size_t)ps->b * H * ps->t, 4, GROUP_ACTS, "scratch.attn_delta",
         "[%d, %zu, %d] fp32", ps->b, H, ps->t);
    if (ps->dropout > 0) { /* no mask buffer: the kernels draw the mask again */
        SPEC(DST(xdrop), n * max_in, 2, GROUP_ACTS, "scratch.lora_dropout_in", "[%zu, %zu] bf16",
             n, max_in);
        SPEC(DST(dxdrop), n * max_in, 2, GROUP_ACTS, "scratch.lora_dropout_grad",
             "[%zu, %zu] bf16", n, max_in);
#ifdef EHRTUNE_HAVE_CUDA
        if (cm) cm->xdrop_bytes = n * max_in * 2; /* the fused dA kernel's scratch */
#endif
    }
    if (ps->attn_fp32) {
        SPEC(DST(f_q), n * QD, 4, GROUP_ACTS, "scratch.attn_fp32_q", "[%zu, %zu] fp32", n, QD);
        SPEC(DST(f_k), n * KD, 4, GROUP_ACTS, "scratch.attn_fp32_k", "[%zu, %zu] fp32", n, KD);
        SPEC(DST(f_v), n * KD, 4, GROUP_ACTS, "scratch.attn_fp32_v", "[%zu, %zu] fp32", n, KD);
        SPEC(DST(f_o), n * QD, 4, GROUP_ACTS, "scratch.attn_fp32_out", "[%zu, %zu] fp32", n, QD);
        SPEC(DST(f_g), n * QD, 4, GROUP_ACTS, "scratch.attn_fp32_dout", "[%zu, %zu] fp32", n, QD);
        SPEC(DST(f_dq), n * QD, 4, GROUP_ACTS, "scratch.attn_fp32_dq", "[%zu, %zu] fp32", n, QD);
        SPEC(DST(f_dk), n * KD, 4, GROUP_ACTS, "scratch.attn_fp32_dk", "[%zu, %zu] fp32", n, KD);
        SPEC(DST(f_dv), n * KD, 4, GROUP_ACTS, "scratch.attn_fp32_dv", "[%zu, %zu] fp32", n, KD);
    }
#undef SPEC
#undef DST
    return k;
}

static int auto_lm_chunk(int n, int vocab) {
    /* about 256 MiB of bf16 logits per chunk, in whole multiples of 64 rows */
    long rows = (256L << 20) / (2L * vocab);
    rows = rows / 64 * 64;
    if (rows < 64) rows = 64;
    return rows < n ? (int)rows : n;
}

static int64_t lora_params(const et_hf_config *c, int r, unsigned targets) {
    int64_t np = 0;
    for (int p = 0; p < ET_PROJ_COUNT; p++) {
        if (!(targets & (1u << p))) continue;
        int in, out;
        et_proj_shape(c, (et_proj)p, &in, &out);
        np += (int64_t)r * (in + out) * c->num_layers;
    }
    return np;
}

void et_cuda_model_plan(et_plan *p, const et_hf_config *c, int r, unsigned targets,
                        float lora_dropout, const et_cuda_options *o) {
    memset(p, 0, sizeof *p);
    const int n = o->b * o->t;
    /* the fp32 attention's buffers where the model will plan them: a head dim the bf16
     * kernels do not take (etc_attention_bf16_supported's rule: multiples of 16 up to
     * 128), or the fp32 kernel forced; a bf16 self-check failing at start-up cannot be
     * foreseen here */
    const int attn_fp32 = c->head_dim % 16 != 0 || c->head_dim > 128 ||
                          getenv("EHRTUNE_CUDA_ATTENTION_FP32") != NULL;
    plan_shape ps = {c, r, o->b, o->t, o->activation_checkpointing ? 1 : c->num_layers,
                     o->lm_chunk > 0 && o->lm_chunk < n ? o->lm_chunk : auto_lm_chunk(n, c->vocab_size),
                     attn_fp32, targets, lora_dropout, lora_params(c, r, targets), {0, 0}};
    et_cuda_kext_cols(r, targets, et_cuda_kext_requested(o), ps.kext_cols);
    static cuda_spec s[MAX_SPECS];
    int k = cuda_specs(s, NULL, NULL, &ps);
    for (int i = 0; i < k && p->n < ET_PLAN_MAX; i++) {
        p->item[p->n++] = (et_plan_item){s[i].name, s[i].shape, s[i].bytes};
        p->total += s[i].bytes;
    }
}

#ifdef EHRTUNE_HAVE_CUDA

/* The message for a plan that does not fit: the first tensor past the free memory. */
static int oom(et_error *err, const cuda_spec *s, int k, size_t total, size_t free_b,
               size_t reserve, size_t device_b, const et_cuda_options *o) {
    const size_t usable = free_b > reserve ? free_b - reserve : 0;
    size_t cum = 0;
    int at = k - 1;
    for (int i = 0; i < k; i++) {
        cum += s[i].bytes;
        if (cum > usable) {
            at = i;
            break;
        }
    }
    const double G = 1073741824.0;
    return et_fail(err,
                   "CUDA out of memory: the training plan needs %.2f GiB on the device "
                   "(micro-batch %d x %d tokens) but %.2f GiB of %.2f GiB are free, %.2f GiB of "
                   "them kept for cuBLASLt and the CUDA runtime; '%s' (%s, %.3f GiB) is the "
                   "first tensor that does not fit — lower run.micro_batch or data.seq_len%s "
                   "(ehrtune bench --device cuda --plan prints the whole plan)",
                   total / G, o->b, o->t, free_b / G, device_b / G, reserve / G, s[at].name,
                   s[at].shape, s[at].bytes / G,
                   o->activation_checkpointing ? "" : ", or set run.activation_checkpointing: true");
}

/* The K-extended weights' segment table (etc_kext_seg), on the device: one segment
 * per extended projection and layer. */
static int kext_segments(et_cuda_model *cm, et_error *err) {
    const et_hf_config *c = &cm->cfg;
    if (!cm->kext_cols[0] && !cm->kext_cols[1]) return 0; /* either group may be extended */
    etc_kext_seg *h = calloc((size_t)c->num_layers * ET_PROJ_COUNT, sizeof *h);
    if (!h) return et_fail(err, "out of memory");
    int k = 0;
    cm->kext_max_elems = 0;
    for (int l = 0; l < c->num_layers; l++) {
        int members[2] = {0, 0};
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            const int g = et_cuda_kext_group(p);
            if (g < 0) continue;
            int in, out;
            et_proj_shape(c, (et_proj)p, &in, &out);
            const int64_t ob = cm->off_b[l * ET_PROJ_COUNT + p];
            h[k] = (etc_kext_seg){cm->layers[l].w[p] + in, in + cm->kext_cols[g], ob, out,
                                  cm->kext_cols[g], ob >= 0 ? members[g]++ * cm->r : -1};
            if ((int64_t)out * cm->kext_cols[g] > cm->kext_max_elems)
                cm->kext_max_elems = (int64_t)out * cm->kext_cols[g];
            k++;
        }
    }
    int bad = etc_malloc((void **)&cm->kext_segs, (size_t)k * sizeof *h) ||
              etc_memcpy_h2d(cm->kext_segs, h, (size_t)k * sizeof *h);
    free(h);
    if (bad) return cuda_fail(err, "the K-extended LoRA segment table");
    cm->n_kext_segs = k;
    return 0;
}

int cuda_kext_refresh(et_cuda_model *cm) {
    if (!cm->n_kext_segs) return 0;
    return etc_lora_kext_weights_bf16(cm->kext_segs, cm->n_kext_segs, cm->kext_max_elems,
                                      cm->params, cm->r, cm->lora_scale);
}

int cuda_model_alloc(et_cuda_model *cm, et_error *err) {
    const et_hf_config *c = &cm->cfg;
    const int n = cm->opt.b * cm->opt.t;
    cm->n_slots = cm->opt.activation_checkpointing ? 1 : c->num_layers;
    cm->lm_chunk = cm->opt.lm_chunk > 0 && cm->opt.lm_chunk < n ? cm->opt.lm_chunk
                                                                 : auto_lm_chunk(n, c->vocab_size);
    et_cuda_kext_cols(cm->r, cm->targets, cm->opt.lora_kext, cm->kext_cols);
    plan_shape ps = {c, cm->r, cm->opt.b, cm->opt.t, cm->n_slots, cm->lm_chunk, cm->attn_fp32,
                     cm->targets, cm->dropout, cm->n_params, {cm->kext_cols[0], cm->kext_cols[1]}};
    cuda_spec s[MAX_SPECS];
    slot_bases sb;
    int k = cuda_specs(s, cm, &sb, &ps);
    size_t total = 0, group_bytes[3] = {0, 0, 0};
    for (int i = 0; i < k; i++) total += s[i].bytes, group_bytes[s[i].group] += s[i].bytes;
    size_t free_b = 0, device_b = 0;
    if (etc_mem_info(&free_b, &device_b)) return cuda_fail(err, "querying device memory");
    /* cuBLASLt's 32 MiB workspace and the runtime's own growth need room too */
    const size_t reserve = (size_t)96 << 20;
    if (total + reserve > free_b) return oom(err, s, k, total, free_b, reserve, device_b, &cm->opt);
    void **blocks[3] = {&cm->wblock, &cm->lblock, &cm->ablock};
    size_t *sizes[3] = {&cm->wbytes, &cm->lbytes, &cm->abytes};
    for (int g = 0; g < 3; g++) {
        if (etc_malloc(blocks[g], group_bytes[g])) {
            etc_mem_info(&free_b, &device_b);
            cuda_model_release(cm);
            return oom(err, s, k, total, free_b, reserve, device_b, &cm->opt);
        }
        *sizes[g] = group_bytes[g];
    }
    size_t off[3] = {0, 0, 0};
    for (int i = 0; i < k; i++) {
        const int g = s[i].group;
        if (s[i].ptr) *s[i].ptr = (char *)*blocks[g] + off[g];
        off[g] += s[i].bytes;
    }
    weight_bytes(c, cm->kext_cols, cm, cm->wblock);
    /* Slots: each saved field is one [n_slots, ...] tensor of the table. */
    const size_t C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    const size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    const size_t nn = (size_t)n, nlse = (size_t)cm->opt.b * c->num_heads * cm->opt.t;
    for (size_t sl = 0; sl < (size_t)cm->n_slots; sl++) {
        cuda_slot *S = &cm->slots[sl];
        S->ln1 = (etc_bf16 *)sb.ln1 + sl * nn * (C + (size_t)cm->kext_cols[0]);
        S->ln2 = (etc_bf16 *)sb.ln2 + sl * nn * (C + (size_t)cm->kext_cols[1]);
        S->act = (etc_bf16 *)sb.act + sl * nn * F;
        S->q = (etc_bf16 *)sb.q + sl * nn * QD;
        S->k = (etc_bf16 *)sb.k + sl * nn * KD;
        S->v = (etc_bf16 *)sb.v + sl * nn * KD;
        S->att = (etc_bf16 *)sb.att + sl * nn * QD;
        S->h = (etc_bf16 *)sb.h + sl * nn * C;
        S->gate = (etc_bf16 *)sb.gate + sl * nn * F;
        S->up = (etc_bf16 *)sb.up + sl * nn * F;
        S->rstd1 = (float *)sb.rstd + sl * nn * 2;
        S->rstd2 = S->rstd1 + nn;
        S->lse = (float *)sb.lse + sl * nlse;
        for (int p = 0; p < ET_PROJ_COUNT; p++)
            S->xa[p] = (etc_bf16 *)sb.xa + (sl * ET_PROJ_COUNT + p) * nn * cm->r;
    }
    return kext_segments(cm, err);
}

void cuda_model_release(et_cuda_model *cm) {
    etc_free(cm->kext_segs);
    cm->kext_segs = NULL;
    cm->n_kext_segs = 0;
    etc_free(cm->wblock);
    etc_free(cm->lblock);
    etc_free(cm->ablock);
    cm->wblock = cm->lblock = cm->ablock = NULL;
}

#endif
