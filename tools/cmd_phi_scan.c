/* ehrtune phi-scan: the PHI guard alone over a JSONL file (data/phi_scan.h).
 *
 * Prints counts by kind and the line numbers that hold findings, never the
 * matched text. Exit status: 0 no findings, 1 findings, 2 usage or input error.
 *
 * With --truth FILE (the list `ehrtune synth --plant-phi --phi-truth FILE`
 * writes) it is the guard's benchmark instead: per kind and per surface variant,
 * how many planted identifiers a finding of the same kind overlaps (recall), and
 * how many findings fall on no planted span. Exit 0 once the evaluation ran. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "data/phi_scan.h"
#include "tools/commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune phi-scan FILE.jsonl [--json]\n"
            "       ehrtune phi-scan FILE.jsonl --truth TRUTH.jsonl [--json]\n"
            "\n"
            "Scans each JSONL line's document as ingest tokenizes it (the rendered structured\n"
            "block with text, or with prompt + response, joined; message contents) and every\n"
            "other string and key (group labels, ...; not patient_id) for the HIPAA\n"
            "Safe Harbor identifiers patterns can catch: ssn, phone, fax, email, url, ip,\n"
            "mrn, street_address, zip, date, age_over_89, name_after_title. Prints counts\n"
            "by kind and line numbers; never the matched text.\n"
            "\n"
            "  --json          one JSON object (the summary ingest stores as the corpus\n"
            "                  attribute phi_scan, plus lines_by_kind)\n"
            "  --truth FILE    benchmark mode: recall per kind and variant against the\n"
            "                  planted identifiers listed in FILE (ehrtune synth --plant-phi)\n"
            "\n"
            "Exit status: 0 no findings, 1 findings, 2 usage or input error; with --truth,\n"
            "0 once the evaluation ran. See docs/phi.md.\n");
}

/* ------------------------------------------------------------ plain scan --- */

static int print_report(const char *path, const et_phi_report *r, int json) {
    if (json) {
        char *s = et_phi_report_json(r, 0, 1);
        if (!s) {
            fprintf(stderr, "ehrtune: phi-scan: out of memory\n");
            return 2;
        }
        printf("%s\n", s);
        free(s);
        return r->total ? 1 : 0;
    }
    printf("phi-scan: %s: %lld lines, %lld strings scanned\n", path, (long long)r->lines_scanned,
           (long long)r->fields_scanned);
    printf("%-18s %9s  %s\n", "kind", "findings", "lines");
    for (int k = 0; k < ET_PHI_KINDS; k++) {
        printf("%-18s %9lld ", et_phi_kind_name(k), (long long)r->counts[k]);
        int shown = 0;
        for (int i = 0; i < r->n_lines && shown < 10; i++)
            if (r->line_kinds[i] >> k & 1) printf("%s%lld", shown++ ? ", " : " ", (long long)r->lines[i]);
        if (r->counts[k] && shown == 10) printf(", ...");
        printf("\n");
    }
    double pct = r->lines_scanned ? 100.0 * (double)r->lines_with_findings / (double)r->lines_scanned : 0;
    printf("total: %lld findings on %lld of %lld lines (%.2f%%)%s\n", (long long)r->total,
           (long long)r->lines_with_findings, (long long)r->lines_scanned, pct,
           r->lines_with_findings > r->n_lines ? "; line list truncated" : "");
    return r->total ? 1 : 0;
}

/* -------------------------------------------------------- benchmark mode --- */

typedef struct {
    int64_t line;
    char *field, *variant;
    int kind;
    size_t start, end;
    int found, other, seen;
} truth_item;

typedef struct {
    int kind;
    char *variant;
    int64_t planted, found;
} variant_count;

typedef struct {
    truth_item *items;
    size_t n, cap, next; /* next: first item of the current line */
    int64_t planted[ET_PHI_KINDS], found[ET_PHI_KINDS], as_other[ET_PHI_KINDS];
    int64_t unexpected[ET_PHI_KINDS];
    variant_count *variants;
    size_t n_variants;
    et_phi_finding *findings;
    size_t findings_cap;
    int64_t line;
    int oom, mismatch;
} bench;

static int cmp_item(const void *a, const void *b) {
    const truth_item *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

/* A JSON number that is an integer in [lo, hi], into *out (1e300, 2.5, -1 fail). */
static int json_index(const cJSON *v, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double x = v->valuedouble;
    if (!(x >= lo && x <= hi) || x != (double)(int64_t)x) return -1;
    *out = (int64_t)x;
    return 0;
}

#define MAX_TRUTH_NUMBER 9007199254740991.0 /* 2^53 - 1: "below 2^53", where doubles still hold every integer */

static int load_truth(bench *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ehrtune: phi-scan: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t no = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        no++;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!o && strspn(line, " \t\r\n") == (size_t)n) continue;
        const cJSON *fd = cJSON_GetObjectItemCaseSensitive(o, "field"),
                    *k = cJSON_GetObjectItemCaseSensitive(o, "kind"),
                    *v = cJSON_GetObjectItemCaseSensitive(o, "variant");
        int kind = cJSON_IsString(k) ? et_phi_kind_from_name(k->valuestring) : -1;
        int64_t ln = 0, start = 0, end = 0;
        /* integers in range, not any double: (size_t)1e300 is undefined behaviour */
        if (json_index(cJSON_GetObjectItemCaseSensitive(o, "line"), 1, MAX_TRUTH_NUMBER, &ln) ||
            json_index(cJSON_GetObjectItemCaseSensitive(o, "start"), 0, MAX_TRUTH_NUMBER, &start) ||
            json_index(cJSON_GetObjectItemCaseSensitive(o, "end"), 0, MAX_TRUTH_NUMBER, &end) ||
            !cJSON_IsString(fd) || kind < 0 || end <= start) {
            fprintf(stderr, "ehrtune: phi-scan: %s: line %lld: expected {\"line\": N >= 1, "
                            "\"field\": \"...\", \"kind\": <a kind name>, \"start\": S, "
                            "\"end\": E > S}, with N, S and E integers below 2^53\n",
                    path, (long long)no);
            rc = -1;
        } else {
            if (b->n == b->cap) {
                b->cap = b->cap ? 2 * b->cap : 1024;
                truth_item *ni = realloc(b->items, b->cap * sizeof *ni);
                if (!ni) {
                    fprintf(stderr, "ehrtune: phi-scan: out of memory\n");
                    rc = -1;
                    cJSON_Delete(o);
                    break;
                }
                b->items = ni;
            }
            b->items[b->n++] = (truth_item){
                .line = ln, .field = strdup(fd->valuestring),
                .variant = strdup(cJSON_IsString(v) ? v->valuestring : "-"), .kind = kind,
                .start = (size_t)start, .end = (size_t)end};
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (rc == 0) qsort(b->items, b->n, sizeof *b->items, cmp_item);
    return rc;
}

/* One text of a record (et_phi_record_texts): planted spans, given per field, are
 * placed where their field sits in the text, and compared with its findings. */
static void score_text(void *ctx, const char *text, size_t len, const et_phi_part *parts,
                       int n_parts) {
    bench *b = ctx;
    size_t n = et_phi_scan_parts(text, len, parts, n_parts, NULL, b->findings, b->findings_cap);
    if (n > b->findings_cap) {
        et_phi_finding *nf = realloc(b->findings, n * sizeof *nf);
        if (!nf) {
            b->oom = 1;
            return;
        }
        b->findings = nf;
        b->findings_cap = n;
        et_phi_scan_parts(text, len, parts, n_parts, NULL, b->findings, n);
    }
    char *matched = calloc(n ? n : 1, 1);
    if (!matched) {
        b->oom = 1;
        return;
    }
    for (size_t t = b->next; t < b->n && b->items[t].line == b->line; t++) {
        truth_item *it = &b->items[t];
        const et_phi_part *part = NULL;
        for (int p = 0; p < n_parts && !part; p++)
            if (!strcmp(it->field, parts[p].path)) part = &parts[p];
        if (!part) continue;
        it->seen = 1;
        if (it->end > part->len) {
            b->mismatch = 1;
            continue;
        }
        size_t start = part->offset + it->start, end = part->offset + it->end;
        for (size_t i = 0; i < n; i++) {
            if (b->findings[i].start >= end || start >= b->findings[i].end) continue;
            matched[i] = 1;
            if (b->findings[i].kind == it->kind) it->found = 1;
            else it->other = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!matched[i]) b->unexpected[b->findings[i].kind]++;
    free(matched);
}

static int cmp_variant(const void *a, const void *b) {
    const variant_count *x = a, *y = b;
    return x->kind != y->kind ? x->kind - y->kind : strcmp(x->variant, y->variant);
}

static variant_count *variant_slot(bench *b, int kind, const char *variant) {
    for (size_t i = 0; i < b->n_variants; i++)
        if (b->variants[i].kind == kind && !strcmp(b->variants[i].variant, variant))
            return &b->variants[i];
    variant_count *nv = realloc(b->variants, (b->n_variants + 1) * sizeof *nv);
    if (!nv) return NULL;
    b->variants = nv;
    nv[b->n_variants] = (variant_count){kind, (char *)variant, 0, 0};
    return &nv[b->n_variants++];
}

/* variant names come from the truth file: escape them */
static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static int run_benchmark(const char *notes, const char *truth_path, int json) {
    bench b;
    memset(&b, 0, sizeof b);
    int rc = 2;
    FILE *f = NULL;
    char *line = NULL;
    if (load_truth(&b, truth_path)) goto done;
    f = fopen(notes, "rb");
    if (!f) {
        fprintf(stderr, "ehrtune: phi-scan: %s: cannot open: %s\n", notes, strerror(errno));
        goto done;
    }
    size_t cap = 0;
    ssize_t n;
    int64_t lines = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        b.line++;
        while (b.next < b.n && b.items[b.next].line < b.line) b.next++;
        if (strspn(line, " \t\r\n") == (size_t)n) continue;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            fprintf(stderr, "ehrtune: phi-scan: %s: line %lld: not a JSON object\n", notes,
                    (long long)b.line);
            goto done;
        }
        et_phi_record_texts(o, score_text, &b);
        cJSON_Delete(o);
        lines++;
        if (b.oom) {
            fprintf(stderr, "ehrtune: phi-scan: out of memory\n");
            goto done;
        }
    }
    if (b.n && b.items[b.n - 1].line > b.line) {
        fprintf(stderr, "ehrtune: phi-scan: %s names line %lld but %s has %lld lines: the "
                        "truth file belongs to another notes file\n",
                truth_path, (long long)b.items[b.n - 1].line, notes, (long long)b.line);
        goto done;
    }
    for (size_t t = 0; t < b.n && !b.mismatch; t++) b.mismatch = !b.items[t].seen;
    if (b.mismatch) {
        fprintf(stderr, "ehrtune: phi-scan: %s names a field or span that %s does not have: the "
                        "truth file belongs to another notes file\n", truth_path, notes);
        goto done;
    }
    for (size_t t = 0; t < b.n; t++) {
        truth_item *it = &b.items[t];
        b.planted[it->kind]++;
        b.found[it->kind] += it->found;
        b.as_other[it->kind] += !it->found && it->other;
        variant_count *vc = variant_slot(&b, it->kind, it->variant);
        if (!vc) {
            fprintf(stderr, "ehrtune: phi-scan: out of memory\n");
            goto done;
        }
        vc->planted++;
        vc->found += it->found;
    }
    qsort(b.variants, b.n_variants, sizeof *b.variants, cmp_variant);
    int64_t unexpected = 0;
    for (int k = 0; k < ET_PHI_KINDS; k++) unexpected += b.unexpected[k];
    if (json) {
        printf("{\"lines_scanned\": %lld, \"planted_total\": %zu, \"kinds\": {", (long long)lines, b.n);
        for (int k = 0; k < ET_PHI_KINDS; k++)
            printf("%s\"%s\": {\"planted\": %lld, \"found\": %lld, \"found_as_other_kind\": %lld, "
                   "\"recall\": %.6f, \"unexpected\": %lld}",
                   k ? ", " : "", et_phi_kind_name(k), (long long)b.planted[k],
                   (long long)b.found[k], (long long)b.as_other[k],
                   b.planted[k] ? (double)b.found[k] / (double)b.planted[k] : 0.0,
                   (long long)b.unexpected[k]);
        printf("}, \"variants\": [");
        for (size_t i = 0; i < b.n_variants; i++) {
            printf("%s{\"kind\": \"%s\", \"variant\": ", i ? ", " : "",
                   et_phi_kind_name(b.variants[i].kind));
            print_json_string(b.variants[i].variant);
            printf(", \"planted\": %lld, \"found\": %lld}", (long long)b.variants[i].planted,
                   (long long)b.variants[i].found);
        }
        printf("], \"unexpected_total\": %lld}\n", (long long)unexpected);
    } else {
        printf("phi-scan benchmark: %s against %s: %lld lines, %zu planted identifiers\n", notes,
               truth_path, (long long)lines, b.n);
        printf("%-18s %8s %8s %8s %14s %11s\n", "kind", "planted", "found", "recall",
               "as other kind", "unexpected");
        for (int k = 0; k < ET_PHI_KINDS; k++)
            printf("%-18s %8lld %8lld %8.4f %14lld %11lld\n", et_phi_kind_name(k),
                   (long long)b.planted[k], (long long)b.found[k],
                   b.planted[k] ? (double)b.found[k] / (double)b.planted[k] : 0.0,
                   (long long)b.as_other[k], (long long)b.unexpected[k]);
        printf("\n%-18s %-24s %8s %8s %8s\n", "kind", "variant", "planted", "found", "recall");
        for (size_t i = 0; i < b.n_variants; i++)
            printf("%-18s %-24s %8lld %8lld %8.4f\n", et_phi_kind_name(b.variants[i].kind),
                   b.variants[i].variant, (long long)b.variants[i].planted,
                   (long long)b.variants[i].found,
                   (double)b.variants[i].found / (double)b.variants[i].planted);
        printf("findings on no planted span: %lld\n", (long long)unexpected);
    }
    rc = 0;
done:
    if (f) fclose(f);
    free(line);
    for (size_t t = 0; t < b.n; t++) free(b.items[t].field), free(b.items[t].variant);
    free(b.items);
    free(b.variants);
    free(b.findings);
    return rc;
}

/* ----------------------------------------------------------------- main --- */

int cmd_phi_scan(int argc, char **argv) {
    const char *input = NULL, *truth = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--truth")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ehrtune: phi-scan: --truth needs a file\n");
                return 2;
            }
            if (truth) {
                fprintf(stderr, "ehrtune: phi-scan: --truth given twice (give it once)\n");
                return 2;
            }
            truth = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ehrtune: phi-scan: unknown option '%s' (see ehrtune phi-scan --help)\n", a);
            return 2;
        } else if (input) {
            fprintf(stderr, "ehrtune: phi-scan: one input file only\n");
            return 2;
        } else {
            input = a;
        }
    }
    if (!input) {
        fprintf(stderr, "ehrtune: phi-scan: no input file\n");
        usage(stderr);
        return 2;
    }
    if (truth) return run_benchmark(input, truth, json);
    et_phi_report *r = malloc(sizeof *r);
    if (!r) {
        fprintf(stderr, "ehrtune: phi-scan: out of memory\n");
        return 2;
    }
    et_phi_report_init(r);
    et_error err = {{0}};
    int rc;
    if (et_phi_scan_jsonl(input, r, &err)) {
        fprintf(stderr, "ehrtune: phi-scan: %s\n", err.msg);
        rc = 2;
    } else {
        rc = print_report(input, r, json);
    }
    free(r);
    return rc;
}
