/* Learning-rate schedules against transformers' formulas
 * (get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup, num_cycles 0.5):
 *   warm-up:  lr · step / warmup
 *   linear:   lr · max(0, (total − step) / (total − warmup))
 *   cosine:   lr · max(0, 0.5 · (1 + cos(π · (step − warmup) / (total − warmup)))) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <cmocka.h>

#include "trainer/schedule.h"

static void warmup_then_decay(void **state) {
    (void)state;
    const double lr = 2e-4;
    const int warmup = 10, total = 110;
    for (int step = 0; step <= total; step++) {
        double lin = step < warmup ? lr * step / warmup
                                   : lr * fmax(0.0, (double)(total - step) / (total - warmup));
        double cosv = step < warmup
                          ? lr * step / warmup
                          : lr * fmax(0.0, 0.5 * (1.0 + cos(M_PI * (step - warmup) /
                                                             (double)(total - warmup))));
        double con = step < warmup ? lr * step / warmup : lr;
        assert_float_equal(et_schedule_lr(ET_SCHED_LINEAR, lr, step, warmup, total), lin, 1e-15);
        assert_float_equal(et_schedule_lr(ET_SCHED_COSINE, lr, step, warmup, total), cosv, 1e-15);
        assert_float_equal(et_schedule_lr(ET_SCHED_CONSTANT, lr, step, warmup, total), con, 1e-15);
    }
    /* No warm-up: the first step already uses the peak rate. */
    assert_float_equal(et_schedule_lr(ET_SCHED_COSINE, lr, 0, 0, 50), lr, 1e-18);
    assert_float_equal(et_schedule_lr(ET_SCHED_LINEAR, lr, 25, 0, 50), lr / 2, 1e-18);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(warmup_then_decay)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
