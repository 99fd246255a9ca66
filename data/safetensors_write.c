/* safetensors writer: collect tensors, then write one spec-conformant file
 * atomically (temp name in the same folder, fsync, rename). */
#include "data/safetensors.h"
#include "data/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void et_st_writer_init(et_st_writer *w) {
    memset(w, 0, sizeof *w);
}

void et_st_writer_free(et_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    memset(w, 0, sizeof *w);
}

static int utf8_ok(const char *s) {
    size_t n = strlen(s);
    return et_utf8_check((const uint8_t *)s, n) == n;
}

static uint64_t tensor_bytes(const et_st_wtensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n * (uint64_t)(et_dtype_bits(t->dtype) / 8);
}

static int add(et_st_writer *w, const char *name, et_dtype dtype, int ndim, const int64_t *shape,
               const void *data, int from_f32, et_error *err) {
    if (!name || !name[0] || !utf8_ok(name) || !strcmp(name, "__metadata__"))
        return et_fail(err, "safetensors writer: tensor name '%s' is empty, not UTF-8 or reserved",
                       name ? name : "(null)");
    if ((unsigned)dtype >= ET_DT_COUNT || et_dtype_bits(dtype) % 8)
        return et_fail(err, "safetensors writer: tensor '%s': dtype %s cannot be written (only "
                       "whole-byte dtypes)", name, et_dtype_name(dtype));
    if (from_f32 && dtype != ET_DT_F32 && dtype != ET_DT_BF16 && dtype != ET_DT_F16)
        return et_fail(err, "safetensors writer: tensor '%s': fp32 data can be stored as F32, BF16 or "
                       "F16, not %s", name, et_dtype_name(dtype));
    if (ndim < 0 || ndim > ET_ST_MAX_DIMS)
        return et_fail(err, "safetensors writer: tensor '%s': %d dimensions (0..%d allowed)", name,
                       ndim, ET_ST_MAX_DIMS);
    uint64_t numel = 1, bytes_per = (uint64_t)et_dtype_bits(dtype) / 8;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return et_fail(err, "safetensors writer: tensor '%s': negative dimension %d", name, i);
        uint64_t v = (uint64_t)shape[i];
        if (v && numel > (UINT64_C(1) << 53) / v)
            return et_fail(err, "safetensors writer: tensor '%s': too many elements", name);
        numel *= v;
    }
    if (numel * bytes_per >= (UINT64_C(1) << 53))
        return et_fail(err, "safetensors writer: tensor '%s': too large", name);
    if (numel && !data)
        return et_fail(err, "safetensors writer: tensor '%s': no data", name);
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        et_st_wtensor *nt = realloc(w->tensors, (size_t)cap * sizeof *nt);
        if (!nt) return et_fail(err, "safetensors writer: out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    et_st_wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return et_fail(err, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->from_f32 = from_f32;
    w->n_tensors++;
    return 0;
}

int et_st_writer_add(et_st_writer *w, const char *name, et_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, et_error *err) {
    return add(w, name, dtype, ndim, shape, data, 0, err);
}

int et_st_writer_add_f32(et_st_writer *w, const char *name, et_dtype dtype, int ndim,
                         const int64_t *shape, const float *data, et_error *err) {
    return add(w, name, dtype, ndim, shape, data, 1, err);
}

int et_st_writer_set_metadata(et_st_writer *w, const char *key, const char *value,
                              et_error *err) {
    if (!key || !value || !utf8_ok(key) || !utf8_ok(value))
        return et_fail(err, "safetensors writer: metadata key/value must be UTF-8 strings");
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta_keys[i], key)) {
            char *v = strdup(value);
            if (!v) return et_fail(err, "safetensors writer: out of memory");
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return 0;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 4;
        char **k = realloc(w->meta_keys, (size_t)cap * sizeof *k);
        if (k) w->meta_keys = k;
        char **v = realloc(w->meta_values, (size_t)cap * sizeof *v);
        if (v) w->meta_values = v;
        if (!k || !v) return et_fail(err, "safetensors writer: out of memory");
        w->cap_meta = cap;
    }
    w->meta_keys[w->n_meta] = strdup(key);
    w->meta_values[w->n_meta] = strdup(value);
    if (!w->meta_keys[w->n_meta] || !w->meta_values[w->n_meta]) {
        free(w->meta_keys[w->n_meta]);
        free(w->meta_values[w->n_meta]);
        return et_fail(err, "safetensors writer: out of memory");
    }
    w->n_meta++;
    return 0;
}

/* ---- header text ---------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} strbuf;

static void put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void puts_(strbuf *b, const char *s) {
    put(b, s, strlen(s));
}

/* JSON string: quote, backslash and control bytes escaped; UTF-8 passes through. */
static void put_json_string(strbuf *b, const char *s) {
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

static void put_u64(strbuf *b, uint64_t v) {
    char t[24];
    snprintf(t, sizeof t, "%" PRIu64, v);
    puts_(b, t);
}

/* ---- file output ------------------------------------------------------------------ */

static int write_tensor_data(int fd, const et_st_wtensor *t) {
    uint64_t bytes = tensor_bytes(t);
    if (!t->from_f32 || t->dtype == ET_DT_F32) return et_write_all(fd, t->data, (size_t)bytes);
    /* fp32 -> 16-bit in chunks, so no full-size copy is needed. */
    enum { CHUNK = 1 << 13 }; /* 16 KiB on the stack */
    uint16_t buf[CHUNK];
    const float *src = t->data;
    uint64_t n = bytes / 2;
    for (uint64_t i = 0; i < n; i += CHUNK) {
        size_t m = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        for (size_t j = 0; j < m; j++)
            buf[j] = t->dtype == ET_DT_BF16 ? et_f32_to_bf16(src[i + j]) : et_f32_to_f16(src[i + j]);
        if (et_write_all(fd, buf, m * 2)) return -1;
    }
    return 0;
}

/* Layout order of the reference writer: larger dtypes first, then by name. */
static int cmp_layout(const void *a, const void *b) {
    const et_st_wtensor *x = *(const et_st_wtensor *const *)a, *y = *(const et_st_wtensor *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const et_st_wtensor *const *)a)->name, (*(const et_st_wtensor *const *)b)->name);
}

static int open_temp(const char *path, int mode, char **tmp_out) {
    static unsigned counter;
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned r = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16) ^ (++counter * 2654435761u);
        snprintf(tmp, n, "%s.tmp.%08x", path, r);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    free(tmp);
    return -1;
}

/* Best effort: make the rename durable. Some file systems refuse fsync on a
 * directory; the data itself was already fsync'd. */
static void sync_parent_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int et_st_writer_write(const et_st_writer *w, const char *path, int flags, et_error *err) {
    int n = w->n_tensors, rc = 0, fd = -1;
    char *tmp = NULL;
    strbuf h = {0};
    const et_st_wtensor **order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order) return et_fail(err, "%s: out of memory", path);
    for (int i = 0; i < n; i++) order[i] = &w->tensors[i];

    qsort(order, (size_t)n, sizeof *order, cmp_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name)) {
            rc = et_fail(err, "%s: tensor '%s' was added twice; names must be unique", path,
                         order[i]->name);
            goto done;
        }
    qsort(order, (size_t)n, sizeof *order, cmp_layout);

    /* Header: __metadata__ first ("format": "pt" unless the caller set it). */
    int has_format = 0;
    for (int i = 0; i < w->n_meta; i++) has_format |= !strcmp(w->meta_keys[i], "format");
    puts_(&h, "{\"__metadata__\":{");
    if (!has_format) puts_(&h, "\"format\":\"pt\"");
    for (int i = 0; i < w->n_meta; i++) {
        if (i || !has_format) puts_(&h, ",");
        put_json_string(&h, w->meta_keys[i]);
        puts_(&h, ":");
        put_json_string(&h, w->meta_values[i]);
    }
    puts_(&h, "}");
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const et_st_wtensor *t = order[i];
        puts_(&h, ",");
        put_json_string(&h, t->name);
        puts_(&h, ":{\"dtype\":\"");
        puts_(&h, et_dtype_name(t->dtype));
        puts_(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) puts_(&h, ",");
            put_u64(&h, (uint64_t)t->shape[d]);
        }
        puts_(&h, "],\"data_offsets\":[");
        put_u64(&h, offset);
        puts_(&h, ",");
        offset += tensor_bytes(t);
        put_u64(&h, offset);
        puts_(&h, "]}");
    }
    puts_(&h, "}");
    while (h.n % 8) puts_(&h, " "); /* the data buffer starts 8-byte aligned */
    if (h.oom) {
        rc = et_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (h.n > ET_ST_MAX_HEADER) {
        rc = et_fail(err, "%s: header would be %zu bytes, above the format's limit of %u", path, h.n,
                     ET_ST_MAX_HEADER);
        goto done;
    }

    fd = open_temp(path, (flags & ET_ST_WRITE_PRIVATE) ? 0600 : 0666, &tmp);
    if (fd < 0) {
        rc = et_fail(err, "%s: cannot create a temporary file beside it: %s; check that the folder "
                     "exists and is writable", path, strerror(errno));
        goto done;
    }
    uint64_t hlen = h.n; /* little-endian host (checked in safetensors.c) */
    int bad = et_write_all(fd, &hlen, 8) || et_write_all(fd, h.s, h.n);
    for (int i = 0; i < n && !bad; i++) bad = write_tensor_data(fd, order[i]);
    if (bad || fsync(fd)) {
        rc = et_fail(err, "%s: write failed: %s; check free disk space", path, strerror(errno));
        goto done;
    }
    int cerr = close(fd);
    fd = -1;
    if (cerr || rename(tmp, path)) {
        rc = et_fail(err, "%s: cannot finish writing: %s", path, strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;
    sync_parent_dir(path);
done:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(h.s);
    free(order);
    return rc;
}
