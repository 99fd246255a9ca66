/* GPU parity harness: every CUDA op (kernels/cuda/ops_cuda.h) against its CPU
 * reference (kernels/ops.h) on fresh random inputs, forward and backward.
 *
 * Method (docs/cuda.md):
 *   - inputs are drawn fresh each run (seed printed; ET_PARITY_SEED=n repeats one);
 *   - forward outputs are poisoned with NaN before the op, so an element the op
 *     never writes shows up as NaN, and any NaN/Inf fails the row;
 *   - backward ops accumulate (+=), so gradient buffers start from random values
 *     of the same size as the increment, and the error is measured on the
 *     increment: ‖gpu − ref‖ / ‖ref − init‖;
 *   - every device buffer has 64 guard bytes after its end, filled with a pattern
 *     and checked after each op (an out-of-bounds write fails the row);
 *   - error = ‖out − ref‖₂ / ‖ref‖₂ in double; fp32 ops must be < 1e-5, bf16 ops
 *     < 1e-2 (the reference runs on the same bf16-rounded inputs in fp32);
 *     the dropout mask must match bit for bit.
 * Each op is then timed with CUDA events (2 warm-ups, median of 10) and the row
 * gives µs and achieved GB/s (memory-bound ops: bytes that must move) or TFLOP/s.
 * A second group of rows times ops at Llama-3.2-1B sizes (no reference: status
 * TIMED, never PASS).
 *
 * Exit: 0 all rows passed, 1 a row failed, 77 no CUDA device (skipped).
 * Options: --json FILE (one JSON object per row), --no-perf (skip the timed
 * Llama-sized rows), --only GROUP (e.g. attention: one group of parity rows),
 * --quick (one timed run per row: for slow runs such as under compute-sanitizer). */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/cuda/attention_bf16.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/ops.h"

#define FP32_LIMIT 1e-5
#define BF16_LIMIT 1e-2
#define GUARD_BYTES 64
#define GUARD_BYTE 0xA5
#ifndef WARMUP /* overridable for slow runs (-DWARMUP=0 -DREPS=1) */
#define WARMUP 2
#endif
#ifndef REPS
#define REPS 10
#endif

/* ---------------------------------------------------------------- random data */
static uint64_t g_rng;
static uint64_t next_u64(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform01(void) { return (double)(next_u64() >> 11) * 0x1p-53; }
static float normal(void) {
    double u1 = uniform01(), u2 = uniform01();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "parity: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}
static float *randn(int64_t n, float scale) {
    float *x = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = scale * normal();
    return x;
}
static float *zeros(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(float)); }
static float *copy_of(const float *x, int64_t n) {
    float *y = xmalloc((size_t)n * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}
/* Random values with the RMS of `like` (the backward increment): the +=
 * starting point. */
static float *init_like(const float *like, int64_t n) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)like[i] * like[i];
    float rms = n ? (float)sqrt(ss / n) : 1.0f;
    return randn(n, rms > 0.0f ? rms : 1.0f);
}

/* bf16 on the host: round to nearest even (torch's rule) and back. */
static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return 0x7FC0;
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float bf2f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Rounds x to bf16 values in place and returns the bf16 copy. */
static uint16_t *to_bf16(float *x, int64_t n) {
    uint16_t *h = xmalloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        h[i] = f2bf(x[i]);
        x[i] = bf2f(h[i]);
    }
    return h;
}

/* ---------------------------------------------------------- device buffers */
#define MAX_BUFS 64
static struct {
    char *ptr;
    size_t bytes;
} g_bufs[MAX_BUFS];
static int g_nbufs;

static void cuda_or_die(cudaError_t e, const char *what) {
    if (e != cudaSuccess) {
        fprintf(stderr, "parity: %s: %s\n", what, cudaGetErrorString(e));
        exit(1);
    }
}

/* Allocates bytes + guard; the guard is filled with GUARD_BYTE. */
static void *dalloc(size_t bytes) {
    if (g_nbufs == MAX_BUFS) {
        fprintf(stderr, "parity: too many live device buffers\n");
        exit(1);
    }
    char *p;
    cuda_or_die(cudaMalloc((void **)&p, bytes + GUARD_BYTES), "cudaMalloc");
    cuda_or_die(cudaMemset(p + bytes, GUARD_BYTE, GUARD_BYTES), "cudaMemset guard");
    g_bufs[g_nbufs].ptr = p, g_bufs[g_nbufs].bytes = bytes;
    g_nbufs++;
    return p;
}
static void *dup_(const void *host, size_t bytes) {
    void *d = dalloc(bytes);
    cuda_or_die(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), "upload");
    return d;
}
#define DUP(host, count) dup_((host), (size_t)(count) * sizeof *(host))
/* NaN everywhere (0xFF bytes are NaN in fp32 and bf16). */
static void *dpoison(size_t bytes) {
    void *d = dalloc(bytes);
    cuda_or_die(cudaMemset(d, 0xFF, bytes), "poison");
    return d;
}
static float *down_f32(const void *d, int64_t n) {
    float *h = xmalloc((size_t)n * 4);
    cuda_or_die(cudaMemcpy(h, d, (size_t)n * 4, cudaMemcpyDeviceToHost), "download");
    return h;
}
static float *down_bf16(const void *d, int64_t n) {
    uint16_t *raw = xmalloc((size_t)n * 2);
    cuda_or_die(cudaMemcpy(raw, d, (size_t)n * 2, cudaMemcpyDeviceToHost), "download");
    float *h = xmalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) h[i] = bf2f(raw[i]);
    free(raw);
    return h;
}
/* 1 when every guard is intact. */
static int guards_ok(void) {
    unsigned char g[GUARD_BYTES];
    for (int i = 0; i < g_nbufs; i++) {
        cuda_or_die(cudaMemcpy(g, g_bufs[i].ptr + g_bufs[i].bytes, GUARD_BYTES,
                               cudaMemcpyDeviceToHost),
                    "guard read");
        for (int j = 0; j < GUARD_BYTES; j++)
            if (g[j] != GUARD_BYTE) return 0;
    }
    return 1;
}
static void dfree_all(void) {
    for (int i = 0; i < g_nbufs; i++) cudaFree(g_bufs[i].ptr);
    g_nbufs = 0;
}

/* --------------------------------------------------------------- comparison */
typedef struct {
    double err; /* worst relative error over the outputs compared */
    int nonfinite;
} cmp;

/* ‖got − ref‖ / ‖ref − base‖ (base NULL: ‖ref‖); non-finite got values count. */
static void compare(cmp *c, const float *got, const float *ref, const float *base, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            c->nonfinite++;
            continue;
        }
        double d = (double)got[i] - ref[i], r = (double)ref[i] - (base ? base[i] : 0.0);
        num += d * d, den += r * r;
    }
    double e = den > 0.0 ? sqrt(num / den) : sqrt(num);
    if (e > c->err || isnan(e)) c->err = e;
}

/* Strided rows: the first `cols` of each `ld`-long row, packed; and whether the
 * columns past `cols` are bit for bit `want`'s. */
static void pack(float *dst, const float *src, int rows, int cols, int ld) {
    for (int i = 0; i < rows; i++) memcpy(dst + (size_t)i * cols, src + (size_t)i * ld, (size_t)cols * 4);
}
static int pads_equal(const float *got, const float *want, int rows, int cols, int ld) {
    for (int i = 0; i < rows; i++)
        for (int j = cols; j < ld; j++)
            if (memcmp(&got[(size_t)i * ld + j], &want[(size_t)i * ld + j], 4)) return 0;
    return 1;
}

/* ------------------------------------------------------------------ timing */
static cudaEvent_t g_ev0, g_ev1;
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}
static int g_warmup = WARMUP, g_reps = REPS; /* --quick: 0 and 1 */
/* Median µs of g_reps timed runs of `call` after g_warmup untimed ones. */
#define TIME_US(us, call)                                                          \
    do {                                                                           \
        float t_[REPS];                                                            \
        for (int w_ = 0; w_ < g_warmup; w_++) (void)(call);                        \
        for (int r_ = 0; r_ < g_reps; r_++) {                                      \
            cudaEventRecord(g_ev0, 0);                                             \
            (void)(call);                                                          \
            cudaEventRecord(g_ev1, 0);                                             \
            cudaEventSynchronize(g_ev1);                                           \
            cudaEventElapsedTime(&t_[r_], g_ev0, g_ev1);                           \
        }                                                                          \
        qsort(t_, g_reps, sizeof(float), cmp_float);                               \
        (us) = 1000.0 * t_[g_reps / 2];                                            \
        cuda_or_die(cudaDeviceSynchronize(), "timed runs");                        \
    } while (0)

/* ------------------------------------------------------------------ report */
static int g_pass, g_fail, g_timed, g_skip;
static FILE *g_json;
static int g_hold; /* 1: report() leaves the device buffers allocated */

/* One table row. rc: the op's return code; bytes / flops: the minimum traffic
 * or arithmetic for the metric (0: none). limit < 0: timed only. */
static void report(const char *op, const char *shape, int rc, const cmp *c, double limit,
                   double us, double bytes, double flops) {
    int guards = guards_ok();
    cudaError_t e = cudaDeviceSynchronize();
    const char *status;
    if (rc != 0 || e != cudaSuccess || !guards || (c && c->nonfinite)) status = "FAIL";
    else if (limit < 0) status = "TIMED";
    else status = (c->err < limit || (limit == 0 && c->err == 0)) ? "PASS" : "FAIL";
    if (!strcmp(status, "PASS")) g_pass++;
    else if (!strcmp(status, "FAIL")) g_fail++;
    else g_timed++;
    double metric = 0.0;
    const char *unit = "";
    if (us > 0 && flops > 0) metric = flops / us * 1e-6, unit = "TFLOP/s";
    else if (us > 0 && bytes > 0) metric = bytes / us * 1e-3, unit = "GB/s";
    char err_s[32], lim_s[32];
    if (c && limit >= 0) snprintf(err_s, sizeof err_s, "%.2e", c->err);
    else snprintf(err_s, sizeof err_s, "-");
    if (limit > 0) snprintf(lim_s, sizeof lim_s, "%.0e", limit);
    else snprintf(lim_s, sizeof lim_s, limit == 0 ? "exact" : "-");
    printf("%-28s %-34s %9s %6s %-5s %10.1f %8.1f %s", op, shape, err_s, lim_s, status, us,
           metric, unit);
    if (rc != 0) printf("  [rc=%d: %s]", rc, etc_last_error());
    if (e != cudaSuccess) printf("  [%s]", cudaGetErrorString(e));
    if (!guards) printf("  [guard bytes overwritten]");
    if (c && c->nonfinite) printf("  [%d non-finite values]", c->nonfinite);
    printf("\n");
    fflush(stdout);
    if (g_json)
        fprintf(g_json,
                "{\"op\":\"%s\",\"shape\":\"%s\",\"err\":%s,\"limit\":%g,\"status\":\"%s\","
                "\"us\":%.2f,\"metric\":%.3f,\"unit\":\"%s\",\"rc\":%d}\n",
                op, shape, (c && limit >= 0 && isfinite(c->err)) ? err_s : "null", limit, status,
                us, metric, unit, rc);
    if (g_json) fflush(g_json); /* a step killed at its time limit leaves whole rows */
    if (e != cudaSuccess) { /* the context is unusable after a kernel fault */
        printf("gpu_parity: aborted after a CUDA fault: %d passed, %d failed\n", g_pass, g_fail);
        if (g_json) fclose(g_json);
        exit(1);
    }
    if (!g_hold) dfree_all();
}

/* A row that cannot run on this machine (an optional library missing): printed and
 * counted as skipped, never as passed. */
static void report_skip(const char *op, const char *shape, const char *why) {
    g_skip++;
    printf("%-28s %-34s %9s %6s %-5s  [%s]\n", op, shape, "-", "-", "SKIP", why);
    fflush(stdout);
    if (g_json) {
        fprintf(g_json, "{\"op\":\"%s\",\"shape\":\"%s\",\"err\":null,\"limit\":-1,"
                        "\"status\":\"SKIP\",\"us\":0,\"metric\":0,\"unit\":\"\",\"rc\":0,\"why\":\"",
                op, shape);
        for (const char *w = why; *w; w++) /* the reason as a JSON string */
            if (*w == '"' || *w == '\\') fprintf(g_json, "\\%c", *w);
            else if ((unsigned char)*w >= 32) fputc(*w, g_json);
        fprintf(g_json, "\"}\n");
        fflush(g_json);
    }
}

/* ============================================================ parity tests */

static void test_embedding(int n, int dim, int vocab) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d dim=%d vocab=%d", n, dim, vocab);
    int32_t *ids = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(next_u64() % (uint64_t)vocab);
    const int64_t nt = (int64_t)vocab * dim, no = (int64_t)n * dim;
    float *table = randn(nt, 1.0f), *out = xmalloc((size_t)no * 4);
    et_embedding_forward(out, ids, table, n, dim);
    {
        int32_t *d_ids = DUP(ids, n);
        float *d_table = DUP(table, nt), *d_out = dpoison((size_t)no * 4);
        int rc = etc_embedding_forward(d_out, d_ids, d_table, n, dim);
        cmp c = {0};
        float *got = down_f32(d_out, no);
        compare(&c, got, out, NULL, no);
        double us;
        TIME_US(us, etc_embedding_forward(d_out, d_ids, d_table, n, dim));
        report("embedding.fwd", shape, rc, &c, FP32_LIMIT, us, 2.0 * no * 4, 0);
        free(got);
    }
    {
        float *dout = randn(no, 1.0f), *inc = zeros(nt);
        et_embedding_backward(inc, dout, ids, n, dim);
        float *init = init_like(inc, nt), *ref = copy_of(init, nt);
        et_embedding_backward(ref, dout, ids, n, dim);
        int32_t *d_ids = DUP(ids, n);
        float *d_dout = DUP(dout, no), *d_dt = DUP(init, nt);
        int rc = etc_embedding_backward(d_dt, d_dout, d_ids, n, dim);
        cmp c = {0};
        float *got = down_f32(d_dt, nt);
        compare(&c, got, ref, init, nt);
        double us;
        TIME_US(us, etc_embedding_backward(d_dt, d_dout, d_ids, n, dim));
        report("embedding.bwd", shape, rc, &c, FP32_LIMIT, us, 3.0 * no * 4, 0);
        free(dout), free(inc), free(init), free(ref), free(got);
    }
    { /* bf16 forward: a copy, so exact */
        uint16_t *tb = to_bf16(table, nt);
        et_embedding_forward(out, ids, table, n, dim);
        int32_t *d_ids = DUP(ids, n);
        uint16_t *d_table = DUP(tb, nt);
        void *d_out = dpoison((size_t)no * 2);
        int rc = etc_embedding_forward_bf16(d_out, d_ids, d_table, n, dim);
        cmp c = {0};
        float *got = down_bf16(d_out, no);
        compare(&c, got, out, NULL, no);
        double us;
        TIME_US(us, etc_embedding_forward_bf16(d_out, d_ids, d_table, n, dim));
        report("embedding.fwd.bf16", shape, rc, &c, 0, us, 2.0 * no * 2, 0);
        free(tb), free(got);
    }
    free(ids), free(table), free(out);
}

static void test_rmsnorm(int n, int dim) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d dim=%d", n, dim);
    const int64_t nx = (int64_t)n * dim;
    const float eps = 1e-5f;
    for (int bf = 0; bf <= 1; bf++) {
        float *x = randn(nx, 1.0f), *w = randn(dim, 1.0f), *dout = randn(nx, 1.0f);
        for (int j = 0; j < dim; j++) w[j] += 1.0f;
        uint16_t *xb = NULL, *wb = NULL, *gb = NULL;
        if (bf) xb = to_bf16(x, nx), wb = to_bf16(w, dim), gb = to_bf16(dout, nx);
        const size_t es = bf ? 2 : 4;
        const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
        float *out = xmalloc((size_t)nx * 4), *rstd = xmalloc((size_t)n * 4);
        et_rmsnorm_forward(out, rstd, x, w, n, dim, eps);
        void *d_x = bf ? DUP(xb, nx) : DUP(x, nx), *d_w = bf ? DUP(wb, dim) : DUP(w, dim);
        void *d_out = dpoison(nx * es);
        float *d_rstd = dpoison((size_t)n * 4);
        int rc = bf ? etc_rmsnorm_forward_bf16(d_out, d_rstd, d_x, d_w, n, dim, eps)
                    : etc_rmsnorm_forward(d_out, d_rstd, d_x, d_w, n, dim, eps);
        cmp c = {0};
        float *got = bf ? down_bf16(d_out, nx) : down_f32(d_out, nx), *gr = down_f32(d_rstd, n);
        compare(&c, got, out, NULL, nx);
        compare(&c, gr, rstd, NULL, n);
        double us;
        if (bf) TIME_US(us, etc_rmsnorm_forward_bf16(d_out, d_rstd, d_x, d_w, n, dim, eps));
        else TIME_US(us, etc_rmsnorm_forward(d_out, d_rstd, d_x, d_w, n, dim, eps));
        report(bf ? "rmsnorm.fwd.bf16" : "rmsnorm.fwd", shape, rc, &c, limit, us,
               2.0 * nx * es + dim * es + n * 4.0, 0);
        free(got), free(gr);
        for (int pad = 24; bf && pad > 0; pad = pad == 24 ? 3 : 0) {
            /* output rows `pad` longer (the K-extended LoRA layout): the same values,
             * the columns past dim untouched (24: 16-byte rows; 3: the scalar path) */
            const int ld = dim + pad;
            float *o0 = randn((int64_t)n * ld, 1.0f);
            uint16_t *o0b = to_bf16(o0, (int64_t)n * ld);
            d_x = DUP(xb, nx), d_w = DUP(wb, dim);
            void *d_o = DUP(o0b, (int64_t)n * ld);
            float *d_r = dpoison((size_t)n * 4);
            rc = etc_rmsnorm_forward_ld_bf16(d_o, ld, d_r, d_x, d_w, n, dim, eps);
            float *g2 = down_bf16(d_o, (int64_t)n * ld), *gp = xmalloc((size_t)nx * 4);
            pack(gp, g2, n, dim, ld);
            cmp cl = {0};
            compare(&cl, gp, out, NULL, nx);
            if (!pads_equal(g2, o0, n, dim, ld)) cl.err = INFINITY;
            char sh[96];
            snprintf(sh, sizeof sh, "n=%d dim=%d ld=%d", n, dim, ld);
            report("rmsnorm.fwd_ld.bf16", sh, rc, &cl, limit, 0, 0, 0);
            free(o0), free(o0b), free(g2), free(gp);
        }

        /* backward: dx and dweight from random starting points */
        float *ix = zeros(nx), *iw = zeros(dim);
        et_rmsnorm_backward(ix, iw, dout, x, w, rstd, n, dim);
        float *dx0 = init_like(ix, nx), *dw0 = init_like(iw, dim);
        uint16_t *dx0b = bf ? to_bf16(dx0, nx) : NULL;
        float *rdx = copy_of(dx0, nx), *rdw = copy_of(dw0, dim);
        et_rmsnorm_backward(rdx, rdw, dout, x, w, rstd, n, dim);
        d_x = bf ? DUP(xb, nx) : DUP(x, nx), d_w = bf ? DUP(wb, dim) : DUP(w, dim);
        void *d_g = bf ? DUP(gb, nx) : DUP(dout, nx);
        void *d_dx = bf ? DUP(dx0b, nx) : DUP(dx0, nx);
        float *d_dw = DUP(dw0, dim), *d_r = DUP(rstd, n);
        rc = bf ? etc_rmsnorm_backward_bf16(d_dx, d_dw, d_g, d_x, d_w, d_r, n, dim)
                : etc_rmsnorm_backward(d_dx, d_dw, d_g, d_x, d_w, d_r, n, dim);
        cmp cb = {0};
        float *gdx = bf ? down_bf16(d_dx, nx) : down_f32(d_dx, nx), *gdw = down_f32(d_dw, dim);
        compare(&cb, gdx, rdx, dx0, nx);
        compare(&cb, gdw, rdw, dw0, dim);
        if (bf) TIME_US(us, etc_rmsnorm_backward_bf16(d_dx, d_dw, d_g, d_x, d_w, d_r, n, dim));
        else TIME_US(us, etc_rmsnorm_backward(d_dx, d_dw, d_g, d_x, d_w, d_r, n, dim));
        report(bf ? "rmsnorm.bwd.bf16" : "rmsnorm.bwd", shape, rc, &cb, limit, us,
               4.0 * nx * es + n * 4.0, 0);
        for (int pad = 24; bf && pad > 0; pad = pad == 24 ? 3 : 0) {
            /* dx only, dout's rows `pad` longer (the K-extended d(ln) rows): what is
             * past dim in them must not be read into the result */
            const int ld = dim + pad;
            float *gl = randn((int64_t)n * ld, 50.0f);
            for (int i = 0; i < n; i++) memcpy(gl + (size_t)i * ld, dout + (size_t)i * dim, (size_t)dim * 4);
            uint16_t *glb = to_bf16(gl, (int64_t)n * ld);
            d_x = DUP(xb, nx), d_w = DUP(wb, dim), d_dx = DUP(dx0b, nx);
            void *d_gl = DUP(glb, (int64_t)n * ld);
            float *d_rs = DUP(rstd, n);
            rc = etc_rmsnorm_backward_ld_bf16(d_dx, d_gl, ld, d_x, d_w, d_rs, n, dim);
            cmp cl = {0};
            float *g2 = down_bf16(d_dx, nx);
            compare(&cl, g2, rdx, dx0, nx);
            char sh[96];
            snprintf(sh, sizeof sh, "n=%d dim=%d ld=%d", n, dim, ld);
            report("rmsnorm.bwd_ld.bf16", sh, rc, &cl, limit, 0, 0, 0);
            free(gl), free(glb), free(g2);
        }
        free(gdx), free(gdw), free(ix), free(iw), free(dx0), free(dw0), free(dx0b);
        free(rdx), free(rdw), free(x), free(w), free(dout), free(xb), free(wb), free(gb);
        free(out), free(rstd);
    }
}

/* Elementwise ops with two inputs of n values: swiglu and add. */
static void test_swiglu_add(int64_t n) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld", (long long)n);
    for (int op = 0; op < 2; op++)
        for (int bf = 0; bf <= 1; bf++) {
            float *a = randn(n, 2.0f), *b = randn(n, 1.0f), *g = randn(n, 1.0f);
            uint16_t *ab = NULL, *bb = NULL, *gb = NULL;
            if (bf) ab = to_bf16(a, n), bb = to_bf16(b, n), gb = to_bf16(g, n);
            const size_t es = bf ? 2 : 4;
            const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
            float *out = xmalloc((size_t)n * 4);
            if (op == 0) et_swiglu_forward(out, a, b, n);
            else et_add_forward(out, a, b, n);
            void *d_a = bf ? DUP(ab, n) : DUP(a, n), *d_b = bf ? DUP(bb, n) : DUP(b, n);
            void *d_o = dpoison(n * es);
#define FWD()                                                                          \
    (op == 0 ? (bf ? etc_swiglu_forward_bf16(d_o, d_a, d_b, n) : etc_swiglu_forward(d_o, d_a, d_b, n)) \
             : (bf ? etc_add_forward_bf16(d_o, d_a, d_b, n) : etc_add_forward(d_o, d_a, d_b, n)))
            int rc = FWD();
            cmp c = {0};
            float *got = bf ? down_bf16(d_o, n) : down_f32(d_o, n);
            compare(&c, got, out, NULL, n);
            double us;
            TIME_US(us, FWD());
#undef FWD
            char name[48];
            snprintf(name, sizeof name, "%s.fwd%s", op ? "add" : "swiglu", bf ? ".bf16" : "");
            report(name, shape, rc, &c, limit, us, 3.0 * n * es, 0);
            free(got);

            /* backward: two accumulated gradients */
            float *i1 = zeros(n), *i2 = zeros(n);
            if (op == 0) et_swiglu_backward(i1, i2, g, a, b, n);
            else et_add_backward(i1, i2, g, n);
            float *s1 = init_like(i1, n), *s2 = init_like(i2, n);
            uint16_t *s1b = bf ? to_bf16(s1, n) : NULL, *s2b = bf ? to_bf16(s2, n) : NULL;
            float *r1 = copy_of(s1, n), *r2 = copy_of(s2, n);
            if (op == 0) et_swiglu_backward(r1, r2, g, a, b, n);
            else et_add_backward(r1, r2, g, n);
            d_a = bf ? DUP(ab, n) : DUP(a, n), d_b = bf ? DUP(bb, n) : DUP(b, n);
            void *d_g = bf ? DUP(gb, n) : DUP(g, n);
            void *d_1 = bf ? DUP(s1b, n) : DUP(s1, n), *d_2 = bf ? DUP(s2b, n) : DUP(s2, n);
#define BWD()                                                                               \
    (op == 0 ? (bf ? etc_swiglu_backward_bf16(d_1, d_2, d_g, d_a, d_b, n)                   \
                   : etc_swiglu_backward(d_1, d_2, d_g, d_a, d_b, n))                       \
             : (bf ? etc_add_backward_bf16(d_1, d_2, d_g, n) : etc_add_backward(d_1, d_2, d_g, n)))
            rc = BWD();
            cmp cb = {0};
            float *g1 = bf ? down_bf16(d_1, n) : down_f32(d_1, n);
            float *g2 = bf ? down_bf16(d_2, n) : down_f32(d_2, n);
            compare(&cb, g1, r1, s1, n);
            compare(&cb, g2, r2, s2, n);
            TIME_US(us, BWD());
#undef BWD
            snprintf(name, sizeof name, "%s.bwd%s", op ? "add" : "swiglu", bf ? ".bf16" : "");
            report(name, shape, rc, &cb, limit, us, (op == 0 ? 7.0 : 5.0) * n * es, 0);
            free(g1), free(g2), free(i1), free(i2), free(s1), free(s2), free(s1b), free(s2b);
            free(r1), free(r2), free(a), free(b), free(g), free(ab), free(bb), free(gb), free(out);
        }
}

static void test_rope(int b, int t, int h, int d) {
    char shape[96];
    snprintf(shape, sizeof shape, "b=%d t=%d h=%d d=%d", b, t, h, d);
    const et_rope_params p = {ET_ROPE_LLAMA3, 500000.0, 32.0, 1.0, 4.0, 8192.0};
    const int64_t n = (int64_t)b * t * h * d, nt = (int64_t)t * (d / 2);
    float *ct = xmalloc((size_t)nt * 4), *st = xmalloc((size_t)nt * 4);
    et_rope_tables(ct, st, &p, t, d);
    for (int bf = 0; bf <= 1; bf++) {
        float *x = randn(n, 1.0f), *g = randn(n, 1.0f);
        uint16_t *xb = bf ? to_bf16(x, n) : NULL, *gb = bf ? to_bf16(g, n) : NULL;
        const size_t es = bf ? 2 : 4;
        const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
        float *out = xmalloc((size_t)n * 4);
        et_rope_forward(out, x, ct, st, b, t, h, d);
        float *d_c = DUP(ct, nt), *d_s = DUP(st, nt);
        void *d_x = bf ? DUP(xb, n) : DUP(x, n), *d_o = dpoison(n * es);
        int rc = bf ? etc_rope_forward_bf16(d_o, d_x, d_c, d_s, b, t, h, d)
                    : etc_rope_forward(d_o, d_x, d_c, d_s, b, t, h, d);
        cmp c = {0};
        float *got = bf ? down_bf16(d_o, n) : down_f32(d_o, n);
        compare(&c, got, out, NULL, n);
        /* in place (out == x) must give the same result */
        rc |= bf ? etc_rope_forward_bf16(d_x, d_x, d_c, d_s, b, t, h, d)
                 : etc_rope_forward(d_x, d_x, d_c, d_s, b, t, h, d);
        float *got2 = bf ? down_bf16(d_x, n) : down_f32(d_x, n);
        compare(&c, got2, out, NULL, n);
        double us;
        if (bf) TIME_US(us, etc_rope_forward_bf16(d_o, d_x, d_c, d_s, b, t, h, d));
        else TIME_US(us, etc_rope_forward(d_o, d_x, d_c, d_s, b, t, h, d));
        report(bf ? "rope.fwd.bf16" : "rope.fwd", shape, rc, &c, limit, us, 2.0 * n * es, 0);
        free(got), free(got2);

        float *inc = zeros(n);
        et_rope_backward(inc, g, ct, st, b, t, h, d);
        float *s0 = init_like(inc, n);
        uint16_t *s0b = bf ? to_bf16(s0, n) : NULL;
        float *ref = copy_of(s0, n);
        et_rope_backward(ref, g, ct, st, b, t, h, d);
        d_c = DUP(ct, nt), d_s = DUP(st, nt);
        void *d_g = bf ? DUP(gb, n) : DUP(g, n), *d_dx = bf ? DUP(s0b, n) : DUP(s0, n);
        rc = bf ? etc_rope_backward_bf16(d_dx, d_g, d_c, d_s, b, t, h, d)
                : etc_rope_backward(d_dx, d_g, d_c, d_s, b, t, h, d);
        cmp cb = {0};
        got = bf ? down_bf16(d_dx, n) : down_f32(d_dx, n);
        compare(&cb, got, ref, s0, n);
        if (bf) TIME_US(us, etc_rope_backward_bf16(d_dx, d_g, d_c, d_s, b, t, h, d));
        else TIME_US(us, etc_rope_backward(d_dx, d_g, d_c, d_s, b, t, h, d));
        report(bf ? "rope.bwd.bf16" : "rope.bwd", shape, rc, &cb, limit, us, 3.0 * n * es, 0);
        if (bf) { /* the overwriting backward, in place over dout as the trainer runs it
                   * (report() freed the device buffers: upload again) */
            d_c = DUP(ct, nt), d_s = DUP(st, nt);
            void *d_io = DUP(gb, n);
            rc = etc_rope_backward_set_bf16(d_io, d_io, d_c, d_s, b, t, h, d);
            cmp cs = {0};
            float *got3 = down_bf16(d_io, n);
            compare(&cs, got3, inc, NULL, n);
            TIME_US(us, etc_rope_backward_set_bf16(d_io, d_io, d_c, d_s, b, t, h, d));
            report("rope.bwd_set.bf16", shape, rc, &cs, limit, us, 2.0 * n * es, 0);
            free(got3);
        }
        free(got), free(inc), free(s0), free(s0b), free(ref), free(x), free(g), free(xb);
        free(gb), free(out);
    }
    free(ct), free(st);
}

static void test_cross_entropy(int n, int vocab) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d vocab=%d", n, vocab);
    const int64_t nl = (int64_t)n * vocab;
    int32_t *tg = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++)
        tg[i] = (next_u64() % 5 == 0) ? -100 : (int32_t)(next_u64() % (uint64_t)vocab);
    float *dloss = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++) dloss[i] = 1.0f / n;
    for (int bf = 0; bf <= 1; bf++) {
        float *lg = randn(nl, 3.0f);
        uint16_t *lb = bf ? to_bf16(lg, nl) : NULL;
        const size_t es = bf ? 2 : 4;
        const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
        float *loss = xmalloc((size_t)n * 4), *lse = xmalloc((size_t)n * 4);
        et_cross_entropy_forward(loss, lse, lg, tg, n, vocab);
        void *d_l = bf ? DUP(lb, nl) : DUP(lg, nl);
        int32_t *d_t = DUP(tg, n);
        float *d_loss = dpoison((size_t)n * 4), *d_lse = dpoison((size_t)n * 4);
        int rc = bf ? etc_cross_entropy_forward_bf16(d_loss, d_lse, d_l, d_t, n, vocab)
                    : etc_cross_entropy_forward(d_loss, d_lse, d_l, d_t, n, vocab);
        cmp c = {0};
        float *gl = down_f32(d_loss, n), *gs = down_f32(d_lse, n);
        /* losses and lse are fp32 on both paths, from the same (rounded) logits */
        compare(&c, gl, loss, NULL, n);
        compare(&c, gs, lse, NULL, n);
        double us;
        if (bf) TIME_US(us, etc_cross_entropy_forward_bf16(d_loss, d_lse, d_l, d_t, n, vocab));
        else TIME_US(us, etc_cross_entropy_forward(d_loss, d_lse, d_l, d_t, n, vocab));
        report(bf ? "cross_entropy.fwd.bf16" : "cross_entropy.fwd", shape, rc, &c, FP32_LIMIT,
               us, (double)nl * es, 0);
        free(gl), free(gs);

        float *inc = zeros(nl);
        et_cross_entropy_backward(inc, lg, lse, tg, dloss, n, vocab);
        float *s0 = init_like(inc, nl);
        uint16_t *s0b = bf ? to_bf16(s0, nl) : NULL;
        float *ref = copy_of(s0, nl);
        et_cross_entropy_backward(ref, lg, lse, tg, dloss, n, vocab);
        d_l = bf ? DUP(lb, nl) : DUP(lg, nl);
        d_t = DUP(tg, n);
        float *d_lse2 = DUP(lse, n), *d_dl = DUP(dloss, n);
        void *d_g = bf ? DUP(s0b, nl) : DUP(s0, nl);
        rc = bf ? etc_cross_entropy_backward_bf16(d_g, d_l, d_lse2, d_t, d_dl, n, vocab)
                : etc_cross_entropy_backward(d_g, d_l, d_lse2, d_t, d_dl, n, vocab);
        cmp cb = {0};
        float *got = bf ? down_bf16(d_g, nl) : down_f32(d_g, nl);
        compare(&cb, got, ref, s0, nl);
        if (bf) TIME_US(us, etc_cross_entropy_backward_bf16(d_g, d_l, d_lse2, d_t, d_dl, n, vocab));
        else TIME_US(us, etc_cross_entropy_backward(d_g, d_l, d_lse2, d_t, d_dl, n, vocab));
        report(bf ? "cross_entropy.bwd.bf16" : "cross_entropy.bwd", shape, rc, &cb, limit, us,
               3.0 * nl * es, 0);
        free(got), free(inc), free(s0), free(s0b), free(ref), free(lg), free(lb), free(loss);
        free(lse);
    }
    free(tg), free(dloss);
}

static void test_adamw(int64_t n) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld step=3", (long long)n);
    float *p = randn(n, 1.0f), *m = randn(n, 0.01f), *v = randn(n, 1e-4f), *g = randn(n, 0.1f);
    for (int64_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    float *d_p = DUP(p, n), *d_m = DUP(m, n), *d_v = DUP(v, n), *d_g = DUP(g, n);
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    et_adamw_update(p, m, v, g, n, lr, b1, b2, eps, wd, 3);
    int rc = etc_adamw_update(d_p, d_m, d_v, d_g, n, lr, b1, b2, eps, wd, 3);
    cmp c = {0};
    float *gp = down_f32(d_p, n), *gm = down_f32(d_m, n), *gv = down_f32(d_v, n);
    compare(&c, gp, p, NULL, n); /* lr = 1e-2: a missing update is a 1e-2 error */
    compare(&c, gm, m, NULL, n);
    compare(&c, gv, v, NULL, n);
    double us;
    TIME_US(us, etc_adamw_update(d_p, d_m, d_v, d_g, n, lr, b1, b2, eps, wd, 3));
    report("adamw", shape, rc, &c, FP32_LIMIT, us, 7.0 * n * 4, 0);
    free(p), free(m), free(v), free(g), free(gp), free(gm), free(gv);
}

static void test_dropout(int64_t n, float p) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld p=%g", (long long)n, p);
    const uint64_t seed = next_u64(), offset = next_u64() >> 20;
    for (int bf = 0; bf <= 1; bf++) {
        float *x = randn(n, 1.0f), *g = randn(n, 1.0f);
        uint16_t *xb = bf ? to_bf16(x, n) : NULL, *gb = bf ? to_bf16(g, n) : NULL;
        const size_t es = bf ? 2 : 4;
        const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
        float *out = xmalloc((size_t)n * 4);
        uint8_t *keep = xmalloc((size_t)n);
        et_dropout_forward(out, keep, x, p, seed, offset, n);
        void *d_x = bf ? DUP(xb, n) : DUP(x, n), *d_o = dpoison(n * es);
        uint8_t *d_k = dpoison((size_t)n);
        int rc = bf ? etc_dropout_forward_bf16(d_o, d_k, d_x, p, seed, offset, n)
                    : etc_dropout_forward(d_o, d_k, d_x, p, seed, offset, n);
        cmp c = {0}, cm = {0};
        float *got = bf ? down_bf16(d_o, n) : down_f32(d_o, n);
        compare(&c, got, out, NULL, n);
        uint8_t *gk = xmalloc((size_t)n);
        cuda_or_die(cudaMemcpy(gk, d_k, (size_t)n, cudaMemcpyDeviceToHost), "download");
        { /* without a mask buffer (the trainer's forward): the same output */
            void *d_o2 = dpoison(n * es);
            rc |= bf ? etc_dropout_forward_bf16(d_o2, NULL, d_x, p, seed, offset, n)
                     : etc_dropout_forward(d_o2, NULL, d_x, p, seed, offset, n);
            float *got2 = bf ? down_bf16(d_o2, n) : down_f32(d_o2, n);
            compare(&c, got2, out, NULL, n);
            free(got2);
        }
        int64_t mismatched = 0;
        for (int64_t i = 0; i < n; i++) mismatched += gk[i] != keep[i];
        cm.err = (double)mismatched / (double)(n ? n : 1);
        double us;
        if (bf) TIME_US(us, etc_dropout_forward_bf16(d_o, d_k, d_x, p, seed, offset, n));
        else TIME_US(us, etc_dropout_forward(d_o, d_k, d_x, p, seed, offset, n));
        char name[48];
        snprintf(name, sizeof name, "dropout.fwd%s", bf ? ".bf16" : "");
        report(name, shape, rc, &c, limit, us, (double)n * (2 * es + 1), 0);
        /* the mask itself, bit for bit (the guard/rc checks ran in the row above) */
        snprintf(name, sizeof name, "dropout.mask%s", bf ? ".bf16" : "");
        report(name, shape, 0, &cm, 0, 0, 0, 0);
        free(got), free(gk);

        float *inc = zeros(n);
        et_dropout_backward(inc, g, keep, p, n);
        float *s0 = init_like(inc, n);
        uint16_t *s0b = bf ? to_bf16(s0, n) : NULL;
        float *ref = copy_of(s0, n);
        et_dropout_backward(ref, g, keep, p, n);
        void *d_g = bf ? DUP(gb, n) : DUP(g, n), *d_dx = bf ? DUP(s0b, n) : DUP(s0, n);
        d_k = DUP(keep, n);
        rc = bf ? etc_dropout_backward_bf16(d_dx, d_g, d_k, p, n)
                : etc_dropout_backward(d_dx, d_g, d_k, p, n);
        cmp cb = {0};
        got = bf ? down_bf16(d_dx, n) : down_f32(d_dx, n);
        compare(&cb, got, ref, s0, n);
        if (bf) TIME_US(us, etc_dropout_backward_bf16(d_dx, d_g, d_k, p, n));
        else TIME_US(us, etc_dropout_backward(d_dx, d_g, d_k, p, n));
        snprintf(name, sizeof name, "dropout.bwd%s", bf ? ".bf16" : "");
        report(name, shape, rc, &cb, limit, us, (double)n * (3 * es + 1), 0);
        if (bf) { /* the mask drawn again in the kernel (report() freed the buffers) */
            d_g = DUP(gb, n), d_dx = DUP(s0b, n);
            rc = etc_dropout_backward_redraw_bf16(d_dx, d_g, p, seed, offset, n);
            cmp cr = {0};
            float *got_r = down_bf16(d_dx, n);
            compare(&cr, got_r, ref, s0, n);
            TIME_US(us, etc_dropout_backward_redraw_bf16(d_dx, d_g, p, seed, offset, n));
            report("dropout.bwd_redraw.bf16", shape, rc, &cr, limit, us, (double)n * 3 * es, 0);
            free(got_r);
        }
        free(got), free(inc), free(s0), free(s0b), free(ref), free(x), free(g), free(xb);
        free(gb), free(out), free(keep);
    }
}

static void test_linear(int n, int in, int out_dim, int with_bias) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d in=%d out=%d%s", n, in, out_dim, with_bias ? " +bias" : "");
    const int64_t nx = (int64_t)n * in, nw = (int64_t)out_dim * in, no = (int64_t)n * out_dim;
    const double flops = 2.0 * n * in * out_dim;
    for (int bf = 0; bf <= 1; bf++) {
        float *x = randn(nx, 1.0f), *w = randn(nw, 0.05f), *bias = with_bias ? randn(out_dim, 1.0f) : NULL;
        float *g = randn(no, 1.0f);
        uint16_t *xb = NULL, *wb = NULL, *bb = NULL, *gb = NULL;
        if (bf) {
            xb = to_bf16(x, nx), wb = to_bf16(w, nw), gb = to_bf16(g, no);
            if (bias) bb = to_bf16(bias, out_dim);
        }
        const size_t es = bf ? 2 : 4;
        const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
        float *out = xmalloc((size_t)no * 4);
        et_linear_forward(out, x, w, bias, n, in, out_dim);
        void *d_x = bf ? DUP(xb, nx) : DUP(x, nx), *d_w = bf ? DUP(wb, nw) : DUP(w, nw);
        void *d_b = NULL;
        if (bias) d_b = bf ? DUP(bb, out_dim) : DUP(bias, out_dim);
        void *d_o = dpoison(no * es);
        int rc = bf ? etc_linear_forward_bf16(d_o, d_x, d_w, d_b, n, in, out_dim)
                    : etc_linear_forward(d_o, d_x, d_w, d_b, n, in, out_dim);
        cmp c = {0};
        float *got = bf ? down_bf16(d_o, no) : down_f32(d_o, no);
        compare(&c, got, out, NULL, no);
        double us;
        if (bf) TIME_US(us, etc_linear_forward_bf16(d_o, d_x, d_w, d_b, n, in, out_dim));
        else TIME_US(us, etc_linear_forward(d_o, d_x, d_w, d_b, n, in, out_dim));
        report(bf ? "linear.fwd.bf16" : "linear.fwd", shape, rc, &c, limit, us, 0, flops);
        free(got);

        float *idx = zeros(nx), *idw = zeros(nw), *idb = zeros(out_dim);
        et_linear_backward(idx, idw, with_bias ? idb : NULL, g, x, w, n, in, out_dim);
        float *sx = init_like(idx, nx), *sw = init_like(idw, nw), *sb = init_like(idb, out_dim);
        uint16_t *sxb = bf ? to_bf16(sx, nx) : NULL;
        float *rx = copy_of(sx, nx), *rw = copy_of(sw, nw), *rb = copy_of(sb, out_dim);
        et_linear_backward(rx, rw, with_bias ? rb : NULL, g, x, w, n, in, out_dim);
        d_x = bf ? DUP(xb, nx) : DUP(x, nx), d_w = bf ? DUP(wb, nw) : DUP(w, nw);
        void *d_g = bf ? DUP(gb, no) : DUP(g, no), *d_dx = bf ? DUP(sxb, nx) : DUP(sx, nx);
        float *d_dw = DUP(sw, nw), *d_db = with_bias ? DUP(sb, out_dim) : NULL;
        if (bf) rc = etc_linear_backward_bf16(d_dx, d_dw, d_db, d_g, d_x, d_w, n, in, out_dim);
        else rc = etc_linear_backward(d_dx, d_dw, d_db, d_g, d_x, d_w, n, in, out_dim);
        cmp cb = {0};
        float *gx = bf ? down_bf16(d_dx, nx) : down_f32(d_dx, nx), *gw = down_f32(d_dw, nw);
        compare(&cb, gx, rx, sx, nx);
        compare(&cb, gw, rw, sw, nw);
        if (with_bias) {
            float *gbias = down_f32(d_db, out_dim);
            compare(&cb, gbias, rb, sb, out_dim);
            free(gbias);
        }
        if (bf) TIME_US(us, etc_linear_backward_bf16(d_dx, d_dw, d_db, d_g, d_x, d_w, n, in, out_dim));
        else TIME_US(us, etc_linear_backward(d_dx, d_dw, d_db, d_g, d_x, d_w, n, in, out_dim));
        report(bf ? "linear.bwd.bf16" : "linear.bwd", shape, rc, &cb, limit, us, 0, 2 * flops);
        free(gx), free(gw), free(idx), free(idw), free(idb), free(sx), free(sw), free(sb);
        free(sxb), free(rx), free(rw), free(rb), free(x), free(w), free(bias), free(g), free(xb);
        free(wb), free(bb), free(gb), free(out);
    }
}

/* The strided GEMMs (etc_matmul_bf16_ld, etc_matmul_bf16_f32out_ld): operands whose
 * rows are `pad` elements longer than their columns, C in its own buffer. Checks the
 * logical result against et_matmul on packed copies, and that C and the padding
 * columns of D come back bit for bit as uploaded (an error there reads as err inf). */
static void test_matmul_ld(int m, int n, int k, int trans_a, int trans_b, int pad) {
    char shape[96];
    snprintf(shape, sizeof shape, "m=%d n=%d k=%d%s%s pad=%d", m, n, k, trans_a ? " A^T" : "",
             trans_b ? " B^T" : "", pad);
    const int ar = trans_a ? k : m, ac = trans_a ? m : k, br = trans_b ? n : k, bc = trans_b ? k : n;
    const int lda = ac + pad, ldb = bc + pad, ldd = n + pad;
    const int64_t na = (int64_t)ar * lda, nb = (int64_t)br * ldb, nd = (int64_t)m * ldd;
    float *a = randn(na, 1.0f), *b = randn(nb, 1.0f), *c = randn(nd, 1.0f), *d0 = randn(nd, 1.0f);
    uint16_t *ab = to_bf16(a, na), *bb = to_bf16(b, nb), *cb = to_bf16(c, nd), *db0 = to_bf16(d0, nd);
    float *ap = xmalloc((size_t)ar * ac * 4), *bp = xmalloc((size_t)br * bc * 4);
    float *ref = xmalloc((size_t)m * n * 4), *cp = xmalloc((size_t)m * n * 4);
    pack(ap, a, ar, ac, lda), pack(bp, b, br, bc, ldb), pack(cp, c, m, n, ldd);
    memcpy(ref, cp, (size_t)m * n * 4);
    et_matmul(ref, ap, bp, m, n, k, trans_a, trans_b, 0.5f, 1.0f);
    for (int f32 = 0; f32 <= 1; f32++) {
        void *d_a = DUP(ab, na), *d_b = DUP(bb, nb), *d_c = DUP(cb, nd);
        void *d_d = f32 ? DUP(c, nd) : DUP(db0, nd);
        int rc = f32 ? etc_matmul_bf16_f32out_ld(d_d, ldd, d_a, lda, d_b, ldb, m, n, k, trans_a,
                                                 trans_b, 0.5f, 1.0f)
                     : etc_matmul_bf16_ld(d_d, ldd, d_c, d_a, lda, d_b, ldb, NULL, m, n, k, trans_a,
                                          trans_b, 0.5f, 1.0f);
        float *got = f32 ? down_f32(d_d, nd) : down_bf16(d_d, nd), *c_after = down_bf16(d_c, nd);
        float *gp = xmalloc((size_t)m * n * 4);
        pack(gp, got, m, n, ldd);
        cmp cm = {0};
        compare(&cm, gp, ref, cp, (int64_t)m * n);
        const int intact = pads_equal(got, f32 ? c : d0, m, n, ldd) && !memcmp(c_after, c, (size_t)nd * 4);
        if (!intact) cm.err = INFINITY;
        /* fp32 output: bf16 products summed in fp32, as et_matmul does in double */
        report(f32 ? "matmul.ld.f32out" : "matmul.ld.bf16", shape, rc, &cm,
               f32 ? FP32_LIMIT : BF16_LIMIT, 0, 0, 0);
        free(got), free(c_after), free(gp);
    }
    free(a), free(b), free(c), free(d0), free(ab), free(bb), free(cb), free(db0), free(ap), free(bp);
    free(ref), free(cp);
}

/* The K-extended LoRA layout's two helpers, bit for bit against the host: the
 * strided upload cast (etc_cast_f32_to_bf16_rows) and the weight columns holding
 * scale·B (etc_lora_kext_weights_bf16: the member's block, zeros elsewhere; the
 * weight's own columns untouched). */
static void test_kext_weights(int r) {
    char shape[96];
    snprintf(shape, sizeof shape, "r=%d, 3 weights", r);
    enum { SEGS = 3 };
    const int in = 40, rows[SEGS] = {37, 5, 64}, width[SEGS] = {3 * r, 3 * r, 2 * r};
    const int col0[SEGS] = {0, -1, r}; /* first member, not LoRA'd, second member */
    const float scale = 1.7f;
    int64_t np = 0, b_off[SEGS], w_off[SEGS], wtotal = 0;
    for (int i = 0; i < SEGS; i++) {
        b_off[i] = col0[i] >= 0 ? np : -1;
        if (col0[i] >= 0) np += (int64_t)rows[i] * r;
        w_off[i] = wtotal, wtotal += (int64_t)rows[i] * (in + width[i]);
    }
    float *params = randn(np, 1.0f), *w0 = randn(wtotal, 1.0f);
    uint16_t *w0b = to_bf16(w0, wtotal);
    float *want = copy_of(w0, wtotal);
    for (int i = 0; i < SEGS; i++)
        for (int row = 0; row < rows[i]; row++)
            for (int c = 0; c < width[i]; c++) {
                const int j = c - col0[i];
                const float v = col0[i] >= 0 && j >= 0 && j < r ? scale * params[b_off[i] + (int64_t)row * r + j] : 0.0f;
                want[w_off[i] + (int64_t)row * (in + width[i]) + in + c] = bf2f(f2bf(v));
            }
    etc_bf16 *d_w = DUP(w0b, wtotal);
    float *d_p = DUP(params, np);
    etc_kext_seg h[SEGS];
    int64_t max_elems = 0;
    for (int i = 0; i < SEGS; i++) {
        h[i] = (etc_kext_seg){d_w + w_off[i] + in, in + width[i], b_off[i], rows[i], width[i], col0[i]};
        if ((int64_t)rows[i] * width[i] > max_elems) max_elems = (int64_t)rows[i] * width[i];
    }
    etc_kext_seg *d_s = dup_(h, sizeof h);
    int rc = etc_lora_kext_weights_bf16(d_s, SEGS, max_elems, d_p, r, scale);
    float *got = down_bf16(d_w, wtotal);
    cmp c = {0};
    for (int64_t e = 0; e < wtotal; e++) c.err += memcmp(&got[e], &want[e], 4) != 0; /* mismatches */
    report("lora.kext_weights.bf16", shape, rc, &c, 0, 0, 0, 0);
    free(got);

    /* the strided upload: rows[0] × in values into the first weight's layout */
    d_w = DUP(w0b, wtotal);
    float *src = randn((int64_t)rows[0] * in, 1.0f);
    float *d_in = DUP(src, (int64_t)rows[0] * in);
    rc = etc_cast_f32_to_bf16_rows(d_w, in + width[0], d_in, rows[0], in);
    got = down_bf16(d_w, wtotal);
    float *want2 = copy_of(w0, wtotal);
    for (int row = 0; row < rows[0]; row++)
        for (int col = 0; col < in; col++)
            want2[(int64_t)row * (in + width[0]) + col] = bf2f(f2bf(src[(int64_t)row * in + col]));
    cmp c2 = {0};
    for (int64_t e = 0; e < wtotal; e++) c2.err += memcmp(&got[e], &want2[e], 4) != 0;
    report("cast.rows.bf16", shape, rc, &c2, 0, 0, 0, 0);
    free(got), free(want2), free(src), free(params), free(w0), free(w0b), free(want);
}

/* etc_lora_dropout_dx_bf16: k members' masked dxa_j·A_j summed into dx, against
 * the CPU's per-member composition (et_matmul, et_dropout_forward's mask at the
 * member's offset, et_dropout_backward); accumulating onto a random dx, and
 * overwriting a poisoned one (every element must be written). */
static void test_lora_dropout_dx(int n, int in, int k, int r, float p) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d in=%d k=%d r=%d p=%g", n, in, k, r, p);
    const int kr = k * r;
    const int64_t nx = (int64_t)n * in;
    const uint64_t seed = next_u64(), base_off = (next_u64() >> 30) << 2;
    uint64_t offs[3];
    for (int j = 0; j < k; j++) offs[j] = base_off + ((uint64_t)j << 36);
    float *dxa = randn((int64_t)n * kr, 1.0f), *a = randn((int64_t)kr * in, 0.3f);
    uint16_t *dxab = to_bf16(dxa, (int64_t)n * kr), *ab = to_bf16(a, (int64_t)kr * in);
    float *sum = zeros(nx), *xd = xmalloc((size_t)nx * 4), *dj = xmalloc((size_t)n * r * 4);
    float *ones = xmalloc((size_t)nx * 4), *junk = xmalloc((size_t)nx * 4);
    uint8_t *keep = xmalloc((size_t)nx);
    for (int64_t e = 0; e < nx; e++) ones[e] = 1.0f;
    for (int j = 0; j < k; j++) {
        for (int i = 0; i < n; i++) memcpy(dj + (size_t)i * r, dxa + (size_t)i * kr + j * r, (size_t)r * 4);
        memset(xd, 0, (size_t)nx * 4);
        et_matmul(xd, dj, a + (size_t)j * r * in, n, in, r, 0, 0, 1.0f, 0.0f);
        et_dropout_forward(junk, keep, ones, p, seed, offs[j], nx);
        et_dropout_backward(sum, xd, keep, p, nx);
    }
    for (int ow = 0; ow <= 1; ow++) {
        float *base = ow ? zeros(nx) : randn(nx, 1.0f);
        uint16_t *baseb = to_bf16(base, nx);
        float *ref = copy_of(base, nx);
        for (int64_t e = 0; e < nx; e++) ref[e] += sum[e];
        void *d_dx = ow ? dpoison((size_t)nx * 2) : DUP(baseb, nx);
        void *d_dxa = DUP(dxab, (int64_t)n * kr), *d_a = DUP(ab, (int64_t)kr * in);
        int rc = etc_lora_dropout_dx_bf16(d_dx, d_dxa, kr, d_a, n, in, k, r, p, seed, offs, ow);
        cmp c = {0};
        float *got = down_bf16(d_dx, nx);
        compare(&c, got, ref, base, nx);
        double us;
        TIME_US(us, etc_lora_dropout_dx_bf16(d_dx, d_dxa, kr, d_a, n, in, k, r, p, seed, offs, 1));
        report(ow ? "lora.dropout_dx.set.bf16" : "lora.dropout_dx.bf16", shape, rc, &c, BF16_LIMIT, us,
               (double)nx * 4, 0);
        free(base), free(baseb), free(ref), free(got);
    }
    free(dxa), free(a), free(dxab), free(ab), free(sum), free(xd), free(dj), free(ones), free(junk);
    free(keep);
}

/* etc_lora_dropout_da_bf16: each member's dA = dxa_jᵀ·drop_j(x), added into a random
 * fp32 da, against the CPU's dropout and GEMM per member; scratch sized for `splits`
 * row splits at most (1: one split, all rows in one block column). */
static void test_lora_dropout_da(int n, int in, int k, int r, float p, int splits) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d in=%d k=%d r=%d p=%g s<=%d", n, in, k, r, p, splits);
    const int64_t nx = (int64_t)n * in, kr = (int64_t)k * r, nd = kr * in;
    const uint64_t seed = next_u64(), base_off = (next_u64() >> 30) << 2;
    uint64_t offs[3];
    for (int j = 0; j < k; j++) offs[j] = base_off + ((uint64_t)j << 36) + (uint64_t)(3 * j);
    float *x = randn(nx, 1.0f), *dxa = randn((int64_t)n * kr, 1.0f), *da0 = randn(nd, 1.0f);
    uint16_t *xb = to_bf16(x, nx), *dxab = to_bf16(dxa, (int64_t)n * kr);
    float *xd = xmalloc((size_t)nx * 4), *dj = xmalloc((size_t)n * r * 4), *ref = copy_of(da0, nd);
    uint8_t *keep = xmalloc((size_t)nx);
    for (int j = 0; j < k; j++) {
        et_dropout_forward(xd, keep, x, p, seed, offs[j], nx);
        for (int i = 0; i < n; i++) memcpy(dj + (size_t)i * r, dxa + (size_t)i * kr + j * r, (size_t)r * 4);
        et_matmul(ref + (size_t)j * r * in, dj, xd, r, in, n, 1, 0, 1.0f, 1.0f);
    }
    void *d_x = DUP(xb, nx), *d_dxa = DUP(dxab, (int64_t)n * kr);
    float *d_da = DUP(da0, nd);
    const size_t scratch = (size_t)splits * nd * 4;
    void *d_s = dpoison(scratch);
    int rc = etc_lora_dropout_da_bf16(d_da, d_dxa, kr, d_x, n, in, k, r, p, seed, offs, d_s, scratch);
    cmp c = {0};
    float *got = down_f32(d_da, nd);
    compare(&c, got, ref, da0, nd);
    report("lora.dropout_da.bf16", shape, rc, &c, BF16_LIMIT, 0, 0, 0);
    free(got), free(x), free(dxa), free(da0), free(xb), free(dxab), free(xd), free(dj), free(ref), free(keep);
}

/* etc_lora_dropout_xa_bf16: each member's x·Aᵀ of its own masked copy of x, against
 * the CPU's et_dropout_forward at the member's offset then et_matmul. */
static void test_lora_dropout_xa(int n, int in, int k, int r, float p) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d in=%d k=%d r=%d p=%g", n, in, k, r, p);
    const int64_t nx = (int64_t)n * in;
    const uint64_t seed = next_u64(), base_off = (next_u64() >> 30) << 2;
    uint64_t offs[3];
    for (int j = 0; j < k; j++) offs[j] = base_off + ((uint64_t)j << 36) + (uint64_t)j;
    float *x = randn(nx, 1.0f), *a = randn((int64_t)k * r * in, 0.1f);
    uint16_t *xb = to_bf16(x, nx), *ab = to_bf16(a, (int64_t)k * r * in);
    float *xd = xmalloc((size_t)nx * 4), *ref = xmalloc((size_t)n * k * r * 4);
    float *rj = xmalloc((size_t)n * r * 4);
    uint8_t *keep = xmalloc((size_t)nx);
    for (int j = 0; j < k; j++) {
        et_dropout_forward(xd, keep, x, p, seed, offs[j], nx);
        et_matmul(rj, xd, a + (size_t)j * r * in, n, r, in, 0, 1, 1.0f, 0.0f);
        for (int i = 0; i < n; i++) memcpy(ref + ((size_t)j * n + i) * r, rj + (size_t)i * r, (size_t)r * 4);
    }
    void *d_x = DUP(xb, nx), *d_a = DUP(ab, (int64_t)k * r * in);
    etc_bf16 *outs[3] = {NULL, NULL, NULL};
    for (int j = 0; j < k; j++) outs[j] = dpoison((size_t)n * r * 2);
    int rc = etc_lora_dropout_xa_bf16(outs, r, d_x, d_a, n, in, k, r, p, seed, offs);
    cmp c = {0};
    for (int j = 0; j < k; j++) {
        float *got = down_bf16(outs[j], (int64_t)n * r);
        compare(&c, got, ref + (size_t)j * n * r, NULL, (int64_t)n * r);
        free(got);
    }
    double us;
    TIME_US(us, etc_lora_dropout_xa_bf16(outs, r, d_x, d_a, n, in, k, r, p, seed, offs));
    report("lora.dropout_xa.bf16", shape, rc, &c, BF16_LIMIT, us, (double)nx * 2, 0);
    free(x), free(a), free(xb), free(ab), free(xd), free(ref), free(rj), free(keep);
}

static void test_lora(int n, int in, int r, int out_dim) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d in=%d r=%d out=%d", n, in, r, out_dim);
    const int64_t nx = (int64_t)n * in, na = (int64_t)r * in, nb = (int64_t)out_dim * r;
    const int64_t no = (int64_t)n * out_dim, nxa = (int64_t)n * r;
    const float scale = 2.0f;
    for (int bf = 0; bf <= 1; bf++) {
        float *x = randn(nx, 1.0f), *a = randn(na, 0.05f), *b = randn(nb, 0.05f);
        float *g = randn(no, 1.0f);
        uint16_t *xb = NULL, *ab = NULL, *bb = NULL, *o0b = NULL, *gb = NULL;
        if (bf) xb = to_bf16(x, nx), ab = to_bf16(a, na), bb = to_bf16(b, nb), gb = to_bf16(g, no);
        const size_t es = bf ? 2 : 4;
        const double limit = bf ? BF16_LIMIT : FP32_LIMIT;
        /* forward accumulates into out (the base layer's output): start it from
         * random values the size of the LoRA increment */
        float *inc = zeros(no), *xa = xmalloc((size_t)nxa * 4);
        et_lora_forward(inc, xa, x, a, b, scale, n, in, r, out_dim);
        float *o0 = init_like(inc, no);
        if (bf) o0b = to_bf16(o0, no);
        float *out = copy_of(o0, no);
        et_lora_forward(out, xa, x, a, b, scale, n, in, r, out_dim);
        free(inc);
        void *d_x = bf ? DUP(xb, nx) : DUP(x, nx), *d_a = bf ? DUP(ab, na) : DUP(a, na);
        void *d_b = bf ? DUP(bb, nb) : DUP(b, nb), *d_o = bf ? DUP(o0b, no) : DUP(o0, no);
        void *d_xa = dpoison(nxa * es);
        int rc = bf ? etc_lora_forward_bf16(d_o, d_xa, d_x, d_a, d_b, scale, n, in, r, out_dim)
                    : etc_lora_forward(d_o, d_xa, d_x, d_a, d_b, scale, n, in, r, out_dim);
        cmp c = {0};
        float *got = bf ? down_bf16(d_o, no) : down_f32(d_o, no);
        float *gxa = bf ? down_bf16(d_xa, nxa) : down_f32(d_xa, nxa);
        compare(&c, got, out, o0, no);
        compare(&c, gxa, xa, NULL, nxa);
        double us;
        if (bf) TIME_US(us, etc_lora_forward_bf16(d_o, d_xa, d_x, d_a, d_b, scale, n, in, r, out_dim));
        else TIME_US(us, etc_lora_forward(d_o, d_xa, d_x, d_a, d_b, scale, n, in, r, out_dim));
        report(bf ? "lora.fwd.bf16" : "lora.fwd", shape, rc, &c, limit, us,
               (double)(nx + 2 * no) * es, 0);
        free(got), free(gxa);

        /* backward from the saved xa (rounded to bf16 on the bf16 path, as the GPU saves it) */
        uint16_t *xab = bf ? to_bf16(xa, nxa) : NULL;
        float *idx = zeros(nx), *ida = zeros(na), *idb = zeros(nb), *scr = xmalloc((size_t)nxa * 4);
        et_lora_backward(idx, ida, idb, scr, g, x, xa, a, b, scale, n, in, r, out_dim);
        float *sx = init_like(idx, nx), *sa = init_like(ida, na), *sb = init_like(idb, nb);
        uint16_t *sxb = bf ? to_bf16(sx, nx) : NULL;
        float *rx = copy_of(sx, nx), *ra = copy_of(sa, na), *rb = copy_of(sb, nb);
        et_lora_backward(rx, ra, rb, scr, g, x, xa, a, b, scale, n, in, r, out_dim);
        d_x = bf ? DUP(xb, nx) : DUP(x, nx), d_a = bf ? DUP(ab, na) : DUP(a, na);
        d_b = bf ? DUP(bb, nb) : DUP(b, nb), d_xa = bf ? DUP(xab, nxa) : DUP(xa, nxa);
        void *d_g = bf ? DUP(gb, no) : DUP(g, no), *d_dx = bf ? DUP(sxb, nx) : DUP(sx, nx);
        float *d_da = DUP(sa, na), *d_db = DUP(sb, nb);
        void *d_scr = dpoison(nxa * es);
        if (bf)
            rc = etc_lora_backward_bf16(d_dx, d_da, d_db, d_scr, d_g, d_x, d_xa, d_a, d_b, scale,
                                        n, in, r, out_dim);
        else
            rc = etc_lora_backward(d_dx, d_da, d_db, d_scr, d_g, d_x, d_xa, d_a, d_b, scale, n,
                                   in, r, out_dim);
        cmp cb = {0};
        float *gx = bf ? down_bf16(d_dx, nx) : down_f32(d_dx, nx);
        float *ga = down_f32(d_da, na), *gbb = down_f32(d_db, nb);
        compare(&cb, gx, rx, sx, nx);
        compare(&cb, ga, ra, sa, na);
        compare(&cb, gbb, rb, sb, nb);
        if (bf)
            TIME_US(us, etc_lora_backward_bf16(d_dx, d_da, d_db, d_scr, d_g, d_x, d_xa, d_a, d_b,
                                               scale, n, in, r, out_dim));
        else
            TIME_US(us, etc_lora_backward(d_dx, d_da, d_db, d_scr, d_g, d_x, d_xa, d_a, d_b,
                                          scale, n, in, r, out_dim));
        report(bf ? "lora.bwd.bf16" : "lora.bwd", shape, rc, &cb, limit, us,
               (double)(3 * nx + no) * es, 0);
        free(gx), free(ga), free(gbb), free(xab), free(idx), free(ida), free(idb), free(scr);
        free(sx), free(sa), free(sb), free(sxb), free(rx), free(ra), free(rb), free(x), free(a);
        free(b), free(o0), free(g), free(xb), free(ab), free(bb), free(o0b), free(gb), free(out);
        free(xa);
    }
}

/* Causal attention FLOPs (forward: q·k and p·v over the visible pairs). */
static double attention_pairs(int t, int window) {
    double pairs = 0.0;
    for (int i = 0; i < t; i++) pairs += (window > 0 && window < i + 1) ? window : i + 1;
    return pairs;
}

static void test_attention(int b, int t, int hq, int hkv, int d, int window) {
    char shape[96];
    snprintf(shape, sizeof shape, "b=%d t=%d hq=%d hkv=%d d=%d w=%d", b, t, hq, hkv, d, window);
    const int64_t nq = (int64_t)b * t * hq * d, nk = (int64_t)b * t * hkv * d;
    const int64_t nl = (int64_t)b * hq * t;
    const double fwd_flops = 4.0 * d * hq * b * attention_pairs(t, window);
    float *q = randn(nq, 1.0f), *k = randn(nk, 1.0f), *v = randn(nk, 1.0f), *g = randn(nq, 1.0f);
    float *out = xmalloc((size_t)nq * 4), *lse = xmalloc((size_t)nl * 4);
    et_attention_forward(out, lse, q, k, v, b, t, hq, hkv, d, window);
    float *d_q = DUP(q, nq), *d_k = DUP(k, nk), *d_v = DUP(v, nk);
    float *d_o = dpoison((size_t)nq * 4), *d_l = dpoison((size_t)nl * 4);
    int rc = etc_attention_forward(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window);
    cmp c = {0};
    float *go = down_f32(d_o, nq), *gl = down_f32(d_l, nl);
    compare(&c, go, out, NULL, nq);
    compare(&c, gl, lse, NULL, nl);
    double us;
    TIME_US(us, etc_attention_forward(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window));
    report("attention.fwd", shape, rc, &c, FP32_LIMIT, us, 0, fwd_flops);
    free(go), free(gl);

    float *iq = zeros(nq), *ik = zeros(nk), *iv = zeros(nk);
    et_attention_backward(iq, ik, iv, g, q, k, v, out, lse, b, t, hq, hkv, d, window);
    float *sq = init_like(iq, nq), *sk = init_like(ik, nk), *sv = init_like(iv, nk);
    float *rq = copy_of(sq, nq), *rk = copy_of(sk, nk), *rv = copy_of(sv, nk);
    et_attention_backward(rq, rk, rv, g, q, k, v, out, lse, b, t, hq, hkv, d, window);
    d_q = DUP(q, nq), d_k = DUP(k, nk), d_v = DUP(v, nk), d_o = DUP(out, nq), d_l = DUP(lse, nl);
    float *d_g = DUP(g, nq), *d_dq = DUP(sq, nq), *d_dk = DUP(sk, nk), *d_dv = DUP(sv, nk);
    rc = etc_attention_backward(d_dq, d_dk, d_dv, d_g, d_q, d_k, d_v, d_o, d_l, b, t, hq, hkv, d,
                                window);
    cmp cb = {0};
    float *gq = down_f32(d_dq, nq), *gk = down_f32(d_dk, nk), *gv = down_f32(d_dv, nk);
    compare(&cb, gq, rq, sq, nq);
    compare(&cb, gk, rk, sk, nk);
    compare(&cb, gv, rv, sv, nk);
    TIME_US(us, etc_attention_backward(d_dq, d_dk, d_dv, d_g, d_q, d_k, d_v, d_o, d_l, b, t, hq,
                                       hkv, d, window));
    /* model FLOPs of backward: 2.5× forward (dq, dk, dv, and the recomputed scores) */
    report("attention.bwd", shape, rc, &cb, FP32_LIMIT, us, 0, 2.5 * fwd_flops);
    free(gq), free(gk), free(gv), free(iq), free(ik), free(iv), free(sq), free(sk), free(sv);
    free(rq), free(rk), free(rv), free(q), free(k), free(v), free(g), free(out), free(lse);
}

/* Row names of the bf16 attention: the rows of other kernel variants
 * (test_attention_bf16_variant) rename them. */
static const char *g_attn_fwd_row = "attention.fwd.bf16", *g_attn_bwd_row = "attention.bwd.bf16";

/* The inputs of a bf16 attention row: random q, k, v and output gradient g (fp32)
 * with their bf16 roundings, and — when `reference` — the CPU forward's out and lse
 * on them. Sizes: nq query-side, nk key-side, nl lse elements. */
typedef struct {
    int64_t nq, nk, nl;
    double fwd_flops;
    float *q, *k, *v, *g, *out, *lse;
    uint16_t *qb, *kb, *vb, *gb;
} attn_case;

static void attn_case_init(attn_case *a, int b, int t, int hq, int hkv, int d, int window,
                           int reference) {
    a->nq = (int64_t)b * t * hq * d, a->nk = (int64_t)b * t * hkv * d, a->nl = (int64_t)b * hq * t;
    a->fwd_flops = 4.0 * d * hq * b * attention_pairs(t, window);
    a->q = randn(a->nq, 1.0f), a->k = randn(a->nk, 1.0f), a->v = randn(a->nk, 1.0f);
    a->g = randn(a->nq, 1.0f);
    a->qb = to_bf16(a->q, a->nq), a->kb = to_bf16(a->k, a->nk), a->vb = to_bf16(a->v, a->nk);
    a->gb = to_bf16(a->g, a->nq);
    a->out = a->lse = NULL;
    if (!reference) return;
    a->out = xmalloc((size_t)a->nq * 4), a->lse = xmalloc((size_t)a->nl * 4);
    et_attention_forward(a->out, a->lse, a->q, a->k, a->v, b, t, hq, hkv, d, window);
}

static void attn_case_free(attn_case *a) {
    free(a->q), free(a->k), free(a->v), free(a->g), free(a->qb), free(a->kb), free(a->vb);
    free(a->gb), free(a->out), free(a->lse);
}

/* bf16 tensor-core attention against the CPU on the same bf16-rounded inputs. */
static void test_attention_bf16(int b, int t, int hq, int hkv, int d, int window) {
    char shape[96];
    snprintf(shape, sizeof shape, "b=%d t=%d hq=%d hkv=%d d=%d w=%d", b, t, hq, hkv, d, window);
    attn_case a;
    attn_case_init(&a, b, t, hq, hkv, d, window, 1);
    const int64_t nq = a.nq, nk = a.nk, nl = a.nl;
    const double fwd_flops = a.fwd_flops;
    float *q = a.q, *k = a.k, *v = a.v, *g = a.g, *out = a.out, *lse = a.lse;
    uint16_t *qb = a.qb, *kb = a.kb, *vb = a.vb, *gb = a.gb;
    void *d_q = DUP(qb, nq), *d_k = DUP(kb, nk), *d_v = DUP(vb, nk), *d_o = dpoison((size_t)nq * 2);
    float *d_l = dpoison((size_t)nl * 4);
    int rc = etc_attention_forward_bf16(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window);
    cmp c = {0};
    float *go = down_bf16(d_o, nq), *gl = down_f32(d_l, nl);
    compare(&c, go, out, NULL, nq);
    compare(&c, gl, lse, NULL, nl);
    double us;
    TIME_US(us, etc_attention_forward_bf16(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window));
    report(g_attn_fwd_row, shape, rc, &c, BF16_LIMIT, us, 0, fwd_flops);
    free(go), free(gl);

    /* backward from the reference out/lse rounded as the model holds them */
    uint16_t *ob = to_bf16(out, nq);
    float *iq = zeros(nq), *ik = zeros(nk), *iv = zeros(nk);
    et_attention_backward(iq, ik, iv, g, q, k, v, out, lse, b, t, hq, hkv, d, window);
    float *sq = init_like(iq, nq), *sk = init_like(ik, nk), *sv = init_like(iv, nk);
    uint16_t *sqb = to_bf16(sq, nq), *skb = to_bf16(sk, nk), *svb = to_bf16(sv, nk);
    float *rq = copy_of(sq, nq), *rk = copy_of(sk, nk), *rv = copy_of(sv, nk);
    et_attention_backward(rq, rk, rv, g, q, k, v, out, lse, b, t, hq, hkv, d, window);
    d_q = DUP(qb, nq), d_k = DUP(kb, nk), d_v = DUP(vb, nk), d_o = DUP(ob, nq), d_l = DUP(lse, nl);
    void *d_g = DUP(gb, nq), *d_dq = DUP(sqb, nq), *d_dk = DUP(skb, nk), *d_dv = DUP(svb, nk);
    float *d_delta = dpoison((size_t)nl * 4);
    rc = etc_attention_backward_bf16(d_dq, d_dk, d_dv, d_delta, d_g, d_q, d_k, d_v, d_o, d_l, b, t,
                                     hq, hkv, d, window);
    cmp cb = {0};
    float *gq = down_bf16(d_dq, nq), *gk = down_bf16(d_dk, nk), *gv = down_bf16(d_dv, nk);
    compare(&cb, gq, rq, sq, nq);
    compare(&cb, gk, rk, sk, nk);
    compare(&cb, gv, rv, sv, nk);
    TIME_US(us, etc_attention_backward_bf16(d_dq, d_dk, d_dv, d_delta, d_g, d_q, d_k, d_v, d_o,
                                            d_l, b, t, hq, hkv, d, window));
    report(g_attn_bwd_row, shape, rc, &cb, BF16_LIMIT, us, 0, 2.5 * fwd_flops);
    free(gq), free(gk), free(gv), free(iq), free(ik), free(iv), free(sq), free(sk), free(sv);
    free(sqb), free(skb), free(svb), free(rq), free(rk), free(rv), free(ob);
    attn_case_free(&a);
}

/* Two backward runs of the bf16 kernel from the same inputs into fresh zero gradients
 * must agree bit for bit (no atomics, fixed reduction orders); err = the fraction of
 * gradient elements that differ. */
static void test_attention_bf16_repeat(int b, int t, int hq, int hkv, int d, int window) {
    char shape[96];
    snprintf(shape, sizeof shape, "b=%d t=%d hq=%d hkv=%d d=%d w=%d", b, t, hq, hkv, d, window);
    attn_case a;
    attn_case_init(&a, b, t, hq, hkv, d, window, 0);
    const int64_t nq = a.nq, nk = a.nk, nl = a.nl;
    uint16_t *qb = a.qb, *kb = a.kb, *vb = a.vb, *gb = a.gb;
    float *zq = zeros(nq), *zk = zeros(nk);
    uint16_t *zqb = to_bf16(zq, nq), *zkb = to_bf16(zk, nk);
    void *d_q = DUP(qb, nq), *d_k = DUP(kb, nk), *d_v = DUP(vb, nk), *d_g = DUP(gb, nq);
    void *d_o = dpoison((size_t)nq * 2);
    float *d_l = dpoison((size_t)nl * 4), *d_delta = dpoison((size_t)nl * 4);
    int rc = etc_attention_forward_bf16(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window);
    float *got[2][3];
    for (int run = 0; run < 2; run++) {
        void *d_dq = DUP(zqb, nq), *d_dk = DUP(zkb, nk), *d_dv = DUP(zkb, nk);
        rc |= etc_attention_backward_bf16(d_dq, d_dk, d_dv, d_delta, d_g, d_q, d_k, d_v, d_o, d_l,
                                          b, t, hq, hkv, d, window);
        got[run][0] = down_bf16(d_dq, nq), got[run][1] = down_bf16(d_dk, nk);
        got[run][2] = down_bf16(d_dv, nk);
    }
    int64_t differ = 0;
    const int64_t counts[3] = {nq, nk, nk};
    for (int x = 0; x < 3; x++)
        for (int64_t i = 0; i < counts[x]; i++)
            differ += memcmp(&got[0][x][i], &got[1][x][i], sizeof(float)) != 0;
    cmp c = {(double)differ / (double)(nq + 2 * nk), 0};
    report(strcmp(g_attn_bwd_row, "attention.bwd.bf16") ? g_attn_bwd_row : "attention.bwd.bf16.repeat",
           shape, rc, &c, 0.0, 0, 0, 0);
    for (int run = 0; run < 2; run++)
        for (int x = 0; x < 3; x++) free(got[run][x]);
    attn_case_free(&a);
    free(zq), free(zk), free(zqb), free(zkb);
}

/* The same rows through another pair of kernels (kernels/cuda/attention_bf16.h):
 * every variant the model may select must hold on its own. */
static void test_attention_bf16_variant(int fwd, int bwd, const char *fwd_row, const char *bwd_row,
                                        int repeat, int b, int t, int hq, int hkv, int d,
                                        int window) {
    const int prev_fwd = etc_attention_bf16_forward_variant(fwd);
    const int prev_bwd = etc_attention_bf16_backward_variant(bwd);
    g_attn_fwd_row = fwd_row, g_attn_bwd_row = bwd_row;
    if (repeat) test_attention_bf16_repeat(b, t, hq, hkv, d, window);
    else test_attention_bf16(b, t, hq, hkv, d, window);
    g_attn_fwd_row = "attention.fwd.bf16", g_attn_bwd_row = "attention.bwd.bf16";
    etc_attention_bf16_forward_variant(prev_fwd);
    etc_attention_bf16_backward_variant(prev_bwd);
}
static void test_attention_bf16_split(int b, int t, int hq, int hkv, int d, int window) {
    test_attention_bf16_variant(ETC_ATTN_FWD_NARROW, ETC_ATTN_BWD_SPLIT, "attention.fwd.bf16",
                                "attention.bwd.bf16.split", 0, b, t, hq, hkv, d, window);
}
static void test_attention_bf16_wide(int b, int t, int hq, int hkv, int d, int window) {
    test_attention_bf16_variant(ETC_ATTN_FWD_WIDE, ETC_ATTN_BWD_WIDE, "attention.fwd.bf16.wide",
                                "attention.bwd.bf16.wide", 0, b, t, hq, hkv, d, window);
}

/* cuDNN's fused attention (kernels/cuda/attention_cudnn.h) against the CPU on the
 * same inputs as test_attention_bf16: out, then dq, dk, dv from cuDNN's own forward
 * (its backward reads its own statistics) — the gradients are overwritten, so they
 * start as poison. Its statistics get a row of their own against our lse (a
 * difference there means another definition, which the model does not depend on).
 * Where libcudnn 9 is missing the rows are reported skipped. */
static void test_attention_cudnn(int b, int t, int hq, int hkv, int d, int window) {
    char shape[96], why[200];
    snprintf(shape, sizeof shape, "b=%d t=%d hq=%d hkv=%d d=%d w=%d", b, t, hq, hkv, d, window);
    if (!etc_attention_cudnn_available(why, sizeof why)) {
        report_skip("attention.fwd.bf16.cudnn", shape, why);
        report_skip("attention.bwd.bf16.cudnn", shape, why);
        return;
    }
    attn_case a;
    attn_case_init(&a, b, t, hq, hkv, d, window, 1);
    const int64_t nq = a.nq, nk = a.nk, nl = a.nl;
    const double fwd_flops = a.fwd_flops;
    float *q = a.q, *k = a.k, *v = a.v, *g = a.g, *out = a.out, *lse = a.lse;
    uint16_t *qb = a.qb, *kb = a.kb, *vb = a.vb, *gb = a.gb;
    float *iq = zeros(nq), *ik = zeros(nk), *iv = zeros(nk);
    et_attention_backward(iq, ik, iv, g, q, k, v, out, lse, b, t, hq, hkv, d, window);

    g_hold = 1; /* the forward's outputs feed the backward */
    void *d_q = DUP(qb, nq), *d_k = DUP(kb, nk), *d_v = DUP(vb, nk), *d_g = DUP(gb, nq);
    void *d_o = dpoison((size_t)nq * 2);
    float *d_l = dpoison((size_t)nl * 4);
    int rc = etc_attention_cudnn_forward(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window);
    cmp c = {0}, cl = {0};
    float *go = down_bf16(d_o, nq), *gl = down_f32(d_l, nl);
    compare(&c, go, out, NULL, nq);
    compare(&cl, gl, lse, NULL, nl);
    double us;
    TIME_US(us, etc_attention_cudnn_forward(d_o, d_l, d_q, d_k, d_v, b, t, hq, hkv, d, window));
    report("attention.fwd.bf16.cudnn", shape, rc, &c, BF16_LIMIT, us, 0, fwd_flops);
    report("attention.lse.cudnn", shape, rc, &cl, BF16_LIMIT, 0, 0, 0);

    void *d_dq = dpoison((size_t)nq * 2), *d_dk = dpoison((size_t)nk * 2);
    void *d_dv = dpoison((size_t)nk * 2);
    rc = etc_attention_cudnn_backward(d_dq, d_dk, d_dv, d_g, d_q, d_k, d_v, d_o, d_l, b, t, hq, hkv,
                                      d, window);
    cmp cb = {0};
    float *gq = down_bf16(d_dq, nq), *gk = down_bf16(d_dk, nk), *gv = down_bf16(d_dv, nk);
    compare(&cb, gq, iq, NULL, nq);
    compare(&cb, gk, ik, NULL, nk);
    compare(&cb, gv, iv, NULL, nk);
    TIME_US(us, etc_attention_cudnn_backward(d_dq, d_dk, d_dv, d_g, d_q, d_k, d_v, d_o, d_l, b, t,
                                             hq, hkv, d, window));
    g_hold = 0;
    report("attention.bwd.bf16.cudnn", shape, rc, &cb, BF16_LIMIT, us, 0, 2.5 * fwd_flops);
    printf("%-28s %s\n", "  (cudnn)", etc_attention_cudnn_note());
    free(go), free(gl), free(gq), free(gk), free(gv), free(iq), free(ik), free(iv);
    attn_case_free(&a);
}

/* In-place SwiGLU backward: gate and up become their gradients. */
static void test_swiglu_inplace(int64_t n) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld", (long long)n);
    float *a = randn(n, 2.0f), *b = randn(n, 1.0f), *g = randn(n, 1.0f);
    uint16_t *ab = to_bf16(a, n), *bb = to_bf16(b, n), *gb = to_bf16(g, n);
    float *rg = zeros(n), *ru = zeros(n);
    et_swiglu_backward(rg, ru, g, a, b, n);
    void *d_a = DUP(ab, n), *d_b = DUP(bb, n), *d_g = DUP(gb, n);
    int rc = etc_swiglu_backward_inplace_bf16(d_a, d_b, d_g, n);
    cmp c = {0};
    float *ga = down_bf16(d_a, n), *gu = down_bf16(d_b, n);
    compare(&c, ga, rg, NULL, n);
    compare(&c, gu, ru, NULL, n);
    double us; /* later runs see gradients as inputs: same work */
    TIME_US(us, etc_swiglu_backward_inplace_bf16(d_a, d_b, d_g, n));
    report("swiglu.bwd_inplace.bf16", shape, rc, &c, BF16_LIMIT, us, 5.0 * n * 2, 0);
    free(a), free(b), free(g), free(ab), free(bb), free(gb), free(rg), free(ru), free(ga), free(gu);
}

/* Fused in-place cross-entropy: losses/lse as the forward, the logits overwritten
 * with the gradient (compared with the CPU backward into zeros). */
static void test_cross_entropy_fused(int n, int vocab) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d vocab=%d", n, vocab);
    const int64_t nl = (int64_t)n * vocab;
    int32_t *tg = xmalloc((size_t)n * 4);
    float *dloss = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++) {
        tg[i] = (next_u64() % 5 == 0) ? -100 : (int32_t)(next_u64() % (uint64_t)vocab);
        dloss[i] = (float)(0.5 + uniform01()) / n;
    }
    float *lg = randn(nl, 3.0f);
    uint16_t *lb = to_bf16(lg, nl);
    float *loss = xmalloc((size_t)n * 4), *lse = xmalloc((size_t)n * 4), *ref = zeros(nl);
    et_cross_entropy_forward(loss, lse, lg, tg, n, vocab);
    et_cross_entropy_backward(ref, lg, lse, tg, dloss, n, vocab);
    void *d_l = DUP(lb, nl);
    int32_t *d_t = DUP(tg, n);
    float *d_dl = DUP(dloss, n), *d_loss = dpoison((size_t)n * 4), *d_lse = dpoison((size_t)n * 4);
    int rc = etc_cross_entropy_fused_bf16(d_loss, d_lse, d_l, d_t, d_dl, n, vocab);
    cmp c = {0};
    float *gl = down_f32(d_loss, n), *gs = down_f32(d_lse, n), *gg = down_bf16(d_l, nl);
    compare(&c, gl, loss, NULL, n);
    compare(&c, gs, lse, NULL, n);
    compare(&c, gg, ref, NULL, nl);
    double us; /* later runs see gradients as logits: same work, other values */
    TIME_US(us, etc_cross_entropy_fused_bf16(d_loss, d_lse, d_l, d_t, d_dl, n, vocab));
    report("cross_entropy.fused.bf16", shape, rc, &c, BF16_LIMIT, us, 3.0 * nl * 2, 0);
    free(gl), free(gs), free(gg), free(tg), free(dloss), free(lg), free(lb), free(loss), free(lse);
    free(ref);
}

static void test_reductions(int64_t n) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld", (long long)n);
    float *x = randn(n, 1.0f);
    double ref = et_sumsq(x, n), got = NAN;
    float *d_x = DUP(x, n);
    double *d_s = dpoison(sizeof(double));
    int rc = etc_sumsq(d_s, d_x, n);
    cuda_or_die(cudaMemcpy(&got, d_s, sizeof got, cudaMemcpyDeviceToHost), "download");
    cmp c = {fabs(got - ref) / fabs(ref), !isfinite(got)};
    double us;
    TIME_US(us, etc_sumsq(d_s, d_x, n));
    report("sumsq", shape, rc, &c, 1e-9, us, n * 4.0, 0);

    float *y = copy_of(x, n);
    et_scale(y, 0.37f, n);
    d_x = DUP(x, n);
    rc = etc_scale(d_x, 0.37f, n);
    cmp cs = {0};
    float *gy = down_f32(d_x, n);
    compare(&cs, gy, y, NULL, n);
    TIME_US(us, etc_scale(d_x, 1.0f, n));
    report("scale", shape, rc, &cs, FP32_LIMIT, us, 2.0 * n * 4, 0);
    free(x), free(y), free(gy);
}

#include "tests/gpu/parity_dp.h"

/* ============================================ timed rows at Llama-3.2-1B sizes */

/* Fills a device buffer with random values (a 1M-value random block repeated:
 * never zeros, which can time faster than real data). */
static void *drandom(int64_t n, int bf, float scale) {
    const int64_t block = 1 << 20;
    float *h = randn(block < n ? block : n, scale);
    const size_t es = bf ? 2 : 4;
    void *hb = h;
    uint16_t *b16 = NULL;
    if (bf) hb = b16 = to_bf16(h, block < n ? block : n);
    char *d = dalloc((size_t)n * es);
    for (int64_t at = 0; at < n; at += block) {
        int64_t len = n - at < block ? n - at : block;
        cuda_or_die(cudaMemcpy(d + at * es, hb, (size_t)len * es, cudaMemcpyHostToDevice),
                    "upload");
    }
    free(h), free(b16);
    return d;
}

/* Llama-3.2-1B: hidden 2048, MLP 8192, 32 query / 8 KV heads of 64, vocab 128256;
 * one sequence of 2048 tokens. (Overridable at build time for slow test runs.) */
#ifndef PERF_TOKENS
#define PERF_TOKENS 2048
#define PERF_HIDDEN 2048
#define PERF_FFN 8192
#define PERF_VOCAB 128256
#define PERF_LORA_PARAMS 11272192
#endif

static void perf_rows(void) {
    g_hold = 1; /* each block frees its buffers itself */
    const int n = PERF_TOKENS, c = PERF_HIDDEN, ffn = PERF_FFN, vocab = PERF_VOCAB;
    const int hq = 32, hkv = 8, hd = 64, r = 16;
    char shape[96];
    double us;
    int rc;
    { /* the seven projections' GEMM shapes are dominated by this one */
        void *x = drandom((int64_t)n * c, 1, 1.0f), *w = drandom((int64_t)ffn * c, 1, 0.02f);
        void *o = dalloc((size_t)n * ffn * 2);
        snprintf(shape, sizeof shape, "n=%d in=%d out=%d", n, c, ffn);
        rc = etc_linear_forward_bf16(o, x, w, NULL, n, c, ffn);
        TIME_US(us, etc_linear_forward_bf16(o, x, w, NULL, n, c, ffn));
        report("perf.linear.fwd.bf16", shape, rc, NULL, -1, us, 0, 2.0 * n * c * ffn);
        dfree_all();
    }
    { /* one gate/up projection with LoRA at batch 4 (n = 4·tokens), three ways: the base
       * GEMM alone; the default path (rank-r product written, base GEMM adds onto it);
       * the K-extended one (K = in + 2r, strided rows: EHRTUNE_CUDA_LORA_KEXT). The rate
       * column counts the base product's FLOPs in all three, so it compares their times. */
        const int n4 = 4 * n, kx = 2 * r, ld = c + kx;
        void *x = drandom((int64_t)n4 * ld, 1, 1.0f), *w = drandom((int64_t)ffn * ld, 1, 0.02f);
        void *xa = drandom((int64_t)n4 * kx, 1, 1.0f), *b = drandom((int64_t)ffn * r, 1, 0.02f);
        void *o = dalloc((size_t)n4 * ffn * 2);
        snprintf(shape, sizeof shape, "n=%d in=%d out=%d", n4, c, ffn);
        rc = etc_matmul_bf16_ld(o, 0, NULL, x, ld, w, ld, NULL, n4, ffn, c, 0, 1, 1.0f, 0.0f);
        TIME_US(us, etc_matmul_bf16_ld(o, 0, NULL, x, ld, w, ld, NULL, n4, ffn, c, 0, 1, 1.0f, 0.0f));
        report("perf.proj.base.bf16", shape, rc, NULL, -1, us, 0, 2.0 * n4 * c * ffn);
#define TWO_GEMMS()                                                                            \
    (etc_matmul_bf16_ld(o, 0, NULL, xa, kx, b, 0, NULL, n4, ffn, r, 0, 1, 2.0f, 0.0f) ||           \
     etc_matmul_bf16_ld(o, 0, NULL, x, ld, w, ld, NULL, n4, ffn, c, 0, 1, 1.0f, 1.0f))
        rc = TWO_GEMMS();
        TIME_US(us, TWO_GEMMS());
#undef TWO_GEMMS
        report("perf.proj.lora.bf16", shape, rc, NULL, -1, us, 0, 2.0 * n4 * c * ffn);
        snprintf(shape, sizeof shape, "n=%d in=%d+%d out=%d", n4, c, kx, ffn);
        rc = etc_matmul_bf16_ld(o, 0, NULL, x, ld, w, ld, NULL, n4, ffn, ld, 0, 1, 1.0f, 0.0f);
        TIME_US(us, etc_matmul_bf16_ld(o, 0, NULL, x, ld, w, ld, NULL, n4, ffn, ld, 0, 1, 1.0f, 0.0f));
        report("perf.proj.kext.bf16", shape, rc, NULL, -1, us, 0, 2.0 * n4 * c * ffn);
        dfree_all();
    }
    { /* LoRA dropout of the q/k/v group at batch 4 (k = 3 members, r = 16, p = 0.05): the
       * fused kernels (kernels/cuda/lora_dropout.cu, the default) against what they
       * replace (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=0): per member a masked copy of x and
       * a GEMM forward; per member a GEMM into scratch and a dropout backward into dx.
       * The rate column counts the rank-r products' FLOPs in both, so it compares times. */
        const int n4 = 4 * n, k = 3, kr = k * r;
        const float p = 0.05f;
        const uint64_t seed = 7, offs[3] = {0, (uint64_t)n4 * c, 2 * (uint64_t)n4 * c};
        void *x = drandom((int64_t)n4 * c, 1, 1.0f), *a = drandom((int64_t)kr * c, 1, 0.02f);
        void *xa = dalloc((size_t)n4 * kr * 2), *xd = dalloc((size_t)n4 * c * 2);
        void *dx = drandom((int64_t)n4 * c, 1, 1.0f), *dxa = drandom((int64_t)n4 * kr, 1, 1.0f);
        etc_bf16 *outs[3];
        for (int j = 0; j < k; j++) outs[j] = (etc_bf16 *)xa + (size_t)j * n4 * r;
        const double flops = 2.0 * n4 * c * kr;
        snprintf(shape, sizeof shape, "n=%d in=%d k=%d r=%d", n4, c, k, r);
        rc = etc_lora_dropout_xa_bf16(outs, r, x, a, n4, c, k, r, p, seed, offs);
        TIME_US(us, etc_lora_dropout_xa_bf16(outs, r, x, a, n4, c, k, r, p, seed, offs));
        report("perf.lora.dropout_xa.fused", shape, rc, NULL, -1, us, 0, flops);
#define UNFUSED_XA()                                                                              \
    (etc_dropout_forward_bf16(xd, NULL, x, p, seed, offs[0], (int64_t)n4 * c) ||                      \
     etc_matmul_bf16(outs[0], xd, a, n4, r, c, 0, 1, 1.0f, 0.0f) ||                                   \
     etc_dropout_forward_bf16(xd, NULL, x, p, seed, offs[1], (int64_t)n4 * c) ||                      \
     etc_matmul_bf16(outs[1], xd, (etc_bf16 *)a + (size_t)r * c, n4, r, c, 0, 1, 1.0f, 0.0f) ||       \
     etc_dropout_forward_bf16(xd, NULL, x, p, seed, offs[2], (int64_t)n4 * c) ||                      \
     etc_matmul_bf16(outs[2], xd, (etc_bf16 *)a + (size_t)2 * r * c, n4, r, c, 0, 1, 1.0f, 0.0f))
        rc = UNFUSED_XA();
        TIME_US(us, UNFUSED_XA());
#undef UNFUSED_XA
        report("perf.lora.dropout_xa.unfused", shape, rc, NULL, -1, us, 0, flops);
        rc = etc_lora_dropout_dx_bf16(dx, dxa, kr, a, n4, c, k, r, p, seed, offs, 0);
        TIME_US(us, etc_lora_dropout_dx_bf16(dx, dxa, kr, a, n4, c, k, r, p, seed, offs, 0));
        report("perf.lora.dropout_dx.fused", shape, rc, NULL, -1, us, 0, flops);
#define UNFUSED_DX(j)                                                                             \
    (etc_matmul_bf16_ld(xd, 0, NULL, (etc_bf16 *)dxa + (j) * r, kr, (etc_bf16 *)a + (size_t)(j) * r * c, \
                        0, NULL, n4, c, r, 0, 0, 1.0f, 0.0f) ||                                    \
     etc_dropout_backward_redraw_bf16(dx, xd, p, seed, offs[j], (int64_t)n4 * c))
        rc = UNFUSED_DX(0) || UNFUSED_DX(1) || UNFUSED_DX(2);
        TIME_US(us, UNFUSED_DX(0) || UNFUSED_DX(1) || UNFUSED_DX(2));
#undef UNFUSED_DX
        report("perf.lora.dropout_dx.unfused", shape, rc, NULL, -1, us, 0, flops);
        float *da = (float *)dalloc((size_t)kr * c * 4);
        rc = etc_lora_dropout_da_bf16(da, dxa, kr, x, n4, c, k, r, p, seed, offs, xd, (size_t)n4 * c * 2);
        TIME_US(us, etc_lora_dropout_da_bf16(da, dxa, kr, x, n4, c, k, r, p, seed, offs, xd,
                                             (size_t)n4 * c * 2));
        report("perf.lora.dropout_da.fused", shape, rc, NULL, -1, us, 0, flops);
#define UNFUSED_DA(j)                                                                             \
    (etc_dropout_forward_bf16(xd, NULL, x, p, seed, offs[j], (int64_t)n4 * c) ||                      \
     etc_matmul_bf16_f32out_ld(da + (size_t)(j) * r * c, 0, (etc_bf16 *)dxa + (j) * r, kr, xd, 0, r, c, \
                               n4, 1, 0, 1.0f, 1.0f))
        rc = UNFUSED_DA(0) || UNFUSED_DA(1) || UNFUSED_DA(2);
        TIME_US(us, UNFUSED_DA(0) || UNFUSED_DA(1) || UNFUSED_DA(2));
#undef UNFUSED_DA
        report("perf.lora.dropout_da.unfused", shape, rc, NULL, -1, us, 0, flops);
        dfree_all();
    }
    {
        void *x = drandom((int64_t)n * c, 0, 1.0f), *w = drandom((int64_t)ffn * c, 0, 0.02f);
        void *o = dalloc((size_t)n * ffn * 4);
        snprintf(shape, sizeof shape, "n=%d in=%d out=%d", n, c, ffn);
        rc = etc_linear_forward(o, x, w, NULL, n, c, ffn);
        TIME_US(us, etc_linear_forward(o, x, w, NULL, n, c, ffn));
        report("perf.linear.fwd.fp32", shape, rc, NULL, -1, us, 0, 2.0 * n * c * ffn);
        dfree_all();
    }
    {
        void *x = drandom((int64_t)n * c, 1, 1.0f), *a = drandom((int64_t)r * c, 1, 0.02f);
        void *b = drandom((int64_t)ffn * r, 1, 0.02f), *o = drandom((int64_t)n * ffn, 1, 1.0f);
        void *xa = dalloc((size_t)n * r * 2);
        snprintf(shape, sizeof shape, "n=%d in=%d r=%d out=%d", n, c, r, ffn);
        rc = etc_lora_forward_bf16(o, xa, x, a, b, 2.0f, n, c, r, ffn);
        TIME_US(us, etc_lora_forward_bf16(o, xa, x, a, b, 2.0f, n, c, r, ffn));
        report("perf.lora.fwd.bf16", shape, rc, NULL, -1, us, ((double)n * c + 2.0 * n * ffn) * 2, 0);
        dfree_all();
    }
    {
        void *x = drandom((int64_t)n * c, 1, 1.0f), *w = drandom(c, 1, 1.0f);
        void *o = dalloc((size_t)n * c * 2), *rs = dalloc((size_t)n * 4);
        snprintf(shape, sizeof shape, "n=%d dim=%d", n, c);
        rc = etc_rmsnorm_forward_bf16(o, rs, x, w, n, c, 1e-5f);
        TIME_US(us, etc_rmsnorm_forward_bf16(o, rs, x, w, n, c, 1e-5f));
        report("perf.rmsnorm.fwd.bf16", shape, rc, NULL, -1, us, 2.0 * n * c * 2, 0);
        void *g = drandom((int64_t)n * c, 1, 1.0f), *dx = drandom((int64_t)n * c, 1, 1.0f);
        rc = etc_rmsnorm_backward_bf16(dx, NULL, g, x, w, rs, n, c);
        TIME_US(us, etc_rmsnorm_backward_bf16(dx, NULL, g, x, w, rs, n, c));
        report("perf.rmsnorm.bwd.bf16", shape, rc, NULL, -1, us, 4.0 * n * c * 2, 0);
        dfree_all();
    }
    {
        const int64_t e = (int64_t)n * ffn;
        void *g = drandom(e, 1, 2.0f), *u = drandom(e, 1, 1.0f), *o = dalloc((size_t)e * 2);
        snprintf(shape, sizeof shape, "n=%lld", (long long)e);
        rc = etc_swiglu_forward_bf16(o, g, u, e);
        TIME_US(us, etc_swiglu_forward_bf16(o, g, u, e));
        report("perf.swiglu.fwd.bf16", shape, rc, NULL, -1, us, 3.0 * e * 2, 0);
        void *dg = drandom(e, 1, 1.0f), *du = drandom(e, 1, 1.0f);
        rc = etc_swiglu_backward_bf16(dg, du, o, g, u, e);
        TIME_US(us, etc_swiglu_backward_bf16(dg, du, o, g, u, e));
        report("perf.swiglu.bwd.bf16", shape, rc, NULL, -1, us, 7.0 * e * 2, 0);
        dfree_all();
    }
    {
        const et_rope_params p = {ET_ROPE_LLAMA3, 500000.0, 32.0, 1.0, 4.0, 8192.0};
        float *ct = xmalloc((size_t)n * hd / 2 * 4), *st = xmalloc((size_t)n * hd / 2 * 4);
        et_rope_tables(ct, st, &p, n, hd);
        float *d_c = DUP(ct, (int64_t)n * hd / 2), *d_s = DUP(st, (int64_t)n * hd / 2);
        const int64_t e = (int64_t)n * hq * hd;
        void *x = drandom(e, 1, 1.0f);
        snprintf(shape, sizeof shape, "b=1 t=%d h=%d d=%d", n, hq, hd);
        rc = etc_rope_forward_bf16(x, x, d_c, d_s, 1, n, hq, hd);
        TIME_US(us, etc_rope_forward_bf16(x, x, d_c, d_s, 1, n, hq, hd));
        report("perf.rope.fwd.bf16", shape, rc, NULL, -1, us, 2.0 * e * 2, 0);
        x = drandom(e, 1, 1.0f);
        d_c = DUP(ct, (int64_t)n * hd / 2), d_s = DUP(st, (int64_t)n * hd / 2);
        rc = etc_rope_backward_set_bf16(x, x, d_c, d_s, 1, n, hq, hd);
        TIME_US(us, etc_rope_backward_set_bf16(x, x, d_c, d_s, 1, n, hq, hd));
        report("perf.rope.bwd_set.bf16", shape, rc, NULL, -1, us, 2.0 * e * 2, 0);
        free(ct), free(st);
        dfree_all();
    }
    {
        const int64_t eq = (int64_t)n * hq * hd, ek = (int64_t)n * hkv * hd;
        void *q = drandom(eq, 0, 1.0f), *k = drandom(ek, 0, 1.0f), *v = drandom(ek, 0, 1.0f);
        void *o = dalloc((size_t)eq * 4), *l = dalloc((size_t)hq * n * 4);
        const double ff = 4.0 * hd * hq * attention_pairs(n, 0);
        snprintf(shape, sizeof shape, "b=1 t=%d hq=%d hkv=%d d=%d", n, hq, hkv, hd);
        rc = etc_attention_forward(o, l, q, k, v, 1, n, hq, hkv, hd, 0);
        TIME_US(us, etc_attention_forward(o, l, q, k, v, 1, n, hq, hkv, hd, 0));
        report("perf.attention.fwd.fp32", shape, rc, NULL, -1, us, 0, ff);
        void *g = drandom(eq, 0, 1.0f), *dq = drandom(eq, 0, 1.0f);
        void *dk = drandom(ek, 0, 1.0f), *dv = drandom(ek, 0, 1.0f);
        rc |= etc_attention_backward(dq, dk, dv, g, q, k, v, o, l, 1, n, hq, hkv, hd, 0);
        TIME_US(us, etc_attention_backward(dq, dk, dv, g, q, k, v, o, l, 1, n, hq, hkv, hd, 0));
        report("perf.attention.bwd.fp32", shape, rc, NULL, -1, us, 0, 2.5 * ff);
        dfree_all();
    }
    {
        const int64_t eq = (int64_t)n * hq * hd, ek = (int64_t)n * hkv * hd;
        void *q = drandom(eq, 1, 1.0f), *k = drandom(ek, 1, 1.0f), *v = drandom(ek, 1, 1.0f);
        void *o = dalloc((size_t)eq * 2), *l = dalloc((size_t)hq * n * 4);
        const double ff = 4.0 * hd * hq * attention_pairs(n, 0);
        snprintf(shape, sizeof shape, "b=1 t=%d hq=%d hkv=%d d=%d", n, hq, hkv, hd);
        rc = etc_attention_forward_bf16(o, l, q, k, v, 1, n, hq, hkv, hd, 0);
        TIME_US(us, etc_attention_forward_bf16(o, l, q, k, v, 1, n, hq, hkv, hd, 0));
        report("perf.attention.fwd.bf16", shape, rc, NULL, -1, us, 0, ff);
        void *g = drandom(eq, 1, 1.0f), *dq = drandom(eq, 1, 1.0f);
        void *dk = drandom(ek, 1, 1.0f), *dv = drandom(ek, 1, 1.0f), *dl = dalloc((size_t)hq * n * 4);
        rc |= etc_attention_backward_bf16(dq, dk, dv, dl, g, q, k, v, o, l, 1, n, hq, hkv, hd, 0);
        TIME_US(us, etc_attention_backward_bf16(dq, dk, dv, dl, g, q, k, v, o, l, 1, n, hq, hkv, hd, 0));
        report("perf.attention.bwd.bf16", shape, rc, NULL, -1, us, 0, 2.5 * ff);
        dfree_all();
    }
    /* every bf16 forward and backward variant at batch 1 and at the training batch 4 */
    for (int bb = 1; bb <= 4; bb += 3) {
        const int64_t eq = (int64_t)bb * n * hq * hd, ek = (int64_t)bb * n * hkv * hd;
        void *q = drandom(eq, 1, 1.0f), *k = drandom(ek, 1, 1.0f), *v = drandom(ek, 1, 1.0f);
        void *o = dalloc((size_t)eq * 2), *l = dalloc((size_t)bb * hq * n * 4);
        void *g = drandom(eq, 1, 1.0f), *dq = drandom(eq, 1, 1.0f);
        void *dk = drandom(ek, 1, 1.0f), *dv = drandom(ek, 1, 1.0f);
        void *dl = dalloc((size_t)bb * hq * n * 4);
        const double ff = 4.0 * hd * hq * bb * attention_pairs(n, 0);
        snprintf(shape, sizeof shape, "b=%d t=%d hq=%d hkv=%d d=%d", bb, n, hq, hkv, hd);
        static const struct {
            int variant;
            const char *row;
        } fwds[] = {{ETC_ATTN_FWD_NARROW, "perf.attention.fwd.bf16.narrow"},
                    {ETC_ATTN_FWD_WIDE, "perf.attention.fwd.bf16.wide"}},
          bwds[] = {{ETC_ATTN_BWD_SPLIT, "perf.attention.bwd.bf16.split"},
                    {ETC_ATTN_BWD_CHAIN, "perf.attention.bwd.bf16.chain"},
                    {ETC_ATTN_BWD_WIDE, "perf.attention.bwd.bf16.wide"}};
        for (size_t x = 0; x < sizeof fwds / sizeof *fwds; x++) {
            const int previous = etc_attention_bf16_forward_variant(fwds[x].variant);
            rc = etc_attention_forward_bf16(o, l, q, k, v, bb, n, hq, hkv, hd, 0);
            TIME_US(us, etc_attention_forward_bf16(o, l, q, k, v, bb, n, hq, hkv, hd, 0));
            report(fwds[x].row, shape, rc, NULL, -1, us, 0, ff);
            etc_attention_bf16_forward_variant(previous);
        }
        rc = etc_attention_forward_bf16(o, l, q, k, v, bb, n, hq, hkv, hd, 0);
        for (size_t x = 0; x < sizeof bwds / sizeof *bwds; x++) {
            const int previous = etc_attention_bf16_backward_variant(bwds[x].variant);
            int rcv = rc | etc_attention_backward_bf16(dq, dk, dv, dl, g, q, k, v, o, l, bb, n, hq,
                                                       hkv, hd, 0);
            TIME_US(us, etc_attention_backward_bf16(dq, dk, dv, dl, g, q, k, v, o, l, bb, n, hq,
                                                    hkv, hd, 0));
            report(bwds[x].row, shape, rcv, NULL, -1, us, 0, 2.5 * ff);
            etc_attention_bf16_backward_variant(previous);
        }
        dfree_all();
    }
    {
        const int64_t e = (int64_t)n * vocab;
        void *lg = drandom(e, 1, 3.0f);
        int32_t *tg = xmalloc((size_t)n * 4);
        float *dl = xmalloc((size_t)n * 4);
        for (int i = 0; i < n; i++) tg[i] = (int32_t)(next_u64() % vocab), dl[i] = 1.0f / n;
        int32_t *d_t = DUP(tg, n);
        float *d_dl = DUP(dl, n), *loss = dalloc((size_t)n * 4), *lse = dalloc((size_t)n * 4);
        snprintf(shape, sizeof shape, "n=%d vocab=%d", n, vocab);
        rc = etc_cross_entropy_forward_bf16(loss, lse, lg, d_t, n, vocab);
        TIME_US(us, etc_cross_entropy_forward_bf16(loss, lse, lg, d_t, n, vocab));
        report("perf.cross_entropy.fwd.bf16", shape, rc, NULL, -1, us, (double)e * 2, 0);
        void *dlg = drandom(e, 1, 1e-4f);
        rc = etc_cross_entropy_backward_bf16(dlg, lg, lse, d_t, d_dl, n, vocab);
        TIME_US(us, etc_cross_entropy_backward_bf16(dlg, lg, lse, d_t, d_dl, n, vocab));
        report("perf.cross_entropy.bwd.bf16", shape, rc, NULL, -1, us, 3.0 * e * 2, 0);
        rc = etc_cross_entropy_fused_bf16(loss, lse, dlg, d_t, d_dl, n, vocab);
        TIME_US(us, etc_cross_entropy_fused_bf16(loss, lse, dlg, d_t, d_dl, n, vocab));
        report("perf.cross_entropy.fused.bf16", shape, rc, NULL, -1, us, 3.0 * e * 2, 0);
        free(tg), free(dl);
        dfree_all();
    }
    { /* LoRA r=16 on all seven projections of Llama-3.2-1B: about 11.3M parameters */
        const int64_t e = PERF_LORA_PARAMS;
        void *p = drandom(e, 0, 1.0f), *m = drandom(e, 0, 0.01f), *g = drandom(e, 0, 0.1f);
        void *v = dalloc((size_t)e * 4);
        cuda_or_die(cudaMemset(v, 0, (size_t)e * 4), "memset"); /* v >= 0 */
        snprintf(shape, sizeof shape, "n=%lld", (long long)e);
        rc = etc_adamw_update(p, m, v, g, e, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
        TIME_US(us, etc_adamw_update(p, m, v, g, e, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 1));
        report("perf.adamw", shape, rc, NULL, -1, us, 7.0 * e * 4, 0);
        dfree_all();
    }
    {
        const int64_t e = (int64_t)n * c;
        void *x = drandom(e, 1, 1.0f), *o = dalloc((size_t)e * 2), *k = dalloc((size_t)e);
        snprintf(shape, sizeof shape, "n=%lld p=0.05", (long long)e);
        rc = etc_dropout_forward_bf16(o, k, x, 0.05f, 7, 0, e);
        TIME_US(us, etc_dropout_forward_bf16(o, k, x, 0.05f, 7, 0, e));
        report("perf.dropout.fwd.bf16", shape, rc, NULL, -1, us, 5.0 * e, 0);
        dfree_all();
    }
}

/* cuDNN's attention at the perf.attention shapes (b = 1, 4): apart from perf_rows and
 * after every other row, so that a fault inside the vendor library costs no other
 * row. */
static void perf_rows_cudnn(void) {
    const int n = PERF_TOKENS, hq = 32, hkv = 8, hd = 64;
    char shape[96], why[200];
    for (int bb = 1; bb <= 4; bb += 3) {
        snprintf(shape, sizeof shape, "b=%d t=%d hq=%d hkv=%d d=%d", bb, n, hq, hkv, hd);
        if (!etc_attention_cudnn_available(why, sizeof why)) {
            report_skip("perf.attention.fwd.bf16.cudnn", shape, why);
            continue;
        }
        g_hold = 1;
        const int64_t eq = (int64_t)bb * n * hq * hd, ek = (int64_t)bb * n * hkv * hd;
        void *q = drandom(eq, 1, 1.0f), *k = drandom(ek, 1, 1.0f), *v = drandom(ek, 1, 1.0f);
        void *o = dalloc((size_t)eq * 2), *l = dalloc((size_t)bb * hq * n * 4);
        void *g = drandom(eq, 1, 1.0f), *dq = dalloc((size_t)eq * 2);
        void *dk = dalloc((size_t)ek * 2), *dv = dalloc((size_t)ek * 2);
        const double ff = 4.0 * hd * hq * bb * attention_pairs(n, 0);
        double us;
        int rc = etc_attention_cudnn_forward(o, l, q, k, v, bb, n, hq, hkv, hd, 0);
        TIME_US(us, etc_attention_cudnn_forward(o, l, q, k, v, bb, n, hq, hkv, hd, 0));
        report("perf.attention.fwd.bf16.cudnn", shape, rc, NULL, -1, us, 0, ff);
        rc |= etc_attention_cudnn_backward(dq, dk, dv, g, q, k, v, o, l, bb, n, hq, hkv, hd, 0);
        TIME_US(us, etc_attention_cudnn_backward(dq, dk, dv, g, q, k, v, o, l, bb, n, hq, hkv, hd, 0));
        report("perf.attention.bwd.bf16.cudnn", shape, rc, NULL, -1, us, 0, 2.5 * ff);
        dfree_all();
        g_hold = 0;
    }
}

/* Copy bandwidth, the memory ceiling the GB/s columns compare against. */
static void perf_copy(void) {
#ifndef PERF_COPY_BYTES
#define PERF_COPY_BYTES ((size_t)1 << 30)
#endif
    const size_t bytes = PERF_COPY_BYTES;
    void *a = dalloc(bytes), *b = dalloc(bytes);
    cuda_or_die(cudaMemset(a, 0x3C, bytes), "memset");
    double us;
    TIME_US(us, cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
    char shape[64];
    snprintf(shape, sizeof shape, "%zu MiB", bytes >> 20);
    report("perf.memcpy.d2d", shape, 0, NULL, -1, us, 2.0 * bytes, 0);
}

/* --only PREFIX: run the test groups whose name starts with PREFIX. */
static const char *g_only;
static int want(const char *group) { return !g_only || !strncmp(group, g_only, strlen(g_only)); }

int main(int argc, char **argv) {
    int perf = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            g_json = fopen(argv[++i], "w");
            if (!g_json) {
                fprintf(stderr, "parity: cannot write %s\n", argv[i]);
                return 1;
            }
        } else if (!strcmp(argv[i], "--no-perf")) {
            perf = 0;
        } else if (!strcmp(argv[i], "--quick")) {
            g_warmup = 0, g_reps = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            g_only = argv[++i];
        } else {
            fprintf(stderr, "usage: gpu_parity [--json FILE] [--no-perf] [--quick] [--only GROUP]\n");
            return 2;
        }
    }
    if (etc_device_count() == 0) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    char name[128];
    int cc = etc_device_name(0, name, sizeof name);
    const char *seed_env = getenv("ET_PARITY_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10)
                             : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    g_rng = seed;
    printf("gpu_parity: device 0 = %s (sm_%d), seed %llu (ET_PARITY_SEED to repeat)\n", name, cc,
           (unsigned long long)seed);
    cuda_or_die(cudaEventCreate(&g_ev0), "event");
    cuda_or_die(cudaEventCreate(&g_ev1), "event");
    printf("%-28s %-34s %9s %6s %-5s %10s %8s\n", "op", "shape", "rel.err", "limit", "stat",
           "time.us", "rate");

    if (want("embedding")) test_embedding(300, 200, 1000);
    if (want("embedding")) test_embedding(517, 2048, 5003);
    if (want("rmsnorm")) test_rmsnorm(257, 1001);
    if (want("rmsnorm")) test_rmsnorm(64, 2048);
    if (want("swiglu") || want("add")) test_swiglu_add(1000003);
    if (want("swiglu")) test_swiglu_inplace(1000003);
    if (want("rope")) test_rope(2, 67, 5, 64);
    if (want("rope")) test_rope(1, 128, 8, 128);
    if (want("rope")) test_rope(1, 33, 3, 24); /* d/2 = 12: 4-float packs, single bf16 pairs */
    if (want("cross_entropy")) test_cross_entropy(37, 32003);
    if (want("cross_entropy")) test_cross_entropy(64, 128256);
    if (want("adamw")) test_adamw(100003);
    if (want("dropout")) test_dropout(1000003, 0.1f);
    if (want("dropout")) test_dropout(4099, 0.0f);
    if (want("dropout")) test_dropout(4099, 1.0f);
    if (want("linear")) test_linear(67, 300, 257, 1);
    if (want("linear")) test_linear(128, 2048, 2048, 0);
    if (want("linear")) test_matmul_ld(67, 257, 300, 0, 1, 0);   /* C apart from D only */
    if (want("linear")) test_matmul_ld(64, 16, 300, 0, 1, 32);   /* grouped x·Aᵀ into columns */
    if (want("linear")) test_matmul_ld(64, 128, 16, 0, 1, 32);   /* a column block times Bᵀ */
    if (want("linear")) test_matmul_ld(96, 16, 64, 1, 0, 16);    /* dB = s·dyᵀ·(column block) */
    if (want("lora")) test_lora(67, 300, 16, 257);
    if (want("lora")) test_lora(256, 2048, 8, 512);
    if (want("lora")) test_kext_weights(16);
    if (want("lora")) test_lora_dropout_dx(67, 264, 3, 16, 0.1f);
    if (want("lora")) test_lora_dropout_dx(40, 64, 2, 8, 0.5f);
    if (want("lora")) test_lora_dropout_dx(33, 200, 1, 16, 0.0f);
    if (want("lora")) test_lora_dropout_xa(67, 264, 3, 16, 0.1f);
    if (want("lora")) test_lora_dropout_xa(130, 100, 2, 8, 0.5f);
    if (want("lora")) test_lora_dropout_xa(33, 200, 1, 16, 0.0f);
    /* the tensor-core kernel (r a multiple of 8, in of 8): several row blocks, a chunk
     * tail, odd tile counts (r = 8, 24), r = 32; r = 4 keeps the CUDA-core kernel */
    if (want("lora")) test_lora_dropout_xa(150, 136, 3, 8, 0.3f);
    if (want("lora")) test_lora_dropout_xa(70, 72, 2, 24, 0.1f);
    if (want("lora")) test_lora_dropout_xa(129, 200, 2, 32, 0.05f);
    if (want("lora")) test_lora_dropout_xa(40, 64, 3, 4, 0.2f);
    /* dA under dropout: splits of the rows (chunk tails, a split shorter than the
     * others), column tails, r = 16 and 32, one split only */
    if (want("lora")) test_lora_dropout_da(300, 136, 3, 16, 0.1f, 64);
    if (want("lora")) test_lora_dropout_da(129, 72, 2, 32, 0.3f, 64);
    if (want("lora")) test_lora_dropout_da(200, 64, 1, 16, 0.0f, 1);
    if (want("lora")) test_lora_dropout_da(77, 200, 2, 16, 0.5f, 2);
    if (want("lora")) test_kext_weights(8);
    if (want("attention")) test_attention(2, 67, 8, 2, 64, 0);
    if (want("attention")) test_attention(1, 200, 4, 4, 128, 50);
    if (want("attention")) test_attention(1, 130, 6, 2, 48, 33);
    if (want("attention")) test_attention(1, 33, 40, 1, 32, 0);
    /* window 1 would make dq and dk exactly zero (p = 1, dS = dP − delta = 0):
     * their relative error would be rounding noise over rounding noise */
    if (want("attention")) test_attention(2, 96, 4, 1, 16, 2);
    if (want("attention")) test_attention_bf16(2, 67, 8, 2, 64, 0);
    if (want("attention")) test_attention_bf16(1, 200, 4, 4, 128, 50);
    if (want("attention")) test_attention_bf16(1, 130, 6, 2, 48, 33);
    if (want("attention")) test_attention_bf16(1, 33, 40, 1, 32, 0);
    if (want("attention")) test_attention_bf16(2, 96, 4, 1, 16, 2);
    if (want("attention")) test_attention_bf16(1, 300, 8, 2, 64, 0);
    if (want("attention")) test_attention_bf16(1, 160, 4, 2, 128, 0);
    /* more shapes for every variant: GQA group 4 and 3 (odd item counts), windows
     * shorter than t and than a tile, t off the tile sizes, d 64 and 128 */
    if (want("attention")) test_attention_bf16(1, 333, 16, 4, 64, 100);
    if (want("attention")) test_attention_bf16(2, 77, 8, 2, 128, 0);
    if (want("attention")) test_attention_bf16(1, 257, 8, 2, 128, 64);
    if (want("attention")) test_attention_bf16(1, 50, 12, 4, 64, 0);
    if (want("attention")) test_attention_bf16(1, 200, 4, 1, 64, 17);
    if (want("attention")) test_attention_bf16(1, 97, 6, 2, 96, 5);
    if (want("attention")) test_attention_bf16_repeat(2, 333, 16, 4, 64, 0);
    /* the split dK/dV kernel (32-key blocks, 16-row items shared by two warp pairs) */
    if (want("attention")) test_attention_bf16_split(1, 333, 16, 4, 64, 100);
    if (want("attention")) test_attention_bf16_split(1, 257, 8, 2, 128, 64);
    if (want("attention")) test_attention_bf16_split(1, 50, 12, 4, 64, 0);
    /* the wide kernels (32 rows a warp; 128-row forward and dQ blocks, 64-key dK/dV
     * blocks whose warp pairs share 32-row items): every d <= 64 shape above, a
     * longer sequence (several items per pair, blocks on both sides of the
     * diagonal), and d = 128, which falls back to the 16-row kernels */
    if (want("attention")) test_attention_bf16_wide(2, 67, 8, 2, 64, 0);
    if (want("attention")) test_attention_bf16_wide(1, 130, 6, 2, 48, 33);
    if (want("attention")) test_attention_bf16_wide(1, 33, 40, 1, 32, 0);
    if (want("attention")) test_attention_bf16_wide(2, 96, 4, 1, 16, 2);
    if (want("attention")) test_attention_bf16_wide(1, 300, 8, 2, 64, 0);
    if (want("attention")) test_attention_bf16_wide(1, 333, 16, 4, 64, 100);
    if (want("attention")) test_attention_bf16_wide(1, 50, 12, 4, 64, 0);
    if (want("attention")) test_attention_bf16_wide(1, 200, 4, 1, 64, 17);
    /* a config's sentinel window near INT_MAX (>= t: no mask): added to block indices in
     * int it overflowed and silently zeroed dK/dV in every backward */
    if (want("attention")) test_attention(1, 100, 4, 2, 64, 2147483647);
    if (want("attention")) test_attention_bf16(1, 100, 4, 2, 64, 2147483647 - 50);
    if (want("attention")) test_attention_bf16_split(1, 100, 4, 2, 64, 2147483647);
    if (want("attention")) test_attention_bf16_wide(1, 100, 4, 2, 64, 2147483647);
    if (want("attention")) test_attention_bf16_wide(1, 700, 4, 2, 64, 0);
    if (want("attention")) test_attention_bf16_wide(1, 257, 8, 2, 128, 64);
    if (want("attention"))
        test_attention_bf16_variant(ETC_ATTN_FWD_WIDE, ETC_ATTN_BWD_WIDE, "attention.fwd.bf16.wide",
                                    "attention.bwd.bf16.wide.repeat", 1, 2, 333, 16, 4, 64, 0);
    if (want("cross_entropy")) test_cross_entropy_fused(37, 32003);
    if (want("cross_entropy")) test_cross_entropy_fused(64, 128256);
    if (want("reductions")) test_reductions(3000007);
    if (want("dp")) { /* units of 1, 2 and 1 rows; 1 unit of 3 rows; unaligned n */
        static const int32_t f1[] = {0, 1, 3, 4}, f2[] = {0, 3}, f3[] = {0, 1, 2, 3, 4};
        test_dp_clip(100003, 3, f1, 0.5, -1, 0);
        test_dp_clip(4099, 1, f2, 2.0, -1, 0);
        test_dp_clip(262147, 4, f3, 0.8, -1, 0);
        test_dp_clip(4099, 3, f1, 0.5, 1, INFINITY); /* one unit overflowed: adds nothing */
        test_dp_clip(4099, 4, f3, 0.8, 2, NAN);
        test_dp_noise(100003, 7);
        test_dp_noise(4098, (1ull << 32) + 5);
    }
    if (perf && !g_only) {
        perf_copy();
        perf_rows();
    }
    /* last: the rows that run inside a vendor library (cuDNN's attention) */
    /* cuDNN's fused attention (where libcudnn 9 loads): the model's shapes — GQA,
     * windows, d 64 and 128, t off any tile size */
    if (want("attention")) test_attention_cudnn(2, 67, 8, 2, 64, 0);
    if (want("attention")) test_attention_cudnn(1, 333, 16, 4, 64, 100);
    if (want("attention")) test_attention_cudnn(1, 257, 8, 2, 128, 64);
    if (want("attention")) test_attention_cudnn(1, 200, 4, 1, 64, 17);
    if (want("attention")) test_attention_cudnn(2, 192, 32, 8, 64, 0);
    if (perf && !g_only) {
        perf_rows_cudnn();
    }

    printf("gpu_parity: %d passed, %d failed, %d timed only, %d skipped\n", g_pass, g_fail, g_timed,
           g_skip);
    if (g_json) fclose(g_json);
    etc_shutdown();
    if (g_pass + g_fail == 0) {
        fprintf(stderr, "gpu_parity: no parity row ran (--only %s matches no group)\n",
                g_only ? g_only : "");
        return 1;
    }
    return g_fail ? 1 : 0;
}
