/* PHI guard over JSONL records: which strings are scanned, the per-file report
 * and its JSON summary (data/phi_scan.h). The report never holds scanned text:
 * only counts, kinds and line numbers. */
#include "data/phi_scan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "data/render.h"

/* ------------------------------------------------------------- the walk --- */

#define PATH_MAX_CHARS 256

/* What a walk leaves out because the caller scans it another way: the nodes joined
 * into the document's text, and "structured" once rendered. */
typedef struct {
    const cJSON *joined[3];
    int n_joined;
    int skip_structured;  /* top-level "structured": scanned rendered */
    int skip_contents;    /* string "content" of each message: scanned as texts */
} walk_skip;

/* Where a node sits, for the skip rules. */
enum { AT_NESTED, AT_TOP, AT_MESSAGES, AT_MESSAGE };

static int skipped(const walk_skip *sk, const cJSON *c, int where) {
    if (where == AT_TOP && c->string && !strcmp(c->string, "patient_id")) return 1;
    if (!sk) return 0;
    if (where == AT_TOP && sk->skip_structured && c->string && !strcmp(c->string, "structured"))
        return 1;
    for (int i = 0; i < sk->n_joined; i++)
        if (c == sk->joined[i]) return 1;
    return where == AT_MESSAGE && sk->skip_contents && cJSON_IsString(c) && c->string &&
           !strcmp(c->string, "content");
}

static void walk(const cJSON *node, char *path, size_t plen, et_phi_field_fn fn, void *ctx,
                 int where, const walk_skip *sk) {
    if (cJSON_IsString(node) && node->valuestring) {
        fn(ctx, path, node->valuestring, strlen(node->valuestring));
        return;
    }
    int is_obj = cJSON_IsObject(node), i = 0;
    if (!is_obj && !cJSON_IsArray(node)) return; /* numbers, booleans, null: not text */
    for (const cJSON *c = node->child; c; c = c->next, i++) {
        size_t n;
        if (is_obj) {
            n = (size_t)snprintf(path + plen, PATH_MAX_CHARS - plen, "%s%s", plen ? "." : "",
                                 c->string ? c->string : "");
        } else {
            n = (size_t)snprintf(path + plen, PATH_MAX_CHARS - plen, "[%d]", i);
        }
        if (n >= PATH_MAX_CHARS - plen) n = PATH_MAX_CHARS - 1 - plen; /* truncated path */
        if (is_obj && where != AT_TOP && c->string) {
            /* keys of nested objects become text too ("labs": {"Na": 138} -> "Na 138") */
            char keypath[PATH_MAX_CHARS];
            snprintf(keypath, sizeof keypath, "%.*s{}", (int)plen, path);
            fn(ctx, keypath, c->string, strlen(c->string));
        }
        if (!skipped(sk, c, where)) {
            int next = AT_NESTED;
            if (where == AT_TOP && c->string && !strcmp(c->string, "messages")) next = AT_MESSAGES;
            else if (where == AT_MESSAGES) next = AT_MESSAGE;
            walk(c, path, plen + n, fn, ctx, next, sk);
        }
        path[plen] = 0;
    }
}

void et_phi_walk_record(const cJSON *record, et_phi_field_fn fn, void *ctx) {
    char path[PATH_MAX_CHARS] = "";
    walk(record, path, 0, fn, ctx, AT_TOP, NULL);
}

/* ------------------------------------------------- the document's text --- */

/* A string the walk finds, handed on as a text of one part. */
typedef struct {
    et_phi_text_fn fn;
    void *ctx;
} alone;

static void emit_alone(void *ctx, const char *path, const char *text, size_t len) {
    const alone *a = ctx;
    et_phi_part part = {path, 0, len};
    a->fn(a->ctx, text, len, &part, 1);
}

/* Calls fn on the concatenation of the parts (NULL strings left out). */
static void emit_joined(et_phi_text_fn fn, void *ctx, const char *const *strs,
                        const char *const *paths, int n) {
    et_phi_part parts[4];
    size_t total = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strs[i]) {
            size_t len = strlen(strs[i]);
            parts[k++] = (et_phi_part){paths[i], total, len};
            total += len;
        }
    if (!k) return;
    char *buf = k > 1 ? malloc(total + 1) : NULL;
    if (!buf) { /* one part needs no copy; out of memory, each part alone beats none */
        for (int i = 0, j = 0; i < n; i++)
            if (strs[i]) {
                et_phi_part one = {parts[j].path, 0, parts[j].len};
                fn(ctx, strs[i], parts[j++].len, &one, 1);
            }
        return;
    }
    for (int i = 0, j = 0; i < n; i++)
        if (strs[i]) memcpy(buf + parts[j].offset, strs[i], parts[j].len), j++;
    buf[total] = 0;
    fn(ctx, buf, total, parts, k);
    free(buf);
}

static const char *string_of(const cJSON *v) {
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* Message contents, the first user's after the structured block (as data/render.c
 * places it); returns whether the block was used. */
static int emit_messages(const cJSON *msgs, const char *rendered, et_phi_text_fn fn, void *ctx) {
    int i = 0, used = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const char *content = string_of(cJSON_GetObjectItemCaseSensitive(m, "content"));
        if (!content) continue;
        const char *role = string_of(cJSON_GetObjectItemCaseSensitive(m, "role"));
        int with_block = rendered && !used && role && !strcmp(role, "user");
        char path[48];
        snprintf(path, sizeof path, "messages[%d].content", i);
        const char *strs[2] = {with_block ? rendered : NULL, content};
        const char *paths[2] = {"structured", path};
        emit_joined(fn, ctx, strs, paths, 2);
        used |= with_block;
    }
    return used;
}

void et_phi_record_texts(const cJSON *record, et_phi_text_fn fn, void *ctx) {
    walk_skip sk = {.n_joined = 0};
    char *rendered = NULL;
    if (cJSON_IsObject(record)) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(record, "structured");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(record, "text");
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(record, "prompt");
        const cJSON *response = cJSON_GetObjectItemCaseSensitive(record, "response");
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(record, "messages");
        et_error ignored;
        /* a block that does not render is walked field by field (ingest refuses the
         * record anyway) */
        if (st && !cJSON_IsNull(st) && et_render_structured(&rendered, st, &ignored) == 0)
            sk.skip_structured = 1;
        int used = 0;
        if (string_of(text)) {
            const char *strs[2] = {rendered, text->valuestring};
            const char *paths[2] = {"structured", "text"};
            emit_joined(fn, ctx, strs, paths, 2);
            sk.joined[sk.n_joined++] = text;
            used = 1;
        } else if (string_of(prompt) || string_of(response)) {
            /* prompt and response are one stretch of tokens, so one text: "MRN:" at
             * the prompt's end and "123456" at the response's start are one finding */
            const char *strs[3] = {rendered, string_of(prompt), string_of(response)};
            const char *paths[3] = {"structured", "prompt", "response"};
            emit_joined(fn, ctx, strs, paths, 3);
            if (strs[1]) sk.joined[sk.n_joined++] = prompt;
            if (strs[2]) sk.joined[sk.n_joined++] = response;
            used = 1;
        } else if (cJSON_IsArray(msgs)) {
            used = emit_messages(msgs, rendered, fn, ctx);
            sk.skip_contents = 1;
        }
        if (rendered && !used) {
            const char *strs[1] = {rendered};
            const char *paths[1] = {"structured"};
            emit_joined(fn, ctx, strs, paths, 1);
        }
    }
    /* every other string alone */
    char path[PATH_MAX_CHARS] = "";
    alone a = {fn, ctx};
    walk(record, path, 0, emit_alone, &a, AT_TOP, &sk);
    free(rendered);
}

/* ------------------------------------------------ scanning joined texts --- */

/* How many leading bytes of the text are the rendered "structured" block (0: none):
 * data/render.c always puts it first. */
static size_t structured_len(const et_phi_part *parts, int n_parts) {
    return n_parts > 0 && parts[0].offset == 0 && !strcmp(parts[0].path, "structured")
               ? parts[0].len
               : 0;
}

/* Whether the part alone could be read differently than inside the joined text: a
 * boundary not at a line break. Nothing the matchers take spans a '\n' and no look
 * back crosses one, so a part that starts after a '\n' and ends with one (or at the
 * text's ends) reads the same either way ("structured" always ends with "\n\n"). */
static int part_needs_own_scan(const char *text, size_t len, const et_phi_part *p) {
    if (!p->len) return 0;
    int start_guarded = p->offset == 0 || text[p->offset - 1] == '\n';
    int end_guarded = p->offset + p->len == len || text[p->offset + p->len - 1] == '\n';
    return !start_guarded || !end_guarded;
}

static void put_finding(et_phi_finding f, int64_t *counts, et_phi_finding *out, size_t cap,
                        size_t *k) {
    if (counts) counts[f.kind]++;
    if (*k < cap) out[*k] = f;
    (*k)++;
}

size_t et_phi_scan_parts(const char *text, size_t len, const et_phi_part *parts, int n_parts,
                         int64_t counts[ET_PHI_KINDS], et_phi_finding *out, size_t cap) {
    int solo = 0;
    const size_t slen = structured_len(parts, n_parts);
    for (int i = 0; i < n_parts && !solo; i++) solo = part_needs_own_scan(text, len, &parts[i]);
    if (n_parts < 2 || !solo) return et_phi_scan_text_in(text, len, slen, counts, out, cap);
    int oom = 0;
    size_t nj, k = 0;
    et_phi_finding *joined = et_phi_scan_text_all(text, len, slen, &nj, &oom);
    if (oom) /* the joined scan alone */
        return et_phi_scan_text_in(text, len, slen, counts, out, cap);
    size_t j = 0; /* next joined finding to emit */
    for (int p = 0; p < n_parts; p++) {
        size_t np = 0;
        size_t own_slen = p == 0 ? slen : 0;
        et_phi_finding *own = part_needs_own_scan(text, len, &parts[p])
                                  ? et_phi_scan_text_all(text + parts[p].offset, parts[p].len,
                                                         own_slen, &np, &oom)
                                  : NULL;
        for (size_t i = 0, o = 0; i < np; i++) {
            et_phi_finding f = own[i];
            f.start += parts[p].offset;
            f.end += parts[p].offset;
            /* joined findings are sorted: skip those wholly before f, keep one that
             * overlaps it */
            while (o < nj && joined[o].end <= f.start) o++;
            if (o < nj && joined[o].start < f.end) continue; /* the joined text has it */
            while (j < nj && joined[j].start < f.start) put_finding(joined[j++], counts, out, cap, &k);
            put_finding(f, counts, out, cap, &k);
        }
        free(own);
    }
    while (j < nj) put_finding(joined[j++], counts, out, cap, &k);
    free(joined);
    return k;
}

/* ----------------------------------------------------------- the report --- */

void et_phi_report_init(et_phi_report *r) { memset(r, 0, sizeof *r); }

typedef struct {
    et_phi_report *r;
    int64_t counts[ET_PHI_KINDS];
} record_scan;

static void scan_text(void *ctx, const char *text, size_t len, const et_phi_part *parts,
                      int n_parts) {
    record_scan *rs = ctx;
    rs->r->fields_scanned += n_parts;
    et_phi_scan_parts(text, len, parts, n_parts, rs->counts, NULL, 0);
}

int64_t et_phi_scan_record(et_phi_report *r, const cJSON *record, int64_t line_no) {
    record_scan rs = {.r = r};
    et_phi_record_texts(record, scan_text, &rs);
    r->lines_scanned++;
    int64_t total = 0;
    uint16_t kinds = 0;
    for (int k = 0; k < ET_PHI_KINDS; k++) {
        r->counts[k] += rs.counts[k];
        total += rs.counts[k];
        if (rs.counts[k]) kinds |= (uint16_t)(1u << k);
    }
    r->total += total;
    if (total) {
        r->lines_with_findings++;
        if (r->n_lines < ET_PHI_MAX_LINES) {
            r->lines[r->n_lines] = line_no;
            r->line_kinds[r->n_lines] = kinds;
            r->n_lines++;
        }
    }
    return total;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

int et_phi_json_has_nul_escape(const char *s, size_t len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < len && !memcmp(s + i + 2, "0000", 4)) return 1;
        i++; /* skip the escaped character: the JSON text \\u0000 is a backslash + "u0000" */
    }
    return 0;
}

int et_phi_scan_jsonl(const char *path, et_phi_report *r, et_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t line_no = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        line_no++;
        char *s = line;
        size_t len = (size_t)n;
        if (line_no == 1 && len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, len -= 3;
        if (is_blank(s, len)) continue;
        if (memchr(s, 0, len)) { /* cJSON would end the string there: the rest unscanned */
            rc = et_fail(err, "%s: line %lld: contains a NUL byte, which would hide the text "
                              "after it from the scan; remove it", path, (long long)line_no);
            break;
        }
        if (et_phi_json_has_nul_escape(s, len)) {
            rc = et_fail(err, "%s: line %lld: a string holds \\u0000, which would hide the "
                              "text after it from the scan; remove it", path, (long long)line_no);
            break;
        }
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(s, len, &end, 0);
        if (obj && end && !is_blank(end, len - (size_t)(end - s))) {
            cJSON_Delete(obj);
            rc = et_fail(err, "%s: line %lld: text after the JSON object (byte %zu of the line); "
                              "every line must be one JSON object",
                         path, (long long)line_no, (size_t)(end - s) + 1);
            break;
        }
        if (!obj || !cJSON_IsObject(obj)) {
            /* the byte offset, never the text: it may hold PHI */
            size_t at = obj ? 0 : (size_t)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - s : 0);
            cJSON_Delete(obj);
            rc = et_fail(err,
                         "%s: line %lld: %s (byte %zu of the line); every line must be one "
                         "JSON object",
                         path, (long long)line_no, obj ? "not a JSON object" : "invalid JSON",
                         at + 1);
            break;
        }
        et_phi_scan_record(r, obj, line_no);
        cJSON_Delete(obj);
    }
    if (!rc && ferror(f))
        rc = et_fail(err, "%s: read error after line %lld: %s", path, (long long)line_no,
                     strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------- summary --- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
}

#define SUMMARY_LINES 20

char *et_phi_report_json(const et_phi_report *r, int allowed, int lines_by_kind) {
    sbuf b = {.buf = malloc(512), .cap = 512};
    if (!b.buf) return NULL;
    b.buf[0] = 0;
    put(&b, "{\"scanned\": true, \"scanner\": \"ehrtune-phi/1\", \"lines_scanned\": %lld, "
            "\"fields_scanned\": %lld, \"findings\": {",
        (long long)r->lines_scanned, (long long)r->fields_scanned);
    for (int k = 0; k < ET_PHI_KINDS; k++)
        put(&b, "%s\"%s\": %lld", k ? ", " : "", et_phi_kind_name(k), (long long)r->counts[k]);
    put(&b, "}, \"total_findings\": %lld, \"lines_with_findings\": %lld, \"first_lines\": [",
        (long long)r->total, (long long)r->lines_with_findings);
    for (int i = 0; i < r->n_lines && i < SUMMARY_LINES; i++)
        put(&b, "%s%lld", i ? ", " : "", (long long)r->lines[i]);
    put(&b, "], \"allowed\": %s", allowed ? "true" : "false");
    if (lines_by_kind) {
        put(&b, ", \"lines_by_kind\": {");
        int first_kind = 1;
        for (int k = 0; k < ET_PHI_KINDS; k++) {
            if (!r->counts[k]) continue;
            put(&b, "%s\"%s\": [", first_kind ? "" : ", ", et_phi_kind_name(k));
            first_kind = 0;
            int shown = 0;
            for (int i = 0; i < r->n_lines && shown < SUMMARY_LINES; i++)
                if (r->line_kinds[i] >> k & 1) put(&b, "%s%lld", shown++ ? ", " : "", (long long)r->lines[i]);
            put(&b, "]");
        }
        put(&b, "}");
    }
    put(&b, "}");
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}
