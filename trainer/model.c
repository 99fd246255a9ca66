/* Llama-family forward and backward: flat lists of op calls (kernels/ops.h).
 *
 * Decoder layer (HF): h = x + o_proj(attn(rope(q,k), v)) with q,k,v from
 * rmsnorm(x); out = h + down(silu(gate(rmsnorm(h))) * up(rmsnorm(h))).
 * Each projection p computes W_p·x (+ bias) + scale·B_p·A_p·dropout_p(x) when
 * LoRA targets it. Backward runs the same calls in reverse. */
#include <math.h>
#include <string.h>

#include "kernels/ops.h"
#include "trainer/model.h"
#include "trainer/model_internal.h"

/* Per-layer slices of the [L, ...] activation blocks. */
typedef struct {
    float *x, *xout, *ln1, *rstd1, *q, *k, *v, *att, *lse, *h, *ln2, *rstd2, *gate, *up, *act;
    float *xa[ET_PROJ_COUNT];
} layer_acts;

static layer_acts slice(const et_acts *a, const et_hf_config *c, int l) {
    size_t n = (size_t)a->b * a->t, C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    layer_acts s;
    s.x = a->x + (size_t)l * n * C;
    s.xout = a->x + (size_t)(l + 1) * n * C;
    s.ln1 = a->ln1 + (size_t)l * n * C;
    s.rstd1 = a->rstd1 + (size_t)l * n;
    s.q = a->q + (size_t)l * n * QD;
    s.k = a->k + (size_t)l * n * KD;
    s.v = a->v + (size_t)l * n * KD;
    s.att = a->att + (size_t)l * n * QD;
    s.lse = a->lse + (size_t)l * a->b * c->num_heads * a->t;
    s.h = a->h + (size_t)l * n * C;
    s.ln2 = a->ln2 + (size_t)l * n * C;
    s.rstd2 = a->rstd2 + (size_t)l * n;
    s.gate = a->gate + (size_t)l * n * F;
    s.up = a->up + (size_t)l * n * F;
    s.act = a->act + (size_t)l * n * F;
    for (int p = 0; p < ET_PROJ_COUNT; p++)
        s.xa[p] = a->xa + ((size_t)l * ET_PROJ_COUNT + p) * n * a->r;
    return s;
}

/* Dropout masks are a pure function of (seed, step, layer, projection), so the
 * backward pass regenerates them instead of storing them. */
static uint64_t dropout_offset(uint64_t step, int layer, int p, int num_layers) {
    return (((step * (uint64_t)num_layers + (uint64_t)layer) * ET_PROJ_COUNT + (uint64_t)p)) << 36;
}

typedef struct {
    const et_model *m;
    const et_lora *l;
    et_acts *a;
    int n;            /* rows = b*t */
    int train;
    uint64_t seed, step;
    int t;            /* tokens per batch row */
    float *pe_grads;  /* per-example LoRA gradients [b, n_params], or NULL */
} pass_ctx;

/* y = x·Wᵀ + b (+ scale·(drop(x)·Aᵀ)·Bᵀ). */
static void proj_forward(const pass_ctx *ctx, int layer, et_proj p, float *y, const float *x,
                         float *xa) {
    const et_layer_weights *w = &ctx->m->layers[layer];
    const et_lora_slot *s = ctx->l ? et_lora_slot_at(ctx->l, layer, p) : NULL;
    int in, out;
    et_proj_shape(&ctx->m->cfg, p, &in, &out);
    et_linear_forward(y, x, w->w[p], w->bias[p], ctx->n, in, out);
    if (!s || !s->a) return;
    const float *lx = x;
    if (ctx->train && ctx->l->dropout > 0) {
        et_dropout_forward(ctx->a->xdrop, (uint8_t *)ctx->a->keep, x,
                           ctx->l->dropout, ctx->seed,
                           dropout_offset(ctx->step, layer, p, ctx->m->cfg.num_layers),
                           (int64_t)ctx->n * in);
        lx = ctx->a->xdrop;
    }
    et_lora_forward(y, xa, lx, s->a, s->b, ctx->l->scale, ctx->n, in, ctx->l->r, out);
}

/* LoRA backward for rows [r0, r0+rows) with gradients into (da, db). With dropout
 * the input is regenerated and the gradient routed back through the same mask. */
static void lora_rows_backward(const pass_ctx *ctx, const et_lora *lora, const et_lora_slot *s,
                               float *da, float *db, int layer, et_proj p, float *dx,
                               const float *dy, const float *x, const float *xa, int r0, int rows) {
    et_acts *a = ctx->a;
    int in = s->in, out = s->out;
    size_t xo = (size_t)r0 * in, yo = (size_t)r0 * out, ao = (size_t)r0 * lora->r;
    if (!(ctx->train && lora->dropout > 0)) {
        et_lora_backward(dx + xo, da, db, a->dxa, dy + yo, x + xo, xa + ao, s->a, s->b,
                         lora->scale, rows, in, lora->r, out);
        return;
    }
    /* Regenerate this projection's dropout mask (a pure function of seed/step/layer/
     * projection and element index) rather than storing one mask per projection. */
    int64_t cnt = (int64_t)rows * in;
    uint8_t *keep = (uint8_t *)a->keep;
    et_dropout_forward(a->xdrop, keep, x + xo, lora->dropout, ctx->seed,
                       dropout_offset(ctx->step, layer, p, ctx->m->cfg.num_layers) + xo, cnt);
    memset(a->dxdrop, 0, sizeof(float) * (size_t)cnt);
    et_lora_backward(a->dxdrop, da, db, a->dxa, dy + yo, a->xdrop, xa + ao, s->a, s->b,
                     lora->scale, rows, in, lora->r, out);
    et_dropout_backward(dx + xo, a->dxdrop, keep, lora->dropout, cnt);
}

/* dx += d(y)/dx · dy through the frozen weight and the LoRA path; LoRA grads +=
 * (into l->grads, or per example into ctx->pe_grads). */
static void proj_backward(const pass_ctx *ctx, et_lora *lora, int layer, et_proj p, float *dx,
                          const float *dy, const float *x, const float *xa) {
    const et_layer_weights *w = &ctx->m->layers[layer];
    int in, out;
    et_proj_shape(&ctx->m->cfg, p, &in, &out);
    et_linear_backward(dx, NULL, NULL, dy, x, w->w[p], ctx->n, in, out);
    et_lora_slot *s = lora ? et_lora_slot_at(lora, layer, p) : NULL;
    if (!s || !s->a) return;
    if (!ctx->pe_grads) {
        lora_rows_backward(ctx, lora, s, s->da, s->db, layer, p, dx, dy, x, xa, 0, ctx->n);
        return;
    }
    /* One GEMM slice per example: example e owns rows [e*t, (e+1)*t). */
    size_t off_a = (size_t)(s->da - lora->grads), off_b = (size_t)(s->db - lora->grads);
    for (int e = 0; e < ctx->n / ctx->t; e++) {
        float *g = ctx->pe_grads + (size_t)e * (size_t)lora->n_params;
        lora_rows_backward(ctx, lora, s, g + off_a, g + off_b, layer, p, dx, dy, x, xa,
                           e * ctx->t, ctx->t);
    }
}

int et_model_forward(const et_model *m, const et_lora *l, et_acts *a, const et_batch *batch,
                     int train, uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                     int64_t *n_valid, et_error *err) {
    const et_hf_config *c = &m->cfg;
    if (batch->b > a->b || batch->t > a->t)
        return et_fail(err, "batch %d x %d exceeds the planned %d x %d", batch->b, batch->t,
                       a->b, a->t);
    if (batch->t != a->t)
        return et_fail(err, "batch length %d differs from the planned sequence length %d",
                       batch->t, a->t);
    int n = batch->b * batch->t, C = c->hidden_size;
    for (int i = 0; i < n; i++)
        if (batch->input_ids[i] < 0 || batch->input_ids[i] >= c->vocab_size)
            return et_fail(err, "token id at row %d position %d is outside the vocabulary "
                                "(size %d) — corpus tokenized for a different model?",
                           i / batch->t, i % batch->t, c->vocab_size);
    pass_ctx ctx = {m, l, a, n, train, dropout_seed, dropout_step, batch->t, NULL};
    a->train_flag = train;
    a->seed = dropout_seed;
    a->step = dropout_step;
    int b = batch->b, t = batch->t, hq = c->num_heads, hkv = c->num_kv_heads, d = c->head_dim;

    et_embedding_forward(a->x, batch->input_ids, m->embed, n, C);
    for (int layer = 0; layer < c->num_layers; layer++) {
        layer_acts s = slice(a, c, layer);
        const et_layer_weights *w = &m->layers[layer];
        et_rmsnorm_forward(s.ln1, s.rstd1, s.x, w->attn_norm, n, C, c->rms_norm_eps);
        proj_forward(&ctx, layer, ET_PROJ_Q, s.q, s.ln1, s.xa[ET_PROJ_Q]);
        proj_forward(&ctx, layer, ET_PROJ_K, s.k, s.ln1, s.xa[ET_PROJ_K]);
        proj_forward(&ctx, layer, ET_PROJ_V, s.v, s.ln1, s.xa[ET_PROJ_V]);
        et_rope_forward(s.q, s.q, a->rope_cos, a->rope_sin, b, t, hq, d);
        et_rope_forward(s.k, s.k, a->rope_cos, a->rope_sin, b, t, hkv, d);
        et_attention_forward(s.att, s.lse, s.q, s.k, s.v, b, t, hq, hkv, d, et_hf_layer_window(c, layer));
        proj_forward(&ctx, layer, ET_PROJ_O, s.h, s.att, s.xa[ET_PROJ_O]);
        et_add_forward(s.h, s.h, s.x, (int64_t)n * C);
        et_rmsnorm_forward(s.ln2, s.rstd2, s.h, w->mlp_norm, n, C, c->rms_norm_eps);
        proj_forward(&ctx, layer, ET_PROJ_GATE, s.gate, s.ln2, s.xa[ET_PROJ_GATE]);
        proj_forward(&ctx, layer, ET_PROJ_UP, s.up, s.ln2, s.xa[ET_PROJ_UP]);
        et_swiglu_forward(s.act, s.gate, s.up, (int64_t)n * c->intermediate_size);
        proj_forward(&ctx, layer, ET_PROJ_DOWN, s.xout, s.act, s.xa[ET_PROJ_DOWN]);
        et_add_forward(s.xout, s.xout, s.h, (int64_t)n * C);
    }
    /* the last layer's output: its slot is laid out for the planned batch (slice), which
     * a partial micro-batch (n < a->b · a->t) must not shift */
    const float *xl = slice(a, c, c->num_layers - 1).xout;
    et_rmsnorm_forward(a->lnf, a->rstdf, xl, m->final_norm, n, C, c->rms_norm_eps);
    et_linear_forward(a->logits, a->lnf, m->lm_head, NULL, n, C, c->vocab_size);
    et_cross_entropy_forward(a->losses, a->lse_ce, a->logits, batch->targets, n, c->vocab_size);
    double sum = 0;
    int64_t valid = 0;
    for (int i = 0; i < n; i++)
        if (batch->targets[i] >= 0) {
            sum += a->losses[i];
            valid++;
        }
    *loss_sum = sum;
    *n_valid = valid;
    return 0;
}

static void backward(const et_model *m, et_lora *l, et_acts *a, const et_batch *batch,
                     float loss_scale, float *pe_grads) {
    const et_hf_config *c = &m->cfg;
    int n = batch->b * batch->t, C = c->hidden_size, F = c->intermediate_size;
    int b = batch->b, t = batch->t, hq = c->num_heads, hkv = c->num_kv_heads, d = c->head_dim;
    size_t QD = (size_t)hq * d, KD = (size_t)hkv * d;
    /* The forward's train flag decides dropout; backward must see the same masks. The
     * trainer always pairs forward(train=1) with backward, eval forwards never call it. */
    pass_ctx ctx = {m,       l,       a,         n, l && l->dropout > 0 ? a->train_flag : 0,
                    a->seed, a->step, batch->t, pe_grads};

    for (int i = 0; i < n; i++)
        a->dloss[i] = loss_scale * (batch->row_loss_scale ? batch->row_loss_scale[i / t] : 1.0f);
    memset(a->dlogits, 0, sizeof(float) * (size_t)n * c->vocab_size);
    et_cross_entropy_backward(a->dlogits, a->logits, a->lse_ce, batch->targets, a->dloss, n,
                              c->vocab_size);
    memset(a->dln, 0, sizeof(float) * (size_t)n * C);
    et_linear_backward(a->dln, NULL, NULL, a->dlogits, a->lnf, m->lm_head, n, C, c->vocab_size);
    memset(a->dres, 0, sizeof(float) * (size_t)n * C);
    const float *xl = slice(a, c, c->num_layers - 1).xout; /* as in the forward */
    et_rmsnorm_backward(a->dres, NULL, a->dln, xl, m->final_norm, a->rstdf, n, C);

    for (int layer = c->num_layers - 1; layer >= 0; layer--) {
        layer_acts s = slice(a, c, layer);
        const et_layer_weights *w = &m->layers[layer];
        /* MLP: dres holds d(out); the residual passes it straight to d(h). */
        memset(a->dact, 0, sizeof(float) * (size_t)n * F);
        proj_backward(&ctx, l, layer, ET_PROJ_DOWN, a->dact, a->dres, s.act, s.xa[ET_PROJ_DOWN]);
        memset(a->dgate, 0, sizeof(float) * (size_t)n * F);
        memset(a->dup, 0, sizeof(float) * (size_t)n * F);
        et_swiglu_backward(a->dgate, a->dup, a->dact, s.gate, s.up, (int64_t)n * F);
        memset(a->dln, 0, sizeof(float) * (size_t)n * C);
        proj_backward(&ctx, l, layer, ET_PROJ_GATE, a->dln, a->dgate, s.ln2, s.xa[ET_PROJ_GATE]);
        proj_backward(&ctx, l, layer, ET_PROJ_UP, a->dln, a->dup, s.ln2, s.xa[ET_PROJ_UP]);
        et_rmsnorm_backward(a->dres, NULL, a->dln, s.h, w->mlp_norm, s.rstd2, n, C);
        /* Attention: dres now holds d(h); the residual passes it to d(x). */
        memset(a->datt, 0, sizeof(float) * (size_t)n * QD);
        proj_backward(&ctx, l, layer, ET_PROJ_O, a->datt, a->dres, s.att, s.xa[ET_PROJ_O]);
        memset(a->dq, 0, sizeof(float) * (size_t)n * QD);
        memset(a->dk, 0, sizeof(float) * (size_t)n * KD);
        memset(a->dv, 0, sizeof(float) * (size_t)n * KD);
        et_attention_backward(a->dq, a->dk, a->dv, a->datt, s.q, s.k, s.v, s.att, s.lse, b, t, hq,
                              hkv, d, et_hf_layer_window(c, layer));
        memset(a->dq2, 0, sizeof(float) * (size_t)n * QD);
        memset(a->dk2, 0, sizeof(float) * (size_t)n * KD);
        et_rope_backward(a->dq2, a->dq, a->rope_cos, a->rope_sin, b, t, hq, d);
        et_rope_backward(a->dk2, a->dk, a->rope_cos, a->rope_sin, b, t, hkv, d);
        memset(a->dln, 0, sizeof(float) * (size_t)n * C);
        proj_backward(&ctx, l, layer, ET_PROJ_Q, a->dln, a->dq2, s.ln1, s.xa[ET_PROJ_Q]);
        proj_backward(&ctx, l, layer, ET_PROJ_K, a->dln, a->dk2, s.ln1, s.xa[ET_PROJ_K]);
        proj_backward(&ctx, l, layer, ET_PROJ_V, a->dln, a->dv, s.ln1, s.xa[ET_PROJ_V]);
        et_rmsnorm_backward(a->dres, NULL, a->dln, s.x, w->attn_norm, s.rstd1, n, C);
    }
}

void et_model_backward(const et_model *m, et_lora *l, et_acts *a, const et_batch *batch,
                       float loss_scale) {
    backward(m, l, a, batch, loss_scale, NULL);
}

void et_model_backward_per_example(const et_model *m, et_lora *l, et_acts *a,
                                   const et_batch *batch, float loss_scale, float *pe_grads) {
    backward(m, l, a, batch, loss_scale, pe_grads);
}
