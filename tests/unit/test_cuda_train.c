/* CPU-vs-CUDA training parity (tests/gpu/train_parity.h): 20 AdamW steps of two
 * tiny models on both backends, every step's loss within 2e-2 relative and the
 * first step's LoRA gradient within 5e-2. Exit 77 (skipped) when this build has no
 * CUDA backend or no GPU is visible. tests/gpu/check.sh runs the same cases
 * through tests/gpu/bench_train.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#ifdef EHRTUNE_HAVE_CUDA
#include "tests/gpu/train_parity.h"

static void loss_curves_agree(void **state) {
    const train_parity_case *tc = *state;
    train_parity_result res;
    et_error err = {{0}};
    int rc = train_parity_run(tc, &res, &err);
    if (rc) fail_msg("%s: %s", tc->name, err.msg);
    printf("%s: worst loss difference %.2e at step %d, first-step LoRA gradient %.2e; "
           "attention: %s\n",
           tc->name, res.worst, res.worst_step + 1, res.grad_err0, res.attention);
    assert_int_equal(res.steps, tc->steps);
    for (int s = 0; s < res.steps; s++) {
        assert_true(isfinite(res.cpu[s]) && isfinite(res.gpu[s]));
        if (fabs(res.gpu[s] - res.cpu[s]) > TRAIN_PARITY_LIMIT * fabs(res.cpu[s]))
            fail_msg("%s step %d: cpu %.6f cuda %.6f", tc->name, s + 1, res.cpu[s], res.gpu[s]);
    }
    assert_true(res.grad_err0 <= TRAIN_PARITY_GRAD_LIMIT);
    /* the curves must move: a run that learns nothing would agree trivially */
    assert_true(res.cpu[res.steps - 1] < 0.95 * res.cpu[0]);
}

/* DP-SGD on both backends (train_parity_run_dp): per-unit clipping, the same noise. */
static void dp_curves_agree(void **state) {
    train_parity_case tc = *(const train_parity_case *)*state;
    tc.batch = 4, tc.steps = 12;
    train_parity_result res;
    double norm_err;
    et_error err = {{0}};
    if (train_parity_run_dp(&tc, TRAIN_PARITY_DP_CLIP, TRAIN_PARITY_DP_SIGMA, &res, &norm_err, &err))
        fail_msg("DP: %s", err.msg);
    printf("DP: worst loss difference %.2e at step %d, first-step unit gradients %.2e, norms %.2e\n",
           res.worst, res.worst_step + 1, res.grad_err0, norm_err);
    for (int s = 0; s < res.steps; s++) assert_true(isfinite(res.cpu[s]) && isfinite(res.gpu[s]));
    assert_true(res.worst <= TRAIN_PARITY_LIMIT);
    assert_true(res.grad_err0 <= TRAIN_PARITY_GRAD_LIMIT);
    assert_true(norm_err <= TRAIN_PARITY_GRAD_LIMIT);
}
#endif

int main(void) {
#ifndef EHRTUNE_HAVE_CUDA
    printf("skipped: built without the CUDA backend\n");
    return 77;
#else
    if (et_cuda_device_count(NULL, 0) < 1) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    static train_parity_case cases[TRAIN_PARITY_CASES];
    train_parity_cases(cases);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(loss_curves_agree, &cases[0]),
        cmocka_unit_test_prestate(loss_curves_agree, &cases[1]),
        cmocka_unit_test_prestate(loss_curves_agree, &cases[2]),
        cmocka_unit_test_prestate(loss_curves_agree, &cases[3]),
        cmocka_unit_test_prestate(dp_curves_agree, &cases[0]),
    };
    /* every case of train_parity.h, each once (a new case must be listed above) */
    _Static_assert(TRAIN_PARITY_CASES == 4, "register every train_parity case");
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
