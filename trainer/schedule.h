/* Learning-rate schedules (as transformers' get_{linear,cosine}_schedule_with_warmup):
 * linear warm-up from 0 over `warmup` steps, then constant, linear decay to 0, or
 * half-cosine decay to 0 at `total` steps. `step` counts from 0 (the lr used for
 * the first optimizer step is lr_at(0)). */
#ifndef EHRTUNE_SCHEDULE_H
#define EHRTUNE_SCHEDULE_H

typedef enum { ET_SCHED_CONSTANT = 0, ET_SCHED_LINEAR = 1, ET_SCHED_COSINE = 2 } et_schedule_kind;

double et_schedule_lr(et_schedule_kind kind, double base_lr, int step, int warmup, int total);

#endif
