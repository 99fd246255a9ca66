#include "data/render.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- chat templates ------------------------------------------------------------ */

static const char *const CHAT_NAMES[] = {"none", "llama3", "llama2", "chatml"};

/* Control tokens each template needs, in et_renderer.ctl order. */
static const char *const CHAT_TOKENS[][4] = {
    {NULL},
    {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
    {"<s>", "</s>", NULL},
    {"<|im_start|>", "<|im_end|>", NULL},
};

int et_chat_template_parse(const char *name, et_chat_template *out, et_error *err) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, CHAT_NAMES[i])) {
            *out = (et_chat_template)i;
            return 0;
        }
    return et_fail(err, "unknown chat template '%s' (valid: llama3, llama2, chatml, none)", name);
}

const char *et_chat_template_name(et_chat_template t) {
    return (unsigned)t < 4 ? CHAT_NAMES[t] : "?";
}

int et_renderer_init(et_renderer *r, const et_tokenizer *tok, et_chat_template chat,
                     const char *eos_token, et_error *err) {
    memset(r, 0, sizeof *r);
    r->tok = tok;
    r->chat = chat;
    /* BOS: whatever the tokenizer's own post-processor puts before a text (HF
     * add_special_tokens=True), so documents start as HF would encode them. */
    int32_t *ids;
    size_t n;
    if (et_tokenizer_encode(tok, "", 0, ET_TOK_ADD_SPECIAL, &ids, &n, err)) return -1;
    r->bos = n >= 1 ? ids[0] : -1;
    free(ids);
    r->eos = -1;
    if (eos_token) {
        r->eos = et_tokenizer_token_id(tok, eos_token);
        if (r->eos < 0)
            return et_fail(err, "--eos-token '%s' is not a token of the tokenizer", eos_token);
    } else {
        static const char *const candidates[] = {"<|end_of_text|>", "</s>", "<|endoftext|>",
                                                 "<|im_end|>"};
        for (size_t i = 0; i < 4 && r->eos < 0; i++)
            r->eos = et_tokenizer_token_id(tok, candidates[i]);
    }
    for (int i = 0; i < 4 && CHAT_TOKENS[chat][i]; i++) {
        r->ctl[i] = et_tokenizer_token_id(tok, CHAT_TOKENS[chat][i]);
        if (r->ctl[i] < 0)
            return et_fail(err, "chat template %s needs the token %s, which the tokenizer "
                                "lacks (choose the template of this model family with "
                                "--chat-template)",
                           CHAT_NAMES[chat], CHAT_TOKENS[chat][i]);
    }
    return 0;
}

/* ---- documents -------------------------------------------------------------------- */

void et_doc_free(et_doc *d) {
    free(d->ids);
    free(d->mask);
    memset(d, 0, sizeof *d);
}

static int doc_reserve(et_doc *d, size_t more, et_error *err) {
    if (d->n + more <= d->cap) return 0;
    size_t cap = d->cap ? d->cap : 256;
    while (cap < d->n + more) cap *= 2;
    int32_t *ids = realloc(d->ids, cap * sizeof *ids);
    if (ids) d->ids = ids;
    uint8_t *mask = realloc(d->mask, cap);
    if (mask) d->mask = mask;
    if (!ids || !mask) return et_fail(err, "out of memory for a document of %zu tokens", cap);
    d->cap = cap;
    return 0;
}

static int push_id(et_doc *d, int32_t id, int target, et_error *err) {
    if (id < 0) return 0;
    if (doc_reserve(d, 1, err)) return -1;
    d->ids[d->n] = id;
    d->mask[d->n++] = (uint8_t)target;
    return 0;
}

/* Encodes text (special-token text stays plain text) and appends it. `field` names
 * the record field for error messages. */
static int push_text(et_doc *d, const et_renderer *r, const char *text, size_t len, int target,
                     const char *field, et_error *err) {
    int32_t *ids;
    size_t n;
    if (et_tokenizer_encode(r->tok, text, len, ET_TOK_SPLIT_SPECIAL, &ids, &n, err))
        return et_wrap(err, "field \"%s\"", field);
    int rc = doc_reserve(d, n, err);
    if (!rc) {
        memcpy(d->ids + d->n, ids, n * sizeof *ids);
        memset(d->mask + d->n, target, n);
        d->n += n;
    }
    free(ids);
    return rc;
}

/* One stretch of text between two control tokens, encoded in ONE call as HF encodes
 * the rendered template (a stretch is one segment of HF's input; encoding its pieces
 * apart loses merges across them and, with SentencePiece normalizers, adds a ▁ to
 * each piece — found 2026-11-26 in the Llama 2 template). `pre` gets mask 0 and
 * `tgt` mask `target`: tokens of pre+tgt past the longest prefix they share with pre
 * alone — tgt's, and a token merged across the boundary — are targets, as HF's
 * assistant-token mask marks every token that overlaps the generated span (and as
 * TRL finds a completion's tokens). cont: the stretch follows a control token
 * (ET_TOK_CONTINUATION). */
static int push_segment(et_doc *d, const et_renderer *r, const char *pre, size_t pre_len,
                        const char *tgt, size_t tgt_len, int target, int cont, const char *field,
                        et_error *err) {
    const int flags = ET_TOK_SPLIT_SPECIAL | (cont ? ET_TOK_CONTINUATION : 0);
    char *text = malloc(pre_len + tgt_len + 1);
    if (!text) return et_fail(err, "out of memory");
    memcpy(text, pre, pre_len);
    memcpy(text + pre_len, tgt, tgt_len);
    int32_t *ids = NULL, *pre_ids = NULL;
    size_t n = 0, n_pre = 0, k = 0;
    int rc = et_tokenizer_encode(r->tok, text, pre_len + tgt_len, flags, &ids, &n, err);
    if (!rc && target && tgt_len && pre_len)
        rc = et_tokenizer_encode(r->tok, pre, pre_len, flags, &pre_ids, &n_pre, err);
    free(text);
    if (rc) {
        free(ids);
        return et_wrap(err, "field \"%s\"", field);
    }
    if (!(target && tgt_len)) k = n;    /* all of it context */
    else if (pre_len)
        while (k < n && k < n_pre && ids[k] == pre_ids[k]) k++;
    rc = doc_reserve(d, n, err);
    if (!rc) {
        memcpy(d->ids + d->n, ids, n * sizeof *ids);
        memset(d->mask + d->n, 0, k);
        memset(d->mask + d->n + k, target ? 1 : 0, n - k);
        d->n += n;
    }
    free(ids);
    free(pre_ids);
    return rc;
}

/* ---- structured fields -------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    int oom, lossy; /* lossy: a whole number past 2^53 was seen */
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A number as exact text: an integer (|v| < 2^53) as an integer, anything else in the
 * fewest significant digits (15, 16 or 17) that read back as the same double. %g
 * printed 6 digits: {"mrn": 1234567} became "1.23457e+06", which both changed the
 * value the model saw and hid the identifier from the PHI scan (found 2026-11-26). */
static void format_number(char *out, size_t cap, double v) {
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, cap, "%lld", (long long)v);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, cap, "%.*g", digits, v);
        if (strtod(out, NULL) == v) return;
    }
}

static void sb_value(sbuf *b, const cJSON *v) {
    char num[64];
    if (cJSON_IsString(v)) sb_str(b, v->valuestring);
    else if (cJSON_IsNumber(v)) {
        /* A whole number past 2^53 has lost digits when the JSON was read (and would
         * print in exponent form, out of the PHI scan's reach): refused. */
        if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) >= 9007199254740992.0)
            b->lossy = 1;
        format_number(num, sizeof num, v->valuedouble);
        sb_str(b, num);
    } else if (cJSON_IsBool(v)) sb_str(b, cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsNull(v)) sb_str(b, "unknown");
    else if (cJSON_IsArray(v)) {
        int first = 1;
        for (const cJSON *e = v->child; e; e = e->next, first = 0) {
            if (!first) sb_str(b, ", ");
            sb_value(b, e);
        }
    } else { /* object: "name value; name value" */
        int first = 1;
        for (const cJSON *e = v->child; e; e = e->next, first = 0) {
            if (!first) sb_str(b, "; ");
            sb_str(b, e->string);
            sb_str(b, " ");
            sb_value(b, e);
        }
    }
}

static void sb_section(sbuf *b, const char *title, const cJSON *v) {
    sb_str(b, title);
    sb_str(b, ": ");
    sb_value(b, v);
    sb_str(b, ".\n");
}

int et_render_structured(char **out, const cJSON *st, et_error *err) {
    *out = NULL;
    if (!cJSON_IsObject(st)) return et_fail(err, "field \"structured\" is not an object");
    static const char *const known[][2] = {{"vitals", "Vitals"},
                                           {"labs", "Labs"},
                                           {"diagnoses", "Diagnoses (ICD-10)"},
                                           {"medications", "Medications"}};
    sbuf b = {0};
    sb_str(&b, "Structured data:\n");
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, known[k][0]);
        if (v && !cJSON_IsNull(v)) sb_section(&b, known[k][1], v);
    }
    for (const cJSON *v = st->child; v; v = v->next) {
        int is_known = 0;
        for (int k = 0; k < 4; k++) is_known |= !strcmp(v->string, known[k][0]);
        if (is_known || cJSON_IsNull(v)) continue;
        char title[96];
        snprintf(title, sizeof title, "%s", v->string);
        for (char *p = title; *p; p++)
            if (*p == '_') *p = ' ';
        title[0] = (char)toupper((unsigned char)title[0]);
        sb_section(&b, title, v);
    }
    sb_str(&b, "\n");
    if (b.oom || b.lossy) {
        free(b.s);
        return b.oom ? et_fail(err, "out of memory serialising \"structured\"")
                     : et_fail(err, "field \"structured\" holds a whole number of 2^53 or more, "
                                    "which JSON readers cannot keep exactly (an identifier?): "
                                    "give it as a string, or remove it");
    }
    *out = b.s;
    return 0;
}

/* ---- records -------------------------------------------------------------------------- */

static const char *str_field(const cJSON *rec, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Bytes of the whitespace character starting at s (0: none), in Python's str.isspace()
 * sense, which Jinja's `| trim` and str.strip() use: ASCII \t\n\v\f\r, U+001C-001F,
 * space, U+0085, U+00A0, U+1680, U+2000-200A, U+2028/2029, U+202F, U+205F, U+3000
 * (found 2026-11-26: C's isspace left NBSP and U+001C-001F in place). */
static size_t py_space_at(const unsigned char *s, size_t n) {
    if (!n) return 0;
    if ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20)) return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n < 3) return 0;
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;
    if (s[0] == 0xE2 && s[1] == 0x80 && (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return s[2] >= 0x80 ? 3 : 0;
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;
    return 0;
}

/* Leading/trailing whitespace removed as Python's str.strip() (the HF templates' `| trim`
 * and `.strip()`). */
static void trimmed(const char *s, size_t n, const char **start, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t k;
    while ((k = py_space_at(u, n))) u += k, n -= k;
    for (;;) { /* a trailing character: try each length that could end at n */
        size_t drop = 0;
        for (size_t w = 1; w <= 3 && w <= n && !drop; w++)
            if (py_space_at(u + n - w, w) == w) drop = w;
        if (!drop) break;
        n -= drop;
    }
    *start = (const char *)u;
    *len = n;
}

/* Text with the structured block in front (malloc'd), or a copy. */
static int with_structured(char **out, const char *structured, const char *text, size_t len,
                           et_error *err) {
    size_t sl = structured ? strlen(structured) : 0;
    *out = malloc(sl + len + 1);
    if (!*out) return et_fail(err, "out of memory");
    if (sl) memcpy(*out, structured, sl);
    memcpy(*out + sl, text, len);
    (*out)[sl + len] = 0;
    return 0;
}

/* A message's body: the structured block in front when asked (the first user message),
 * then the content; trimmed (`| trim` / `.strip()`) unless raw. */
typedef struct {
    char *text; /* malloc'd */
    const char *s;
    size_t n;
} body_t;

static int make_body(body_t *b, const char *structured, const char *content, int trim,
                     et_error *err) {
    if (with_structured(&b->text, structured, content, strlen(content), err)) return -1;
    b->s = b->text;
    b->n = strlen(b->text);
    if (trim) trimmed(b->text, b->n, &b->s, &b->n);
    return 0;
}

/* Llama 3 Instruct: <|begin_of_text|> once, then per message
 * <|start_header_id|>role<|end_header_id|> "\n\n" + trim(content) <|eot_id|>; an
 * assistant's content and <|eot_id|> are targets. */
static int render_llama3(et_doc *d, const et_renderer *r, const cJSON *msgs, const char *structured,
                         et_error *err) {
    int i = 0, first_user = 1;
    if (push_id(d, r->ctl[0], 0, err)) return -1;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const char *role = str_field(m, "role"), *content = str_field(m, "content");
        const int is_user = !strcmp(role, "user"), is_asst = !strcmp(role, "assistant");
        body_t b;
        if (make_body(&b, is_user && first_user ? structured : NULL, content, 1, err)) return -1;
        first_user &= !is_user;
        char field[32];
        snprintf(field, sizeof field, "messages[%d].content", i);
        int rc = push_id(d, r->ctl[1], 0, err) ||
                 push_segment(d, r, role, strlen(role), "", 0, 0, 1, "role", err) ||
                 push_id(d, r->ctl[2], 0, err) ||
                 push_segment(d, r, "\n\n", 2, b.s, b.n, is_asst, 1, field, err) ||
                 push_id(d, r->ctl[3], is_asst, err);
        free(b.text);
        if (rc) return -1;
    }
    return 0;
}

/* ChatML (Qwen2): per message <|im_start|> role + "\n" + content <|im_end|> "\n", the
 * content as it is (Qwen2's template does not trim); an assistant's content and
 * <|im_end|> are targets. The default system prompt Qwen2's template inserts when a
 * conversation has none is not added (docs/ingest.md). */
static int render_chatml(et_doc *d, const et_renderer *r, const cJSON *msgs, const char *structured,
                         et_error *err) {
    int i = 0, first_user = 1;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const char *role = str_field(m, "role"), *content = str_field(m, "content");
        const int is_user = !strcmp(role, "user"), is_asst = !strcmp(role, "assistant");
        body_t b;
        if (make_body(&b, is_user && first_user ? structured : NULL, content, 0, err)) return -1;
        first_user &= !is_user;
        char field[32];
        snprintf(field, sizeof field, "messages[%d].content", i);
        const size_t rl = strlen(role);
        char *head = malloc(rl + 2 + (is_asst ? 0 : b.n));
        int rc = !head ? et_fail(err, "out of memory") : 0;
        if (!rc) {
            memcpy(head, role, rl);
            head[rl] = '\n';
            if (!is_asst) memcpy(head + rl + 1, b.s, b.n); /* all context: one stretch */
            rc = push_id(d, r->ctl[0], 0, err) ||
                 push_segment(d, r, head, rl + 1 + (is_asst ? 0 : b.n), is_asst ? b.s : "",
                              is_asst ? b.n : 0, is_asst, 1, field, err) ||
                 push_id(d, r->ctl[1], is_asst, err) ||
                 push_segment(d, r, "\n", 1, "", 0, 0, 1, field, err);
        }
        free(head);
        free(b.text);
        if (rc) return -1;
    }
    return 0;
}

/* Llama 2 chat: an optional system message first, then user/assistant strictly
 * alternating from a user (the official template refuses other orders); per turn
 * <s> "[INST] " + strip(sys block + user) + " [/INST]" + " " + strip(reply) + " " </s>,
 * the system block "<<SYS>>\n" + system + "\n<</SYS>>\n\n" in the first turn only. The
 * prompt and the reply are one stretch of text: encoded together (push_segment). */
static int render_llama2(et_doc *d, const et_renderer *r, const cJSON *msgs, const char *structured,
                         et_error *err) {
    const cJSON *m = msgs->child;
    const char *system = NULL;
    if (!strcmp(str_field(m, "role"), "system")) system = str_field(m, "content"), m = m->next;
    int i = system ? 1 : 0, turn = 0;
    for (const cJSON *x = m; x; x = x->next, turn++)
        if (strcmp(str_field(x, "role"), turn % 2 ? "assistant" : "user"))
            return et_fail(err, "messages[%d]: the llama2 template takes an optional system "
                                "message first, then user and assistant turns alternating from "
                                "a user (as the official template, which refuses other orders)",
                           i + turn);
    for (turn = 0; m; turn++) {
        const cJSON *reply = m->next;
        body_t u;
        if (make_body(&u, turn == 0 ? structured : NULL, str_field(m, "content"), 0, err))
            return -1;
        /* the system block joins the first user content, and the two are stripped as one */
        const char *sys_head = "<<SYS>>\n", *sys_tail = "\n<</SYS>>\n\n";
        const size_t sl = turn == 0 && system ? strlen(sys_head) + strlen(system) + strlen(sys_tail) : 0;
        char *content = malloc(sl + u.n + 1);
        if (!content) {
            free(u.text);
            return et_fail(err, "out of memory");
        }
        if (sl) sprintf(content, "%s%s%s", sys_head, system, sys_tail);
        memcpy(content + sl, u.s, u.n);
        content[sl + u.n] = 0;
        const char *cs;
        size_t cn;
        trimmed(content, sl + u.n, &cs, &cn);
        char *prompt = malloc(cn + 16), *answer = NULL;
        size_t an = 0;
        int rc = !prompt ? et_fail(err, "out of memory") : 0;
        if (!rc) {
            memcpy(prompt, "[INST] ", 7);
            memcpy(prompt + 7, cs, cn);
            memcpy(prompt + 7 + cn, " [/INST]", 8);
        }
        if (!rc && reply) {
            const char *as;
            trimmed(str_field(reply, "content"), strlen(str_field(reply, "content")), &as, &an);
            answer = malloc(an + 2);
            if (!answer) rc = et_fail(err, "out of memory");
            else {
                answer[0] = ' ';
                memcpy(answer + 1, as, an);
                answer[an + 1] = ' ';
                an += 2;
            }
        }
        char field[32];
        snprintf(field, sizeof field, "messages[%d].content", i + 2 * turn + (reply ? 1 : 0));
        if (!rc)
            rc = push_id(d, r->ctl[0], 0, err) ||
                 push_segment(d, r, prompt, cn + 15, reply ? answer : "", reply ? an : 0,
                              reply != NULL, 1, field, err) ||
                 (reply && push_id(d, r->ctl[1], 1, err));
        free(answer);
        free(prompt);
        free(content);
        free(u.text);
        if (rc) return -1;
        m = reply ? reply->next : NULL;
    }
    return 0;
}

static int render_messages(et_doc *d, const et_renderer *r, const cJSON *msgs,
                           const char *structured, et_error *err) {
    if (r->chat == ET_CHAT_NONE)
        return et_fail(err, "field \"messages\" needs a chat template (--chat-template llama3 | "
                            "llama2 | chatml)");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return et_fail(err, "field \"messages\" must be a non-empty array");
    int n_assistant = 0, i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const char *role = str_field(m, "role"), *content = str_field(m, "content");
        if (!role || !content)
            return et_fail(err, "messages[%d] needs string fields \"role\" and \"content\"", i);
        if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system"))
            return et_fail(err, "messages[%d]: role must be system, user or assistant", i);
        n_assistant += !strcmp(role, "assistant");
    }
    if (!n_assistant)
        return et_fail(err, "field \"messages\" has no assistant turn, so nothing to learn");
    switch (r->chat) {
    case ET_CHAT_LLAMA3: return render_llama3(d, r, msgs, structured, err);
    case ET_CHAT_CHATML: return render_chatml(d, r, msgs, structured, err);
    default: return render_llama2(d, r, msgs, structured, err);
    }
}

int et_render_record(et_doc *d, const et_renderer *r, const cJSON *rec, et_error *err) {
    d->n = 0;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(rec, "text");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(rec, "prompt");
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(rec, "response");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rec, "messages");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "structured");
    int kinds = (text != NULL) + (prompt != NULL || response != NULL) + (msgs != NULL);
    if (kinds != 1)
        return et_fail(err, kinds ? "give exactly one of \"text\", \"prompt\"+\"response\", "
                                    "\"messages\""
                                  : "missing the text: give \"text\", \"prompt\"+\"response\" or "
                                    "\"messages\"");
    char *structured = NULL;
    if (st && !cJSON_IsNull(st) && et_render_structured(&structured, st, err)) return -1;
    int rc = -1;
    if (msgs) {
        rc = render_messages(d, r, msgs, structured, err);
        goto done;
    }
    if (push_id(d, r->bos, 0, err)) goto done;
    if (text) {
        if (!cJSON_IsString(text)) {
            et_fail(err, "field \"text\" is not a string");
            goto done;
        }
        char *body;
        if (with_structured(&body, structured, text->valuestring, strlen(text->valuestring), err))
            goto done;
        rc = push_text(d, r, body, strlen(body), 1, "text", err) || push_id(d, r->eos, 1, err);
        free(body);
    } else {
        if (!cJSON_IsString(prompt) || !cJSON_IsString(response)) {
            et_fail(err, "fields \"prompt\" and \"response\" must both be strings");
            goto done;
        }
        char *body;
        if (with_structured(&body, structured, prompt->valuestring, strlen(prompt->valuestring),
                            err))
            goto done;
        /* prompt and response in one encoding, the response's tokens found past the
         * prompt's (TRL's way): encoded apart, a SentencePiece tokenizer gave the
         * response a leading ▁ that is not in the text */
        rc = push_segment(d, r, body, strlen(body), response->valuestring,
                          strlen(response->valuestring), 1, 0, "response", err) ||
             push_id(d, r->eos, 1, err);
        free(body);
    }
done:
    free(structured);
    if (!rc && d->n < 2) rc = et_fail(err, "the record renders to fewer than 2 tokens");
    return rc ? -1 : 0;
}
