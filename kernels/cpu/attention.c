/* Causal GQA attention with an optional sliding window, fp32 reference.
 *
 * Forward walks one query row at a time with an online softmax (running max and
 * rescaled sums), so it needs no score buffer, and saves the row's log-sum-exp.
 * Backward recomputes every probability from that lse, FlashAttention-style, in
 * two passes that each own their outputs: pass 1 owns dq rows, pass 2 owns dk/dv
 * rows. So there is no T×T buffer and no atomics, and results do not depend on the
 * thread count; the price is computing q·k and dout·v twice in backward. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/fast_exp.h"
#include "kernels/ops.h"

/* Keys visible to query i: [first_key(i), i]. */
static inline int first_key(int i, int window) {
    return (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
}
/* Queries that see key j: [j, last_query(j)]. */
static inline int last_query(int j, int t, int window) {
    return (window > 0 && j + window - 1 < t - 1) ? j + window - 1 : t - 1;
}

static inline float dot(const float *a, const float *b, int d) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static inline double dot_double(const float *a, const float *b, int d) {
    double s = 0.0;
    for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

void et_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          int b, int t, int hq, int hkv, int d, int window) {
    const int group = hq / hkv;
    const float scale = 1.0f / sqrtf((float)d);
    const int64_t q_row = (int64_t)hq * d, kv_row = (int64_t)hkv * d;
    /* Rows are uneven (row i sees up to i+1 keys): a dynamic schedule balances. */
#pragma omp parallel for collapse(3) schedule(dynamic, 8)
    for (int bi = 0; bi < b; bi++)
        for (int h = 0; h < hq; h++)
            for (int i = 0; i < t; i++) {
                const int64_t at = ((int64_t)bi * t + i) * q_row + (int64_t)h * d;
                const float *kb = k + (int64_t)bi * t * kv_row + (int64_t)(h / group) * d;
                const float *vb = v + (int64_t)bi * t * kv_row + (int64_t)(h / group) * d;
                float acc[d];
                for (int c = 0; c < d; c++) acc[c] = 0.0f;
                float m = -INFINITY;
                double sum = 0.0;
                for (int j = first_key(i, window); j <= i; j++) {
                    float s = scale * dot(q + at, kb + j * kv_row, d);
                    if (s > m) { /* new running max: rescale what was summed so far */
                        float r = et_expf(m - s);
                        sum *= r;
                        for (int c = 0; c < d; c++) acc[c] *= r;
                        m = s;
                    }
                    float e = et_expf(s - m);
                    sum += e;
                    const float *vj = vb + j * kv_row;
#pragma omp simd
                    for (int c = 0; c < d; c++) acc[c] += e * vj[c];
                }
                const float inv = (float)(1.0 / sum);
                for (int c = 0; c < d; c++) out[at + c] = acc[c] * inv;
                lse[((int64_t)bi * hq + h) * t + i] = m + (float)log(sum);
            }
}

/* With P = softmax(S), S = scale·q·kᵀ, dP = dout·vᵀ and delta_i = Σ_j P_ij dP_ij =
 * dout_i · out_i:  dS = P ⊙ (dP − delta),  dq = scale·dS·k,  dk = scale·dSᵀ·q,
 * dv = Pᵀ·dout. */
void et_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           int b, int t, int hq, int hkv, int d, int window) {
    const int group = hq / hkv;
    const float scale = 1.0f / sqrtf((float)d);
    const int64_t q_row = (int64_t)hq * d, kv_row = (int64_t)hkv * d;
    const int64_t n_rows = (int64_t)b * hq * t;
    /* delta [B, Hq, T], written by pass 1 and read by pass 2. Without memory for
     * it, pass 2 recomputes each value (same math, one more dot product). */
    float *delta = malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof(float));

    /* Pass 1: delta and dq, one query row per iteration. */
#pragma omp parallel for collapse(3) schedule(dynamic, 8)
    for (int bi = 0; bi < b; bi++)
        for (int h = 0; h < hq; h++)
            for (int i = 0; i < t; i++) {
                const int64_t at = ((int64_t)bi * t + i) * q_row + (int64_t)h * d;
                const int64_t row = ((int64_t)bi * hq + h) * t + i;
                const float *kb = k + (int64_t)bi * t * kv_row + (int64_t)(h / group) * d;
                const float *vb = v + (int64_t)bi * t * kv_row + (int64_t)(h / group) * d;
                const float delta_i = (float)dot_double(dout + at, out + at, d);
                if (delta) delta[row] = delta_i;
                float acc[d];
                for (int c = 0; c < d; c++) acc[c] = 0.0f;
                for (int j = first_key(i, window); j <= i; j++) {
                    const float *kj = kb + j * kv_row;
                    float pij = et_expf(scale * dot(q + at, kj, d) - lse[row]);
                    float ds = pij * (dot(dout + at, vb + j * kv_row, d) - delta_i);
#pragma omp simd
                    for (int c = 0; c < d; c++) acc[c] += ds * kj[c];
                }
                for (int c = 0; c < d; c++) dq[at + c] += scale * acc[c];
            }

    /* Pass 2: dk and dv, one key row of one KV head per iteration, summing over
     * every query head of its group and every query that sees the key. */
#pragma omp parallel for collapse(3) schedule(dynamic, 8)
    for (int bi = 0; bi < b; bi++)
        for (int g = 0; g < hkv; g++)
            for (int j = 0; j < t; j++) {
                const int64_t at = ((int64_t)bi * t + j) * kv_row + (int64_t)g * d;
                float acc_k[d], acc_v[d];
                for (int c = 0; c < d; c++) acc_k[c] = acc_v[c] = 0.0f;
                const int i1 = last_query(j, t, window);
                for (int h = g * group; h < (g + 1) * group; h++)
                    for (int i = j; i <= i1; i++) {
                        const int64_t qa = ((int64_t)bi * t + i) * q_row + (int64_t)h * d;
                        const int64_t row = ((int64_t)bi * hq + h) * t + i;
                        const float *qi = q + qa, *gi = dout + qa;
                        const float delta_i =
                            delta ? delta[row] : (float)dot_double(gi, out + qa, d);
                        float pij = et_expf(scale * dot(qi, k + at, d) - lse[row]);
                        float ds = pij * (dot(gi, v + at, d) - delta_i);
#pragma omp simd
                        for (int c = 0; c < d; c++) {
                            acc_k[c] += ds * qi[c];
                            acc_v[c] += pij * gi[c];
                        }
                    }
                for (int c = 0; c < d; c++) {
                    dk[at + c] += scale * acc_k[c];
                    dv[at + c] += acc_v[c];
                }
            }
    free(delta);
}
