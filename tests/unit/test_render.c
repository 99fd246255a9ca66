/* Record rendering (data/render.c) against HF: for chat records, the ids and the
 * assistant-token mask of tokenizer.apply_chat_template with each model's official
 * template (Llama 3 Instruct, Llama 2 chat, Qwen2 ChatML); for prompt/response records,
 * TRL's convention (prompt and response encoded together, the response's tokens past
 * the prompt's). tests/crosscheck/make_chat_fixtures.py wrote the references into
 * tests/fixtures/tokenizers/chat_render.json from the committed fixture tokenizers; ids
 * and masks must match exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "data/render.h"
#include "data/tokenizer.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static void renders_as_hf(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/chat_render.json", EHRTUNE_SOURCE_DIR);
    char *json = slurp(path);
    if (!json) fail_msg("%s: missing (tests/crosscheck/make_chat_fixtures.py writes it)", path);
    cJSON *doc = cJSON_Parse(json);
    free(json);
    assert_non_null(doc);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases"), *c;
    int n_cases = 0, n_failed = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *fix = cJSON_GetObjectItemCaseSensitive(c, "tokenizer")->valuestring;
        const char *tmpl = cJSON_GetObjectItemCaseSensitive(c, "template")->valuestring;
        const cJSON *want_ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
        const cJSON *want_mask = cJSON_GetObjectItemCaseSensitive(c, "mask");
        char tpath[1024];
        snprintf(tpath, sizeof tpath, "%s/tests/fixtures/tokenizers/%s/tokenizer.json",
                 EHRTUNE_SOURCE_DIR, fix);
        et_error err = {{0}};
        et_tokenizer *tok = NULL;
        et_chat_template chat;
        et_renderer r;
        et_doc d = {0};
        if (et_tokenizer_load(&tok, tpath, &err) || et_chat_template_parse(tmpl, &chat, &err) ||
            et_renderer_init(&r, tok, chat, NULL, &err) ||
            et_render_record(&d, &r, cJSON_GetObjectItemCaseSensitive(c, "record"), &err))
            fail_msg("case %d (%s, %s): %s", n_cases, fix, tmpl, err.msg);
        const int n = cJSON_GetArraySize(want_ids);
        int first_bad = -1;
        for (int i = 0; i < n && i < (int)d.n && first_bad < 0; i++)
            if (d.ids[i] != cJSON_GetArrayItem(want_ids, i)->valueint ||
                d.mask[i] != cJSON_GetArrayItem(want_mask, i)->valueint)
                first_bad = i;
        if (first_bad < 0 && (int)d.n != n) first_bad = (int)d.n < n ? (int)d.n : n;
        if (first_bad >= 0) {
            print_message("case %d (%s, %s): %zu tokens vs HF's %d, first difference at %d "
                          "(ehrtune %d/%d, HF %d/%d)\n",
                          n_cases, fix, tmpl, d.n, n, first_bad,
                          first_bad < (int)d.n ? d.ids[first_bad] : -1,
                          first_bad < (int)d.n ? d.mask[first_bad] : -1,
                          first_bad < n ? cJSON_GetArrayItem(want_ids, first_bad)->valueint : -1,
                          first_bad < n ? cJSON_GetArrayItem(want_mask, first_bad)->valueint : -1);
            n_failed++;
        }
        et_doc_free(&d);
        et_tokenizer_free(tok);
        n_cases++;
    }
    cJSON_Delete(doc);
    assert_true(n_cases >= 30);
    if (n_failed) fail_msg("%d of %d records render differently from HF", n_failed, n_cases);
}

/* The llama2 template refuses what the official one refuses: roles out of order. */
static void llama2_refuses_roles_out_of_order(void **state) {
    (void)state;
    char tpath[1024];
    snprintf(tpath, sizeof tpath, "%s/tests/fixtures/tokenizers/llama2-sentencepiece/tokenizer.json",
             EHRTUNE_SOURCE_DIR);
    et_error err = {{0}};
    et_tokenizer *tok = NULL;
    et_renderer r;
    assert_int_equal(et_tokenizer_load(&tok, tpath, &err), 0);
    assert_int_equal(et_renderer_init(&r, tok, ET_CHAT_LLAMA2, NULL, &err), 0);
    static const char *const bad[] = {
        "{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"system\", \"content\": \"c\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *rec = cJSON_Parse(bad[i]);
        et_doc d = {0};
        assert_int_not_equal(et_render_record(&d, &r, rec, &err), 0);
        assert_non_null(strstr(err.msg, "alternating"));
        et_doc_free(&d);
        cJSON_Delete(rec);
    }
    et_tokenizer_free(tok);
}

/* Structured numbers print exactly (found 2026-11-27: %g made {"mrn": 1234567}
 * "1.23457e+06", changing the value and hiding it from the PHI scan). */
static void structured_numbers_print_exactly(void **state) {
    (void)state;
    cJSON *st = cJSON_Parse("{\"mrn\": 1234567, \"labs\": {\"k\": 4.1, \"x\": 0.1, \"wbc\": 11000, "
                            "\"neg\": -2.5, \"i\": -7, \"z\": -0, \"e\": 1e5, \"tiny\": 1.5e-7, "
                            "\"third\": 0.3333333333333333, \"max\": 9007199254740991, "
                            "\"small\": 1.25e-300}}");
    assert_non_null(st);
    char *out = NULL;
    et_error err = {{0}};
    assert_int_equal(et_render_structured(&out, st, &err), 0);
    assert_string_equal(out, "Structured data:\n"
                             "Labs: k 4.1; x 0.1; wbc 11000; neg -2.5; i -7; z 0; e 100000; "
                             "tiny 1.5e-07; third 0.3333333333333333; max 9007199254740991; "
                             "small 1.25e-300.\n"
                             "Mrn: 1234567.\n\n");
    free(out);
    cJSON_Delete(st);
    /* A whole number past 2^53 lost digits when the JSON was read, and would print as
     * 1.2345678901234567e+19 where the PHI scan does not look: refused, naming no key. */
    const char *lossy[] = {"{\"zq_key\": 12345678901234567890}", "{\"labs\": {\"x\": -1e300}}",
                           "{\"a\": [1, 9007199254740992]}"};
    for (int i = 0; i < 3; i++) {
        st = cJSON_Parse(lossy[i]);
        assert_non_null(st);
        assert_int_equal(et_render_structured(&out, st, &err), -1);
        assert_null(out);
        assert_non_null(strstr(err.msg, "2^53"));
        assert_null(strstr(err.msg, "zq_key"));
        cJSON_Delete(st);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(renders_as_hf),
                                       cmocka_unit_test(llama2_refuses_roles_out_of_order),
                                       cmocka_unit_test(structured_numbers_print_exactly)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
