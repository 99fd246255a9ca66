/* Privacy accountants against the values Opacus, dp_accounting and TF Privacy assert
 * in their own tests (research/dp.md §2.1, with the file and line of each), against
 * closed forms (q = 1 is a plain Gaussian mechanism), and the σ search against
 * Opacus's get_noise_multiplier results. Tolerances: the contract is 1e-6
 * relative for RDP and 1e-4 for PRV; where a reference has fewer digits the test uses
 * half a unit of its last digit. We currently agree to ~1e-10 (RDP) and ~1e-6 (PRV),
 * see docs/privacy-accounting.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/accountant.h"

static void check_close(double actual, double expected, double rel, double abs_tol,
                        const char *what) {
    double diff = fabs(actual - expected);
    if (!(diff <= rel * fabs(expected) || diff <= abs_tol))
        fail_msg("%s: got %.12g, expected %.12g (|diff| %.3g, rel %.3g)", what, actual,
                 expected, diff, diff / fabs(expected));
}
#define CHECK_REL(a, e, rel, what) check_close((a), (e), (rel), 0.0, (what))
#define CHECK_ABS(a, e, tol, what) check_close((a), (e), 0.0, (tol), (what))

static double rdp_eps(et_rdp_flavour f, double q, double sigma, int64_t steps, double delta,
                      const double *orders, int n_orders, double *order) {
    et_dp_phase p = {sigma, q, steps};
    et_error err;
    double eps;
    if (et_rdp_epsilon(f, &p, 1, orders, n_orders, delta, &eps, order, &err))
        fail_msg("et_rdp_epsilon failed: %s", err.msg);
    return eps;
}

/* ---------------------------------------------------------------- RDP (Opacus) -- */

static void rdp_default_orders_are_opacus(void **state) {
    (void)state;
    /* [1 + x/10 for x in 1..99] + [12..63]: 151 orders, 11 missing, largest 63 */
    assert_int_equal(ET_RDP_N_DEFAULT_ORDERS, 151);
    for (int x = 1; x < 100; x++) CHECK_REL(ET_RDP_DEFAULT_ORDERS[x - 1], 1 + x / 10.0, 1e-15, "order");
    for (int a = 12; a <= 63; a++) assert_true(ET_RDP_DEFAULT_ORDERS[99 + a - 12] == a);
    assert_int_equal(ET_RDP_N_DP_ACCOUNTING_ORDERS, 156);
    assert_true(ET_RDP_DP_ACCOUNTING_ORDERS[99] == 11 && ET_RDP_DP_ACCOUNTING_ORDERS[155] == 1024);
}

static void rdp_matches_opacus_accountants_test(void **state) {
    (void)state;
    /* opacus tests/accountants_test.py L94-104: q=0.04, σ=1.5, steps int(90/0.04) */
    assert_int_equal(et_steps_for_epochs(90, 0.04), 2250);
    double order;
    double eps = rdp_eps(ET_RDP_OPACUS, 0.04, 1.5, 2250, 1e-5, NULL, 0, &order);
    CHECK_REL(eps, 7.32911117143, 1e-6, "Opacus RDP ε");
    CHECK_REL(order, 3.9, 1e-12, "optimal order");
    /* the same through the accountant object */
    et_accountant acc;
    et_accountant_init(&acc, ET_ACCOUNTANT_RDP);
    et_error err;
    for (int i = 0; i < 2250; i++) assert_int_equal(et_accountant_step(&acc, 1.5, 0.04, 1, &err), 0);
    assert_int_equal(acc.n_phases, 1);
    double eps2, order2;
    assert_int_equal(et_accountant_epsilon(&acc, 1e-5, &eps2, &order2, &err), 0);
    assert_true(eps2 == eps && order2 == order);
    et_accountant_free(&acc);
}

static void rdp_matches_opacus_doctest_heterogeneous(void **state) {
    (void)state;
    /* opacus accountants/analysis/rdp.py doctest: orders 2..32, (q,σ,T) = (1e-5,1,10)
     * then (1e-4,3,4), δ=1e-5 -> (0.336, 23); research/dp.md: 0.33634 */
    double orders[31];
    for (int i = 0; i < 31; i++) orders[i] = i + 2;
    et_dp_phase phases[2] = {{1.0, 1e-5, 10}, {3.0, 1e-4, 4}};
    double eps, order;
    et_error err;
    assert_int_equal(et_rdp_epsilon(ET_RDP_OPACUS, phases, 2, orders, 31, 1e-5, &eps, &order, &err), 0);
    CHECK_ABS(eps, 0.336, 5e-4, "doctest ε");
    CHECK_ABS(eps, 0.33634, 5e-6, "doctest ε (research/dp.md)");
    assert_true(order == 23);
    /* composition is additive: the two phases' RDP vectors summed by hand */
    double rdp[31], sum[31], eps_sum, order_sum;
    et_rdp_compose(ET_RDP_OPACUS, &phases[0], 1, orders, 31, sum);
    et_rdp_compose(ET_RDP_OPACUS, &phases[1], 1, orders, 31, rdp);
    for (int i = 0; i < 31; i++) sum[i] += rdp[i];
    et_rdp_to_epsilon(ET_RDP_OPACUS, orders, sum, 31, 1e-5, &eps_sum, &order_sum);
    CHECK_REL(eps_sum, eps, 1e-14, "additive composition");
}

static void rdp_fractional_order_is_the_exact_integral(void **state) {
    (void)state;
    /* q=0.01, σ=2.5, 50 steps (dp_accounting rdp_privacy_accountant_test.py L508-534).
     * Integer orders: the asserted values. Fractional orders: the signed series gives
     * the exact A_α (research/dp.md §1.3: 6.50071e-4 and 1.08542e-3; by numerical
     * integration 1.30014e-5 per step at α=1.5). */
    const double orders[] = {1.5, 2.5, 5, 50, 100};
    const double expected[] = {6.50071e-4, 1.08542e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2};
    const double rel[] = {1e-5, 1e-5, 1e-6, 1e-6, 1e-6};
    for (int i = 0; i < 5; i++)
        CHECK_REL(50 * et_rdp_sampled_gaussian(ET_RDP_OPACUS, 0.01, 2.5, orders[i]), expected[i],
                  rel[i], "Opacus RDP value");
    CHECK_REL(et_rdp_sampled_gaussian(ET_RDP_OPACUS, 0.01, 2.5, 1.5), 1.30014e-5, 1e-5,
              "RDP per step at 1.5");
    assert_true(isinf(et_rdp_sampled_gaussian(ET_RDP_OPACUS, 0.01, 2.5, INFINITY)));
    /* special cases shared by both libraries */
    assert_true(et_rdp_sampled_gaussian(ET_RDP_OPACUS, 0, 1.0, 2.0) == 0);
    assert_true(isinf(et_rdp_sampled_gaussian(ET_RDP_OPACUS, 0.5, 0, 2.0)));
    CHECK_REL(et_rdp_sampled_gaussian(ET_RDP_OPACUS, 1.0, 2.0, 3.5), 3.5 / 8, 1e-15, "q=1");
}

/* ------------------------------------------------------- RDP (dp_accounting) -- */

static void rdp_matches_dp_accounting_tests(void **state) {
    (void)state;
    /* rdp_privacy_accountant_test.py L508-534: |terms| series, asserted rtol 1e-4 */
    const double orders[] = {1.5, 2.5, 5, 50, 100};
    const double expected[] = {6.70579741e-4, 1.08548710e-3, 2.18075656e-3, 2.38460375e-2,
                               1.67416308e2};
    for (int i = 0; i < 5; i++)
        CHECK_REL(50 * et_rdp_sampled_gaussian(ET_RDP_DP_ACCOUNTING, 0.01, 2.5, orders[i]),
                  expected[i], 1e-6, "dp_accounting RDP value");
    assert_true(isinf(et_rdp_sampled_gaussian(ET_RDP_DP_ACCOUNTING, 0.01, 2.5, INFINITY)));

    /* L720-735: conversion only, orders 2..32, constant RDP 1.1, δ=1e-5 */
    double o[31], r[31], eps, order;
    for (int i = 0; i < 31; i++) {
        o[i] = i + 2;
        r[i] = 1.1;
    }
    for (int f = 0; f < 2; f++) {
        et_rdp_to_epsilon((et_rdp_flavour)f, o, r, 31, 1e-5, &eps, &order);
        CHECK_REL(eps, 1.32783806176, 1e-9, "conversion");
        assert_true(order == 32);
    }

    /* L737-749: q=1, σ=4.530877117 is exactly (1, 1e-6)-DP; orders 1.000..99.999 */
    int n = 99000;
    double *fine = malloc(sizeof *fine * (size_t)n);
    assert_non_null(fine);
    for (int i = 0; i < n; i++) fine[i] = 0.001 * (i + 1000);
    eps = rdp_eps(ET_RDP_DP_ACCOUNTING, 1.0, 4.530877117, 1, 1e-6, fine, n, NULL);
    CHECK_ABS(eps, 1.0, 5e-8, "Gaussian (1, 1e-6)");
    eps = rdp_eps(ET_RDP_OPACUS, 1.0, 4.530877117, 1, 1e-6, fine + 1, n - 1, NULL);
    CHECK_ABS(eps, 1.0, 5e-8, "Gaussian (1, 1e-6), Opacus conversion");
    free(fine);
}

static void rdp_matches_tf_privacy_tests(void **state) {
    (void)state;
    /* tensorflow/privacy compute_dp_sgd_privacy_test.py L41-51: the deprecated orders
     * list, steps = ceil(epochs·n/B), q = B/n */
    double tf[72];
    int n = 0;
    const double head[] = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
    for (int i = 0; i < 10; i++) tf[n++] = head[i];
    for (int a = 5; a <= 63; a++) tf[n++] = a;
    tf[n++] = 128;
    tf[n++] = 256;
    tf[n++] = 512;
    struct {
        double n_data, batch, sigma, epochs, delta, eps, order;
    } cases[] = {
        {60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19},
        {1e5, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13},
        {1e8, 1024, 0.1, 10, 1e-7, 5907982.3113984, 1.25},
    };
    for (int c = 0; c < 3; c++) {
        double q = cases[c].batch / cases[c].n_data;
        int64_t steps = (int64_t)ceil(cases[c].epochs * cases[c].n_data / cases[c].batch);
        for (int f = 0; f < 2; f++) { /* the signed series agrees here (dp.md §2.1) */
            double order;
            double eps = rdp_eps((et_rdp_flavour)f, q, cases[c].sigma, steps, cases[c].delta,
                                 tf, n, &order);
            CHECK_REL(eps, cases[c].eps, 1e-6, "TF Privacy compute_dp_sgd_privacy");
            assert_true(order == cases[c].order);
        }
    }

    /* same file L85-113 (dp_accounting default orders, T = ceil(1.2/q)) and L184-210 */
    const double *D = ET_RDP_DP_ACCOUNTING_ORDERS;
    int nd = ET_RDP_N_DP_ACCOUNTING_ORDERS;
    int64_t t = (int64_t)ceil(1.2 / 0.01);
    assert_int_equal(t, 120);
    CHECK_REL(rdp_eps(ET_RDP_DP_ACCOUNTING, 0.01, 0.7, t, 1e-5, D, nd, NULL), 3.2392676, 1e-6,
              "TF E=1.2 σ=0.7");
    CHECK_REL(rdp_eps(ET_RDP_DP_ACCOUNTING, 0.01, 0.35, t, 1e-5, D, nd, NULL), 22.6248601, 1e-6,
              "TF E=1.2 σ=0.35 (microbatching)");
    CHECK_REL(rdp_eps(ET_RDP_DP_ACCOUNTING, 1.0, 0.7, 2, 1e-5, D, nd, NULL), 10.8602036, 1e-6,
              "TF no subsampling σ=0.7");
    CHECK_REL(rdp_eps(ET_RDP_DP_ACCOUNTING, 1.0, 0.35, 2, 1e-5, D, nd, NULL), 26.2880374, 1e-6,
              "TF no subsampling σ=0.35");
    CHECK_ABS(rdp_eps(ET_RDP_DP_ACCOUNTING, 64 / 10000.0, 1.0, (int64_t)ceil(5 * 10000 / 64.0),
                      1e-6, D, nd, NULL),
              1.616, 5e-4, "TF n=10000 B=64 E=5");
    /* Where the optimum is fractional with a larger q·(α-1), the exact (Opacus) value is
     * below dp_accounting's upper bound: research/dp.md §1.3. */
    double exact = rdp_eps(ET_RDP_OPACUS, 0.01, 0.35, t, 1e-5, D, nd, NULL);
    assert_true(exact < 22.6248601 - 0.01);
}

/* ------------------------------------------------------------------------ PRV -- */

typedef struct {
    double sigma, q;
    int64_t steps;
    double delta, eps;
} prv_case;

static void prv_matches_opacus(void **state) {
    (void)state;
    /* opacus tests/accountants_test.py L119-130 (steps int(90//0.04) = 2249) and
     * tests/prv_accountant.py msr_values (δ = 1e-6): every case of research/dp.md §2.1
     * first, then the other msr_values cases that run in well under a second. */
    const prv_case cases[] = {
        {1.5, 0.04, 2249, 1e-5, 6.777395712150674},
        {0.8, 0.001, 100, 1e-6, 0.270403364058018680360362395731},
        {1.5, 0.05, 100, 1e-6, 1.95385313568420015961635272106},
        {0.8, 0.2, 100, 1e-6, 24.3336641779225644199868838768},
        {3.0, 0.2, 100, 1e-6, 3.38122051022184422208738396876},
        {0.8, 0.001, 1000, 1e-6, 0.477771266184522591657923840103},
        {1.5, 0.05, 1000, 1e-6, 6.20996924657726712126759593957},
        {3.0, 0.05, 1000, 1e-6, 2.52757432605973830774814814504},
        {1.5, 0.001, 20000, 1e-6, 0.437005108654860807693154356457},
        {2.0, 0.05, 20000, 1e-6, 24.4217185703225858617315680021},
        /* more of msr_values */
        {1.5, 0.001, 100, 1e-6, 0.0393694193095203287535710501288},
        {3.0, 0.001, 100, 1e-6, 0.0215200934390882663016508757892},
        {0.8, 0.05, 100, 1e-6, 6.74105193941409996938318727189},
        {2.0, 0.2, 100, 1e-6, 5.67205560882372950004537415225},
        {2.0, 0.001, 1000, 1e-6, 0.0712187825381152272985474382949},
        {0.8, 0.05, 1000, 1e-6, 19.5258428053837356230815203162},
        {0.8, 0.001, 20000, 1e-6, 1.29600925757016161021795142005},
        {3.0, 0.05, 20000, 1e-6, 13.9611146992367061159256991232},
        {2.0, 0.001, 50000, 1e-6, 0.491354910211401318953505779064},
        {3.0, 0.001, 100000, 1e-6, 0.443671720880875475323534828931},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const prv_case *c = &cases[i];
        et_dp_phase p = {c->sigma, c->q, c->steps};
        double eps;
        et_error err;
        if (et_prv_epsilon(&p, 1, c->delta, 0.01, 0, &eps, NULL, &err))
            fail_msg("PRV (σ=%g, q=%g, T=%lld): %s", c->sigma, c->q, (long long)c->steps, err.msg);
        char what[96];
        snprintf(what, sizeof what, "PRV ε (σ=%g, q=%g, T=%lld)", c->sigma, c->q,
                 (long long)c->steps);
        CHECK_REL(eps, c->eps, 1e-5, what); /* contract 1e-4; we agree to ~1e-6 */
    }
}

static void prv_default_is_opacus_through_accountant(void **state) {
    (void)state;
    et_accountant acc;
    et_accountant_init(&acc, ET_ACCOUNTANT_PRV);
    assert_true(acc.eps_error == 0.01 && acc.delta_error == 0);
    et_error err;
    assert_int_equal(et_accountant_step(&acc, 1.5, 0.04, 2000, &err), 0);
    assert_int_equal(et_accountant_step(&acc, 1.5, 0.04, 249, &err), 0);
    assert_int_equal(acc.n_phases, 1);
    double eps, order;
    assert_int_equal(et_accountant_epsilon(&acc, 1e-5, &eps, &order, &err), 0);
    CHECK_REL(eps, 6.777395712150674, 1e-5, "PRV via accountant");
    assert_true(isnan(order));
    et_accountant_free(&acc);
}

/* ε of a Gaussian mechanism with μ = sqrt(Σ T/σ²) at δ, solving
 * δ = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2) by bisection (Balle & Wang 2018). */
static double gaussian_epsilon(double mu, double delta) {
    double lo = 0, hi = 200;
    for (int i = 0; i < 200; i++) {
        double e = (lo + hi) / 2;
        double d = 0.5 * erfc((e / mu - mu / 2) / sqrt(2.0)) -
                   exp(e) * 0.5 * erfc((e / mu + mu / 2) / sqrt(2.0));
        if (d > delta) lo = e;
        else hi = e;
    }
    return hi;
}

static void heterogeneous_composition(void **state) {
    (void)state;
    et_error err;
    double eps, est, order;
    /* q = 1: the composition of Gaussians is the Gaussian with μ² = 3/1² + 5/2² */
    et_dp_phase gauss[2] = {{1.0, 1.0, 3}, {2.0, 1.0, 5}};
    double exact = gaussian_epsilon(sqrt(4.25), 1e-5);
    assert_int_equal(et_prv_epsilon(gauss, 2, 1e-5, 0.01, 0, &eps, &est, &err), 0);
    CHECK_ABS(est, exact, 1e-5, "PRV estimate vs exact Gaussian");
    assert_true(eps >= exact && eps <= exact + 0.011);
    /* ... and the RDP of it is α·μ²/2, converted by hand */
    double best = INFINITY;
    for (int i = 0; i < ET_RDP_N_DEFAULT_ORDERS; i++) {
        double a = ET_RDP_DEFAULT_ORDERS[i];
        double e = a * 4.25 / 2 - (log(1e-5) + log(a)) / (a - 1) + log((a - 1) / a);
        if (e < best) best = e;
    }
    assert_int_equal(et_rdp_epsilon(ET_RDP_OPACUS, gauss, 2, NULL, 0, 1e-5, &eps, &order, &err), 0);
    CHECK_REL(eps, best, 1e-12, "RDP of composed Gaussians");

    /* one phase split into three equals the whole (tests the cross-phase convolution
     * and the bookkeeping of the grid shifts) */
    et_dp_phase split[3] = {{1.1, 0.01, 700}, {1.1, 0.01, 300}, {1.1, 0.01, 1000}};
    et_dp_phase whole = {1.1, 0.01, 2000};
    double eps_split, eps_whole;
    assert_int_equal(et_prv_epsilon(split, 3, 1e-5, 0.01, 0, &eps_split, NULL, &err), 0);
    assert_int_equal(et_prv_epsilon(&whole, 1, 1e-5, 0.01, 0, &eps_whole, NULL, &err), 0);
    CHECK_ABS(eps_split, eps_whole, 1e-6, "split history");

    /* a mixed history: PRV below RDP, and both above each phase alone */
    et_accountant prv, rdp;
    et_accountant_init(&prv, ET_ACCOUNTANT_PRV);
    et_accountant_init(&rdp, ET_ACCOUNTANT_RDP);
    et_dp_phase mixed[3] = {{1.1, 0.01, 700}, {2.0, 0.05, 300}, {0.9, 0.002, 1000}};
    double alone_max = 0;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(et_accountant_step(&prv, mixed[k].noise_multiplier, mixed[k].sample_rate,
                                            mixed[k].steps, &err), 0);
        assert_int_equal(et_accountant_step(&rdp, mixed[k].noise_multiplier, mixed[k].sample_rate,
                                            mixed[k].steps, &err), 0);
        assert_int_equal(et_prv_epsilon(&mixed[k], 1, 1e-5, 0.01, 0, &eps, NULL, &err), 0);
        alone_max = fmax(alone_max, eps);
    }
    assert_int_equal(prv.n_phases, 3);
    double eps_prv, eps_rdp;
    assert_int_equal(et_accountant_epsilon(&prv, 1e-5, &eps_prv, NULL, &err), 0);
    assert_int_equal(et_accountant_epsilon(&rdp, 1e-5, &eps_rdp, NULL, &err), 0);
    assert_true(eps_prv < eps_rdp);
    assert_true(eps_prv > alone_max);
    et_accountant_free(&prv);
    et_accountant_free(&rdp);
}

/* ------------------------------------------------------------------ σ search -- */

static void sigma_search_matches_opacus(void **state) {
    (void)state;
    /* opacus tests/accountants_test.py L132-193: ε=8, δ=1e-5, q=0.04 */
    struct {
        et_accountant_kind kind;
        int64_t steps;
        double sigma;
    } cases[] = {
        {ET_ACCOUNTANT_RDP, 2250, 1.416015625},    /* epochs=90 */
        {ET_ACCOUNTANT_RDP, 2000, 1.356201171875}, /* steps=2000 */
        {ET_ACCOUNTANT_PRV, 2250, 1.34765625},
        {ET_ACCOUNTANT_PRV, 2000, 1.29150390625},
    };
    for (int i = 0; i < 4; i++) {
        double sigma, eps;
        et_error err;
        if (et_sigma_for_epsilon(cases[i].kind, 8, 1e-5, 0.04, cases[i].steps, 0.01, &sigma,
                                 &eps, &err))
            fail_msg("σ search: %s", err.msg);
        CHECK_REL(sigma, cases[i].sigma, 1e-12, "σ for ε=8"); /* dyadic: exact */
        assert_true(eps <= 8 && eps >= 8 - 0.01);
        /* round trip: ε at the returned σ is what the search reports */
        et_dp_phase p = {sigma, 0.04, cases[i].steps};
        double again;
        if (cases[i].kind == ET_ACCOUNTANT_RDP)
            assert_int_equal(et_rdp_epsilon(ET_RDP_OPACUS, &p, 1, NULL, 0, 1e-5, &again, NULL, &err), 0);
        else
            assert_int_equal(et_prv_epsilon(&p, 1, 1e-5, 0.01, 0, &again, NULL, &err), 0);
        assert_true(again == eps);
    }
}

static void sigma_search_reports_unreachable_budget(void **state) {
    (void)state;
    double sigma, eps;
    et_error err;
    /* PRV reports estimate + eps_error: about 0.01 at best, whatever σ */
    assert_int_not_equal(et_sigma_for_epsilon(ET_ACCOUNTANT_PRV, 0.005, 1e-5, 0.04, 2000, 0.01,
                                              &sigma, &eps, &err), 0);
    assert_non_null(strstr(err.msg, "not reachable"));
    assert_int_not_equal(et_sigma_for_epsilon(ET_ACCOUNTANT_RDP, 1e-3, 1e-5, 1.0, 2000, 0.01,
                                              &sigma, &eps, &err), 0);
    assert_non_null(strstr(err.msg, "1e+06"));
    assert_int_not_equal(et_sigma_for_epsilon(ET_ACCOUNTANT_RDP, 8, 0, 0.04, 2000, 0.01, &sigma,
                                              &eps, &err), 0);
    assert_non_null(strstr(err.msg, "delta"));
}

/* ------------------------------------------------------- history and checks -- */

static void history_merges_and_serialises(void **state) {
    (void)state;
    et_accountant acc, back;
    et_accountant_init(&acc, ET_ACCOUNTANT_RDP);
    et_error err;
    double eps;
    assert_int_equal(et_accountant_epsilon(&acc, 1e-5, &eps, NULL, &err), 0);
    assert_true(eps == 0); /* nothing spent yet */
    assert_int_equal(et_accountant_step(&acc, 1.0, 0.01, 10, &err), 0);
    assert_int_equal(et_accountant_step(&acc, 1.0, 0.01, 5, &err), 0);
    assert_int_equal(et_accountant_step(&acc, 1.2, 0.01, 1, &err), 0);
    assert_int_equal(et_accountant_step(&acc, 1.0, 0.01, 1, &err), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(et_accountant_step(&acc, 1.2, 0.02, 1, &err), 0);
    assert_int_equal(acc.n_phases, 4);
    assert_int_equal(acc.phases[0].steps, 15);
    assert_int_equal(acc.phases[3].steps, 6);

    cJSON *json = et_accountant_to_json(&acc);
    assert_non_null(json);
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    cJSON *parsed = cJSON_Parse(text);
    free(text);
    assert_int_equal(et_accountant_from_json(parsed, &back, &err), 0);
    cJSON_Delete(parsed);
    assert_int_equal(back.kind, ET_ACCOUNTANT_RDP);
    assert_int_equal(back.n_phases, 4);
    for (int k = 0; k < 4; k++) {
        assert_true(back.phases[k].noise_multiplier == acc.phases[k].noise_multiplier);
        assert_true(back.phases[k].sample_rate == acc.phases[k].sample_rate);
        assert_true(back.phases[k].steps == acc.phases[k].steps);
    }
    double eps_a, eps_b;
    assert_int_equal(et_accountant_epsilon(&acc, 1e-5, &eps_a, NULL, &err), 0);
    assert_int_equal(et_accountant_epsilon(&back, 1e-5, &eps_b, NULL, &err), 0);
    assert_true(eps_a == eps_b && eps_a > 0);
    et_accountant_free(&acc);
    et_accountant_free(&back);

    /* damaged checkpoints are refused with the place named */
    const char *bad[] = {
        "[]",
        "{\"accountant\":\"gdp\",\"eps_error\":0.01,\"delta_error\":0,\"history\":[]}",
        "{\"accountant\":\"prv\",\"eps_error\":0.01,\"delta_error\":0}",
        "{\"accountant\":\"prv\",\"eps_error\":0.01,\"delta_error\":0,\"history\":[[1,0.1,0]]}",
        "{\"accountant\":\"prv\",\"eps_error\":0.01,\"delta_error\":0,\"history\":[[1,0.1,2.5]]}",
        "{\"accountant\":\"prv\",\"eps_error\":0.01,\"delta_error\":0,\"history\":[[1,0.1,3],[1,1.5,3]]}",
        "{\"accountant\":\"prv\",\"eps_error\":0.01,\"delta_error\":0,\"history\":[[0,0.1,3]]}",
        "{\"accountant\":\"prv\",\"eps_error\":-1,\"delta_error\":0,\"history\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i]);
        assert_non_null(j);
        err.msg[0] = 0;
        if (et_accountant_from_json(j, &back, &err) == 0) fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err.msg, "accountant"));
        cJSON_Delete(j);
    }
}

static void bad_inputs_are_refused(void **state) {
    (void)state;
    et_accountant acc;
    et_accountant_init(&acc, ET_ACCOUNTANT_PRV);
    et_error err;
    assert_int_not_equal(et_accountant_step(&acc, 0, 0.1, 1, &err), 0);
    assert_non_null(strstr(err.msg, "noise multiplier"));
    assert_int_not_equal(et_accountant_step(&acc, -1, 0.1, 1, &err), 0);
    assert_int_not_equal(et_accountant_step(&acc, INFINITY, 0.1, 1, &err), 0);
    assert_int_not_equal(et_accountant_step(&acc, 1, 0, 1, &err), 0);
    assert_non_null(strstr(err.msg, "sample rate"));
    assert_int_not_equal(et_accountant_step(&acc, 1, 1.5, 1, &err), 0);
    assert_int_not_equal(et_accountant_step(&acc, 1, NAN, 1, &err), 0);
    assert_int_not_equal(et_accountant_step(&acc, 1, 0.1, 0, &err), 0);
    assert_non_null(strstr(err.msg, "steps"));
    assert_int_equal(acc.n_phases, 0);
    assert_int_equal(et_accountant_step(&acc, 1, 1.0, 1, &err), 0); /* q = 1 is allowed */
    double eps;
    assert_int_not_equal(et_accountant_epsilon(&acc, 0, &eps, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "delta"));
    assert_int_not_equal(et_accountant_epsilon(&acc, 1, &eps, NULL, &err), 0);
    et_accountant_free(&acc);

    /* a grid beyond ET_PRV_MAX_GRID points is refused with a pointer to RDP
     * (msr_values (0.8, 0.05, 50000) would need ~5e7 points) */
    et_dp_phase huge = {0.8, 0.05, 50000};
    assert_int_not_equal(et_prv_epsilon(&huge, 1, 1e-6, 0.01, 0, &eps, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "rdp"));

    et_accountant_kind kind;
    assert_int_equal(et_accountant_kind_parse("rdp", &kind, &err), 0);
    assert_int_equal(kind, ET_ACCOUNTANT_RDP);
    assert_int_not_equal(et_accountant_kind_parse("gdp", &kind, &err), 0);
    assert_int_equal(et_steps_for_epochs(1, 1 / 93.0), 92); /* Opacus's truncation */

    /* a σ whose square underflows (found 2026-11-26: σ = 1e-160 came out as ε = −0.6
     * with PRV and 2.67 with RDP): refused by both accountants, never a number */
    for (int k = 0; k < 2; k++) {
        et_accountant tiny;
        et_accountant_init(&tiny, k ? ET_ACCOUNTANT_RDP : ET_ACCOUNTANT_PRV);
        assert_int_not_equal(et_accountant_step(&tiny, 1e-160, 0.01, 100, &err), 0);
        assert_non_null(strstr(err.msg, "too small"));
        et_dp_phase p = {1e-160, 0.01, 100};
        assert_int_not_equal(et_rdp_epsilon(ET_RDP_OPACUS, &p, 1, NULL, 0, 1e-5, &eps, NULL, &err), 0);
        assert_int_not_equal(et_prv_epsilon(&p, 1, 1e-5, 0.01, 0, &eps, NULL, &err), 0);
        /* the smallest σ that is still computed gives an astronomic ε, not a small one */
        if (k) {
            assert_int_equal(et_accountant_step(&tiny, 1e-150, 0.01, 100, &err), 0);
            assert_int_equal(et_accountant_epsilon(&tiny, 1e-5, &eps, NULL, &err), 0);
            assert_true(eps > 1e200);
        }
        et_accountant_free(&tiny);
    }
    /* an infinite ε is no bound (RDP overflows: σ = 1e-153, q = 1, 1e8 steps): an error */
    et_accountant inf_acc;
    et_accountant_init(&inf_acc, ET_ACCOUNTANT_RDP);
    assert_int_equal(et_accountant_step(&inf_acc, 1e-153, 1.0, 100000000, &err), 0);
    assert_int_not_equal(et_accountant_epsilon(&inf_acc, 1e-5, &eps, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "no finite epsilon"));
    et_accountant_free(&inf_acc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rdp_default_orders_are_opacus),
        cmocka_unit_test(rdp_matches_opacus_accountants_test),
        cmocka_unit_test(rdp_matches_opacus_doctest_heterogeneous),
        cmocka_unit_test(rdp_fractional_order_is_the_exact_integral),
        cmocka_unit_test(rdp_matches_dp_accounting_tests),
        cmocka_unit_test(rdp_matches_tf_privacy_tests),
        cmocka_unit_test(prv_matches_opacus),
        cmocka_unit_test(prv_default_is_opacus_through_accountant),
        cmocka_unit_test(heterogeneous_composition),
        cmocka_unit_test(sigma_search_matches_opacus),
        cmocka_unit_test(sigma_search_reports_unreachable_budget),
        cmocka_unit_test(history_merges_and_serialises),
        cmocka_unit_test(bad_inputs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
