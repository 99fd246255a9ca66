/* Attention for the CUDA model: the bf16 tensor-core kernels, checked once at model
 * creation against the fp32 kernel on this model's head shape — a pair of forward and
 * backward kernels at a time, in order of preference (cuda_attention_select); if every
 * pair fails (or the head dim is unsupported) every layer runs the fp32 kernel through
 * casts. One pair is cuDNN's fused attention (kernels/cuda/attention_cudnn.h), taken
 * only when asked for and when this machine has cuDNN 9. */
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

/* One bf16-vs-fp32 comparison of forward and backward (our kernels as selected, or
 * cuDNN's); *err_out = the worst relative error, or NaN. Returns non-zero only when
 * the CUDA runtime failed. */
static int self_check(const et_hf_config *c, int window, int cudnn, double *err_out) {
    const int t = CHECK_T, hq = c->num_heads, hkv = c->num_kv_heads, d = c->head_dim;
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
            cudnn ? etc_attention_cudnn_forward(o, lse, q, k, v, 1, t, hq, hkv, d, window) ||
                        etc_attention_cudnn_backward(dq, dk, dv, g, q, k, v, o, lse, 1, t, hq, hkv,
                                                     d, window)
                  : etc_attention_forward_bf16(o, lse, q, k, v, 1, t, hq, hkv, d, window) ||
                        etc_attention_backward_bf16(dq, dk, dv, delta, g, q, k, v, o, lse, 1, t,
                                                    hq, hkv, d, window);
        bad = bad || etc_synchronize();
    }
    float *h = bad ? NULL : malloc((nq * 4 + nk * 4) * sizeof(float) * 2);
    if (!bad && h) {
        float *a = h, *r = h + nq * 4 + nk * 4;
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

int cuda_attention_select(et_cuda_model *cm, et_error *err) {
    const et_hf_config *c = &cm->cfg;
    cm->attn_fp32 = 0, cm->attn_cudnn = 0;
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
    /* Kernel pairs in order of preference: the 16-row forward with the chained dK/dV
     * backward (measured fastest on an H200 so far, docs/perf.md), then the split
     * backward. EHRTUNE_CUDA_ATTENTION=chain|split|wide|cudnn puts one pair first (wide:
     * the 32-rows-a-warp kernels, head dims <= 64; cudnn: cuDNN's fused attention, where
     * libcudnn 9 loads; both for benchmarks until a GPU run has measured them,
     * docs/cuda.md). Each pair must pass the self-check to be used; the note says why
     * a pair asked for was not. */
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
    int order[N_PAIRS] = {0, 1, -1, -1}, n_order = 2;
    char refused[200] = ""; /* why the pair asked for is not the one used */
    const char *want = getenv("EHRTUNE_CUDA_ATTENTION");
    if (want && *want) {
        int w = -1;
        for (int i = 0; i < N_PAIRS; i++)
            if (!strcmp(want, pairs[i].key)) w = i;
        if (w < 0)
            return et_fail(err, "EHRTUNE_CUDA_ATTENTION=%s: unknown kernel choice (use chain, split, "
                                "wide or cudnn, or unset it)", want);
        if (w == 2 && !etc_attention_bf16_wide_supported(c->head_dim))
            return et_fail(err, "EHRTUNE_CUDA_ATTENTION=wide: head dim %d is over the wide kernels' "
                                "64 (use chain or split, or unset it)", c->head_dim);
        char why[160];
        if (w == CUDNN_PAIR && !etc_attention_cudnn_available(why, sizeof why)) {
            /* the default order stands; the note says why */
            snprintf(refused, sizeof refused, "; cudnn asked for, unavailable: %.150s", why);
        } else {
            /* the chosen pair, then the default ones as fallbacks */
            n_order = 0;
            order[n_order++] = w;
            for (int i = 0; i < 2; i++)
                if (i != w) order[n_order++] = i;
        }
    }
    double worst = NAN;
    for (int v = 0; v < n_order; v++) {
        const int cudnn = order[v] == CUDNN_PAIR;
        if (!cudnn) {
            etc_attention_bf16_forward_variant(pairs[order[v]].fwd);
            etc_attention_bf16_backward_variant(pairs[order[v]].bwd);
        }
        worst = 0;
        for (int i = 0; i < nw; i++) {
            double e = NAN;
            if (self_check(c, windows[i], cudnn, &e)) return cuda_fail(err, "attention self-check");
            if (isnan(e) || e > worst) worst = e;
            if (isnan(worst)) break;
        }
        if (!isnan(worst) && worst <= CHECK_LIMIT) {
            cm->attn_cudnn = cudnn;
            if (cudnn)
                snprintf(cm->attn_note, sizeof cm->attn_note,
                         "%s, %s (self-check relative error %.2e)", pairs[order[v]].name,
                         etc_attention_cudnn_note(), worst);
            else
                snprintf(cm->attn_note, sizeof cm->attn_note,
                         "bf16 tensor-core kernel, %s (self-check relative error %.2e)%s",
                         pairs[order[v]].name, worst, refused);
            plain_text(cm->attn_note);
            return 0;
        }
        if (cudnn) /* a cuDNN error (graph not supported...) reads as a NaN error */
            snprintf(refused, sizeof refused, "; cudnn asked for, failed its self-check: %.140s",
                     isnan(worst) ? etc_last_error() : "relative error over the limit");
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
