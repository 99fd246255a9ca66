/* DP-SGD parity rows (kernels/cuda/dp.cu), included by tests/gpu/parity.c.
 *
 * The CPU reference is computed here, from trainer/dp.c's et_dp_clip_add (per-unit
 * row sums in row order, Σg² in double, f = min(1, C/(‖g‖ + 1e-6)) rounded to
 * float, sum += f·g) and trainer/dp_rng.c's et_dp_add_noise (ChaCha20 RFC 8439,
 * nonce (3, step), block i/2 per element pair, two Box-Muller pairs per element, /2):
 * gpu_parity links the kernels only (no trainer library). The ChaCha20 block below
 * is checked against RFC 8439 §2.3.2's test vector first, so a harness mistake
 * cannot make both sides agree on wrong numbers; the trainer's own function is
 * compared to the device end to end by the DP case of tests/gpu/train_parity.h. */
#include "kernels/cuda/dp_cuda.h"

static uint32_t ref_rotl(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }
static void ref_qr(uint32_t *x, int a, int b, int c, int d) {
    x[a] += x[b]; x[d] = ref_rotl(x[d] ^ x[a], 16);
    x[c] += x[d]; x[b] = ref_rotl(x[b] ^ x[c], 12);
    x[a] += x[b]; x[d] = ref_rotl(x[d] ^ x[a], 8);
    x[c] += x[d]; x[b] = ref_rotl(x[b] ^ x[c], 7);
}
static void ref_chacha20(uint32_t out[16], const uint32_t key[8], uint32_t counter,
                         const uint32_t nonce[3]) {
    uint32_t s[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
    for (int i = 0; i < 8; i++) s[4 + i] = key[i];
    s[12] = counter, s[13] = nonce[0], s[14] = nonce[1], s[15] = nonce[2];
    uint32_t x[16];
    memcpy(x, s, sizeof x);
    for (int i = 0; i < 10; i++) {
        ref_qr(x, 0, 4, 8, 12), ref_qr(x, 1, 5, 9, 13), ref_qr(x, 2, 6, 10, 14), ref_qr(x, 3, 7, 11, 15);
        ref_qr(x, 0, 5, 10, 15), ref_qr(x, 1, 6, 11, 12), ref_qr(x, 2, 7, 8, 13), ref_qr(x, 3, 4, 9, 14);
    }
    for (int i = 0; i < 16; i++) out[i] = x[i] + s[i];
}
/* RFC 8439 §2.3.2: key 00..1f, counter 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00. */
static int ref_chacha20_rfc_ok(void) {
    uint32_t key[8], nonce[3] = {0x09000000u, 0x4a000000u, 0}, out[16];
    for (int i = 0; i < 8; i++)
        key[i] = (uint32_t)(4 * i) | (uint32_t)(4 * i + 1) << 8 | (uint32_t)(4 * i + 2) << 16 |
                 (uint32_t)(4 * i + 3) << 24;
    ref_chacha20(out, key, 1, nonce);
    return out[0] == 0xe4e7f110u && out[1] == 0x15593bd1u && out[15] == 0x4e3c50a2u;
}
static double ref_u53(const uint32_t *w) {
    uint64_t bits = ((uint64_t)w[0] << 21) ^ (w[1] >> 11);
    return (double)(bits & ((1ull << 53) - 1)) * 0x1.0p-53;
}
static void ref_dp_noise(float *out, int64_t n, double std, const uint32_t key[8], uint64_t step) {
    uint32_t nonce[3] = {3u, (uint32_t)step, (uint32_t)(step >> 32)};
    for (int64_t i = 0; i < n; i += 2) {
        uint32_t block[16];
        ref_chacha20(block, key, (uint32_t)(i / 2), nonce);
        for (int e = 0; e < 2 && i + e < n; e++) {
            const uint32_t *w = block + 8 * e;
            double sum = 0;
            for (int pair = 0; pair < 2; pair++) {
                double u1 = ref_u53(w + 4 * pair), u2 = ref_u53(w + 4 * pair + 2);
                double rad = sqrt(-2.0 * log(1.0 - u1));
                sum += rad * cos(2.0 * M_PI * u2) + rad * sin(2.0 * M_PI * u2);
            }
            out[i + e] += (float)(std * sum / 2.0);
        }
    }
}

/* rows of n values; units given by first[0..n_units]; clip chosen so some units clip.
 * bad_unit >= 0 plants bad_value (inf or NaN) in that unit's last row: the unit must add
 * nothing and read as norm +inf, as et_dp_clip_add does (one overflowing unit turned the
 * whole sum into NaN, found 2026-11-26). */
static void test_dp_clip(int64_t n, int n_units, const int32_t *first, double clip_rel,
                         int bad_unit, float bad_value) {
    const int rows = first[n_units];
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld rows=%d units=%d%s", (long long)n, rows, n_units,
             bad_unit < 0 ? "" : isnan(bad_value) ? " nan-unit" : " inf-unit");
    float *g = xmalloc((size_t)rows * (size_t)n * 4);
    for (int r = 0; r < rows; r++) { /* rows of different scales: norms spread around C */
        float *row = randn(n, (float)(0.25 * (r + 1)));
        memcpy(g + (size_t)r * n, row, (size_t)n * 4);
        free(row);
    }
    if (bad_unit >= 0) g[(size_t)(first[bad_unit + 1] - 1) * n + n / 2] = bad_value;
    float *sum0 = randn(n, 0.1f), *sum = copy_of(sum0, n);
    float *gr = copy_of(g, (int64_t)rows * n);
    double *norms = xmalloc(sizeof(double) * (size_t)n_units);
    /* clip relative to the first unit's summed norm */
    double clip = 0;
    for (int u = 0; u < n_units; u++) {
        float *h = gr + (size_t)first[u] * n;
        for (int r = first[u] + 1; r < first[u + 1]; r++)
            for (int64_t i = 0; i < n; i++) h[i] += gr[(size_t)r * n + i];
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)h[i] * h[i];
        norms[u] = isfinite(ss) ? ss : INFINITY;
        if (u == 0) clip = clip_rel * sqrt(ss);
        if (!isfinite(ss)) continue; /* adds nothing */
        double f = clip / (sqrt(ss) + 1e-6);
        if (f > 1.0) f = 1.0;
        float ff = (float)f;
        for (int64_t i = 0; i < n; i++) sum[i] += ff * h[i];
    }
    float *d_g = DUP(g, (int64_t)rows * n), *d_sum = DUP(sum0, n);
    int32_t *d_first = DUP(first, n_units + 1);
    double *d_norm2 = dpoison(sizeof(double) * (size_t)n_units);
    float *d_factor = dpoison(sizeof(float) * (size_t)n_units);
    double *d_scratch = dpoison(sizeof(double) * (size_t)n_units * ETC_DP_NORM_BLOCKS);
    int rc = etc_dp_unit_norms(d_norm2, d_factor, d_scratch, d_g, n, n, d_first, n_units, clip) ||
             etc_dp_clip_sum(d_sum, d_g, n, n, d_first, d_factor, n_units);
    cmp cn = {0}, cs = {0}, cg = {0};
    double *got_n2 = xmalloc(sizeof(double) * (size_t)n_units);
    cuda_or_die(cudaMemcpy(got_n2, d_norm2, sizeof(double) * (size_t)n_units,
                           cudaMemcpyDeviceToHost), "download");
    for (int u = 0; u < n_units; u++) {
        if (u == bad_unit) { /* must read +inf exactly */
            if (!(isinf(got_n2[u]) && got_n2[u] > 0)) cn.nonfinite++;
            continue;
        }
        double e = fabs(got_n2[u] - norms[u]) / norms[u];
        if (!isfinite(got_n2[u])) cn.nonfinite++;
        if (e > cn.err) cn.err = e;
    }
    float *got_sum = down_f32(d_sum, n), *got_g = down_f32(d_g, (int64_t)rows * n);
    compare(&cs, got_sum, sum, sum0, n);
    if (bad_unit < 0) { /* the summed rows hold the planted value otherwise */
        compare(&cg, got_g, gr, NULL, (int64_t)rows * n);
        if (cg.err > cs.err) cs.err = cg.err;
        cs.nonfinite += cg.nonfinite;
    }
    g_hold = 1;
    double us;
    if (bad_unit < 0) {
        TIME_US(us, etc_dp_unit_norms(d_norm2, d_factor, d_scratch, d_g, n, n, d_first, n_units, clip));
    } else {
        us = 0; /* a correctness row: re-running would sum the rows into the first again */
    }
    report("dp.unit_norms", shape, rc, &cn, 1e-9, us, (double)rows * n * 8.0, 0);
    g_hold = 0;
    if (bad_unit < 0) {
        TIME_US(us, etc_dp_clip_sum(d_sum, d_g, n, n, d_first, d_factor, n_units));
    }
    report("dp.clip_sum", shape, rc, &cs, 1e-6, us, (double)(n_units + 2) * n * 4.0, 0);
    free(g), free(sum0), free(sum), free(gr), free(norms), free(got_n2), free(got_sum), free(got_g);
}

static void test_dp_noise(int64_t n, uint64_t step) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld step=%llu", (long long)n, (unsigned long long)step);
    uint32_t key[8];
    for (int i = 0; i < 8; i++) key[i] = (uint32_t)next_u64();
    float *base = randn(n, 0.01f), *ref = copy_of(base, n);
    ref_dp_noise(ref, n, 0.7, key, step);
    float *d = DUP(base, n);
    int rc = etc_dp_add_noise(d, n, 0.7, key, step);
    float *got = down_f32(d, n);
    cmp c = {0};
    compare(&c, got, ref, base, n);
    if (!ref_chacha20_rfc_ok()) { /* the reference itself is wrong */
        printf("dp.noise: the harness's ChaCha20 fails RFC 8439's test vector\n");
        c.err = INFINITY;
    }
    double us;
    TIME_US(us, etc_dp_add_noise(d, n, 0.7, key, step));
    report("dp.noise", shape, rc, &c, 1e-6, us, n * 8.0, 0);
    free(base), free(ref), free(got);
}
