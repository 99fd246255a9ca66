/* The recipe a run keeps (trainer/train.c's resume): config.resolved.yaml is written
 * once, at the run's start, its text stored in every checkpoint, and a resume's own
 * resolved recipe compared with it key by key. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/atomic_file.h"
#include "trainer/train_internal.h"

/* ---- the recipe a run keeps --------------------------------------------------------
 * config.resolved.yaml is written once, at the run's start, and its text is stored in
 * every checkpoint (carried unchanged across resumes). A resume compares its own
 * resolved recipe with it key by key: only the keys below may change (how long, how
 * often, where; privacy.* are dp_plan's to check); any other change would make the
 * weights mean something the record does not say. An allowed change is recorded as
 * config.resolved.resume-<step>.yaml, never over the original. */
static int resume_may_change(const char *key) {
    static const char *const ok[] = {"optim.steps",          "optim.epochs",
                                     "run.max_steps",        "run.checkpoint_every",
                                     "run.log_every",        "run.device",
                                     "run.keep_checkpoints",
                                     "run.activation_checkpointing", "run.out"};
    if (!strncmp(key, "privacy.", 8)) return 1;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strcmp(key, ok[i])) return 1;
    return 0;
}

/* Safetensors metadata must be UTF-8 (a path in the recipe might not be). */
int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0) return 0;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80) return 0;
    }
    return 1;
}

typedef struct {
    char key[96];
    const char *val;
    int len;
} recipe_kv;

/* The resolved YAML is canonical: "section:" at column 0, "  key: value" below it,
 * comments and blank lines between. Returns the number of keys (at most max). */
static int recipe_keys(const char *text, recipe_kv *kv, int max) {
    char section[48] = "";
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        int len = eol ? (int)(eol - line) : (int)strlen(line);
        if (len > 0 && line[0] != '#' && line[0] != ' ' && line[len - 1] == ':' && len < (int)sizeof section) {
            memcpy(section, line, (size_t)len - 1);
            section[len - 1] = 0;
        } else if (len > 2 && !strncmp(line, "  ", 2) && line[2] != '#' && n < max) {
            const char *colon = memchr(line + 2, ':', (size_t)len - 2);
            if (colon) {
                snprintf(kv[n].key, sizeof kv[n].key, "%s.%.*s", section, (int)(colon - line - 2), line + 2);
                kv[n].val = colon + 1 + (colon[1] == ' ');
                kv[n].len = (int)(line + len - kv[n].val);
                n++;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return n;
}

/* Compares the recipe the run started with (old) and this resume's (now). Returns -1
 * (err filled) when a key that must not change did, else 1 when allowed keys
 * differ, 0 when the two are the same recipe. With refuse == 0 nothing is refused. */
int recipe_compare(const char *run_dir, const char *old, const char *now, int refuse,
                          et_error *err) {
    enum { MAX_KEYS = 256 };
    recipe_kv *a = calloc(MAX_KEYS, sizeof *a), *b = calloc(MAX_KEYS, sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return et_fail(err, "out of memory");
    }
    int na = recipe_keys(old, a, MAX_KEYS), nb = recipe_keys(now, b, MAX_KEYS);
    char list[700] = "";
    size_t at = 0;
    int changed = 0, refused = 0, left_out = 0;
    /* every key of either side, once: the new recipe's in order, then the old's alone */
    for (int pass = 0; pass < 2; pass++) {
        const recipe_kv *x = pass ? a : b, *y = pass ? b : a;
        int nx = pass ? na : nb, ny = pass ? nb : na;
        for (int i = 0; i < nx; i++) {
            const recipe_kv *match = NULL;
            for (int j = 0; j < ny && !match; j++)
                if (!strcmp(x[i].key, y[j].key)) match = &y[j];
            if (pass && match) continue; /* seen in the first pass */
            if (match && match->len == x[i].len && !memcmp(match->val, x[i].val, (size_t)x[i].len))
                continue;
            changed = 1;
            if (resume_may_change(x[i].key)) continue;
            refused++;
            const recipe_kv *o = pass ? &x[i] : match, *c = pass ? NULL : &x[i];
            char item[300];
            snprintf(item, sizeof item, "%s%s (%.*s, now %.*s)", refused > 1 ? ", " : "", x[i].key,
                     o ? (o->len > 80 ? 80 : o->len) : 12, o ? o->val : "not recorded",
                     c ? (c->len > 80 ? 80 : c->len) : 6, c ? c->val : "absent");
            if (at + strlen(item) < sizeof list - 32) {
                memcpy(list + at, item, strlen(item) + 1);
                at += strlen(item);
            } else {
                left_out++;
            }
        }
    }
    free(a);
    free(b);
    if (left_out) snprintf(list + at, sizeof list - at, " and %d more", left_out);
    if (refuse && refused)
        return et_fail(err, "%s: resuming with another %s: a run keeps its recipe; resume with "
                            "config.resolved.yaml's values, or start a new run (a new run.out)",
                       run_dir, list);
    return changed;
}

/* This invocation's resolved recipe, written to a check file in the run directory
 * (*tmp_path; the caller renames or removes it) and read back into *text. */
int resolved_now(const et_recipe *r, const char *run_dir, char *tmp_path, size_t n,
                        char **text, et_error *err) {
    snprintf(tmp_path, n, "%s/.config.resolved.check-%ld.yaml", run_dir, (long)getpid());
    if (et_recipe_write_yaml(r, tmp_path, err)) {
        tmp_path[0] = 0;
        return -1;
    }
    *text = et_read_file_text(tmp_path, TRAIN_RECIPE_MAX, err);
    return *text ? 0 : -1;
}

/* The manifest names every recipe the run has trained under: config.resolved.yaml,
 * and the config.resolved.resume-N.yaml of each resume up to step `upto`. */
int manifest_resume_recipes(et_manifest *m, const char *run_dir, int64_t upto,
                                   et_error *err) {
    struct dirent **names = NULL;
    int n = scandir(run_dir, &names, NULL, alphasort);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        long long step;
        char tail[8] = "", role[96], path[4400];
        if (!rc && sscanf(names[i]->d_name, "config.resolved.resume-%lld.y%7s", &step, tail) == 2 &&
            !strcmp(tail, "aml") && step <= upto) {
            snprintf(role, sizeof role, "recipe_resolved_resume_%lld", step);
            snprintf(path, sizeof path, "%s/%s", run_dir, names[i]->d_name);
            rc = et_manifest_add_file(m, role, path, err);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}
