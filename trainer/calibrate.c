/* σ for a target ε, by the same search as Opacus's get_noise_multiplier
 * (opacus/accountants/utils.py; research/dp.md §1.6), so a recipe's target_epsilon
 * gives the σ an Opacus user would get for the same (ε, δ, q, steps, accountant). */
#include "trainer/accountant.h"

#include <math.h>

#define MAX_SIGMA 1e6

static int epsilon_at(et_accountant_kind kind, double sigma, double q, int64_t steps,
                      double delta, double *eps, et_error *err) {
    et_dp_phase phase = {sigma, q, steps};
    if (kind == ET_ACCOUNTANT_RDP)
        return et_rdp_epsilon(ET_RDP_OPACUS, &phase, 1, NULL, 0, delta, eps, NULL, err);
    return et_prv_epsilon(&phase, 1, delta, 0.01, 0, eps, NULL, err);
}

int et_sigma_for_epsilon(et_accountant_kind kind, double target_epsilon, double delta,
                         double q, int64_t steps, double eps_tolerance,
                         double *noise_multiplier, double *epsilon, et_error *err) {
    if (!(target_epsilon > 0) || !isfinite(target_epsilon))
        return et_fail(err, "target epsilon must be > 0 and finite, got %g", target_epsilon);
    if (!(delta > 0 && delta < 1))
        return et_fail(err, "delta must be in (0, 1), got %g", delta);
    if (!(q > 0 && q <= 1)) return et_fail(err, "sample rate must be in (0, 1], got %g", q);
    if (steps < 1) return et_fail(err, "steps must be >= 1, got %lld", (long long)steps);
    if (!(eps_tolerance > 0))
        return et_fail(err, "epsilon tolerance must be > 0, got %g", eps_tolerance);

    double sigma_low = 0, sigma_high = 10, eps_high = INFINITY;
    while (eps_high > target_epsilon) {
        sigma_high *= 2;
        if (epsilon_at(kind, sigma_high, q, steps, delta, &eps_high, err))
            return et_wrap(err, "at noise multiplier %g", sigma_high);
        if (sigma_high > MAX_SIGMA)
            return et_fail(err,
                           "target epsilon %g is not reachable with noise multiplier <= %g "
                           "(q = %g, %lld steps, delta = %g, %s accountant): raise the "
                           "target epsilon or delta, or lower the sample rate or steps",
                           target_epsilon, MAX_SIGMA, q, (long long)steps, delta,
                           et_accountant_kind_name(kind));
    }
    while (target_epsilon - eps_high > eps_tolerance) {
        double sigma = (sigma_low + sigma_high) / 2, eps;
        if (epsilon_at(kind, sigma, q, steps, delta, &eps, err))
            return et_wrap(err, "at noise multiplier %g", sigma);
        if (eps < target_epsilon) {
            sigma_high = sigma;
            eps_high = eps;
        } else {
            sigma_low = sigma;
        }
    }
    *noise_multiplier = sigma_high;
    if (epsilon) *epsilon = eps_high;
    return 0;
}
