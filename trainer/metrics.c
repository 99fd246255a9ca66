#include "trainer/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct et_metrics {
    FILE *f;
    char *path;
};

/* Rewrites path keeping lines whose "step" is <= keep (via a temp file + rename). */
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
    while (getline(&line, &cap, in) > 0) {
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

int et_metrics_write(et_metrics *m, const et_metrics_row *r, et_error *err) {
    int n = fprintf(m->f,
                    "{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6f,"
                    "\"tokens_per_s\":%.1f,\"tokens\":%lld,\"targets\":%lld}\n",
                    (long long)r->step, r->loss, r->lr, r->grad_norm, r->tokens_per_s,
                    (long long)r->tokens, (long long)r->targets);
    if (n < 0 || fflush(m->f) != 0)
        return et_fail(err, "%s: write failed (%s) — disk full?", m->path, strerror(errno));
    return 0;
}

void et_metrics_close(et_metrics *m) {
    if (!m) return;
    if (m->f) fclose(m->f);
    free(m->path);
    free(m);
}
