/* Loading regressions against HF transformers (fixtures made by
 * tests/crosscheck/make_load_regression_fixtures.py, tests/fixtures/load_regression):
 * `ehrtune forward` on each base model (no adapter) must give transformers' logits and
 * loss, relative error ‖ours − ref‖ / ‖ref‖ < 1e-5 in fp32. Covers what the LoRA
 * fixtures (test_hf_parity) do not: Qwen2 sliding window from max_window_layers (v5
 * layer_types and v4 form), linear RoPE with Llama q/k/v/o + MLP biases, BF16 weights,
 * a sharded checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "data/safetensors.h"

static double rel_err(const float *x, const float *y, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        num += d * d;
        den += (double)y[i] * y[i];
    }
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}

static void check_case(const char *name) {
    char dir[1024], out[1024], cmd[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/load_regression/%s", EHRTUNE_SOURCE_DIR, name);
    snprintf(out, sizeof out, "model_parity_%s.safetensors", name);
    snprintf(cmd, sizeof cmd, "%s forward --model %s/model --tokens %s/tokens.json -o %s >/dev/null",
             EHRTUNE_BINARY, dir, dir, out);
    assert_int_equal(system(cmd), 0);

    char ref_path[1100];
    snprintf(ref_path, sizeof ref_path, "%s/expected.safetensors", dir);
    et_st_file ours, ref;
    et_error err;
    if (et_st_open(&ref, ref_path, &err)) fail_msg("%s", err.msg);
    if (et_st_open(&ours, out, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < ref.n_tensors; i++) {
        const et_st_tensor *rt = &ref.tensors[i];
        const et_st_tensor *ot = et_st_find(&ours, rt->name);
        if (!ot) fail_msg("%s: tensor %s missing from ehrtune's output", name, rt->name);
        assert_int_equal(ot->ndim, rt->ndim);
        for (int d = 0; d < rt->ndim; d++) assert_int_equal(ot->shape[d], rt->shape[d]);
        int64_t n = et_st_numel(rt);
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
        assert_int_equal(et_st_read_f32(&ours, ot, a, &err), 0);
        assert_int_equal(et_st_read_f32(&ref, rt, b, &err), 0);
        double e = rel_err(a, b, n);
        if (!(e < 1e-5)) fail_msg("%s: %s relative error %.3g >= 1e-5", name, rt->name, e);
        free(a);
        free(b);
    }
    assert_non_null(et_st_find(&ref, "logits"));
    assert_non_null(et_st_find(&ref, "loss"));
    et_st_close(&ours);
    et_st_close(&ref);
    unlink(out);
}

static void qwen2_swa_mwl(void **s) { (void)s; check_case("qwen2_swa_mwl"); }
static void qwen2_swa_mwl_v4(void **s) { (void)s; check_case("qwen2_swa_mwl_v4"); }
static void llama_linear_bias(void **s) { (void)s; check_case("llama_linear_bias"); }
static void llama_bf16(void **s) { (void)s; check_case("llama_bf16"); }
static void llama_sharded(void **s) { (void)s; check_case("llama_sharded"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qwen2_swa_mwl),
        cmocka_unit_test(qwen2_swa_mwl_v4),
        cmocka_unit_test(llama_linear_bias),
        cmocka_unit_test(llama_bf16),
        cmocka_unit_test(llama_sharded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
