/* The device timeline (kernels/cuda/timeline.h) and the per-op-class profile of a
 * CUDA training step (trainer/bench_cuda.c): the pool overflows as documented, the
 * categories add up to the profiled span, and a tiny model's step marks each op
 * class the number of times its op list runs it (so a missing or misfiled mark in
 * trainer/model_cuda_pass.c shows). Exit 77 (skipped) without CUDA or a GPU.
 *
 * Without a GPU, under the CPU emulation (docs/cuda.md; its events read the host
 * clock, and every op is synchronous there, so intervals are the ops' host time):
 *   EMU_OBJ=/tmp/emu-obj-timeline EMU_LIBS="-lcmocka -lcjson" bash tests/gpu/emu/build.sh \
 *     /tmp/timeline_emu tests/unit/test_cuda_timeline.c data/hf_config.c data/atomic_file.c \
 *     trainer/model.c trainer/model_acts.c trainer/lora.c trainer/model_cuda.c trainer/model_cuda_plan.c \
 *     trainer/model_cuda_attn.c trainer/model_cuda_pass.c trainer/model_cuda_dp.c \
 *     trainer/bench_cuda.c trainer/dp.c trainer/dp_rng.c -- -DEHRTUNE_HAVE_CUDA=1
 *   /tmp/timeline_emu */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "trainer/bench_cuda.h"

#ifdef EHRTUNE_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/timeline.h"

/* |a - b| within rounding of float per-interval elapsed times summed in double */
static void assert_close_ms(double a, double b) {
    if (fabs(a - b) > 1e-3 + 1e-4 * fabs(b)) fail_msg("%.6f ms vs %.6f ms", a, b);
}

/* Five marks into a pool of three: three timed, two dropped; the timed ones sum to
 * the span; misuse fails and leaves no timeline behind. */
static void pool_overflow_and_misuse(void **state) {
    (void)state;
    void *buf = NULL;
    assert_int_equal(etc_malloc(&buf, 1 << 20), 0);
    assert_int_equal(etc_timeline_active(), 0);
    assert_int_not_equal(etc_timeline_start(0), 0);
    assert_int_equal(etc_timeline_start(3), 0);
    assert_int_equal(etc_timeline_active(), 1);
    assert_int_not_equal(etc_timeline_start(3), 0); /* one at a time */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(etc_memset(buf, i, 1 << 20), 0);
        etc_timeline_mark(i % 2);
    }
    double ms[2];
    int marks[2];
    etc_timeline_totals t;
    assert_int_equal(etc_timeline_stop(ms, marks, 2, &t), 0);
    assert_int_equal(etc_timeline_active(), 0);
    assert_int_equal(t.marks, 3);
    assert_int_equal(t.dropped, 2);
    assert_int_equal(marks[0], 2); /* marks 0 and 2; mark 4 was dropped */
    assert_int_equal(marks[1], 1);
    assert_true(ms[0] > 0 && ms[1] > 0);
    assert_close_ms(ms[0] + ms[1], t.total_ms);
    assert_int_not_equal(etc_timeline_stop(ms, marks, 2, &t), 0); /* none active */
    /* a category outside the caller's range fails, and still ends the timeline */
    assert_int_equal(etc_timeline_start(2), 0);
    etc_timeline_mark(5);
    assert_int_not_equal(etc_timeline_stop(ms, NULL, 2, NULL), 0);
    assert_non_null(strstr(etc_last_error(), "category 5"));
    assert_int_equal(etc_timeline_active(), 0);
    etc_timeline_mark(0); /* off: nothing happens */
    etc_free(buf);
}

static void tiny_config(et_cuda_bench_config *b, int ckpt) {
    memset(b, 0, sizeof *b);
    et_hf_config *c = &b->cfg;
    c->arch = ckpt ? ET_ARCH_QWEN2 : ET_ARCH_LLAMA;
    c->vocab_size = 512;
    c->hidden_size = 64;
    c->intermediate_size = 176;
    c->num_layers = 2;
    c->num_heads = 4;
    c->num_kv_heads = 2;
    c->head_dim = 16;
    c->max_position_embeddings = 128;
    c->rms_norm_eps = 1e-5f;
    c->rope = (et_rope_params){ET_ROPE_DEFAULT, 10000.0, 1.0, 1.0, 4.0, 32.0};
    c->tie_word_embeddings = !ckpt;
    c->attention_bias = ckpt; /* the biased projections' other forward path */
    c->bos_token_id = c->eos_token_id = -1;
    b->batch = 2, b->seq = 64, b->rank = 4, b->alpha = 8.0f, b->warmup = 0, b->steps = 1;
    b->activation_checkpointing = ckpt;
}

/* Marks each op class gets in one step of a model with L layers, all seven
 * projections LoRA-targeted, no dropout, one lm_head chunk (from trainer/
 * model_cuda_pass.c's op list; `recomputed` layers re-run their forward). */
static void expected_marks(int *want, int L, int recomputed, int cudnn_attention) {
    const int fwd = L + recomputed;
    memset(want, 0, sizeof(int) * ET_PROF_COUNT);
    want[ET_PROF_EMBEDDING] = 1;
    want[ET_PROF_RMSNORM] = 2 * fwd + 2 * L + 2;   /* + final norm, fwd and bwd */
    want[ET_PROF_FROZEN_GEMM] = 7 * fwd + 7 * L;
    /* grouped LoRA (q,k,v | o | gate,up | down): forward one x·Aᵀ a group and one
     * rank-r product a projection; backward dB + dxa a projection, dA + dxa·A a group */
    want[ET_PROF_LORA_GEMM] = 11 * fwd + 11 * L;
    want[ET_PROF_ROPE] = fwd + L;
    want[ET_PROF_ATTN_FWD] = fwd;
    want[ET_PROF_ATTN_BWD] = L;
    want[ET_PROF_SWIGLU] = fwd + L;
    want[ET_PROF_ADD] = 0;                          /* residuals ride in o/down's GEMMs */
    want[ET_PROF_HEAD_GEMM] = 2;                    /* logits, d(final norm) */
    want[ET_PROF_LOSS] = 1;
    /* dq, dk, dv a layer (cuDNN's backward overwrites them: none); d(final norm) */
    want[ET_PROF_MEMSET] = (cudnn_attention ? 0 : L) + 1;
    want[ET_PROF_OTHER] = 2;                        /* batch upload, loss read-back */
    /* ET_PROF_OPTIMIZER: zero, norm, AdamW, and the clip when the norm exceeds 1 */
}

static void bench_profile_adds_up(void **state) {
    const int ckpt = *(const int *)*state;
    et_cuda_bench_config b;
    tiny_config(&b, ckpt);
    et_cuda_bench_result r;
    et_error err = {{0}};
    if (et_cuda_bench_run(&b, &r, &err)) fail_msg("%s", err.msg);
    const et_cuda_profile *p = &r.profile;
    et_cuda_bench_print_profile(stdout, &r, "  ");
    assert_int_equal(etc_timeline_active(), 0);
    assert_int_equal(p->dropped, 0);
    int want[ET_PROF_COUNT], sum_marks = 0;
    double sum_ms = 0;
    expected_marks(want, b.cfg.num_layers, ckpt ? b.cfg.num_layers - 1 : 0,
                   !strncmp(r.attention, "cuDNN", 5));
    for (int i = 0; i < ET_PROF_COUNT; i++) {
        if (i == ET_PROF_OPTIMIZER)
            assert_true(p->marks[i] == 3 || p->marks[i] == 4);
        else if (p->marks[i] != want[i])
            fail_msg("%s: %d marks, expected %d", et_prof_name(i), p->marks[i], want[i]);
        /* every class the step runs took time; one it does not run took none */
        if (p->marks[i] > 0 ? !(p->ms[i] > 0) : p->ms[i] != 0)
            fail_msg("%s: %.6f ms over %d marks", et_prof_name(i), p->ms[i], p->marks[i]);
        sum_marks += p->marks[i];
        sum_ms += p->ms[i];
    }
    assert_int_equal(sum_marks, p->n_marks);
    assert_close_ms(sum_ms, p->total_ms);
    /* the marks span the step: from begin to the last AdamW mark, nearly all of it */
    assert_true(p->total_ms > 0.5 * r.profile_wall_ms && p->total_ms < 1.1 * r.profile_wall_ms + 1.0);
    char json[4096];
    const int len = et_cuda_bench_json(json, sizeof json, &b, &r);
    assert_true(len > 0 && len < (int)sizeof json);
    assert_non_null(strstr(json, "\"profile\": {\"embedding\": "));
    assert_non_null(strstr(json, "\"attention_bwd\": "));
    assert_non_null(strstr(json, "\"profile_step_ms\": "));
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
    static const int plain = 0, ckpt = 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_overflow_and_misuse),
        cmocka_unit_test_prestate(bench_profile_adds_up, (void *)&plain),
        cmocka_unit_test_prestate(bench_profile_adds_up, (void *)&ckpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
