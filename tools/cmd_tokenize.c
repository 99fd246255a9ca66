/* ehrtune tokenize / detokenize: HF tokenizer.json from the command line.
 *   tokenize:   all of stdin is one UTF-8 text; stdout gets its ids on one line,
 *               separated by single spaces, then a newline (an empty text: an empty line).
 *   detokenize: stdin holds ids separated by whitespace; stdout gets the text, nothing
 *               added (no newline), so `tokenize | detokenize` gives the text back.
 * Output is produced only once everything succeeded, so a failure prints nothing to
 * stdout. `tokenize --bench N` times the encoding instead (docs/perf.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/tokenizer.h"
#include "tools/cli_args.h"
#include "tools/commands.h"

static int read_all(FILE *f, char **out, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (len == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return -1;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *n = len;
    return 0;
}

static int write_all(const char *p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) return -1;
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Encodes the text `runs` times after one warm-up; prints one JSON line. */
static int bench(const et_tokenizer *t, const char *text, size_t len, int flags, int runs) {
    et_error err;
    int32_t *ids;
    size_t n;
    double *secs = malloc((size_t)runs * sizeof *secs);
    if (!secs) return 1;
    for (int r = -1; r < runs; r++) {
        double t0 = now_s();
        if (et_tokenizer_encode(t, text, len, flags, &ids, &n, &err)) {
            fprintf(stderr, "ehrtune: tokenize: %s\n", err.msg);
            free(secs);
            return 1;
        }
        double dt = now_s() - t0;
        if (r >= 0) secs[r] = dt;
        free(ids);
    }
    qsort(secs, (size_t)runs, sizeof *secs, cmp_double);
    double med = secs[runs / 2];
    printf("{\"bytes\": %zu, \"tokens\": %zu, \"runs\": %d, \"median_s\": %.6f, \"best_s\": %.6f, "
           "\"tokens_per_s\": %.0f, \"mb_per_s\": %.2f, \"threads\": 1}\n",
           len, n, runs, med, secs[0], (double)n / med, (double)len / med / 1e6);
    free(secs);
    return write_all("", 0) ? 1 : 0;
}

static void usage_tokenize(FILE *f) {
    fprintf(f,
            "usage: ehrtune tokenize --tokenizer tokenizer.json [--add-special] [--split-special]\n"
            "                        [--bench N]\n"
            "\n"
            "Reads all of stdin as one UTF-8 text and prints its token ids on one line, separated\n"
            "by single spaces: the ids HF tokenizers gives (docs/tokenizer.md).\n"
            "\n"
            "  --tokenizer FILE   HF tokenizer.json (BPE: Llama 2/3, Mistral, Qwen2, GPT-2 style)\n"
            "  --add-special      add the special tokens of the post-processor (BOS/EOS), as HF\n"
            "                     add_special_tokens=True; default off\n"
            "  --split-special    treat special-token text in the input (e.g. \"<|eot_id|>\") as\n"
            "                     plain text instead of the control token\n"
            "  --bench N          encode the input N times single-threaded and print JSON timing\n"
            "                     (median of N after one warm-up) instead of the ids\n"
            "\n"
            "Invalid UTF-8 is refused with the byte offset of the first bad sequence.\n");
}

static void usage_detokenize(FILE *f) {
    fprintf(f,
            "usage: ehrtune detokenize --tokenizer tokenizer.json [--skip-special]\n"
            "\n"
            "Reads token ids separated by whitespace from stdin and prints the text they decode\n"
            "to (HF decode), with nothing added: no newline at the end.\n"
            "\n"
            "  --tokenizer FILE   HF tokenizer.json\n"
            "  --skip-special     drop special tokens (HF skip_special_tokens=True); default keeps\n"
            "                     them, so `tokenize | detokenize` gives the text back\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    int flags = 0;
    long runs = 0;
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_tokenize(stdout);
            return 0;
        } else if (!strcmp(a, "--add-special")) {
            flags |= ET_TOK_ADD_SPECIAL;
        } else if (!strcmp(a, "--split-special")) {
            flags |= ET_TOK_SPLIT_SPECIAL;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(path = et_cli_value("ehrtune: tokenize", &seen, a, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--bench")) {
            const char *v = et_cli_value("ehrtune: tokenize", &seen, a, argc, argv, &i);
            if (!v) return 2;
            long long n;
            if (et_cli_int(v, 1, 1000, &n)) {
                fprintf(stderr, "ehrtune: tokenize: --bench wants a count in [1, 1000], not '%s'\n",
                        v);
                return 2;
            }
            runs = (long)n;
        } else {
            fprintf(stderr, "ehrtune: tokenize: unknown argument '%s'\n", a);
            usage_tokenize(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "ehrtune: tokenize: --tokenizer is required\n");
        usage_tokenize(stderr);
        return 2;
    }
    et_error err;
    et_tokenizer *t;
    if (et_tokenizer_load(&t, path, &err)) {
        fprintf(stderr, "ehrtune: tokenize: %s\n", err.msg);
        return 1;
    }
    char *text;
    size_t len;
    if (read_all(stdin, &text, &len)) {
        fprintf(stderr, "ehrtune: tokenize: cannot read stdin\n");
        et_tokenizer_free(t);
        return 1;
    }
    int rc = 1;
    if (runs) {
        rc = bench(t, text, len, flags, (int)runs);
        goto done;
    }
    int32_t *ids;
    size_t n;
    if (et_tokenizer_encode(t, text, len, flags, &ids, &n, &err)) {
        fprintf(stderr, "ehrtune: tokenize: %s\n", err.msg);
        goto done;
    }
    char *out = malloc(12 * n + 2);
    if (!out) {
        fprintf(stderr, "ehrtune: tokenize: out of memory\n");
        free(ids);
        goto done;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) w += (size_t)sprintf(out + w, i ? " %d" : "%d", (int)ids[i]);
    out[w++] = '\n';
    rc = write_all(out, w) ? (fprintf(stderr, "ehrtune: tokenize: cannot write stdout\n"), 1) : 0;
    free(out);
    free(ids);
done:
    free(text);
    et_tokenizer_free(t);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *path = NULL;
    int skip = 0;
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_detokenize(stdout);
            return 0;
        } else if (!strcmp(a, "--skip-special")) {
            skip = 1;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(path = et_cli_value("ehrtune: detokenize", &seen, a, argc, argv, &i))) return 2;
        } else {
            fprintf(stderr, "ehrtune: detokenize: unknown argument '%s'\n", a);
            usage_detokenize(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "ehrtune: detokenize: --tokenizer is required\n");
        usage_detokenize(stderr);
        return 2;
    }
    et_error err;
    et_tokenizer *t;
    if (et_tokenizer_load(&t, path, &err)) {
        fprintf(stderr, "ehrtune: detokenize: %s\n", err.msg);
        return 1;
    }
    char *in;
    size_t len;
    if (read_all(stdin, &in, &len)) {
        fprintf(stderr, "ehrtune: detokenize: cannot read stdin\n");
        et_tokenizer_free(t);
        return 1;
    }
    int rc = 1;
    int32_t *ids = malloc((len / 2 + 1) * sizeof *ids); /* each id takes >= 2 bytes but the last */
    size_t n = 0;
    char *text = NULL;
    if (!ids) {
        fprintf(stderr, "ehrtune: detokenize: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < len;) {
        if (in[i] == ' ' || in[i] == '\n' || in[i] == '\t' || in[i] == '\r') {
            i++;
            continue;
        }
        size_t start = i;
        long long v = 0;
        int ok = 1;
        if (in[i] == '-') i++;
        size_t digits = 0;
        while (i < len && in[i] >= '0' && in[i] <= '9') {
            if (v < 10000000000LL) v = v * 10 + (in[i] - '0');
            i++, digits++;
        }
        if (!digits || (i < len && !(in[i] == ' ' || in[i] == '\n' || in[i] == '\t' || in[i] == '\r'))) ok = 0;
        if (in[start] == '-') v = -v;
        if (!ok || v < INT32_MIN || v > INT32_MAX) {
            fprintf(stderr, "ehrtune: detokenize: input item %zu (byte offset %zu) is not a token id: "
                            "expected integers separated by whitespace\n", n, start);
            goto done;
        }
        ids[n++] = (int32_t)v;
    }
    size_t tlen;
    if (et_tokenizer_decode(t, ids, n, skip, &text, &tlen, &err)) {
        fprintf(stderr, "ehrtune: detokenize: %s\n", err.msg);
        goto done;
    }
    rc = write_all(text, tlen) ? (fprintf(stderr, "ehrtune: detokenize: cannot write stdout\n"), 1) : 0;
done:
    free(text);
    free(ids);
    free(in);
    et_tokenizer_free(t);
    return rc;
}
