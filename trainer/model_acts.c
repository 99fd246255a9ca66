/* Activation memory: one planned allocation carved into named tensors.
 *
 * The same table (acts_specs) drives both `ehrtune inspect --plan` and the real
 * allocation, so the plan printed is the memory used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/model.h"
#include "trainer/model_internal.h"

typedef struct {
    float **ptr;       /* where to store the carved pointer (NULL when only planning) */
    size_t floats;
    const char *name;
    char shape[48];
} acts_spec;

/* Enumerates every activation/scratch tensor of a training step for batches of b
 * rows × t tokens. Returns the number of specs written. */
static int acts_specs(acts_spec *s, et_acts *a, const et_hf_config *c, int r, unsigned targets,
                      float dropout, int b, int t) {
    size_t n = (size_t)b * t, C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t L = (size_t)c->num_layers, V = (size_t)c->vocab_size;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t H = (size_t)c->num_heads;
    int n_lora = 0;
    for (int p = 0; p < ET_PROJ_COUNT; p++) n_lora += (targets >> p) & 1;
    size_t max_in = C > F ? C : F;
    if (QD > max_in) max_in = QD;
    int k = 0;
#define SPEC(field, count, nm, ...)                                           \
    do {                                                                      \
        s[k].ptr = a ? &a->field : NULL;                                      \
        s[k].floats = (count);                                                \
        s[k].name = (nm);                                                     \
        snprintf(s[k].shape, sizeof s[k].shape, __VA_ARGS__);                 \
        k++;                                                                  \
    } while (0)
    SPEC(x, (L + 1) * n * C, "acts.residual", "[%zu+1, %zu, %zu]", L, n, C);
    SPEC(ln1, L * n * C, "acts.attn_norm_out", "[%zu, %zu, %zu]", L, n, C);
    SPEC(rstd1, L * n, "acts.attn_norm_rstd", "[%zu, %zu]", L, n);
    SPEC(q, L * n * QD, "acts.q", "[%zu, %zu, %zu]", L, n, QD);
    SPEC(k, L * n * KD, "acts.k", "[%zu, %zu, %zu]", L, n, KD);
    SPEC(v, L * n * KD, "acts.v", "[%zu, %zu, %zu]", L, n, KD);
    SPEC(att, L * n * QD, "acts.attn_out", "[%zu, %zu, %zu]", L, n, QD);
    SPEC(lse, L * (size_t)b * H * t, "acts.attn_lse", "[%zu, %d, %zu, %d]", L, b, H, t);
    SPEC(h, L * n * C, "acts.attn_residual", "[%zu, %zu, %zu]", L, n, C);
    SPEC(ln2, L * n * C, "acts.mlp_norm_out", "[%zu, %zu, %zu]", L, n, C);
    SPEC(rstd2, L * n, "acts.mlp_norm_rstd", "[%zu, %zu]", L, n);
    SPEC(gate, L * n * F, "acts.gate", "[%zu, %zu, %zu]", L, n, F);
    SPEC(up, L * n * F, "acts.up", "[%zu, %zu, %zu]", L, n, F);
    SPEC(act, L * n * F, "acts.swiglu", "[%zu, %zu, %zu]", L, n, F);
    SPEC(xa, L * ET_PROJ_COUNT * n * (size_t)r, "acts.lora_xa", "[%zu, %d of 7, %zu, %d]", L,
         n_lora, n, r);
    SPEC(lnf, n * C, "acts.final_norm_out", "[%zu, %zu]", n, C);
    SPEC(rstdf, n, "acts.final_norm_rstd", "[%zu]", n);
    SPEC(logits, n * V, "acts.logits", "[%zu, %zu]", n, V);
    SPEC(losses, n, "acts.token_loss", "[%zu]", n);
    SPEC(lse_ce, n, "acts.logit_lse", "[%zu]", n);
    SPEC(dlogits, n * V, "scratch.dlogits", "[%zu, %zu]", n, V);
    SPEC(dres, n * C, "scratch.dresidual", "[%zu, %zu]", n, C);
    SPEC(dln, n * C, "scratch.dnorm", "[%zu, %zu]", n, C);
    SPEC(dq, n * QD, "scratch.dq", "[%zu, %zu]", n, QD);
    SPEC(dq2, n * QD, "scratch.dq_prerope", "[%zu, %zu]", n, QD);
    SPEC(dk, n * KD, "scratch.dk", "[%zu, %zu]", n, KD);
    SPEC(dk2, n * KD, "scratch.dk_prerope", "[%zu, %zu]", n, KD);
    SPEC(dv, n * KD, "scratch.dv", "[%zu, %zu]", n, KD);
    SPEC(datt, n * QD, "scratch.dattn", "[%zu, %zu]", n, QD);
    SPEC(dgate, n * F, "scratch.dgate", "[%zu, %zu]", n, F);
    SPEC(dup, n * F, "scratch.dup", "[%zu, %zu]", n, F);
    SPEC(dact, n * F, "scratch.dswiglu", "[%zu, %zu]", n, F);
    SPEC(dxa, n * (size_t)r, "scratch.lora_dxa", "[%zu, %d]", n, r);
    SPEC(xdrop, dropout > 0 ? n * max_in : 0, "scratch.lora_dropout_in", "[%zu, %zu]", n, max_in);
    SPEC(dxdrop, dropout > 0 ? n * max_in : 0, "scratch.lora_dropout_grad", "[%zu, %zu]", n,
         max_in);
    SPEC(keep, dropout > 0 ? (n * max_in + 3) / 4 : 0, "scratch.lora_dropout_mask",
         "[%zu, %zu] bytes", n, max_in);
    SPEC(rope_cos, (size_t)t * c->head_dim / 2, "tables.rope_cos", "[%d, %d]", t, c->head_dim / 2);
    SPEC(rope_sin, (size_t)t * c->head_dim / 2, "tables.rope_sin", "[%d, %d]", t, c->head_dim / 2);
    SPEC(dloss, n, "scratch.dloss", "[%zu]", n);
#undef SPEC
    return k;
}

#define MAX_SPECS 48

void et_model_plan(et_plan *p, const et_hf_config *c, int b, int t, int r, unsigned targets,
                   float lora_dropout) {
    memset(p, 0, sizeof *p);
    size_t C = (size_t)c->hidden_size, V = (size_t)c->vocab_size, F = (size_t)c->intermediate_size;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t per_layer = 2 * C + QD * C * 2 + KD * C * 2 + 3 * F * C;
    size_t base = V * C * (c->tie_word_embeddings ? 1 : 2) + C + per_layer * c->num_layers;
    static char base_shape[64], lora_shape[64];
    snprintf(base_shape, sizeof base_shape, "%zu fp32 values", base);
    p->item[p->n++] = (et_plan_item){"weights.base (frozen)", base_shape, base * 4};
    size_t lora = 0;
    for (int q = 0; q < ET_PROJ_COUNT; q++) {
        if (!(targets & (1u << q))) continue;
        int in, out;
        et_proj_shape(c, (et_proj)q, &in, &out);
        lora += (size_t)r * ((size_t)in + out) * c->num_layers;
    }
    snprintf(lora_shape, sizeof lora_shape, "%zu fp32 values", lora);
    p->item[p->n++] = (et_plan_item){"weights.lora", lora_shape, lora * 4};
    p->item[p->n++] = (et_plan_item){"grads.lora", lora_shape, lora * 4};
    p->item[p->n++] = (et_plan_item){"optim.adamw_m", lora_shape, lora * 4};
    p->item[p->n++] = (et_plan_item){"optim.adamw_v", lora_shape, lora * 4};
    acts_spec s[MAX_SPECS];
    int k = acts_specs(s, NULL, c, r, targets, lora_dropout, b, t);
    static char shapes[MAX_SPECS][48];
    for (int i = 0; i < k && p->n < ET_PLAN_MAX; i++) {
        memcpy(shapes[i], s[i].shape, sizeof shapes[i]);
        p->item[p->n++] = (et_plan_item){s[i].name, shapes[i], s[i].floats * 4};
    }
    for (int i = 0; i < p->n; i++) p->total += p->item[i].bytes;
}

int et_acts_create(et_acts **out, const et_hf_config *c, const et_lora *l, int b, int t,
                   et_error *err) {
    et_acts *a = calloc(1, sizeof *a);
    if (!a) return et_fail(err, "out of memory");
    a->b = b;
    a->t = t;
    a->r = l ? l->r : 1;
    acts_spec s[MAX_SPECS];
    int k = acts_specs(s, a, c, a->r, l ? l->targets : 0, l ? l->dropout : 0.0f, b, t);
    size_t total = 0;
    for (int i = 0; i < k; i++) total += (s[i].floats + 15) & ~(size_t)15; /* 64-byte aligned */
    a->block = aligned_alloc(64, total * sizeof(float));
    if (!a->block) {
        free(a);
        return et_fail(err, "out of memory: activations for batch %d x %d tokens need %.1f MiB "
                            "(lower run.micro_batch or data.seq_len)",
                       b, t, total * 4.0 / (1 << 20));
    }
    memset(a->block, 0, total * sizeof(float));
    a->bytes = total * sizeof(float);
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        *s[i].ptr = s[i].floats ? a->block + off : NULL;
        off += (s[i].floats + 15) & ~(size_t)15;
    }
    et_rope_tables(a->rope_cos, a->rope_sin, &c->rope, t, c->head_dim);
    *out = a;
    return 0;
}

void et_acts_free(et_acts *a) {
    if (!a) return;
    free(a->block);
    free(a);
}

size_t et_acts_bytes(const et_acts *a) { return a->bytes; }
const float *et_acts_logits(const et_acts *a) { return a->logits; }
