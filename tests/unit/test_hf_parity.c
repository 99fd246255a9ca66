/* The C model must match HF transformers + PEFT (fixtures made by
 * tests/crosscheck/make_model_fixtures.py): logits, loss and every LoRA gradient,
 * relative error ‖ours − ref‖ / ‖ref‖ < 1e-5 in fp32. Runs the real CLI so the
 * `ehrtune forward` contract is covered too. */
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
    snprintf(dir, sizeof dir, "%s/tests/fixtures/%s", EHRTUNE_SOURCE_DIR, name);
    snprintf(out, sizeof out, "hf_parity_%s.safetensors", name);
    snprintf(cmd, sizeof cmd,
             "%s forward --model %s/model --adapter %s/adapter --tokens %s/tokens.json -o %s "
             ">/dev/null",
             EHRTUNE_BINARY, dir, dir, dir, out);
    assert_int_equal(system(cmd), 0);

    char ref_path[1100];
    snprintf(ref_path, sizeof ref_path, "%s/expected.safetensors", dir);
    et_st_file ours, ref;
    et_error err;
    assert_int_equal(et_st_open(&ref, ref_path, &err), 0);
    assert_int_equal(et_st_open(&ours, out, &err), 0);
    assert_int_equal(ours.n_tensors, ref.n_tensors);
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
    assert_true(grads > 0);
    et_st_close(&ours);
    et_st_close(&ref);
    unlink(out);
}

/* GQA, untied embeddings, llama3 RoPE scaling, a loss mask, LoRA on all 7 projections. */
static void llama_gqa_llama3(void **s) { (void)s; check_case("llama_gqa_llama3"); }
/* head_dim != hidden/heads, a sliding window shorter than the sequence, rsLoRA, q/v only. */
static void mistral_window(void **s) { (void)s; check_case("mistral_window"); }
/* Tied embeddings, q/k/v bias, a loss mask, k/o/up/down LoRA. */
static void qwen2_bias_tied(void **s) { (void)s; check_case("qwen2_bias_tied"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_gqa_llama3),
        cmocka_unit_test(mistral_window),
        cmocka_unit_test(qwen2_bias_tied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
