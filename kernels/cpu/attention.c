/* Causal GQA attention with an optional sliding window, fp32 reference.
 *
 * Blocked like FlashAttention, sized for a CPU: queries are taken QB rows at a time;
 * for a block, the scores against every visible key are formed as a small matrix
 * product (S = Q·Kᵀ, written as rank-1 updates over a transposed K so the inner
 * loop runs over keys and vectorises), masked, exponentiated, and multiplied by V.
 * The scratch is QB × (keys in view) per thread: never T×T for the whole sequence.
 * Forward saves each row's log-sum-exp; backward recomputes P from it.
 *
 * Determinism: every output element is owned by exactly one task (forward: one
 * (batch, head, block); backward: one (batch, KV head), which loops over its query
 * heads and blocks in order), so results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/fast_exp.h"
#include "kernels/ops.h"

#define QB 32 /* query rows per block */

/* Keys visible to query i: [first_key(i), i]. */
static inline int first_key(int i, int window) {
    return (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
}

/* dst[c * nk + j] = src[(k0 + j) * row + c]: the block's keys (or values) transposed,
 * so products against them run over consecutive keys. */
static void transpose_rows(float *dst, const float *src, int64_t row, int k0, int nk, int d) {
    for (int j = 0; j < nk; j++)
        for (int c = 0; c < d; c++) dst[(int64_t)c * nk + j] = src[(int64_t)(k0 + j) * row + c];
}

/* s[j] = scale · Σ_c a[c] · bt[c * stride + j] for j < n (n <= stride). */
static void row_times_transposed(float *s, const float *a, const float *bt, int stride, int n,
                                 int d, float scale) {
    for (int j = 0; j < n; j++) s[j] = 0.0f;
    for (int c = 0; c < d; c++) {
        const float ac = a[c] * scale, *b = bt + (int64_t)c * stride;
#pragma omp simd
        for (int j = 0; j < n; j++) s[j] += ac * b[j];
    }
}

void et_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          int b, int t, int hq, int hkv, int d, int window) {
    const int group = hq / hkv, nblk = (t + QB - 1) / QB;
    const float scale = 1.0f / sqrtf((float)d);
    const int64_t q_row = (int64_t)hq * d, kv_row = (int64_t)hkv * d;
#pragma omp parallel
    {
        float *kt = malloc(sizeof(float) * (size_t)t * d);
        float *s = malloc(sizeof(float) * (size_t)t);
#pragma omp for collapse(3) schedule(dynamic, 1)
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < hq; h++)
                for (int blk = 0; blk < nblk; blk++) {
                    const int i0 = blk * QB, i1 = i0 + QB < t ? i0 + QB : t;
                    const int k0 = first_key(i0, window), nk = i1 - k0;
                    const float *kb = k + (int64_t)bi * t * kv_row + (int64_t)(h / group) * d;
                    const float *vb = v + (int64_t)bi * t * kv_row + (int64_t)(h / group) * d;
                    transpose_rows(kt, kb, kv_row, k0, nk, d);
                    for (int i = i0; i < i1; i++) {
                        const int64_t at = ((int64_t)bi * t + i) * q_row + (int64_t)h * d;
                        const int j0 = first_key(i, window) - k0, j1 = i - k0 + 1;
                        row_times_transposed(s, q + at, kt, nk, j1, d, scale);
                        float m = -INFINITY;
                        for (int j = j0; j < j1; j++) m = s[j] > m ? s[j] : m;
                        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
                        for (int j = j0; j < j1; j++) {
                            s[j] = et_expf(s[j] - m);
                            sum += s[j];
                        }
                        float *o = out + at;
                        for (int c = 0; c < d; c++) o[c] = 0.0f;
                        for (int j = j0; j < j1; j++) {
                            const float pj = s[j], *vj = vb + (int64_t)(k0 + j) * kv_row;
#pragma omp simd
                            for (int c = 0; c < d; c++) o[c] += pj * vj[c];
                        }
                        const float inv = (float)(1.0 / sum);
                        for (int c = 0; c < d; c++) o[c] *= inv;
                        lse[((int64_t)bi * hq + h) * t + i] = m + (float)log(sum);
                    }
                }
        free(kt);
        free(s);
    }
}

/* With P = softmax(S), S = scale·q·kᵀ, dP = dout·vᵀ and delta_i = Σ_j P_ij dP_ij =
 * dout_i · out_i:  dS = P ⊙ (dP − delta),  dq = scale·dS·k,  dk = scale·dSᵀ·q,
 * dv = Pᵀ·dout. */
void et_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           int b, int t, int hq, int hkv, int d, int window) {
    const int group = hq / hkv, nblk = (t + QB - 1) / QB;
    const float scale = 1.0f / sqrtf((float)d);
    const int64_t q_row = (int64_t)hq * d, kv_row = (int64_t)hkv * d;
#pragma omp parallel
    {
        float *kt = malloc(sizeof(float) * (size_t)t * d);
        float *vt = malloc(sizeof(float) * (size_t)t * d);
        float *p = malloc(sizeof(float) * (size_t)t);
        float *ds = malloc(sizeof(float) * (size_t)t);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int bi = 0; bi < b; bi++)
            for (int g = 0; g < hkv; g++) {
                const float *kb = k + (int64_t)bi * t * kv_row + (int64_t)g * d;
                const float *vb = v + (int64_t)bi * t * kv_row + (int64_t)g * d;
                float *dkb = dk + (int64_t)bi * t * kv_row + (int64_t)g * d;
                float *dvb = dv + (int64_t)bi * t * kv_row + (int64_t)g * d;
                for (int h = g * group; h < (g + 1) * group; h++)
                    for (int blk = 0; blk < nblk; blk++) {
                        const int i0 = blk * QB, i1 = i0 + QB < t ? i0 + QB : t;
                        const int k0 = first_key(i0, window), nk = i1 - k0;
                        transpose_rows(kt, kb, kv_row, k0, nk, d);
                        transpose_rows(vt, vb, kv_row, k0, nk, d);
                        for (int i = i0; i < i1; i++) {
                            const int64_t at = ((int64_t)bi * t + i) * q_row + (int64_t)h * d;
                            const float *qi = q + at, *gi = dout + at, *oi = out + at;
                            const int j0 = first_key(i, window) - k0, j1 = i - k0 + 1;
                            const float row_lse = lse[((int64_t)bi * hq + h) * t + i];
                            double delta_d = 0.0;
                            for (int c = 0; c < d; c++) delta_d += (double)gi[c] * oi[c];
                            const float delta = (float)delta_d;
                            row_times_transposed(p, qi, kt, nk, j1, d, scale);
                            row_times_transposed(ds, gi, vt, nk, j1, d, 1.0f);
#pragma omp simd
                            for (int j = j0; j < j1; j++) {
                                p[j] = et_expf(p[j] - row_lse);
                                ds[j] = p[j] * (ds[j] - delta);
                            }
                            float *dqi = dq + at;
                            for (int j = j0; j < j1; j++) {
                                const float dsj = scale * ds[j], pj = p[j];
                                const float *kj = kb + (int64_t)(k0 + j) * kv_row;
                                float *dkj = dkb + (int64_t)(k0 + j) * kv_row;
                                float *dvj = dvb + (int64_t)(k0 + j) * kv_row;
#pragma omp simd
                                for (int c = 0; c < d; c++) {
                                    dqi[c] += dsj * kj[c];
                                    dkj[c] += dsj * qi[c];
                                    dvj[c] += pj * gi[c];
                                }
                            }
                        }
                    }
            }
        free(kt);
        free(vt);
        free(p);
        free(ds);
    }
}
