/* PRV accountant (Gopi, Lee & Wutschitz, NeurIPS 2021, arXiv:2106.02848), following
 * Opacus's PRVAccountant (opacus/accountants/prv.py and analysis/prv/) step by step so
 * that ε agrees with it to the 4th significant digit (research/dp.md §3):
 *  1. domain [-L, L] with L from the RDP accountant (Opacus's adaptation of the
 *     paper's Remark 5.6) and mesh dt = eps_error / sqrt(T·log(12/δ_err)/2);
 *  2. per phase, the privacy loss variable of one sampled-Gaussian step, truncated to
 *     the domain, discretised to cell masses and shifted so that its mean equals the
 *     continuous truncated mean;
 *  3. T-fold self-composition by irfft(rfft(p)^T) (cyclic, length of the grid) and a
 *     roll to re-centre; phases then combined by linear convolution;
 *  4. ε from the composed distribution: the δ(ε) curve on the grid, solved exactly
 *     inside the cell where it crosses δ - δ_err, plus eps_error (the upper bound).
 * Deliberate differences from Opacus, all at rounding level: cell masses are taken
 * from whichever of the CDF or the survival function is small (no 1 - (1 - x)
 * cancellation in the tails), the truncated mean is integrated to ~1e-15, and the
 * phases are folded left to right instead of in Opacus's pairwise tree. */
#include "trainer/accountant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/prv_fft.h"

/* ---- the privacy loss variable of one Poisson-subsampled Gaussian step ---- */

/* Gopi et al. Prop. B4: with z = log((e^t - (1-q))/q) (t > log(1-q)),
 *   P[X > t] = q/2·erfc((2zσ² - 1)/(2√2σ)) + (1-q)/2·erfc((2zσ² + 1)/(2√2σ)).
 * Both the CDF and the survival function come out of the same two arguments without
 * cancellation, using erfc(-x) = 2 - erfc(x). */
static void prv_cdf_sf(double q, double sigma, double t, double *cdf, double *sf) {
    /* e^t - (1-q) as expm1(t) + q: for small q the loss sits at t ~ q, where
     * exp(t) + q - 1 (Opacus's form) keeps only ~16 + log10(q) digits and the noisy
     * CDF stalls the adaptive integration of its mean */
    double base = expm1(t) + q;
    if (!(t > log(1.0 - q)) || !(base > 0)) {
        *cdf = 0.0;
        *sf = 1.0;
        return;
    }
    double z = log(base / q), s2 = sigma * sigma, den = 2.0 * sqrt(2.0) * sigma;
    double a = (2.0 * z * s2 - 1.0) / den, b = (2.0 * z * s2 + 1.0) / den;
    *sf = q * erfc(a) / 2 + (1.0 - q) * erfc(b) / 2;
    *cdf = q * erfc(-a) / 2 + (1.0 - q) * erfc(-b) / 2;
}

static double prv_cdf(double q, double sigma, double t) {
    double c, s;
    prv_cdf_sf(q, sigma, t, &c, &s);
    return c;
}

/* The PRV restricted to [t_min, t_max] and renormalised. */
typedef struct {
    double q, sigma, t_min, t_max, cdf_min, mass;
} truncated_prv;

static double truncated_cdf(const truncated_prv *p, double t) {
    if (t < p->t_min) return 0.0;
    if (t >= p->t_max) return 1.0;
    return (prv_cdf(p->q, p->sigma, t) - p->cdf_min) / p->mass;
}

/* ---- the truncated mean, t_max - ∫ CDF, by adaptive Gauss-Kronrod (7, 15) ---- */

static const double GK_X[8] = {
    0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
    0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
    0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
    0.207784955007898467600689403773245, 0.0};
static const double GK_WK[8] = {
    0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
    0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
    0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
    0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
static const double GK_WG[4] = { /* Gauss weights at GK_X[1], [3], [5], [7] */
    0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
    0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

/* Adaptive bisection until |K15 - G7| <= tol (halved with each split), or below the
 * rounding floor of the integrand; `budget` caps the evaluations so a pathological
 * integrand costs seconds, not hours (the result then keeps the last estimates). */
static double integrate_cdf(const truncated_prv *p, double a, double b, double tol,
                            int depth, long *budget) {
    double c = 0.5 * (a + b), h = 0.5 * (b - a);
    double fc = truncated_cdf(p, c);
    double kronrod = GK_WK[7] * fc, gauss = GK_WG[3] * fc;
    for (int i = 0; i < 7; i++) {
        double f = truncated_cdf(p, c - h * GK_X[i]) + truncated_cdf(p, c + h * GK_X[i]);
        kronrod += GK_WK[i] * f;
        if (i % 2 == 1) gauss += GK_WG[i / 2] * f;
    }
    kronrod *= h;
    gauss *= h;
    *budget -= 15;
    /* min depth: 15 nodes on a wide piece can all miss where the CDF leaves 0 */
    double diff = fabs(kronrod - gauss);
    if (depth >= 4 && (diff <= tol || diff <= 1e-14 * fabs(kronrod) || depth >= 60 ||
                       *budget <= 0))
        return kronrod;
    return integrate_cdf(p, a, c, tol / 2, depth + 1, budget) +
           integrate_cdf(p, c, b, tol / 2, depth + 1, budget);
}

/* E[X] of the truncated PRV as Opacus's TruncatedPrivacyRandomVariable.mean: by parts
 * on pieces split at ±1e-5 … ±1e-1, where the CDF of a small-q PRV is steep. */
static double truncated_mean(const truncated_prv *p) {
    static const double inner[10] = {-1e-1, -1e-2, -1e-3, -1e-4, -1e-5,
                                     1e-5,  1e-4,  1e-3,  1e-2,  1e-1};
    double pts[12];
    pts[0] = p->t_min;
    memcpy(pts + 1, inner, sizeof inner);
    pts[11] = p->t_max;
    double mean = 0.0, support = log(1.0 - p->q); /* the CDF is 0 up to log(1-q) */
    for (int i = 0; i < 11; i++) {
        double l = pts[i], r = pts[i + 1], from = fmax(l, support);
        long budget = 2000000;
        double integral =
            from < r ? integrate_cdf(p, from, r, 1e-15 * fmax(1.0, r - l), 0, &budget) : 0;
        mean += r * truncated_cdf(p, r) - l * truncated_cdf(p, l) - integral;
    }
    return mean;
}

/* ---- the grid ---- */

typedef struct {
    double t_min, t_max; /* first and last grid point, shifts included */
    int64_t size;        /* even */
    double shifts;       /* total shift applied so far */
} domain;

/* grid point i as numpy.linspace(t_min, t_max, size) places it */
static double domain_t(const domain *d, int64_t i) {
    if (i == d->size - 1) return d->t_max;
    return (double)i * ((d->t_max - d->t_min) / (double)(d->size - 1)) + d->t_min;
}

static double domain_dt(const domain *d) { return (d->t_max - d->t_min) / (double)(d->size - 1); }

/* Opacus's compute_safe_domain_size + mesh + Domain.create_aligned. */
static int make_domain(const et_dp_phase *phases, int n_phases, double eps_error,
                       double delta_error, domain *d, et_error *err) {
    int64_t total = 0;
    for (int k = 0; k < n_phases; k++) total += phases[k].steps;
    double l_max, e;
    if (et_rdp_epsilon(ET_RDP_OPACUS, phases, n_phases, NULL, 0, delta_error / 4, &l_max,
                       NULL, err))
        return -1;
    for (int k = 0; k < n_phases; k++) {
        et_dp_phase one = phases[k];
        one.steps = 1;
        if (et_rdp_epsilon(ET_RDP_OPACUS, &one, 1, NULL, 0, delta_error / (8.0 * (double)total),
                           &e, NULL, err))
            return -1;
        l_max = fmax(l_max, e);
    }
    double L = fmax(l_max, eps_error) + 3.0;
    double dt = eps_error / sqrt((double)total * log(12.0 / delta_error) / 2.0);
    if (!isfinite(L) || !(dt > 0))
        return et_fail(err, "PRV accountant: no finite domain (the RDP bound used to size "
                            "it is infinite); use the rdp accountant");
    double t_min = floor(-L / dt) * dt, t_max = ceil(L / dt) * dt;
    double points = nearbyint((t_max - t_min) / dt) + 1.0;
    if (points + 1.0 > (double)ET_PRV_MAX_GRID)
        return et_fail(err,
                       "PRV accountant: the grid would need %.3g points (limit %lld; "
                       "domain ±%.4g, mesh %.3g from %lld steps): use the rdp accountant "
                       "for this setting",
                       points, (long long)ET_PRV_MAX_GRID, L, dt, (long long)total);
    int64_t size = (int64_t)points;
    if (size % 2) {
        size++;
        t_max += dt;
    }
    *d = (domain){t_min, t_max, size, 0.0};
    if (fabs(domain_dt(d) - dt) / dt >= 1e-8)
        return et_fail(err, "PRV accountant: grid of %lld points does not align with mesh %g",
                       (long long)size, dt);
    return 0;
}

/* Cell masses of the truncated PRV on d's cells [t_i - dt/2, t_i + dt/2], and the
 * shift that makes their mean the continuous one. */
static int discretize(double q, double sigma, const domain *d, double *pmf, double *shift,
                      et_error *err) {
    truncated_prv p = {q, sigma, d->t_min, d->t_max, 0, 0};
    double cdf_min, sf_min, cdf_max, sf_max;
    prv_cdf_sf(q, sigma, d->t_min, &cdf_min, &sf_min);
    prv_cdf_sf(q, sigma, d->t_max, &cdf_max, &sf_max);
    p.cdf_min = cdf_min;
    p.mass = (1.0 - sf_max) - cdf_min;
    double dt = domain_dt(d);
    /* CDF and survival at the clamped left edge of cell i (edge size: the right end) */
    double prev_cdf = 0, prev_sf = 0;
    long double mean_d = 0;
    for (int64_t i = 0; i <= d->size; i++) {
        double edge = i < d->size ? domain_t(d, i) - dt / 2 : domain_t(d, d->size - 1) + dt / 2;
        double c, s;
        if (edge <= d->t_min) {
            c = cdf_min;
            s = sf_min;
        } else if (edge >= d->t_max) {
            c = cdf_max;
            s = sf_max;
        } else {
            prv_cdf_sf(q, sigma, edge, &c, &s);
        }
        if (i > 0) {
            /* difference whichever of the two is small at this end of the cell */
            double m = (prev_cdf < 0.5 ? c - prev_cdf : prev_sf - s) / p.mass;
            pmf[i - 1] = m;
            mean_d += (long double)domain_t(d, i - 1) * m;
        }
        prev_cdf = c;
        prev_sf = s;
    }
    *shift = truncated_mean(&p) - (double)mean_d;
    if (!(fabs(*shift) < dt / 2))
        return et_fail(err, "PRV accountant: discrete mean differs from the continuous mean "
                            "by %g (mesh %g) at sigma %g, q %g", *shift, dt, sigma, q);
    return 0;
}

/* p <- p rolled right by r (out[(i + r) mod n] = p[i]). */
static void roll(double *p, double *scratch, int64_t n, int64_t r) {
    r %= n;
    for (int64_t i = 0; i < n; i++) scratch[(i + r) % n] = p[i];
    memcpy(p, scratch, sizeof *p * (size_t)n);
}

/* δ(ε) from the composed distribution and ε at a target δ (DiscretePRV.compute_epsilon):
 * D1_i = Σ_{k>=i} p_k, D2_i = Σ_{k>=i} p_k e^{-t_k}, δ(t_i) = D1_i - e^{t_i} D2_i, and
 * inside the first cell with δ(t_i) <= target, ε = log((D1_i - target)/D2_i). */
typedef struct {
    double *d1, *d2, *neg_delta;
    int64_t n;
} delta_curve;

static int epsilon_at_delta(const delta_curve *c, double target, double *eps, et_error *err) {
    double key = -target;
    int64_t lo = 0, hi = c->n; /* first i with neg_delta[i] >= key, as searchsorted */
    while (lo < hi) {
        int64_t mid = lo + ((hi - lo) >> 1);
        if (c->neg_delta[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    if (lo <= 0 || lo >= c->n)
        return et_fail(err, "PRV accountant: cannot compute epsilon at delta %g (the grid "
                            "does not contain the crossing)", target);
    *eps = log((c->d1[lo] - target) / c->d2[lo]);
    return 0;
}

int et_prv_epsilon(const et_dp_phase *phases, int n_phases, double delta, double eps_error,
                   double delta_error, double *eps, double *eps_estimate, et_error *err) {
    if (!(delta > 0 && delta < 1))
        return et_fail(err, "delta must be in (0, 1), got %g", delta);
    if (!(eps_error > 0) || !isfinite(eps_error))
        return et_fail(err, "PRV accountant: eps_error must be > 0, got %g", eps_error);
    if (delta_error <= 0) delta_error = delta / 1000;
    if (!(delta_error < delta))
        return et_fail(err, "PRV accountant: delta_error %g must be below delta %g",
                       delta_error, delta);
    for (int k = 0; k < n_phases; k++)
        if (et_dp_phase_check(&phases[k], err)) return et_wrap(err, "history entry %d", k);
    if (n_phases == 0) {
        *eps = 0;
        if (eps_estimate) *eps_estimate = 0;
        return 0;
    }

    domain d = {0};
    if (make_domain(phases, n_phases, eps_error, delta_error, &d, err)) return -1;
    int64_t n = d.size;
    if (LDBL_EPSILON * (double)n > delta - delta_error)
        return et_fail(err, "PRV accountant: delta %g is too small for a grid of %lld points "
                            "(rounding would dominate); raise delta or use rdp",
                       delta, (long long)n);

    int rc = -1;
    double *acc = malloc(sizeof(double) * (size_t)n), *cur = malloc(sizeof(double) * (size_t)n),
           *tmp = malloc(sizeof(double) * (size_t)n);
    delta_curve curve = {NULL, NULL, NULL, n};
    if (!acc || !cur || !tmp) {
        et_fail(err, "PRV accountant: out of memory for a grid of %lld points", (long long)n);
        goto done;
    }
    double total_shift = 0;
    for (int k = 0; k < n_phases; k++) {
        double shift;
        double *p = k == 0 ? acc : cur;
        if (discretize(phases[k].sample_rate, phases[k].noise_multiplier, &d, p, &shift, err) ||
            et_prv_cyclic_self_convolve(p, n, phases[k].steps, err))
            goto done;
        /* the sum of T cells i_1..i_T lands on index Σi - (T-1)(n/2 - 1) mod n */
        int64_t steps = phases[k].steps;
        int64_t r = ((steps - 1) % n + (steps % 2 == 0 ? n / 2 : 0)) % n;
        roll(p, tmp, n, r);
        total_shift += shift + shift * (double)(steps - 1);
        if (k > 0) {
            if (et_prv_convolve_same(acc, cur, n, tmp, err)) goto done;
            memcpy(acc, tmp, sizeof(double) * (size_t)n);
        }
    }
    free(cur);
    free(tmp);
    cur = tmp = NULL;
    d.t_min += total_shift;
    d.t_max += total_shift;
    d.shifts = total_shift;

    curve.d1 = malloc(sizeof(double) * (size_t)n);
    curve.d2 = malloc(sizeof(double) * (size_t)n);
    curve.neg_delta = malloc(sizeof(double) * (size_t)n);
    if (!curve.d1 || !curve.d2 || !curve.neg_delta) {
        et_fail(err, "PRV accountant: out of memory for a grid of %lld points", (long long)n);
        goto done;
    }
    double s1 = 0, s2 = 0;
    for (int64_t i = n - 1; i >= 0; i--) {
        double t = domain_t(&d, i);
        s1 += acc[i];
        s2 += acc[i] * exp(-t);
        curve.d1[i] = s1;
        curve.d2[i] = s2;
        curve.neg_delta[i] = exp(t) * s2 - s1;
    }
    double upper = 0;
    if (epsilon_at_delta(&curve, delta - delta_error, &upper, err)) goto done;
    *eps = upper + eps_error;
    if (eps_estimate && epsilon_at_delta(&curve, delta, eps_estimate, err)) goto done;
    rc = 0;
done:
    free(acc);
    free(cur);
    free(tmp);
    free(curve.d1);
    free(curve.d2);
    free(curve.neg_delta);
    return rc;
}
