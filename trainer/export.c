/* ehrtune export: the output folder and its atomicity. See export.h. */
#include "trainer/export.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trainer/model_card.h"

static const char *const FORMAT_NAMES[3] = {"peft", "merged", "gguf"};

const char *et_export_format_name(et_export_format f) {
    return f == ET_EXPORT_PEFT ? "peft" : f == ET_EXPORT_MERGED ? "merged" : f == ET_EXPORT_GGUF ? "gguf" : "?";
}

int et_export_parse_formats(const char *s, unsigned *formats, et_error *err) {
    *formats = 0;
    const char *p = s ? s : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strlen(FORMAT_NAMES[i]) == n && !strncmp(p, FORMAT_NAMES[i], n)) found = i;
        if (found < 0)
            return et_fail(err, "unknown export format '%.*s' (valid: peft, merged, gguf)", (int)n, p);
        if (*formats & (1u << found))
            return et_fail(err, "export format '%s' given twice", FORMAT_NAMES[found]);
        *formats |= 1u << found;
        p += n + (comma ? 1 : 0);
        if (comma && !*p) return et_fail(err, "empty export format after ','");
    }
    if (!*formats) return et_fail(err, "no export format given (peft, merged, gguf)");
    return 0;
}

/* ---- folder helpers ------------------------------------------------------------- */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* Removes a folder we created (or one being replaced by --force) and all below it. */
static void remove_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int copy_file(const char *from, const char *to, et_error *err) {
    FILE *in = fopen(from, "rb");
    if (!in) return et_fail(err, "%s: cannot open (%s)", from, strerror(errno));
    FILE *out = fopen(to, "wx");
    if (!out) {
        fclose(in);
        return et_fail(err, "%s: cannot create (%s)", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, n, out) != n;
    bad |= ferror(in) != 0;
    fclose(in);
    bad |= fflush(out) != 0 || fsync(fileno(out)) != 0;
    bad |= fclose(out) != 0;
    return bad ? et_fail(err, "%s: copy failed (%s)", to, strerror(errno)) : 0;
}

/* An existing folder may be replaced only if an earlier export made it. */
static int is_export_dir(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/export.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    /* the whole file (it names the run's path, so it has no fixed size; found
     * 2026-11-26: a 4 KiB buffer cut a long one and --force refused our own export) */
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - 1 - n, f)) > 0;) {
        n += got;
        if (n + 1 == cap && cap < ((size_t)16 << 20)) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) return 0;
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    int ok = cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "ehrtune-export");
    cJSON_Delete(j);
    return ok;
}

static void utc_now(char *out, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_export_json(const et_export_run *r, const char *dir, unsigned formats,
                             const et_export_options *o, et_error *err) {
    cJSON *j = cJSON_CreateObject();
    char now[32], abs_run[4096];
    utc_now(now, sizeof now);
    cJSON_AddStringToObject(j, "format", "ehrtune-export");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "written_utc", now);
    cJSON_AddStringToObject(j, "ehrtune_version", r->export_version);
    cJSON_AddStringToObject(j, "run_dir", realpath(r->run_dir, abs_run) ? abs_run : r->run_dir);
    cJSON_AddStringToObject(j, "manifest_sha256", r->manifest_sha256);
    cJSON_AddStringToObject(j, "base_model", r->base_dir);
    cJSON *fl = cJSON_AddArrayToObject(j, "formats");
    for (int i = 0; i < 3; i++)
        if (formats & (1u << i)) cJSON_AddItemToArray(fl, cJSON_CreateString(FORMAT_NAMES[i]));
    cJSON_AddStringToObject(j, "adapter_dtype", o->adapter_bf16 ? "BF16" : "F32");
    cJSON_AddStringToObject(j, "privacy", r->privacy.statement);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char path[4200];
    snprintf(path, sizeof path, "%s/export.json", dir);
    FILE *f = text ? fopen(path, "wx") : NULL;
    int bad = !f || fputs(text, f) < 0 || fputc('\n', f) < 0;
    if (f) bad = (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) || bad;
    free(text);
    return bad ? et_fail(err, "%s: write failed (%s)", path, strerror(errno)) : 0;
}

/* One format into tmp/<name>/: weights, card, manifest copy. */
static int export_one(const et_export_run *r, const char *tmp, et_export_format f,
                      const et_export_options *o, et_export_result *res, et_error *err) {
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/%s", tmp, et_export_format_name(f));
    if (mkdir(dir, 0700) != 0) return et_fail(err, "%s: cannot create (%s)", dir, strerror(errno));
    int rc = f == ET_EXPORT_PEFT     ? et_export_peft(r, dir, o->adapter_bf16, err)
             : f == ET_EXPORT_MERGED ? et_export_merged(r, dir, o->max_shard_bytes, &res->merge, err)
                                     : et_export_gguf(r, dir, o->adapter_bf16, err);
    if (rc) return et_wrap(err, "%s export", et_export_format_name(f));
    snprintf(path, sizeof path, "%s/README.md", dir);
    if (et_model_card_write(r, f, f == ET_EXPORT_MERGED ? &res->merge : NULL, path, err)) return -1;
    char from[4200];
    snprintf(from, sizeof from, "%s/manifest.json", r->run_dir);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (copy_file(from, path, err)) return -1;
    return fsync_dir(dir) ? et_fail(err, "%s: fsync failed (%s)", dir, strerror(errno)) : 0;
}

int et_export(const char *run_dir, const char *out_dir, const et_export_options *o,
              et_export_result *res, et_error *err) {
    double t0 = now_s();
    memset(res, 0, sizeof *res);
    if (!o->formats || (o->formats & ~7u))
        return et_fail(err, "no export format given (peft, merged, gguf)");
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--;
    char out[4096];
    if (len == 0 || len >= sizeof out - 32) return et_fail(err, "output folder name is empty or too long");
    memcpy(out, out_dir, len);
    out[len] = 0;

    /* Refuse before any work: an existing output is replaced only with force, and only
     * when an earlier export made it (never an arbitrary folder). */
    struct stat st;
    int exists = lstat(out, &st) == 0;
    if (exists && !o->force)
        return et_fail(err, "%s already exists: choose another -o, or pass --force to replace it",
                       out);
    if (exists && (!S_ISDIR(st.st_mode) || !is_export_dir(out)))
        return et_fail(err, "%s exists and is not an ehrtune export (no export.json): refusing to "
                            "replace it even with --force; remove it yourself if it must go",
                       out);

    et_export_run r;
    if (et_export_run_open(&r, run_dir, o->base_dir, o->verify_base, o->version, err)) return -1;

    char parent_buf[4096], tmp[4200];
    snprintf(parent_buf, sizeof parent_buf, "%s", out);
    const char *parent = dirname(parent_buf);
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out);
    int rc = -1;
    if (!mkdtemp(tmp)) {
        et_fail(err, "%s: cannot create a folder beside it (%s)", out, strerror(errno));
        et_export_run_close(&r);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if ((o->formats & (1u << i)) && export_one(&r, tmp, (et_export_format)(1u << i), o, res, err))
            goto fail;
    if (write_export_json(&r, tmp, o->formats, o, err)) goto fail;
    if (fsync_dir(tmp)) {
        et_fail(err, "%s: fsync failed (%s)", tmp, strerror(errno));
        goto fail;
    }
    if (exists) {
        /* Swap the new folder in atomically; the old one is then at tmp and goes. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) == 0) {
            remove_tree(tmp);
        } else if (errno == EINVAL || errno == ENOSYS) { /* a file system without exchange */
            char old[4200];
            snprintf(old, sizeof old, "%s.old-XXXXXX", out);
            if (!mkdtemp(old) || rmdir(old) != 0 || rename(out, old) != 0) {
                et_fail(err, "%s: cannot move the old export aside (%s)", out, strerror(errno));
                goto fail;
            }
            if (rename(tmp, out) != 0) {
                et_fail(err, "%s: rename failed (%s); the previous export is at %s", out,
                        strerror(errno), old);
                goto fail;
            }
            remove_tree(old);
        } else {
            et_fail(err, "%s: cannot replace (%s)", out, strerror(errno));
            goto fail;
        }
    } else if (rename(tmp, out) != 0) {
        et_fail(err, "%s: rename failed (%s)", out, strerror(errno));
        goto fail;
    }
    fsync_dir(parent);
    res->seconds = now_s() - t0;
    et_export_run_close(&r);
    return 0;
fail:
    remove_tree(tmp);
    et_export_run_close(&r);
    return rc;
}
