#include "data/render.h"

#include <cjson/cJSON.h>
#include <ctype.h>
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

/* ---- structured fields -------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
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

static void sb_value(sbuf *b, const cJSON *v) {
    char num[64];
    if (cJSON_IsString(v)) sb_str(b, v->valuestring);
    else if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof num, "%g", v->valuedouble);
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
    if (b.oom) {
        free(b.s);
        return et_fail(err, "out of memory serialising \"structured\"");
    }
    *out = b.s;
    return 0;
}

/* ---- records -------------------------------------------------------------------------- */

static const char *str_field(const cJSON *rec, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Leading/trailing whitespace removed, as the HF chat templates do (`| trim`). */
static void trimmed(const char *s, const char **start, size_t *len) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    *start = s;
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

static int render_messages(et_doc *d, const et_renderer *r, const cJSON *msgs,
                           const char *structured, et_error *err) {
    if (r->chat == ET_CHAT_NONE)
        return et_fail(err, "field \"messages\" needs a chat template (--chat-template llama3 | "
                            "llama2 | chatml)");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return et_fail(err, "field \"messages\" must be a non-empty array");
    int n_assistant = 0, first_user = 1, i = 0;
    const char *system = NULL;
    size_t system_len = 0;
    if (r->chat == ET_CHAT_LLAMA3 && push_id(d, r->ctl[0], 0, err)) return -1;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const char *role = str_field(m, "role"), *content = str_field(m, "content");
        if (!role || !content)
            return et_fail(err, "messages[%d] needs string fields \"role\" and \"content\"", i);
        int is_user = !strcmp(role, "user"), is_asst = !strcmp(role, "assistant"),
            is_sys = !strcmp(role, "system");
        if (!is_user && !is_asst && !is_sys)
            return et_fail(err, "messages[%d]: role must be system, user or assistant", i);
        const char *c;
        size_t cl;
        trimmed(content, &c, &cl);
        /* The structured block goes in front of the first user message. */
        char *body = NULL;
        if (with_structured(&body, is_user && first_user ? structured : NULL, c, cl, err))
            return -1;
        if (is_user) first_user = 0;
        int target = is_asst, rc = 0;
        char field[32];
        snprintf(field, sizeof field, "messages[%d].content", i);
        switch (r->chat) {
        case ET_CHAT_LLAMA3:
            rc = push_id(d, r->ctl[1], 0, err) || push_text(d, r, role, strlen(role), 0, "role", err) ||
                 push_id(d, r->ctl[2], 0, err) || push_text(d, r, "\n\n", 2, 0, field, err) ||
                 push_text(d, r, body, strlen(body), target, field, err) ||
                 push_id(d, r->ctl[3], target, err);
            break;
        case ET_CHAT_CHATML:
            rc = push_id(d, r->ctl[0], 0, err) || push_text(d, r, role, strlen(role), 0, "role", err) ||
                 push_text(d, r, "\n", 1, 0, field, err) ||
                 push_text(d, r, body, strlen(body), target, field, err) ||
                 push_id(d, r->ctl[1], target, err) || push_text(d, r, "\n", 1, 0, field, err);
            break;
        default: /* Llama 2: system folds into the next user turn */
            if (is_sys) {
                system = c;
                system_len = cl;
            } else if (is_user) {
                rc = push_id(d, r->ctl[0], 0, err) || push_text(d, r, "[INST] ", 7, 0, field, err);
                if (!rc && system) {
                    rc = push_text(d, r, "<<SYS>>\n", 8, 0, field, err) ||
                         push_text(d, r, system, system_len, 0, "messages[system].content", err) ||
                         push_text(d, r, "\n<</SYS>>\n\n", 11, 0, field, err);
                    system = NULL;
                }
                if (!rc)
                    rc = push_text(d, r, body, strlen(body), 0, field, err) ||
                         push_text(d, r, " [/INST]", 8, 0, field, err);
            } else {
                char *spaced = malloc(strlen(body) + 3);
                if (!spaced) rc = et_fail(err, "out of memory");
                else {
                    sprintf(spaced, " %s ", body);
                    rc = push_text(d, r, spaced, strlen(spaced), 1, field, err) ||
                         push_id(d, r->ctl[1], 1, err);
                    free(spaced);
                }
            }
            break;
        }
        free(body);
        if (rc) return -1;
        n_assistant += is_asst;
    }
    if (!n_assistant)
        return et_fail(err, "field \"messages\" has no assistant turn, so nothing to learn");
    return 0;
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
        rc = push_text(d, r, body, strlen(body), 0, "prompt", err) ||
             push_text(d, r, response->valuestring, strlen(response->valuestring), 1, "response",
                       err) ||
             push_id(d, r->eos, 1, err);
        free(body);
    }
done:
    free(structured);
    if (!rc && d->n < 2) rc = et_fail(err, "the record renders to fewer than 2 tokens");
    return rc ? -1 : 0;
}
