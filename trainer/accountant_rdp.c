/* RDP accountant for the Poisson-subsampled Gaussian, as Opacus computes it
 * (opacus/accountants/analysis/rdp.py, itself from TF Privacy): log A_α by the
 * binomial sum for integer α and by the signed generalised-binomial series for
 * fractional α (Mironov, Talwar & Zhang 2019 §3.3), everything in log space, then
 * the improved RDP -> (ε, δ) conversion (Balle et al. 2020 Thm 21). research/dp.md §1. */
#include "trainer/accountant.h"

#include <math.h>
#include <stdlib.h>

const double ET_RDP_DEFAULT_ORDERS[ET_RDP_N_DEFAULT_ORDERS] = {
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0,
    2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0,
    3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0,
    4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0,
    5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6.0,
    6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0,
    7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9, 8.0,
    8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0,
    9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10.0,
    10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9,
    12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
};

const double ET_RDP_DP_ACCOUNTING_ORDERS[ET_RDP_N_DP_ACCOUNTING_ORDERS] = {
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0,
    2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0,
    3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0,
    4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0,
    5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6.0,
    6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0,
    7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9, 8.0,
    8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0,
    9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10.0,
    10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9,
    11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 128, 256, 512, 1024,
};

/* log(e^x + e^y) without overflow; -inf stands for 0. */
static double log_add(double x, double y) {
    double a = fmin(x, y), b = fmax(x, y);
    if (a == -INFINITY) return b;
    return log1p(exp(a - b)) + b;
}

/* log(e^x - e^y) for x >= y. A negative result would mean the series lost all its
 * precision; Opacus raises there, we return NaN so that order drops out of the
 * minimum (as NaNs do in get_privacy_spent). */
static double log_sub(double x, double y) {
    if (x < y) return NAN;
    if (y == -INFINITY) return x;
    if (x == y) return -INFINITY;
    if (x - y > 700) return x; /* expm1 would overflow; the difference is x to 1e-300 */
    return log(expm1(x - y)) + y;
}

/* log(erfc(x)), accurate where erfc underflows (x > ~26): the asymptotic series
 * erfc(x) ~ e^{-x²}/(x√π) · Σ (-1)^n (2n-1)!!/(2x²)^n, summed while its terms shrink. */
static double log_erfc(double x) {
    if (x < 25.0) return log(erfc(x));
    double inv2x2 = 1.0 / (2.0 * x * x), term = 1.0, sum = 1.0;
    for (int n = 1; n < 30; n++) {
        double next = -term * (2.0 * n - 1.0) * inv2x2;
        if (fabs(next) >= fabs(term)) break;
        term = next;
        sum += term;
        if (fabs(term) < 1e-17 * fabs(sum)) break;
    }
    return -x * x - log(x) - 0.5 * log(M_PI) + log(sum);
}

/* log A_α for integer α: log Σ_k C(α,k) q^k (1-q)^{α-k} exp((k²-k)/(2σ²)). */
static double log_a_int(double q, double sigma, int alpha) {
    double log_a = -INFINITY, log_q = log(q), log_1mq = log1p(-q);
    for (int k = 0; k <= alpha; k++) {
        double log_binom = lgamma(alpha + 1.0) - lgamma(k + 1.0) - lgamma(alpha - k + 1.0);
        double s = log_binom + k * log_q + (alpha - k) * log_1mq +
                   ((double)k * k - k) / (2.0 * sigma * sigma);
        log_a = log_add(log_a, s);
    }
    return log_a;
}

/* log A_α for fractional α: the Gaussian integral split at z0 and each half expanded
 * in the generalised binomial series. C(α,i) changes sign for i > α. Opacus (and the
 * old TF Privacy) add positive and subtract negative terms and stop after the first i
 * whose two terms are both below e^-30: that is the exact value. dp_accounting (since
 * 2024) sums |terms|, an upper bound (~3% high at q=0.01, σ=2.5, α=1.5), stops once
 * both terms fall and are e^-30 below the total, and gives up (+inf) after 1000
 * terms. research/dp.md §1.3. */
static double log_a_frac(et_rdp_flavour flavour, double q, double sigma, double alpha) {
    double log_a0 = -INFINITY, log_a1 = -INFINITY, last_s0 = -INFINITY, last_s1 = -INFINITY;
    double log_q = log(q), log_1mq = log1p(-q);
    double z0 = sigma * sigma * log(1.0 / q - 1.0) + 0.5;
    double two_s2 = 2.0 * sigma * sigma, s_sqrt2 = sqrt(2.0) * sigma;
    int max_terms = flavour == ET_RDP_DP_ACCOUNTING ? 1000 : 100000;
    double coef = 1.0; /* C(α, i), updated by C(α,i) = C(α,i-1)·(α-i+1)/i */
    for (int i = 0; i < max_terms; i++) {
        if (i > 0) coef *= (alpha - i + 1.0) / i;
        double log_coef = log(fabs(coef));
        double j = alpha - i;
        double log_t0 = log_coef + i * log_q + j * log_1mq;
        double log_t1 = log_coef + j * log_q + i * log_1mq;
        double log_e0 = log(0.5) + log_erfc((i - z0) / s_sqrt2);
        double log_e1 = log(0.5) + log_erfc((z0 - j) / s_sqrt2);
        double log_s0 = log_t0 + ((double)i * i - i) / two_s2 + log_e0;
        double log_s1 = log_t1 + (j * j - j) / two_s2 + log_e1;
        if (flavour == ET_RDP_DP_ACCOUNTING) {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
            double total = log_add(log_a0, log_a1);
            if (log_s0 < last_s0 && log_s1 < last_s1 && fmax(log_s0, log_s1) < total - 30)
                return total;
            last_s0 = log_s0;
            last_s1 = log_s1;
            continue;
        }
        if (coef > 0) {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0);
            log_a1 = log_sub(log_a1, log_s1);
        }
        if (fmax(log_s0, log_s1) < -30) return log_add(log_a0, log_a1);
    }
    return INFINITY; /* no convergence: an unusable order, never the optimum */
}

double et_rdp_sampled_gaussian(et_rdp_flavour flavour, double q, double sigma,
                               double order) {
    if (q == 0) return 0;
    if (sigma == 0) return INFINITY;
    if (q == 1.0) return order / (2.0 * sigma * sigma);
    if (isinf(order)) return INFINITY;
    double log_a = (order == floor(order) && order < 1e9) ? log_a_int(q, sigma, (int)order)
                                                          : log_a_frac(flavour, q, sigma, order);
    return log_a / (order - 1.0);
}

void et_rdp_compose(et_rdp_flavour flavour, const et_dp_phase *phases, int n_phases,
                    const double *orders, int n_orders, double *rdp) {
    for (int i = 0; i < n_orders; i++) {
        rdp[i] = 0;
        for (int k = 0; k < n_phases; k++)
            rdp[i] += (double)phases[k].steps *
                      et_rdp_sampled_gaussian(flavour, phases[k].sample_rate,
                                              phases[k].noise_multiplier, orders[i]);
    }
}

/* ε at one order by the improved conversion (Balle et al. 2020 Thm 21; Canonne,
 * Kamath & Steinke 2020 Prop. 12). dp_accounting adds: ε = 0 when the KL bound
 * δ >= sqrt(1 - e^-rdp) already holds, +inf for orders <= 1.01 (unstable), 0 for a
 * negative rdp. */
static double order_epsilon(et_rdp_flavour flavour, double a, double r, double delta) {
    if (flavour == ET_RDP_DP_ACCOUNTING) {
        if (r < 0) return 0.0;
        if (delta * delta + expm1(-r) > 0) return 0.0;
        if (a > 1.01) return r + log1p(-1.0 / a) - log(delta * a) / (a - 1.0);
        return isnan(r) ? NAN : INFINITY;
    }
    return r - (log(delta) + log(a)) / (a - 1.0) + log((a - 1.0) / a);
}

void et_rdp_to_epsilon(et_rdp_flavour flavour, const double *orders, const double *rdp,
                       int n_orders, double delta, double *eps, double *best_order) {
    *eps = INFINITY;
    *best_order = NAN;
    int best = -1;
    for (int i = 0; i < n_orders; i++) {
        double e = order_epsilon(flavour, orders[i], rdp[i], delta);
        if (isnan(e)) continue;
        if (best < 0 || e < *eps) { /* strict: the first of equal minima, as argmin */
            best = i;
            *eps = e;
        }
    }
    if (best >= 0) *best_order = orders[best];
    if (flavour == ET_RDP_DP_ACCOUNTING && *eps < 0) *eps = 0;
}

int et_rdp_epsilon(et_rdp_flavour flavour, const et_dp_phase *phases, int n_phases,
                   const double *orders, int n_orders, double delta, double *eps,
                   double *best_order, et_error *err) {
    if (!orders) {
        orders = ET_RDP_DEFAULT_ORDERS;
        n_orders = ET_RDP_N_DEFAULT_ORDERS;
    }
    if (!(delta > 0 && delta < 1))
        return et_fail(err, "delta must be in (0, 1), got %g", delta);
    if (n_orders < 1) return et_fail(err, "RDP accountant needs at least one order");
    for (int i = 0; i < n_orders; i++)
        if (!(orders[i] >= 1) || (flavour == ET_RDP_OPACUS && orders[i] == 1))
            return et_fail(err, "RDP order %d is %g; orders must be > 1", i, orders[i]);
    for (int k = 0; k < n_phases; k++)
        if (et_dp_phase_check(&phases[k], err)) return et_wrap(err, "history entry %d", k);
    if (n_phases == 0) { /* nothing spent (Opacus returns 0 too) */
        *eps = 0;
        if (best_order) *best_order = NAN;
        return 0;
    }
    double *rdp = malloc(sizeof *rdp * (size_t)n_orders);
    if (!rdp) return et_fail(err, "out of memory for %d RDP orders", n_orders);
    et_rdp_compose(flavour, phases, n_phases, orders, n_orders, rdp);
    double order;
    et_rdp_to_epsilon(flavour, orders, rdp, n_orders, delta, eps, &order);
    free(rdp);
    if (best_order) *best_order = order;
    return 0;
}
