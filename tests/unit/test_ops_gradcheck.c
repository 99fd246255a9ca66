/* Finite-difference check of every backward op in kernels/ops.h.
 *
 * Method: for fixed random weights R, the scalar loss L = Σ out·R is computed in
 * double from the fp32 forward. The analytic gradient is what backward (called
 * with dout = R) adds to a gradient buffer; the numeric one is the central
 * difference (L(x+h) − L(x−h)) / (x+h − x−h), where x±h are the fp32 values
 * actually stored, so the rounding of the step does not bias the quotient. With
 * h = 1e-2 both the truncation error (h² terms) and the fp32 noise of L divided
 * by 2h stay small: the observed norm-wise relative errors are 1e-7 to 5e-5.
 * GRAD_TOL = 1e-3 leaves a 20× margin and is still far below the O(1) error of a
 * wrong formula (a missing scale, transposed index or dropped term).
 *
 * Every gradient buffer starts with random values and backward runs twice, which
 * checks the accumulate contract: after one call the buffer moved by g, after two
 * by 2g. scratch_* buffers start as NaN, which checks that they are overwritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/ops.h"

#define STEP 1e-2
#define GRAD_TOL 1e-3
#define ACCUM_TOL 1e-5

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t rng_state = 0x13198A2E03707344ull;
static double rand_uniform(void) { /* splitmix64 → [0, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}
static float *rand_floats(int64_t n, double lo, double hi) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rand_uniform());
    return x;
}
static float *copy_floats(const float *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof(float));
    assert_non_null(y);
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}
static double weighted_sum(const float *out, const float *r, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

/* A gradient buffer under test: random start values, and snapshots after the
 * first backward call. */
typedef struct {
    float *g;      /* what backward accumulates into */
    float *before; /* start values */
    float *once;   /* after one backward call */
    int64_t n;
} grad_buf;

static grad_buf grad_new(int64_t n) {
    grad_buf b = {.n = n};
    b.before = rand_floats(n, -1, 1);
    b.g = copy_floats(b.before, n);
    return b;
}
static void grad_snapshot(grad_buf *b) { b->once = copy_floats(b->g, b->n); }
static void grad_free(grad_buf *b) { free(b->g), free(b->before), free(b->once); }

typedef double (*loss_fn)(void *ctx);

/* Numeric vs analytic (once − before) gradient of loss() with respect to param. */
static void gradcheck(const char *what, float *param, const grad_buf *b, loss_fn loss, void *ctx) {
    double err2 = 0.0, ana2 = 0.0;
    for (int64_t i = 0; i < b->n; i++) {
        const float x0 = param[i];
        const float xp = (float)(x0 + STEP), xm = (float)(x0 - STEP);
        param[i] = xp;
        double lp = loss(ctx);
        param[i] = xm;
        double lm = loss(ctx);
        param[i] = x0;
        double numeric = (lp - lm) / ((double)xp - (double)xm);
        double analytic = (double)b->once[i] - b->before[i];
        err2 += (numeric - analytic) * (numeric - analytic);
        ana2 += analytic * analytic;
    }
    double rel = sqrt(err2) / sqrt(ana2);
    printf("  gradcheck %-34s rel err %.2e over %lld entries\n", what, rel, (long long)b->n);
    if (!(ana2 > 0.0)) fail_msg("%s: analytic gradient is all zero", what);
    if (!(rel < GRAD_TOL)) fail_msg("%s: relative error %.3g >= %.3g", what, rel, GRAD_TOL);
}

/* After the second backward call the buffer moved by twice the first step. */
static void check_accumulates(const char *what, const grad_buf *b) {
    double err2 = 0.0, ref2 = 0.0;
    for (int64_t i = 0; i < b->n; i++) {
        double step1 = (double)b->once[i] - b->before[i];
        double step2 = (double)b->g[i] - b->before[i];
        err2 += (step2 - 2 * step1) * (step2 - 2 * step1);
        ref2 += 4 * step1 * step1;
    }
    if (!(sqrt(err2) <= ACCUM_TOL * sqrt(ref2)))
        fail_msg("%s: second backward call did not accumulate (+=): error %.3g of %.3g", what,
                 sqrt(err2), sqrt(ref2));
}

/* Runs backward twice around snapshots of every buffer in bufs. */
#define TWICE(bufs, nbufs, call)                                        \
    do {                                                                \
        call;                                                           \
        for (int b_ = 0; b_ < (nbufs); b_++) grad_snapshot(&(bufs)[b_]); \
        call;                                                           \
    } while (0)

/* ---- embedding ------------------------------------------------------------------ */

typedef struct {
    float *out, *table, *r;
    const int32_t *ids;
    int n, dim;
} embedding_ctx;
static double embedding_loss(void *p) {
    embedding_ctx *c = p;
    et_embedding_forward(c->out, c->ids, c->table, c->n, c->dim);
    return weighted_sum(c->out, c->r, (int64_t)c->n * c->dim);
}
static void embedding_backward_is_gradient(void **state) {
    (void)state;
    const int vocab = 6, dim = 5, n = 10;
    static const int32_t ids[] = {1, 4, 4, 0, 5, 1, 1, 2, 4, 0}; /* repeats; id 3 unused */
    embedding_ctx c = {.out = rand_floats(n * dim, 0, 1), .table = rand_floats(vocab * dim, -1, 1),
                       .r = rand_floats(n * dim, -1, 1), .ids = ids, .n = n, .dim = dim};
    grad_buf g[1] = {grad_new(vocab * dim)};
    TWICE(g, 1, et_embedding_backward(g[0].g, c.r, ids, n, dim));
    check_accumulates("embedding dtable", &g[0]);
    gradcheck("embedding dtable", c.table, &g[0], embedding_loss, &c);
    for (int j = 0; j < dim; j++) assert_true(g[0].g[3 * dim + j] == g[0].before[3 * dim + j]);
    grad_free(&g[0]);
    free(c.out), free(c.table), free(c.r);
}

/* ---- RMSNorm ---------------------------------------------------------------------- */

typedef struct {
    float *out, *rstd, *x, *w, *r;
    int n, dim;
} rmsnorm_ctx;
static double rmsnorm_loss(void *p) {
    rmsnorm_ctx *c = p;
    et_rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->n, c->dim, 1e-5f);
    return weighted_sum(c->out, c->r, (int64_t)c->n * c->dim);
}
static void rmsnorm_backward_is_gradient(void **state) {
    (void)state;
    const int n = 4, dim = 11;
    rmsnorm_ctx c = {.out = rand_floats(n * dim, 0, 1), .rstd = rand_floats(n, 0, 1),
                     .x = rand_floats(n * dim, -2, 2), .w = rand_floats(dim, 0.5, 1.5),
                     .r = rand_floats(n * dim, -1, 1), .n = n, .dim = dim};
    rmsnorm_loss(&c); /* saves rstd */
    grad_buf g[2] = {grad_new(n * dim), grad_new(dim)};
    TWICE(g, 2, et_rmsnorm_backward(g[0].g, g[1].g, c.r, c.x, c.w, c.rstd, n, dim));
    check_accumulates("rmsnorm dx", &g[0]);
    check_accumulates("rmsnorm dweight", &g[1]);
    gradcheck("rmsnorm dx", c.x, &g[0], rmsnorm_loss, &c);
    gradcheck("rmsnorm dweight", c.w, &g[1], rmsnorm_loss, &c);
    grad_free(&g[0]), grad_free(&g[1]);
    free(c.out), free(c.rstd), free(c.x), free(c.w), free(c.r);
}

/* ---- linear ------------------------------------------------------------------------ */

typedef struct {
    float *out, *x, *w, *bias, *r;
    int n, in, outd;
} linear_ctx;
static double linear_loss(void *p) {
    linear_ctx *c = p;
    et_linear_forward(c->out, c->x, c->w, c->bias, c->n, c->in, c->outd);
    return weighted_sum(c->out, c->r, (int64_t)c->n * c->outd);
}
static void linear_backward_is_gradient(void **state) {
    (void)state;
    const int n = 5, in = 7, outd = 6;
    linear_ctx c = {.out = rand_floats(n * outd, 0, 1), .x = rand_floats(n * in, -1, 1),
                    .w = rand_floats(outd * in, -1, 1), .bias = rand_floats(outd, -1, 1),
                    .r = rand_floats(n * outd, -1, 1), .n = n, .in = in, .outd = outd};
    grad_buf g[3] = {grad_new(n * in), grad_new(outd * in), grad_new(outd)};
    TWICE(g, 3, et_linear_backward(g[0].g, g[1].g, g[2].g, c.r, c.x, c.w, n, in, outd));
    check_accumulates("linear dx", &g[0]);
    check_accumulates("linear dw", &g[1]);
    check_accumulates("linear dbias", &g[2]);
    gradcheck("linear dx", c.x, &g[0], linear_loss, &c);
    gradcheck("linear dw", c.w, &g[1], linear_loss, &c);
    gradcheck("linear dbias", c.bias, &g[2], linear_loss, &c);
    for (int i = 0; i < 3; i++) grad_free(&g[i]);
    free(c.out), free(c.x), free(c.w), free(c.bias), free(c.r);
}

/* ---- LoRA ---------------------------------------------------------------------------- */

typedef struct {
    float *out, *base, *xa, *x, *a, *b, *r;
    float scale;
    int n, in, rank, outd;
} lora_ctx;
static double lora_loss(void *p) {
    lora_ctx *c = p;
    memcpy(c->out, c->base, (size_t)c->n * c->outd * sizeof(float)); /* forward adds */
    et_lora_forward(c->out, c->xa, c->x, c->a, c->b, c->scale, c->n, c->in, c->rank, c->outd);
    return weighted_sum(c->out, c->r, (int64_t)c->n * c->outd);
}
static void lora_backward_is_gradient(void **state) {
    (void)state;
    const int n = 5, in = 7, rank = 3, outd = 6;
    lora_ctx c = {.out = rand_floats(n * outd, 0, 1), .base = rand_floats(n * outd, -1, 1),
                  .xa = rand_floats(n * rank, 0, 1), .x = rand_floats(n * in, -1, 1),
                  .a = rand_floats(rank * in, -1, 1), .b = rand_floats(outd * rank, -1, 1),
                  .r = rand_floats(n * outd, -1, 1), .scale = 1.7f,
                  .n = n, .in = in, .rank = rank, .outd = outd};
    lora_loss(&c); /* saves xa */
    float *scratch = malloc(sizeof(float) * n * rank);
    for (int i = 0; i < n * rank; i++) scratch[i] = NAN; /* must be overwritten, not read */
    grad_buf g[3] = {grad_new(n * in), grad_new(rank * in), grad_new(outd * rank)};
    TWICE(g, 3,
          et_lora_backward(g[0].g, g[1].g, g[2].g, scratch, c.r, c.x, c.xa, c.a, c.b, c.scale,
                           n, in, rank, outd));
    check_accumulates("lora dx", &g[0]);
    check_accumulates("lora dA", &g[1]);
    check_accumulates("lora dB", &g[2]);
    gradcheck("lora dx", c.x, &g[0], lora_loss, &c);
    gradcheck("lora dA", c.a, &g[1], lora_loss, &c);
    gradcheck("lora dB", c.b, &g[2], lora_loss, &c);
    for (int i = 0; i < 3; i++) grad_free(&g[i]);
    free(scratch), free(c.out), free(c.base), free(c.xa), free(c.x), free(c.a), free(c.b), free(c.r);
}

/* ---- RoPE ------------------------------------------------------------------------------ */

typedef struct {
    float *out, *x, *cos_tab, *sin_tab, *r;
    int b, t, h, d;
} rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    et_rope_forward(c->out, c->x, c->cos_tab, c->sin_tab, c->b, c->t, c->h, c->d);
    return weighted_sum(c->out, c->r, (int64_t)c->b * c->t * c->h * c->d);
}
static void rope_backward_is_gradient(void **state) {
    (void)state;
    const int b = 2, t = 5, h = 3, d = 8, n = b * t * h * d;
    const et_rope_params p = {.type = ET_ROPE_DEFAULT, .theta = 10000.0};
    rope_ctx c = {.out = rand_floats(n, 0, 1), .x = rand_floats(n, -1, 1),
                  .cos_tab = malloc(sizeof(float) * t * d / 2),
                  .sin_tab = malloc(sizeof(float) * t * d / 2), .r = rand_floats(n, -1, 1),
                  .b = b, .t = t, .h = h, .d = d};
    et_rope_tables(c.cos_tab, c.sin_tab, &p, t, d);
    grad_buf g[1] = {grad_new(n)};
    TWICE(g, 1, et_rope_backward(g[0].g, c.r, c.cos_tab, c.sin_tab, b, t, h, d));
    check_accumulates("rope dx", &g[0]);
    gradcheck("rope dx", c.x, &g[0], rope_loss, &c);
    grad_free(&g[0]);
    free(c.out), free(c.x), free(c.cos_tab), free(c.sin_tab), free(c.r);
}

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct {
    float *out, *lse, *q, *k, *v, *r;
    int b, t, hq, hkv, d, window;
} attention_ctx;
static double attention_loss(void *p) {
    attention_ctx *c = p;
    et_attention_forward(c->out, c->lse, c->q, c->k, c->v, c->b, c->t, c->hq, c->hkv, c->d,
                         c->window);
    return weighted_sum(c->out, c->r, (int64_t)c->b * c->t * c->hq * c->d);
}
static void check_attention_gradients(int b, int t, int hq, int hkv, int d, int window) {
    const int nq = b * t * hq * d, nkv = b * t * hkv * d;
    attention_ctx c = {.out = rand_floats(nq, 0, 1), .lse = rand_floats(b * hq * t, 0, 1),
                       .q = rand_floats(nq, -1.5, 1.5), .k = rand_floats(nkv, -1.5, 1.5),
                       .v = rand_floats(nkv, -1, 1), .r = rand_floats(nq, -1, 1),
                       .b = b, .t = t, .hq = hq, .hkv = hkv, .d = d, .window = window};
    attention_loss(&c); /* saves out and lse */
    grad_buf g[3] = {grad_new(nq), grad_new(nkv), grad_new(nkv)};
    TWICE(g, 3,
          et_attention_backward(g[0].g, g[1].g, g[2].g, c.r, c.q, c.k, c.v, c.out, c.lse, b, t,
                                hq, hkv, d, window));
    const char *names[3] = {"dq", "dk", "dv"};
    float *params[3] = {c.q, c.k, c.v};
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "attention %s (hq %d hkv %d window %d)", names[i], hq, hkv,
                 window);
        check_accumulates(what, &g[i]);
        gradcheck(what, params[i], &g[i], attention_loss, &c);
        grad_free(&g[i]);
    }
    free(c.out), free(c.lse), free(c.q), free(c.k), free(c.v), free(c.r);
}
static void attention_backward_is_gradient(void **state) {
    (void)state;
    check_attention_gradients(2, 7, 4, 2, 8, 0); /* GQA, T = 7 (not a power of two) */
    check_attention_gradients(2, 7, 4, 2, 8, 3); /* sliding window shorter than T */
    check_attention_gradients(1, 6, 2, 2, 4, 0); /* plain multi-head */
}

/* ---- SwiGLU --------------------------------------------------------------------------------- */

typedef struct {
    float *out, *gate, *up, *r;
    int n;
} swiglu_ctx;
static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    et_swiglu_forward(c->out, c->gate, c->up, c->n);
    return weighted_sum(c->out, c->r, c->n);
}
static void swiglu_backward_is_gradient(void **state) {
    (void)state;
    const int n = 40;
    swiglu_ctx c = {.out = rand_floats(n, 0, 1), .gate = rand_floats(n, -4, 4),
                    .up = rand_floats(n, -2, 2), .r = rand_floats(n, -1, 1), .n = n};
    grad_buf g[2] = {grad_new(n), grad_new(n)};
    TWICE(g, 2, et_swiglu_backward(g[0].g, g[1].g, c.r, c.gate, c.up, n));
    check_accumulates("swiglu dgate", &g[0]);
    check_accumulates("swiglu dup", &g[1]);
    gradcheck("swiglu dgate", c.gate, &g[0], swiglu_loss, &c);
    gradcheck("swiglu dup", c.up, &g[1], swiglu_loss, &c);
    grad_free(&g[0]), grad_free(&g[1]);
    free(c.out), free(c.gate), free(c.up), free(c.r);
}

/* ---- cross-entropy ------------------------------------------------------------------------- */

typedef struct {
    float *losses, *lse, *logits, *dloss;
    const int32_t *targets;
    int n, vocab;
} ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    et_cross_entropy_forward(c->losses, c->lse, c->logits, c->targets, c->n, c->vocab);
    return weighted_sum(c->losses, c->dloss, c->n);
}
static void cross_entropy_backward_is_gradient(void **state) {
    (void)state;
    const int n = 6, vocab = 9;
    static const int32_t targets[] = {2, -1, 8, 0, -100, 2}; /* rows 1 and 4 masked */
    ce_ctx c = {.losses = rand_floats(n, 0, 1), .lse = rand_floats(n, 0, 1),
                .logits = rand_floats(n * vocab, -3, 3), .dloss = rand_floats(n, 0.1, 1),
                .targets = targets, .n = n, .vocab = vocab};
    ce_loss(&c); /* saves lse */
    grad_buf g[1] = {grad_new(n * vocab)};
    TWICE(g, 1, et_cross_entropy_backward(g[0].g, c.logits, c.lse, targets, c.dloss, n, vocab));
    check_accumulates("cross-entropy dlogits", &g[0]);
    gradcheck("cross-entropy dlogits", c.logits, &g[0], ce_loss, &c);
    for (int j = 0; j < vocab; j++) { /* masked rows get nothing */
        assert_true(g[0].g[1 * vocab + j] == g[0].before[1 * vocab + j]);
        assert_true(g[0].g[4 * vocab + j] == g[0].before[4 * vocab + j]);
    }
    grad_free(&g[0]);
    free(c.losses), free(c.lse), free(c.logits), free(c.dloss);
}

/* ---- add, dropout ---------------------------------------------------------------------------- */

typedef struct {
    float *out, *a, *b, *r;
    uint8_t *keep;
    int n;
} pointwise_ctx;
static double add_loss(void *p) {
    pointwise_ctx *c = p;
    et_add_forward(c->out, c->a, c->b, c->n);
    return weighted_sum(c->out, c->r, c->n);
}
static double dropout_loss(void *p) { /* same (seed, offset) each time: same mask */
    pointwise_ctx *c = p;
    et_dropout_forward(c->out, c->keep, c->a, 0.3f, 99, 12345, c->n);
    return weighted_sum(c->out, c->r, c->n);
}
static void add_and_dropout_backward_are_gradients(void **state) {
    (void)state;
    const int n = 64;
    pointwise_ctx c = {.out = rand_floats(n, 0, 1), .a = rand_floats(n, -1, 1),
                       .b = rand_floats(n, -1, 1), .r = rand_floats(n, -1, 1),
                       .keep = malloc(n), .n = n};
    grad_buf g[2] = {grad_new(n), grad_new(n)};
    TWICE(g, 2, et_add_backward(g[0].g, g[1].g, c.r, n));
    check_accumulates("add da", &g[0]);
    check_accumulates("add db", &g[1]);
    gradcheck("add da", c.a, &g[0], add_loss, &c);
    gradcheck("add db", c.b, &g[1], add_loss, &c);
    grad_free(&g[0]), grad_free(&g[1]);

    dropout_loss(&c); /* saves keep */
    int dropped = 0;
    for (int i = 0; i < n; i++) dropped += !c.keep[i];
    assert_true(dropped > 0 && dropped < n); /* the check covers both cases */
    grad_buf d[1] = {grad_new(n)};
    TWICE(d, 1, et_dropout_backward(d[0].g, c.r, c.keep, 0.3f, n));
    check_accumulates("dropout dx", &d[0]);
    gradcheck("dropout dx", c.a, &d[0], dropout_loss, &c);
    grad_free(&d[0]);
    free(c.out), free(c.a), free(c.b), free(c.r), free(c.keep);
}

/* ---- optional (NULL) gradients ------------------------------------------------------------------ */

/* A NULL gradient is skipped and the others are unchanged by its absence. */
static void optional_gradients_may_be_null(void **state) {
    (void)state;
    const int n = 5, in = 7, outd = 6, rank = 3;
    float *x = rand_floats(n * in, -1, 1), *w = rand_floats(outd * in, -1, 1);
    float *dout = rand_floats(n * outd, -1, 1);
    float *dx = calloc(n * in, 4), *dw = calloc(outd * in, 4), *db = calloc(outd, 4);
    float *dw_only = calloc(outd * in, 4), *db_only = calloc(outd, 4), *dx_only = calloc(n * in, 4);
    et_linear_backward(dx, dw, db, dout, x, w, n, in, outd);
    et_linear_backward(NULL, dw_only, NULL, dout, x, w, n, in, outd);
    et_linear_backward(NULL, NULL, db_only, dout, x, w, n, in, outd);
    et_linear_backward(dx_only, NULL, NULL, dout, x, w, n, in, outd);
    assert_memory_equal(dw, dw_only, outd * in * 4);
    assert_memory_equal(db, db_only, outd * 4);
    assert_memory_equal(dx, dx_only, n * in * 4);

    float rstd[5], *xn = rand_floats(n * in, -1, 1), *nw = rand_floats(in, 0.5, 1.5);
    float *out = malloc(n * in * 4), *dxn = calloc(n * in, 4), *dxn_only = calloc(n * in, 4);
    float *dnw = calloc(in, 4);
    et_rmsnorm_forward(out, rstd, xn, nw, n, in, 1e-6f);
    et_rmsnorm_backward(dxn, dnw, x, xn, nw, rstd, n, in);
    et_rmsnorm_backward(dxn_only, NULL, x, xn, nw, rstd, n, in);
    assert_memory_equal(dxn, dxn_only, n * in * 4);

    float *a = rand_floats(rank * in, -1, 1), *b = rand_floats(outd * rank, -1, 1);
    float xa[5 * 3], scratch[5 * 3], *lo = calloc(n * outd, 4);
    float *da = calloc(rank * in, 4), *dbb = calloc(outd * rank, 4);
    float *da2 = calloc(rank * in, 4), *dbb2 = calloc(outd * rank, 4), *dxl = calloc(n * in, 4);
    et_lora_forward(lo, xa, x, a, b, 2.0f, n, in, rank, outd);
    et_lora_backward(dxl, da, dbb, scratch, dout, x, xa, a, b, 2.0f, n, in, rank, outd);
    et_lora_backward(NULL, da2, dbb2, scratch, dout, x, xa, a, b, 2.0f, n, in, rank, outd);
    assert_memory_equal(da, da2, rank * in * 4);
    assert_memory_equal(dbb, dbb2, outd * rank * 4);

    float *s1 = calloc(n * outd, 4), *s2 = calloc(n * outd, 4);
    et_add_backward(NULL, s1, dout, n * outd);
    et_add_backward(s2, NULL, dout, n * outd);
    assert_memory_equal(s1, dout, n * outd * 4);
    assert_memory_equal(s2, dout, n * outd * 4);

    free(x), free(w), free(dout), free(dx), free(dw), free(db), free(dw_only), free(db_only);
    free(dx_only), free(xn), free(nw), free(out), free(dxn), free(dxn_only), free(dnw);
    free(a), free(b), free(lo), free(da), free(dbb), free(da2), free(dbb2), free(dxl);
    free(s1), free(s2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedding_backward_is_gradient),
        cmocka_unit_test(rmsnorm_backward_is_gradient),
        cmocka_unit_test(linear_backward_is_gradient),
        cmocka_unit_test(lora_backward_is_gradient),
        cmocka_unit_test(rope_backward_is_gradient),
        cmocka_unit_test(attention_backward_is_gradient),
        cmocka_unit_test(swiglu_backward_is_gradient),
        cmocka_unit_test(cross_entropy_backward_is_gradient),
        cmocka_unit_test(add_and_dropout_backward_are_gradients),
        cmocka_unit_test(optional_gradients_may_be_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
