/* Base-model loading (trainer/model_load.c): sizes that would overflow the weight
 * table or the block are refused before anything is allocated from them; a
 * config.json that does not match the weights fails before the block is
 * allocated; tie_word_embeddings with a distinct stored lm_head is refused
 * (transformers would use the stored head). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/safetensors.h"
#include "trainer/model.h"

static char tmpdir[256];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/et_test_model_load_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tpath(const char *name) {
    static char p[2][512];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static void tiny_config(et_hf_config *c, int tied) {
    et_hf_config_init(c, ET_ARCH_LLAMA);
    c->vocab_size = 20, c->hidden_size = 8, c->intermediate_size = 12, c->num_layers = 2;
    c->num_heads = 2, c->num_kv_heads = 1, c->head_dim = 4;
    c->max_position_embeddings = 32;
    c->tie_word_embeddings = tied;
}

/* num_hidden_layers = 2^28 wrapped the weight-table size (4 + L*16 as int) and
 * overflowed the heap; it is now refused by the config check. */
static void huge_layer_count_refused(void **state) {
    (void)state;
    et_hf_config c;
    tiny_config(&c, 0);
    c.num_layers = 268435456;
    et_model m;
    et_error e = {{0}};
    assert_int_not_equal(et_model_init_random(&m, &c, 1, &e), 0);
    if (!strstr(e.msg, "num_hidden_layers is 268435456")) fail_msg("%s", e.msg);
    assert_null(m.block);
    assert_null(m.layers);
}

/* A tiny random model saved in tmpdir (HF layout). */
static void save_tiny(int tied) {
    et_hf_config c;
    tiny_config(&c, tied);
    et_model m;
    et_error e = {{0}};
    if (et_model_init_random(&m, &c, 1, &e)) fail_msg("%s", e.msg);
    if (et_model_save_hf(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    et_model_free(&m);
}

/* Replaces tmpdir/config.json with `json`. */
static void write_config(const char *json) {
    FILE *f = fopen(tpath("config.json"), "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

/* The same config.json in a folder: refused when loading too. */
static void huge_layer_count_in_folder_refused(void **state) {
    (void)state;
    save_tiny(0);
    write_config("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                 "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"num_hidden_layers\":268435456,"
                 "\"vocab_size\":20}");
    et_model m;
    et_error e = {{0}};
    assert_int_not_equal(et_model_load(&m, tmpdir, &e), 0);
    if (!strstr(e.msg, "num_hidden_layers is 268435456") || !strstr(e.msg, "config.json"))
        fail_msg("%s", e.msg);
}

/* A config.json much larger than its weights (a 1 TiB embedding here) fails on the
 * first mismatching tensor, before the block is allocated. */
static void mismatch_found_before_allocation(void **state) {
    (void)state;
    save_tiny(1);
    write_config("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":65536,\"intermediate_size\":12,"
                 "\"num_attention_heads\":512,\"num_key_value_heads\":1,\"num_hidden_layers\":2,"
                 "\"vocab_size\":4194304,\"tie_word_embeddings\":true}");
    et_model m;
    et_error e = {{0}};
    assert_int_not_equal(et_model_load(&m, tmpdir, &e), 0);
    if (!strstr(e.msg, "model.embed_tokens.weight") || !strstr(e.msg, "[4194304, 65536]"))
        fail_msg("%s", e.msg);
    assert_null(m.block);
    /* more layers than the file holds: the first missing one is named */
    write_config("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                 "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"num_hidden_layers\":900,"
                 "\"vocab_size\":20,\"tie_word_embeddings\":true}");
    assert_int_not_equal(et_model_load(&m, tmpdir, &e), 0);
    if (!strstr(e.msg, "'model.layers.2.input_layernorm.weight'")) fail_msg("%s", e.msg);
}

/* Rewrites tmpdir/model.safetensors with every tensor it holds (embeddings stored
 * as BF16) plus an lm_head.weight of `head` stored as `head_dt`. */
static void add_lm_head(const float *head, et_dtype head_dt, int64_t V, int64_t C) {
    et_st_file f;
    et_error e = {{0}};
    if (et_st_open(&f, tpath("model.safetensors"), &e)) fail_msg("%s", e.msg);
    et_st_writer w;
    et_st_writer_init(&w);
    float *embed = NULL;
    for (int i = 0; i < f.n_tensors; i++) {
        const et_st_tensor *t = &f.tensors[i];
        if (!strcmp(t->name, "model.embed_tokens.weight")) {
            embed = malloc((size_t)et_st_numel(t) * sizeof *embed);
            assert_non_null(embed);
            assert_int_equal(et_st_read_f32(&f, t, embed, &e), 0);
            assert_int_equal(et_st_writer_add_f32(&w, t->name, ET_DT_BF16, t->ndim, t->shape, embed, &e), 0);
        } else {
            assert_int_equal(et_st_writer_add(&w, t->name, t->dtype, t->ndim, t->shape, et_st_data(&f, t), &e), 0);
        }
    }
    const int64_t shape[2] = {V, C};
    assert_int_equal(et_st_writer_add_f32(&w, "lm_head.weight", head_dt, 2, shape, head, &e), 0);
    if (et_st_writer_write(&w, tpath("model.safetensors.new"), 0, &e)) fail_msg("%s", e.msg);
    et_st_writer_free(&w);
    et_st_close(&f);
    free(embed);
    assert_int_equal(rename(tpath("model.safetensors.new"), tpath("model.safetensors")), 0);
}

/* tie_word_embeddings: true and a stored lm_head.weight: transformers (v5) does not
 * tie then and uses the stored head. The same values (whatever the dtypes) load;
 * different values are refused with a message saying what to change. */
static void tied_config_with_stored_head(void **state) {
    (void)state;
    et_hf_config c;
    tiny_config(&c, 1);
    et_model m;
    et_error e = {{0}};
    if (et_model_init_random(&m, &c, 7, &e)) fail_msg("%s", e.msg);
    const int64_t V = c.vocab_size, C = c.hidden_size;
    /* embeddings made bf16-exact, so a BF16 copy and an F32 copy are equal in fp32 */
    for (int64_t i = 0; i < V * C; i++) m.embed[i] = et_bf16_to_f32(et_f32_to_bf16(m.embed[i]));
    if (et_model_save_hf(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    float *head = malloc((size_t)(V * C) * sizeof *head);
    assert_non_null(head);
    memcpy(head, m.embed, (size_t)(V * C) * sizeof *head);

    /* identical values, F32 head beside a BF16 embedding: loads, tied */
    add_lm_head(head, ET_DT_F32, V, C);
    et_model l;
    if (et_model_load(&l, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_ptr_equal(l.lm_head, l.embed);
    assert_memory_equal(l.embed, m.embed, (size_t)(V * C) * sizeof(float));
    et_model_free(&l);

    /* one element different (in the last row): refused */
    if (et_model_save_hf(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    head[(V - 1) * C + 3] += 0.5f;
    add_lm_head(head, ET_DT_F32, V, C);
    assert_int_not_equal(et_model_load(&l, tmpdir, &e), 0);
    if (!strstr(e.msg, "tie_word_embeddings: true") || !strstr(e.msg, "lm_head.weight") ||
        !strstr(e.msg, "\"tie_word_embeddings\": false") || !strstr(e.msg, "model.safetensors") ||
        !strstr(e.msg, "row 19, column 3"))
        fail_msg("%s", e.msg);
    assert_null(l.block);

    /* untied in config.json: the stored head is used */
    c.tie_word_embeddings = 0;
    assert_int_equal(et_hf_config_write(&c, tpath("config.json"), &e), 0);
    if (et_model_load(&l, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_ptr_not_equal(l.lm_head, l.embed);
    assert_memory_equal(l.lm_head, head, (size_t)(V * C) * sizeof(float));
    et_model_free(&l);

    /* tied, with a head of the wrong shape: refused naming the shapes */
    c.tie_word_embeddings = 1;
    assert_int_equal(et_hf_config_write(&c, tpath("config.json"), &e), 0);
    if (et_model_save_hf(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    add_lm_head(head, ET_DT_F32, V - 1, C);
    assert_int_not_equal(et_model_load(&l, tmpdir, &e), 0);
    if (!strstr(e.msg, "lm_head.weight") || !strstr(e.msg, "[19, 8]")) fail_msg("%s", e.msg);

    free(head);
    et_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(huge_layer_count_refused),
        cmocka_unit_test_setup_teardown(huge_layer_count_in_folder_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(mismatch_found_before_allocation, setup, teardown),
        cmocka_unit_test_setup_teardown(tied_config_with_stored_head, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
