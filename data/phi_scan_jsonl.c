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

/* skip_top: a top-level key whose subtree the caller scans another way (or NULL) */
static void walk(const cJSON *node, char *path, size_t plen, et_phi_field_fn fn, void *ctx,
                 int top, const char *skip_top) {
    if (cJSON_IsString(node) && node->valuestring) {
        fn(ctx, path, node->valuestring, strlen(node->valuestring));
        return;
    }
    int is_obj = cJSON_IsObject(node), i = 0;
    if (!is_obj && !cJSON_IsArray(node)) return; /* numbers, booleans, null: not text */
    for (const cJSON *c = node->child; c; c = c->next, i++) {
        size_t n;
        if (is_obj) {
            if (top && c->string && !strcmp(c->string, "patient_id")) continue;
            if (top && c->string && skip_top && !strcmp(c->string, skip_top)) continue;
            n = (size_t)snprintf(path + plen, PATH_MAX_CHARS - plen, "%s%s", plen ? "." : "",
                                 c->string ? c->string : "");
        } else {
            n = (size_t)snprintf(path + plen, PATH_MAX_CHARS - plen, "[%d]", i);
        }
        if (n >= PATH_MAX_CHARS - plen) n = PATH_MAX_CHARS - 1 - plen; /* truncated path */
        if (is_obj && !top && c->string) {
            /* keys of nested objects become text too ("labs": {"Na": 138} -> "Na 138") */
            char keypath[PATH_MAX_CHARS];
            snprintf(keypath, sizeof keypath, "%.*s{}", (int)plen, path);
            fn(ctx, keypath, c->string, strlen(c->string));
        }
        walk(c, path, plen + n, fn, ctx, 0, NULL);
        path[plen] = 0;
    }
}

void et_phi_walk_record(const cJSON *record, et_phi_field_fn fn, void *ctx) {
    char path[PATH_MAX_CHARS] = "";
    walk(record, path, 0, fn, ctx, 1, NULL);
}

/* ----------------------------------------------------------- the report --- */

void et_phi_report_init(et_phi_report *r) { memset(r, 0, sizeof *r); }

typedef struct {
    et_phi_report *r;
    int64_t counts[ET_PHI_KINDS];
} record_scan;

static void scan_field(void *ctx, const char *path, const char *s, size_t len) {
    (void)path;
    record_scan *rs = ctx;
    rs->r->fields_scanned++;
    et_phi_scan_text(s, len, rs->counts, NULL, 0);
}

int64_t et_phi_scan_record(et_phi_report *r, const cJSON *record, int64_t line_no) {
    record_scan rs = {.r = r};
    /* "structured" is scanned as the text the tokens are made of (et_render_structured:
     * numbers printed, each key joined to its value), not field by field: "age": 95
     * becomes "Age: 95.", {"Dr": "Smith"} "Dr Smith" — identifiers no single field holds
     * (found 2026-11-26). A block that does not render is walked field by field (ingest
     * then refuses the record anyway). */
    const cJSON *st = cJSON_IsObject(record) ? cJSON_GetObjectItemCaseSensitive(record, "structured") : NULL;
    char *rendered = NULL;
    et_error ignored;
    if (st && !cJSON_IsNull(st) && et_render_structured(&rendered, st, &ignored) == 0) {
        scan_field(&rs, "structured (rendered)", rendered, strlen(rendered));
        free(rendered);
        char path[PATH_MAX_CHARS] = "";
        walk(record, path, 0, scan_field, &rs, 1, "structured");
    } else {
        et_phi_walk_record(record, scan_field, &rs);
    }
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
