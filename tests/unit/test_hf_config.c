/* config.json loading: published Llama-3.2 / Mistral / Qwen2.5 configs, the
 * configs transformers 5 wrote for tests/fixtures (v5 rope_parameters form),
 * transformers' defaults, write -> load round trips, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/hf_config.h"

static char tmpdir[256];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/et_test_cfg_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *write_config(const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void load_ok(et_hf_config *c, const char *text) {
    et_error e = {{0}};
    if (et_hf_config_load(c, write_config(text), &e)) fail_msg("%s", e.msg);
}

static void load_fails(const char *text, const char *needle1, const char *needle2) {
    et_hf_config c;
    et_error e = {{0}};
    const char *path = write_config(text);
    assert_int_not_equal(et_hf_config_load(&c, path, &e), 0);
    if (!strstr(e.msg, path) || (needle1 && !strstr(e.msg, needle1)) ||
        (needle2 && !strstr(e.msg, needle2)))
        fail_msg("message lacks path / '%s' / '%s': %s", needle1 ? needle1 : "",
                 needle2 ? needle2 : "", e.msg);
}

/* meta-llama/Llama-3.2-1B-Instruct config.json as published. */
static const char *LLAMA32_1B =
    "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 128000,\n"
    "  \"eos_token_id\": [128001, 128008, 128009],\n  \"head_dim\": 64,\n  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 2048,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 8192,\n"
    "  \"max_position_embeddings\": 131072,\n  \"mlp_bias\": false,\n  \"model_type\": \"llama\",\n"
    "  \"num_attention_heads\": 32,\n  \"num_hidden_layers\": 16,\n  \"num_key_value_heads\": 8,\n"
    "  \"pretraining_tp\": 1,\n  \"rms_norm_eps\": 1e-05,\n  \"rope_scaling\": {\n"
    "    \"factor\": 32.0,\n    \"high_freq_factor\": 4.0,\n    \"low_freq_factor\": 1.0,\n"
    "    \"original_max_position_embeddings\": 8192,\n    \"rope_type\": \"llama3\"\n  },\n"
    "  \"rope_theta\": 500000.0,\n  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.45.0.dev0\",\n  \"use_cache\": true,\n  \"vocab_size\": 128256\n}\n";

static void llama32_1b(void **state) {
    (void)state;
    et_hf_config c;
    load_ok(&c, LLAMA32_1B);
    assert_int_equal(c.arch, ET_ARCH_LLAMA);
    assert_int_equal(c.vocab_size, 128256);
    assert_int_equal(c.hidden_size, 2048);
    assert_int_equal(c.intermediate_size, 8192);
    assert_int_equal(c.num_layers, 16);
    assert_int_equal(c.num_heads, 32);
    assert_int_equal(c.num_kv_heads, 8);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.max_position_embeddings, 131072);
    assert_true(c.rms_norm_eps == 1e-5f);
    assert_int_equal(c.rope.type, ET_ROPE_LLAMA3);
    assert_true(c.rope.theta == 500000.0 && c.rope.factor == 32.0);
    assert_true(c.rope.low_freq_factor == 1.0 && c.rope.high_freq_factor == 4.0);
    assert_true(c.rope.original_max_pos == 8192.0);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_int_equal(c.attention_bias | c.o_bias | c.mlp_bias, 0);
    assert_int_equal(c.sliding_window, 0);
    assert_int_equal(c.bos_token_id, 128000);
    assert_int_equal(c.eos_token_id, 128001);
    assert_int_equal(c.n_eos, 3);
    assert_int_equal(c.eos_token_ids[2], 128009);
    assert_string_equal(c.torch_dtype, "bfloat16");
}

/* mistralai/Mistral-7B-v0.1 config.json as published. */
static void mistral_7b(void **state) {
    (void)state;
    et_hf_config c;
    load_ok(&c, "{\"architectures\":[\"MistralForCausalLM\"],\"bos_token_id\":1,\"eos_token_id\":2,"
                "\"hidden_act\":\"silu\",\"hidden_size\":4096,\"initializer_range\":0.02,"
                "\"intermediate_size\":14336,\"max_position_embeddings\":32768,\"model_type\":\"mistral\","
                "\"num_attention_heads\":32,\"num_hidden_layers\":32,\"num_key_value_heads\":8,"
                "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"sliding_window\":4096,"
                "\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\","
                "\"transformers_version\":\"4.34.0.dev0\",\"use_cache\":true,\"vocab_size\":32000}");
    assert_int_equal(c.arch, ET_ARCH_MISTRAL);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.num_kv_heads, 8);
    assert_int_equal(c.sliding_window, 4096);
    assert_int_equal(et_hf_layer_window(&c, 0), 4096);
    assert_int_equal(et_hf_layer_window(&c, 31), 4096);
    assert_int_equal(c.rope.type, ET_ROPE_DEFAULT);
    assert_true(c.rope.theta == 10000.0);
    assert_int_equal(c.attention_bias | c.o_bias | c.mlp_bias, 0);
    /* null window = full attention; absent = the class default 4096 */
    load_ok(&c, "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":128,\"intermediate_size\":96,"
                "\"num_attention_heads\":16,\"num_hidden_layers\":2,\"vocab_size\":100,"
                "\"sliding_window\":null}");
    assert_int_equal(c.sliding_window, 0);
    assert_int_equal(c.num_kv_heads, 8); /* absent: MistralConfig default 8 */
    assert_int_equal(c.max_position_embeddings, 4096 * 32);
    load_ok(&c, "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":128,\"intermediate_size\":96,"
                "\"num_attention_heads\":16,\"num_hidden_layers\":2,\"vocab_size\":100,"
                "\"num_key_value_heads\":null}");
    assert_int_equal(c.sliding_window, 4096);
    assert_int_equal(c.num_kv_heads, 16); /* null -> = heads */
}

/* Qwen/Qwen2.5-0.5B config.json as published, then sliding-window variants. */
static void qwen25_05b(void **state) {
    (void)state;
    et_hf_config c;
    load_ok(&c, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"attention_dropout\":0.0,"
                "\"bos_token_id\":151643,\"eos_token_id\":151643,\"hidden_act\":\"silu\","
                "\"hidden_size\":896,\"initializer_range\":0.02,\"intermediate_size\":4864,"
                "\"max_position_embeddings\":32768,\"max_window_layers\":24,\"model_type\":\"qwen2\","
                "\"num_attention_heads\":14,\"num_hidden_layers\":24,\"num_key_value_heads\":2,"
                "\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,\"sliding_window\":32768,"
                "\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\","
                "\"transformers_version\":\"4.40.1\",\"use_cache\":true,\"use_mrope\":false,"
                "\"use_sliding_window\":false,\"vocab_size\":151936}");
    assert_int_equal(c.arch, ET_ARCH_QWEN2);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.num_kv_heads, 2);
    assert_int_equal(c.attention_bias, 1);
    assert_int_equal(c.o_bias, 0);
    assert_int_equal(c.mlp_bias, 0);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_int_equal(c.sliding_window, 0); /* use_sliding_window false */
    assert_true(c.rope.theta == 1e6);
    assert_true(c.rms_norm_eps == 1e-6f);

    const char *base = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                       "\"intermediate_size\":96,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                       "\"num_hidden_layers\":4,\"vocab_size\":100,\"use_sliding_window\":true,"
                       "\"sliding_window\":16,%s}";
    char text[1024];
    snprintf(text, sizeof text, base, "\"max_window_layers\":2");
    load_ok(&c, text);
    assert_int_equal(c.sliding_window, 16);
    assert_int_equal(et_hf_layer_window(&c, 1), 0);
    assert_int_equal(et_hf_layer_window(&c, 2), 16);
    assert_int_equal(et_hf_layer_window(&c, 3), 16);
    assert_int_equal(c.bos_token_id, -1); /* Qwen2Config has no bos/eos default */
    assert_int_equal(c.eos_token_id, -1);
    /* layer_types (transformers >= 4.53) overrides max_window_layers */
    snprintf(text, sizeof text, base,
             "\"max_window_layers\":2,\"layer_types\":[\"full_attention\",\"full_attention\","
             "\"full_attention\",\"sliding_attention\"]");
    load_ok(&c, text);
    assert_int_equal(et_hf_layer_window(&c, 2), 0);
    assert_int_equal(et_hf_layer_window(&c, 3), 16);
    /* max_window_layers >= num_layers: no layer slides */
    snprintf(text, sizeof text, base, "\"max_window_layers\":28");
    load_ok(&c, text);
    assert_int_equal(c.sliding_window, 0);
    snprintf(text, sizeof text, base,
             "\"layer_types\":[\"sliding_attention\",\"full_attention\",\"full_attention\","
             "\"full_attention\"]");
    load_fails(text, "layer_types[1]", NULL);
    snprintf(text, sizeof text, base, "\"layer_types\":[\"full_attention\"]");
    load_fails(text, "layer_types", "4 strings");
    /* a zero window is only an error when the window is switched on */
    load_ok(&c, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,"
                "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"num_hidden_layers\":4,"
                "\"vocab_size\":100,\"use_sliding_window\":false,\"sliding_window\":0}");
    assert_int_equal(c.sliding_window, 0);
    load_fails("{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,"
               "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"num_hidden_layers\":4,"
               "\"vocab_size\":100,\"use_sliding_window\":true,\"sliding_window\":0}",
               "sliding_window is 0", NULL);
    /* Qwen2Config's num_key_value_heads default is 32: the message says so */
    load_fails("{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,"
               "\"num_attention_heads\":4,\"num_hidden_layers\":4,\"vocab_size\":100}",
               "num_key_value_heads is not given", "default (32)");
}

/* The configs transformers 5.24 wrote for tests/fixtures (README there). */
static void transformers_v5_fixture_configs(void **state) {
    (void)state;
    et_hf_config c;
    et_error e = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/mistral_window/model/config.json", EHRTUNE_SOURCE_DIR);
    if (et_hf_config_load(&c, path, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.arch, ET_ARCH_MISTRAL);
    assert_int_equal(c.head_dim, 12); /* != hidden / heads = 10 */
    assert_int_equal(c.hidden_size, 40);
    assert_int_equal(c.num_kv_heads, 2);
    assert_int_equal(c.sliding_window, 5);
    assert_int_equal(c.rope.type, ET_ROPE_DEFAULT);
    assert_true(c.rope.theta == 10000.0);
    assert_string_equal(c.torch_dtype, "float32"); /* v5 "dtype" key */

    snprintf(path, sizeof path, "%s/tests/fixtures/qwen2_bias_tied/model/config.json", EHRTUNE_SOURCE_DIR);
    if (et_hf_config_load(&c, path, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.arch, ET_ARCH_QWEN2);
    assert_int_equal(c.head_dim, 12);
    assert_int_equal(c.num_kv_heads, 1);
    assert_true(c.rope.theta == 1e6);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_int_equal(c.attention_bias, 1);
    assert_int_equal(c.sliding_window, 0);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.eos_token_id, 82);

    snprintf(path, sizeof path, "%s/tests/fixtures/llama_gqa_llama3/model/config.json", EHRTUNE_SOURCE_DIR);
    if (et_hf_config_load(&c, path, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.rope.type, ET_ROPE_LLAMA3);
    assert_true(c.rope.theta == 500000.0 && c.rope.factor == 8.0);
    assert_true(c.rope.original_max_pos == 16.0);
    assert_int_equal(c.num_kv_heads, 2);
    assert_int_equal(c.head_dim, 8);
}

/* v5 rope_parameters with llama3 scaling, and the legacy "type" alias. */
static void rope_forms(void **state) {
    (void)state;
    et_hf_config c;
    const char *head = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,"
                       "\"num_attention_heads\":4,\"num_hidden_layers\":2,\"vocab_size\":100,";
    char text[1024];
    snprintf(text, sizeof text, "%s\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,"
             "\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
             "\"original_max_position_embeddings\":8192}}", head);
    load_ok(&c, text);
    assert_int_equal(c.rope.type, ET_ROPE_LLAMA3);
    assert_true(c.rope.theta == 500000.0 && c.rope.factor == 8.0 && c.rope.original_max_pos == 8192.0);
    snprintf(text, sizeof text, "%s\"rope_theta\":20000,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}", head);
    load_ok(&c, text);
    assert_int_equal(c.rope.type, ET_ROPE_LINEAR);
    assert_true(c.rope.theta == 20000.0 && c.rope.factor == 2.0);
    snprintf(text, sizeof text, "%s\"rope_parameters\":{\"rope_theta\":7.0}}", head);
    load_ok(&c, text);
    assert_int_equal(c.rope.type, ET_ROPE_DEFAULT);
    assert_true(c.rope.theta == 7.0);
    snprintf(text, sizeof text, "%s\"rope_theta\":20000,\"rope_scaling\":{}}", head);
    load_ok(&c, text); /* empty = none, as transformers v5 reads it */
    assert_int_equal(c.rope.type, ET_ROPE_DEFAULT);
    assert_true(c.rope.theta == 20000.0 && c.rope.factor == 1.0);
    snprintf(text, sizeof text, "%s\"rope_scaling\":null}", head);
    load_ok(&c, text);
    assert_true(c.rope.theta == 10000.0); /* LlamaConfig default */
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.num_kv_heads, 4); /* Llama: absent -> = heads */
    assert_int_equal(c.max_position_embeddings, 2048);
    assert_true(c.rms_norm_eps == 1e-6f);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.eos_token_id, 2);

    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0}}", head);
    load_fails(text, "'yarn'", "rope_scaling.rope_type");
    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":4.0}}", head);
    load_fails(text, "'dynamic'", "not supported");
    snprintf(text, sizeof text, "%s\"rope_parameters\":{\"rope_type\":\"longrope\"}}", head);
    load_fails(text, "'longrope'", "rope_parameters.rope_type");
    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
             "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}", head);
    load_fails(text, "rope_scaling.low_freq_factor", "llama3");
    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"rope_type\":\"linear\"}}", head);
    load_fails(text, "rope_scaling.factor", NULL);
    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"factor\":2.0}}", head);
    load_fails(text, "rope_type", NULL);
    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2.0},"
             "\"rope_parameters\":{\"rope_type\":\"default\"}}", head);
    load_fails(text, "rope_scaling", "rope_parameters");
    snprintf(text, sizeof text, "%s\"partial_rotary_factor\":0.5}", head);
    load_fails(text, "partial_rotary_factor", NULL);
    snprintf(text, sizeof text, "%s\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
             "\"low_freq_factor\":4.0,\"high_freq_factor\":1.0,\"original_max_position_embeddings\":8192}}",
             head);
    load_fails(text, "low_freq_factor < high_freq_factor", NULL);
}

static void rejects_bad_configs(void **state) {
    (void)state;
    const char *good_tail = "\"intermediate_size\":96,\"num_attention_heads\":4,\"num_hidden_layers\":2,"
                            "\"vocab_size\":100}";
    char text[1024];
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],%s", good_tail);
    load_fails(text, "missing required field 'hidden_size'", NULL);
    {   /* 5000 keys: refused quickly instead of a quadratic duplicate check */
        size_t cap = 5000 * 16 + 256, at = 0;
        char *big = malloc(cap);
        at += (size_t)snprintf(big + at, cap - at, "{\"architectures\":[\"LlamaForCausalLM\"]");
        for (int i = 0; i < 5000; i++) at += (size_t)snprintf(big + at, cap - at, ",\"k%d\":1", i);
        snprintf(big + at, cap - at, "}");
        load_fails(big, "the top-level object has over 4096 keys", NULL);
        free(big);
    }
    snprintf(text, sizeof text, "{\"architectures\":[\"GPT2LMHeadModel\"],\"hidden_size\":64,%s", good_tail);
    load_fails(text, "'GPT2LMHeadModel'", "LlamaForCausalLM");
    snprintf(text, sizeof text, "{\"model_type\":\"gemma\",\"hidden_size\":64,%s", good_tail);
    load_fails(text, "'gemma'", NULL);
    snprintf(text, sizeof text, "{\"hidden_size\":64,%s", good_tail);
    load_fails(text, "architectures", "model_type");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"qwen2\","
             "\"hidden_size\":64,%s", good_tail);
    load_fails(text, "does not match model_type", NULL);
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_act\":\"gelu\","
             "\"hidden_size\":64,%s", good_tail);
    load_fails(text, "hidden_act", "'gelu'");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"64\",%s", good_tail);
    load_fails(text, "'hidden_size'", "integer");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64.5,%s", good_tail);
    load_fails(text, "'hidden_size'", "integer");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
             "\"num_key_value_heads\":3,%s", good_tail);
    load_fails(text, "num_key_value_heads", "multiple");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":60,%s", good_tail);
    load_fails(text, "head_dim", "even");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":66,%s", good_tail);
    load_fails(text, "not a multiple of num_attention_heads", NULL);
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
             "\"hidden_size\":128,%s", good_tail);
    load_fails(text, "'hidden_size' appears twice", NULL);
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
             "\"quantization_config\":{\"quant_method\":\"gptq\"},%s", good_tail);
    load_fails(text, "pre-quantized", "'gptq'");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":0,%s", good_tail);
    load_fails(text, "hidden_size", "positive");
    snprintf(text, sizeof text, "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,"
             "\"num_key_value_heads\":2,\"sliding_window\":0,%s", good_tail);
    load_fails(text, "sliding_window", "null");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
             "\"tie_word_embeddings\":1,%s", good_tail);
    load_fails(text, "tie_word_embeddings", "true or false");
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
             "\"eos_token_id\":\"</s>\",%s", good_tail);
    load_fails(text, "eos_token_id", NULL);
    load_fails("{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"hidden_size\": 64,,\n}", ":3:", "invalid JSON");
    load_fails("[1, 2]", "expected a JSON object", NULL);
    /* model_type alone is accepted */
    et_hf_config c;
    snprintf(text, sizeof text, "{\"model_type\":\"mistral\",\"hidden_size\":64,\"num_key_value_heads\":2,%s",
             good_tail);
    load_ok(&c, text);
    assert_int_equal(c.arch, ET_ARCH_MISTRAL);
    /* missing file */
    et_error e;
    assert_int_not_equal(et_hf_config_load(&c, "/nonexistent/dir/config.json", &e), 0);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/config.json"));
}

/* Sizes no model has: refused before anything is allocated from them (a layer count
 * of 2^28 used to wrap the weight-table size and overflow the heap). */
static void rejects_oversized_configs(void **state) {
    (void)state;
    const char *head = "{\"architectures\":[\"LlamaForCausalLM\"],\"num_attention_heads\":4,";
    char text[1024];
    snprintf(text, sizeof text, "%s\"hidden_size\":64,\"intermediate_size\":96,"
             "\"num_hidden_layers\":268435456,\"vocab_size\":100}", head);
    load_fails(text, "num_hidden_layers is 268435456", "1024");
    snprintf(text, sizeof text, "%s\"hidden_size\":64,\"intermediate_size\":96,"
             "\"num_hidden_layers\":2,\"vocab_size\":16777217}", head);
    load_fails(text, "vocab_size is 16777217", NULL);
    snprintf(text, sizeof text, "%s\"hidden_size\":2097152,\"intermediate_size\":96,"
             "\"num_hidden_layers\":2,\"vocab_size\":100}", head);
    load_fails(text, "hidden_size is 2097152", NULL);
    snprintf(text, sizeof text, "%s\"hidden_size\":64,\"intermediate_size\":2000000000,"
             "\"num_hidden_layers\":2,\"vocab_size\":100}", head);
    load_fails(text, "intermediate_size is 2000000000", NULL);
    snprintf(text, sizeof text, "%s\"hidden_size\":64,\"intermediate_size\":96,\"head_dim\":8192,"
             "\"num_hidden_layers\":2,\"vocab_size\":100}", head);
    load_fails(text, "head_dim is 8192", NULL);
    /* every size within its bound, the product not: 1024 layers of 2^20 x 2^20 MLPs */
    snprintf(text, sizeof text, "{\"architectures\":[\"LlamaForCausalLM\"],\"num_attention_heads\":1024,"
             "\"hidden_size\":1048576,\"intermediate_size\":1048576,\"num_hidden_layers\":1024,"
             "\"vocab_size\":16777216}");
    load_fails(text, "parameters", "more than this toolkit accepts");

    /* The checked count itself: exact for a small model, -1 where 64 bits wrap. */
    et_hf_config c;
    et_hf_config_init(&c, ET_ARCH_LLAMA);
    c.vocab_size = 10, c.hidden_size = 8, c.intermediate_size = 12, c.num_layers = 3;
    c.num_heads = 4, c.num_kv_heads = 2, c.head_dim = 2;
    uint64_t n = 0;
    assert_int_equal(et_hf_param_count(&c, &n), 0);
    /* per layer: q,o 8x8 x2, k,v 8x4 x2, mlp 8x12 x3, norms 2x8, biases 8+4+4+8+12+12+8 */
    uint64_t layer = 128 + 64 + 288 + 16 + 56;
    assert_true(n == 3 * layer + 2 * 80 + 8);
    et_error e = {{0}};
    assert_int_equal(et_hf_config_validate(&c, "tiny", &e), 0);
    c.num_layers = 268435456; /* the reproduced overflow */
    assert_int_not_equal(et_hf_config_validate(&c, "big", &e), 0);
    assert_non_null(strstr(e.msg, "big: num_hidden_layers is 268435456"));
    c.vocab_size = c.hidden_size = c.intermediate_size = c.num_layers = INT_MAX;
    c.num_heads = c.num_kv_heads = 1, c.head_dim = INT_MAX;
    assert_int_equal(et_hf_param_count(&c, &n), -1); /* wraps 64 bits */
    c.num_layers = 0;
    assert_int_equal(et_hf_param_count(&c, &n), -1);
}

/* What transformers would treat differently from ehrtune is refused. */
static void rejects_what_hf_does_differently(void **state) {
    (void)state;
    const char *qwen = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":32,"
                       "\"intermediate_size\":48,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                       "\"num_hidden_layers\":3,\"vocab_size\":50,\"sliding_window\":4,";
    const char *lt = "\"layer_types\":[\"full_attention\",\"sliding_attention\",\"sliding_attention\"]";
    char text[1024];
    /* Qwen2Config sets sliding_window to None without use_sliding_window; the
     * modeling code then fails on a sliding layer */
    snprintf(text, sizeof text, "%s\"use_sliding_window\":false,%s}", qwen, lt);
    load_fails(text, "layer_types[1] is \"sliding_attention\"", "use_sliding_window is false");
    snprintf(text, sizeof text, "%s%s}", qwen, lt);
    load_fails(text, "layer_types[1]", "use_sliding_window is absent");
    et_hf_config c;
    snprintf(text, sizeof text, "%s\"use_sliding_window\":true,%s}", qwen, lt);
    load_ok(&c, text);
    assert_int_equal(c.sliding_window, 4);
    assert_int_equal(c.sliding_window_first_layer, 1);
    snprintf(text, sizeof text, "%s\"use_sliding_window\":false,\"layer_types\":[\"full_attention\","
             "\"full_attention\",\"full_attention\"]}", qwen);
    load_ok(&c, text);
    assert_int_equal(c.sliding_window, 0);

    /* attention dropout: transformers applies it in training, ehrtune cannot */
    const char *llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
                        "\"intermediate_size\":96,\"num_attention_heads\":4,\"num_hidden_layers\":2,"
                        "\"vocab_size\":100,";
    snprintf(text, sizeof text, "%s\"attention_dropout\":0.1}", llama);
    load_fails(text, "attention_dropout is 0.1", "\"attention_dropout\": 0.0");
    snprintf(text, sizeof text, "%s\"attention_dropout\":null}", llama);
    load_fails(text, "attention_dropout", "number");
    snprintf(text, sizeof text, "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,"
             "\"intermediate_size\":96,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
             "\"num_hidden_layers\":2,\"vocab_size\":100,\"attention_dropout\":0.05}");
    load_fails(text, "attention_dropout is 0.05", NULL);
    snprintf(text, sizeof text, "%s\"attention_dropout\":0}", llama);
    load_ok(&c, text);
}

static void round_trip(const et_hf_config *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/written.json", tmpdir);
    et_error e = {{0}};
    if (et_hf_config_write(c, path, &e)) fail_msg("%s", e.msg);
    et_hf_config back;
    if (et_hf_config_load(&back, path, &e)) fail_msg("%s", e.msg);
    assert_int_equal(back.arch, c->arch);
    assert_int_equal(back.vocab_size, c->vocab_size);
    assert_int_equal(back.hidden_size, c->hidden_size);
    assert_int_equal(back.intermediate_size, c->intermediate_size);
    assert_int_equal(back.num_layers, c->num_layers);
    assert_int_equal(back.num_heads, c->num_heads);
    assert_int_equal(back.num_kv_heads, c->num_kv_heads);
    assert_int_equal(back.head_dim, c->head_dim);
    assert_int_equal(back.max_position_embeddings, c->max_position_embeddings);
    assert_true(back.rms_norm_eps == c->rms_norm_eps);
    assert_int_equal(back.rope.type, c->rope.type);
    assert_true(back.rope.theta == c->rope.theta);
    if (c->rope.type != ET_ROPE_DEFAULT) assert_true(back.rope.factor == c->rope.factor);
    if (c->rope.type == ET_ROPE_LLAMA3)
        assert_true(back.rope.low_freq_factor == c->rope.low_freq_factor &&
                    back.rope.high_freq_factor == c->rope.high_freq_factor &&
                    back.rope.original_max_pos == c->rope.original_max_pos);
    assert_int_equal(back.tie_word_embeddings, c->tie_word_embeddings);
    assert_int_equal(back.attention_bias, c->attention_bias);
    assert_int_equal(back.o_bias, c->o_bias);
    assert_int_equal(back.mlp_bias, c->mlp_bias);
    assert_int_equal(back.sliding_window, c->sliding_window);
    assert_int_equal(back.sliding_window_first_layer, c->sliding_window_first_layer);
    assert_int_equal(back.bos_token_id, c->bos_token_id);
    assert_int_equal(back.eos_token_id, c->eos_token_id);
    assert_int_equal(back.n_eos, c->n_eos);
    for (int i = 0; i < c->n_eos; i++) assert_int_equal(back.eos_token_ids[i], c->eos_token_ids[i]);
    assert_string_equal(back.torch_dtype, c->torch_dtype);
}

static void write_load_round_trip(void **state) {
    (void)state;
    et_hf_config c;
    et_hf_config_init(&c, ET_ARCH_LLAMA);
    c.vocab_size = 300, c.hidden_size = 64, c.intermediate_size = 96, c.num_layers = 3;
    c.num_heads = 4, c.num_kv_heads = 2, c.head_dim = 24, c.rms_norm_eps = 1e-5f;
    c.rope = (et_rope_params){ET_ROPE_LLAMA3, 500000.0, 32.0, 1.0, 4.0, 8192.0};
    c.tie_word_embeddings = 1, c.attention_bias = c.o_bias = 1, c.mlp_bias = 1;
    c.bos_token_id = 0, c.eos_token_id = 5, c.n_eos = 2, c.eos_token_ids[0] = 5, c.eos_token_ids[1] = 9;
    strcpy(c.torch_dtype, "bfloat16");
    round_trip(&c);
    /* the text holds HF-style numbers */
    char path[512];
    snprintf(path, sizeof path, "%s/written.json", tmpdir);
    FILE *f = fopen(path, "rb");
    char text[4096] = {0};
    assert_true(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    assert_non_null(strstr(text, "\"rms_norm_eps\": 1e-05,"));
    assert_non_null(strstr(text, "\"rope_theta\": 500000.0,"));
    assert_non_null(strstr(text, "\"architectures\": [\"LlamaForCausalLM\"]"));

    c.rope = (et_rope_params){ET_ROPE_LINEAR, 10000.0, 2.5, 0, 0, 0};
    c.n_eos = 0, c.eos_token_id = -1, c.bos_token_id = -1, c.torch_dtype[0] = 0;
    round_trip(&c);

    et_hf_config_init(&c, ET_ARCH_MISTRAL);
    c.vocab_size = 50, c.hidden_size = 40, c.intermediate_size = 72, c.num_layers = 2;
    c.num_heads = 4, c.num_kv_heads = 2, c.head_dim = 12, c.sliding_window = 5;
    round_trip(&c);
    c.sliding_window = 0;
    round_trip(&c);

    et_hf_config_init(&c, ET_ARCH_QWEN2);
    c.vocab_size = 83, c.hidden_size = 36, c.intermediate_size = 60, c.num_layers = 4;
    c.num_heads = 3, c.num_kv_heads = 1, c.head_dim = 12, c.tie_word_embeddings = 1;
    c.rope.theta = 1e6, c.sliding_window = 7, c.sliding_window_first_layer = 2;
    c.eos_token_id = 82, c.n_eos = 1, c.eos_token_ids[0] = 82;
    round_trip(&c);
    c.sliding_window = 0, c.sliding_window_first_layer = 0;
    round_trip(&c);

    /* what transformers cannot represent is refused */
    et_error e;
    c.o_bias = 1;
    assert_int_not_equal(et_hf_config_write(&c, path, &e), 0);
    assert_non_null(strstr(e.msg, "Qwen2"));
    et_hf_config_init(&c, ET_ARCH_LLAMA);
    c.sliding_window = 8;
    assert_int_not_equal(et_hf_config_write(&c, path, &e), 0);
    c.sliding_window = 0, c.num_kv_heads = 5;
    assert_int_not_equal(et_hf_config_write(&c, path, &e), 0);
    assert_non_null(strstr(e.msg, "num_key_value_heads"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama32_1b),
        cmocka_unit_test(mistral_7b),
        cmocka_unit_test(qwen25_05b),
        cmocka_unit_test(transformers_v5_fixture_configs),
        cmocka_unit_test(rope_forms),
        cmocka_unit_test(rejects_bad_configs),
        cmocka_unit_test(rejects_oversized_configs),
        cmocka_unit_test(rejects_what_hf_does_differently),
        cmocka_unit_test(write_load_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
