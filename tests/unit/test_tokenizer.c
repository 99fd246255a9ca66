/* Tokenizer against HF tokenizers: every id of every case in tests/fixtures/tokenizers/
 * (written by tests/crosscheck/make_tokenizer_fixtures.py with tokenizers 0.23.3: the hard
 * clinical text, edge cases and 100 random texts per family, each with add_special_tokens
 * off and on and with encode_special_tokens), every decode HF gave, byte-exact round
 * trips, a tiny hand-checked BPE, invalid UTF-8, and bad tokenizer files (each refused
 * with a message naming the file and the place). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "data/tokenizer.h"
#include "data/unicode.h"

#define FIXTURES EHRTUNE_SOURCE_DIR "/tests/fixtures/tokenizers"

static const char *FAMILIES[] = {"llama3-bytelevel", "demo-bytelevel",  "qwen2-bytelevel", "llama2-sentencepiece",
                                 "mistral-metaspace", "gpt2-roberta", "edge-bpe"};

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    b[len] = '\0';
    if (n) *n = (size_t)len;
    return b;
}

static cJSON *load_json(const char *path) {
    char *text = slurp(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

/* A string of a case: c[key], or c[key + "_hex"] for strings holding U+0000. */
static char *case_string(const cJSON *c, const char *key, size_t *n) {
    char hex_key[64];
    snprintf(hex_key, sizeof hex_key, "%s_hex", key);
    const cJSON *hex = cJSON_GetObjectItem(c, hex_key);
    if (hex) {
        size_t h = strlen(hex->valuestring);
        char *t = malloc(h / 2 + 1);
        for (size_t i = 0; i < h / 2; i++) {
            unsigned v;
            sscanf(hex->valuestring + 2 * i, "%2x", &v);
            t[i] = (char)v;
        }
        *n = h / 2;
        return t;
    }
    const char *s = cJSON_GetObjectItem(c, key)->valuestring;
    *n = strlen(s);
    return strdup(s);
}

static char *case_text(const cJSON *c, size_t *n) { return case_string(c, "text", n); }

static void expect_ids(const char *family, const char *name, const char *key, const cJSON *want,
                       const int32_t *got, size_t n) {
    size_t wn = (size_t)cJSON_GetArraySize(want);
    if (wn != n) fail_msg("%s/%s %s: %zu ids, HF gives %zu", family, name, key, n, wn);
    size_t i = 0;
    for (const cJSON *x = want->child; x; x = x->next, i++)
        if ((int32_t)x->valuedouble != got[i])
            fail_msg("%s/%s %s: id %zu is %d, HF gives %d", family, name, key, i, (int)got[i], (int)x->valuedouble);
}

static int32_t *ids_of(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    size_t i = 0;
    for (const cJSON *x = arr->child; x; x = x->next) v[i++] = (int32_t)x->valuedouble;
    return v;
}

static void expect_decode(const et_tokenizer *t, const char *family, const cJSON *c, const char *ids_key, int skip,
                          const char *want_key) {
    size_t n, len, want_len;
    int32_t *v = ids_of(cJSON_GetObjectItem(c, ids_key), &n);
    char *text, *want = case_string(c, want_key, &want_len);
    et_error err;
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    if (et_tokenizer_decode(t, v, n, skip, &text, &len, &err)) fail_msg("%s/%s decode: %s", family, name, err.msg);
    if (len != want_len || memcmp(text, want, len))
        fail_msg("%s/%s decode(%s, skip_special=%d) differs from HF", family, name, ids_key, skip);
    free(text);
    free(want);
    free(v);
}

static void hf_parity(void **state) {
    (void)state;
    size_t total = 0;
    for (size_t f = 0; f < sizeof FAMILIES / sizeof *FAMILIES; f++) {
        const char *fam = FAMILIES[f];
        char path[512];
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", FIXTURES, fam);
        et_tokenizer *t;
        et_error err;
        if (et_tokenizer_load(&t, path, &err)) fail_msg("%s", err.msg);
        snprintf(path, sizeof path, "%s/%s/expected.json", FIXTURES, fam);
        cJSON *exp = load_json(path);
        assert_int_equal(et_tokenizer_vocab_size(t), (int)cJSON_GetObjectItem(exp, "vocab_size")->valuedouble);
        const cJSON *cases = cJSON_GetObjectItem(exp, "cases");
        assert_true(cJSON_GetArraySize(cases) >= 100);
        for (const cJSON *c = cases->child; c; c = c->next) {
            const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
            size_t len, n;
            char *text = case_text(c, &len);
            static const struct { const char *key; int flags; } runs[] = {
                {"ids", 0}, {"ids_special", ET_TOK_ADD_SPECIAL}, {"ids_split_special", ET_TOK_SPLIT_SPECIAL}};
            for (int r = 0; r < 3; r++) {
                int32_t *ids;
                if (et_tokenizer_encode(t, text, len, runs[r].flags, &ids, &n, &err))
                    fail_msg("%s/%s: %s", fam, name, err.msg);
                expect_ids(fam, name, runs[r].key, cJSON_GetObjectItem(c, runs[r].key), ids, n);
                total += n;
                free(ids);
            }
            expect_decode(t, fam, c, "ids", 0, "decoded");
            expect_decode(t, fam, c, "ids_special", 0, "decoded_special");
            expect_decode(t, fam, c, "ids_special", 1, "decoded_special_skip");
            free(text);
        }
        cJSON_Delete(exp);
        et_tokenizer_free(t);
    }
    print_message("matched %zu ids over %zu tokenizers\n", total, sizeof FAMILIES / sizeof *FAMILIES);
}

/* Byte-level BPE without a normalizer loses nothing: decode(encode(x)) == x, bytes. */
static void bytelevel_round_trip(void **state) {
    (void)state;
    const char *fams[] = {"llama3-bytelevel", "demo-bytelevel"};
    for (int f = 0; f < 2; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", FIXTURES, fams[f]);
        et_tokenizer *t;
        et_error err;
        assert_int_equal(et_tokenizer_load(&t, path, &err), 0);
        snprintf(path, sizeof path, "%s/%s/expected.json", FIXTURES, fams[f]);
        cJSON *exp = load_json(path);
        for (const cJSON *c = cJSON_GetObjectItem(exp, "cases")->child; c; c = c->next) {
            size_t len, n, back_len;
            char *text = case_text(c, &len), *back;
            int32_t *ids;
            assert_int_equal(et_tokenizer_encode(t, text, len, 0, &ids, &n, &err), 0);
            assert_int_equal(et_tokenizer_decode(t, ids, n, 0, &back, &back_len, &err), 0);
            assert_int_equal(back_len, len);
            assert_memory_equal(back, text, len);
            assert_int_equal(back[back_len], '\0');
            free(back), free(ids), free(text);
        }
        cJSON_Delete(exp);
        et_tokenizer_free(t);
    }
}

/* The hard text of tests/fixtures/tokenizers/hard.txt is the "hard" case's text. */
static void hard_txt_is_the_hard_case(void **state) {
    (void)state;
    size_t n;
    char *hard = slurp(FIXTURES "/hard.txt", &n);
    cJSON *exp = load_json(FIXTURES "/llama3-bytelevel/expected.json");
    const cJSON *c = cJSON_GetObjectItem(exp, "cases")->child;
    assert_string_equal(cJSON_GetObjectItem(c, "name")->valuestring, "hard");
    assert_string_equal(cJSON_GetObjectItem(c, "text")->valuestring, hard);
    cJSON_Delete(exp);
    free(hard);
}

static void token_lookup(void **state) {
    (void)state;
    et_tokenizer *t;
    et_error err;
    assert_int_equal(et_tokenizer_load(&t, FIXTURES "/llama3-bytelevel/tokenizer.json", &err), 0);
    cJSON *j = load_json(FIXTURES "/llama3-bytelevel/tokenizer.json");
    int found = 0;
    for (const cJSON *a = cJSON_GetObjectItem(j, "added_tokens")->child; a; a = a->next) {
        const char *content = cJSON_GetObjectItem(a, "content")->valuestring;
        int id = (int)cJSON_GetObjectItem(a, "id")->valuedouble;
        assert_int_equal(et_tokenizer_token_id(t, content), id);
        found += !strcmp(content, "<|eot_id|>");
        size_t len;
        const char *back = et_tokenizer_token_text(t, id, &len);
        assert_non_null(back);
        assert_int_equal(len, strlen(content));
        assert_memory_equal(back, content, len);
    }
    assert_int_equal(found, 1);
    const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab");
    for (const cJSON *v = vocab->child; v; v = v->next) assert_int_equal(et_tokenizer_token_id(t, v->string), (int)v->valuedouble);
    assert_int_equal(et_tokenizer_token_id(t, "no such token in this vocabulary"), -1);
    size_t len;
    assert_null(et_tokenizer_token_text(t, -1, &len));
    assert_null(et_tokenizer_token_text(t, et_tokenizer_vocab_size(t), &len));
    cJSON_Delete(j);
    et_tokenizer_free(t);
}

/* ---------------------------------------------------- hand-checked BPE --- */

/* Vocabulary a b c ab bc abc <s>; merges (a,b) rank 0, (ab,c) rank 1, (b,c) rank 2. */
static const char *TINY =
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":6,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,"
    "\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[6],"
    "\"tokens\":[\"<s>\"]}}},\"decoder\":null,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
    "\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5},\"merges\":[[\"a\",\"b\"],[\"ab\",\"c\"],[\"b\",\"c\"]]}}";

static void expect_encode(const et_tokenizer *t, const char *text, int flags, const int32_t *want, size_t wn) {
    int32_t *ids;
    size_t n;
    et_error err;
    assert_int_equal(et_tokenizer_encode(t, text, strlen(text), flags, &ids, &n, &err), 0);
    assert_int_equal(n, wn);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
}

static void tiny_bpe_by_hand(void **state) {
    (void)state;
    et_tokenizer *t;
    et_error err;
    if (et_tokenizer_load_json(&t, TINY, strlen(TINY), "tiny.json", &err)) fail_msg("%s", err.msg);
    assert_int_equal(et_tokenizer_vocab_size(t), 7);
    /* abc: (a,b) first -> ab c -> (ab,c) -> abc */
    expect_encode(t, "abc", 0, (int32_t[]){5}, 1);
    /* bcab: (a,b) rank 0 at pos 2 first, then (b,c) rank 2 -> bc ab */
    expect_encode(t, "bcab", 0, (int32_t[]){4, 3}, 2);
    /* unknown characters vanish (no unk token, no byte fallback), as in HF, and their
     * neighbours then merge: a-b -> ab */
    expect_encode(t, "a-b", 0, (int32_t[]){3}, 1);
    /* the special token is never split, and the template adds BOS */
    expect_encode(t, "ab<s>c", ET_TOK_ADD_SPECIAL, (int32_t[]){6, 3, 6, 2}, 4);
    expect_encode(t, "", ET_TOK_ADD_SPECIAL, (int32_t[]){6}, 1);
    expect_encode(t, "", 0, NULL, 0);
    /* --split-special: "<s>" is text; '<', 's', '>' are not in the vocabulary */
    expect_encode(t, "a<s>", ET_TOK_SPLIT_SPECIAL, (int32_t[]){0}, 1);
    char *text;
    size_t len;
    /* no decoder: tokens joined by spaces; skip_special drops <s> */
    assert_int_equal(et_tokenizer_decode(t, (int32_t[]){6, 5, 0}, 3, 0, &text, &len, &err), 0);
    assert_string_equal(text, "<s> abc a");
    free(text);
    assert_int_equal(et_tokenizer_decode(t, (int32_t[]){6, 5, 0}, 3, 1, &text, &len, &err), 0);
    assert_string_equal(text, "abc a");
    free(text);
    assert_int_not_equal(et_tokenizer_decode(t, (int32_t[]){0, 7}, 2, 0, &text, &len, &err), 0);
    assert_non_null(strstr(err.msg, "position 1"));
    assert_int_not_equal(et_tokenizer_decode(t, (int32_t[]){-1}, 1, 0, &text, &len, &err), 0);
    et_tokenizer_free(t);
}

static void invalid_utf8_is_refused_with_offset(void **state) {
    (void)state;
    et_tokenizer *t;
    et_error err;
    assert_int_equal(et_tokenizer_load(&t, FIXTURES "/llama3-bytelevel/tokenizer.json", &err), 0);
    static const struct { const char *text; size_t len, offset; } bad[] = {
        {"ab\xff", 3, 2},                 /* never a UTF-8 byte */
        {"x\xc0\xaf", 3, 1},              /* overlong '/' */
        {"\xed\xa0\x80", 3, 0},           /* surrogate U+D800 */
        {"ok \xe2\x82", 5, 3},            /* truncated euro sign */
        {"\xf4\x90\x80\x80", 4, 0},       /* above U+10FFFF */
        {"caf\xc3\xa9 \x80", 7, 6},       /* stray continuation byte after valid text */
        {"0123456789abcdef\xfe", 17, 16}, /* after the 8-byte ASCII fast path */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        assert_int_not_equal(et_tokenizer_encode(t, bad[i].text, bad[i].len, 0, &ids, &n, &err), 0);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].offset);
        if (!strstr(err.msg, want)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, want);
        assert_null(ids);
        assert_int_equal(n, 0);
    }
    /* U+0000 and the largest code point are valid */
    int32_t *ids;
    size_t n;
    assert_int_equal(et_tokenizer_encode(t, "a\0b\xf4\x8f\xbf\xbf", 7, 0, &ids, &n, &err), 0);
    free(ids);
    et_tokenizer_free(t);
}

/* An added token marked `normalized` decodes as HF's id_to_token gives it: normalized
 * ("a<s>" under Prepend "a"), and so is not skipped as special (HF compares the text
 * with the special contents). Values from tokenizers 0.23.3 on the same file. */
static void normalized_added_token_decodes_as_hf(void **state) {
    (void)state;
    const char *json =
        "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":6,\"content\":\"<s>\",\"single_word\":false,"
        "\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":true}],"
        "\"normalizer\":{\"type\":\"Prepend\",\"prepend\":\"a\"},\"pre_tokenizer\":null,\"post_processor\":null,"
        "\"decoder\":null,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
        "\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5},"
        "\"merges\":[[\"a\",\"b\"],[\"ab\",\"c\"],[\"b\",\"c\"]]}}";
    et_tokenizer *t;
    et_error err;
    if (et_tokenizer_load_json(&t, json, strlen(json), "norm.json", &err)) fail_msg("%s", err.msg);
    size_t len;
    const char *tt = et_tokenizer_token_text(t, 6, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(tt, "a<s>", 4);
    const int32_t ids[] = {0, 6, 1};
    for (int skip = 0; skip < 2; skip++) {
        char *text;
        assert_int_equal(et_tokenizer_decode(t, ids, 3, skip, &text, &len, &err), 0);
        assert_int_equal(len, strlen("a a<s> b"));
        assert_memory_equal(text, "a a<s> b", len);
        free(text);
    }
    const int32_t want[] = {6, 1};
    expect_encode(t, "<s>b", 0, want, 2);
    et_tokenizer_free(t);
}

/* NFC's canonical reordering of a long run of combining marks (counting sort past 32
 * marks: insertion was quadratic), against Python's unicodedata.normalize("NFC"):
 * a + (U+0301 U+0323)×40 + b + U+0323 U+0301 -> U+1EA1, U+0323×39, U+0301×40, U+1E05, U+0301. */
static void nfc_orders_a_long_run_of_marks(void **state) {
    (void)state;
    char in[512], want[512];
    size_t n = 0, w = 0;
    n += et_utf8_put(in + n, 'a');
    for (int i = 0; i < 40; i++) n += et_utf8_put(in + n, 0x301), n += et_utf8_put(in + n, 0x323);
    n += et_utf8_put(in + n, 'b');
    n += et_utf8_put(in + n, 0x323), n += et_utf8_put(in + n, 0x301);
    w += et_utf8_put(want + w, 0x1EA1);
    for (int i = 0; i < 39; i++) w += et_utf8_put(want + w, 0x323);
    for (int i = 0; i < 40; i++) w += et_utf8_put(want + w, 0x301);
    w += et_utf8_put(want + w, 0x1E05);
    w += et_utf8_put(want + w, 0x301);
    char *out = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(et_nfc_append(&out, &len, &cap, in, n), 0);
    assert_int_equal(len, w);
    assert_memory_equal(out, want, w);
    free(out);
}

/* ------------------------------------------------------------ bad files --- */

/* TINY with one substring replaced; must fail to load with both substrings in the error. */
static void expect_bad(const char *from, const char *to, const char *msg_part) {
    const char *at = strstr(TINY, from);
    if (!at) fail_msg("test bug: '%s' not in TINY", from);
    size_t a = (size_t)(at - TINY), n = strlen(TINY) - strlen(from) + strlen(to);
    char *j = malloc(n + 1);
    memcpy(j, TINY, a);
    memcpy(j + a, to, strlen(to));
    strcpy(j + a + strlen(to), at + strlen(from));
    et_tokenizer *t = (et_tokenizer *)1;
    et_error err;
    if (!et_tokenizer_load_json(&t, j, n, "bad.json", &err)) fail_msg("loaded although %s -> %s", from, to);
    assert_null(t);
    if (!strstr(err.msg, "bad.json") || !strstr(err.msg, msg_part))
        fail_msg("error for %s -> %s is '%s', expected it to name '%s'", from, to, err.msg, msg_part);
    free(j);
}

static void bad_files_are_refused(void **state) {
    (void)state;
    expect_bad("{\"version\"", "[{\"version\"", "not valid JSON");
    expect_bad("\"model\":{\"type\":\"BPE\"", "\"model\":{\"type\":\"WordPiece\"", "model type 'WordPiece'");
    expect_bad("\"model\":{\"type\":\"BPE\",", "\"model\":{", "model.type");
    expect_bad("\"model\":{", "\"mode\":{", "model: missing");
    expect_bad("\"normalizer\":null", "\"normalizer\":{\"type\":\"NFKC\"}", "normalizer type 'NFKC'");
    expect_bad("\"normalizer\":null", "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
               "{\"type\":\"Lowercase\"}]}", "normalizer.normalizers[1]: normalizer type 'Lowercase'");
    expect_bad("\"normalizer\":null", "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"x+\"},"
               "\"content\":\"y\"}", "Regex");
    expect_bad("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Whitespace\"}", "pre-tokenizer type 'Whitespace'");
    expect_bad("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d+\"},"
               "\"behavior\":\"Isolated\",\"invert\":false}", "Split regex '\\d+' is not supported");
    expect_bad("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},"
               "\"behavior\":\"Sideways\",\"invert\":false}", "pre_tokenizer.behavior");
    expect_bad("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
               "\"ByteLevel\"},{\"type\":\"Metaspace\",\"replacement\":\"_\"}]}", "after ByteLevel");
    expect_bad("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}",
               "exactly one character");
    expect_bad("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"_\","
               "\"prepend_scheme\":\"sometimes\"}", "prepend_scheme");
    expect_bad("\"decoder\":null", "\"decoder\":{\"type\":\"WordPiece\"}", "decoder type 'WordPiece'");
    expect_bad("\"decoder\":null", "\"decoder\":{\"type\":\"Strip\",\"content\":\" \",\"start\":-1,\"stop\":0}",
               "decoder.start");
    expect_bad("\"post_processor\":{\"type\":\"TemplateProcessing\"", "\"post_processor\":{\"type\":\"Unknown\"",
               "post-processor type 'Unknown'");
    expect_bad("\"ids\":[6]", "\"ids\":[99]", "outside the vocabulary");
    expect_bad("{\"SpecialToken\":{\"id\":\"<s>\"", "{\"SpecialToken\":{\"id\":\"</s>\"", "not in post_processor.special_tokens");
    expect_bad("{\"Sequence\":{\"id\":\"A\"", "{\"Sequence\":{\"id\":\"B\"", "only A exists");
    expect_bad("\"dropout\":null", "\"dropout\":0.1", "model.dropout");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"a\":-3,", "model.vocab['a']");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"a\":0.5,", "model.vocab['a']");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"a\":\"zero\",", "model.vocab['a']");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"a\":1,", "share id 1");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"a\":0,\"z\":20000000,", "model.vocab['z']: expected an integer");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"a\":0,\"a\":7,", "appears twice");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"\\u0000\":9,\"a\":0,", "\\u0000");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":[1],\"x\":{\"a\":0,", "model.vocab: expected an object");
    expect_bad("[\"a\",\"b\"],", "[\"a\",\"z\"],", "model.merges[0]: token 'z' is not in model.vocab");
    expect_bad("[\"b\",\"c\"]]", "[\"c\",\"c\"]]", "merges[2]: the merged token 'cc'");
    expect_bad("[\"a\",\"b\"],", "\"a b\",", "mixes");
    expect_bad("[[\"a\",\"b\"],[\"ab\",\"c\"],[\"b\",\"c\"]]", "[\"a b\",\"abc\"]", "merges[1]: expected two tokens");
    expect_bad("[[\"a\",\"b\"],[\"ab\",\"c\"],[\"b\",\"c\"]]", "[\"a b\",\"ab c d\"]", "merges[1]");
    expect_bad("[[\"a\",\"b\"],", "[[\"a\"],", "merges[0]");
    expect_bad("{\"id\":6,\"content\":\"<s>\"", "{\"id\":6,\"content\":\"abc\"", "model.vocab gives it 5");
    expect_bad("{\"id\":6,", "{\"id\":\"6\",", "added_tokens[0].id");
    expect_bad("\"special\":true}", "\"special\":1}", "added_tokens[0].special");
    expect_bad("\"added_tokens\":[", "\"added_tokens\":[{\"id\":6,\"content\":\"<s>\"},", "appears twice");
    /* HF numbers added tokens itself (file order, after the vocabulary): other ids in
     * the file, or an id the vocabulary (with a hole) gives to another token, refused */
    expect_bad("{\"id\":6,\"content\":\"<s>\"", "{\"id\":9,\"content\":\"<s>\"", "gives it 6");
    expect_bad("\"added_tokens\":[", "\"added_tokens\":[{\"id\":6,\"content\":\"<x>\"},", "'<s>' has id 6, but");
    expect_bad("\"abc\":5}", "\"abc\":6}", "'<s>' has id 6, which model.vocab gives to another token");
    /* Metaspace "first" reads original offsets, which a deleting Replace moves */
    expect_bad("\"normalizer\":null,\"pre_tokenizer\":null",
               "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"x\"},\"content\":\"\"},"
               "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"first\"}",
               "prepend_scheme \"first\" is not supported");
    expect_bad("\"unk_token\":null", "\"unk_token\":7", "model.unk_token");
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"\\xff\":8,\"a\":0,", "not valid JSON"); /* bad escape */
    expect_bad("\"vocab\":{\"a\":0,", "\"vocab\":{\"\xff\":8,\"a\":0,", "not valid UTF-8");
    expect_bad("}}}", "}}", "not valid JSON");
}

static void file_errors_name_the_file(void **state) {
    (void)state;
    et_tokenizer *t;
    et_error err;
    assert_int_not_equal(et_tokenizer_load(&t, "/nonexistent/tokenizer.json", &err), 0);
    assert_non_null(strstr(err.msg, "/nonexistent/tokenizer.json"));
    /* a real file cut in half, and an empty one */
    size_t n;
    char *whole = slurp(FIXTURES "/llama3-bytelevel/tokenizer.json", &n);
    char path[] = "/tmp/et_test_tok_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, whole, n / 2), (ssize_t)(n / 2));
    close(fd);
    assert_int_not_equal(et_tokenizer_load(&t, path, &err), 0);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "not valid JSON"));
    assert_null(t);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_not_equal(et_tokenizer_load(&t, path, &err), 0);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    free(whole);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hf_parity),
        cmocka_unit_test(bytelevel_round_trip),
        cmocka_unit_test(hard_txt_is_the_hard_case),
        cmocka_unit_test(token_lookup),
        cmocka_unit_test(tiny_bpe_by_hand),
        cmocka_unit_test(invalid_utf8_is_refused_with_offset),
        cmocka_unit_test(normalized_added_token_decodes_as_hf),
        cmocka_unit_test(nfc_orders_a_long_run_of_marks),
        cmocka_unit_test(bad_files_are_refused),
        cmocka_unit_test(file_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
