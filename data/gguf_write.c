/* GGUF v3 writer: key/values serialised as they are added, tensors converted and
 * copied, then one file written under a temporary name and renamed. */
#include "data/gguf_write.h"
#include "data/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/safetensors.h" /* fp32 -> bf16 / f16 rounding */

typedef struct {
    char name[ET_GGUF_MAX_NAME + 1];
    int ndim;
    uint64_t ne[ET_GGUF_MAX_DIMS]; /* reversed torch shape: ne[0] fastest */
    et_ggml_type type;
    uint8_t *data;
    uint64_t bytes;
} gguf_tensor;

struct et_gguf_writer {
    uint8_t *kv;          /* serialised key/value pairs, in order added */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;          /* for the uniqueness check */
    uint32_t alignment;   /* from general.alignment; 0 = not set (32) */
    gguf_tensor *tensors;
    int n_tensors, cap_tensors;
};

const char *et_ggml_type_name(et_ggml_type t) {
    return t == ET_GGML_F32 ? "F32" : t == ET_GGML_F16 ? "F16" : t == ET_GGML_BF16 ? "BF16" : "?";
}

et_gguf_writer *et_gguf_writer_new(void) { return calloc(1, sizeof(et_gguf_writer)); }

void et_gguf_writer_free(et_gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    free(w->kv);
    for (int i = 0; i < w->n_tensors; i++) free(w->tensors[i].data);
    free(w->tensors);
    free(w);
}

static int kv_reserve(et_gguf_writer *w, size_t more) {
    if (w->kv_len + more <= w->kv_cap) return 0;
    size_t cap = w->kv_cap ? w->kv_cap : 256;
    while (cap < w->kv_len + more) cap *= 2;
    uint8_t *p = realloc(w->kv, cap);
    if (!p) return -1;
    w->kv = p;
    w->kv_cap = cap;
    return 0;
}

static void put(et_gguf_writer *w, const void *p, size_t n) {
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

static void put_u32(et_gguf_writer *w, uint32_t v) { put(w, &v, 4); } /* little-endian host */
static void put_u64(et_gguf_writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(et_gguf_writer *w, const char *s) {
    put_u64(w, strlen(s));
    put(w, s, strlen(s));
}

/* Checks the key and appends "key, type" to the KV buffer, leaving room for a
 * value of value_bytes. */
static int begin_kv(et_gguf_writer *w, const char *key, uint32_t type, size_t value_bytes,
                    et_error *err) {
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n >= 65536)
        return et_fail(err, "gguf writer: key '%s' is empty or longer than 65535 bytes",
                       key ? key : "(null)");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return et_fail(err, "gguf writer: key '%s' is not printable ASCII", key);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return et_fail(err, "gguf writer: duplicate key '%s'", key);
    char **keys = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *keys);
    if (!keys) return et_fail(err, "gguf writer: out of memory");
    w->keys = keys;
    if (!(w->keys[w->n_kv] = strdup(key)) || kv_reserve(w, 8 + n + 4 + value_bytes))
        return et_fail(err, "gguf writer: out of memory");
    w->n_kv++;
    put_str(w, key);
    put_u32(w, type);
    return 0;
}

int et_gguf_add_string(et_gguf_writer *w, const char *key, const char *value, et_error *err) {
    if (!value) return et_fail(err, "gguf writer: key '%s' has a NULL string", key);
    if (begin_kv(w, key, ET_GGUF_TYPE_STRING, 8 + strlen(value), err)) return -1;
    put_str(w, value);
    return 0;
}

int et_gguf_add_u32(et_gguf_writer *w, const char *key, uint32_t value, et_error *err) {
    int is_alignment = key && !strcmp(key, "general.alignment");
    if (is_alignment && (value == 0 || (value & (value - 1))))
        return et_fail(err, "gguf writer: general.alignment %u is not a power of two", value);
    if (begin_kv(w, key, ET_GGUF_TYPE_UINT32, 4, err)) return -1;
    if (is_alignment) w->alignment = value;
    put_u32(w, value);
    return 0;
}

int et_gguf_add_f32(et_gguf_writer *w, const char *key, float value, et_error *err) {
    if (begin_kv(w, key, ET_GGUF_TYPE_FLOAT32, 4, err)) return -1;
    put(w, &value, 4);
    return 0;
}

int et_gguf_add_bool(et_gguf_writer *w, const char *key, int value, et_error *err) {
    if (begin_kv(w, key, ET_GGUF_TYPE_BOOL, 1, err)) return -1;
    uint8_t b = value ? 1 : 0;
    put(w, &b, 1);
    return 0;
}

int et_gguf_add_tensor_f32(et_gguf_writer *w, const char *name, int ndim,
                           const int64_t *torch_shape, const float *data, et_ggml_type type,
                           et_error *err) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > ET_GGUF_MAX_NAME)
        return et_fail(err, "gguf writer: tensor name '%s' must be 1..%d bytes (GGML_MAX_NAME)",
                       name ? name : "(null)", ET_GGUF_MAX_NAME);
    if (ndim < 1 || ndim > ET_GGUF_MAX_DIMS)
        return et_fail(err, "gguf writer: tensor '%s' has %d dimensions (1..%d allowed)", name,
                       ndim, ET_GGUF_MAX_DIMS);
    if (type != ET_GGML_F32 && type != ET_GGML_F16 && type != ET_GGML_BF16)
        return et_fail(err, "gguf writer: tensor '%s': ggml type %d is not supported (F32, F16, "
                            "BF16)", name, (int)type);
    for (int i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return et_fail(err, "gguf writer: duplicate tensor name '%s'", name);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (torch_shape[i] < 1 || (uint64_t)torch_shape[i] > (UINT64_C(1) << 40) / numel)
            return et_fail(err, "gguf writer: tensor '%s': dimension %d is %lld (must be 1..2^40 "
                                "elements in all)", name, i, (long long)torch_shape[i]);
        numel *= (uint64_t)torch_shape[i];
    }
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 32;
        gguf_tensor *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t) return et_fail(err, "gguf writer: out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    gguf_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, n + 1);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->ne[i] = (uint64_t)torch_shape[ndim - 1 - i];
    t->type = type;
    t->bytes = numel * (type == ET_GGML_F32 ? 4 : 2);
    t->data = malloc(t->bytes);
    if (!t->data) return et_fail(err, "gguf writer: out of memory for tensor '%s'", name);
    if (type == ET_GGML_F32) memcpy(t->data, data, t->bytes);
    else {
        uint16_t *o = (uint16_t *)t->data;
        for (uint64_t i = 0; i < numel; i++)
            o[i] = type == ET_GGML_BF16 ? et_f32_to_bf16(data[i]) : et_f32_to_f16(data[i]);
    }
    w->n_tensors++;
    return 0;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int et_gguf_write(const et_gguf_writer *w, const char *path, int flags, et_error *err) {
    uint64_t alignment = w->alignment ? w->alignment : ET_GGUF_DEFAULT_ALIGNMENT;
    /* Header + KV + tensor infos, assembled in memory (small for an adapter). */
    size_t info_len = 0;
    for (int i = 0; i < w->n_tensors; i++)
        info_len += 8 + strlen(w->tensors[i].name) + 4 + 8 * (size_t)w->tensors[i].ndim + 4 + 8;
    size_t head_len = 4 + 4 + 8 + 8 + w->kv_len + info_len;
    uint64_t data_start = align_up(head_len, alignment);
    uint8_t *head = calloc(1, (size_t)data_start);
    int rc = -1, fd = -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (!head) {
        et_fail(err, "gguf writer: out of memory");
        goto done;
    }
    uint8_t *p = head;
    uint32_t version = ET_GGUF_VERSION, u32;
    uint64_t u64;
    memcpy(p, "GGUF", 4), p += 4;
    memcpy(p, &version, 4), p += 4;
    u64 = (uint64_t)w->n_tensors, memcpy(p, &u64, 8), p += 8;
    memcpy(p, &w->n_kv, 8), p += 8;
    memcpy(p, w->kv, w->kv_len), p += w->kv_len;
    uint64_t off = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const gguf_tensor *t = &w->tensors[i];
        u64 = strlen(t->name), memcpy(p, &u64, 8), p += 8;
        memcpy(p, t->name, u64), p += u64;
        u32 = (uint32_t)t->ndim, memcpy(p, &u32, 4), p += 4;
        memcpy(p, t->ne, 8 * (size_t)t->ndim), p += 8 * (size_t)t->ndim;
        u32 = (uint32_t)t->type, memcpy(p, &u32, 4), p += 4;
        memcpy(p, &off, 8), p += 8;
        off += align_up(t->bytes, alignment);
    }

    /* a fresh file only: a leftover (or a planted link) of this name is removed, and
     * O_EXCL refuses one that reappears */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              (flags & ET_GGUF_WRITE_PRIVATE) ? 0600 : 0666);
    if (fd < 0) {
        et_fail(err, "%s: cannot create (%s)", tmp, strerror(errno));
        goto done;
    }
    static const uint8_t zeros[64];
    int bad = et_write_all(fd, head, (size_t)data_start);
    for (int i = 0; i < w->n_tensors && !bad; i++) {
        const gguf_tensor *t = &w->tensors[i];
        bad = et_write_all(fd, t->data, (size_t)t->bytes);
        uint64_t pad = align_up(t->bytes, alignment) - t->bytes;
        while (!bad && pad) {
            size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
            bad = et_write_all(fd, zeros, k);
            pad -= k;
        }
    }
    bad = bad || fsync(fd) != 0;
    bad = close(fd) != 0 || bad;
    fd = -1;
    if (bad || rename(tmp, path) != 0) {
        et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(head);
    return rc;
}
