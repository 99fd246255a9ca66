/* ehrtune export against the references in tests/fixtures/export (made by
 * tests/crosscheck/make_export_fixtures.py with PEFT, transformers and the gguf
 * package): each fixture run is exported again by the current binary and
 *   - PEFT: ehrtune's own forward on the exported adapter gives the logits PEFT
 *     computed on the same export (< 1e-4), tensors are the run's bit for bit, the
 *     config has exactly the fields PEFT 0.21.2 writes;
 *   - merged: the sharded BF16 folder gives the logits transformers computed on it
 *     (< 1e-4) and PEFT's within bf16 tolerance; index and shard limits hold;
 *   - GGUF: the file, parsed here byte by byte, has llama.cpp's container layout,
 *     metadata and the tensors the gguf package read (q/k permutation included);
 * plus PEFT-written BF16 adapters for import, the GGUF writer's exact bytes, merge
 * chunking, and the model card's privacy section for a DP run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "data/gguf_write.h"
#include "data/safetensors.h"
#include "data/sha256.h"
#include "trainer/lora.h"
#include "trainer/merge.h"

#define FIX EHRTUNE_SOURCE_DIR "/tests/fixtures"

static char work[256];

static int setup(void **s) {
    (void)s;
    snprintf(work, sizeof work, "/tmp/et_test_export_XXXXXX");
    return mkdtemp(work) ? 0 : -1;
}

static int teardown(void **s) {
    (void)s;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    return system(cmd) == 0 ? 0 : -1;
}

static void sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fail_msg("command failed (%d): %s", rc, cmd);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = 0;
    if (n) *n = (size_t)len;
    return buf;
}

static float *read_f32(const char *path, const char *name, int64_t *n) {
    et_st_file f;
    et_error err;
    if (et_st_open(&f, path, &err)) fail_msg("%s", err.msg);
    const et_st_tensor *t = et_st_find(&f, name);
    if (!t) fail_msg("%s: no tensor %s", path, name);
    *n = et_st_numel(t);
    float *v = malloc(sizeof(float) * (size_t)*n);
    assert_int_equal(et_st_read_f32(&f, t, v, &err), 0);
    et_st_close(&f);
    return v;
}

static double rel_err(const float *x, const float *y, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        num += d * d;
        den += (double)y[i] * y[i];
    }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1e-30);
}

/* ehrtune forward's logits vs a reference tensor. */
static double forward_vs(const char *model, const char *adapter, const char *tokens,
                         const char *ref_file, const char *ref_name) {
    char out[512];
    snprintf(out, sizeof out, "%s/fwd.safetensors", work);
    sh("%s forward --model %s %s%s --tokens %s -o %s >/dev/null", EHRTUNE_BINARY, model,
       adapter ? "--adapter " : "", adapter ? adapter : "", tokens, out);
    int64_t n1, n2;
    float *a = read_f32(out, "logits", &n1), *b = read_f32(ref_file, ref_name, &n2);
    assert_int_equal(n1, n2);
    double e = rel_err(a, b, n1);
    free(a);
    free(b);
    unlink(out);
    return e;
}

/* ---- the GGUF writer's exact bytes ------------------------------------------------ */
static void gguf_writer_bytes(void **s) {
    (void)s;
    et_error err;
    et_gguf_writer *w = et_gguf_writer_new();
    float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    assert_int_equal(et_gguf_add_u32(w, "a.b", 7, &err), 0);
    assert_int_equal(et_gguf_add_tensor_f32(w, "t", 2, shape, data, ET_GGML_F32, &err), 0);
    /* refused: duplicate key, duplicate tensor, a 64-byte name, bad alignment */
    assert_int_not_equal(et_gguf_add_u32(w, "a.b", 1, &err), 0);
    assert_non_null(strstr(err.msg, "duplicate key"));
    assert_int_not_equal(et_gguf_add_tensor_f32(w, "t", 2, shape, data, ET_GGML_F32, &err), 0);
    char long_name[65];
    memset(long_name, 'x', 64);
    long_name[64] = 0;
    assert_int_not_equal(et_gguf_add_tensor_f32(w, long_name, 2, shape, data, ET_GGML_F32, &err), 0);
    assert_int_not_equal(et_gguf_add_u32(w, "general.alignment", 24, &err), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/w.gguf", work);
    assert_int_equal(et_gguf_write(w, path, 0, &err), 0);
    et_gguf_writer_free(w);

    /* Expected, assembled from the spec: header 24, KV 8+3+4+4, tensor info
     * 8+1+4+2*8+4+8 = 84 bytes, padded to 96; data 24 bytes padded to 32. */
    uint8_t want[128] = {0};
    uint8_t *p = want;
    uint32_t u32;
    uint64_t u64;
#define PUT(v, n) (memcpy(p, &(v), n), p += n)
    memcpy(p, "GGUF", 4), p += 4;
    u32 = 3, PUT(u32, 4);
    u64 = 1, PUT(u64, 8); /* tensors */
    u64 = 1, PUT(u64, 8); /* kv */
    u64 = 3, PUT(u64, 8);
    memcpy(p, "a.b", 3), p += 3;
    u32 = 4, PUT(u32, 4); /* UINT32 */
    u32 = 7, PUT(u32, 4);
    u64 = 1, PUT(u64, 8);
    *p++ = 't';
    u32 = 2, PUT(u32, 4);
    u64 = 3, PUT(u64, 8); /* ne[0] = torch shape[1] */
    u64 = 2, PUT(u64, 8);
    u32 = 0, PUT(u32, 4); /* F32 */
    u64 = 0, PUT(u64, 8); /* offset */
    assert_int_equal(p - want, 84);
    memcpy(want + 96, data, sizeof data);
#undef PUT
    size_t n;
    char *got = slurp(path, &n);
    assert_int_equal(n, 128);
    assert_memory_equal(got, want, 128);
    free(got);

    /* general.alignment 64 moves the data to the next multiple of 64. */
    w = et_gguf_writer_new();
    assert_int_equal(et_gguf_add_u32(w, "general.alignment", 64, &err), 0);
    assert_int_equal(et_gguf_add_tensor_f32(w, "t", 2, shape, data, ET_GGML_BF16, &err), 0);
    assert_int_equal(et_gguf_write(w, path, 0, &err), 0);
    et_gguf_writer_free(w);
    got = slurp(path, &n);
    /* header 24 + KV 8+17+4+4 + info 41 = 98 -> data at 128; 12 bytes padded to 64 */
    assert_int_equal(n, 192);
    uint16_t first;
    memcpy(&first, got + 128, 2);
    assert_int_equal(first, et_f32_to_bf16(1.0f));
    free(got);
}

/* ---- a small independent GGUF reader for the exported files ------------------------ */
typedef struct {
    const uint8_t *b;
    size_t n, pos;
} cursor;

static uint64_t take(cursor *c, size_t k) {
    if (c->pos + k > c->n) fail_msg("gguf: truncated at byte %zu", c->pos);
    uint64_t v = 0;
    memcpy(&v, c->b + c->pos, k);
    c->pos += k;
    return v;
}

static void take_str(cursor *c, char *out, size_t cap) {
    uint64_t len = take(c, 8);
    if (len >= cap || c->pos + len > c->n) fail_msg("gguf: bad string length %llu", (unsigned long long)len);
    memcpy(out, c->b + c->pos, len);
    out[len] = 0;
    c->pos += len;
}

typedef struct {
    char name[64];
    uint32_t ndim, type;
    uint64_t ne[4], offset;
} ginfo;

typedef struct {
    char arch[32], gtype[32], atype[32];
    float alpha;
    uint32_t file_type;
    int n_ehrtune_keys;
    int n_tensors;
    ginfo t[64];
    size_t data_start;
} gguf_file;

static void parse_gguf(const uint8_t *b, size_t n, gguf_file *g) {
    memset(g, 0, sizeof *g);
    cursor c = {b, n, 0};
    assert_memory_equal(b, "GGUF", 4);
    c.pos = 4;
    assert_int_equal(take(&c, 4), 3);
    uint64_t nt = take(&c, 8), nkv = take(&c, 8);
    assert_true(nt <= 64);
    for (uint64_t i = 0; i < nkv; i++) {
        char key[256], sval[2048];
        take_str(&c, key, sizeof key);
        uint32_t type = (uint32_t)take(&c, 4);
        if (type == 8) {
            take_str(&c, sval, sizeof sval);
            if (!strcmp(key, "general.architecture")) snprintf(g->arch, sizeof g->arch, "%s", sval);
            if (!strcmp(key, "general.type")) snprintf(g->gtype, sizeof g->gtype, "%s", sval);
            if (!strcmp(key, "adapter.type")) snprintf(g->atype, sizeof g->atype, "%s", sval);
            if (!strncmp(key, "ehrtune.", 8)) g->n_ehrtune_keys++;
        } else if (type == 4) {
            uint32_t v = (uint32_t)take(&c, 4);
            if (!strcmp(key, "general.file_type")) g->file_type = v;
            assert_string_not_equal(key, "general.alignment"); /* default 32 */
        } else if (type == 6) {
            uint32_t v = (uint32_t)take(&c, 4);
            assert_string_equal(key, "adapter.lora.alpha");
            memcpy(&g->alpha, &v, 4);
        } else fail_msg("gguf: unexpected value type %u for key %s", type, key);
    }
    g->n_tensors = (int)nt;
    for (uint64_t i = 0; i < nt; i++) {
        ginfo *t = &g->t[i];
        take_str(&c, t->name, sizeof t->name);
        t->ndim = (uint32_t)take(&c, 4);
        assert_true(t->ndim >= 1 && t->ndim <= 4);
        for (uint32_t d = 0; d < t->ndim; d++) t->ne[d] = take(&c, 8);
        t->type = (uint32_t)take(&c, 4);
        t->offset = take(&c, 8);
        assert_int_equal(t->offset % 32, 0);
    }
    g->data_start = (c.pos + 31) / 32 * 32;
    for (size_t k = c.pos; k < g->data_start; k++) assert_int_equal(b[k], 0); /* zero padding */
}

/* Checks adapter.gguf against the gguf package's reading (expected.safetensors
 * "gguf/<name>" in torch shape). bf16: stored as BF16, values = bf16(expected). */
static void check_gguf(const char *path, const char *expected, const char *arch, float alpha,
                       int bf16) {
    size_t n;
    uint8_t *b = (uint8_t *)slurp(path, &n);
    gguf_file g;
    parse_gguf(b, n, &g);
    assert_string_equal(g.gtype, "adapter");
    assert_string_equal(g.atype, "lora");
    assert_string_equal(g.arch, arch);
    assert_true(g.alpha == alpha);
    assert_int_equal(g.file_type, bf16 ? 32 : 0);
    assert_true(g.n_ehrtune_keys >= 4);
    et_st_file ref;
    et_error err;
    assert_int_equal(et_st_open(&ref, expected, &err), 0);
    int matched = 0;
    uint64_t end_max = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        const ginfo *t = &g.t[i];
        char key[128];
        snprintf(key, sizeof key, "gguf/%s", t->name);
        const et_st_tensor *rt = et_st_find(&ref, key);
        if (!rt) fail_msg("%s: tensor %s not expected", path, t->name);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->ne[0], rt->shape[1]); /* reversed */
        assert_int_equal(t->ne[1], rt->shape[0]);
        assert_int_equal(t->type, bf16 ? 30 : 0);
        int64_t numel = et_st_numel(rt);
        float *want = malloc(sizeof(float) * (size_t)numel);
        assert_int_equal(et_st_read_f32(&ref, rt, want, &err), 0);
        const uint8_t *d = b + g.data_start + t->offset;
        uint64_t bytes = (uint64_t)numel * (bf16 ? 2 : 4);
        assert_true(g.data_start + t->offset + bytes <= n);
        if (t->offset + bytes > end_max) end_max = t->offset + bytes;
        for (int64_t k = 0; k < numel; k++) {
            float got;
            if (bf16) {
                uint16_t h;
                memcpy(&h, d + 2 * k, 2);
                got = et_bf16_to_f32(h);
                if (h != et_f32_to_bf16(want[k])) fail_msg("%s[%lld] differs", t->name, (long long)k);
            } else {
                memcpy(&got, d + 4 * k, 4);
                if (got != want[k]) fail_msg("%s[%lld]: %g != %g", t->name, (long long)k, got, want[k]);
            }
        }
        free(want);
        matched++;
    }
    /* every expected tensor is in the file, and the file ends at the last padded tensor */
    int n_expected = 0;
    for (int i = 0; i < ref.n_tensors; i++) n_expected += !strncmp(ref.tensors[i].name, "gguf/", 5);
    assert_int_equal(matched, n_expected);
    assert_int_equal(n, g.data_start + (end_max + 31) / 32 * 32);
    et_st_close(&ref);
    free(b);
}

/* The field set of PEFT 0.21.2's LoraConfig.to_dict(), which save_pretrained writes. */
static const char *const PEFT_KEYS[] = {
    "alora_invocation_tokens", "alpha_pattern", "arrow_config", "auto_mapping",
    "base_model_name_or_path", "bias", "corda_config", "ensure_weight_tying", "eva_config",
    "exclude_modules", "fan_in_fan_out", "inference_mode", "init_lora_weights", "kasa_config",
    "layer_replication", "layers_pattern", "layers_to_transform", "loftq_config", "lora_alpha",
    "lora_bias", "lora_dropout", "lora_ga_config", "megatron_config", "megatron_core",
    "modules_to_save", "monteclora_config", "peft_type", "peft_version", "qalora_group_size", "r",
    "rank_pattern", "revision", "target_modules", "target_parameters", "task_type",
    "trainable_token_indices", "use_bdlora", "use_dora", "use_qalora", "use_rslora",
    "velora_config"};

static void check_peft_config(const char *path, const char *run_adapter_cfg, const char *base) {
    char *text = slurp(path, NULL), *rtext = slurp(run_adapter_cfg, NULL);
    cJSON *c = cJSON_Parse(text), *rc = cJSON_Parse(rtext);
    assert_non_null(c);
    int n = cJSON_GetArraySize(c);
    assert_int_equal(n, (int)(sizeof PEFT_KEYS / sizeof *PEFT_KEYS));
    for (size_t i = 0; i < sizeof PEFT_KEYS / sizeof *PEFT_KEYS; i++)
        if (!cJSON_HasObjectItem(c, PEFT_KEYS[i])) fail_msg("%s: no \"%s\"", path, PEFT_KEYS[i]);
    assert_string_equal(cJSON_GetObjectItem(c, "peft_type")->valuestring, "LORA");
    assert_string_equal(cJSON_GetObjectItem(c, "task_type")->valuestring, "CAUSAL_LM");
    assert_string_equal(cJSON_GetObjectItem(c, "bias")->valuestring, "none");
    assert_string_equal(cJSON_GetObjectItem(c, "base_model_name_or_path")->valuestring, base);
    /* r, alpha, rsLoRA and the module set agree with the run's adapter */
    static const char *const same[] = {"r", "lora_alpha", "use_rslora"};
    for (int i = 0; i < 3; i++) {
        const cJSON *a = cJSON_GetObjectItem(c, same[i]), *b = cJSON_GetObjectItem(rc, same[i]);
        assert_true(cJSON_Compare(a, b, 1));
    }
    const cJSON *tm = cJSON_GetObjectItem(c, "target_modules"), *rtm = cJSON_GetObjectItem(rc, "target_modules");
    assert_int_equal(cJSON_GetArraySize(tm), cJSON_GetArraySize(rtm));
    const cJSON *it;
    cJSON_ArrayForEach(it, rtm) {
        int found = 0;
        const cJSON *jt;
        cJSON_ArrayForEach(jt, tm) found |= !strcmp(jt->valuestring, it->valuestring);
        assert_true(found);
    }
    cJSON_Delete(c);
    cJSON_Delete(rc);
    free(text);
    free(rtext);
}

/* Exported adapter tensors: every key of the run's adapter, same shape, values
 * equal (F32) or bf16-rounded (BF16); __metadata__ carries format and ehrtune keys. */
static void check_peft_weights(const char *path, const char *run_weights, const char *manifest,
                               int bf16) {
    et_st_file a, b;
    et_error err;
    assert_int_equal(et_st_open(&a, path, &err), 0);
    assert_int_equal(et_st_open(&b, run_weights, &err), 0);
    assert_int_equal(a.n_tensors, b.n_tensors);
    for (int i = 0; i < b.n_tensors; i++) {
        const et_st_tensor *tb = &b.tensors[i], *ta = et_st_find(&a, tb->name);
        if (!ta) fail_msg("%s: no %s", path, tb->name);
        assert_int_equal(ta->dtype, bf16 ? ET_DT_BF16 : ET_DT_F32);
        assert_int_equal(ta->ndim, 2);
        assert_int_equal(ta->shape[0], tb->shape[0]);
        assert_int_equal(ta->shape[1], tb->shape[1]);
        int64_t n = et_st_numel(tb);
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        assert_int_equal(et_st_read_f32(&a, ta, x, &err), 0);
        assert_int_equal(et_st_read_f32(&b, tb, y, &err), 0);
        for (int64_t k = 0; k < n; k++) {
            float want = bf16 ? et_bf16_to_f32(et_f32_to_bf16(y[k])) : y[k];
            if (x[k] != want) fail_msg("%s[%lld] %g != %g", tb->name, (long long)k, x[k], want);
        }
        free(x);
        free(y);
    }
    char hex[65];
    assert_int_equal(et_sha256_file(manifest, hex, &err), 0);
    assert_string_equal(et_st_metadata(&a, "format"), "pt");
    assert_string_equal(et_st_metadata(&a, "ehrtune_manifest_sha256"), hex);
    assert_non_null(et_st_metadata(&a, "ehrtune_version"));
    assert_non_null(strstr(et_st_metadata(&a, "ehrtune_privacy"), "No formal privacy guarantee"));
    et_st_close(&a);
    et_st_close(&b);
}

/* Index: every tensor mapped to an existing shard, total_size = tensor bytes, no
 * shard over the limit unless it holds a single tensor, all tensors BF16. */
static void check_shards(const char *dir, uint64_t limit) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char *text = slurp(path, NULL);
    cJSON *idx = cJSON_Parse(text);
    const cJSON *map = cJSON_GetObjectItem(idx, "weight_map");
    const cJSON *total = cJSON_GetObjectItem(cJSON_GetObjectItem(idx, "metadata"), "total_size");
    assert_true(cJSON_IsNumber(total));
    uint64_t sum = 0;
    int n_shards = 0;
    for (int k = 1; k < 1000; k++) {
        char shard[64];
        int of = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, map) if (!of) sscanf(it->valuestring, "model-%*5d-of-%5d", &of);
        if (k > of) break;
        snprintf(shard, sizeof shard, "model-%05d-of-%05d.safetensors", k, of);
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        et_st_file f;
        et_error err;
        if (et_st_open(&f, path, &err)) fail_msg("%s", err.msg);
        uint64_t bytes = 0;
        for (int i = 0; i < f.n_tensors; i++) {
            assert_int_equal(f.tensors[i].dtype, ET_DT_BF16);
            bytes += f.tensors[i].end - f.tensors[i].begin;
            const cJSON *m = cJSON_GetObjectItem(map, f.tensors[i].name);
            assert_non_null(m);
            assert_string_equal(m->valuestring, shard);
        }
        assert_true(bytes <= limit || f.n_tensors == 1);
        assert_string_equal(et_st_metadata(&f, "format"), "pt");
        sum += bytes;
        n_shards++;
        et_st_close(&f);
    }
    assert_true(n_shards >= 2);
    assert_true((double)sum == total->valuedouble);
    cJSON_Delete(idx);
    free(text);
}

typedef struct {
    const char *name, *model, *arch;
    float gguf_alpha;
} export_case;

static void export_case_check(const export_case *ec) {
    char run[512], model[512], tokens[512], expected[512], out[512], p1[1024], p2[1024];
    snprintf(run, sizeof run, FIX "/export/%s/run", ec->name);
    snprintf(model, sizeof model, FIX "/%s/model", ec->model);
    snprintf(tokens, sizeof tokens, FIX "/%s/tokens.json", ec->model);
    snprintf(expected, sizeof expected, FIX "/export/%s/expected.safetensors", ec->name);
    snprintf(out, sizeof out, "%s/%s", work, ec->name);
    sh("cd %s && %s export %s --base %s --format peft,merged,gguf -o %s --max-shard-size 30kB "
       ">/dev/null", EHRTUNE_SOURCE_DIR, EHRTUNE_BINARY, run, model, out);

    /* PEFT */
    snprintf(p1, sizeof p1, "%s/peft", out);
    double e = forward_vs(model, p1, tokens, expected, "peft_f32_logits");
    if (!(e < 1e-4)) fail_msg("%s: PEFT logits relative error %.3g", ec->name, e);
    snprintf(p1, sizeof p1, "%s/peft/adapter_config.json", out);
    snprintf(p2, sizeof p2, "%s/adapter/adapter_config.json", run);
    char base_rel[256];
    snprintf(base_rel, sizeof base_rel, "tests/fixtures/%s/model", ec->model);
    check_peft_config(p1, p2, base_rel);
    snprintf(p1, sizeof p1, "%s/peft/adapter_model.safetensors", out);
    snprintf(p2, sizeof p2, "%s/adapter/adapter_model.safetensors", run);
    char manifest[600];
    snprintf(manifest, sizeof manifest, "%s/manifest.json", run);
    check_peft_weights(p1, p2, manifest, 0);

    /* merged */
    snprintf(p1, sizeof p1, "%s/merged", out);
    e = forward_vs(p1, NULL, tokens, expected, "merged_logits");
    if (!(e < 1e-4)) fail_msg("%s: merged logits vs transformers: relative error %.3g", ec->name, e);
    /* Against PEFT's fp32 logits only bf16 rounding separates them: 0.3-2.3 % here, the
     * same as rounding base and adapter to bf16 separately (checks.json,
     * bf16_rounding_floor_rel). A missing or doubled delta would be > 100 %. */
    e = forward_vs(p1, NULL, tokens, expected, "peft_f32_logits");
    if (!(e < 5e-2)) fail_msg("%s: merged logits vs PEFT: relative error %.3g (bf16)", ec->name, e);
    check_shards(p1, 30000);

    /* GGUF */
    snprintf(p1, sizeof p1, "%s/gguf/adapter.gguf", out);
    check_gguf(p1, expected, ec->arch, ec->gguf_alpha, 0);

    /* card and manifest in every folder, manifest unchanged, everything owner-only */
    static const char *const fmts[] = {"peft", "merged", "gguf"};
    size_t n1, n2;
    char *m0 = slurp(manifest, &n1);
    for (int i = 0; i < 3; i++) {
        snprintf(p1, sizeof p1, "%s/%s/manifest.json", out, fmts[i]);
        char *m1 = slurp(p1, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(m0, m1, n1);
        free(m1);
        snprintf(p1, sizeof p1, "%s/%s/README.md", out, fmts[i]);
        char *card = slurp(p1, NULL);
        assert_non_null(strstr(card, "No formal privacy guarantee"));
        assert_non_null(strstr(card, "Not a medical device"));
        assert_non_null(strstr(card, base_rel));
        free(card);
        struct stat st;
        snprintf(p1, sizeof p1, "%s/%s", out, fmts[i]);
        assert_int_equal(stat(p1, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    free(m0);
    snprintf(p1, sizeof p1, "%s/export.json", out);
    char *ej = slurp(p1, NULL);
    assert_non_null(strstr(ej, "\"ehrtune-export\""));
    free(ej);

    /* BF16 adapters: PEFT computed these logits from the bf16 export. */
    snprintf(out, sizeof out, "%s/%s-bf16", work, ec->name);
    sh("cd %s && %s export %s --base %s --format gguf,peft --dtype bf16 -o %s >/dev/null",
       EHRTUNE_SOURCE_DIR, EHRTUNE_BINARY, run, model, out);
    snprintf(p1, sizeof p1, "%s/peft", out);
    e = forward_vs(model, p1, tokens, expected, "peft_bf16_logits");
    if (!(e < 1e-4)) fail_msg("%s: BF16 PEFT logits relative error %.3g", ec->name, e);
    snprintf(p1, sizeof p1, "%s/peft/adapter_model.safetensors", out);
    snprintf(p2, sizeof p2, "%s/adapter/adapter_model.safetensors", run);
    check_peft_weights(p1, p2, manifest, 1);
    snprintf(p1, sizeof p1, "%s/gguf/adapter.gguf", out);
    check_gguf(p1, expected, ec->arch, ec->gguf_alpha, 1);
}

/* GQA (6 heads, 2 KV heads: the k permutation uses the KV head count), all 7 targets. */
static void export_llama(void **s) {
    (void)s;
    export_case c = {"llama", "llama_gqa_llama3", "llama", 8.0f};
    export_case_check(&c);
}
/* rsLoRA: GGUF alpha = 12·√6; head_dim 12 ≠ hidden/heads; Mistral is llama.cpp's "llama". */
static void export_mistral(void **s) {
    (void)s;
    export_case c = {"mistral", "mistral_window", "llama", (float)(12.0 * sqrt(6.0))};
    export_case_check(&c);
}
/* Qwen2: arch "qwen2", no q/k permutation; tied embeddings, q/k/v bias copied to merged. */
static void export_qwen2(void **s) {
    (void)s;
    export_case c = {"qwen2", "qwen2_bias_tied", "qwen2", 5.0f};
    export_case_check(&c);
}

/* Adapters PEFT itself wrote in BF16 on a subset of modules load in ehrtune with
 * PEFT's logits (import path of forward --adapter and train --init-adapter). */
static void import_peft_bf16(void **s) {
    (void)s;
    static const char *const cases[][2] = {{"llama_qv", "llama_gqa_llama3"},
                                           {"mistral_kod", "mistral_window"}};
    for (int i = 0; i < 2; i++) {
        char adapter[512], model[512], tokens[512], expected[512];
        snprintf(adapter, sizeof adapter, FIX "/export/peft_bf16/%s/adapter", cases[i][0]);
        snprintf(model, sizeof model, FIX "/%s/model", cases[i][1]);
        snprintf(tokens, sizeof tokens, FIX "/%s/tokens.json", cases[i][1]);
        snprintf(expected, sizeof expected, FIX "/export/peft_bf16/%s/expected.safetensors",
                 cases[i][0]);
        char wpath[600];
        snprintf(wpath, sizeof wpath, "%s/adapter_model.safetensors", adapter);
        et_st_file f;
        et_error err;
        assert_int_equal(et_st_open(&f, wpath, &err), 0);
        for (int k = 0; k < f.n_tensors; k++) assert_int_equal(f.tensors[k].dtype, ET_DT_BF16);
        et_st_close(&f);
        double e = forward_vs(model, adapter, tokens, expected, "logits");
        if (!(e < 1e-5)) fail_msg("%s: relative error %.3g", cases[i][0], e);
    }
}

/* The merge's output does not depend on its chunk size (rows split across chunks,
 * tensors larger than a chunk), and a chunked merge equals the default one. */
static void merge_chunking(void **s) {
    (void)s;
    et_hf_config cfg;
    et_error err;
    assert_int_equal(et_hf_config_load(&cfg, FIX "/llama_gqa_llama3/model/config.json", &err), 0);
    et_lora l;
    if (et_lora_load_peft(&l, &cfg, FIX "/export/llama/run/adapter", &err)) fail_msg("%s", err.msg);
    et_merge_source src;
    assert_int_equal(et_merge_source_open_hf(&src, FIX "/llama_gqa_llama3/model", &err), 0);
    char d1[512], d2[512], f1[600], f2[600];
    snprintf(d1, sizeof d1, "%s/m1", work);
    snprintf(d2, sizeof d2, "%s/m2", work);
    assert_int_equal(mkdir(d1, 0700), 0);
    assert_int_equal(mkdir(d2, 0700), 0);
    et_merge_options big = {0}, small = {0};
    small.chunk_elems = 7; /* < one row: each chunk holds one row (48 or 100 elements) */
    et_merge_stats st1, st2;
    assert_int_equal(et_merge_write(&src, &cfg, &l, d1, &big, &st1, &err), 0);
    assert_int_equal(et_merge_write(&src, &cfg, &l, d2, &small, &st2, &err), 0);
    assert_int_equal(st1.n_shards, 1);
    assert_int_equal(st1.n_merged, 14);
    assert_int_equal(st1.n_tensors, src.n_tensors);
    snprintf(f1, sizeof f1, "%s/model.safetensors", d1);
    snprintf(f2, sizeof f2, "%s/model.safetensors", d2);
    size_t n1, n2;
    char *a = slurp(f1, &n1), *b = slurp(f2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_int_equal(st1.file_bytes, n1);
    free(a);
    free(b);
    /* An existing file is never overwritten (the caller's folder is fresh). */
    assert_int_not_equal(et_merge_write(&src, &cfg, &l, d1, &big, &st1, &err), 0);
    /* A LoRA for another shape is refused, naming the tensor. */
    et_hf_config other = cfg;
    other.intermediate_size = 96;
    et_lora wrong;
    assert_int_equal(et_lora_create(&wrong, &other, 2, 4, 0, 0, 1u << ET_PROJ_UP, &err), 0);
    char d3[512];
    snprintf(d3, sizeof d3, "%s/m3", work);
    assert_int_equal(mkdir(d3, 0700), 0);
    assert_int_not_equal(et_merge_write(&src, &cfg, &wrong, d3, &big, &st1, &err), 0);
    assert_non_null(strstr(err.msg, "model.layers.0.mlp.up_proj.weight"));
    et_lora_free(&wrong);
    et_merge_source_close(&src);
    et_lora_free(&l);
}

/* A run whose manifest records a DP guarantee: the card states it in words and
 * numbers, and the weights' metadata carries epsilon and delta. */
static void dp_card_and_metadata(void **s) {
    (void)s;
    char run[512], out[512], path[700];
    snprintf(run, sizeof run, "%s/dprun", work);
    snprintf(out, sizeof out, "%s/dpout", work);
    sh("cp -r " FIX "/export/llama/run %s", run);
    snprintf(path, sizeof path, "%s/manifest.json", run);
    char *text = slurp(path, NULL);
    cJSON *m = cJSON_Parse(text);
    free(text);
    cJSON *p = cJSON_GetObjectItem(m, "privacy");
    cJSON_DeleteItemFromObject(p, "enabled");
    cJSON_AddTrueToObject(p, "enabled");
    cJSON_AddStringToObject(p, "unit", "patient");
    cJSON_AddStringToObject(p, "accountant", "prv");
    cJSON_AddNumberToObject(p, "epsilon", 3.0);
    cJSON_AddNumberToObject(p, "delta", 1e-6);
    cJSON_AddNumberToObject(p, "noise_multiplier", 0.9);
    cJSON_AddNumberToObject(p, "sample_rate", 0.01);
    cJSON_AddNumberToObject(p, "steps", 1000);
    cJSON_AddNumberToObject(p, "max_grad_norm", 1.0);
    cJSON_AddNumberToObject(p, "units", 4800);
    char *out_text = cJSON_Print(m);
    cJSON_Delete(m);
    FILE *f = fopen(path, "w");
    fputs(out_text, f);
    fclose(f);
    free(out_text);
    sh("cd %s && %s export %s --base " FIX "/llama_gqa_llama3/model --format peft -o %s >/dev/null",
       EHRTUNE_SOURCE_DIR, EHRTUNE_BINARY, run, out);
    snprintf(path, sizeof path, "%s/peft/README.md", out);
    char *card = slurp(path, NULL);
    assert_null(strstr(card, "No formal privacy guarantee"));
    assert_non_null(strstr(card, "| ε (epsilon) spent | 3 |"));
    assert_non_null(strstr(card, "| δ (delta) | 1e-06 |"));
    assert_non_null(strstr(card, "| accountant | prv |"));
    assert_non_null(strstr(card, "| noise multiplier σ | 0.9 |"));
    assert_non_null(strstr(card, "patients trained on (N: in the training split, with a training sequence) | 4800"));
    assert_non_null(strstr(card, "e^ε = 20.09"));
    /* research/phi-and-patient-dp.md §5: e^3 from a 50 % prior -> 95 %, from 1 % -> 17 % */
    assert_non_null(strstr(card, "at most 95.26% sure"));
    assert_non_null(strstr(card, "at most 16.9%"));
    assert_non_null(strstr(card, "ε = 3 is **reasonable**"));
    assert_non_null(strstr(card, "does not cover"));
    free(card);
    snprintf(path, sizeof path, "%s/peft/adapter_model.safetensors", out);
    et_st_file st;
    et_error err;
    assert_int_equal(et_st_open(&st, path, &err), 0);
    assert_string_equal(et_st_metadata(&st, "ehrtune_dp"), "true");
    assert_string_equal(et_st_metadata(&st, "ehrtune_dp_epsilon"), "3");
    assert_string_equal(et_st_metadata(&st, "ehrtune_dp_delta"), "1e-06");
    assert_string_equal(et_st_metadata(&st, "ehrtune_dp_unit"), "patient");
    assert_non_null(strstr(et_st_metadata(&st, "ehrtune_privacy"), "differential privacy"));
    et_st_close(&st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gguf_writer_bytes),
        cmocka_unit_test(export_llama),
        cmocka_unit_test(export_mistral),
        cmocka_unit_test(export_qwen2),
        cmocka_unit_test(import_peft_bf16),
        cmocka_unit_test(merge_chunking),
        cmocka_unit_test(dp_card_and_metadata),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
