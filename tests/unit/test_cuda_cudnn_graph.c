/* cuDNN's fused attention (kernels/cuda/attention_cudnn.h), checked without a GPU:
 * the forward and backward graphs this project describes for the model's attention
 * shapes (GQA groups 1-4, sliding windows, head dims 64 and 128, t off any tile size,
 * the Llama-3.2-1B bench shape) are validated by the cuDNN library itself and its
 * operation graphs built, as for sm_90. What needs the device — choosing an engine,
 * running it, parity against the CPU — is tests/gpu/parity.c's work on a GPU machine.
 * Exit 77 (skipped) in a build without CUDA or the cuDNN frontend, or where libcudnn
 * 9 cannot be opened; never passed then. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#ifdef EHRTUNE_HAVE_CUDA
#include "kernels/cuda/attention_cudnn.h"

typedef struct {
    int b, t, hq, hkv, d, window;
} shape;

static void graphs_accepted(void **state) {
    const shape *s = (const shape *)*state;
    char msg[512];
    const int rc = etc_attention_cudnn_check_graphs(s->b, s->t, s->hq, s->hkv, s->d, s->window,
                                                    msg, sizeof msg);
    if (rc != 1) fail_msg("rc %d: %s", rc, msg);
}

/* A shape the kernels cannot take is refused before cuDNN sees it. */
static void bad_shape_refused(void **state) {
    (void)state;
    char msg[512] = "";
    assert_int_equal(etc_attention_cudnn_check_graphs(1, 64, 6, 4, 64, 0, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "hq a multiple of hkv"));
    assert_int_equal(etc_attention_cudnn_check_graphs(1, 64, 4, 4, 60, 0, msg, sizeof msg), -1);
}
#endif

int main(void) {
#ifndef EHRTUNE_HAVE_CUDA
    printf("skipped: built without the CUDA backend\n");
    return 77;
#else
    char why[512];
    if (etc_attention_cudnn_check_graphs(1, 64, 4, 4, 64, 0, why, sizeof why) == 0) {
        printf("skipped: %s\n", why);
        return 77;
    }
    static const shape llama_1b = {4, 2048, 32, 8, 64, 0}, window = {1, 333, 16, 4, 64, 100},
                       d128 = {1, 257, 8, 2, 128, 64}, mqa = {1, 200, 4, 1, 64, 17},
                       mha = {2, 67, 8, 8, 64, 0}, tiny = {2, 48, 4, 2, 16, 0};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(graphs_accepted, (void *)&llama_1b),
        cmocka_unit_test_prestate(graphs_accepted, (void *)&window),
        cmocka_unit_test_prestate(graphs_accepted, (void *)&d128),
        cmocka_unit_test_prestate(graphs_accepted, (void *)&mqa),
        cmocka_unit_test_prestate(graphs_accepted, (void *)&mha),
        cmocka_unit_test_prestate(graphs_accepted, (void *)&tiny),
        cmocka_unit_test(bad_shape_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
