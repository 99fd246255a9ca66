/* Corpus HDF5 schema v1: the streaming writer and the validating reader.
 * HDF5 failures never print (H5Eset_auto2 off); they become et_error messages
 * that name the file and the dataset, with HDF5's innermost reason appended. */
#include "data/corpus.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "data/zstd_filter.h"

/* ------------------------------------------------------ HDF5 plumbing --- */

static herr_t keep_innermost(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    char *out = data;
    if (!out[0] && e->desc && e->desc[0]) snprintf(out, 200, "%s", e->desc);
    return 0;
}

/* HDF5's most specific reason for the failure that just happened (its error
 * stack is cleared by the next API call, so call this first). The zstd
 * filter's own reason wins: HDF5 only knows "filter returned failure". */
static void hdf5_reason(char out[200]) {
    out[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, out);
    const char *z = et_zstd_filter_last_failure();
    if (z[0] && (strstr(out, "filter") || strstr(out, "pipeline"))) snprintf(out, 200, "%s", z);
}

/* et_fail with "<path>: " before and " (HDF5: reason)" after. */
static int h5fail(et_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int h5fail(et_error *err, const char *path, const char *fmt, ...) {
    char reason[200], what[ET_ERROR_MAX];
    hdf5_reason(reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (reason[0]) return et_fail(err, "%s: %s (HDF5: %s)", path, what, reason);
    return et_fail(err, "%s: %s", path, what);
}

static int hdf5_prepare(et_error *err) {
    /* Library code never prints: HDF5 would dump its error stack to stderr. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return et_zstd_filter_register(err);
}

static hid_t vlen_utf8_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static void close_id(hid_t *id, herr_t (*closer)(hid_t)) {
    if (*id > 0) closer(*id);
    *id = -1;
}

/* ------------------------------------------------------------- writer --- */

typedef struct {
    char name[ET_CORPUS_MAX_NAME + 1];
    hid_t ds;
    int n_labels;
    char *labels[ET_CORPUS_MAX_LABELS];
    int16_t *buf; /* [chunk_docs] codes of the buffered documents */
} writer_group;

struct et_corpus_writer {
    char *path, *tmp;
    char *tokenizer_sha256, *source_sha256, *phi_scan, *created;
    int64_t vocab_size;
    int n_structured;
    char **structured_names;
    int zstd_level;
    int force;
    int failed;

    hid_t file, d_tokens, d_mask, d_offsets, d_pids, d_split, d_structured, g_groups;

    int64_t chunk_tokens, chunk_docs;
    int32_t *tok_buf;
    uint8_t *mask_buf;
    int64_t n_tok_buf, tokens_flushed, n_tokens;
    int32_t max_token;

    int64_t *end_buf, *pid_buf;
    uint8_t *split_buf;
    float *structured_buf;
    int64_t n_doc_buf, docs_flushed;

    int n_groups;
    writer_group *groups[ET_CORPUS_MAX_GROUPS];
};

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static void iso8601_now(char out[32]) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* An extensible chunked dataset [0, cols] (cols = 0: 1-D), optionally zstd. */
static hid_t create_extensible(hid_t loc, const char *name, hid_t ftype, hsize_t cols,
                               hsize_t chunk, int zstd_level, hid_t filltype, const void *fill) {
    int rank = cols ? 2 : 1;
    hsize_t dims[2] = {0, cols}, maxdims[2] = {H5S_UNLIMITED, cols}, chunks[2] = {chunk, cols};
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = -1;
    if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, rank, chunks) < 0) goto done;
    if (zstd_level > 0) {
        unsigned level = (unsigned)zstd_level;
        if (H5Pset_filter(dcpl, ET_ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &level) < 0) goto done;
    }
    if (fill && H5Pset_fill_value(dcpl, filltype, fill) < 0) goto done;
    ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
done:;
    hid_t stack = ds < 0 ? H5Eget_current_stack() : -1; /* closing would clear the reason */
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (stack >= 0) H5Eset_current_stack(stack);
    return ds;
}

/* Extends `ds` to at+n rows and writes n rows (of `cols` values; 0 = 1-D) at `at`. */
static int append_rows(hid_t ds, hid_t memtype, int64_t at, int64_t n, hsize_t cols,
                       const void *buf) {
    if (n == 0) return 0;
    int rank = cols ? 2 : 1;
    hsize_t size[2] = {(hsize_t)(at + n), cols};
    hsize_t start[2] = {(hsize_t)at, 0}, count[2] = {(hsize_t)n, cols};
    if (H5Dset_extent(ds, size) < 0) return -1;
    hid_t fs = H5Dget_space(ds);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
        H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    hid_t stack = rc ? H5Eget_current_stack() : -1; /* closing would clear the reason */
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (stack >= 0) H5Eset_current_stack(stack);
    return rc;
}

static int write_i64_attr(hid_t obj, const char *name, int64_t value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return rc;
}

/* n < 0: a scalar string; n >= 0: a 1-D array of n strings. */
static int write_str_attr(hid_t obj, const char *name, const char *const *values, int n) {
    hsize_t dim = n < 0 ? 1 : (hsize_t)n;
    hid_t space = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t type = vlen_utf8_type();
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, type, values) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
    return rc;
}

static void writer_free(et_corpus_writer *w) {
    free(w->path);
    free(w->tmp);
    free(w->tokenizer_sha256);
    free(w->source_sha256);
    free(w->phi_scan);
    free(w->created);
    for (int i = 0; i < w->n_structured && w->structured_names; i++) free(w->structured_names[i]);
    free(w->structured_names);
    free(w->tok_buf);
    free(w->mask_buf);
    free(w->end_buf);
    free(w->pid_buf);
    free(w->split_buf);
    free(w->structured_buf);
    for (int g = 0; g < w->n_groups; g++) {
        for (int i = 0; i < w->groups[g]->n_labels; i++) free(w->groups[g]->labels[i]);
        free(w->groups[g]->buf);
        free(w->groups[g]);
    }
    free(w);
}

/* Every open dataset and the groups folder; the file itself is the caller's (finish
 * checks that its close succeeded: that is where HDF5 flushes). */
static void writer_close_datasets(et_corpus_writer *w) {
    for (int g = 0; g < w->n_groups; g++) close_id(&w->groups[g]->ds, H5Dclose);
    close_id(&w->d_tokens, H5Dclose);
    close_id(&w->d_mask, H5Dclose);
    close_id(&w->d_offsets, H5Dclose);
    close_id(&w->d_pids, H5Dclose);
    close_id(&w->d_split, H5Dclose);
    close_id(&w->d_structured, H5Dclose);
    close_id(&w->g_groups, H5Gclose);
}

static void writer_close_hdf5(et_corpus_writer *w) {
    writer_close_datasets(w);
    close_id(&w->file, H5Fclose);
}

void et_corpus_writer_abort(et_corpus_writer *w) {
    if (!w) return;
    writer_close_hdf5(w);
    if (w->tmp) unlink(w->tmp);
    writer_free(w);
}

/* A name usable as an HDF5 link and as a Python identifier-ish key. */
static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > ET_CORPUS_MAX_NAME || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

int et_corpus_writer_open(et_corpus_writer **out, const char *path,
                          const et_corpus_writer_options *opt, et_error *err) {
    *out = NULL;
    if (hdf5_prepare(err)) return -1;
    if (!path || !path[0]) return et_fail(err, "corpus writer: empty output path");
    if (!opt->force && access(path, F_OK) == 0)
        return et_fail(err, "%s: already exists; refusing to overwrite it (use --force to replace it)",
                       path);
    if (opt->vocab_size < 0) return et_fail(err, "%s: vocab_size must be >= 0", path);
    if (opt->n_structured < 0 || opt->n_structured > 65536)
        return et_fail(err, "%s: %d structured columns (at most 65536)", path, opt->n_structured);
    /* HDF5 chunks must stay below 4 GiB; these bounds keep them far below. */
    if (opt->chunk_tokens < 0 || opt->chunk_tokens > (1 << 26) || opt->chunk_docs < 0 ||
        opt->chunk_docs > (1 << 20))
        return et_fail(err, "%s: chunk sizes out of range (tokens <= 2^26, documents <= 2^20)",
                       path);

    et_corpus_writer *w = calloc(1, sizeof *w);
    if (!w) return et_fail(err, "%s: out of memory", path);
    w->file = w->d_tokens = w->d_mask = w->d_offsets = w->d_pids = w->d_split = -1;
    w->d_structured = w->g_groups = -1;
    w->vocab_size = opt->vocab_size;
    w->zstd_level = opt->zstd_level > 0 ? opt->zstd_level : ET_ZSTD_DEFAULT_LEVEL;
    w->force = opt->force;
    w->chunk_tokens = opt->chunk_tokens > 0 ? opt->chunk_tokens : 65536;
    w->chunk_docs = opt->chunk_docs > 0 ? opt->chunk_docs : 4096;
    w->max_token = -1;
    char now[32];
    iso8601_now(now);
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 16);
    w->tokenizer_sha256 = dup_or_empty(opt->tokenizer_sha256);
    w->source_sha256 = dup_or_empty(opt->source_sha256);
    w->phi_scan = dup_or_empty(opt->phi_scan);
    w->created = strdup(opt->created ? opt->created : now);
    w->tok_buf = malloc((size_t)w->chunk_tokens * sizeof *w->tok_buf);
    w->mask_buf = malloc((size_t)w->chunk_tokens);
    w->end_buf = malloc((size_t)w->chunk_docs * sizeof *w->end_buf);
    w->pid_buf = malloc((size_t)w->chunk_docs * sizeof *w->pid_buf);
    w->split_buf = malloc((size_t)w->chunk_docs);
    if (opt->n_structured > 0) {
        w->structured_names = calloc((size_t)opt->n_structured, sizeof(char *));
        w->structured_buf = malloc((size_t)w->chunk_docs * opt->n_structured * sizeof(float));
    }
    if (!w->path || !w->tmp || !w->tokenizer_sha256 || !w->source_sha256 || !w->phi_scan ||
        !w->created || !w->tok_buf || !w->mask_buf || !w->end_buf || !w->pid_buf || !w->split_buf ||
        (opt->n_structured > 0 && (!w->structured_names || !w->structured_buf))) {
        writer_free(w);
        return et_fail(err, "%s: out of memory for the corpus writer's buffers", path);
    }
    for (int i = 0; i < opt->n_structured; i++) {
        const char *name = opt->structured_names ? opt->structured_names[i] : NULL;
        if (!name || !name[0]) {
            writer_free(w);
            return et_fail(err, "%s: structured column %d has no name", path, i);
        }
        w->structured_names[w->n_structured++] = strdup(name);
    }

    /* The temp file is created by mkstemp (mode 0600: the corpus derives from
     * patient data), then truncated and reused by HDF5. */
    sprintf(w->tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        int e = errno;
        free(w->tmp);
        w->tmp = NULL;
        writer_free(w);
        return et_fail(err, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    close(fd);
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        h5fail(err, path, "cannot create HDF5 file %s", w->tmp);
        et_corpus_writer_abort(w);
        return -1;
    }
    const float nan = NAN;
    hsize_t ct = (hsize_t)w->chunk_tokens, cd = (hsize_t)w->chunk_docs;
    w->d_tokens = create_extensible(w->file, "tokens", H5T_STD_I32LE, 0, ct, w->zstd_level, 0, NULL);
    w->d_mask = create_extensible(w->file, "loss_mask", H5T_STD_U8LE, 0, ct, w->zstd_level, 0, NULL);
    /* The per-document datasets are zstd-compressed too: no reader needs more
     * than the one filter, and tiny corpora stay tiny. */
    w->d_offsets = create_extensible(w->file, "doc_offsets", H5T_STD_I64LE, 0, cd, w->zstd_level, 0,
                                     NULL);
    w->d_pids = create_extensible(w->file, "patient_ids", H5T_STD_I64LE, 0, cd, w->zstd_level, 0,
                                  NULL);
    w->d_split = create_extensible(w->file, "split", H5T_STD_U8LE, 0, cd, w->zstd_level, 0, NULL);
    w->g_groups = H5Gcreate2(w->file, "groups", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (w->n_structured > 0) {
        /* About 1 MiB per /structured chunk however wide the rows are. */
        hsize_t rows = (hsize_t)(262144 / w->n_structured);
        rows = rows < 1 ? 1 : rows > cd ? cd : rows;
        w->d_structured = create_extensible(w->file, "structured", H5T_IEEE_F32LE,
                                            (hsize_t)w->n_structured, rows, w->zstd_level,
                                            H5T_NATIVE_FLOAT, &nan);
    }
    const int64_t zero = 0;
    if (w->d_tokens < 0 || w->d_mask < 0 || w->d_offsets < 0 || w->d_pids < 0 || w->d_split < 0 ||
        w->g_groups < 0 || (w->n_structured > 0 && w->d_structured < 0) ||
        append_rows(w->d_offsets, H5T_NATIVE_INT64, 0, 1, 0, &zero) < 0) {
        h5fail(err, path, "cannot create the corpus datasets in %s", w->tmp);
        et_corpus_writer_abort(w);
        return -1;
    }
    *out = w;
    return 0;
}

static int flush_tokens(et_corpus_writer *w, et_error *err) {
    if (append_rows(w->d_tokens, H5T_NATIVE_INT32, w->tokens_flushed, w->n_tok_buf, 0, w->tok_buf) < 0)
        return h5fail(err, w->path, "writing dataset /tokens failed (disk full?)");
    if (append_rows(w->d_mask, H5T_NATIVE_UINT8, w->tokens_flushed, w->n_tok_buf, 0, w->mask_buf) < 0)
        return h5fail(err, w->path, "writing dataset /loss_mask failed (disk full?)");
    w->tokens_flushed += w->n_tok_buf;
    w->n_tok_buf = 0;
    return 0;
}

static int flush_docs(et_corpus_writer *w, et_error *err) {
    int64_t at = w->docs_flushed, n = w->n_doc_buf;
    if (append_rows(w->d_offsets, H5T_NATIVE_INT64, at + 1, n, 0, w->end_buf) < 0)
        return h5fail(err, w->path, "writing dataset /doc_offsets failed");
    if (append_rows(w->d_pids, H5T_NATIVE_INT64, at, n, 0, w->pid_buf) < 0)
        return h5fail(err, w->path, "writing dataset /patient_ids failed");
    if (append_rows(w->d_split, H5T_NATIVE_UINT8, at, n, 0, w->split_buf) < 0)
        return h5fail(err, w->path, "writing dataset /split failed");
    for (int g = 0; g < w->n_groups; g++)
        if (append_rows(w->groups[g]->ds, H5T_NATIVE_INT16, at, n, 0, w->groups[g]->buf) < 0)
            return h5fail(err, w->path, "writing dataset /groups entry %d failed", g);
    if (w->n_structured > 0 &&
        append_rows(w->d_structured, H5T_NATIVE_FLOAT, at, n, (hsize_t)w->n_structured,
                    w->structured_buf) < 0)
        return h5fail(err, w->path, "writing dataset /structured failed");
    w->docs_flushed += n;
    w->n_doc_buf = 0;
    return 0;
}

/* Error messages name a group by its entry in the document (the JSONL record's "group"
 * object, 0-based), never by its name: names are keys of patient records and may hold
 * PHI. `entry` is that position. */
static writer_group *find_or_create_group(et_corpus_writer *w, const char *name, int entry,
                                          et_error *err) {
    for (int g = 0; g < w->n_groups; g++)
        if (!strcmp(w->groups[g]->name, name)) return w->groups[g];
    if (!valid_name(name)) {
        et_fail(err, "%s: document %lld: the name of group entry %d is not 1-%d characters of "
                     "[A-Za-z0-9_.-]",
                w->path, (long long)(w->docs_flushed + w->n_doc_buf), entry, ET_CORPUS_MAX_NAME);
        return NULL;
    }
    if (w->n_groups == ET_CORPUS_MAX_GROUPS) {
        et_fail(err, "%s: more than %d distinct group names", w->path, ET_CORPUS_MAX_GROUPS);
        return NULL;
    }
    writer_group *g = calloc(1, sizeof *g);
    if (g) g->buf = malloc((size_t)w->chunk_docs * sizeof *g->buf);
    if (!g || !g->buf) {
        if (g) free(g);
        et_fail(err, "%s: out of memory", w->path);
        return NULL;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    /* Documents already written or buffered had no label: the fill value -1
     * covers the written ones, the buffer the rest. */
    for (int64_t i = 0; i < w->n_doc_buf; i++) g->buf[i] = -1;
    const int16_t missing = -1;
    g->ds = create_extensible(w->g_groups, name, H5T_STD_I16LE, 0, (hsize_t)w->chunk_docs,
                              w->zstd_level, H5T_NATIVE_INT16, &missing);
    if (g->ds < 0) {
        h5fail(err, w->path, "document %lld: cannot create the dataset of group entry %d",
               (long long)(w->docs_flushed + w->n_doc_buf), entry);
        free(g->buf);
        free(g);
        return NULL;
    }
    w->groups[w->n_groups++] = g;
    return g;
}

static int label_code(et_corpus_writer *w, writer_group *g, const char *label, int entry,
                      et_error *err) {
    for (int i = 0; i < g->n_labels; i++)
        if (!strcmp(g->labels[i], label)) return i;
    long long doc = (long long)(w->docs_flushed + w->n_doc_buf);
    if (g->n_labels == ET_CORPUS_MAX_LABELS)
        return et_fail(err, "%s: document %lld: group entry %d has more than %d distinct labels "
                            "across the documents; groups are for categories such as sex or age "
                            "band, not identifiers",
                       w->path, doc, entry, ET_CORPUS_MAX_LABELS);
    if (strlen(label) > 256)
        return et_fail(err, "%s: document %lld: the label of group entry %d is longer than 256 "
                            "bytes", w->path, doc, entry);
    if (!(g->labels[g->n_labels] = strdup(label))) return et_fail(err, "%s: out of memory", w->path);
    return g->n_labels++;
}

static int writer_add(et_corpus_writer *w, const et_corpus_doc *d, et_error *err) {
    long long doc = (long long)(w->docs_flushed + w->n_doc_buf);
    if (d->split < ET_SPLIT_TRAIN || d->split > ET_SPLIT_TEST)
        return et_fail(err, "%s: document %lld: split %d is not 0 (train), 1 (val) or 2 (test)",
                       w->path, doc, d->split);
    if (d->n_tokens < 0 || (d->n_tokens > 0 && !d->tokens))
        return et_fail(err, "%s: document %lld: no token array", w->path, doc);
    if (d->n_groups < 0 || (d->n_groups > 0 && (!d->group_names || !d->group_labels)))
        return et_fail(err, "%s: document %lld: group arrays missing", w->path, doc);
    /* Validate everything before buffering anything. Values are never echoed:
     * they derive from patient data. */
    for (int64_t i = 0; i < d->n_tokens; i++) {
        int32_t t = d->tokens[i];
        if (t < 0 || (w->vocab_size > 0 && t >= w->vocab_size))
            return et_fail(err, "%s: document %lld: token %lld is outside [0, %lld)", w->path, doc,
                           (long long)i, (long long)(w->vocab_size > 0 ? w->vocab_size : INT32_MAX));
        if (d->loss_mask && d->loss_mask[i] > 1)
            return et_fail(err, "%s: document %lld: loss_mask[%lld] is not 0 or 1", w->path, doc,
                           (long long)i);
    }
    for (int a = 0; a < d->n_groups; a++)
        for (int b = 0; b < a; b++)
            if (!strcmp(d->group_names[a], d->group_names[b]))
                return et_fail(err, "%s: document %lld: group entries %d and %d have the same name",
                               w->path, doc, b, a);

    int64_t slot = w->n_doc_buf;
    for (int g = 0; g < w->n_groups; g++) w->groups[g]->buf[slot] = -1;
    for (int a = 0; a < d->n_groups; a++) {
        writer_group *g = find_or_create_group(w, d->group_names[a], a, err);
        if (!g) return -1;
        g->buf[slot] = -1;
        if (d->group_labels[a]) {
            int code = label_code(w, g, d->group_labels[a], a, err);
            if (code < 0) return -1;
            g->buf[slot] = (int16_t)code;
        }
    }

    for (int64_t i = 0; i < d->n_tokens;) {
        int64_t room = w->chunk_tokens - w->n_tok_buf, left = d->n_tokens - i;
        int64_t n = left < room ? left : room;
        memcpy(w->tok_buf + w->n_tok_buf, d->tokens + i, (size_t)n * sizeof(int32_t));
        if (d->loss_mask) memcpy(w->mask_buf + w->n_tok_buf, d->loss_mask + i, (size_t)n);
        else memset(w->mask_buf + w->n_tok_buf, 1, (size_t)n);
        for (int64_t k = 0; k < n; k++)
            if (d->tokens[i + k] > w->max_token) w->max_token = d->tokens[i + k];
        w->n_tok_buf += n;
        i += n;
        if (w->n_tok_buf == w->chunk_tokens && flush_tokens(w, err)) return -1;
    }
    w->n_tokens += d->n_tokens;

    w->end_buf[slot] = w->n_tokens;
    w->pid_buf[slot] = d->patient_id;
    w->split_buf[slot] = (uint8_t)d->split;
    for (int f = 0; f < w->n_structured; f++)
        w->structured_buf[slot * w->n_structured + f] = d->structured ? d->structured[f] : NAN;
    w->n_doc_buf++;
    if (w->n_doc_buf == w->chunk_docs && flush_docs(w, err)) return -1;
    return 0;
}

int et_corpus_writer_add(et_corpus_writer *w, const et_corpus_doc *d, et_error *err) {
    if (w->failed) return et_fail(err, "%s: the corpus writer already failed", w->path);
    if (writer_add(w, d, err)) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

int et_corpus_writer_set_source_sha256(et_corpus_writer *w, const char *hex, et_error *err) {
    char *copy = strdup(hex ? hex : "");
    if (!copy) return et_fail(err, "%s: out of memory", w->path);
    free(w->source_sha256);
    w->source_sha256 = copy;
    return 0;
}

int et_corpus_writer_set_phi_scan(et_corpus_writer *w, const char *json, et_error *err) {
    char *copy = strdup(json ? json : "");
    if (!copy) return et_fail(err, "%s: out of memory", w->path);
    free(w->phi_scan);
    w->phi_scan = copy;
    return 0;
}

static int write_attributes(et_corpus_writer *w, et_error *err) {
    int64_t vocab = w->vocab_size > 0 ? w->vocab_size : (int64_t)w->max_token + 1;
    const char *format = ET_CORPUS_FORMAT;
    if (write_str_attr(w->file, "format", &format, -1) ||
        write_i64_attr(w->file, "version", ET_CORPUS_VERSION) ||
        write_str_attr(w->file, "tokenizer_sha256", (const char *const *)&w->tokenizer_sha256, -1) ||
        write_i64_attr(w->file, "vocab_size", vocab) ||
        write_str_attr(w->file, "source_sha256", (const char *const *)&w->source_sha256, -1) ||
        write_str_attr(w->file, "phi_scan", (const char *const *)&w->phi_scan, -1) ||
        write_str_attr(w->file, "created", (const char *const *)&w->created, -1))
        return h5fail(err, w->path, "writing the root attributes failed");
    for (int g = 0; g < w->n_groups; g++)
        if (write_str_attr(w->groups[g]->ds, "labels", (const char *const *)w->groups[g]->labels,
                           w->groups[g]->n_labels))
            return h5fail(err, w->path, "writing attribute labels of /groups entry %d failed", g);
    if (w->n_structured > 0 &&
        write_str_attr(w->d_structured, "names", (const char *const *)w->structured_names,
                       w->n_structured))
        return h5fail(err, w->path, "writing attribute names of /structured failed");
    return 0;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Moves the complete temp file onto the output. Without force, link() makes the
 * "does not exist yet" check and the move one atomic step. */
static int place_output(et_corpus_writer *w, et_error *err) {
    if (!w->force) {
        if (link(w->tmp, w->path) == 0) {
            unlink(w->tmp);
            return 0;
        }
        if (errno == EEXIST)
            return et_fail(err, "%s: appeared while the corpus was being written; refusing to "
                                "overwrite it (use --force to replace it)", w->path);
        /* Filesystems without hard links: check, then rename. */
        if (access(w->path, F_OK) == 0)
            return et_fail(err, "%s: already exists; refusing to overwrite it", w->path);
    }
    if (rename(w->tmp, w->path) != 0)
        return et_fail(err, "%s: cannot move %s into place: %s", w->path, w->tmp, strerror(errno));
    return 0;
}

int et_corpus_writer_finish(et_corpus_writer *w, et_error *err) {
    int rc = -1;
    if (w->failed) {
        et_fail(err, "%s: the corpus writer already failed; nothing was written", w->path);
        goto fail;
    }
    if (w->n_tok_buf > 0 && flush_tokens(w, err)) goto fail;
    if (w->n_doc_buf > 0 && flush_docs(w, err)) goto fail;
    if (w->docs_flushed == 0) {
        et_fail(err, "%s: no documents to write", w->path);
        goto fail;
    }
    if (write_attributes(w, err)) goto fail;
    writer_close_datasets(w);
    herr_t closed = H5Fclose(w->file);
    w->file = -1;
    if (closed < 0) {
        h5fail(err, w->path, "closing %s failed (disk full?)", w->tmp);
        goto fail;
    }
    if (fsync_path(w->tmp, O_RDONLY) != 0) {
        et_fail(err, "%s: fsync of %s failed: %s", w->path, w->tmp, strerror(errno));
        goto fail;
    }
    if (place_output(w, err)) goto fail;
    free(w->tmp);
    w->tmp = NULL; /* placed: nothing to remove */
    rc = 0;
fail:
    et_corpus_writer_abort(w);
    return rc;
}

/* ------------------------------------------------------------- reader --- */

/* Reads a string attribute (scalar or 1-D; variable or fixed length, as h5py
 * writes either) into n_out newly allocated strings. */
static char **read_str_attr(hid_t obj, const char *name, int *n_out) {
    *n_out = 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t ftype = H5Aget_type(a), space = H5Aget_space(a), mtype = -1;
    char **out = NULL;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (ftype < 0 || H5Tget_class(ftype) != H5T_STRING || n < 0 || n > 1 << 20) goto done;
    out = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!out) goto done;
    if (H5Tis_variable_str(ftype) > 0) {
        mtype = H5Tcopy(H5T_C_S1);
        H5Tset_size(mtype, H5T_VARIABLE);
        H5Tset_cset(mtype, H5Tget_cset(ftype));
        char **raw = calloc((size_t)(n ? n : 1), sizeof(char *));
        int read = raw && H5Aread(a, mtype, raw) >= 0, ok = read;
        for (hssize_t i = 0; ok && i < n; i++) {
            out[i] = strdup(raw[i] ? raw[i] : "");
            if (!out[i]) ok = 0;
        }
        if (read) {
#if H5_VERSION_GE(1, 12, 0)
            H5Treclaim(mtype, space, H5P_DEFAULT, raw);
#else
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw);
#endif
        }
        free(raw);
        if (!ok) goto fail;
    } else {
        size_t size = H5Tget_size(ftype);
        mtype = H5Tcopy(ftype);
        char *raw = size ? malloc((size_t)(n ? n : 1) * size) : NULL;
        int ok = raw && H5Aread(a, mtype, raw) >= 0;
        for (hssize_t i = 0; ok && i < n; i++) {
            const char *s = raw + (size_t)i * size;
            size_t len = strnlen(s, size);
            while (len > 0 && s[len - 1] == ' ' && H5Tget_strpad(ftype) == H5T_STR_SPACEPAD) len--;
            out[i] = strndup(s, len);
            if (!out[i]) ok = 0;
        }
        free(raw);
        if (!ok) goto fail;
    }
    *n_out = (int)n;
    goto done;
fail:
    for (hssize_t i = 0; i < n; i++) free(out[i]);
    free(out);
    out = NULL;
done:
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    if (space >= 0) H5Sclose(space);
    H5Aclose(a);
    return out;
}

static void free_strs(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

/* A required scalar string root attribute. */
static int read_root_str(hid_t file, const char *path, const char *name, char **out, et_error *err) {
    if (H5Aexists(file, name) <= 0)
        return et_fail(err, "%s: root attribute `%s` missing — was it written by `ehrtune ingest`?",
                       path, name);
    int n = 0;
    char **v = read_str_attr(file, name, &n);
    if (!v || n != 1) {
        free_strs(v, n);
        return h5fail(err, path, "root attribute `%s` is not a string", name);
    }
    *out = v[0];
    free(v);
    return 0;
}

static int read_root_int(hid_t file, const char *path, const char *name, int64_t *out,
                         et_error *err) {
    if (H5Aexists(file, name) <= 0)
        return et_fail(err, "%s: root attribute `%s` missing — was it written by `ehrtune ingest`?",
                       path, name);
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, s = a >= 0 ? H5Aget_space(a) : -1;
    int ok = t >= 0 && s >= 0 && H5Tget_class(t) == H5T_INTEGER &&
             H5Sget_simple_extent_npoints(s) == 1 && H5Aread(a, H5T_NATIVE_INT64, out) >= 0;
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : h5fail(err, path, "root attribute `%s` is not an integer", name);
}

/* Largest chunk the reader decodes: ours are ~4 MiB, h5py's automatic ones under 1
 * MiB; a larger declared chunk is a decompression bomb waiting for a frame. */
#define MAX_READ_CHUNK_BYTES ((hsize_t)256 << 20)

/* The chunk size in bytes that a zstd frame of dataset `ds` must decode to, for
 * et_zstd_filter_expect (0: not chunked or no zstd); -1 (after et_fail) for a pipeline
 * the reader does not trust: zstd after a filter that changes sizes, or chunks above
 * MAX_READ_CHUNK_BYTES. */
static int64_t zstd_chunk_bytes(hid_t ds, int rank, size_t elem_size, const char *path,
                                const char *name, et_error *err) {
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) return h5fail(err, path, "dataset %s: no creation properties", name);
    int64_t out = 0;
    hsize_t cdims[2] = {0, 0};
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, rank, cdims) == rank) {
        hsize_t bytes = elem_size;
        for (int i = 0; i < rank; i++)
            bytes = cdims[i] && bytes <= MAX_READ_CHUNK_BYTES ? bytes * cdims[i] : MAX_READ_CHUNK_BYTES + 1;
        int zstd_at = -1, size_changing_before = 0;
        const int nf = H5Pget_nfilters(dcpl);
        for (int i = 0; i < nf; i++) {
            unsigned flags = 0, cfg = 0;
            size_t ncd = 0;
            const H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, NULL, 0, NULL, &cfg);
            if (id == ET_ZSTD_FILTER_ID && zstd_at < 0) zstd_at = i;
            else if (zstd_at < 0 && id != H5Z_FILTER_SHUFFLE) size_changing_before = 1;
        }
        if (zstd_at >= 0 && size_changing_before)
            out = et_fail(err, "%s: dataset %s compresses with zstd after a filter that changes "
                               "sizes; the reader takes zstd alone or after shuffle (rewrite it "
                               "with `ehrtune ingest`, or h5py with hdf5plugin.Zstd)",
                          path, name);
        else if (zstd_at >= 0 && bytes > MAX_READ_CHUNK_BYTES)
            out = et_fail(err, "%s: dataset %s has chunks over %llu MiB; the reader refuses them "
                               "(rewrite it with smaller chunks)",
                          path, name, (unsigned long long)(MAX_READ_CHUNK_BYTES >> 20));
        else if (zstd_at >= 0)
            out = (int64_t)bytes;
    }
    H5Pclose(dcpl);
    return out;
}

/* Reads a whole dataset that must exist, with integer/float class `cls`, an
 * element of `size` bytes and `rank` dimensions, converted to `memtype`. name: its
 * path in the file; shown: how messages name it. */
static int read_dataset_as(hid_t file, const char *path, const char *name, const char *shown,
                           H5T_class_t cls, size_t size, const char *type_name, hid_t memtype,
                           int rank, hsize_t dims[2], void **out, et_error *err) {
    *out = NULL;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return et_fail(err, "%s: dataset %s missing — was it written by `ehrtune ingest`?", path,
                       shown);
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0) return h5fail(err, path, "%s is not a readable dataset", shown);
    hid_t t = H5Dget_type(ds), s = H5Dget_space(ds);
    int rc = -1;
    if (t < 0 || s < 0 || H5Tget_class(t) != cls || H5Tget_size(t) != size) {
        et_fail(err, "%s: dataset %s has the wrong element type (expected %s)", path, shown,
                type_name);
        goto done;
    }
    if (H5Sget_simple_extent_ndims(s) != rank) {
        et_fail(err, "%s: dataset %s has %d dimensions, expected %d", path, shown,
                H5Sget_simple_extent_ndims(s), rank);
        goto done;
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    hsize_t n = dims[0] * (rank == 2 ? dims[1] : 1);
    if ((rank == 2 && dims[1] && n / dims[1] != dims[0]) || n > (hsize_t)(SIZE_MAX / 8)) {
        et_fail(err, "%s: dataset %s is implausibly large", path, shown);
        goto done;
    }
    *out = malloc(n ? (size_t)n * size : 1);
    if (!*out) {
        et_fail(err, "%s: out of memory loading dataset %s (%llu values; the reader holds the "
                     "whole corpus in memory)", path, shown, (unsigned long long)n);
        goto done;
    }
    const int64_t chunk = zstd_chunk_bytes(ds, rank, size, path, shown, err);
    if (chunk < 0) {
        free(*out);
        *out = NULL;
        goto done;
    }
    et_zstd_filter_expect((size_t)chunk);
    const herr_t got = n > 0 ? H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) : 0;
    et_zstd_filter_expect(0);
    if (got < 0) {
        h5fail(err, path, "reading dataset %s failed", shown);
        free(*out);
        *out = NULL;
        goto done;
    }
    rc = 0;
done:
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    H5Dclose(ds);
    return rc;
}

static int read_dataset(hid_t file, const char *path, const char *name, H5T_class_t cls,
                        size_t size, const char *type_name, hid_t memtype, int rank,
                        hsize_t dims[2], void **out, et_error *err) {
    return read_dataset_as(file, path, name, name, cls, size, type_name, memtype, rank, dims, out,
                           err);
}

void et_corpus_close(et_corpus *c) {
    if (!c) return;
    free(c->path);
    free(c->doc_offsets);
    free(c->tokens);
    free(c->loss_mask);
    free(c->patient_ids);
    free(c->split);
    for (int g = 0; g < c->n_groups; g++) {
        free(c->groups[g].name);
        free_strs(c->groups[g].labels, c->groups[g].n_labels);
        free(c->groups[g].codes);
    }
    free(c->groups);
    free_strs(c->structured_names, c->n_structured);
    free(c->structured);
    free(c->tokenizer_sha256);
    free(c->source_sha256);
    free(c->phi_scan);
    free(c->created);
    memset(c, 0, sizeof *c);
}

static int read_groups(et_corpus *c, hid_t file, et_error *err) {
    if (H5Lexists(file, "groups", H5P_DEFAULT) <= 0) return 0; /* no groups: allowed */
    hid_t g = H5Gopen2(file, "groups", H5P_DEFAULT);
    if (g < 0) return h5fail(err, c->path, "/groups is not an HDF5 group");
    H5G_info_t info;
    int rc = -1;
    if (H5Gget_info(g, &info) < 0) {
        h5fail(err, c->path, "cannot list /groups");
        goto done;
    }
    if (info.nlinks > ET_CORPUS_MAX_GROUPS) {
        et_fail(err, "%s: /groups has %llu entries (at most %d)", c->path,
                (unsigned long long)info.nlinks, ET_CORPUS_MAX_GROUPS);
        goto done;
    }
    c->groups = calloc(info.nlinks ? info.nlinks : 1, sizeof *c->groups);
    if (!c->groups) {
        et_fail(err, "%s: out of memory", c->path);
        goto done;
    }
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[ET_CORPUS_MAX_NAME + 2], full[ET_CORPUS_MAX_NAME + 16];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                         H5P_DEFAULT);
        if (len < 0 || len > ET_CORPUS_MAX_NAME) {
            et_fail(err, "%s: /groups entry %llu has no name or a name over %d bytes", c->path,
                    (unsigned long long)i, ET_CORPUS_MAX_NAME);
            goto done;
        }
        snprintf(full, sizeof full, "/groups/%s", name);
        /* messages name the entry by position: group names are keys from the records */
        char what[64];
        snprintf(what, sizeof what, "/groups entry %llu", (unsigned long long)i);
        et_corpus_group *grp = &c->groups[c->n_groups++];
        grp->name = strdup(name);
        hsize_t dims[2];
        if (read_dataset_as(file, c->path, full, what, H5T_INTEGER, 2, "int16", H5T_NATIVE_INT16,
                            1, dims, (void **)&grp->codes, err))
            goto done;
        if ((int64_t)dims[0] != c->n_docs) {
            et_fail(err, "%s: dataset %s has %llu values but the corpus has %lld documents",
                    c->path, what, (unsigned long long)dims[0], (long long)c->n_docs);
            goto done;
        }
        hid_t ds = H5Dopen2(file, full, H5P_DEFAULT);
        grp->labels = ds >= 0 ? read_str_attr(ds, "labels", &grp->n_labels) : NULL;
        if (ds >= 0) H5Dclose(ds);
        if (!grp->labels) {
            et_fail(err, "%s: dataset %s has no string attribute `labels`", c->path, what);
            goto done;
        }
        for (int64_t d = 0; d < c->n_docs; d++)
            if (grp->codes[d] < -1 || grp->codes[d] >= grp->n_labels) {
                et_fail(err, "%s: dataset %s: code at document %lld is outside [-1, %d)", c->path,
                        what, (long long)d, grp->n_labels);
                goto done;
            }
    }
    rc = 0;
done:
    H5Gclose(g);
    return rc;
}

static int read_structured(et_corpus *c, hid_t file, et_error *err) {
    if (H5Lexists(file, "structured", H5P_DEFAULT) <= 0) return 0; /* optional */
    hsize_t dims[2];
    if (read_dataset(file, c->path, "/structured", H5T_FLOAT, 4, "float32", H5T_NATIVE_FLOAT, 2,
                     dims, (void **)&c->structured, err))
        return -1;
    if ((int64_t)dims[0] != c->n_docs || dims[1] > 65536)
        return et_fail(err, "%s: dataset /structured is [%llu, %llu], expected [%lld, F]", c->path,
                       (unsigned long long)dims[0], (unsigned long long)dims[1],
                       (long long)c->n_docs);
    hid_t ds = H5Dopen2(file, "structured", H5P_DEFAULT);
    int n = 0;
    c->structured_names = ds >= 0 ? read_str_attr(ds, "names", &n) : NULL;
    if (ds >= 0) H5Dclose(ds);
    c->n_structured = n;
    if (!c->structured_names || (hsize_t)n != dims[1])
        return et_fail(err, "%s: dataset /structured needs a string attribute `names` with %llu "
                            "entries", c->path, (unsigned long long)dims[1]);
    return 0;
}

typedef struct {
    int64_t patient, doc;
} patient_doc;

static int cmp_patient_doc(const void *a, const void *b) {
    const patient_doc *x = a, *y = b;
    if (x->patient != y->patient) return (x->patient > y->patient) - (x->patient < y->patient);
    return (x->doc > y->doc) - (x->doc < y->doc);
}

/* Every document of one patient in one split: else validation or test rows would hold
 * patients the model trained on. ingest splits per patient; a corpus written by other
 * means (h5py, the writer API) is checked here. Messages name documents, never ids. */
static int check_split_per_patient(const et_corpus *c, et_error *err) {
    if (c->n_docs < 2) return 0;
    patient_doc *v = malloc((size_t)c->n_docs * sizeof *v);
    if (!v) return et_fail(err, "%s: out of memory checking the splits", c->path);
    for (int64_t d = 0; d < c->n_docs; d++) v[d] = (patient_doc){c->patient_ids[d], d};
    qsort(v, (size_t)c->n_docs, sizeof *v, cmp_patient_doc);
    int rc = 0;
    for (int64_t i = 1; i < c->n_docs && !rc; i++)
        if (v[i].patient == v[i - 1].patient && c->split[v[i].doc] != c->split[v[i - 1].doc])
            rc = et_fail(err, "%s: documents %lld and %lld belong to one patient but to splits %d "
                              "and %d: a patient's documents must all be in one split (as "
                              "`ehrtune ingest` assigns them)",
                         c->path, (long long)v[i - 1].doc, (long long)v[i].doc,
                         (int)c->split[v[i - 1].doc], (int)c->split[v[i].doc]);
    free(v);
    return rc;
}

static int validate(et_corpus *c, hsize_t n_offsets, hsize_t n_mask, hsize_t n_pids,
                    hsize_t n_split, et_error *err) {
    const char *p = c->path;
    if (n_offsets < 1)
        return et_fail(err, "%s: dataset /doc_offsets is empty (it needs n_docs+1 values)", p);
    c->n_docs = (int64_t)n_offsets - 1;
    if ((int64_t)n_mask != c->n_tokens)
        return et_fail(err, "%s: dataset /loss_mask has %llu values but /tokens has %lld", p,
                       (unsigned long long)n_mask, (long long)c->n_tokens);
    if ((int64_t)n_pids != c->n_docs)
        return et_fail(err, "%s: dataset /patient_ids has %llu values but /doc_offsets describes "
                            "%lld documents", p, (unsigned long long)n_pids, (long long)c->n_docs);
    if ((int64_t)n_split != c->n_docs)
        return et_fail(err, "%s: dataset /split has %llu values but /doc_offsets describes %lld "
                            "documents", p, (unsigned long long)n_split, (long long)c->n_docs);
    if (c->doc_offsets[0] != 0)
        return et_fail(err, "%s: dataset /doc_offsets does not start at 0", p);
    for (int64_t d = 0; d < c->n_docs; d++)
        if (c->doc_offsets[d + 1] < c->doc_offsets[d])
            return et_fail(err, "%s: dataset /doc_offsets decreases at index %lld", p,
                           (long long)(d + 1));
    if (c->doc_offsets[c->n_docs] != c->n_tokens)
        return et_fail(err, "%s: dataset /doc_offsets ends at %lld but /tokens has %lld values", p,
                       (long long)c->doc_offsets[c->n_docs], (long long)c->n_tokens);
    if (c->vocab_size < 0)
        return et_fail(err, "%s: root attribute `vocab_size` is negative", p);
    for (int64_t i = 0; i < c->n_tokens; i++) {
        if (c->tokens[i] < 0 || c->tokens[i] >= c->vocab_size)
            return et_fail(err, "%s: dataset /tokens: value at index %lld is outside [0, vocab_size "
                                "= %lld)", p, (long long)i, (long long)c->vocab_size);
        if (c->loss_mask[i] > 1)
            return et_fail(err, "%s: dataset /loss_mask: value at index %lld is not 0 or 1", p,
                           (long long)i);
    }
    for (int64_t d = 0; d < c->n_docs; d++)
        if (c->split[d] > ET_SPLIT_TEST)
            return et_fail(err, "%s: dataset /split: value at document %lld is not 0, 1 or 2", p,
                           (long long)d);
    return check_split_per_patient(c, err);
}

int et_corpus_open(et_corpus *c, const char *path, et_error *err) {
    memset(c, 0, sizeof *c);
    if (hdf5_prepare(err)) return -1;
    if (access(path, R_OK) != 0)
        return et_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return et_fail(err, "%s: not an HDF5 file — expected a corpus written by `ehrtune ingest`",
                       path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return h5fail(err, path, "cannot open as HDF5");
    c->path = strdup(path);
    int rc = -1;
    char *format = NULL;
    int64_t version = 0;
    if (!c->path) {
        et_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (read_root_str(file, path, "format", &format, err)) goto done;
    if (strcmp(format, ET_CORPUS_FORMAT) != 0) {
        et_fail(err, "%s: root attribute `format` is not \"%s\" — not an ehrtune corpus", path,
                ET_CORPUS_FORMAT);
        goto done;
    }
    if (read_root_int(file, path, "version", &version, err)) goto done;
    if (version != ET_CORPUS_VERSION) {
        et_fail(err, "%s: corpus schema version %lld; this ehrtune reads version %d (%s)", path,
                (long long)version, ET_CORPUS_VERSION,
                version > ET_CORPUS_VERSION ? "upgrade ehrtune" : "re-run `ehrtune ingest`");
        goto done;
    }
    if (read_root_int(file, path, "vocab_size", &c->vocab_size, err) ||
        read_root_str(file, path, "tokenizer_sha256", &c->tokenizer_sha256, err) ||
        read_root_str(file, path, "source_sha256", &c->source_sha256, err) ||
        read_root_str(file, path, "phi_scan", &c->phi_scan, err) ||
        read_root_str(file, path, "created", &c->created, err))
        goto done;

    hsize_t d_tok[2], d_mask[2], d_off[2], d_pid[2], d_split[2];
    if (read_dataset(file, path, "/tokens", H5T_INTEGER, 4, "int32", H5T_NATIVE_INT32, 1, d_tok,
                     (void **)&c->tokens, err) ||
        read_dataset(file, path, "/loss_mask", H5T_INTEGER, 1, "uint8", H5T_NATIVE_UINT8, 1, d_mask,
                     (void **)&c->loss_mask, err) ||
        read_dataset(file, path, "/doc_offsets", H5T_INTEGER, 8, "int64", H5T_NATIVE_INT64, 1,
                     d_off, (void **)&c->doc_offsets, err) ||
        read_dataset(file, path, "/patient_ids", H5T_INTEGER, 8, "int64", H5T_NATIVE_INT64, 1,
                     d_pid, (void **)&c->patient_ids, err) ||
        read_dataset(file, path, "/split", H5T_INTEGER, 1, "uint8", H5T_NATIVE_UINT8, 1, d_split,
                     (void **)&c->split, err))
        goto done;
    c->n_tokens = (int64_t)d_tok[0];
    if (validate(c, d_off[0], d_mask[0], d_pid[0], d_split[0], err)) goto done;
    if (read_groups(c, file, err) || read_structured(c, file, err)) goto done;
    rc = 0;
done:
    free(format);
    H5Fclose(file);
    if (rc) et_corpus_close(c);
    return rc;
}

const et_corpus_group *et_corpus_find_group(const et_corpus *c, const char *name) {
    for (int g = 0; g < c->n_groups; g++)
        if (!strcmp(c->groups[g].name, name)) return &c->groups[g];
    return NULL;
}
