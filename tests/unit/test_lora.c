/* LoRA parameters: the flat layout, PEFT's initialisation (A ~ kaiming_uniform(a=√5) =
 * U(−1/√in, 1/√in), B = 0; "gaussian": A normal with std 1/r), scaling (alpha/r, rsLoRA
 * alpha/√r) and PEFT key names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "trainer/lora.h"

static et_hf_config small_config(void) {
    et_hf_config c;
    et_hf_config_init(&c, ET_ARCH_LLAMA);
    c.vocab_size = 50;
    c.hidden_size = 96;
    c.intermediate_size = 200;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 24;
    return c;
}

static void layout_and_scaling(void **state) {
    (void)state;
    et_hf_config c = small_config();
    et_lora l;
    et_error err;
    unsigned targets = (1u << ET_PROJ_Q) | (1u << ET_PROJ_V) | (1u << ET_PROJ_DOWN);
    assert_int_equal(et_lora_create(&l, &c, 8, 16.0f, 0, 0.05f, targets, &err), 0);
    /* q: 96->96, v: 96->48, down: 200->96; r=8; two layers. */
    int64_t want = 2 * (8 * (96 + 96) + 8 * (96 + 48) + 8 * (200 + 96));
    assert_int_equal(l.n_params, want);
    assert_float_equal(l.scale, 2.0f, 0);
    /* Slots tile the flat vector contiguously: per layer the A's in HF order, then the
     * B's; the gradients mirror it. */
    float *expect = l.params;
    for (int layer = 0; layer < 2; layer++)
        for (int half = 0; half < 2; half++)
            for (int p = 0; p < ET_PROJ_COUNT; p++) {
                et_lora_slot *s = et_lora_slot_at(&l, layer, (et_proj)p);
                if (!(targets & (1u << p))) {
                    assert_null(s->a);
                    continue;
                }
                assert_ptr_equal(half ? s->b : s->a, expect);
                assert_ptr_equal(s->da - l.grads, s->a - l.params);
                assert_ptr_equal(s->db - l.grads, s->b - l.params);
                expect += half ? 8 * s->out : 8 * s->in;
            }
    assert_ptr_equal(expect, l.params + l.n_params);
    et_lora_free(&l);
    assert_int_equal(et_lora_create(&l, &c, 16, 32.0f, 1, 0.0f, targets, &err), 0);
    assert_float_equal(l.scale, 8.0f, 1e-6); /* rsLoRA: 32/√16 */
    et_lora_free(&l);
    assert_int_not_equal(et_lora_create(&l, &c, 0, 32.0f, 0, 0.0f, targets, &err), 0);
    assert_int_not_equal(et_lora_create(&l, &c, 4, 8.0f, 0, 0.0f, 0, &err), 0);
}

static void peft_initialisation(void **state) {
    (void)state;
    et_hf_config c = small_config();
    et_lora l;
    et_error err;
    assert_int_equal(et_lora_create(&l, &c, 8, 16.0f, 0, 0.0f, (1u << ET_PROJ_COUNT) - 1, &err), 0);
    et_lora_init_weights(&l, ET_LORA_INIT_DEFAULT, 5);
    for (int layer = 0; layer < 2; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            et_lora_slot *s = et_lora_slot_at(&l, layer, (et_proj)p);
            double bound = 1.0 / sqrt((double)s->in), sum = 0, sq = 0;
            int64_t n = 8 * (int64_t)s->in;
            for (int64_t i = 0; i < n; i++) {
                assert_true(fabs(s->a[i]) <= bound);
                sum += s->a[i];
                sq += (double)s->a[i] * s->a[i];
            }
            /* U(-b, b): mean 0, variance b²/3 (within a few standard errors). */
            assert_true(fabs(sum / n) < 5 * bound / sqrt(3.0 * n));
            assert_true(fabs(sq / n / (bound * bound / 3) - 1) < 0.15);
            for (int64_t i = 0; i < 8 * (int64_t)s->out; i++) assert_true(s->b[i] == 0.0f);
        }
    /* Same seed, same weights; another seed differs. */
    float first = l.params[0];
    et_lora_init_weights(&l, ET_LORA_INIT_DEFAULT, 5);
    assert_true(l.params[0] == first);
    et_lora_init_weights(&l, ET_LORA_INIT_DEFAULT, 6);
    assert_true(l.params[0] != first);
    /* gaussian: std 1/r, PEFT's nn.init.normal_(lora_A, std=1/r) (r = 8 here) */
    et_lora_init_weights(&l, ET_LORA_INIT_GAUSSIAN, 1);
    et_lora_slot *s = et_lora_slot_at(&l, 0, ET_PROJ_DOWN);
    double sq = 0;
    for (int i = 0; i < 8 * s->in; i++) sq += (double)s->a[i] * s->a[i];
    assert_true(fabs(sq / (8 * s->in) * (double)(l.r * l.r) - 1) < 0.15);
    char key[256];
    et_lora_key(key, sizeof key, 1, ET_PROJ_GATE, 1);
    assert_string_equal(key, "base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight");
    et_lora_free(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(layout_and_scaling),
                                       cmocka_unit_test(peft_initialisation)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
