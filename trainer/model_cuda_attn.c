/* Attention for the CUDA model: the bf16 tensor-core kernels, checked once at model
 * creation against the fp32 kernel on this model's head shape — a pair of forward and
 * backward kernels at a time, in order of preference (cuda_attention_select); if every
 * pair fails (or the head dim is unsupported) every layer runs the fp32 kernel through
 * casts. One pair is cuDNN's fused attention (kernels/cuda/attention_cudnn.h), first
 * in the default order where this machine has cuDNN 9 and it runs the model's shapes
 * deterministically; our best pair stays checked as its fallback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef EHRTUNE_HAVE_CUDA

#include "kernels/cuda/attention_bf16.h"
#include "kernels/cuda/attention_cudnn.h"
#include "trainer/model_cuda_internal.h"

#define CHECK_T 192     /* self-check sequence: three query tiles, a partial one */
#define CHECK_LIMIT 2e-2 /* bf16 against fp32: the parity harness sees ~3e-3 */

/* ‖a − b‖ / ‖b‖ over n values; NaN if any value is not finite. */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return NAN;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The note goes into JSON lines and the manifest as is: no quotes, backslashes or
 * control characters from a library's error message. */
static void plain_text(char *s) {
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 32) *s = '\'';
}

static void *carve(char *base, size_t *at, size_t bytes) {
    void *p = base + *at;
    *at += (bytes + 15) & ~(size_t)15;
    return p;
}

/* One bf16-vs-fp32 comparison of forward and backward at sequence length t (our
 * kernels as selected, or cuDNN's: strict asks for its deterministic backward); *err_out
 * = the worst relative error, or NaN. Returns non-zero only when the CUDA runtime failed. */
static int self_check(const et_hf_config *c, int t, int window, int cudnn, int strict,
                      double *err_out) {
    const int hq = c->num_heads, hkv = c->num_kv_heads, d = c->head_dim;
    const size_t nq = (size_t)t * hq * d, nk = (size_t)t * hkv * d, nl = (size_t)hq * t;
    /* bf16: q k v g o dq dk dv; fp32: the same eight; lse, lse32, delta (each
     * 16-byte aligned) */
    const size_t bytes = (4 * nq + 4 * nk) * 6 + 3 * nl * 4 + 19 * 16;
    char *blk = NULL;
    if (etc_malloc((void **)&blk, bytes)) return -1;
    size_t at = 0;
#define TAKE(type, count) ((type *)carve(blk, &at, (count) * sizeof(type)))
    etc_bf16 *q = TAKE(etc_bf16, nq), *k = TAKE(etc_bf16, nk), *v = TAKE(etc_bf16, nk);
    etc_bf16 *g = TAKE(etc_bf16, nq), *o = TAKE(etc_bf16, nq), *dq = TAKE(etc_bf16, nq);
    etc_bf16 *dk = TAKE(etc_bf16, nk), *dv = TAKE(etc_bf16, nk);
    float *q32 = TAKE(float, nq), *k32 = TAKE(float, nk), *v32 = TAKE(float, nk);
    float *g32 = TAKE(float, nq), *o32 = TAKE(float, nq), *dq32 = TAKE(float, nq);
    float *dk32 = TAKE(float, nk), *dv32 = TAKE(float, nk);
    float *lse = TAKE(float, nl), *lse32 = TAKE(float, nl), *delta = TAKE(float, nl);
#undef TAKE
    int bad = etc_fill_uniform_bf16(q, (int64_t)nq, -2.0f, 2.0f, 11) ||
              etc_fill_uniform_bf16(k, (int64_t)nk, -2.0f, 2.0f, 12) ||
              etc_fill_uniform_bf16(v, (int64_t)nk, -1.0f, 1.0f, 13) ||
              etc_fill_uniform_bf16(g, (int64_t)nq, -1.0f, 1.0f, 14) ||
              etc_cast_bf16_to_f32(q32, q, (int64_t)nq) || etc_cast_bf16_to_f32(k32, k, (int64_t)nk) ||
              etc_cast_bf16_to_f32(v32, v, (int64_t)nk) || etc_cast_bf16_to_f32(g32, g, (int64_t)nq) ||
              etc_memset(dq, 0, nq * 2) || etc_memset(dk, 0, nk * 2) || etc_memset(dv, 0, nk * 2) ||
              etc_memset(dq32, 0, nq * 4) || etc_memset(dk32, 0, nk * 4) || etc_memset(dv32, 0, nk * 4);
    /* a failing bf16 kernel (rc != 0) is a failed check, not a runtime failure */
    int kernel_bad = 0;
    if (!bad) {
        bad = etc_attention_forward(o32, lse32, q32, k32, v32, 1, t, hq, hkv, d, window) ||
              etc_attention_backward(dq32, dk32, dv32, g32, q32, k32, v32, o32, lse32, 1, t, hq,
                                     hkv, d, window);
        kernel_bad =
            cudnn ? etc_attention_cudnn_prepare(1, t, hq, hkv, d, window, strict) ||
                        etc_attention_cudnn_forward(o, lse, q, k, v, 1, t, hq, hkv, d, window) ||
                        etc_attention_cudnn_backward(dq, dk, dv, g, q, k, v, o, lse, 1, t, hq, hkv,
                                                     d, window)
                  : etc_attention_forward_bf16(o, lse, q, k, v, 1, t, hq, hkv, d, window) ||
                        etc_attention_backward_bf16(dq, dk, dv, delta, g, q, k, v, o, lse, 1, t,
                                                    hq, hkv, d, window);
        bad = bad || etc_synchronize();
    }
    /* o, dq, dk, dv of the kernel under test (a) and of the fp32 reference (r) */
    float *h = bad ? NULL : malloc((2 * nq + 2 * nk) * sizeof(float) * 2);
    if (!bad && h) {
        float *a = h, *r = h + 2 * nq + 2 * nk;
        /* bf16 results cast to fp32 in the (now free) bf16 inputs' fp32 twins */
        bad = etc_cast_bf16_to_f32(q32, o, (int64_t)nq) || etc_cast_bf16_to_f32(k32, dk, (int64_t)nk) ||
              etc_cast_bf16_to_f32(v32, dv, (int64_t)nk) || etc_cast_bf16_to_f32(g32, dq, (int64_t)nq) ||
              etc_memcpy_d2h(a, q32, nq * 4) || etc_memcpy_d2h(a + nq, g32, nq * 4) ||
              etc_memcpy_d2h(a + 2 * nq, k32, nk * 4) || etc_memcpy_d2h(a + 2 * nq + nk, v32, nk * 4) ||
              etc_memcpy_d2h(r, o32, nq * 4) || etc_memcpy_d2h(r + nq, dq32, nq * 4) ||
              etc_memcpy_d2h(r + 2 * nq, dk32, nk * 4) || etc_memcpy_d2h(r + 2 * nq + nk, dv32, nk * 4);
        if (!bad) {
            double e = 0;
            const size_t len[4] = {nq, nq, nk, nk};
            size_t off = 0;
            for (int i = 0; i < 4 && !isnan(e); i++) {
                double ei = rel_err(a + off, r + off, len[i]);
                e = isnan(ei) || ei > e ? ei : e;
                off += len[i];
            }
            *err_out = kernel_bad ? NAN : e;
        }
    }
    free(h);
    etc_free(blk);
    if (!bad && !h) return -1;
    return bad ? -1 : 0;
}

/* Kernel pairs in order of preference by default: cuDNN's fused attention where
 * etc_attention_cudnn_preferred says so (libcudnn 9.15.1 or later, sm_90 or sm_100: the
 * gate PyTorch's SDPA uses before it prefers cuDNN) and cuDNN runs this model's shapes
 * with its deterministic backward (wgmma/TMA engines on Hopper; our kernels are
 * mma.sync); then our 16-row forward with the chained dK/dV backward (measured fastest
 * of ours on an H200, docs/perf.md); then the split backward.
 * EHRTUNE_CUDA_ATTENTION=chain|split|wide|cudnn puts one pair first (wide: the
 * 32-rows-a-warp kernels, head dims <= 64; cudnn asked for by name may run its
 * non-deterministic backward where cuDNN offers no other). */
enum { N_PAIRS = 4, CUDNN_PAIR = 3 };
static const struct {
    const char *key, *name;
    int fwd, bwd;
} pairs[N_PAIRS] = {
    {"chain", "chained dK/dV backward", ETC_ATTN_FWD_NARROW, ETC_ATTN_BWD_CHAIN},
    {"split", "split dK/dV backward", ETC_ATTN_FWD_NARROW, ETC_ATTN_BWD_SPLIT},
    {"wide", "wide (32 rows a warp) forward and backward", ETC_ATTN_FWD_WIDE, ETC_ATTN_BWD_WIDE},
    {"cudnn", "cuDNN fused flash attention", -1, -1},
};

/* Elements of q above which cuDNN's check at the model's own sequence length is cut
 * short: its device scratch stays under ~260 MB and the host copies under ~170 MB
 * (before the model's own allocations exist). */
#define CHECK_LONG_ELEMS ((size_t)1 << 23)

/* Worst self-check error of pair p over the model's windows (cuDNN: also at the model's
 * sequence length, where its engines may run other tile schedules than at CHECK_T); NaN
 * when a kernel failed. Non-zero only when the CUDA runtime failed. */
static int check_pair(const et_cuda_model *cm, int p, const int *windows, int nw, double *worst) {
    const et_hf_config *c = &cm->cfg;
    const int cudnn = p == CUDNN_PAIR;
    if (!cudnn) {
        etc_attention_bf16_forward_variant(pairs[p].fwd);
        etc_attention_bf16_backward_variant(pairs[p].bwd);
    }
    *worst = 0;
    for (int i = 0; i < nw && !isnan(*worst); i++) {
        double e = NAN;
        if (self_check(c, CHECK_T, windows[i], cudnn, cm->attn_cudnn_strict, &e)) return -1;
        if (isnan(e) || e > *worst) *worst = e;
    }
    if (cudnn && !isnan(*worst)) {
        const size_t row = (size_t)c->num_heads * c->head_dim;
        int t = cm->opt.t;
        if ((size_t)t * row > CHECK_LONG_ELEMS) t = (int)(CHECK_LONG_ELEMS / row);
        if (t > CHECK_T) {
            int window = 0; /* the model's first window, if it has one */
            for (int l = 0; l < c->num_layers && !window; l++) window = et_hf_layer_window(c, l);
            double e = NAN;
            if (self_check(c, t, window, 1, cm->attn_cudnn_strict, &e)) return -1;
            if (isnan(e) || e > *worst) *worst = e;
        }
    }
    return 0;
}

/* Builds cuDNN's graphs of micro-batch size b for every window this model's layers use,
 * before a step runs any of them; -1 (etc_last_error says why) when cuDNN refuses one. */
static int cudnn_prepare(et_cuda_model *cm, int b) {
    const et_hf_config *c = &cm->cfg;
    for (int l = 0; l < c->num_layers; l++)
        if (etc_attention_cudnn_prepare(b, cm->opt.t, c->num_heads, c->num_kv_heads, c->head_dim,
                                        et_hf_layer_window(c, l), cm->attn_cudnn_strict))
            return -1;
    cm->attn_cudnn_b = b;
    return 0;
}

/* cuDNN refused micro-batch size b (a partial last batch, an evaluation batch): this
 * micro-batch and every later one run our pair that passed its self-check at creation.
 * Called at layer 0's forward, before any layer of this micro-batch ran, so no backward
 * of ours ever reads statistics that cuDNN's forward wrote. */
static int leave_cudnn(et_cuda_model *cm, int b) {
    /* none of ours passed at start: the step fails with cuDNN's refusal as the error */
    if (cm->attn_fallback < 0) return -1;
    const char *why = etc_last_error();
    const int p = cm->attn_fallback;
    etc_attention_bf16_forward_variant(pairs[p].fwd);
    etc_attention_bf16_backward_variant(pairs[p].bwd);
    cm->attn_cudnn = 0;
    const size_t used = strlen(cm->attn_note);
    snprintf(cm->attn_note + used, sizeof cm->attn_note - used,
             "; from a micro-batch of %d on: %s (cuDNN refused it: %.120s)", b, pairs[p].name, why);
    plain_text(cm->attn_note);
    return 0;
}

int cuda_attention_select(et_cuda_model *cm, et_error *err) {
    const et_hf_config *c = &cm->cfg;
    cm->attn_fp32 = 0, cm->attn_cudnn = 0, cm->attn_cudnn_b = 0, cm->attn_fallback = -1;
    cm->attn_cudnn_strict = 1;
    if (getenv("EHRTUNE_CUDA_ATTENTION_FP32")) {
        cm->attn_fp32 = 1;
        snprintf(cm->attn_note, sizeof cm->attn_note, "fp32 kernel (EHRTUNE_CUDA_ATTENTION_FP32 set)");
        return 0;
    }
    if (!etc_attention_bf16_supported(c->head_dim)) {
        cm->attn_fp32 = 1;
        snprintf(cm->attn_note, sizeof cm->attn_note,
                 "fp32 kernel (head dim %d: the bf16 kernel takes multiples of 16 up to 128)",
                 c->head_dim);
        return 0;
    }
    /* Check the full-causal case and, when the model has one, its window. */
    int windows[2] = {0, 0}, nw = 1;
    for (int l = 0; l < c->num_layers; l++)
        if (et_hf_layer_window(c, l) > 0) {
            windows[nw++] = et_hf_layer_window(c, l) < CHECK_T ? et_hf_layer_window(c, l) : CHECK_T / 3;
            break;
        }
    int want = -1;
    const char *want_env = getenv("EHRTUNE_CUDA_ATTENTION");
    if (want_env && *want_env) {
        for (int i = 0; i < N_PAIRS; i++)
            if (!strcmp(want_env, pairs[i].key)) want = i;
        if (want < 0)
            return et_fail(err, "EHRTUNE_CUDA_ATTENTION=%s: unknown kernel choice (use chain, split, "
                                "wide or cudnn, or unset it)", want_env);
        if (want == 2 && !etc_attention_bf16_wide_supported(c->head_dim))
            return et_fail(err, "EHRTUNE_CUDA_ATTENTION=wide: head dim %d is over the wide kernels' "
                                "64 (use chain or split, or unset it)", c->head_dim);
    }
    cm->attn_cudnn_strict = want != CUDNN_PAIR;
    int order[N_PAIRS], n_order = 0;
    char refused[240] = ""; /* why cuDNN is not the pair used */
    if (want >= 0 && want != CUDNN_PAIR) {
        /* the chosen pair, then our default ones as fallbacks; cuDNN not tried */
        order[n_order++] = want;
        for (int i = 0; i < 2; i++)
            if (i != want) order[n_order++] = i;
    } else {
        char why[200];
        if (want == CUDNN_PAIR ? etc_attention_cudnn_available(why, sizeof why)
                               : etc_attention_cudnn_preferred(why, sizeof why))
            order[n_order++] = CUDNN_PAIR;
        else
            snprintf(refused, sizeof refused, "; %s: %.170s",
                     want == CUDNN_PAIR ? "cudnn asked for, unavailable" : "cuDNN not used", why);
        order[n_order++] = 0;
        order[n_order++] = 1;
    }
    double worst = NAN;
    for (int v = 0; v < n_order; v++) {
        const int p = order[v];
        if (check_pair(cm, p, windows, nw, &worst)) return cuda_fail(err, "attention self-check");
        const int passed = !isnan(worst) && worst <= CHECK_LIMIT;
        if (p == CUDNN_PAIR && passed && cudnn_prepare(cm, cm->opt.b)) {
            snprintf(refused, sizeof refused, "; cuDNN refused this run's shape: %.150s",
                     etc_last_error());
            continue;
        }
        if (p == CUDNN_PAIR && !passed) {
            /* a cuDNN error (graph not supported, no deterministic backward...) reads as NaN */
            snprintf(refused, sizeof refused, "; %s failed its self-check: %.140s",
                     want == CUDNN_PAIR ? "cudnn asked for," : "cuDNN",
                     isnan(worst) ? etc_last_error() : "relative error over the limit");
            continue;
        }
        if (!passed) continue;
        if (p == CUDNN_PAIR) {
            /* our first pair that passes, for a later micro-batch size cuDNN refuses */
            const double cudnn_worst = worst;
            for (int f = 0; f < 2 && cm->attn_fallback < 0; f++) {
                double e = NAN;
                if (check_pair(cm, f, windows, nw, &e)) return cuda_fail(err, "attention self-check");
                if (!isnan(e) && e <= CHECK_LIMIT) cm->attn_fallback = f;
            }
            cm->attn_cudnn = 1;
            snprintf(cm->attn_note, sizeof cm->attn_note,
                     "%s, %s (self-check relative error %.2e; fallback: %s)", pairs[p].name,
                     etc_attention_cudnn_note(), cudnn_worst,
                     cm->attn_fallback >= 0 ? pairs[cm->attn_fallback].name : "none passed");
        } else {
            snprintf(cm->attn_note, sizeof cm->attn_note,
                     "bf16 tensor-core kernel, %s (self-check relative error %.2e)%s",
                     pairs[p].name, worst, refused);
        }
        plain_text(cm->attn_note);
        return 0;
    }
    cm->attn_fp32 = 1;
    snprintf(cm->attn_note, sizeof cm->attn_note,
             "fp32 kernel (the bf16 kernels failed their self-check: relative error %.3g > %.0e)%s",
             worst, CHECK_LIMIT, refused);
    plain_text(cm->attn_note);
    return 0;
}

int cuda_attention_forward(et_cuda_model *cm, const cuda_slot *s, int b, int t, int window) {
    const et_hf_config *c = &cm->cfg;
    const int hq = c->num_heads, hkv = c->num_kv_heads, d = c->head_dim;
    /* a micro-batch size met for the first time: cuDNN's graphs for it before layer 0 */
    if (cm->attn_cudnn && b != cm->attn_cudnn_b && cudnn_prepare(cm, b) && leave_cudnn(cm, b))
        return -1;
    if (cm->attn_cudnn)
        return etc_attention_cudnn_forward(s->att, s->lse, s->q, s->k, s->v, b, t, hq, hkv, d, window);
    if (!cm->attn_fp32)
        return etc_attention_forward_bf16(s->att, s->lse, s->q, s->k, s->v, b, t, hq, hkv, d, window);
    const int64_t nq = (int64_t)b * t * hq * d, nk = (int64_t)b * t * hkv * d;
    return etc_cast_bf16_to_f32(cm->f_q, s->q, nq) || etc_cast_bf16_to_f32(cm->f_k, s->k, nk) ||
           etc_cast_bf16_to_f32(cm->f_v, s->v, nk) ||
           etc_attention_forward(cm->f_o, s->lse, cm->f_q, cm->f_k, cm->f_v, b, t, hq, hkv, d, window) ||
           etc_cast_f32_to_bf16(s->att, cm->f_o, nq);
}

int cuda_attention_backward(et_cuda_model *cm, const cuda_slot *s, int b, int t, int window) {
    const et_hf_config *c = &cm->cfg;
    const int hq = c->num_heads, hkv = c->num_kv_heads, d = c->head_dim;
    if (cm->attn_cudnn)
        return etc_attention_cudnn_backward(cm->dq, cm->dk, cm->dv, cm->datt, s->q, s->k, s->v,
                                            s->att, s->lse, b, t, hq, hkv, d, window);
    if (!cm->attn_fp32)
        return etc_attention_backward_bf16(cm->dq, cm->dk, cm->dv, cm->delta, cm->datt, s->q, s->k,
                                           s->v, s->att, s->lse, b, t, hq, hkv, d, window);
    const int64_t nq = (int64_t)b * t * hq * d, nk = (int64_t)b * t * hkv * d;
    return etc_cast_bf16_to_f32(cm->f_q, s->q, nq) || etc_cast_bf16_to_f32(cm->f_k, s->k, nk) ||
           etc_cast_bf16_to_f32(cm->f_v, s->v, nk) || etc_cast_bf16_to_f32(cm->f_o, s->att, nq) ||
           etc_cast_bf16_to_f32(cm->f_g, cm->datt, nq) || etc_memset(cm->f_dq, 0, (size_t)nq * 4) ||
           etc_memset(cm->f_dk, 0, (size_t)nk * 4) || etc_memset(cm->f_dv, 0, (size_t)nk * 4) ||
           etc_attention_backward(cm->f_dq, cm->f_dk, cm->f_dv, cm->f_g, cm->f_q, cm->f_k, cm->f_v,
                                  cm->f_o, s->lse, b, t, hq, hkv, d, window) ||
           etc_cast_f32_to_bf16(cm->dq, cm->f_dq, nq) || etc_cast_f32_to_bf16(cm->dk, cm->f_dk, nk) ||
           etc_cast_f32_to_bf16(cm->dv, cm->f_dv, nk);
}

#endif
