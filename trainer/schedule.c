#include "trainer/schedule.h"

#include <math.h>

double et_schedule_lr(et_schedule_kind kind, double base_lr, int step, int warmup, int total) {
    if (step < warmup) return base_lr * (double)step / (double)(warmup > 0 ? warmup : 1);
    if (kind == ET_SCHED_CONSTANT) return base_lr;
    int span = total - warmup;
    if (span <= 0) return base_lr;
    double progress = (double)(step - warmup) / (double)span;
    if (progress > 1.0) progress = 1.0;
    if (kind == ET_SCHED_LINEAR) return base_lr * (1.0 - progress);
    return base_lr * 0.5 * (1.0 + cos(M_PI * progress));
}
