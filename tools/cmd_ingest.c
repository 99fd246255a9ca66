/* ehrtune ingest: JSONL documents -> corpus HDF5 (schema v1, data/corpus.h).
 *
 * Two inputs, one JSON object per line, read one line at a time (memory does not grow
 * with the file, apart from 8 bytes per document to count distinct patients):
 *   text (--tokenizer):  {"patient_id", "text" | "prompt"+"response" | "messages",
 *                         "structured"?, "group"?}, rendered by data/render.h, every
 *                         string PHI-scanned first, the document's text as it is
 *                         tokenized (data/phi_scan.h);
 *   --pretokenized:      {"patient_id", "tokens": [..], "loss_mask": [..]?, "group"?}.
 *
 * Patient ids (docs/corpus.md): a JSON integer (|id| <= 2^53) is used as is; a
 * string in canonical decimal form ("123", "-5", no leading zeros) with
 * |id| < 2^62 is that integer; any other string maps to the first 8 bytes
 * (big-endian) of SHA-256(string), top two bits forced to 01, i.e. an id in
 * [2^62, 2^63) that no integer id can take. The map is stable across files and
 * runs. A hash collision would merge two patients into one privacy unit, which
 * is conservative for patient-level DP (one unit then covers both).
 *
 * Splits are per patient: u = splitmix64(splitmix64(seed) ^ id) / 2^64 (top 53
 * bits); u < test_frac -> test, u < test_frac + val_frac -> val, else train.
 * The same patient always lands in the same split, whatever file order. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "data/corpus.h"
#include "data/phi_scan.h"
#include "data/render.h"
#include "data/tokenizer.h"
#include "data/sha256.h"
#include "tools/cli_args.h"
#include "tools/commands.h"

/* ---------------------------------------------- patient ids and splits --- */

#define ID_HASH_BASE ((int64_t)1 << 62)
#define MAX_JSON_INT 9007199254740992.0 /* 2^53: beyond it doubles skip integers */

static int64_t patient_id_from_string(const char *s) {
    const char *p = s + (s[0] == '-');
    size_t n = strlen(p);
    int canonical = n > 0 && n <= 19 && !(p[0] == '0' && (n > 1 || s[0] == '-'));
    for (size_t i = 0; canonical && i < n; i++) canonical = p[i] >= '0' && p[i] <= '9';
    if (canonical) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0 && v < ID_HASH_BASE && v > -ID_HASH_BASE) return v;
    }
    et_sha256 c;
    uint8_t d[ET_SHA256_DIGEST_BYTES];
    et_sha256_init(&c);
    et_sha256_update(&c, s, strlen(s));
    et_sha256_final(&c, d);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h = h << 8 | d[i];
    return (int64_t)((h & (((uint64_t)1 << 62) - 1)) | ((uint64_t)1 << 62));
}

static uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int split_of(int64_t patient_id, uint64_t seed, double val_frac, double test_frac) {
    double u = (double)(splitmix64(splitmix64(seed) ^ (uint64_t)patient_id) >> 11) * 0x1p-53;
    if (u < test_frac) return ET_SPLIT_TEST;
    if (u < test_frac + val_frac) return ET_SPLIT_VAL;
    return ET_SPLIT_TRAIN;
}

/* ---------------------------------------------------------- arguments --- */

typedef struct {
    const char *input, *output, *text_input, *tokenizer, *chat, *eos_token;
    long long vocab_size;
    int force, allow_phi;
    double val_frac, test_frac;
    unsigned long long seed;
} ingest_args;

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune ingest notes.jsonl --tokenizer tokenizer.json -o corpus.h5 [options]\n"
            "       ehrtune ingest --pretokenized in.jsonl -o corpus.h5 [options]\n"
            "\n"
            "Writes a corpus HDF5 file (schema v1, docs/corpus.md) from JSONL, one document\n"
            "per line. Text lines: {\"patient_id\": 17 or \"id\", then \"text\", or \"prompt\" +\n"
            "\"response\" (prompt masked from the loss), or \"messages\" (chat; only assistant\n"
            "turns in the loss), \"structured\": {vitals, labs, diagnoses, medications}?,\n"
            "\"group\": {\"sex\": \"F\", ...}?}. Pretokenized lines: {\"patient_id\", \"tokens\":\n"
            "[...], \"loss_mask\": [...]?, \"group\"?}. A patient's documents all land in one split.\n"
            "Every text field is scanned for PHI first: findings (counts and line numbers,\n"
            "never the text) stop the ingest unless --allow-phi-findings.\n"
            "\n"
            "  --tokenizer FILE      HF tokenizer.json for text input\n"
            "  --chat-template T     llama3 | llama2 | chatml, for \"messages\" records\n"
            "  --eos-token TEXT      token ending every document (default: <|end_of_text|>,\n"
            "                        </s>, <|endoftext|> or <|im_end|>, the first that exists)\n"
            "  --allow-phi-findings  ingest despite PHI findings (recorded in the corpus)\n"
            "  --pretokenized FILE   input JSONL with token ids\n"
            "  -o, --output FILE     corpus to write (mode 0600; written to a temp name first)\n"
            "  --vocab-size V        reject token ids >= V (default: vocab_size = max id + 1)\n"
            "  --val-frac F          fraction of patients in the validation split (default 0)\n"
            "  --test-frac F         fraction of patients in the test split (default 0)\n"
            "  --split-seed S        seed of the per-patient split assignment (default 0)\n"
            "  --force               replace an existing output file\n");
}

static int parse_fraction(const char *flag, const char *s, double *out) {
    double v;
    if (et_cli_double(s, &v) || !(v >= 0.0 && v <= 1.0)) {
        fprintf(stderr, "ehrtune: ingest: %s wants a number in [0, 1]\n", flag);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, ingest_args *a) {
    memset(a, 0, sizeof *a);
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(arg, "--force")) {
            a->force = 1;
        } else if (!strcmp(arg, "--allow-phi-findings")) {
            a->allow_phi = 1;
        } else if (!strcmp(arg, "--pretokenized") || !strcmp(arg, "-o") || !strcmp(arg, "--output") ||
                   !strcmp(arg, "--vocab-size") || !strcmp(arg, "--val-frac") ||
                   !strcmp(arg, "--test-frac") || !strcmp(arg, "--split-seed") ||
                   !strcmp(arg, "--tokenizer") || !strcmp(arg, "--chat-template") ||
                   !strcmp(arg, "--eos-token")) {
            /* -o and --output are one option */
            const char *name = !strcmp(arg, "--output") ? "-o" : arg;
            const char *v = et_cli_value("ehrtune: ingest", &seen, name, argc, argv, &i);
            if (!v) return -1;
            if (!strcmp(arg, "--pretokenized")) a->input = v;
            else if (!strcmp(arg, "--tokenizer")) a->tokenizer = v;
            else if (!strcmp(arg, "--chat-template")) a->chat = v;
            else if (!strcmp(arg, "--eos-token")) a->eos_token = v;
            else if (!strcmp(arg, "-o") || !strcmp(arg, "--output")) a->output = v;
            else if (!strcmp(arg, "--val-frac")) { if (parse_fraction(arg, v, &a->val_frac)) return -1; }
            else if (!strcmp(arg, "--test-frac")) { if (parse_fraction(arg, v, &a->test_frac)) return -1; }
            else if (!strcmp(arg, "--vocab-size")) {
                if (et_cli_int(v, 1, 1LL << 31, &a->vocab_size)) {
                    fprintf(stderr, "ehrtune: ingest: --vocab-size wants an integer in [1, 2^31]\n");
                    return -1;
                }
            } else {
                if (et_cli_uint(v, &a->seed)) {
                    fprintf(stderr, "ehrtune: ingest: --split-seed wants a non-negative integer\n");
                    return -1;
                }
            }
        } else if (arg[0] == '-' && arg[1]) {
            fprintf(stderr, "ehrtune: ingest: unknown option '%s' (see ehrtune ingest --help)\n", arg);
            return -1;
        } else if (!a->text_input) {
            a->text_input = arg;
        } else {
            fprintf(stderr, "ehrtune: ingest: unexpected argument '%s'\n", arg);
            return -1;
        }
    }
    if (a->input && (a->text_input || a->tokenizer || a->chat)) {
        fprintf(stderr, "ehrtune: ingest: --pretokenized takes no %s\n",
                a->tokenizer ? "--tokenizer" : a->chat ? "--chat-template" : "second input file");
        return -1;
    }
    if (!a->input) {
        if (!a->text_input) {
            fprintf(stderr, "ehrtune: ingest: give notes.jsonl --tokenizer tokenizer.json, or "
                            "--pretokenized in.jsonl\n");
            return -1;
        }
        if (!a->tokenizer) {
            fprintf(stderr, "ehrtune: ingest: text input needs --tokenizer tokenizer.json (or "
                            "use --pretokenized for token ids)\n");
            return -1;
        }
        a->input = a->text_input;
    }
    if (!a->output) {
        fprintf(stderr, "ehrtune: ingest: -o corpus.h5 is required\n");
        return -1;
    }
    if (a->val_frac + a->test_frac > 1.0) {
        fprintf(stderr, "ehrtune: ingest: --val-frac + --test-frac is above 1\n");
        return -1;
    }
    return 0;
}

/* -------------------------------------------------------------- lines --- */

typedef struct {
    const char *file;
    long line;
    int64_t vocab_size;
    int32_t *tokens;
    uint8_t *mask;
    size_t cap;
    int64_t *doc_patients; /* patient id of every document, for the patient count */
    int64_t n_docs, docs_cap, n_tokens;
    int64_t docs_per_split[3];
    /* text input */
    const et_renderer *renderer; /* NULL = pretokenized */
    et_doc doc;
    et_phi_report phi;
} ingest_state;

static int line_fail(ingest_state *st, et_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int line_fail(ingest_state *st, et_error *err, const char *fmt, ...) {
    char what[ET_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return et_fail(err, "%s:%ld: %s", st->file, st->line, what);
}

/* A JSON number that is an integer in [lo, hi] (no values are ever echoed). */
static int json_int(const cJSON *v, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double x = v->valuedouble;
    if (!isfinite(x) || x != floor(x) || x < lo || x > hi) return -1;
    *out = (int64_t)x;
    return 0;
}

static int read_patient_id(ingest_state *st, const cJSON *v, int64_t *out, et_error *err) {
    if (!v) return line_fail(st, err, "missing \"patient_id\"");
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return line_fail(st, err, "\"patient_id\" is an empty string");
        *out = patient_id_from_string(v->valuestring);
        return 0;
    }
    if (json_int(v, -MAX_JSON_INT, MAX_JSON_INT, out))
        return line_fail(st, err, "\"patient_id\" must be a string or an integer within +-2^53 "
                                  "(give larger ids as strings)");
    return 0;
}

static int read_tokens(ingest_state *st, const cJSON *toks, const cJSON *mask, int64_t *n_out,
                       et_error *err) {
    if (!toks) return line_fail(st, err, "missing \"tokens\" (--pretokenized needs token ids)");
    if (!cJSON_IsArray(toks)) return line_fail(st, err, "\"tokens\" is not an array");
    size_t n = (size_t)cJSON_GetArraySize(toks);
    if (n == 0) return line_fail(st, err, "\"tokens\" is empty");
    if (mask && !cJSON_IsArray(mask)) return line_fail(st, err, "\"loss_mask\" is not an array");
    if (mask && (size_t)cJSON_GetArraySize(mask) != n)
        return line_fail(st, err, "\"loss_mask\" has %d values but \"tokens\" has %zu",
                         cJSON_GetArraySize(mask), n);
    if (n > st->cap) {
        size_t cap = n > 2 * st->cap ? n : 2 * st->cap;
        int32_t *t = realloc(st->tokens, cap * sizeof *t);
        if (t) st->tokens = t;
        uint8_t *m = realloc(st->mask, cap);
        if (m) st->mask = m;
        if (!t || !m) return line_fail(st, err, "out of memory for %zu tokens", n);
        st->cap = cap;
    }
    double hi = st->vocab_size > 0 ? (double)st->vocab_size - 1 : (double)INT32_MAX;
    size_t i = 0;
    for (const cJSON *v = toks->child; v; v = v->next, i++) {
        int64_t t;
        if (json_int(v, 0, hi, &t)) {
            if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble < 0)
                return line_fail(st, err, "tokens[%zu] is negative", i);
            if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && st->vocab_size > 0)
                return line_fail(st, err, "tokens[%zu] is >= --vocab-size %lld", i,
                                 (long long)st->vocab_size);
            return line_fail(st, err, "tokens[%zu] is not an integer in [0, 2^31)", i);
        }
        st->tokens[i] = (int32_t)t;
    }
    i = 0;
    for (const cJSON *v = mask ? mask->child : NULL; v; v = v->next, i++) {
        int64_t m;
        if (cJSON_IsBool(v)) m = cJSON_IsTrue(v);
        else if (json_int(v, 0, 1, &m))
            return line_fail(st, err, "loss_mask[%zu] is not 0, 1, true or false", i);
        st->mask[i] = (uint8_t)m;
    }
    *n_out = (int64_t)n;
    return 0;
}

static int read_groups(ingest_state *st, const cJSON *grp, const char **names, const char **labels,
                       int *n_out, et_error *err) {
    *n_out = 0;
    if (!grp || cJSON_IsNull(grp)) return 0;
    if (!cJSON_IsObject(grp)) return line_fail(st, err, "\"group\" is not an object");
    int n = 0;
    for (const cJSON *v = grp->child; v; v = v->next) {
        if (n == ET_CORPUS_MAX_GROUPS)
            return line_fail(st, err, "\"group\" has more than %d entries", ET_CORPUS_MAX_GROUPS);
        /* the entry by its position, never its key: keys come from the record and
         * may hold PHI ("Jane Doe 617-555-0142": 5) */
        if (!cJSON_IsString(v) && !cJSON_IsNull(v))
            return line_fail(st, err, "\"group\" entry %d (0-based) must be a string label or null",
                             n);
        names[n] = v->string;
        labels[n] = cJSON_IsString(v) ? v->valuestring : NULL;
        n++;
    }
    *n_out = n;
    return 0;
}

static int ingest_line(ingest_state *st, const ingest_args *a, et_corpus_writer *w, char *line,
                       size_t len, et_error *err) {
    if (memchr(line, 0, len)) return line_fail(st, err, "contains a NUL byte");
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!obj) {
        const char *at = cJSON_GetErrorPtr();
        if (at >= line && at <= line + len)
            return line_fail(st, err, "malformed JSON near column %ld", (long)(at - line) + 1);
        return line_fail(st, err, "malformed JSON");
    }
    int rc = -1;
    for (const char *p = end; p && p < line + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            line_fail(st, err, "extra text after the JSON object at column %ld", (long)(p - line) + 1);
            goto done;
        }
    if (!cJSON_IsObject(obj)) {
        line_fail(st, err, "not a JSON object");
        goto done;
    }
    if (!st->renderer && cJSON_GetObjectItemCaseSensitive(obj, "structured")) {
        line_fail(st, err, "\"structured\" fields are not supported with --pretokenized (they are "
                           "serialised into text by the text ingestion path)");
        goto done;
    }
    int64_t pid = 0, n_tokens = 0;
    const char *names[ET_CORPUS_MAX_GROUPS], *labels[ET_CORPUS_MAX_GROUPS];
    int n_groups;
    if (read_patient_id(st, cJSON_GetObjectItemCaseSensitive(obj, "patient_id"), &pid, err) ||
        read_groups(st, cJSON_GetObjectItemCaseSensitive(obj, "group"), names, labels, &n_groups,
                    err))
        goto done;
    const int32_t *tokens = NULL;
    const uint8_t *mask = NULL;
    if (st->renderer) {
        /* PHI first (counts and line numbers only), then render. A \u0000 escape would
         * hide the rest of its string from both, so such lines are refused. */
        if (et_phi_json_has_nul_escape(line, len)) {
            line_fail(st, err, "a string holds the escape \\u0000; remove it");
            goto done;
        }
        et_phi_scan_record(&st->phi, obj, st->line);
        if (et_render_record(&st->doc, st->renderer, obj, err)) {
            et_wrap(err, "%s:%ld", st->file, st->line);
            goto done;
        }
        tokens = st->doc.ids;
        mask = st->doc.mask;
        n_tokens = (int64_t)st->doc.n;
    } else {
        if (read_tokens(st, cJSON_GetObjectItemCaseSensitive(obj, "tokens"),
                        cJSON_GetObjectItemCaseSensitive(obj, "loss_mask"), &n_tokens, err))
            goto done;
        tokens = st->tokens; /* read_tokens may have grown (moved) the buffer */
        if (cJSON_GetObjectItemCaseSensitive(obj, "loss_mask")) mask = st->mask;
    }
    int split = split_of(pid, a->seed, a->val_frac, a->test_frac);
    et_corpus_doc doc = {
        .patient_id = pid,
        .split = split,
        .tokens = tokens,
        .n_tokens = n_tokens,
        .loss_mask = mask,
        .n_groups = n_groups,
        .group_names = names,
        .group_labels = labels,
    };
    if (et_corpus_writer_add(w, &doc, err)) {
        et_wrap(err, "%s:%ld", st->file, st->line);
        goto done;
    }
    if (st->n_docs == st->docs_cap) {
        int64_t cap = st->docs_cap ? 2 * st->docs_cap : 1024;
        int64_t *p = realloc(st->doc_patients, (size_t)cap * sizeof *p);
        if (!p) {
            line_fail(st, err, "out of memory");
            goto done;
        }
        st->doc_patients = p;
        st->docs_cap = cap;
    }
    st->doc_patients[st->n_docs++] = pid;
    st->n_tokens += n_tokens;
    st->docs_per_split[split]++;
    rc = 0;
done:
    cJSON_Delete(obj);
    return rc;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t count_distinct(int64_t *v, int64_t n) {
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += i == 0 || v[i] != v[i - 1];
    return k;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* "phone 2, name_after_title 1": the kinds with findings and their counts (no text). */
static void phi_counts_by_kind(const et_phi_report *r, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < ET_PHI_KINDS && len < cap; k++)
        if (r->counts[k])
            len += (size_t)snprintf(out + len, cap - len, "%s%s %lld", len ? ", " : "",
                                    et_phi_kind_name(k), (long long)r->counts[k]);
}

/* The first 10 line numbers with findings, comma-separated. */
static void phi_first_lines(const et_phi_report *r, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < r->n_lines && i < 10 && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? ", " : "",
                                (long long)r->lines[i]);
}

static int ingest(const ingest_args *a, ingest_state *st, et_error *err) {
    FILE *f = fopen(a->input, "rb");
    if (!f) return et_fail(err, "%s: cannot open: %s", a->input, strerror(errno));
    st->file = a->input;
    st->vocab_size = a->vocab_size;
    et_corpus_writer_options opt = {
        .tokenizer_sha256 = "", /* pretokenized: no tokenizer */
        .vocab_size = a->vocab_size,
        .phi_scan = "{\"scanned\": false, \"reason\": \"pretokenized input\"}",
        .force = a->force,
    };
    et_corpus_writer *w = NULL;
    et_tokenizer *tok = NULL;
    et_renderer renderer;
    char tok_hex[ET_SHA256_HEX_CHARS + 1];
    et_phi_report_init(&st->phi);
    if (a->tokenizer) {
        et_chat_template chat = ET_CHAT_NONE;
        if ((a->chat && et_chat_template_parse(a->chat, &chat, err)) ||
            et_tokenizer_load(&tok, a->tokenizer, err) ||
            et_renderer_init(&renderer, tok, chat, a->eos_token, err) ||
            et_sha256_file(a->tokenizer, tok_hex, err)) {
            et_tokenizer_free(tok);
            fclose(f);
            return -1;
        }
        st->renderer = &renderer;
        opt.tokenizer_sha256 = tok_hex;
        opt.vocab_size = et_tokenizer_vocab_size(tok);
        st->vocab_size = opt.vocab_size;
    }
    int show_progress = isatty(STDERR_FILENO);
    struct timespec t0, tn;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double last_shown = 0;
    et_sha256 sha;
    et_sha256_init(&sha);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    int rc = -1;
    if (et_corpus_writer_open(&w, a->output, &opt, err)) goto done;
    while ((n = getline(&line, &line_cap, f)) >= 0) {
        et_sha256_update(&sha, line, (size_t)n); /* the hash covers exactly the bytes parsed */
        st->line++;
        char *text = line;
        size_t len = (size_t)n;
        if (st->line == 1 && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3;
        if (is_blank(text, len)) continue;
        if (ingest_line(st, a, w, text, len, err)) goto done;
        if (show_progress && (st->n_docs & 255) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &tn);
            double dt = (double)(tn.tv_sec - t0.tv_sec) + (tn.tv_nsec - t0.tv_nsec) * 1e-9;
            if (dt - last_shown >= 0.5) {
                fprintf(stderr, "\r\033[Kingest: %lld records, %.0f records/s",
                        (long long)st->n_docs, (double)st->n_docs / (dt > 0 ? dt : 1e-9));
                last_shown = dt;
            }
        }
    }
    if (show_progress && last_shown > 0) fputs("\r\033[K", stderr);
    if (ferror(f)) {
        et_fail(err, "%s: read error after line %ld: %s", a->input, st->line, strerror(errno));
        goto done;
    }
    if (st->n_docs == 0) {
        et_fail(err, "%s: no documents (the file is empty or blank)", a->input);
        goto done;
    }
    uint8_t digest[ET_SHA256_DIGEST_BYTES];
    char source_hex[ET_SHA256_HEX_CHARS + 1];
    et_sha256_final(&sha, digest);
    et_sha256_digest_hex(digest, source_hex);
    if (et_corpus_writer_set_source_sha256(w, source_hex, err)) goto done;
    if (st->renderer) {
        /* The scan summary is stored either way; findings stop the ingest unless allowed. */
        char *summary = et_phi_report_json(&st->phi, a->allow_phi && st->phi.total > 0, 0);
        int bad = !summary || et_corpus_writer_set_phi_scan(w, summary, err);
        free(summary);
        if (bad) {
            if (!err->msg[0]) et_fail(err, "out of memory");
            goto done;
        }
        if (st->phi.total > 0 && !a->allow_phi) {
            char by_kind[512], lines[256];
            phi_counts_by_kind(&st->phi, by_kind, sizeof by_kind);
            phi_first_lines(&st->phi, lines, sizeof lines);
            et_fail(err, "%s: the PHI scan found %lld possible identifier(s) on %lld line(s) "
                         "(by kind: %s; first lines: %s); run `ehrtune phi-scan %s` for the "
                         "lines of each kind, de-identify, or pass --allow-phi-findings. "
                         "Nothing was written.",
                    a->input, (long long)st->phi.total, (long long)st->phi.lines_with_findings,
                    by_kind, lines, a->input);
            goto done;
        }
    }
    rc = et_corpus_writer_finish(w, err);
    w = NULL;
done:
    et_corpus_writer_abort(w);
    et_tokenizer_free(tok);
    et_doc_free(&st->doc);
    free(line);
    fclose(f);
    return rc;
}

int cmd_ingest(int argc, char **argv) {
    ingest_args a;
    int parsed = parse_args(argc, argv, &a);
    if (parsed > 0) return 0; /* --help */
    if (parsed < 0) return 2;
    ingest_state st = {0};
    et_error err = {{0}};
    int rc = ingest(&a, &st, &err);
    if (rc == 0)
        printf("ingested %lld documents, %lld tokens, %lld patients (documents train/val/test: "
               "%lld/%lld/%lld) -> %s\n",
               (long long)st.n_docs, (long long)st.n_tokens,
               (long long)count_distinct(st.doc_patients, st.n_docs),
               (long long)st.docs_per_split[0], (long long)st.docs_per_split[1],
               (long long)st.docs_per_split[2], a.output);
    if (rc == 0 && a.tokenizer) {
        if (st.phi.total == 0)
            printf("PHI scan: no findings in %lld text fields\n", (long long)st.phi.fields_scanned);
        else
            printf("PHI scan: %lld finding(s) on %lld line(s), let through by "
                   "--allow-phi-findings and recorded in the corpus\n",
                   (long long)st.phi.total, (long long)st.phi.lines_with_findings);
    }
    if (rc != 0)
        fprintf(stderr, "ehrtune: ingest: %s\n", err.msg);
    free(st.tokens);
    free(st.mask);
    free(st.doc_patients);
    return rc == 0 ? 0 : 1;
}
