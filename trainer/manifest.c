#include "trainer/manifest.h"

#include "data/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/sha256.h"

#define MANIFEST_FORMAT "ehrtune-manifest"
#define MANIFEST_FORMAT_VERSION 1
/* the model's files and what a merged export copies beside them (tokenizer.model,
 * merges.txt, chat_template.jinja), so every file shipped has a recorded digest */
#define DEFAULT_MODEL_SUFFIXES ".json,.safetensors,.model,.txt,.jinja"

struct et_manifest {
    cJSON *root;
    cJSON *files;                /* borrowed: root["files"] */
    char problem[ET_ERROR_MAX];  /* first reason the manifest is incomplete; "" if none */
};

/* Keeps the FIRST problem: later ones are usually consequences of it. */
static void note_problem(et_manifest *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_problem(et_manifest *m, const char *fmt, ...) {
    if (m->problem[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->problem, sizeof m->problem, fmt, ap);
    va_end(ap);
    if (!m->problem[0]) snprintf(m->problem, sizeof m->problem, "unknown problem");
}

/* ------------------------------------------------------------------ lifetime */

et_manifest *et_manifest_new(void) {
    et_manifest *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(m->root, "manifest");
    m->files = cJSON_AddArrayToObject(m->root, "files");
    if (!m->root || !meta || !m->files ||
        !cJSON_AddStringToObject(meta, "format", MANIFEST_FORMAT) ||
        !cJSON_AddNumberToObject(meta, "version", MANIFEST_FORMAT_VERSION)) {
        cJSON_Delete(m->root);
        free(m);
        return NULL;
    }
    return m;
}

void et_manifest_free(et_manifest *m) {
    if (!m) return;
    cJSON_Delete(m->root);
    free(m);
}

/* ------------------------------------------------------------------- dotted keys */

static bool is_reserved(const char *first_segment, size_t len) {
    return (len == 5 && memcmp(first_segment, "files", 5) == 0) ||
           (len == 8 && memcmp(first_segment, "manifest", 8) == 0);
}

/* Puts value at the dotted key, creating intermediate objects. Takes ownership of
 * value (freed on failure). allow_reserved is for the manifest's own fields. */
static void set_at(et_manifest *m, const char *key, cJSON *value, bool allow_reserved) {
    if (!value) {
        note_problem(m, "out of memory while setting '%s'", key ? key : "(null)");
        return;
    }
    if (!key || !key[0] || key[0] == '.' || key[strlen(key) - 1] == '.' || strstr(key, "..")) {
        note_problem(m, "invalid manifest key '%s': expected dot-separated non-empty names",
                     key ? key : "(null)");
        cJSON_Delete(value);
        return;
    }
    const char *dot = strchr(key, '.');
    size_t first_len = dot ? (size_t)(dot - key) : strlen(key);
    if (!allow_reserved && is_reserved(key, first_len)) {
        note_problem(m, "manifest key '%s' is reserved: 'files' and 'manifest' are written "
                        "by the manifest itself", key);
        cJSON_Delete(value);
        return;
    }
    char *path = strdup(key);
    if (!path) {
        note_problem(m, "out of memory while setting '%s'", key);
        cJSON_Delete(value);
        return;
    }
    cJSON *obj = m->root;
    char *seg = path;
    for (char *next; (next = strchr(seg, '.')) != NULL; seg = next + 1) {
        *next = '\0';
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, seg);
        if (!child) {
            child = cJSON_AddObjectToObject(obj, seg);
        } else if (!cJSON_IsObject(child)) {
            note_problem(m, "manifest key '%s': '%s' already holds a value that is not an "
                            "object", key, path);
            child = NULL;
        }
        if (!child) {
            if (!m->problem[0]) note_problem(m, "out of memory while setting '%s'", key);
            cJSON_Delete(value);
            free(path);
            return;
        }
        *next = '.';
        obj = child;
    }
    bool ok = cJSON_GetObjectItemCaseSensitive(obj, seg)
                  ? cJSON_ReplaceItemInObjectCaseSensitive(obj, seg, value)
                  : cJSON_AddItemToObject(obj, seg, value);
    if (!ok) {
        note_problem(m, "out of memory while setting '%s'", key);
        cJSON_Delete(value);
    }
    free(path);
}

void et_manifest_set_str(et_manifest *m, const char *dotted_key, const char *value) {
    set_at(m, dotted_key, value ? cJSON_CreateString(value) : cJSON_CreateNull(), false);
}

/* JSON has no infinity or NaN (cJSON would print them as null, which reads as
 * "unknown"); an epsilon of infinity must stay visible, so they become strings. */
static cJSON *number_or_named(double value) {
    if (isnan(value)) return cJSON_CreateString("NaN");
    if (isinf(value)) return cJSON_CreateString(value > 0 ? "Infinity" : "-Infinity");
    return cJSON_CreateNumber(value);
}

void et_manifest_set_num(et_manifest *m, const char *dotted_key, double value) {
    set_at(m, dotted_key, number_or_named(value), false);
}

void et_manifest_set_bool(et_manifest *m, const char *dotted_key, bool value) {
    set_at(m, dotted_key, cJSON_CreateBool(value), false);
}

void et_manifest_set_json(et_manifest *m, const char *dotted_key, cJSON *value) {
    set_at(m, dotted_key, value, false);
}

/* ----------------------------------------------------------------------- files */

/* Relative paths are made absolute against the working directory, without
 * resolving symlinks: the path the user gave (e.g. an HF cache snapshot) stays
 * recognisable. */
static int absolute_path(const char *path, char *out, size_t cap) {
    if (path[0] == '/') return snprintf(out, cap, "%s", path) < (int)cap ? 0 : -1;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    const char *rel = (path[0] == '.' && path[1] == '/') ? path + 2 : path;
    return snprintf(out, cap, "%s/%s", cwd, rel) < (int)cap ? 0 : -1;
}

static bool role_taken(const et_manifest *m, const char *role) {
    const cJSON *entry;
    cJSON_ArrayForEach(entry, m->files) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(entry, "role");
        if (cJSON_IsString(r) && strcmp(r->valuestring, role) == 0) return true;
    }
    return false;
}

static int append_entry(et_manifest *m, const char *role, const char *path, uint64_t bytes,
                        const char *hex, et_error *err) {
    char abs[PATH_MAX];
    if (absolute_path(path, abs, sizeof abs) != 0)
        snprintf(abs, sizeof abs, "%s", path); /* the path as given still identifies it */
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "role", role) || !cJSON_AddStringToObject(e, "path", abs) ||
        !cJSON_AddNumberToObject(e, "bytes", (double)bytes) ||
        !cJSON_AddStringToObject(e, "sha256", hex) || !cJSON_AddItemToArray(m->files, e)) {
        cJSON_Delete(e);
        note_problem(m, "out of memory while recording %s", path);
        return et_fail(err, "%s: out of memory while recording it in the manifest", path);
    }
    return 0;
}

/* Records the error in the manifest (so write refuses) and passes it to the caller. */
static int fail_incomplete(et_manifest *m, et_error *err, const et_error *cause) {
    note_problem(m, "%s", cause->msg);
    return et_fail(err, "%s", cause->msg);
}

int et_manifest_add_file(et_manifest *m, const char *role, const char *path, et_error *err) {
    et_error e = {{0}};
    if (!role || !role[0] || !path || !path[0]) {
        et_fail(&e, "manifest: add_file needs a role and a path (got role '%s', path '%s')",
                role ? role : "(null)", path ? path : "(null)");
        return fail_incomplete(m, err, &e);
    }
    if (role_taken(m, role)) {
        et_fail(&e, "%s: manifest role '%s' is already recorded; each role names one file",
                path, role);
        return fail_incomplete(m, err, &e);
    }
    char hex[65];
    uint64_t bytes = 0;
    if (et_sha256_file_n(path, hex, &bytes, &e) != 0) {
        et_wrap(&e, "manifest (%s)", role);
        return fail_incomplete(m, err, &e);
    }
    return append_entry(m, role, path, bytes, hex, err);
}

static bool has_suffix_in(const char *name, const char *filter) {
    size_t name_len = strlen(name);
    for (const char *s = filter; *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > 0 && len <= name_len && memcmp(name + name_len - len, s, len) == 0) return true;
        s += len + (end ? 1 : 0);
    }
    return false;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    char **names;
    size_t n, cap;
} name_list;

static void free_names(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
}

/* The regular files directly in dir (symlinks followed, as HF cache snapshots are
 * symlinks) whose names match the filter, sorted. */
static int list_matching(const char *dir, const char *filter, name_list *out, et_error *err) {
    DIR *d = opendir(dir);
    if (!d)
        return et_fail(err, "%s: cannot open model folder (%s); check the path", dir,
                       strerror(errno));
    struct dirent *ent;
    int rc = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!has_suffix_in(ent->d_name, filter)) continue;
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", dir, ent->d_name) >= (int)sizeof full) {
            rc = et_fail(err, "%s/%s: path too long", dir, ent->d_name);
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0) {
            rc = et_fail(err, "%s: cannot stat (%s)", full, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode)) continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? 2 * out->cap : 16;
            char **grown = realloc(out->names, cap * sizeof *grown);
            if (!grown) {
                rc = et_fail(err, "%s: out of memory listing the folder", dir);
                break;
            }
            out->names = grown;
            out->cap = cap;
        }
        if (!(out->names[out->n] = strdup(ent->d_name))) {
            rc = et_fail(err, "%s: out of memory listing the folder", dir);
            break;
        }
        out->n++;
    }
    closedir(d);
    if (rc == 0 && out->n == 0)
        rc = et_fail(err, "%s: no regular file whose name ends with %s; is this the model "
                          "folder?", dir, filter);
    if (rc == 0) qsort(out->names, out->n, sizeof *out->names, compare_names);
    return rc;
}

int et_manifest_add_dir_files(et_manifest *m, const char *role, const char *dir,
                              const char *suffix_filter, et_error *err) {
    et_error e = {{0}};
    if (!role || !role[0] || !dir || !dir[0]) {
        et_fail(&e, "manifest: add_dir_files needs a role and a folder");
        return fail_incomplete(m, err, &e);
    }
    const char *filter = suffix_filter ? suffix_filter : DEFAULT_MODEL_SUFFIXES;
    /* "dir/" and "dir" name the same folder; keep recorded paths free of "//". */
    char base[PATH_MAX];
    if (snprintf(base, sizeof base, "%s", dir) >= (int)sizeof base) {
        et_fail(&e, "%s: path too long", dir);
        return fail_incomplete(m, err, &e);
    }
    for (size_t len = strlen(base); len > 1 && base[len - 1] == '/'; len--) base[len - 1] = '\0';

    name_list names = {0};
    if (list_matching(base, filter, &names, &e) != 0) {
        free_names(&names);
        return fail_incomplete(m, err, &e);
    }
    size_t n = names.n;
    char (*paths)[PATH_MAX] = malloc(n * sizeof *paths);
    char (*roles)[PATH_MAX] = malloc(n * sizeof *roles);
    char (*hexes)[65] = malloc(n * sizeof *hexes);
    uint64_t *bytes = malloc(n * sizeof *bytes);
    et_error *errs = calloc(n, sizeof *errs);
    int *rcs = calloc(n, sizeof *rcs);
    int rc = 0;
    if (!paths || !roles || !hexes || !bytes || !errs || !rcs) {
        et_fail(&e, "%s: out of memory preparing to hash the folder", base);
        rc = fail_incomplete(m, err, &e);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (snprintf(paths[i], PATH_MAX, "%s/%s", base, names.names[i]) >= PATH_MAX ||
            snprintf(roles[i], PATH_MAX, "%s/%s", role, names.names[i]) >= PATH_MAX) {
            et_fail(&e, "%s/%s: path or role too long", base, names.names[i]);
            rc = fail_incomplete(m, err, &e);
            goto done;
        }
        if (role_taken(m, roles[i])) {
            et_fail(&e, "%s: manifest role '%s' is already recorded; each role names one file",
                    paths[i], roles[i]);
            rc = fail_incomplete(m, err, &e);
            goto done;
        }
    }
    /* Shards of a large model are hashed concurrently, one file per thread: SHA-256
     * is sequential within a file, and a fast disk outruns one core. */
    #pragma omp parallel for schedule(dynamic, 1)
    for (long i = 0; i < (long)n; i++)
        rcs[i] = et_sha256_file_n(paths[i], hexes[i], &bytes[i], &errs[i]);
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] != 0) { /* the first failure in name order: deterministic */
            et_wrap(&errs[i], "manifest (%s)", roles[i]);
            rc = fail_incomplete(m, err, &errs[i]);
            goto done;
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = append_entry(m, roles[i], paths[i], bytes[i], hexes[i], err);
done:
    free(paths);
    free(roles);
    free(hexes);
    free(bytes);
    free(errs);
    free(rcs);
    free_names(&names);
    return rc;
}

/* ----------------------------------------------------------------- environment */

static void utc_now_iso8601(char out[32]) {
    time_t now = time(NULL);
    struct tm tm;
    if (now == (time_t)-1 || !gmtime_r(&now, &tm) ||
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "unknown");
}

/* Value of the first "key<spaces>: value" line of a /proc file, trimmed; NULL if
 * absent (e.g. no "model name" on some ARM kernels). */
static char *proc_field(const char *file, const char *key, char *out, size_t cap) {
    FILE *f = fopen(file, "r");
    if (!f) return NULL;
    char line[1024];
    size_t key_len = strlen(key);
    char *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, key_len) != 0) continue;
        char *p = line + key_len;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != ':') continue;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strcspn(p, "\n");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        snprintf(out, cap, "%.*s", (int)len, p);
        found = out;
    }
    fclose(f);
    return found;
}

static void set_str_or_null(et_manifest *m, const char *key, const char *value) {
    set_at(m, key, value ? cJSON_CreateString(value) : cJSON_CreateNull(), false);
}

void et_manifest_add_environment(et_manifest *m, const char *version) {
    char buf[1024];

    /* Which code: the version string alone can be reused by a modified build, so
     * the executable's own digest is recorded too. */
    set_str_or_null(m, "code.version", version ? version : "unknown");
    ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (len > 0) buf[len] = '\0';
    set_str_or_null(m, "code.executable", len > 0 ? buf : NULL);
    char hex[65];
    et_error ignored;
    bool hashed = et_sha256_file("/proc/self/exe", hex, &ignored) == 0;
    set_str_or_null(m, "code.executable_sha256", hashed ? hex : NULL);
#if defined(__clang__)
    set_str_or_null(m, "code.compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
    set_str_or_null(m, "code.compiler", "gcc " __VERSION__);
#else
    set_str_or_null(m, "code.compiler", NULL);
#endif
#ifdef EHRTUNE_HAVE_CUDA
    et_manifest_set_bool(m, "code.cuda_compiled", true);
#else
    et_manifest_set_bool(m, "code.cuda_compiled", false);
#endif

    /* Which hardware. */
    set_str_or_null(m, "host.hostname", gethostname(buf, sizeof buf) == 0 ? buf : NULL);
    struct utsname u;
    bool have_uname = uname(&u) == 0;
    set_str_or_null(m, "host.os.sysname", have_uname ? u.sysname : NULL);
    set_str_or_null(m, "host.os.release", have_uname ? u.release : NULL);
    set_str_or_null(m, "host.os.machine", have_uname ? u.machine : NULL);
    set_str_or_null(m, "host.cpu_model", proc_field("/proc/cpuinfo", "model name", buf, sizeof buf));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0) et_manifest_set_num(m, "host.logical_cores", (double)cores);
    else set_str_or_null(m, "host.logical_cores", NULL);
#ifdef _OPENMP
    et_manifest_set_num(m, "host.openmp_max_threads", omp_get_max_threads());
#else
    et_manifest_set_num(m, "host.openmp_max_threads", 1);
#endif
    unsigned long long kib = 0;
    if (proc_field("/proc/meminfo", "MemTotal", buf, sizeof buf) &&
        sscanf(buf, "%llu kB", &kib) == 1 && kib > 0)
        et_manifest_set_num(m, "host.memory_total_bytes", (double)kib * 1024.0);
    else
        set_str_or_null(m, "host.memory_total_bytes", NULL);

    char now[32];
    utc_now_iso8601(now);
    set_str_or_null(m, "host.recorded_utc", now);
}

/* ----------------------------------------------------------------------- write */

int et_manifest_write(et_manifest *m, const char *path, et_error *err) {
    if (m->problem[0])
        return et_fail(err, "%s: manifest not written because it is incomplete: %s", path,
                       m->problem);
    char now[32];
    utc_now_iso8601(now);
    set_at(m, "manifest.written_utc", cJSON_CreateString(now), true);
    if (m->problem[0])
        return et_fail(err, "%s: manifest not written: %s", path, m->problem);

    char *text = cJSON_Print(m->root);
    if (!text) return et_fail(err, "%s: out of memory formatting the manifest", path);
    /* Ends with a newline: cJSON_Print's NUL becomes it (same buffer size). */
    size_t n = strlen(text);
    text[n] = '\n';
    int rc = et_write_file_atomic(path, text, n + 1, ET_FILE_PRIVATE, "manifest", err);
    free(text);
    return rc;
}

/* ---- reading a written manifest back ------------------------------------------- */

cJSON *et_manifest_read_json(const char *path, et_error *err) {
    char *text = et_read_file_text(path, 64u << 20, err);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return et_fail(err, "%s: not a JSON object", path), NULL;
    }
    return j;
}
