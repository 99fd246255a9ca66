/* Loading tokenizer.json (HF tokenizers' serialization) into the flat form of
 * data/tokenizer_impl.h, and the small queries. Every field is type- and range-checked;
 * an unknown component type is an error that names it. Messages name the file and the
 * JSON path, e.g. "tokenizer.json: model.merges[17]: ...". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/tokenizer_impl.h"
#include "data/unicode.h"

/* Real tokenizer.json files are at most tens of MB and vocabularies a few 100 k ids; the
 * bounds keep a hostile file from making us allocate gigabytes. */
#define MAX_FILE_BYTES ((size_t)512 << 20)
#define MAX_ID ((1 << 24) - 1)

typedef struct {
    const char *file;
    et_error *err;
} ld;

static int lfail(ld *l, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lfail(ld *l, const char *path, const char *fmt, ...) {
    char msg[ET_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return et_fail(l->err, "%s: %s: %s", l->file, path, msg);
}

static char *sub(char *buf, size_t n, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static char *sub(char *buf, size_t n, const char *path, const char *fmt, ...) {
    size_t k = (size_t)snprintf(buf, n, "%s", path);
    if (k >= n) return buf;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, n - k, fmt, ap);
    va_end(ap);
    return buf;
}

/* A token or pattern quoted for a message: at most 40 bytes, never cut inside a character. */
static const char *quote(const char *s, char *buf, size_t n) {
    size_t len = strlen(s), k = len < 40 ? len : 40;
    while (k > 0 && k < len && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    snprintf(buf, n, "'%.*s%s'", (int)k, s, k < len ? "..." : "");
    return buf;
}

/* ------------------------------------------------------- JSON helpers --- */

static const cJSON *field(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int want_object(ld *l, const cJSON *v, const char *path) {
    if (!cJSON_IsObject(v)) return lfail(l, path, "expected a JSON object");
    return 0;
}

/* Boolean field; absent or null -> def. */
static int get_bool(ld *l, const cJSON *o, const char *key, int def, const char *path, int *out) {
    const cJSON *v = field(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        char p[256];
        return lfail(l, sub(p, sizeof p, path, ".%s", key), "expected true or false");
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* String field, valid UTF-8. required: absent/null is an error; else *out = NULL. */
static int get_string(ld *l, const cJSON *o, const char *key, int required, const char *path, const char **out) {
    const cJSON *v = field(o, key);
    char p[256];
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required) return lfail(l, sub(p, sizeof p, path, ".%s", key), "missing (expected a string)");
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring) return lfail(l, sub(p, sizeof p, path, ".%s", key), "expected a string");
    if (et_utf8_validate(v->valuestring, strlen(v->valuestring), NULL))
        return lfail(l, sub(p, sizeof p, path, ".%s", key), "not valid UTF-8");
    *out = v->valuestring;
    return 0;
}

/* Non-negative integer <= max. */
static int json_uint(ld *l, const cJSON *v, double max, const char *path, long long *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max || v->valuedouble != (double)(long long)v->valuedouble)
        return lfail(l, path, "expected an integer in [0, %.0f]", max);
    *out = (long long)v->valuedouble;
    return 0;
}

static int get_uint(ld *l, const cJSON *o, const char *key, double max, const char *path, long long *out) {
    char p[256];
    sub(p, sizeof p, path, ".%s", key);
    const cJSON *v = field(o, key);
    if (!v) return lfail(l, p, "missing (expected an integer)");
    return json_uint(l, v, max, p, out);
}

/* The "type" of a component. */
static int get_type(ld *l, const cJSON *o, const char *path, const char **type) {
    if (want_object(l, o, path)) return -1;
    return get_string(l, o, "type", 1, path, type);
}

/* A string holding exactly one character; its code point and UTF-8. */
static int get_char(ld *l, const cJSON *o, const char *key, const char *path, uint32_t *cp, char *utf8, size_t *len) {
    const char *s;
    char p[256];
    if (get_string(l, o, key, 1, path, &s)) return -1;
    size_t n = strlen(s), i = 0;
    if (n == 0 || (*cp = et_utf8_next((const unsigned char *)s, &i), i != n))
        return lfail(l, sub(p, sizeof p, path, ".%s", key), "expected exactly one character");
    if (utf8) memcpy(utf8, s, n);
    if (len) *len = n;
    return 0;
}

/* {"String": s} or {"Regex": r}: *is_regex tells which. */
static int get_pattern(ld *l, const cJSON *o, const char *path, const char **s, int *is_regex) {
    char p[256];
    sub(p, sizeof p, path, ".pattern");
    const cJSON *v = field(o, "pattern");
    if (!cJSON_IsObject(v)) return lfail(l, p, "expected {\"String\": ...} or {\"Regex\": ...}");
    if (field(v, "String")) {
        *is_regex = 0;
        return get_string(l, v, "String", 1, p, s);
    }
    if (field(v, "Regex")) {
        *is_regex = 1;
        return get_string(l, v, "Regex", 1, p, s);
    }
    return lfail(l, p, "expected {\"String\": ...} or {\"Regex\": ...}");
}

/* A Replace component (normalizer or decoder): a plain-string pattern and its
 * replacement, both copied. Regex patterns are refused. */
static int parse_replace(ld *l, const cJSON *o, const char *path, char **a, size_t *a_len,
                         char **b, size_t *b_len) {
    const char *s, *content;
    char q[80];
    int is_regex;
    if (get_pattern(l, o, path, &s, &is_regex) || get_string(l, o, "content", 1, path, &content)) return -1;
    if (is_regex)
        return lfail(l, path, "Replace with a Regex pattern (%s) is not supported; only {\"String\": ...}",
                     quote(s, q, sizeof q));
    if (!*s) return lfail(l, path, "Replace with an empty pattern");
    *a = strdup(s), *a_len = strlen(s);
    *b = strdup(content), *b_len = strlen(content);
    if (!*a || !*b) {
        free(*a), free(*b);
        *a = *b = NULL;
        return lfail(l, path, "out of memory");
    }
    return 0;
}


static int get_prepend_scheme(ld *l, const cJSON *o, const char *path, tok_prepend_scheme *out) {
    const char *s;
    if (get_string(l, o, "prepend_scheme", 0, path, &s)) return -1;
    if (!s) { /* files before tokenizers 0.19: add_prefix_space (default true) */
        int aps = 1;
        if (get_bool(l, o, "add_prefix_space", 1, path, &aps)) return -1;
        *out = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
        return 0;
    }
    if (!strcmp(s, "first")) *out = PREPEND_FIRST;
    else if (!strcmp(s, "always")) *out = PREPEND_ALWAYS;
    else if (!strcmp(s, "never")) *out = PREPEND_NEVER;
    else {
        char p[256], q[64];
        return lfail(l, sub(p, sizeof p, path, ".prepend_scheme"), "%s is not one of first, always, never",
                     quote(s, q, sizeof q));
    }
    return 0;
}

/* Calls each(member) for a Sequence (key = its array) or for a single component. */
typedef int (*component_fn)(ld *l, et_tokenizer *t, const cJSON *o, const char *path);

static int flatten(ld *l, et_tokenizer *t, const cJSON *o, const char *path, const char *seq_key, component_fn each,
                   int depth) {
    const char *type;
    if (get_type(l, o, path, &type)) return -1;
    if (strcmp(type, "Sequence")) return each(l, t, o, path);
    if (depth > 16) return lfail(l, path, "Sequences nested more than 16 deep");
    char p[256];
    const cJSON *arr = field(o, seq_key);
    if (!cJSON_IsArray(arr)) return lfail(l, sub(p, sizeof p, path, ".%s", seq_key), "expected an array");
    int k = 0;
    for (const cJSON *m = arr->child; m; m = m->next, k++)
        if (flatten(l, t, m, sub(p, sizeof p, path, ".%s[%d]", seq_key, k), seq_key, each, depth + 1)) return -1;
    return 0;
}

static void *grow(void *p, size_t *n, size_t size) { /* one more element */
    void *q = realloc(p, (*n + 1) * size);
    if (q) memset((char *)q + *n * size, 0, size);
    return q;
}

/* ----------------------------------------------------------- normalizer --- */

static int add_normalizer(ld *l, et_tokenizer *t, const cJSON *o, const char *path) {
    const char *type, *s;
    char q[64];
    get_type(l, o, path, &type);
    tok_norm m = {0};
    if (!strcmp(type, "NFC")) {
        m.kind = NORM_NFC;
    } else if (!strcmp(type, "Prepend")) {
        if (get_string(l, o, "prepend", 1, path, &s)) return -1;
        m.kind = NORM_PREPEND;
        m.a = strdup(s);
        m.a_len = strlen(s);
        if (!m.a) return lfail(l, path, "out of memory");
    } else if (!strcmp(type, "Replace")) {
        m.kind = NORM_REPLACE;
        if (parse_replace(l, o, path, &m.a, &m.a_len, &m.b, &m.b_len)) return -1;
    } else {
        return lfail(l, path, "normalizer type %s is not supported (supported: Sequence, NFC, Prepend, Replace)",
                     quote(type, q, sizeof q));
    }
    tok_norm *p = grow(t->norm, &t->n_norm, sizeof *p);
    if (!p) {
        free(m.a), free(m.b);
        return lfail(l, path, "out of memory");
    }
    t->norm = p;
    t->norm[t->n_norm++] = m;
    return 0;
}

/* -------------------------------------------------------- pre-tokenizer --- */

/* The three regexes tokenizer_pretok.c implements, exactly as tokenizer.json stores them. */
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int add_pre_tokenizer(ld *l, et_tokenizer *t, const cJSON *o, const char *path) {
    const char *type, *s;
    char q[64], p[256];
    get_type(l, o, path, &type);
    if (t->n_pre && t->pre[t->n_pre - 1].kind == PRE_BYTELEVEL)
        return lfail(l, path, "a pre-tokenizer after ByteLevel is not supported (ByteLevel must come last)");
    tok_pre m = {0};
    if (!strcmp(type, "Split")) {
        int is_regex;
        m.kind = PRE_SPLIT;
        if (get_pattern(l, o, path, &s, &is_regex) || get_string(l, o, "behavior", 1, path, &type) ||
            get_bool(l, o, "invert", 0, path, &m.invert))
            return -1;
        if (!is_regex) {
            if (!*s) return lfail(l, sub(p, sizeof p, path, ".pattern"), "empty String pattern");
            m.pattern = SPLIT_LITERAL;
            m.literal = strdup(s);
            m.literal_len = strlen(s);
            if (!m.literal) return lfail(l, path, "out of memory");
        } else if (!strcmp(s, RE_LLAMA3)) {
            m.pattern = SPLIT_LLAMA3;
        } else if (!strcmp(s, RE_QWEN2)) {
            m.pattern = SPLIT_QWEN2;
        } else if (!strcmp(s, RE_GPT2)) {
            m.pattern = SPLIT_GPT2;
        } else {
            return lfail(l, sub(p, sizeof p, path, ".pattern"),
                         "the Split regex %s is not supported (supported: the Llama 3, Qwen2 and GPT-2 patterns, "
                         "docs/tokenizer.md)", quote(s, q, sizeof q));
        }
        static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        int found = -1;
        for (int k = 0; k < 5; k++)
            if (!strcmp(type, names[k])) found = k;
        if (found < 0) {
            free(m.literal);
            return lfail(l, sub(p, sizeof p, path, ".behavior"), "%s is not one of Removed, Isolated, "
                         "MergedWithPrevious, MergedWithNext, Contiguous", quote(type, q, sizeof q));
        }
        m.behavior = (tok_behavior)found;
    } else if (!strcmp(type, "ByteLevel")) {
        m.kind = PRE_BYTELEVEL;
        if (get_bool(l, o, "add_prefix_space", 1, path, &m.add_prefix_space) ||
            get_bool(l, o, "use_regex", 1, path, &m.use_regex))
            return -1;
        t->bytelevel = 1;
    } else if (!strcmp(type, "Metaspace")) {
        m.kind = PRE_METASPACE;
        uint32_t cp;
        if (get_char(l, o, "replacement", path, &cp, m.repl, &m.repl_len) ||
            get_prepend_scheme(l, o, path, &m.prepend_scheme) || get_bool(l, o, "split", 1, path, &m.split))
            return -1;
    } else {
        return lfail(l, path, "pre-tokenizer type %s is not supported (supported: Sequence, Split, ByteLevel, "
                     "Metaspace)", quote(type, q, sizeof q));
    }
    tok_pre *a = grow(t->pre, &t->n_pre, sizeof *a);
    if (!a) {
        free(m.literal);
        return lfail(l, path, "out of memory");
    }
    t->pre = a;
    t->pre[t->n_pre++] = m;
    return 0;
}

/* ------------------------------------------------------------- decoder --- */

static int add_decoder(ld *l, et_tokenizer *t, const cJSON *o, const char *path) {
    const char *type;
    char q[64];
    get_type(l, o, path, &type);
    tok_dec m = {0};
    if (!strcmp(type, "ByteLevel")) {
        m.kind = DEC_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        m.kind = DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        m.kind = DEC_FUSE;
    } else if (!strcmp(type, "Metaspace")) {
        m.kind = DEC_METASPACE;
        if (get_char(l, o, "replacement", path, &m.cp, NULL, NULL) || get_prepend_scheme(l, o, path, &m.prepend_scheme))
            return -1;
    } else if (!strcmp(type, "Strip")) {
        long long start = 0, stop = 0;
        m.kind = DEC_STRIP;
        if (get_char(l, o, "content", path, &m.cp, NULL, NULL) || get_uint(l, o, "start", 1e9, path, &start) ||
            get_uint(l, o, "stop", 1e9, path, &stop))
            return -1;
        m.start = (size_t)start;
        m.stop = (size_t)stop;
    } else if (!strcmp(type, "Replace")) {
        m.kind = DEC_REPLACE;
        if (parse_replace(l, o, path, &m.a, &m.a_len, &m.b, &m.b_len)) return -1;
    } else {
        return lfail(l, path, "decoder type %s is not supported (supported: Sequence, ByteLevel, ByteFallback, "
                     "Fuse, Metaspace, Replace, Strip)", quote(type, q, sizeof q));
    }
    tok_dec *a = grow(t->dec, &t->n_dec, sizeof *a);
    if (!a) {
        free(m.a), free(m.b);
        return lfail(l, path, "out of memory");
    }
    t->dec = a;
    t->dec[t->n_dec++] = m;
    return 0;
}

/* ------------------------------------------------------ post-processor --- */

static int push_post(ld *l, et_tokenizer *t, tok_post *m, const char *path) {
    tok_post *a = grow(t->post, &t->n_post, sizeof *a);
    if (!a) return lfail(l, path, "out of memory");
    t->post = a;
    t->post[t->n_post++] = *m;
    return 0;
}

static int add_item(tok_post *m, const int32_t *ids, int n_ids) {
    tok_post_item *a = grow(m->items, &m->n_items, sizeof *a);
    if (!a) return -1;
    m->items = a;
    tok_post_item *it = &m->items[m->n_items++];
    it->n_ids = n_ids;
    if (n_ids > 0) {
        it->ids = malloc((size_t)n_ids * sizeof *ids);
        if (!it->ids) return -1;
        memcpy(it->ids, ids, (size_t)n_ids * sizeof *ids);
    }
    return 0;
}

static void free_post(tok_post *m) {
    for (size_t i = 0; i < m->n_items; i++) free(m->items[i].ids);
    free(m->items);
}

/* BertProcessing / RobertaProcessing "cls"/"sep": ["token", id]. */
static int get_pair_id(ld *l, const cJSON *o, const char *key, const char *path, int32_t *id) {
    char p[256];
    sub(p, sizeof p, path, ".%s", key);
    const cJSON *v = field(o, key);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(v->child))
        return lfail(l, p, "expected [\"token\", id]");
    long long x = 0;
    if (json_uint(l, v->child->next, MAX_ID, p, &x)) return -1;
    *id = (int32_t)x;
    return 0;
}

static int add_post_processor(ld *l, et_tokenizer *t, const cJSON *o, const char *path) {
    const char *type;
    char q[64], p[256], p2[256];
    get_type(l, o, path, &type);
    tok_post m = {0};
    if (!strcmp(type, "ByteLevel")) return 0; /* offsets only */
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        int32_t cls, sep;
        if (get_pair_id(l, o, "cls", path, &cls) || get_pair_id(l, o, "sep", path, &sep)) return -1;
        if (add_item(&m, &cls, 1) || add_item(&m, NULL, -1) || add_item(&m, &sep, 1)) {
            free_post(&m);
            return lfail(l, path, "out of memory");
        }
        if (push_post(l, t, &m, path)) return free_post(&m), -1;
        return 0;
    }
    if (strcmp(type, "TemplateProcessing"))
        return lfail(l, path, "post-processor type %s is not supported (supported: Sequence, TemplateProcessing, "
                     "ByteLevel, BertProcessing, RobertaProcessing)", quote(type, q, sizeof q));
    const cJSON *single = field(o, "single"), *specials = field(o, "special_tokens");
    if (!cJSON_IsArray(single)) return lfail(l, sub(p, sizeof p, path, ".single"), "expected an array of pieces");
    if (specials && !cJSON_IsObject(specials) && !cJSON_IsNull(specials))
        return lfail(l, sub(p, sizeof p, path, ".special_tokens"), "expected an object");
    int k = 0;
    for (const cJSON *piece = single->child; piece; piece = piece->next, k++) {
        sub(p, sizeof p, path, ".single[%d]", k);
        const cJSON *st = field(piece, "SpecialToken"), *sq = field(piece, "Sequence");
        const char *id;
        if (cJSON_IsObject(sq)) {
            if (get_string(l, sq, "id", 1, p, &id)) goto fail;
            if (strcmp(id, "A")) {
                lfail(l, p, "the single-sequence template refers to sequence %s (only A exists)", quote(id, q, sizeof q));
                goto fail;
            }
            if (add_item(&m, NULL, -1)) goto oom;
        } else if (cJSON_IsObject(st)) {
            if (get_string(l, st, "id", 1, p, &id)) goto fail;
            const cJSON *def = specials ? field(specials, id) : NULL;
            if (!cJSON_IsObject(def)) {
                lfail(l, p, "special token %s is not in %s.special_tokens", quote(id, q, sizeof q), path);
                goto fail;
            }
            sub(p2, sizeof p2, path, ".special_tokens[%s].ids", quote(id, q, sizeof q));
            const cJSON *ids = field(def, "ids");
            int n = cJSON_GetArraySize(ids);
            if (!cJSON_IsArray(ids) || n < 1 || n > 64) {
                lfail(l, p2, "expected an array of 1 to 64 ids");
                goto fail;
            }
            int32_t v[64];
            int j = 0;
            for (const cJSON *x = ids->child; x; x = x->next, j++) {
                long long id64 = 0;
                if (json_uint(l, x, MAX_ID, p2, &id64)) goto fail;
                v[j] = (int32_t)id64;
            }
            if (add_item(&m, v, n)) goto oom;
        } else {
            lfail(l, p, "expected {\"SpecialToken\": {...}} or {\"Sequence\": {...}}");
            goto fail;
        }
    }
    if (push_post(l, t, &m, path)) goto fail;
    return 0;
oom:
    lfail(l, path, "out of memory");
fail:
    free_post(&m);
    return -1;
}

/* ------------------------------------------------------------ the model --- */

static int token_known(const tok_bpe *b, const char *s) {
    return tok_strmap_get(&b->vocab, s, strlen(s));
}

static int put_merge(tok_bpe *b, int32_t left, int32_t right, uint32_t rank, int32_t new_id) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h ^ (h >> 29)) & b->merge_mask;
    while (b->merges[i].key != UINT64_MAX && b->merges[i].key != key) i = (i + 1) & b->merge_mask;
    /* A repeated pair keeps its last rank, as HF's HashMap collect does. */
    b->merges[i] = (tok_merge){key, rank, new_id};
    return 0;
}

static uint32_t first_cp(const char *s, size_t n) {
    size_t i = 0;
    return n ? et_utf8_next((const unsigned char *)s, &i) : UINT32_MAX;
}

static uint32_t last_cp(const char *s, size_t n) {
    if (!n) return UINT32_MAX;
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return et_utf8_next((const unsigned char *)s, &i);
}

static int load_merges(ld *l, tok_bpe *b, const cJSON *arr) {
    int n = cJSON_GetArraySize(arr);
    size_t cap = 64;
    while (cap < 2 * (size_t)n + 16) cap *= 2;
    b->merges = malloc(cap * sizeof *b->merges);
    if (!b->merges) return lfail(l, "model.merges", "out of memory");
    for (size_t i = 0; i < cap; i++) b->merges[i].key = UINT64_MAX;
    b->merge_mask = cap - 1;
    /* The join pairs only describe characters that are their own symbols, which holds
     * when no prefix or suffix is glued to them. */
    if (!b->prefix && !b->suffix) {
        b->joins = malloc(cap * sizeof *b->joins);
        if (!b->joins) return lfail(l, "model.merges", "out of memory");
        for (size_t i = 0; i < cap; i++) b->joins[i] = UINT64_MAX;
        b->join_mask = cap - 1;
    }

    char p[96], q1[64];
    int form = 0; /* 1: "a b" strings, 2: pairs; HF reads one form per file */
    uint32_t rank = 0;
    tok_buf joined = {0};
    int k = 0, rc = -1;
    for (const cJSON *m = arr->child; m; m = m->next, k++) {
        snprintf(p, sizeof p, "model.merges[%d]", k);
        const char *a, *bb;
        size_t alen, blen;
        if (cJSON_IsString(m)) {
            if (form == 2) { lfail(l, p, "mixes \"a b\" strings with [a, b] pairs"); goto done; }
            form = 1;
            const char *s = m->valuestring;
            if (et_utf8_validate(s, strlen(s), NULL)) { lfail(l, p, "not valid UTF-8"); goto done; }
            if (!strncmp(s, "#version", 8)) continue; /* merges.txt header line */
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                lfail(l, p, "expected two tokens separated by one space");
                goto done;
            }
            a = s, alen = (size_t)(sp - s);
            bb = sp + 1, blen = strlen(bb);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            if (form == 1) { lfail(l, p, "mixes [a, b] pairs with \"a b\" strings"); goto done; }
            form = 2;
            a = m->child->valuestring, alen = strlen(a);
            bb = m->child->next->valuestring, blen = strlen(bb);
            if (et_utf8_validate(a, alen, NULL) || et_utf8_validate(bb, blen, NULL)) { lfail(l, p, "not valid UTF-8"); goto done; }
        } else {
            lfail(l, p, "expected \"a b\" or [\"a\", \"b\"]");
            goto done;
        }
        int32_t ia = tok_strmap_get(&b->vocab, a, alen), ib = tok_strmap_get(&b->vocab, bb, blen);
        if (ia < 0 || ib < 0) {
            joined.len = 0;
            if (tok_buf_add(&joined, ia < 0 ? a : bb, ia < 0 ? alen : blen)) { lfail(l, p, "out of memory"); goto done; }
            lfail(l, p, "token %s is not in model.vocab", quote(joined.p, q1, sizeof q1));
            goto done;
        }
        /* merged token = a + b without b's continuing_subword_prefix (HF &b[prefix_len..]) */
        size_t cut = b->prefix_len;
        if (cut > blen || (cut < blen && ((unsigned char)bb[cut] & 0xC0) == 0x80)) {
            lfail(l, p, "the second token is shorter than continuing_subword_prefix");
            goto done;
        }
        joined.len = 0;
        if (tok_buf_add(&joined, a, alen) || tok_buf_add(&joined, bb + cut, blen - cut)) {
            lfail(l, p, "out of memory");
            goto done;
        }
        int32_t inew = tok_strmap_get(&b->vocab, joined.p, joined.len);
        if (inew < 0) {
            lfail(l, p, "the merged token %s is not in model.vocab", quote(joined.p, q1, sizeof q1));
            goto done;
        }
        put_merge(b, ia, ib, rank++, inew);
        if (b->joins) tok_bpe_add_join(b, last_cp(a, alen), first_cp(bb, blen));
    }
    rc = 0;
done:
    free(joined.p);
    return rc;
}

static int load_model(ld *l, et_tokenizer *t, const cJSON *o) {
    tok_bpe *b = &t->bpe;
    const char *type, *s;
    char q[64], p[96];
    if (!o) return lfail(l, "model", "missing");
    if (get_type(l, o, "model", &type)) return -1;
    if (strcmp(type, "BPE"))
        return lfail(l, "model", "model type %s is not supported (supported: BPE)", quote(type, q, sizeof q));
    const cJSON *dropout = field(o, "dropout");
    if (dropout && !cJSON_IsNull(dropout)) {
        if (!cJSON_IsNumber(dropout) || dropout->valuedouble < 0 || dropout->valuedouble > 1)
            return lfail(l, "model.dropout", "expected null or a number in [0, 1]");
        if (dropout->valuedouble > 0)
            return lfail(l, "model.dropout", "BPE dropout makes encoding random; set it to null for tokenizing data");
    }
    if (get_bool(l, o, "fuse_unk", 0, "model", &b->fuse_unk) ||
        get_bool(l, o, "byte_fallback", 0, "model", &b->byte_fallback) ||
        get_bool(l, o, "ignore_merges", 0, "model", &b->ignore_merges))
        return -1;
    if (get_string(l, o, "unk_token", 0, "model", &s)) return -1;
    if (s && !(b->unk_token = strdup(s))) return lfail(l, "model", "out of memory");
    if (get_string(l, o, "continuing_subword_prefix", 0, "model", &s)) return -1;
    if (s && *s && !(b->prefix = strdup(s))) return lfail(l, "model", "out of memory");
    b->prefix_len = b->prefix ? strlen(b->prefix) : 0;
    if (get_string(l, o, "end_of_word_suffix", 0, "model", &s)) return -1;
    if (s && *s && !(b->suffix = strdup(s))) return lfail(l, "model", "out of memory");
    b->suffix_len = b->suffix ? strlen(b->suffix) : 0;

    const cJSON *vocab = field(o, "vocab"), *merges = field(o, "merges");
    if (!cJSON_IsObject(vocab)) return lfail(l, "model.vocab", "expected an object {token: id}");
    if (!cJSON_IsArray(merges)) return lfail(l, "model.merges", "expected an array");
    int n = cJSON_GetArraySize(vocab);
    if (tok_strmap_init(&b->vocab, (size_t)n)) return lfail(l, "model.vocab", "out of memory");
    long long max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        const char *key = e->string;
        if (et_utf8_validate(key, strlen(key), NULL))
            return lfail(l, "model.vocab", "a token is not valid UTF-8 (entry %d)", (int)b->vocab.count);
        snprintf(p, sizeof p, "model.vocab[%s]", quote(key, q, sizeof q));
        long long id = 0;
        if (json_uint(l, e, MAX_ID, p, &id)) return -1;
        int rc = tok_strmap_put(&b->vocab, key, strlen(key), (int32_t)id);
        if (rc < 0) return lfail(l, p, "out of memory");
        if (rc > 0) return lfail(l, p, "the token appears twice");
        if (id > max_id) max_id = id;
    }
    b->n_ids = (int32_t)(max_id + 1);
    b->id_off = malloc(((size_t)b->n_ids + 1) * sizeof *b->id_off);
    b->id_len = malloc(((size_t)b->n_ids + 1) * sizeof *b->id_len);
    if (!b->id_off || !b->id_len) return lfail(l, "model.vocab", "out of memory");
    for (int32_t i = 0; i < b->n_ids; i++) b->id_off[i] = UINT32_MAX;
    for (int i = 0; i < 0x800; i++) b->char_id[i] = -1;
    for (size_t i = 0; i <= b->vocab.mask; i++) {
        int32_t id = b->vocab.slot_id[i];
        if (id < 0) continue;
        if (b->id_off[id] != UINT32_MAX) {
            char q2[64];
            return lfail(l, "model.vocab", "tokens %s and %s share id %d", quote(b->vocab.arena + b->id_off[id], q, sizeof q),
                         quote(b->vocab.arena + b->vocab.slot_off[i], q2, sizeof q2), (int)id);
        }
        b->id_off[id] = b->vocab.slot_off[i];
        b->id_len[id] = b->vocab.slot_len[i];
        const unsigned char *tok = (const unsigned char *)b->vocab.arena + b->id_off[id];
        size_t len = b->id_len[id], j = 0;
        if (len && len <= 2) {
            uint32_t cp = et_utf8_next(tok, &j);
            if (j == len && cp < 0x800) b->char_id[cp] = id;
        }
    }
    for (int x = 0; x < 256; x++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", x);
        b->byte_token[x] = token_known(b, name);
    }
    b->unk_id = b->unk_token ? token_known(b, b->unk_token) : -1;
    return load_merges(l, b, merges);
}

/* --------------------------------------------------------- added tokens --- */

static int trie_add(tok_trie *tr, const char *s, size_t n, int32_t token) {
    if (!tr->nodes) {
        tr->cap = 64;
        tr->nodes = malloc(tr->cap * sizeof *tr->nodes);
        if (!tr->nodes) return -1;
        tr->nodes[0] = (tok_trie_node){-1, -1, -1, 0};
        tr->n_nodes = 1;
    }
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t ch = tr->nodes[node].first_child;
        while (ch >= 0 && tr->nodes[ch].byte != c) ch = tr->nodes[ch].next_sibling;
        if (ch < 0) {
            if (tr->n_nodes == tr->cap) {
                tok_trie_node *p = realloc(tr->nodes, 2 * tr->cap * sizeof *p);
                if (!p) return -1;
                tr->nodes = p;
                tr->cap *= 2;
            }
            ch = (int32_t)tr->n_nodes++;
            tr->nodes[ch] = (tok_trie_node){-1, tr->nodes[node].first_child, -1, c};
            tr->nodes[node].first_child = ch;
        }
        node = ch;
    }
    /* Two tokens with the same pattern: the first one added wins (lowest Aho-Corasick
     * pattern index). */
    if (tr->nodes[node].token < 0) tr->nodes[node].token = token;
    tr->first_byte[(unsigned char)s[0]] = 1;
    tr->n_patterns++;
    return 0;
}

static int load_added(ld *l, et_tokenizer *t, const cJSON *arr) {
    char p[64], q[64];
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr)) return lfail(l, "added_tokens", "expected an array");
    int n = cJSON_GetArraySize(arr), k = 0;
    /* HF does not take the ids of the file: it gives each added token, in file order,
     * its model.vocab id, or the next free id after the vocabulary (the number of vocab
     * entries, then one more than the largest id given so far). A file whose ids say
     * otherwise would encode here differently from HF: refused, not renumbered, since
     * the post-processor's ids follow the file's numbering. */
    const int64_t n_model = (int64_t)t->bpe.vocab.count;
    int64_t max_given = -1;
    t->added = calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added) return lfail(l, "added_tokens", "out of memory");
    tok_strmap seen;
    if (tok_strmap_init(&seen, (size_t)n)) return lfail(l, "added_tokens", "out of memory");
    int rc = -1;
    for (const cJSON *e = arr->child; e; e = e->next, k++) {
        snprintf(p, sizeof p, "added_tokens[%d]", k);
        const char *content;
        long long id = 0;
        int sw = 0, ls = 0, rs = 0, norm = 0, special = 0;
        if (want_object(l, e, p) || get_uint(l, e, "id", MAX_ID, p, &id) || get_string(l, e, "content", 1, p, &content) ||
            get_bool(l, e, "single_word", 0, p, &sw) || get_bool(l, e, "lstrip", 0, p, &ls) ||
            get_bool(l, e, "rstrip", 0, p, &rs) || get_bool(l, e, "special", 0, p, &special) ||
            get_bool(l, e, "normalized", !special, p, &norm))
            goto done;
        if (!*content) continue; /* HF ignores empty added tokens */
        int32_t model_id = token_known(&t->bpe, content);
        if (model_id >= 0 && model_id != id) {
            lfail(l, p, "%s has id %lld but model.vocab gives it %d", quote(content, q, sizeof q), id, (int)model_id);
            goto done;
        }
        int dup = tok_strmap_put(&seen, content, strlen(content), (int32_t)id);
        if (dup) {
            lfail(l, p, dup < 0 ? "out of memory" : "%s appears twice", quote(content, q, sizeof q));
            goto done;
        }
        int64_t hf_id = model_id >= 0 ? model_id
                        : max_given < 0 ? n_model
                        : (max_given >= n_model || n_model == 0) ? max_given + 1 : n_model;
        if (hf_id > max_given) max_given = hf_id;
        if (model_id < 0 && id != hf_id) {
            lfail(l, p, "%s has id %lld, but HF tokenizers numbers added tokens itself (in file order, "
                        "after the %lld model.vocab entries) and gives it %lld; the ids of added_tokens "
                        "must follow that order",
                  quote(content, q, sizeof q), id, (long long)n_model, (long long)hf_id);
            goto done;
        } else if (model_id < 0 && id < t->bpe.n_ids && t->bpe.id_off[id] != UINT32_MAX) {
            lfail(l, p, "%s has id %lld, which model.vocab gives to another token (a hole in the "
                        "vocabulary's ids?)", quote(content, q, sizeof q), id);
            goto done;
        }
        tok_added *a = &t->added[t->n_added];
        a->content = strdup(content);
        if (!a->content) { lfail(l, p, "out of memory"); goto done; }
        a->len = strlen(content);
        a->text = a->content, a->text_len = a->len; /* normalized ones: build_tries */
        a->id = (int32_t)id;
        a->single_word = (uint8_t)sw, a->lstrip = (uint8_t)ls, a->rstrip = (uint8_t)rs;
        a->normalized = (uint8_t)norm, a->special = (uint8_t)special;
        t->n_added++;
    }
    rc = 0;
done:
    tok_strmap_free(&seen);
    return rc;
}

/* Builds the two tries in HF's order (special tokens, then the others, each in file
 * order); normalized tokens are matched in their normalized form. */
static int build_tries(ld *l, et_tokenizer *t) {
    tok_buf a = {0}, b = {0};
    int rc = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->n_added; i++) {
            tok_added *x = &t->added[i];
            if (x->special != (pass == 0)) continue;
            char p[64];
            snprintf(p, sizeof p, "added_tokens (id %d)", (int)x->id);
            if (!x->normalized) {
                if (trie_add(&t->raw_trie, x->content, x->len, (int32_t)i)) { lfail(l, p, "out of memory"); goto done; }
                continue;
            }
            const char *norm;
            size_t nn;
            if (tok_normalize(t, x->content, x->len, &a, &b, &norm, &nn)) { lfail(l, p, "out of memory"); goto done; }
            if (nn == 0) { lfail(l, p, "the token is empty once normalized"); goto done; }
            if (trie_add(&t->norm_trie, norm, nn, (int32_t)i)) { lfail(l, p, "out of memory"); goto done; }
            if (nn != x->len || memcmp(norm, x->content, nn)) {
                if (!(x->text = malloc(nn + 1))) { x->text = x->content; lfail(l, p, "out of memory"); goto done; }
                memcpy(x->text, norm, nn);
                x->text[nn] = 0;
                x->text_len = nn;
            }
        }
    }
    rc = 0;
done:
    free(a.p);
    free(b.p);
    return rc;
}

static int finish(ld *l, et_tokenizer *t) {
    /* HF's Metaspace "first" asks whether a piece starts at offset 0 of the ORIGINAL
     * text; a normalizer that deletes (Replace with "") can move the start, which this
     * implementation (no offset tracking) would not see. */
    for (size_t i = 0; i < t->n_norm; i++)
        for (size_t k = 0; t->norm[i].kind == NORM_REPLACE && t->norm[i].b_len == 0 && k < t->n_pre; k++)
            if (t->pre[k].kind == PRE_METASPACE && t->pre[k].prepend_scheme == PREPEND_FIRST)
                return lfail(l, "normalizer", "a Replace with empty content before a Metaspace pre-tokenizer "
                                              "with prepend_scheme \"first\" is not supported");
    if (build_tries(l, t)) return -1;
    int64_t max_id = (int64_t)t->bpe.n_ids - 1;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    t->vocab_size = (int32_t)(max_id + 1);
    for (size_t k = 0; k < t->n_post; k++)
        for (size_t i = 0; i < t->post[k].n_items; i++)
            for (int j = 0; j < t->post[k].items[i].n_ids; j++)
                if (t->post[k].items[i].ids[j] >= t->vocab_size)
                    return lfail(l, "post_processor", "special token id %d is outside the vocabulary (size %d)",
                                 (int)t->post[k].items[i].ids[j], (int)t->vocab_size);
    size_t n = (size_t)t->vocab_size + 1;
    t->added_of_id = malloc(n * sizeof *t->added_of_id);
    t->special_id = calloc(n, 1);
    if (!t->added_of_id || !t->special_id) return lfail(l, "added_tokens", "out of memory");
    for (size_t i = 0; i < n; i++) t->added_of_id[i] = -1;
    for (size_t i = 0; i < t->n_added; i++) t->added_of_id[t->added[i].id] = (int32_t)i;
    /* HF skips a token in decode when its TEXT (normalized, for normalized added
     * tokens) is the content of a special added token. */
    tok_strmap specials;
    if (tok_strmap_init(&specials, t->n_added)) return lfail(l, "added_tokens", "out of memory");
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].special && tok_strmap_put(&specials, t->added[i].content, t->added[i].len, 1) < 0) {
            tok_strmap_free(&specials);
            return lfail(l, "added_tokens", "out of memory");
        }
    for (int32_t id = 0; id < t->vocab_size; id++) {
        size_t len;
        const char *s = et_tokenizer_token_text(t, id, &len);
        t->special_id[id] = s && tok_strmap_get(&specials, s, len) >= 0;
    }
    tok_strmap_free(&specials);
    for (int x = 0; x < 256; x++) {
        uint32_t cp = tok_byte_to_cp((unsigned char)x);
        char u[4];
        t->bl_len[x] = (uint8_t)et_utf8_put(u, cp);
        memcpy(t->bl_utf8[x], u, t->bl_len[x]);
    }
    return 0;
}

/* A "\u0000" escape would be cut short by cJSON (C strings): refuse it rather than
 * silently load another token. */
static int has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 5 < n; i++) {
        if (s[i] != '\\') continue;
        size_t k = i;
        while (k < n && s[k] == '\\') k++;
        if ((k - i) % 2 == 1 && k + 5 <= n && s[k] == 'u' && !memcmp(s + k + 1, "0000", 4)) return 1;
        i = k - 1;
    }
    return 0;
}

int et_tokenizer_load_json(et_tokenizer **out, const char *json, size_t len, const char *name, et_error *err) {
    *out = NULL;
    ld l = {name ? name : "tokenizer.json", err};
    if (has_nul_escape(json, len))
        return et_fail(err, "%s: a string holds \\u0000, which ehrtune does not support in tokens", l.file);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        return et_fail(err, "%s: not valid JSON (near byte %zu)", l.file, off);
    }
    et_tokenizer *t = calloc(1, sizeof *t);
    int rc = -1;
    if (!t) {
        et_fail(err, "%s: out of memory", l.file);
        goto done;
    }
    t->name = strdup(l.file);
    if (!cJSON_IsObject(root)) {
        lfail(&l, "(top level)", "expected a JSON object");
        goto done;
    }
    const cJSON *c;
    if (load_model(&l, t, field(root, "model")) || load_added(&l, t, field(root, "added_tokens"))) goto done;
    if ((c = field(root, "normalizer")) && !cJSON_IsNull(c) && flatten(&l, t, c, "normalizer", "normalizers", add_normalizer, 0))
        goto done;
    if ((c = field(root, "pre_tokenizer")) && !cJSON_IsNull(c) &&
        flatten(&l, t, c, "pre_tokenizer", "pretokenizers", add_pre_tokenizer, 0))
        goto done;
    if ((c = field(root, "post_processor")) && !cJSON_IsNull(c) &&
        flatten(&l, t, c, "post_processor", "processors", add_post_processor, 0))
        goto done;
    if ((c = field(root, "decoder")) && !cJSON_IsNull(c) && flatten(&l, t, c, "decoder", "decoders", add_decoder, 0))
        goto done;
    if (finish(&l, t)) goto done;
    *out = t;
    t = NULL;
    rc = 0;
done:
    cJSON_Delete(root);
    et_tokenizer_free(t);
    return rc;
}

int et_tokenizer_load(et_tokenizer **t, const char *path, et_error *err) {
    *t = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, "%s: cannot open: %m", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) {
                et_fail(err, "%s: larger than 512 MiB: not a tokenizer.json", path);
                goto done;
            }
            cap = cap ? cap * 2 : 1 << 20;
            char *p = realloc(buf, cap);
            if (!p) {
                et_fail(err, "%s: out of memory", path);
                goto done;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        et_fail(err, "%s: read error", path);
        goto done;
    }
    rc = et_tokenizer_load_json(t, buf, n, path, err);
done:
    free(buf);
    fclose(f);
    return rc;
}

void et_tokenizer_free(et_tokenizer *t) {
    if (!t) return;
    tok_bpe *b = &t->bpe;
    tok_strmap_free(&b->vocab);
    free(b->id_off), free(b->id_len), free(b->merges), free(b->joins), free(b->unk_token), free(b->prefix), free(b->suffix);
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].text != t->added[i].content) free(t->added[i].text);
        free(t->added[i].content);
    }
    free(t->added);
    free(t->raw_trie.nodes);
    free(t->norm_trie.nodes);
    for (size_t i = 0; i < t->n_norm; i++) free(t->norm[i].a), free(t->norm[i].b);
    free(t->norm);
    for (size_t i = 0; i < t->n_pre; i++) free(t->pre[i].literal);
    free(t->pre);
    for (size_t i = 0; i < t->n_post; i++) free_post(&t->post[i]);
    free(t->post);
    for (size_t i = 0; i < t->n_dec; i++) free(t->dec[i].a), free(t->dec[i].b);
    free(t->dec);
    free(t->added_of_id);
    free(t->special_id);
    free(t->name);
    free(t);
}

int32_t et_tokenizer_vocab_size(const et_tokenizer *t) { return t->vocab_size; }

int32_t et_tokenizer_token_id(const et_tokenizer *t, const char *token) {
    size_t n = strlen(token);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, token, n)) return t->added[i].id;
    return tok_strmap_get(&t->bpe.vocab, token, n);
}

const char *et_tokenizer_token_text(const et_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->vocab_size) return NULL;
    int32_t a = t->added_of_id ? t->added_of_id[id] : -1;
    if (a >= 0) {
        *len = t->added[a].text_len;
        return t->added[a].text;
    }
    if (id >= t->bpe.n_ids || t->bpe.id_off[id] == UINT32_MAX) return NULL;
    *len = t->bpe.id_len[id];
    return t->bpe.vocab.arena + t->bpe.id_off[id];
}
