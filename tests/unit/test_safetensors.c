/* safetensors reader/writer: round trips, byte-identity with files written by
 * the reference Python writer (tests/fixtures, safetensors 0.8.0), fp16/bf16
 * conversion, sharded folders, and every malformed-input check the reader makes
 * (each must fail with a message naming the file and the tensor). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/safetensors.h"

static char tmpdir[256];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/et_test_st_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path inside the temp dir (rotating static buffers, enough for one call). */
static const char *tpath(const char *name) {
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* 8-byte length (hlen, or strlen(header) when hlen < 0), header, data_len bytes. */
static void write_raw(const char *path, long long hlen, const char *header, size_t data_len) {
    size_t hn = strlen(header);
    uint64_t len = hlen < 0 ? hn : (uint64_t)hlen;
    size_t total = 8 + hn + data_len;
    unsigned char *b = calloc(1, total);
    memcpy(b, &len, 8);
    memcpy(b + 8, header, hn);
    for (size_t i = 0; i < data_len; i++) b[8 + hn + i] = (unsigned char)i;
    write_bytes(path, b, total);
    free(b);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Opening must fail, and the message must contain the path and each needle. */
static void expect_open_fails(const char *path, const char *needle1, const char *needle2) {
    et_st_file f;
    et_error e = {{0}};
    assert_int_not_equal(et_st_open(&f, path, &e), 0);
    if (!strstr(e.msg, path) || (needle1 && !strstr(e.msg, needle1)) ||
        (needle2 && !strstr(e.msg, needle2)))
        fail_msg("message lacks '%s' / '%s' / path: %s", needle1 ? needle1 : "", needle2 ? needle2 : "",
                 e.msg);
    assert_null(f.map); /* nothing left open */
}

static float f32_of(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- conversions ---------------------------------------------------------------- */

static void f16_decode_known_values(void **state) {
    (void)state;
    assert_true(et_f16_to_f32(0x0001) == ldexpf(1, -24)); /* smallest subnormal */
    assert_true(et_f16_to_f32(0x03ff) == 1023 * ldexpf(1, -24));
    assert_true(et_f16_to_f32(0x8001) == -ldexpf(1, -24));
    assert_true(et_f16_to_f32(0x0400) == ldexpf(1, -14)); /* smallest normal */
    assert_true(et_f16_to_f32(0x3c00) == 1.0f);
    assert_true(et_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(et_f16_to_f32(0xc000) == -2.0f);
    assert_true(et_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(et_f16_to_f32(0x7c00)) && et_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(et_f16_to_f32(0xfc00)) && et_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(et_f16_to_f32(0x7e00)) && isnan(et_f16_to_f32(0xfc01)));
    assert_true(et_f16_to_f32(0x8000) == 0 && signbit(et_f16_to_f32(0x8000)));
    assert_true(et_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(et_bf16_to_f32(0xc0a0) == -5.0f);
    assert_true(isnan(et_bf16_to_f32(0x7fc0)));
    assert_true(isinf(et_bf16_to_f32(0xff80)) && et_bf16_to_f32(0xff80) < 0);
    assert_true(et_bf16_to_f32(0x0001) == ldexpf(1, -133)); /* bf16 subnormal */
}

/* Every 16-bit pattern decodes and re-encodes to itself (NaNs stay NaN). */
static void f16_bf16_exhaustive_round_trip(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = et_f16_to_f32((uint16_t)h), g = et_bf16_to_f32((uint16_t)h);
        if (isnan(f)) assert_true(isnan(et_f16_to_f32(et_f32_to_f16(f))));
        else if (et_f32_to_f16(f) != h) fail_msg("f16 0x%04x -> %g -> 0x%04x", h, f, et_f32_to_f16(f));
        if (isnan(g)) assert_true(isnan(et_bf16_to_f32(et_f32_to_bf16(g))));
        else if (et_f32_to_bf16(g) != h) fail_msg("bf16 0x%04x -> 0x%04x", h, et_f32_to_bf16(g));
    }
}

static void f32_encode_rounding(void **state) {
    (void)state;
    /* bf16: 7 mantissa bits. 1 + 2^-8 ties to even (1.0); 1 + 3·2^-8 ties up to 1 + 2^-6. */
    assert_int_equal(et_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);
    assert_int_equal(et_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
    assert_int_equal(et_f32_to_bf16(1.0f + ldexpf(1, -8) + ldexpf(1, -20)), 0x3f81);
    assert_int_equal(et_f32_to_bf16(f32_of(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
    assert_int_equal(et_f32_to_bf16(-0.0f), 0x8000);
    assert_true((et_f32_to_bf16(f32_of(0x7f800001)) & 0x7fff) > 0x7f80); /* sNaN stays NaN */
    /* f16 */
    assert_int_equal(et_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(et_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(et_f32_to_f16(65520.0f), 0x7c00); /* tie to even = inf */
    assert_int_equal(et_f32_to_f16(-1e9f), 0xfc00);
    assert_int_equal(et_f32_to_f16(ldexpf(1, -24)), 0x0001);
    assert_int_equal(et_f32_to_f16(ldexpf(1, -25)), 0x0000);       /* tie to even: 0 */
    assert_int_equal(et_f32_to_f16(3 * ldexpf(1, -26)), 0x0001);   /* 1.5 units: up */
    assert_int_equal(et_f32_to_f16(3 * ldexpf(1, -25)), 0x0002);   /* 1.5 units of 2^-24 -> 2 */
    assert_int_equal(et_f32_to_f16(-ldexpf(1, -30)), 0x8000);
    assert_int_equal(et_f32_to_f16(1023.5f * ldexpf(1, -24)), 0x0400); /* up into normals */
    assert_int_equal(et_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
    assert_int_equal(et_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    assert_true((et_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (et_f32_to_f16(NAN) & 0x3ff));
#if defined(__FLT16_MAX__)
    /* Against the compiler's own IEEE binary16 conversion (round to nearest even). */
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 1000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t b = (uint32_t)s;
        if (i % 2) b = (b & 0x80000000u) | (0x33000000u + (b % 0x14800000u)); /* f16 range */
        float f = f32_of(b);
        _Float16 ref = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &ref, 2);
        if (isnan(f)) continue;
        if (et_f32_to_f16(f) != rb) fail_msg("f32 0x%08x: got 0x%04x, want 0x%04x", b, et_f32_to_f16(f), rb);
    }
#endif
}

/* ---- writer / reader round trip ---------------------------------------------------- */

static void write_read_round_trip(void **state) {
    (void)state;
    const float w[6] = {1.5f, -2.25f, 0.0f, 3e-3f, 1e30f, -7.0f};
    const float bsrc[6] = {1.0f + ldexpf(1, -8), 1.0f + 3 * ldexpf(1, -8), -0.0f, INFINITY, NAN, 3.14159f};
    const float hsrc[7] = {65504.0f, 65520.0f, ldexpf(1, -24), ldexpf(1, -25), 1e-8f, -INFINITY, 0.333333f};
    const int64_t ids[3] = {-1, 1LL << 40, 7};
    const int32_t i32[2] = {-5, 123456};
    const uint8_t bytes[5] = {0, 1, 2, 254, 255};
    const float scalar = 42.0f;
    int64_t s23[2] = {2, 3}, s6[1] = {6}, s7[1] = {7}, s3[1] = {3}, s2[1] = {2}, s5[1] = {5}, s04[2] = {0, 4};

    et_st_writer wr;
    et_st_writer_init(&wr);
    et_error e = {{0}};
    assert_int_equal(et_st_writer_add(&wr, "w.f32", ET_DT_F32, 2, s23, w, &e), 0);
    assert_int_equal(et_st_writer_add_f32(&wr, "b.bf16", ET_DT_BF16, 1, s6, bsrc, &e), 0);
    assert_int_equal(et_st_writer_add_f32(&wr, "h.f16", ET_DT_F16, 1, s7, hsrc, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "ids", ET_DT_I64, 1, s3, ids, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "i32", ET_DT_I32, 1, s2, i32, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "bytes", ET_DT_U8, 1, s5, bytes, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "scalar", ET_DT_F32, 0, NULL, &scalar, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "empty", ET_DT_F32, 2, s04, NULL, &e), 0);
    assert_int_equal(et_st_writer_set_metadata(&wr, "note", "tab\there \"quoted\" é", &e), 0);
    /* A fp32 source cannot be stored as an integer type. */
    assert_int_not_equal(et_st_writer_add_f32(&wr, "bad", ET_DT_I32, 1, s2, w, &e), 0);
    const char *path = tpath("rt.safetensors");
    assert_int_equal(et_st_writer_write(&wr, path, ET_ST_WRITE_PRIVATE, &e), 0);
    et_st_writer_free(&wr);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t n;
    unsigned char *raw = slurp(path, &n);
    uint64_t hlen;
    memcpy(&hlen, raw, 8);
    assert_int_equal(hlen % 8, 0);
    const char *head = "{\"__metadata__\":{\"format\":\"pt\",\"note\":";
    assert_memory_equal(raw + 8, head, strlen(head));
    free(raw);

    et_st_file f;
    if (et_st_open(&f, path, &e)) fail_msg("%s", e.msg);
    assert_int_equal(f.n_tensors, 8);
    assert_string_equal(et_st_metadata(&f, "format"), "pt");
    assert_string_equal(et_st_metadata(&f, "note"), "tab\there \"quoted\" é");
    assert_null(et_st_metadata(&f, "missing"));
    for (int i = 0; i < f.n_tensors; i++) { /* natural alignment in the file */
        const et_st_tensor *t = &f.tensors[i];
        uint64_t file_off = 8 + hlen + t->begin, size = (uint64_t)et_dtype_bits(t->dtype) / 8;
        assert_int_equal(file_off % size, 0);
    }
    assert_int_equal(et_st_find(&f, "ids")->begin, 0); /* 8-byte dtypes first */

    float out[8];
    const et_st_tensor *t = et_st_find(&f, "w.f32");
    assert_non_null(t);
    assert_int_equal(t->dtype, ET_DT_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(et_st_read_f32(&f, t, out, &e), 0);
    assert_memory_equal(out, w, sizeof w);

    t = et_st_find(&f, "b.bf16");
    assert_int_equal(t->dtype, ET_DT_BF16);
    assert_int_equal(et_st_read_f32(&f, t, out, &e), 0);
    assert_true(out[0] == 1.0f && out[1] == 1.0f + ldexpf(1, -6));
    assert_true(out[2] == 0 && signbit(out[2]) && isinf(out[3]) && isnan(out[4]));
    assert_true(out[5] == et_bf16_to_f32(0x4049)); /* 3.140625 */

    t = et_st_find(&f, "h.f16");
    assert_int_equal(et_st_read_f32(&f, t, out, &e), 0);
    assert_true(out[0] == 65504.0f && isinf(out[1]) && out[2] == ldexpf(1, -24) && out[3] == 0.0f);
    assert_true(out[4] == 0.0f); /* 1e-8 < 2^-25: rounds to 0 */
    assert_true(isinf(out[5]) && out[5] < 0);
    assert_true(fabsf(out[6] - 0.333333f) < 2e-4f);

    t = et_st_find(&f, "ids");
    assert_memory_equal(et_st_data(&f, t), ids, sizeof ids);
    t = et_st_find(&f, "i32");
    assert_memory_equal(et_st_data(&f, t), i32, sizeof i32);
    t = et_st_find(&f, "bytes");
    assert_memory_equal(et_st_data(&f, t), bytes, sizeof bytes);
    /* Integer tensors are not silently converted to floats. */
    assert_int_not_equal(et_st_read_f32(&f, t, out, &e), 0);
    assert_non_null(strstr(e.msg, "'bytes'"));
    assert_non_null(strstr(e.msg, "U8"));
    t = et_st_find(&f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(et_st_numel(t), 1);
    assert_int_equal(et_st_read_f32(&f, t, out, &e), 0);
    assert_true(out[0] == 42.0f);
    t = et_st_find(&f, "empty");
    assert_int_equal(et_st_numel(t), 0);
    assert_int_equal(t->begin, t->end);
    et_st_close(&f);

    /* No temporary file is left behind. */
    DIR *d = opendir(tmpdir);
    for (struct dirent *de; (de = readdir(d));)
        assert_null(strstr(de->d_name, ".tmp."));
    closedir(d);
}

/* Re-writing the tensors of files written by the reference Python writer must
 * give byte-identical files (header text, order, offsets, padding). */
static void writer_matches_reference_bytes(void **state) {
    (void)state;
    const char *cases[] = {"llama_gqa_llama3/model/model.safetensors",
                           "mistral_window/adapter/adapter_model.safetensors",
                           "qwen2_bias_tied/model/model.safetensors",
                           "qwen2_bias_tied/expected.safetensors"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char ref[1024];
        snprintf(ref, sizeof ref, "%s/tests/fixtures/%s", EHRTUNE_SOURCE_DIR, cases[c]);
        et_st_file f;
        et_error e = {{0}};
        if (et_st_open(&f, ref, &e)) fail_msg("%s", e.msg);
        assert_true(f.n_tensors > 0);
        et_st_writer wr;
        et_st_writer_init(&wr);
        for (int i = 0; i < f.n_meta; i++)
            assert_int_equal(et_st_writer_set_metadata(&wr, f.meta_keys[i], f.meta_values[i], &e), 0);
        for (int i = f.n_tensors - 1; i >= 0; i--) { /* insertion order must not matter */
            const et_st_tensor *t = &f.tensors[i];
            assert_int_equal(et_st_writer_add(&wr, t->name, t->dtype, t->ndim, t->shape,
                                              et_st_data(&f, t), &e), 0);
        }
        const char *out = tpath("rewrite.safetensors");
        if (et_st_writer_write(&wr, out, 0, &e)) fail_msg("%s", e.msg);
        et_st_writer_free(&wr);
        if (et_st_metadata(&f, "format")) {
            size_t na, nb;
            unsigned char *a = slurp(ref, &na), *b = slurp(out, &nb);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na);
            free(a);
            free(b);
        } else {
            /* The reference writes no "format" key unless asked; ours always does
             * (transformers refuses other formats), so only the header differs. */
            et_st_file g;
            if (et_st_open(&g, out, &e)) fail_msg("%s", e.msg);
            assert_string_equal(et_st_metadata(&g, "format"), "pt");
            assert_int_equal(g.n_tensors, f.n_tensors);
            for (int i = 0; i < f.n_tensors; i++) {
                assert_string_equal(g.tensors[i].name, f.tensors[i].name);
                assert_int_equal(g.tensors[i].begin, f.tensors[i].begin);
                assert_int_equal(g.tensors[i].end, f.tensors[i].end);
            }
            assert_int_equal(g.data_size, f.data_size);
            assert_memory_equal(g.data, f.data, f.data_size);
            et_st_close(&g);
        }
        et_st_close(&f);
    }
}

static void writer_rejects_bad_input(void **state) {
    (void)state;
    float v[2] = {1, 2};
    int64_t s2[1] = {2}, neg[1] = {-1};
    et_error e = {{0}};
    et_st_writer wr;
    et_st_writer_init(&wr);
    assert_int_not_equal(et_st_writer_add(&wr, "__metadata__", ET_DT_F32, 1, s2, v, &e), 0);
    assert_int_not_equal(et_st_writer_add(&wr, "", ET_DT_F32, 1, s2, v, &e), 0);
    assert_int_not_equal(et_st_writer_add(&wr, "n", ET_DT_F32, 1, neg, v, &e), 0);
    assert_int_not_equal(et_st_writer_add(&wr, "bad\xff", ET_DT_F32, 1, s2, v, &e), 0);
    assert_int_not_equal(et_st_writer_add(&wr, "f4", ET_DT_F4, 1, s2, v, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "x", ET_DT_F32, 1, s2, v, &e), 0);
    assert_int_equal(et_st_writer_add(&wr, "x", ET_DT_F32, 1, s2, v, &e), 0);
    const char *path = tpath("dup.safetensors");
    assert_int_not_equal(et_st_writer_write(&wr, path, 0, &e), 0);
    assert_non_null(strstr(e.msg, "'x'"));
    assert_int_not_equal(access(path, F_OK), 0); /* nothing written */
    et_st_writer_free(&wr);
    et_st_writer_init(&wr);
    assert_int_equal(et_st_writer_add(&wr, "x", ET_DT_F32, 1, s2, v, &e), 0);
    assert_int_not_equal(et_st_writer_write(&wr, tpath("no/such/dir/x.safetensors"), 0, &e), 0);
    assert_non_null(strstr(e.msg, "no/such/dir/x.safetensors"));
    et_st_writer_free(&wr);
}

/* ---- reference files ------------------------------------------------------------- */

static void reads_reference_files(void **state) {
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/llama_gqa_llama3/model", EHRTUNE_SOURCE_DIR);
    et_st_model m;
    et_error e = {{0}};
    if (et_st_model_open(&m, dir, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.n_files, 1);
    assert_int_equal(m.n_entries, 2 + 9 * 2 + 1); /* embed, head, 9 per layer, norm */
    const et_st_file *file;
    const et_st_tensor *t = et_st_model_find(&m, "model.layers.1.self_attn.k_proj.weight", &file);
    assert_non_null(t);
    assert_int_equal(t->shape[0], 2 * 8);
    assert_int_equal(t->shape[1], 48);
    assert_string_equal(et_st_metadata(file, "format"), "pt");
    float *buf = malloc(97 * 48 * sizeof *buf);
    const int64_t emb[2] = {97, 48}, wrong[2] = {48, 97};
    assert_int_equal(et_st_model_read_f32(&m, "model.embed_tokens.weight", buf, 2, emb, &e), 0);
    assert_true(isfinite(buf[0]) && buf[0] != 0);
    assert_int_not_equal(et_st_model_read_f32(&m, "lm_head.weight", buf, 2, wrong, &e), 0);
    assert_non_null(strstr(e.msg, "tensor 'lm_head.weight' in "));
    assert_non_null(strstr(e.msg, "model.safetensors has shape [97, 48], config.json implies [48, 97]"));
    assert_int_not_equal(et_st_model_read_f32(&m, "model.layers.9.mlp.up_proj.weight", buf, 2, emb, &e), 0);
    assert_non_null(strstr(e.msg, "model.layers.9.mlp.up_proj.weight"));
    free(buf);
    et_st_model_close(&m);
}

/* ---- sharded model folder ------------------------------------------------------- */

static void write_shard(const char *name, const char *t1, const char *t2, const float *v) {
    int64_t s[2] = {2, 3};
    et_st_writer wr;
    et_error e = {{0}};
    et_st_writer_init(&wr);
    assert_int_equal(et_st_writer_add_f32(&wr, t1, ET_DT_BF16, 2, s, v, &e), 0);
    assert_int_equal(et_st_writer_add_f32(&wr, t2, ET_DT_F32, 2, s, v + 6, &e), 0);
    if (et_st_writer_write(&wr, tpath(name), 0, &e)) fail_msg("%s", e.msg);
    et_st_writer_free(&wr);
}

static void write_text(const char *name, const char *text) {
    write_bytes(tpath(name), text, strlen(text));
}

static void expect_model_fails(const char *needle1, const char *needle2) {
    et_st_model m;
    et_error e = {{0}};
    assert_int_not_equal(et_st_model_open(&m, tmpdir, &e), 0);
    if ((needle1 && !strstr(e.msg, needle1)) || (needle2 && !strstr(e.msg, needle2)))
        fail_msg("message lacks '%s' / '%s': %s", needle1, needle2 ? needle2 : "", e.msg);
    assert_null(m.files);
}

static void sharded_model(void **state) {
    (void)state;
    expect_model_fails("model.safetensors.index.json", "model.safetensors;");
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i * 0.5f - 2.0f; /* exact in bf16 */
    write_shard("model-00001-of-00002.safetensors", "a.weight", "b.weight", v);
    write_shard("model-00002-of-00002.safetensors", "c.weight", "unlisted", v);
    const char *index =
        "{\"metadata\": {\"total_size\": 60},\n \"weight_map\": {\n"
        "  \"a.weight\": \"model-00001-of-00002.safetensors\",\n"
        "  \"b.weight\": \"model-00001-of-00002.safetensors\",\n"
        "  \"c.weight\": \"model-00002-of-00002.safetensors\"}}\n";
    write_text("model.safetensors.index.json", index);

    et_st_model m;
    et_error e = {{0}};
    if (et_st_model_open(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.n_files, 2);
    assert_int_equal(m.n_entries, 3);
    const et_st_file *fa, *fc;
    assert_non_null(et_st_model_find(&m, "a.weight", &fa));
    assert_non_null(et_st_model_find(&m, "c.weight", &fc));
    assert_ptr_not_equal(fa, fc);
    assert_non_null(strstr(fc->path, "model-00002-of-00002.safetensors"));
    assert_null(et_st_model_find(&m, "unlisted", NULL)); /* only weight_map is visible */
    const int64_t shape[2] = {2, 3};
    float out[6];
    assert_int_equal(et_st_model_read_f32(&m, "a.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, v, sizeof out);
    assert_int_equal(et_st_model_read_f32(&m, "c.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, v, sizeof out);
    et_st_model_close(&m);

    /* A tensor missing from the shard the index names. */
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"a.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_model_fails("'a.weight'", "model-00002-of-00002.safetensors");
    /* Shard names may not leave the folder. */
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"a.weight\": \"../model-00001-of-00002.safetensors\"}}");
    expect_model_fails("'a.weight'", "'..'");
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"a.weight\": \"sub/x.safetensors\"}}");
    expect_model_fails("'a.weight'", "model.safetensors.index.json");
    /* A listed shard that does not exist. */
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"a.weight\": \"model-00003-of-00003.safetensors\"}}");
    expect_model_fails("model-00003-of-00003.safetensors", "model.safetensors.index.json");
    /* No weight_map, broken JSON, duplicate entry. */
    write_text("model.safetensors.index.json", "{\"metadata\": {}}");
    expect_model_fails("weight_map", NULL);
    write_text("model.safetensors.index.json", "{\"weight_map\": {");
    expect_model_fails("model.safetensors.index.json", "not valid JSON");
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\","
               " \"a.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_model_fails("'a.weight' twice", NULL);
    /* A corrupt shard is reported with its own path. */
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\"}}");
    write_bytes(tpath("model-00001-of-00002.safetensors"), "\x10\0\0", 3);
    expect_model_fails("model-00001-of-00002.safetensors", "shorter than");

    /* Without an index, model.safetensors is used. */
    unlink(tpath("model.safetensors.index.json"));
    write_shard("model.safetensors", "x.weight", "y.weight", v);
    if (et_st_model_open(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.n_entries, 2);
    assert_int_equal(et_st_model_read_f32(&m, "y.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, v + 6, sizeof out);
    et_st_model_close(&m);
}

/* transformers' order: a regular-file model.safetensors wins over an index beside it
 * (save_pretrained leaves the old index when re-saving a sharded model unsharded). */
static void single_file_wins_over_index(void **state) {
    (void)state;
    float v[12], old[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i * 0.25f, old[i] = -1.0f - (float)i;
    write_shard("model.safetensors", "a.weight", "b.weight", v);
    const char *index =
        "{\"metadata\": {\"total_size\": 36},\n \"weight_map\": {\n"
        "  \"a.weight\": \"model-00001-of-00002.safetensors\",\n"
        "  \"b.weight\": \"model-00002-of-00002.safetensors\"}}\n";
    write_text("model.safetensors.index.json", index);
    const int64_t shape[2] = {2, 3};
    float out[6];
    et_st_model m;
    et_error e = {{0}};
    /* the stale index's shards are gone: the single file opens */
    if (et_st_model_open(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.n_files, 1);
    assert_int_equal(et_st_model_read_f32(&m, "b.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, v + 6, sizeof out);
    et_st_model_close(&m);
    /* the old shards still there: the single file's values win */
    write_shard("model-00001-of-00002.safetensors", "a.weight", "x", old);
    write_shard("model-00002-of-00002.safetensors", "y", "b.weight", old);
    if (et_st_model_open(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.n_files, 1);
    assert_int_equal(et_st_model_read_f32(&m, "a.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, v, sizeof out);
    assert_int_equal(et_st_model_read_f32(&m, "b.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, v + 6, sizeof out);
    assert_null(et_st_model_find(&m, "x", NULL));
    et_st_model_close(&m);
    /* model.safetensors that is not a regular file: transformers reads the index */
    unlink(tpath("model.safetensors"));
    assert_int_equal(mkdir(tpath("model.safetensors"), 0700), 0);
    if (et_st_model_open(&m, tmpdir, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.n_files, 2);
    assert_int_equal(et_st_model_read_f32(&m, "a.weight", out, 2, shape, &e), 0);
    assert_memory_equal(out, old, sizeof out);
    et_st_model_close(&m);
    rmdir(tpath("model.safetensors"));
}

/* Reading part of a tensor (one row at a time) converts exactly those elements. */
static void read_range(void **state) {
    (void)state;
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i * 0.5f - 2.0f; /* exact in bf16 */
    write_shard("r.safetensors", "bf", "f32", v);
    et_st_file f;
    et_error e = {{0}};
    if (et_st_open(&f, tpath("r.safetensors"), &e)) fail_msg("%s", e.msg);
    float out[6];
    for (int k = 0; k < 2; k++) {
        const et_st_tensor *t = et_st_find(&f, k ? "f32" : "bf");
        assert_int_equal(et_st_read_f32_range(&f, t, 3, 3, out, &e), 0);
        assert_memory_equal(out, v + 6 * k + 3, 3 * sizeof(float));
        assert_int_equal(et_st_read_f32_range(&f, t, 6, 0, out, &e), 0);
        assert_int_not_equal(et_st_read_f32_range(&f, t, 4, 3, out, &e), 0);
        assert_non_null(strstr(e.msg, "outside"));
        assert_int_not_equal(et_st_read_f32_range(&f, t, -1, 2, out, &e), 0);
    }
    et_st_close(&f);
}

/* ---- malformed files ---------------------------------------------------------------- */

#define T_F32_2(name, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #b "," #e "]}"

static void rejects_malformed_files(void **state) {
    (void)state;
    const char *p = tpath("bad.safetensors");

    write_bytes(p, "\x02\0\0\0\0", 5);
    expect_open_fails(p, "shorter than the 8-byte", NULL);

    write_raw(p, 100000001, "{}", 16);
    expect_open_fails(p, "100000001", "limit");

    write_raw(p, 1000, "{" T_F32_2("a", 0, 8) "}", 8);
    expect_open_fails(p, "header length 1000", "past the end");

    write_raw(p, 0, "", 0);
    expect_open_fails(p, "start with '{'", NULL);

    write_raw(p, -1, "[" T_F32_2("a", 0, 8) "]", 8);
    expect_open_fails(p, "start with '{'", NULL);

    write_raw(p, -1, "{\"a\":{\"dtype\":\"F32\",", 0);
    expect_open_fails(p, "not valid JSON", NULL);

    write_raw(p, -1, "{" T_F32_2("a\xff", 0, 8) "}", 8);
    expect_open_fails(p, "UTF-8", NULL);

    write_raw(p, -1, "{" T_F32_2("a\\u0000b", 0, 8) "}", 8);
    expect_open_fails(p, "\\u0000", NULL);

    write_raw(p, -1, "{\"a\tb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails(p, "control byte", NULL);

    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "} x", 8);
    expect_open_fails(p, "after the JSON object", NULL);

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "unknown dtype 'F17'");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0);
    expect_open_fails(p, "tensor 'w.q'", "missing field 'data_offsets'");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "unknown field 'foo'");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    expect_open_fails(p, "tensor 'w.q'", "needs 8 bytes");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "shape[0]");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "shape[0]");

    write_raw(p, -1,
              "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "overflow");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "end before");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8);
    expect_open_fails(p, "tensor 'w.q'", "data_offsets");

    write_raw(p, -1, "{\"w.q\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1);
    expect_open_fails(p, "tensor 'w.q'", "whole number of bytes");

    /* layout: overlap, gap, first BEGIN != 0, truncation, trailing bytes */
    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "," T_F32_2("b", 4, 12) "}", 12);
    expect_open_fails(p, "tensor 'b'", "overlap tensor 'a'");

    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "," T_F32_2("b", 12, 20) "}", 20);
    expect_open_fails(p, "tensor 'b'", "gap of 4");

    write_raw(p, -1, "{" T_F32_2("a", 4, 12) "}", 12);
    expect_open_fails(p, "tensor 'a'", "not 0");

    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "," T_F32_2("b", 8, 16) "}", 12);
    expect_open_fails(p, "tensor 'b'", "truncated");

    /* offsets far beyond the end of the file */
    write_raw(p, -1, "{" T_F32_2("a", 0, 8) ",\"b\":{\"dtype\":\"U8\",\"shape\":[1000000000],"
              "\"data_offsets\":[8,1000000008]}}", 16);
    expect_open_fails(p, "tensor 'b'", "truncated");

    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "}", 10);
    expect_open_fails(p, "2 trailing bytes", "'a'");

    write_raw(p, -1, "{}", 3);
    expect_open_fails(p, "3 bytes", "lists no tensors");

    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "," T_F32_2("a", 8, 16) "}", 16);
    expect_open_fails(p, "tensor 'a'", "twice");

    /* metadata */
    write_raw(p, -1, "{\"__metadata__\":{\"format\":1}," T_F32_2("a", 0, 8) "}", 8);
    expect_open_fails(p, "key 'format'", "only string");

    write_raw(p, -1, "{\"__metadata__\":[\"pt\"]," T_F32_2("a", 0, 8) "}", 8);
    expect_open_fails(p, "__metadata__", "object");

    write_raw(p, -1, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," T_F32_2("a", 0, 8) "}", 8);
    expect_open_fails(p, "key 'k' twice", NULL);

    {   /* 5000 metadata keys: refused quickly instead of a quadratic duplicate check */
        size_t cap = 5000 * 24 + 256, at = 0;
        char *big = malloc(cap);
        at += (size_t)snprintf(big + at, cap - at, "{\"__metadata__\":{");
        for (int i = 0; i < 5000; i++)
            at += (size_t)snprintf(big + at, cap - at, "%s\"k%d\":\"v\"", i ? "," : "", i);
        snprintf(big + at, cap - at, "}," T_F32_2("a", 0, 8) "}");
        write_raw(p, -1, big, 8);
        free(big);
        expect_open_fails(p, "__metadata__", "5000 entries, over the 4096");
    }

    write_raw(p, -1, "{\"a\":[1,2]}", 0);
    expect_open_fails(p, "tensor 'a'", "expected an object");

    /* Valid edge cases: padding with spaces, no tensors at all. */
    write_raw(p, -1, "{" T_F32_2("a", 0, 8) "}      ", 8);
    et_st_file f;
    et_error e;
    if (et_st_open(&f, p, &e)) fail_msg("%s", e.msg);
    et_st_close(&f);
    write_raw(p, -1, "{}", 0);
    if (et_st_open(&f, p, &e)) fail_msg("%s", e.msg);
    assert_int_equal(f.n_tensors, 0);
    et_st_close(&f);

    expect_open_fails(tpath("does-not-exist.safetensors"), "cannot open", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f16_decode_known_values),
        cmocka_unit_test(f16_bf16_exhaustive_round_trip),
        cmocka_unit_test(f32_encode_rounding),
        cmocka_unit_test_setup_teardown(write_read_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_matches_reference_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_rejects_bad_input, setup, teardown),
        cmocka_unit_test(reads_reference_files),
        cmocka_unit_test_setup_teardown(sharded_model, setup, teardown),
        cmocka_unit_test_setup_teardown(single_file_wins_over_index, setup, teardown),
        cmocka_unit_test_setup_teardown(read_range, setup, teardown),
        cmocka_unit_test_setup_teardown(rejects_malformed_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
