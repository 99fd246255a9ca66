/* Privacy accountants for DP-SGD with the Poisson-subsampled Gaussian mechanism.
 *
 * The accountant keeps a history of phases (noise multiplier σ, sample rate q, steps)
 * exactly as Opacus's accountants do: consecutive steps with the same (σ, q) merge
 * into one phase, so a training run with a fixed σ and q is one entry however long it
 * runs, and a checkpoint only needs to save the short history (et_accountant_to_json).
 *
 * Two ways to turn the history into (ε, δ):
 *  - RDP (Mironov et al. 2019): Rényi DP of the sampled Gaussian at Opacus's 151
 *    default orders (integer orders in closed form, fractional orders by the signed
 *    series Opacus and TF Privacy sum), converted with the improved bound of Balle et
 *    al. 2020 Thm 21. Matches Opacus's RDPAccountant to ~1e-10 relative.
 *  - PRV (Gopi, Lee & Wutschitz 2021): the privacy loss random variable of one step,
 *    discretised on a mesh chosen from eps_error and delta_error, self-composed in the
 *    Fourier domain and read back as ε. Returns the upper bound Opacus's PRVAccountant
 *    returns (estimate + eps_error). Tighter than RDP; the default for reporting.
 *
 * References and test vectors: research/dp.md §1-§3; docs/privacy-accounting.md. */
#ifndef EHRTUNE_ACCOUNTANT_H
#define EHRTUNE_ACCOUNTANT_H

#include <stdint.h>

#include "data/error.h"

typedef struct cJSON cJSON;

typedef enum { ET_ACCOUNTANT_RDP = 0, ET_ACCOUNTANT_PRV = 1 } et_accountant_kind;

/* One phase of training: `steps` DP-SGD steps, each with noise std σ·C on the clipped
 * sum (C the clip norm) and each unit sampled independently with probability q. */
typedef struct {
    double noise_multiplier; /* σ > 0 */
    double sample_rate;      /* q in (0, 1] */
    int64_t steps;           /* >= 1 */
} et_dp_phase;

typedef struct {
    et_accountant_kind kind;
    et_dp_phase *phases; /* owned; consecutive phases never share (σ, q) */
    int n_phases, cap_phases;
    double eps_error;    /* PRV only: absolute error allowed in ε (Opacus default 0.01) */
    double delta_error;  /* PRV only: error allowed in δ; <= 0 means δ/1000 (Opacus) */
} et_accountant;

/* Checks σ > 0 and finite, q in (0, 1], steps >= 1; the message names the bad field. */
int et_dp_phase_check(const et_dp_phase *phase, et_error *err);

/* "rdp" / "prv" and back. et_accountant_kind_parse returns non-zero on anything else. */
const char *et_accountant_kind_name(et_accountant_kind kind);
int et_accountant_kind_parse(const char *name, et_accountant_kind *kind, et_error *err);

/* An empty history (ε = 0) with Opacus's PRV defaults. Free with et_accountant_free. */
void et_accountant_init(et_accountant *acc, et_accountant_kind kind);
void et_accountant_free(et_accountant *acc);

/* Records n_steps steps at (σ, q); merges into the last phase when (σ, q) are equal.
 * Rejects σ <= 0 (or non-finite), q outside (0, 1], n_steps < 1. */
int et_accountant_step(et_accountant *acc, double noise_multiplier, double sample_rate,
                       int64_t n_steps, et_error *err);

/* ε spent so far at δ in (0, 1). best_order (may be NULL) gets the optimal RDP order
 * for the RDP accountant and NaN for PRV. An empty history gives ε = 0. */
int et_accountant_epsilon(const et_accountant *acc, double delta, double *eps,
                          double *best_order, et_error *err);

/* Checkpoint form: {"accountant": "prv", "eps_error": .., "delta_error": ..,
 * "history": [[sigma, q, steps], ...]}. from_json validates every field and entry
 * (the file may be damaged) and initialises acc (free it with et_accountant_free). */
cJSON *et_accountant_to_json(const et_accountant *acc);
int et_accountant_from_json(const cJSON *json, et_accountant *acc, et_error *err);

/* ---- RDP (trainer/accountant_rdp.c) ---- */

/* Two published ways to evaluate the same bound. OPACUS (the accountant's choice):
 * the signed fractional-order series, exact to ~1e-9, and the plain improved
 * conversion. DP_ACCOUNTING (google/differential-privacy's dp_accounting, which TF
 * Privacy now calls): sums |terms| for fractional orders (an upper bound, a few %
 * higher where q·(α-1) is large), ε = 0 when the KL bound suffices, orders <= 1.01
 * unusable, ε clamped at 0. Kept so that published TF Privacy / dp_accounting numbers
 * can be reproduced; research/dp.md §1.3, §1.5. */
typedef enum { ET_RDP_OPACUS = 0, ET_RDP_DP_ACCOUNTING = 1 } et_rdp_flavour;

/* Opacus RDPAccountant.DEFAULT_ALPHAS: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63
 * (11 is not in the list). */
#define ET_RDP_N_DEFAULT_ORDERS 151
extern const double ET_RDP_DEFAULT_ORDERS[ET_RDP_N_DEFAULT_ORDERS];

/* dp_accounting DEFAULT_RDP_ORDERS: 1.1, ..., 10.9, 11, ..., 63, 128, 256, 512, 1024.
 * Useful where large σ and small q push the Opacus optimum to α = 63. */
#define ET_RDP_N_DP_ACCOUNTING_ORDERS 156
extern const double ET_RDP_DP_ACCOUNTING_ORDERS[ET_RDP_N_DP_ACCOUNTING_ORDERS];

/* RDP at `order` of ONE step of the sampled Gaussian: 0 for q = 0, +inf for σ = 0
 * or order = inf, order/(2σ²) for q = 1, else log(A_order)/(order - 1) (+inf where a
 * fractional series does not converge). */
double et_rdp_sampled_gaussian(et_rdp_flavour flavour, double sample_rate,
                               double noise_multiplier, double order);

/* Total RDP of the phases at each order: rdp[i] = Σ_k steps_k · rdp_step(order_i). */
void et_rdp_compose(et_rdp_flavour flavour, const et_dp_phase *phases, int n_phases,
                    const double *orders, int n_orders, double *rdp);

/* RDP -> (ε, δ) by the improved conversion (Balle et al. 2020 Thm 21),
 * ε(α) = rdp(α) - (log δ + log α)/(α - 1) + log((α - 1)/α), minimised over the orders
 * (the first of equal minima); NaN entries are ignored, as Opacus's nanargmin. All NaN
 * gives ε = +inf, order NaN. See et_rdp_flavour for the DP_ACCOUNTING rules. */
void et_rdp_to_epsilon(et_rdp_flavour flavour, const double *orders, const double *rdp,
                       int n_orders, double delta, double *eps, double *best_order);

/* The whole RDP accountant: compose at `orders` (NULL = ET_RDP_DEFAULT_ORDERS) and
 * convert. best_order may be NULL. No phases gives ε = 0. */
int et_rdp_epsilon(et_rdp_flavour flavour, const et_dp_phase *phases, int n_phases,
                   const double *orders, int n_orders, double delta, double *eps,
                   double *best_order, et_error *err);

/* ---- PRV (trainer/accountant_prv.c) ---- */

/* Refuse grids larger than this many points (memory ~ 80 bytes a point); such a run
 * is far outside the regime where PRV is affordable: use RDP. */
#define ET_PRV_MAX_GRID ((int64_t)1 << 24)

/* ε of the composed phases at δ as Opacus's PRVAccountant.get_epsilon: eps_upper
 * (estimate + eps_error) into *eps; the estimate itself into *eps_estimate if non-NULL.
 * delta_error <= 0 means δ/1000. */
int et_prv_epsilon(const et_dp_phase *phases, int n_phases, double delta, double eps_error,
                   double delta_error, double *eps, double *eps_estimate, et_error *err);

/* ---- σ for a target ε (trainer/calibrate.c) ---- */

/* Opacus's get_noise_multiplier: σ_high starts at 10 and doubles (20 is the first
 * tried) until ε(σ_high) <= target (error past 1e6: budget unreachable), then bisects
 * on [0, σ_high] until target - ε(σ_high) <= eps_tolerance (Opacus: 0.01). Returns the
 * conservative end σ_high and its ε (always <= target). One phase of `steps` steps
 * at q; PRV uses Opacus's eps_error/delta_error defaults. */
int et_sigma_for_epsilon(et_accountant_kind kind, double target_epsilon, double delta,
                         double sample_rate, int64_t steps, double eps_tolerance,
                         double *noise_multiplier, double *epsilon, et_error *err);

/* Opacus's steps for a number of epochs: int(epochs / q), truncated (so 90 epochs at
 * q = 0.04 are 2250 steps, and 1/(1/93) gives 92). -1 if not representable. */
int64_t et_steps_for_epochs(double epochs, double sample_rate);

#endif
