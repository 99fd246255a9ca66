/* FFT-based convolutions for the PRV accountant (see prv_fft.h).
 *
 * Opacus composes a discretised PRV with itself by irfft(rfft(p)^n): a cyclic
 * convolution of exactly the grid length N, which is any even number. Mass that
 * leaves the grid wraps around, and the result is then rolled to re-centre it; to
 * reproduce Opacus's numbers we keep exactly that length-N cyclic structure rather
 * than zero-padding. A length-N real DFT is one length-N/2 complex DFT plus a twiddle
 * pass, and a length-m complex DFT of any m is a length-M (power of two) cyclic
 * convolution with a chirp (Bluestein), so one radix-2 FFT is all we need. */
#include "trainer/prv_fft.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double re, im;
} cplx;

static inline cplx cmul(cplx a, cplx b) {
    return (cplx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
static inline cplx cconj(cplx a) { return (cplx){a.re, -a.im}; }

/* exp(-i·2π·num/den) with num reduced first, so large angles keep full accuracy. */
static cplx unit_root(int64_t num, int64_t den) {
    num %= den;
    if (num < 0) num += den;
    double angle = -2.0 * M_PI * ((double)num / (double)den);
    return (cplx){cos(angle), sin(angle)};
}

/* In-place radix-2 FFT of length M (a power of two); sign -1 forward, +1 inverse
 * (unnormalised). twiddle[j] = exp(-2πi j/M) for j < M/2. */
static void fft_radix2(cplx *x, int64_t M, const cplx *twiddle, int sign) {
    for (int64_t i = 1, j = 0; i < M; i++) { /* bit-reversal permutation */
        int64_t bit = M >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j |= bit;
        if (i < j) {
            cplx t = x[i];
            x[i] = x[j];
            x[j] = t;
        }
    }
    for (int64_t len = 2; len <= M; len <<= 1) {
        int64_t half = len >> 1, stride = M / len;
        for (int64_t start = 0; start < M; start += len) {
            for (int64_t k = 0; k < half; k++) {
                cplx w = twiddle[k * stride];
                if (sign > 0) w.im = -w.im;
                cplx u = x[start + k], v = cmul(x[start + k + half], w);
                x[start + k] = (cplx){u.re + v.re, u.im + v.im};
                x[start + k + half] = (cplx){u.re - v.re, u.im - v.im};
            }
        }
    }
}

static int64_t next_pow2(int64_t n) {
    int64_t M = 1;
    while (M < n) M <<= 1;
    return M;
}

static cplx *twiddles(int64_t M) {
    cplx *t = malloc(sizeof *t * (size_t)(M / 2 > 0 ? M / 2 : 1));
    if (t)
        for (int64_t j = 0; j < M / 2; j++) t[j] = unit_root(j, M);
    return t;
}

/* Bluestein plan for complex DFTs of length m: X_k = c_k · Σ_n (x_n c_n) conj(c_{k-n}),
 * c_n = exp(-iπ n²/m), evaluated as a length-M cyclic convolution. */
typedef struct {
    int64_t m, M;
    cplx *chirp;  /* c_n, n < m */
    cplx *kernel; /* FFT of conj(c) laid out cyclically over M */
    cplx *work;   /* M scratch */
    cplx *twiddle;
} bluestein;

static void bluestein_free(bluestein *b) {
    free(b->chirp);
    free(b->kernel);
    free(b->work);
    free(b->twiddle);
}

static int bluestein_init(bluestein *b, int64_t m, et_error *err) {
    b->m = m;
    b->M = next_pow2(2 * m - 1);
    b->chirp = malloc(sizeof(cplx) * (size_t)m);
    b->kernel = calloc((size_t)b->M, sizeof(cplx));
    b->work = malloc(sizeof(cplx) * (size_t)b->M);
    b->twiddle = twiddles(b->M);
    if (!b->chirp || !b->kernel || !b->work || !b->twiddle) {
        bluestein_free(b);
        return et_fail(err, "PRV accountant: out of memory for an FFT of %lld points",
                       (long long)b->M);
    }
    /* n² mod 2m keeps the chirp angle exact for n up to ~3e9 */
    for (int64_t n = 0; n < m; n++) b->chirp[n] = unit_root((n * n) % (2 * m), 2 * m);
    b->kernel[0] = cconj(b->chirp[0]);
    for (int64_t n = 1; n < m; n++) b->kernel[n] = b->kernel[b->M - n] = cconj(b->chirp[n]);
    fft_radix2(b->kernel, b->M, b->twiddle, -1);
    return 0;
}

/* In-place length-m DFT of x: forward (sign -1) or unnormalised inverse (sign +1,
 * via conj(DFT(conj(x)))). */
static void bluestein_dft(bluestein *b, cplx *x, int sign) {
    int64_t m = b->m, M = b->M;
    for (int64_t n = 0; n < m; n++) {
        cplx v = sign > 0 ? cconj(x[n]) : x[n];
        b->work[n] = cmul(v, b->chirp[n]);
    }
    for (int64_t n = m; n < M; n++) b->work[n] = (cplx){0, 0};
    fft_radix2(b->work, M, b->twiddle, -1);
    for (int64_t n = 0; n < M; n++) b->work[n] = cmul(b->work[n], b->kernel[n]);
    fft_radix2(b->work, M, b->twiddle, +1);
    double inv_M = 1.0 / (double)M;
    for (int64_t k = 0; k < m; k++) {
        cplx v = cmul(b->work[k], b->chirp[k]);
        v.re *= inv_M;
        v.im *= inv_M;
        x[k] = sign > 0 ? cconj(v) : v;
    }
}

/* z^n for a non-negative integer n, in polar form (as numpy does for large n). */
static cplx cpow_int(cplx z, int64_t n) {
    double r = hypot(z.re, z.im);
    if (r == 0) return (cplx){n == 0 ? 1.0 : 0.0, 0};
    double rn = pow(r, (double)n), theta = atan2(z.im, z.re) * (double)n;
    return (cplx){rn * cos(theta), rn * sin(theta)};
}

int et_prv_cyclic_self_convolve(double *p, int64_t n, int64_t n_fold, et_error *err) {
    if (n < 2 || n % 2) return et_fail(err, "PRV accountant: grid size %lld is not even",
                                       (long long)n);
    if (n_fold == 1) return 0;
    int64_t m = n / 2;
    bluestein b;
    if (bluestein_init(&b, m, err)) return -1;
    cplx *z = malloc(sizeof *z * (size_t)(m + 1));
    if (!z) {
        bluestein_free(&b);
        return et_fail(err, "PRV accountant: out of memory for %lld points", (long long)n);
    }
    /* rfft: pack even/odd samples as one complex vector, DFT it, untangle. */
    for (int64_t k = 0; k < m; k++) z[k] = (cplx){p[2 * k], p[2 * k + 1]};
    bluestein_dft(&b, z, -1);
    z[m] = z[0];
    /* spectrum X[k], k = 0..m, computed from pairs (k, m-k) in place; raised to n_fold */
    for (int64_t k = 0; k <= m / 2; k++) {
        int64_t kk = m - k;
        cplx zk = z[k], zkk = z[kk];
        cplx out[2];
        for (int side = 0; side < 2; side++) {
            int64_t idx = side ? kk : k;
            cplx a = side ? zkk : zk, c = cconj(side ? zk : zkk);
            cplx even = {(a.re + c.re) / 2, (a.im + c.im) / 2};
            cplx diff = {(a.re - c.re) / 2, (a.im - c.im) / 2};
            cplx odd = {diff.im, -diff.re}; /* diff / i */
            cplx X = {even.re, even.im};
            cplx t = cmul(unit_root(idx, n), odd);
            X.re += t.re;
            X.im += t.im;
            out[side] = cpow_int(X, n_fold);
        }
        z[k] = out[0];
        z[kk] = out[1];
    }
    z[0].im = 0; /* as irfft: the DC and Nyquist bins of a real signal are real */
    z[m].im = 0;
    /* irfft: re-tangle into a length-m complex spectrum, inverse DFT, unpack. */
    for (int64_t k = 0; k <= m / 2; k++) {
        int64_t kk = m - k;
        cplx yk = z[k], ykk = z[kk];
        cplx out[2];
        for (int side = 0; side < 2; side++) {
            int64_t idx = side ? kk : k;
            cplx a = side ? ykk : yk, c = cconj(side ? yk : ykk);
            cplx even = {(a.re + c.re) / 2, (a.im + c.im) / 2};
            cplx diff = {(a.re - c.re) / 2, (a.im - c.im) / 2};
            cplx odd = cmul(cconj(unit_root(idx, n)), diff);
            out[side] = (cplx){even.re - odd.im, even.im + odd.re}; /* even + i·odd */
        }
        z[k] = out[0];
        if (kk < m) z[kk] = out[1];
    }
    bluestein_dft(&b, z, +1);
    double inv_n = 1.0 / (double)n; /* 2/n = 1/m normalises the length-m inverse DFT */
    for (int64_t k = 0; k < m; k++) {
        p[2 * k] = z[k].re * 2.0 * inv_n;
        p[2 * k + 1] = z[k].im * 2.0 * inv_n;
    }
    free(z);
    bluestein_free(&b);
    return 0;
}

int et_prv_convolve_same(const double *a, const double *b, int64_t n, double *out,
                         et_error *err) {
    int64_t M = next_pow2(2 * n - 1);
    cplx *x = malloc(sizeof *x * (size_t)M), *tw = twiddles(M);
    if (!x || !tw) {
        free(x);
        free(tw);
        return et_fail(err, "PRV accountant: out of memory for an FFT of %lld points",
                       (long long)M);
    }
    /* both real inputs in one complex FFT: x = a + i·b */
    for (int64_t k = 0; k < M; k++) x[k] = k < n ? (cplx){a[k], b[k]} : (cplx){0, 0};
    fft_radix2(x, M, tw, -1);
    /* A_k = (X_k + conj X_{M-k})/2, B_k = (X_k - conj X_{M-k})/(2i); A·B is the
     * spectrum of the real linear convolution, and it is Hermitian, so pairs (k, M-k)
     * are updated together. */
    for (int64_t k = 0; k <= M / 2; k++) {
        int64_t kk = (M - k) % M;
        cplx xk = x[k], xkk = x[kk];
        cplx A = {(xk.re + xkk.re) / 2, (xk.im - xkk.im) / 2};
        cplx B = {(xk.im + xkk.im) / 2, -(xk.re - xkk.re) / 2};
        cplx P = cmul(A, B);
        x[k] = P;
        x[kk] = cconj(P);
    }
    fft_radix2(x, M, tw, +1);
    double inv_M = 1.0 / (double)M;
    for (int64_t k = 0; k < n; k++) out[k] = x[k + n / 2 - 1].re * inv_M;
    free(x);
    free(tw);
    return 0;
}
