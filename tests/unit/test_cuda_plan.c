/* The CUDA path's host-side decisions, testable without a GPU: the device memory
 * plan (trainer/model_cuda_plan.c) and run.device resolution
 * (trainer/train_cuda.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data/recipe.h"
#include "trainer/bench_cuda.h"
#include "trainer/model_cuda.h"
#include "trainer/train_cuda.h"

static size_t item_bytes(const et_plan *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->item[i].name, name)) return p->item[i].bytes;
    return 0;
}

static void plan_sums_and_shapes(void **state) {
    (void)state;
    et_hf_config c;
    et_cuda_bench_llama_1b(&c);
    et_plan p, ck, dr;
    et_cuda_options o = {4, 2048, 0, 0, -1}; /* packed LoRA rows; the K-extended layout below */
    et_cuda_model_plan(&p, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.0f, &o);
    size_t sum = 0;
    for (int i = 0; i < p.n; i++) sum += p.item[i].bytes;
    assert_int_equal(sum, p.total);
    /* bf16 base weights: the 1,235,814,400 parameters of the tied 1B model */
    assert_true(item_bytes(&p, "weights.base (frozen)") >= (size_t)1235814400 * 2);
    assert_true(item_bytes(&p, "weights.base (frozen)") < (size_t)1235814400 * 2 + (1 << 20));
    /* LoRA r=16 on all seven: 11,272,192 fp32 values */
    assert_int_equal(item_bytes(&p, "lora.weights"), (size_t)11272192 * 4);
    /* saved gate: [16 layers, 8192 tokens, 8192] bf16 */
    assert_int_equal(item_bytes(&p, "acts.gate"), (size_t)16 * 8192 * 8192 * 2);
    /* no [tokens, vocab] tensor: one chunk of <= 256 MiB of bf16 logits */
    assert_true(item_bytes(&p, "acts.logits_chunk (grad in place)") <= ((size_t)256 << 20) + 256);
    /* the memory target: <= 0.7x HF+PEFT's 35.51 GiB peak at this batch (docs/perf.md),
     * with cuBLASLt's 32 MiB workspace */
    assert_true((double)p.total + (32 << 20) <= 0.7 * 35.51 * 1073741824.0);
    /* checkpointing keeps one layer's activations */
    o.activation_checkpointing = 1;
    et_cuda_model_plan(&ck, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.0f, &o);
    assert_int_equal(item_bytes(&ck, "acts.gate"), (size_t)8192 * 8192 * 2);
    assert_true(ck.total < p.total / 2);
    /* dropout adds its two buffers (masked input and its gradient; no mask buffer:
     * the kernels draw the mask again), nothing without it */
    assert_int_equal(item_bytes(&p, "scratch.lora_dropout_in"), 0);
    et_cuda_model_plan(&dr, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.05f, &o);
    assert_int_equal(item_bytes(&dr, "scratch.lora_dropout_in"), (size_t)8192 * 8192 * 2);
    assert_int_equal(item_bytes(&dr, "scratch.lora_dropout_grad"), (size_t)8192 * 8192 * 2);
    assert_int_equal(item_bytes(&dr, "scratch.lora_dropout_mask"), 0);
    assert_int_equal(dr.total, ck.total + item_bytes(&dr, "scratch.lora_dropout_in") * 2);
    /* the K-extended LoRA layout: ln1 rows + 3·16 columns, ln2 + 2·16, and those
     * projections' weights the same extra columns (16 layers; q, k, v rows
     * 2048 + 512 + 512 × 48 columns; gate and up 2 × 8192 rows × 32) */
    et_plan kx;
    et_cuda_options ok = {4, 2048, 0, 0, 1};
    et_cuda_model_plan(&kx, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.0f, &ok);
    assert_int_equal(item_bytes(&kx, "acts.attn_norm_out"), (size_t)16 * 8192 * (2048 + 48) * 2);
    assert_int_equal(item_bytes(&kx, "acts.mlp_norm_out"), (size_t)16 * 8192 * (2048 + 32) * 2);
    const size_t extra = (size_t)16 * ((2048 + 512 + 512) * 48 + 2 * 8192 * 32) * 2;
    assert_true(item_bytes(&kx, "weights.base (frozen)") >= item_bytes(&p, "weights.base (frozen)") + extra);
    assert_true(item_bytes(&kx, "weights.base (frozen)") < item_bytes(&p, "weights.base (frozen)") + extra + (1 << 20));
    /* the default (lora_kext 0) is the K-extended layout, unless EHRTUNE_CUDA_LORA_KEXT=0 */
    et_plan def;
    et_cuda_options od = {4, 2048, 0, 0, 0};
    unsetenv("EHRTUNE_CUDA_LORA_KEXT");
    et_cuda_model_plan(&def, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.0f, &od);
    assert_int_equal(def.total, kx.total);
    setenv("EHRTUNE_CUDA_LORA_KEXT", "0", 1);
    et_cuda_model_plan(&def, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.0f, &od);
    assert_int_equal(def.total, p.total);
    et_cuda_model_plan(&def, &c, 16, (1u << ET_PROJ_COUNT) - 1, 0.0f, &ok); /* asked for: on */
    assert_int_equal(def.total, kx.total);
    unsetenv("EHRTUNE_CUDA_LORA_KEXT");
    assert_true((double)kx.total + (32 << 20) <= 0.7 * 35.51 * 1073741824.0);
    /* r·k not a multiple of 8 (r = 4, q k v): packed rows, no extension */
    int cols[2];
    et_cuda_kext_cols(4, (1u << ET_PROJ_COUNT) - 1, 1, cols);
    assert_true(cols[0] == 0 && cols[1] == 0);
    et_cuda_kext_cols(16, (1u << ET_PROJ_Q) | (1u << ET_PROJ_V) | (1u << ET_PROJ_UP), 1, cols);
    assert_true(cols[0] == 32 && cols[1] == 16);
}

static int choose(et_recipe *r, int *use_cuda, et_error *err) {
    train_state s;
    memset(&s, 0, sizeof s);
    s.r = r;
    int rc = train_cuda_choose(&s, err);
    *use_cuda = s.use_cuda;
    return rc;
}

static void device_resolution(void **state) {
    (void)state;
    const int gpus = et_cuda_device_count(NULL, 0);
    et_recipe r;
    et_recipe_init(&r);
    et_error err = {{0}};
    int use;
    r.run.device = ET_RECIPE_DEVICE_CPU;
    assert_int_equal(choose(&r, &use, &err), 0);
    assert_int_equal(use, 0);
    r.run.device = ET_RECIPE_DEVICE_AUTO;
    assert_int_equal(choose(&r, &use, &err), 0);
    assert_int_equal(use, gpus > 0);
    r.privacy.enabled = true; /* DP-SGD runs on CUDA too (trainer/train_cuda_dp.c) */
    assert_int_equal(choose(&r, &use, &err), 0);
    assert_int_equal(use, gpus > 0);
    r.run.device = ET_RECIPE_DEVICE_CUDA;
    if (gpus == 0) {
        assert_int_not_equal(choose(&r, &use, &err), 0);
        assert_non_null(strstr(err.msg, "run.device: cpu"));
    } else {
        assert_int_equal(choose(&r, &use, &err), 0);
        assert_int_equal(use, 1);
    }
    r.privacy.enabled = false;
    r.model.dtype = ET_RECIPE_DTYPE_FP32;
    assert_int_not_equal(choose(&r, &use, &err), 0);
    assert_non_null(strstr(err.msg, "bf16"));
    r.model.dtype = ET_RECIPE_DTYPE_AUTO;
    if (gpus == 0) {
        assert_int_not_equal(choose(&r, &use, &err), 0);
        assert_non_null(strstr(err.msg, "run.device: cpu"));
    } else {
        assert_int_equal(choose(&r, &use, &err), 0);
        assert_int_equal(use, 1);
    }
    et_recipe_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(plan_sums_and_shapes),
                                       cmocka_unit_test(device_resolution)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
