/* Forward checks of the CPU reference ops (kernels/ops.h) against independent,
 * naive references written here in double precision: explicit T×T softmax for
 * attention, log-softmax for cross-entropy, the RoPE formulas, a hand-computed
 * AdamW example, and the Philox known-answer vectors behind dropout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/philox.h"
#include "kernels/ops.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static double rand_uniform(void) { /* splitmix64 → [0, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}
static float *rand_floats(int64_t n, double lo, double hi) {
    float *x = malloc((size_t)n * sizeof(float));
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rand_uniform());
    return x;
}

/* ‖got − want‖ / ‖want‖ over n values. */
static double rel_err(const float *got, const double *want, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = got[i] - want[i];
        num += e * e;
        den += want[i] * want[i];
    }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1.0);
}
static void assert_rel_err(const char *what, const float *got, const double *want, int64_t n,
                           double tol) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(got[i])) fail_msg("%s: element %lld is not finite", what, (long long)i);
    double e = rel_err(got, want, n);
    if (!(e < tol)) fail_msg("%s: relative error %.3g >= %.3g", what, e, tol);
}
static double *doubles(int64_t n) {
    double *x = calloc((size_t)n, sizeof(double));
    assert_non_null(x);
    return x;
}

/* ---- embedding, add, scale, sumsq --------------------------------------------- */

static void embedding_copies_rows(void **state) {
    (void)state;
    const int vocab = 11, dim = 7, n = 9;
    const int32_t ids[] = {3, 0, 10, 3, 5, 5, 1, 9, 2};
    float *table = rand_floats(vocab * dim, -1, 1), out[9 * 7];
    et_embedding_forward(out, ids, table, n, dim);
    for (int i = 0; i < n; i++)
        assert_memory_equal(out + i * dim, table + ids[i] * dim, dim * sizeof(float));
    free(table);
}

static void elementwise_ops_match_formulas(void **state) {
    (void)state;
    const int64_t n = 1001;
    float *a = rand_floats(n, -2, 2), *b = rand_floats(n, -2, 2), *out = rand_floats(n, 0, 1);
    et_add_forward(out, a, b, n);
    for (int64_t i = 0; i < n; i++) assert_true(out[i] == a[i] + b[i]);
    double want = 0.0;
    for (int64_t i = 0; i < n; i++) want += (double)a[i] * a[i];
    assert_true(fabs(et_sumsq(a, n) - want) <= 1e-12 * want);
    memcpy(out, a, n * sizeof(float));
    et_scale(out, -0.75f, n);
    for (int64_t i = 0; i < n; i++) assert_true(out[i] == a[i] * -0.75f);
    free(a), free(b), free(out);
}

/* ---- RMSNorm ------------------------------------------------------------------- */

static void rmsnorm_matches_double_reference(void **state) {
    (void)state;
    const int n = 6, dim = 37;
    const float eps = 1e-5f;
    float *x = rand_floats(n * dim, -3, 3), *w = rand_floats(dim, 0.5, 1.5);
    float out[6 * 37], rstd[6];
    x[5] = 40.0f; /* one outlier: the mean of squares must still be right */
    et_rmsnorm_forward(out, rstd, x, w, n, dim, eps);
    double *want = doubles(n * dim), want_rstd[6];
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < dim; j++) ss += (double)x[i * dim + j] * x[i * dim + j];
        want_rstd[i] = 1.0 / sqrt(ss / dim + eps);
        for (int j = 0; j < dim; j++) want[i * dim + j] = x[i * dim + j] * want_rstd[i] * w[j];
    }
    assert_rel_err("rmsnorm out", out, want, n * dim, 1e-6);
    assert_rel_err("rmsnorm rstd", rstd, want_rstd, n, 1e-6);
    free(x), free(w), free(want);
}

/* ---- linear and LoRA ------------------------------------------------------------ */

static void linear_matches_double_reference(void **state) {
    (void)state;
    const int n = 5, in = 19, outd = 11;
    float *x = rand_floats(n * in, -1, 1), *w = rand_floats(outd * in, -1, 1);
    float *bias = rand_floats(outd, -1, 1), out[5 * 11];
    double *want = doubles(n * outd);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        et_linear_forward(out, x, w, with_bias ? bias : NULL, n, in, outd);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outd; o++) {
                double s = with_bias ? bias[o] : 0.0;
                for (int c = 0; c < in; c++) s += (double)x[i * in + c] * w[o * in + c];
                want[i * outd + o] = s;
            }
        assert_rel_err(with_bias ? "linear+bias" : "linear", out, want, n * outd, 1e-6);
    }
    free(x), free(w), free(bias), free(want);
}

static void lora_adds_scaled_low_rank_product(void **state) {
    (void)state;
    const int n = 4, in = 13, r = 3, outd = 9;
    const float scale = 2.5f;
    float *x = rand_floats(n * in, -1, 1), *a = rand_floats(r * in, -1, 1);
    float *b = rand_floats(outd * r, -1, 1), *out = rand_floats(n * outd, -1, 1);
    float xa[4 * 3];
    double *want = doubles(n * outd), want_xa[4 * 3];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < r; k++) {
            double s = 0;
            for (int c = 0; c < in; c++) s += (double)x[i * in + c] * a[k * in + c];
            want_xa[i * r + k] = s;
        }
        for (int o = 0; o < outd; o++) {
            double s = 0;
            for (int k = 0; k < r; k++) s += want_xa[i * r + k] * b[o * r + k];
            want[i * outd + o] = out[i * outd + o] + scale * s; /* += on the base output */
        }
    }
    et_lora_forward(out, xa, x, a, b, scale, n, in, r, outd);
    assert_rel_err("lora out", out, want, n * outd, 1e-6);
    assert_rel_err("lora xa", xa, want_xa, n * r, 1e-6);
    free(x), free(a), free(b), free(out), free(want);
}

/* ---- RoPE ------------------------------------------------------------------------ */

static void rope_inv_freq_default_and_linear(void **state) {
    (void)state;
    const int d = 128;
    float inv[64], lin[64];
    et_rope_params p = {.type = ET_ROPE_DEFAULT, .theta = 10000.0};
    et_rope_inv_freq(inv, &p, d);
    et_rope_params pl = {.type = ET_ROPE_LINEAR, .theta = 10000.0, .factor = 4.0};
    et_rope_inv_freq(lin, &pl, d);
    for (int i = 0; i < d / 2; i++) {
        double want = 1.0 / pow(10000.0, 2.0 * i / d);
        assert_true(fabs(inv[i] - want) <= 3e-7 * want);
        assert_true(fabs(lin[i] - want / 4.0) <= 3e-7 * want / 4.0);
    }
    assert_true(inv[0] == 1.0f);
}

/* Llama 3.x scaling with the published parameters (theta 500000, factor 8,
 * low 1, high 4, original context 8192) at head dim 64, against the formula of
 * _compute_llama3_parameters evaluated in double. */
static void rope_inv_freq_llama3(void **state) {
    (void)state;
    const int d = 64;
    const double theta = 500000.0, factor = 8, low = 1, high = 4, orig = 8192;
    et_rope_params p = {.type = ET_ROPE_LLAMA3, .theta = theta, .factor = factor,
                        .low_freq_factor = low, .high_freq_factor = high,
                        .original_max_pos = orig};
    float inv[32];
    et_rope_inv_freq(inv, &p, d);
    int n_high = 0, n_low = 0, n_mid = 0;
    for (int i = 0; i < d / 2; i++) {
        double f = 1.0 / pow(theta, 2.0 * i / d), wavelen = 2 * M_PI / f, want;
        if (wavelen < orig / high) {
            want = f, n_high++;
        } else if (wavelen > orig / low) {
            want = f / factor, n_low++;
        } else {
            double s = (orig / wavelen - low) / (high - low);
            want = (1 - s) * f / factor + s * f, n_mid++;
            assert_true(want > f / factor && want < f); /* strictly interpolated */
        }
        if (!(fabs(inv[i] - want) <= 2e-6 * want))
            fail_msg("llama3 inv_freq[%d] = %.9g, want %.9g", i, inv[i], want);
    }
    /* All three bands occur for these parameters: i 0..14 high, 15..17 mid, 18..31 low. */
    assert_int_equal(n_high, 15);
    assert_int_equal(n_mid, 3);
    assert_int_equal(n_low, 14);
}

/* Bit for bit as transformers 5.24 / torch 2.15 compute it (ROPE_INIT_FUNCTIONS["llama3"],
 * theta 1e4, head dim 128, factor 8, low 1, high 4, original context 8192): in this
 * configuration the middle band shows whether 2π/inv_freq is written as torch rounds it
 * (reciprocal · 2π); the direct quotient is an ulp off at i = 44 and 46. */
static void rope_inv_freq_llama3_bitwise_as_hf(void **state) {
    (void)state;
    static const uint32_t hf[64] = {
        0x3f800000, 0x3f5dafd7, 0x3f3ff911, 0x3f263de0, 0x3f0ff59a, 0x3ef953cf,
        0x3ed7e89b, 0x3ebaf81b, 0x3ea1e89b, 0x3e8c3504, 0x3e72d423, 0x3e5247ed,
        0x3e361887, 0x3e1db040, 0x3e088d77, 0x3dec7fd6, 0x3dcccccd, 0x3db15978,
        0x3d99940d, 0x3d84fe4d, 0x3d6655c2, 0x3d47763f, 0x3d2cba15, 0x3d159348,
        0x3d0186e3, 0x3ce054d2, 0x3cc2434f, 0x3ca8398b, 0x3c91ad39, 0x3c7c4d33,
        0x3c5a7bf2, 0x3c3d3311, 0x3c23d70a, 0x3c0de12d, 0x3bf5b9b0, 0x3bd4ca15,
        0x3bb8449c, 0x3b9f91cc, 0x3b8a2e77, 0x3b6f520e, 0x3b4f3e38, 0x3b1cf9a4,
        0x3ae47c6e, 0x3aa553d9, 0x3a6d8ae2, 0x3a291d20, 0x39ee0430, 0x39a4f64a,
        0x395ffbd9, 0x3913adec, 0x38c4948c, 0x38aa3b44, 0x38936a16, 0x387f4fac,
        0x385d1725, 0x383f74d7, 0x3825cb60, 0x380f9272, 0x37f8a815, 0x37d753e4,
        0x37ba7753, 0x37a17916, 0x378bd472, 0x37722ce2,
    };
    et_rope_params p = {.type = ET_ROPE_LLAMA3, .theta = 10000.0, .factor = 8,
                        .low_freq_factor = 1, .high_freq_factor = 4, .original_max_pos = 8192};
    float inv[64];
    et_rope_inv_freq(inv, &p, 128);
    for (int i = 0; i < 64; i++) {
        uint32_t bits;
        memcpy(&bits, &inv[i], sizeof bits);
        if (bits != hf[i]) fail_msg("llama3 inv_freq[%d] = 0x%08x, HF 0x%08x", i, bits, hf[i]);
    }
}

/* The vectorisable expf of the softmaxes: within 2.6e-7 of exp over the whole finite
 * range, the top included (n = 128 there: 2^128 is no float), 0 below, inf above. */
static void fast_exp_matches_exp_over_its_range(void **state) {
    (void)state;
    double worst = 0;
    for (double x = -87.3; x <= 88.7228; x += 0.00037) {
        float xf = (float)x;
        double want = exp((double)xf), rel = fabs(et_expf(xf) - want) / want;
        if (rel > worst) worst = rel;
    }
    if (!(worst < 2.6e-7)) fail_msg("et_expf worst relative error %.3g", worst);
    assert_true(isfinite(et_expf(88.72f)));
    assert_true(isinf(et_expf(88.73f)));
    assert_true(et_expf(-88.0f) == 0.0f);
    assert_true(isnan(et_expf(NAN)));
}

static void rope_tables_and_rotation_match_formula(void **state) {
    (void)state;
    const int b = 2, t = 9, h = 3, d = 16, half = 8, max_pos = 8200;
    et_rope_params p = {.type = ET_ROPE_DEFAULT, .theta = 10000.0};
    float inv[8];
    et_rope_inv_freq(inv, &p, d);
    float *cos_tab = malloc(sizeof(float) * max_pos * half);
    float *sin_tab = malloc(sizeof(float) * max_pos * half);
    et_rope_tables(cos_tab, sin_tab, &p, max_pos, d);
    /* HF rounds pos·inv_freq to fp32 before cos/sin; at pos 8191 that rounding
     * alone moves the angle by ~5e-4, so the reference does the same. */
    const int positions[] = {0, 1, 7, 1000, 8191};
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < half; i++) {
            double angle = (float)((float)positions[k] * inv[i]);
            assert_true(fabs(cos_tab[positions[k] * half + i] - cos(angle)) <= 1e-7);
            assert_true(fabs(sin_tab[positions[k] * half + i] - sin(angle)) <= 1e-7);
        }

    const int64_t n = (int64_t)b * t * h * d;
    float *x = rand_floats(n, -1, 1), *out = malloc(n * sizeof(float));
    double *want = doubles(n);
    for (int bi = 0; bi < b; bi++)
        for (int pos = 0; pos < t; pos++)
            for (int hi = 0; hi < h; hi++)
                for (int i = 0; i < half; i++) {
                    int64_t at = (((int64_t)bi * t + pos) * h + hi) * d;
                    double c = cos_tab[pos * half + i], s = sin_tab[pos * half + i];
                    want[at + i] = x[at + i] * c - x[at + i + half] * s;
                    want[at + i + half] = x[at + i + half] * c + x[at + i] * s;
                }
    et_rope_forward(out, x, cos_tab, sin_tab, b, t, h, d);
    assert_rel_err("rope", out, want, n, 1e-6);
    et_rope_forward(x, x, cos_tab, sin_tab, b, t, h, d); /* in place */
    assert_memory_equal(x, out, n * sizeof(float));
    free(cos_tab), free(sin_tab), free(x), free(out), free(want);
}

/* ---- attention ------------------------------------------------------------------- */

/* Explicit T×T scores, mask and softmax in double. */
static void attention_reference(double *out, double *lse, const float *q, const float *k,
                                const float *v, int b, int t, int hq, int hkv, int d,
                                int window) {
    double *s = doubles(t);
    for (int bi = 0; bi < b; bi++)
        for (int h = 0; h < hq; h++) {
            int g = h / (hq / hkv);
            for (int i = 0; i < t; i++) {
                const float *qi = q + ((int64_t)(bi * t + i) * hq + h) * d;
                double m = -INFINITY;
                for (int j = 0; j < t; j++) {
                    int visible = j <= i && (window <= 0 || j > i - window);
                    s[j] = -INFINITY;
                    if (!visible) continue;
                    const float *kj = k + ((int64_t)(bi * t + j) * hkv + g) * d;
                    double dotp = 0;
                    for (int c = 0; c < d; c++) dotp += (double)qi[c] * kj[c];
                    s[j] = dotp / sqrt((double)d);
                    if (s[j] > m) m = s[j];
                }
                double sum = 0;
                for (int j = 0; j < t; j++) sum += exp(s[j] - m); /* exp(-inf) = 0 */
                double *oi = out + ((int64_t)(bi * t + i) * hq + h) * d;
                for (int c = 0; c < d; c++) oi[c] = 0;
                for (int j = 0; j < t; j++) {
                    double pj = exp(s[j] - m) / sum;
                    const float *vj = v + ((int64_t)(bi * t + j) * hkv + g) * d;
                    for (int c = 0; c < d; c++) oi[c] += pj * vj[c];
                }
                lse[((int64_t)bi * hq + h) * t + i] = m + log(sum);
            }
        }
    free(s);
}

static void check_attention(int b, int t, int hq, int hkv, int d, int window, double q_range) {
    const int64_t nq = (int64_t)b * t * hq * d, nkv = (int64_t)b * t * hkv * d;
    float *q = rand_floats(nq, -q_range, q_range), *k = rand_floats(nkv, -q_range, q_range);
    float *v = rand_floats(nkv, -1, 1), *out = malloc(nq * sizeof(float));
    float *lse = malloc((size_t)b * hq * t * sizeof(float));
    double *want = doubles(nq), *want_lse = doubles((int64_t)b * hq * t);
    et_attention_forward(out, lse, q, k, v, b, t, hq, hkv, d, window);
    attention_reference(want, want_lse, q, k, v, b, t, hq, hkv, d, window);
    char what[96];
    snprintf(what, sizeof what, "attention out (hq %d hkv %d t %d window %d)", hq, hkv, t, window);
    assert_rel_err(what, out, want, nq, 2e-6);
    snprintf(what, sizeof what, "attention lse (hq %d hkv %d t %d window %d)", hq, hkv, t, window);
    assert_rel_err(what, lse, want_lse, (int64_t)b * hq * t, 1e-6);
    free(q), free(k), free(v), free(out), free(lse), free(want), free(want_lse);
}

static void attention_matches_explicit_softmax(void **state) {
    (void)state;
    check_attention(2, 13, 4, 2, 16, 0, 1.0);   /* GQA, full causal */
    check_attention(2, 13, 4, 2, 16, 5, 1.0);   /* sliding window shorter than T */
    check_attention(1, 13, 4, 2, 16, 13, 1.0);  /* window == T: same as full */
    check_attention(1, 17, 3, 3, 8, 1, 1.0);    /* MHA, window 1: each row sees itself */
    check_attention(1, 33, 8, 1, 32, 0, 4.0);   /* MQA, peaked scores (online max rescale) */
}

/* ---- SwiGLU, cross-entropy ---------------------------------------------------------- */

static void swiglu_matches_formula(void **state) {
    (void)state;
    const int64_t n = 500;
    float *g = rand_floats(n, -8, 8), *u = rand_floats(n, -2, 2), *out = malloc(n * sizeof(float));
    g[0] = -200.0f, g[1] = 200.0f, g[2] = 0.0f; /* saturated and zero */
    double *want = doubles(n);
    for (int64_t i = 0; i < n; i++) want[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    et_swiglu_forward(out, g, u, n);
    assert_rel_err("swiglu", out, want, n, 1e-6);
    assert_true(out[0] == 0.0f && out[2] == 0.0f);
    free(g), free(u), free(out), free(want);
}

static void cross_entropy_matches_log_softmax(void **state) {
    (void)state;
    const int n = 7, vocab = 50;
    float *logits = rand_floats(n * vocab, -5, 5), losses[7], lse[7];
    const int32_t targets[] = {3, -1, 49, 0, -100, 17, 17};
    /* Row 6 is row 5 shifted by 1e4, which would overflow a naive exp. */
    for (int j = 0; j < vocab; j++) logits[6 * vocab + j] = logits[5 * vocab + j] + 1.0e4f;
    et_cross_entropy_forward(losses, lse, logits, targets, n, vocab);
    double want_lse[7], want_loss[7];
    for (int i = 0; i < n; i++) {
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < vocab; j++) m = fmax(m, logits[i * vocab + j]);
        for (int j = 0; j < vocab; j++) sum += exp(logits[i * vocab + j] - m);
        want_lse[i] = m + log(sum);
        want_loss[i] = targets[i] < 0 ? 0.0 : want_lse[i] - logits[i * vocab + targets[i]];
    }
    assert_rel_err("cross-entropy losses", losses, want_loss, n, 1e-6);
    assert_rel_err("cross-entropy lse", lse, want_lse, n, 1e-6);
    assert_true(losses[1] == 0.0f && losses[4] == 0.0f);
    /* Softmax is shift-invariant: the same loss up to the fp32 rounding of the
     * shifted logits (their spacing near 1e4 is 1e-3). */
    assert_true(fabs(losses[6] - losses[5]) < 5e-3);
    free(logits);
}

/* ---- AdamW ---------------------------------------------------------------------------- */

/* Two steps by hand (lr 0.1, betas 0.9/0.999, eps 1e-8, weight decay 0.01) for
 * param 1.0 with grads 0.5 then −0.25:
 *   step 1: p = 1·0.999 = 0.999; m = 0.05; v = 0.00025; m̂ = 0.5, √v̂ = 0.5
 *           p = 0.999 − 0.1·0.5/0.5 = 0.899
 *   step 2: p = 0.899·0.999 = 0.898101; m = 0.045 − 0.025 = 0.02;
 *           v = 0.00024975 + 0.0000625 = 0.00031225; m̂ = 0.02/0.19;
 *           √v̂ = √(0.00031225/0.001999); p = 0.898101 − 0.1·m̂/√v̂ = 0.871467299
 * and the same for param −0.5 with grads 0.1 then 0.3. */
static void adamw_matches_hand_computed_steps(void **state) {
    (void)state;
    float p[2] = {1.0f, -0.5f}, m[2] = {0, 0}, v[2] = {0, 0};
    const float g1[2] = {0.5f, 0.1f}, g2[2] = {-0.25f, 0.3f};
    et_adamw_update(p, m, v, g1, 2, 0.1, 0.9, 0.999, 1e-8, 0.01, 1);
    const double want_p1[2] = {0.899000002, -0.59949999};
    assert_rel_err("adamw step 1 param", p, want_p1, 2, 1e-6);
    et_adamw_update(p, m, v, g2, 2, 0.1, 0.9, 0.999, 1e-8, 0.01, 2);
    const double want_p2[2] = {0.871467299, -0.690678598}, want_m2[2] = {0.02, 0.039},
                 want_v2[2] = {0.00031225, 9.999e-05};
    assert_rel_err("adamw step 2 param", p, want_p2, 2, 1e-6);
    assert_rel_err("adamw step 2 m", m, want_m2, 2, 1e-6);
    /* Hyperparameters are doubles as in PyTorch, so 1 − β2 is exactly 0.001. */
    assert_rel_err("adamw step 2 v", v, want_v2, 2, 1e-6);

    /* Zero gradient and zero moments: only the decoupled weight decay acts. */
    float q[1] = {2.0f}, mq[1] = {0}, vq[1] = {0};
    const float zero[1] = {0};
    et_adamw_update(q, mq, vq, zero, 1, 0.5, 0.9, 0.999, 1e-8, 0.1, 1);
    assert_true(q[0] == 2.0f * 0.95f);
}

/* ---- dropout and its generator ----------------------------------------------------------- */

/* Random123 kat_vectors, "philox4x32 10" lines: counter, key → output. */
static void philox_known_answers(void **state) {
    (void)state;
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        et_philox4x32_10(out, kat[c], kat[c] + 4);
        for (int w = 0; w < 4; w++) assert_int_equal(out[w], kat[c][6 + w]);
    }
    /* et_uniform(seed 0, counter 0) = top 24 bits of word 0 of the all-zero block. */
    assert_true(et_uniform(0, 0) == (float)(0x6627e8d5u >> 8) / 16777216.0f);
    /* counter (lo, hi) and seed (lo, hi) map to ctr words 0-1 and key words 0-1. */
    const uint32_t ctr[4] = {0x03707344, 0x13198a2e, 0, 0}, key[2] = {0x299f31d0, 0xa4093822};
    uint32_t out[4];
    et_philox4x32_10(out, ctr, key);
    assert_true(et_uniform(0xa4093822299f31d0ull, 0x13198a2e03707344ull) ==
                (float)(out[0] >> 8) / 16777216.0f);
    /* The dropout stream: position j is word j mod 4 of the block at counter j / 4
     * (the third vector's block sits at position 4·counter). */
    const uint64_t seed3 = 0xa4093822299f31d0ull, block3 = 0x13198a2e03707344ull;
    float u4[4];
    et_dropout_uniform4(seed3, block3, u4);
    for (int w = 0; w < 4; w++) {
        assert_true(u4[w] == (float)(out[w] >> 8) / 16777216.0f);
        assert_true(et_dropout_uniform(seed3, (block3 << 2) + (uint64_t)w) == u4[w]);
    }
    assert_true(et_dropout_uniform(0, 3) == (float)(0x9b00dbd8u >> 8) / 16777216.0f);
}

static void dropout_mask_is_reproducible_and_unbiased(void **state) {
    (void)state;
    const int64_t n = 200000;
    const float p = 0.1f, scale = 1.0f / (1.0f - p);
    const uint64_t seed = 1234567;
    float *x = rand_floats(n, -1, 1), *out = malloc(n * sizeof(float));
    float *out2 = malloc(n * sizeof(float));
    uint8_t *keep = malloc(n), *keep2 = malloc(n);

    et_dropout_forward(out, keep, x, p, seed, 77, n);
    int64_t kept = 0;
    double sum_u = 0;
    for (int64_t i = 0; i < n; i++) {
        kept += keep[i];
        assert_true(out[i] == (keep[i] ? x[i] * scale : 0.0f));
        float u = et_dropout_uniform(seed, 77 + (uint64_t)i);
        assert_true(u >= 0.0f && u < 1.0f);
        assert_int_equal(keep[i], u >= p);
        sum_u += u;
    }
    /* Binomial sd of the kept fraction is 6.7e-4 here; 5e-3 is 7 sd. */
    assert_true(fabs((double)kept / n - (1.0 - p)) < 5e-3);
    assert_true(fabs(sum_u / n - 0.5) < 5e-3);

    /* Same (seed, offset): same mask. Offset shifted by 500: the mask shifts, so
     * a tensor split into chunks draws exactly the mask of the whole. */
    et_dropout_forward(out2, keep2, x, p, seed, 77, n);
    assert_memory_equal(keep, keep2, n);
    et_dropout_forward(out2, keep2, x + 500, p, seed, 77 + 500, n - 500);
    assert_memory_equal(keep + 500, keep2, n - 500);
    /* Another seed: a different mask. */
    et_dropout_forward(out2, keep2, x, p, seed + 1, 77, n);
    assert_true(memcmp(keep, keep2, n) != 0);

    /* Unaligned pieces (offsets not a multiple of 4, odd lengths) draw the same
     * positions, and a NULL mask changes nothing else. */
    for (int64_t at = 1; at < 7; at++) {
        et_dropout_forward(out2, keep2, x + at, p, seed, 77 + (uint64_t)at, 5 + at);
        assert_memory_equal(keep + at, keep2, (size_t)(5 + at));
        assert_memory_equal(out + at, out2, (size_t)(5 + at) * sizeof(float));
    }
    et_dropout_forward(out2, NULL, x, p, seed, 77, n);
    assert_memory_equal(out, out2, n * sizeof(float));

    /* p = 0 is the identity and keeps everything. */
    et_dropout_forward(out2, keep2, x, 0.0f, seed, 0, n);
    assert_memory_equal(out2, x, n * sizeof(float));
    for (int64_t i = 0; i < n; i++) assert_int_equal(keep2[i], 1);
    /* p = 1 drops everything, without NaN. */
    et_dropout_forward(out2, keep2, x, 1.0f, seed, 0, 1000);
    for (int64_t i = 0; i < 1000; i++) assert_true(out2[i] == 0.0f && keep2[i] == 0);
    free(x), free(out), free(out2), free(keep), free(keep2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedding_copies_rows),
        cmocka_unit_test(elementwise_ops_match_formulas),
        cmocka_unit_test(rmsnorm_matches_double_reference),
        cmocka_unit_test(linear_matches_double_reference),
        cmocka_unit_test(lora_adds_scaled_low_rank_product),
        cmocka_unit_test(rope_inv_freq_default_and_linear),
        cmocka_unit_test(rope_inv_freq_llama3),
        cmocka_unit_test(rope_inv_freq_llama3_bitwise_as_hf),
        cmocka_unit_test(fast_exp_matches_exp_over_its_range),
        cmocka_unit_test(rope_tables_and_rotation_match_formula),
        cmocka_unit_test(attention_matches_explicit_softmax),
        cmocka_unit_test(swiglu_matches_formula),
        cmocka_unit_test(cross_entropy_matches_log_softmax),
        cmocka_unit_test(adamw_matches_hand_computed_steps),
        cmocka_unit_test(philox_known_answers),
        cmocka_unit_test(dropout_mask_is_reproducible_and_unbiased),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
