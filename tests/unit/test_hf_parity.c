/* The C model must match HF transformers + PEFT (fixtures made by
 * tests/crosscheck/make_model_fixtures.py): logits, loss and every LoRA gradient,
 * relative error ‖ours − ref‖ / ‖ref‖ < 1e-5 in fp32. Runs the real CLI so the
 * `ehrtune forward` contract is covered too.
 *
 * Also the loading regressions (tests/crosscheck/make_load_regression_fixtures.py,
 * tests/fixtures/load_regression): base models without an adapter, logits and loss,
 * for what the LoRA fixtures do not cover: Qwen2 sliding window from
 * max_window_layers (v5 layer_types and v4 form), linear RoPE with Llama q/k/v/o + MLP
 * biases, BF16 weights, a sharded checkpoint. */
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

/* name: a folder under tests/fixtures; with_adapter: the case has adapter/ (and the
 * expected LoRA gradients), else the base model's logits and loss only. */
static void check_case(const char *name, int with_adapter) {
    char dir[1024], out[1024], cmd[4096], adapter[1100] = "";
    snprintf(dir, sizeof dir, "%s/tests/fixtures/%s", EHRTUNE_SOURCE_DIR, name);
    snprintf(out, sizeof out, "hf_parity_%s.safetensors", strrchr(name, '/') ? strrchr(name, '/') + 1 : name);
    if (with_adapter) snprintf(adapter, sizeof adapter, " --adapter %s/adapter", dir);
    snprintf(cmd, sizeof cmd, "%s forward --model %s/model%s --tokens %s/tokens.json -o %s >/dev/null",
             EHRTUNE_BINARY, dir, adapter, dir, out);
    assert_int_equal(system(cmd), 0);

    char ref_path[1100];
    snprintf(ref_path, sizeof ref_path, "%s/expected.safetensors", dir);
    et_st_file ours, ref;
    et_error err;
    if (et_st_open(&ref, ref_path, &err)) fail_msg("%s", err.msg);
    if (et_st_open(&ours, out, &err)) fail_msg("%s", err.msg);
    if (with_adapter) assert_int_equal(ours.n_tensors, ref.n_tensors);
    int grads = 0;
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
        grads += strstr(rt->name, "lora_") != NULL;
        free(a);
        free(b);
    }
    if (with_adapter) assert_true(grads > 0);
    assert_non_null(et_st_find(&ref, "logits"));
    assert_non_null(et_st_find(&ref, "loss"));
    et_st_close(&ours);
    et_st_close(&ref);
    unlink(out);
}

/* GQA, untied embeddings, llama3 RoPE scaling, a loss mask, LoRA on all 7 projections. */
static void llama_gqa_llama3(void **s) { (void)s; check_case("llama_gqa_llama3", 1); }
/* head_dim != hidden/heads, a sliding window shorter than the sequence, rsLoRA, q/v only. */
static void mistral_window(void **s) { (void)s; check_case("mistral_window", 1); }
/* Tied embeddings, q/k/v bias, a loss mask, k/o/up/down LoRA. */
static void qwen2_bias_tied(void **s) { (void)s; check_case("qwen2_bias_tied", 1); }

static void qwen2_swa_mwl(void **s) { (void)s; check_case("load_regression/qwen2_swa_mwl", 0); }
static void qwen2_swa_mwl_v4(void **s) { (void)s; check_case("load_regression/qwen2_swa_mwl_v4", 0); }
static void llama_linear_bias(void **s) { (void)s; check_case("load_regression/llama_linear_bias", 0); }
static void llama_bf16(void **s) { (void)s; check_case("load_regression/llama_bf16", 0); }
static void llama_sharded(void **s) { (void)s; check_case("load_regression/llama_sharded", 0); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_gqa_llama3),
        cmocka_unit_test(mistral_window),
        cmocka_unit_test(qwen2_bias_tied),
        cmocka_unit_test(qwen2_swa_mwl),
        cmocka_unit_test(qwen2_swa_mwl_v4),
        cmocka_unit_test(llama_linear_bias),
        cmocka_unit_test(llama_bf16),
        cmocka_unit_test(llama_sharded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
