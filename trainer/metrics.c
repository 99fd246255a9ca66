#include "trainer/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct et_metrics {
    FILE *f;
    char *path;
};

/* Rewrites path keeping lines whose "step" is <= keep (via a temp file + rename).
 * Only whole lines count: one cut short by a crash (no newline) is dropped, else the
 * next line written would be glued onto it. */
static int truncate_after(const char *path, int64_t keep, et_error *err) {
    FILE *in = fopen(path, "r");
    if (!in) return 0; /* nothing logged yet */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return et_fail(err, "%s: cannot create (%s)", tmp, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] != '\n') continue;
        const char *s = strstr(line, "\"step\":");
        if (s && strtoll(s + 7, NULL, 10) <= keep) fputs(line, out);
    }
    free(line);
    fclose(in);
    int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return et_fail(err, "%s: cannot rewrite (%s)", path, strerror(errno));
    }
    return 0;
}

int et_metrics_open(et_metrics **out, const char *path, int64_t keep, et_error *err) {
    if (truncate_after(path, keep, err)) return -1;
    et_metrics *m = calloc(1, sizeof *m);
    if (!m) return et_fail(err, "out of memory");
    m->f = fopen(path, keep > 0 ? "a" : "w");
    if (!m->f) {
        free(m);
        return et_fail(err, "%s: cannot open for writing (%s)", path, strerror(errno));
    }
    m->path = strdup(path);
    *out = m;
    return 0;
}

/* JSON has no NaN: write null (an empty DP batch has no norms or loss). */
static void num(FILE *f, const char *key, double v, const char *fmt) {
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

int et_metrics_write(et_metrics *m, const et_metrics_row *r, et_error *err) {
    FILE *f = m->f;
    fprintf(f, "{\"step\":%lld", (long long)r->step);
    num(f, "loss", r->loss, "%.6f");
    num(f, "lr", r->lr, "%.6e");
    if (!r->dp) num(f, "grad_norm", r->grad_norm, "%.6f");
    num(f, "tokens_per_s", r->tokens_per_s, "%.1f");
    fprintf(f, ",\"tokens\":%lld,\"targets\":%lld", (long long)r->tokens, (long long)r->targets);
    if (r->dp) {
        num(f, "epsilon", r->epsilon, "%.6f");
        fprintf(f, ",\"units\":%lld", (long long)r->units);
        num(f, "clipped_fraction", r->clipped_fraction, "%.4f");
        num(f, "unit_grad_norm_p50", r->norm_p50, "%.6f");
        num(f, "unit_grad_norm_p90", r->norm_p90, "%.6f");
        num(f, "unit_grad_norm_max", r->norm_max, "%.6f");
    }
    int bad = fputs("}\n", f) < 0;
    if (bad || fflush(f) != 0)
        return et_fail(err, "%s: write failed (%s) — disk full?", m->path, strerror(errno));
    return 0;
}

int et_metrics_sync(et_metrics *m, et_error *err) {
    if (fflush(m->f) != 0 || fsync(fileno(m->f)) != 0)
        return et_fail(err, "%s: cannot flush to disk (%s)", m->path, strerror(errno));
    return 0;
}

void et_metrics_close(et_metrics *m) {
    if (!m) return;
    if (m->f) fclose(m->f);
    free(m->path);
    free(m);
}
