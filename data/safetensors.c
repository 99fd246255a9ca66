/* safetensors reader (one file) and Hugging Face model-folder loader.
 * The writer lives in safetensors_write.c. */
#include "data/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as-is"
#endif

/* What a user can do about a damaged file, appended to most reader errors. */
#define FIX_FILE "the file is corrupt, truncated or was not written as safetensors; re-download or re-export it"

/* ---- dtypes ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int bits;
} DTYPES[ET_DT_COUNT] = {
    [ET_DT_BOOL] = {"BOOL", 8},         [ET_DT_F4] = {"F4", 4},
    [ET_DT_F6_E2M3] = {"F6_E2M3", 6},   [ET_DT_F6_E3M2] = {"F6_E3M2", 6},
    [ET_DT_U8] = {"U8", 8},             [ET_DT_I8] = {"I8", 8},
    [ET_DT_F8_E5M2] = {"F8_E5M2", 8},   [ET_DT_F8_E4M3] = {"F8_E4M3", 8},
    [ET_DT_F8_E8M0] = {"F8_E8M0", 8},   [ET_DT_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [ET_DT_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [ET_DT_I16] = {"I16", 16},          [ET_DT_U16] = {"U16", 16},
    [ET_DT_F16] = {"F16", 16},          [ET_DT_BF16] = {"BF16", 16},
    [ET_DT_I32] = {"I32", 32},          [ET_DT_U32] = {"U32", 32},
    [ET_DT_F32] = {"F32", 32},          [ET_DT_C64] = {"C64", 64},
    [ET_DT_F64] = {"F64", 64},          [ET_DT_I64] = {"I64", 64},
    [ET_DT_U64] = {"U64", 64},
};

const char *et_dtype_name(et_dtype dt) {
    return (unsigned)dt < ET_DT_COUNT ? DTYPES[dt].name : "?";
}

int et_dtype_bits(et_dtype dt) {
    return (unsigned)dt < ET_DT_COUNT ? DTYPES[dt].bits : 0;
}

int et_dtype_parse(const char *s, et_dtype *out) {
    for (int i = 0; i < ET_DT_COUNT; i++)
        if (!strcmp(s, DTYPES[i].name)) {
            *out = (et_dtype)i;
            return 0;
        }
    return -1;
}

size_t et_utf8_check(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

/* ---- fp16 / bf16 ------------------------------------------------------------- */

static float bits_to_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

float et_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf, NaN keeps payload */
    if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
    /* zero or subnormal: mant · 2^-24, exact in fp32 */
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

float et_bf16_to_f32(uint16_t b) {
    return bits_to_f32((uint32_t)b << 16);
}

uint16_t et_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1); /* round to nearest even; overflow carries to inf */
    return (uint16_t)(x >> 16);
}

uint16_t et_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);
    if (a >= 0x477ff000u) return sign | 0x7c00;   /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                       /* normal half: >= 2^-14 */
        uint32_t r = (a - 0x38000000u) + 0xfffu + ((a >> 13) & 1);
        return sign | (uint16_t)(r >> 13);
    }
    /* half subnormal: round |f|·2^24 to an integer (ties to even; 1024 is the
     * smallest normal, whose bit pattern is the same). */
    float m = nearbyintf(bits_to_f32(a) * 16777216.0f);
    return sign | (uint16_t)m;
}

/* ---- message helpers ----------------------------------------------------------- */

/* Tensor names come from the file: show at most 100 bytes and no control bytes. */
typedef struct {
    char s[112];
} shown_name;

static shown_name show(const char *name) {
    shown_name o;
    size_t i = 0;
    for (; name[i] && i < 100; i++) {
        unsigned char c = (unsigned char)name[i];
        o.s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    o.s[i] = 0;
    if (name[i]) strcpy(o.s + i, "...");
    return o;
}

static const char *json_type_name(const cJSON *j) {
    if (cJSON_IsObject(j)) return "object";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsBool(j)) return "boolean";
    if (cJSON_IsNull(j)) return "null";
    return "invalid value";
}

/* A JSON number that is an exact non-negative integer below 2^53 (every such
 * value is exactly representable in the double cJSON parses into). */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d >= 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* ---- header validation --------------------------------------------------------- */

/* Byte-level checks cJSON does not make: UTF-8, no raw control bytes inside
 * strings (RFC 8259), and no \u0000 escape (it would silently cut a C string
 * short, letting two different names compare equal). */
static int check_header_text(const char *path, const uint8_t *h, size_t n, et_error *err) {
    size_t bad = et_utf8_check(h, n);
    if (bad != n)
        return et_fail(err, "%s: header is not valid UTF-8 (header byte %zu); " FIX_FILE, path, bad);
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = h[i];
        if (!in_string) {
            if (c == '"') in_string = 1;
            continue;
        }
        if (c == '"') in_string = 0;
        else if (c < 0x20)
            return et_fail(err, "%s: header has a raw control byte 0x%02x inside a JSON string "
                           "(header byte %zu); " FIX_FILE, path, c, i);
        else if (c == '\\' && i + 1 < n) {
            if (h[i + 1] == 'u' && i + 5 < n && !memcmp(h + i + 2, "0000", 4))
                return et_fail(err, "%s: header has a \\u0000 escape in a string (header byte %zu); "
                               "names with NUL characters are not supported", path, i);
            i++; /* skip the escaped character, which may be a quote */
        }
    }
    return 0;
}

#define ET_ST_MAX_METADATA 4096

static int parse_metadata(et_st_file *f, const cJSON *meta, et_error *err) {
    if (!cJSON_IsObject(meta))
        return et_fail(err, "%s: \"__metadata__\" is a JSON %s; the format requires an object of "
                       "string values; " FIX_FILE, f->path, json_type_name(meta));
    int n = cJSON_GetArraySize(meta);
    /* Real files carry a handful (format, a few provenance strings); the duplicate check
     * below is quadratic, so a header of millions of keys would stall the reader. */
    if (n > ET_ST_MAX_METADATA)
        return et_fail(err, "%s: \"__metadata__\" has %d entries, over the %d this reader "
                       "takes; " FIX_FILE, f->path, n, ET_ST_MAX_METADATA);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return et_fail(err, "%s: out of memory", f->path);
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return et_fail(err, "%s: \"__metadata__\" key '%s' has a JSON %s value; the format "
                           "allows only string values; " FIX_FILE,
                           f->path, show(kv->string).s, json_type_name(kv));
        if (et_st_metadata(f, kv->string))
            return et_fail(err, "%s: \"__metadata__\" has key '%s' twice; " FIX_FILE, f->path,
                           show(kv->string).s);
        f->meta_keys[f->n_meta] = strdup(kv->string);
        f->meta_values[f->n_meta] = strdup(kv->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta])
            return et_fail(err, "%s: out of memory", f->path);
        f->n_meta++;
    }
    return 0;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry. */
static int parse_tensor(const et_st_file *f, const cJSON *e, et_st_tensor *t, et_error *err) {
    shown_name sn = show(e->string);
    const char *nm = sn.s;
    if (!cJSON_IsObject(e))
        return et_fail(err, "%s: tensor '%s': entry is a JSON %s, expected an object with dtype, "
                       "shape and data_offsets; " FIX_FILE, f->path, nm, json_type_name(e));
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *m = e->child; m; m = m->next) {
        const cJSON **slot = !strcmp(m->string, "dtype")          ? &dtype
                             : !strcmp(m->string, "shape")        ? &shape
                             : !strcmp(m->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot)
            return et_fail(err, "%s: tensor '%s': unknown field '%s' (allowed: dtype, shape, "
                           "data_offsets); " FIX_FILE, f->path, nm, show(m->string).s);
        if (*slot)
            return et_fail(err, "%s: tensor '%s': field '%s' appears twice; " FIX_FILE, f->path, nm,
                           m->string);
        *slot = m;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
    if (missing)
        return et_fail(err, "%s: tensor '%s': missing field '%s'; " FIX_FILE, f->path, nm, missing);

    if (!cJSON_IsString(dtype))
        return et_fail(err, "%s: tensor '%s': dtype is a JSON %s, expected a string such as "
                       "\"BF16\"; " FIX_FILE, f->path, nm, json_type_name(dtype));
    if (et_dtype_parse(dtype->valuestring, &t->dtype))
        return et_fail(err, "%s: tensor '%s': unknown dtype '%s' (safetensors dtypes: BOOL, U8, I8, "
                       "I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, C64, F4, F6_*, F8_*); "
                       "the file is corrupt or from a newer safetensors version",
                       f->path, nm, show(dtype->valuestring).s);

    if (!cJSON_IsArray(shape))
        return et_fail(err, "%s: tensor '%s': shape is a JSON %s, expected an array of integers; "
                       FIX_FILE, f->path, nm, json_type_name(shape));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ET_ST_MAX_DIMS)
        return et_fail(err, "%s: tensor '%s': shape has %d dimensions; this reader supports at most %d",
                       f->path, nm, ndim, ET_ST_MAX_DIMS);
    t->ndim = ndim;
    /* numel and the bit count are accumulated with overflow checks. */
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *x = shape->child; x; x = x->next, d++) {
        uint64_t v;
        if (json_u64(x, &v))
            return et_fail(err, "%s: tensor '%s': shape[%d] is not a non-negative integer below 2^53; "
                           FIX_FILE, f->path, nm, d);
        t->shape[d] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v)
            return et_fail(err, "%s: tensor '%s': element count of shape overflows 64 bits; " FIX_FILE,
                           f->path, nm);
        numel *= v;
    }
    uint64_t bits = (uint64_t)et_dtype_bits(t->dtype);
    if (numel > (uint64_t)INT64_MAX / bits)
        return et_fail(err, "%s: tensor '%s': size of %llu %s elements overflows; " FIX_FILE, f->path,
                       nm, (unsigned long long)numel, et_dtype_name(t->dtype));
    bits *= numel;
    if (bits % 8)
        return et_fail(err, "%s: tensor '%s': %llu %s elements do not fill a whole number of bytes; "
                       FIX_FILE, f->path, nm, (unsigned long long)numel, et_dtype_name(t->dtype));

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_u64(offs->child, &t->begin) ||
        json_u64(offs->child->next, &t->end))
        return et_fail(err, "%s: tensor '%s': data_offsets must be [BEGIN, END], two non-negative "
                       "integers; " FIX_FILE, f->path, nm);
    if (t->end < t->begin)
        return et_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin; " FIX_FILE,
                       f->path, nm, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end - t->begin != bits / 8) {
        char sh[160];
        format_shape(sh, sizeof sh, t->ndim, t->shape);
        return et_fail(err, "%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets "
                       "[%llu, %llu] span %llu; " FIX_FILE, f->path, nm, sh, et_dtype_name(t->dtype),
                       (unsigned long long)(bits / 8), (unsigned long long)t->begin,
                       (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
    }
    t->name = strdup(e->string);
    if (!t->name) return et_fail(err, "%s: out of memory", f->path);
    return 0;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const et_st_tensor *)a)->name, ((const et_st_tensor *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const et_st_tensor *x = *(const et_st_tensor *const *)a, *y = *(const et_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The buffer must be covered exactly: sorted by offsets, the first tensor starts
 * at 0, each starts where the previous ended, and the last ends at the buffer's
 * end. This rejects overlaps, holes (polyglot files), trailing bytes and
 * truncation. */
static int check_layout(const et_st_file *f, et_error *err) {
    const et_st_tensor **order = malloc(((size_t)f->n_tensors + 1) * sizeof *order);
    if (!order) return et_fail(err, "%s: out of memory", f->path);
    for (int i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    uint64_t pos = 0;
    int rc = 0;
    for (int i = 0; i < f->n_tensors && !rc; i++) {
        const et_st_tensor *t = order[i];
        if (t->begin == pos) {
            pos = t->end;
            continue;
        }
        if (i == 0)
            rc = et_fail(err, "%s: tensor '%s': first tensor begins at byte %llu of the data buffer, "
                         "not 0, leaving unindexed bytes; " FIX_FILE, f->path, show(t->name).s,
                         (unsigned long long)t->begin);
        else if (t->begin < pos)
            rc = et_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                         "[%llu, %llu]; " FIX_FILE, f->path, show(t->name).s,
                         (unsigned long long)t->begin, (unsigned long long)t->end,
                         show(order[i - 1]->name).s, (unsigned long long)order[i - 1]->begin,
                         (unsigned long long)order[i - 1]->end);
        else
            rc = et_fail(err, "%s: tensor '%s': begins at byte %llu but the previous tensor '%s' ends "
                         "at %llu, leaving a gap of %llu unindexed bytes; " FIX_FILE, f->path,
                         show(t->name).s, (unsigned long long)t->begin, show(order[i - 1]->name).s,
                         (unsigned long long)pos, (unsigned long long)(t->begin - pos));
    }
    const et_st_tensor *last = f->n_tensors ? order[f->n_tensors - 1] : NULL;
    free(order);
    if (rc) return rc;
    if (!last && f->data_size)
        return et_fail(err, "%s: data buffer has %llu bytes but the header lists no tensors; " FIX_FILE,
                       f->path, (unsigned long long)f->data_size);
    if (pos < f->data_size)
        return et_fail(err, "%s: %llu trailing bytes after the last tensor '%s' (data buffer is %llu "
                       "bytes, tensors cover %llu); " FIX_FILE, f->path,
                       (unsigned long long)(f->data_size - pos), show(last->name).s,
                       (unsigned long long)f->data_size, (unsigned long long)pos);
    if (pos > f->data_size)
        return et_fail(err, "%s: tensor '%s': ends at byte %llu of the data buffer but the file holds "
                       "only %llu data bytes: the file is truncated; re-download or re-export it",
                       f->path, show(last->name).s, (unsigned long long)pos,
                       (unsigned long long)f->data_size);
    return 0;
}

static int parse_header(et_st_file *f, et_error *err) {
    uint64_t n;
    memcpy(&n, f->map, 8);
    if (n > ET_ST_MAX_HEADER)
        return et_fail(err, "%s: header length %llu exceeds the format's limit of %u bytes; " FIX_FILE,
                       f->path, (unsigned long long)n, ET_ST_MAX_HEADER);
    if (n > f->map_size - 8)
        return et_fail(err, "%s: header length %llu runs past the end of the file (%zu bytes); "
                       FIX_FILE, f->path, (unsigned long long)n, f->map_size);
    const uint8_t *h = f->map + 8;
    if (n == 0 || h[0] != '{')
        return et_fail(err, "%s: header does not start with '{'; " FIX_FILE, f->path);
    if (check_header_text(f->path, h, (size_t)n, err)) return -1;
    f->data = h + n;
    f->data_size = f->map_size - 8 - n;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)h, (size_t)n, &end, 0);
    if (!root)
        return et_fail(err, "%s: header is not valid JSON (near header byte %td); " FIX_FILE, f->path,
                       end ? end - (const char *)h : (ptrdiff_t)0);
    int rc = 0;
    for (const char *p = end; p < (const char *)h + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = et_fail(err, "%s: header has bytes other than space padding after the JSON object "
                         "(header byte %td); " FIX_FILE, f->path, p - (const char *)h);
            break;
        }
    if (!rc && !cJSON_IsObject(root))
        rc = et_fail(err, "%s: header is a JSON %s, not an object; " FIX_FILE, f->path,
                     json_type_name(root));
    if (!rc) {
        int count = cJSON_GetArraySize(root);
        f->tensors = calloc((size_t)count + 1, sizeof *f->tensors);
        if (!f->tensors) rc = et_fail(err, "%s: out of memory", f->path);
        int seen_metadata = 0;
        for (const cJSON *e = root->child; e && !rc; e = e->next) {
            if (!strcmp(e->string, "__metadata__")) {
                if (seen_metadata++)
                    rc = et_fail(err, "%s: header has \"__metadata__\" twice; " FIX_FILE, f->path);
                else
                    rc = parse_metadata(f, e, err);
            } else {
                rc = parse_tensor(f, e, &f->tensors[f->n_tensors], err);
                if (!rc) f->n_tensors++;
            }
        }
    }
    cJSON_Delete(root);
    if (rc) return rc;

    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_by_name);
    for (int i = 1; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name))
            return et_fail(err, "%s: tensor '%s' appears twice in the header; the format forbids "
                           "duplicate names; " FIX_FILE, f->path, show(f->tensors[i].name).s);
    return check_layout(f, err);
}

/* ---- one file: public API ------------------------------------------------------ */

int et_st_open(et_st_file *f, const char *path, et_error *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return et_fail(err, "%s: cannot open safetensors file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return et_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return et_fail(err, "%s: not a regular file; give the path of a .safetensors file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return et_fail(err, "%s: file is %lld bytes, shorter than the 8-byte header length; " FIX_FILE,
                       path, (long long)st.st_size);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return et_fail(err, "%s: file too large to map on this machine", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return et_fail(err, "%s: cannot map file: %s", path, strerror(e));
    f->map = map;
    f->map_size = (size_t)st.st_size;
    f->path = strdup(path);
    if (!f->path) {
        et_st_close(f);
        return et_fail(err, "%s: out of memory", path);
    }
    if (parse_header(f, err)) {
        et_st_close(f);
        return -1;
    }
    return 0;
}

void et_st_close(et_st_file *f) {
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->map_size);
    if (f->tensors)
        for (int i = 0; i < f->n_tensors; i++) free((void *)f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const et_st_tensor *et_st_find(const et_st_file *f, const char *name) {
    et_st_tensor key = {.name = name};
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_by_name);
}

const char *et_st_metadata(const et_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

int64_t et_st_numel(const et_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const void *et_st_data(const et_st_file *f, const et_st_tensor *t) {
    return f->data + t->begin;
}

int et_st_read_f32(const et_st_file *f, const et_st_tensor *t, float *out, et_error *err) {
    return et_st_read_f32_range(f, t, 0, et_st_numel(t), out, err);
}

int et_st_read_f32_range(const et_st_file *f, const et_st_tensor *t, int64_t first, int64_t n,
                         float *out, et_error *err) {
    int64_t total = et_st_numel(t);
    if (first < 0 || n < 0 || first > total || n > total - first)
        return et_fail(err, "%s: tensor '%s': elements [%lld, +%lld) are outside its %lld elements "
                       "(internal error)", f->path, show(t->name).s, (long long)first, (long long)n,
                       (long long)total);
    int bits = et_dtype_bits(t->dtype);
    const uint8_t *p = f->data + t->begin + (bits % 8 ? 0 : (uint64_t)first * (uint64_t)(bits / 8));
    switch (t->dtype) {
    case ET_DT_F32:
        memcpy(out, p, (size_t)n * 4);
        return 0;
    case ET_DT_BF16:
    case ET_DT_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2); /* the buffer need not be 2-byte aligned */
            out[i] = t->dtype == ET_DT_BF16 ? et_bf16_to_f32(v) : et_f16_to_f32(v);
        }
        return 0;
    case ET_DT_F64:
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        return 0;
    default:
        return et_fail(err, "%s: tensor '%s' has dtype %s; only F32, F16, BF16 and F64 tensors can be "
                       "loaded as floating-point weights", f->path, show(t->name).s,
                       et_dtype_name(t->dtype));
    }
}

/* ---- model folder -------------------------------------------------------------- */

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
#define MAX_INDEX_BYTES (64u << 20)

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const struct et_st_model_entry *)a)->name,
                  ((const struct et_st_model_entry *)b)->name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reads a whole small file, NUL-terminated. Returns 0, or ENOENT when it does not
 * exist (no message), or -1 with a message. */
static int read_small_file(const char *path, char **buf, size_t *len, et_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT) return ENOENT;
        return et_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n - 1, fp);
        if (n < cap - 1 || cap > MAX_INDEX_BYTES) break;
        char *nb = realloc(b, cap *= 2);
        if (!nb) free(b);
        b = nb;
    }
    int rd_err = ferror(fp);
    fclose(fp);
    if (!b) return et_fail(err, "%s: out of memory", path);
    if (rd_err) {
        free(b);
        return et_fail(err, "%s: read error", path);
    }
    if (n > MAX_INDEX_BYTES) {
        free(b);
        return et_fail(err, "%s: larger than %u bytes; this is not a safetensors index", path,
                       MAX_INDEX_BYTES);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* A shard name from the index must name a file in the model folder itself. */
static int shard_name_ok(const char *s) {
    return s[0] && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..") &&
           et_utf8_check((const uint8_t *)s, strlen(s)) == strlen(s) && strlen(s) < 256;
}

static int open_sharded(et_st_model *m, const char *index_path, const char *text, size_t len,
                        et_error *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root)
        return et_fail(err, "%s: not valid JSON (near byte %td); re-download the model", index_path,
                       end ? end - text : (ptrdiff_t)0);
    int rc = 0;
    const char **shards = NULL;
    const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        rc = et_fail(err, "%s: no \"weight_map\" object; a sharded model's index maps each tensor "
                     "name to its shard file; re-download the model", index_path);
        goto done;
    }
    int n = cJSON_GetArraySize(wm);
    if (n == 0) {
        rc = et_fail(err, "%s: \"weight_map\" is empty; re-download the model", index_path);
        goto done;
    }
    shards = malloc((size_t)n * sizeof *shards);
    m->entries = calloc((size_t)n, sizeof *m->entries);
    if (!shards || !m->entries) {
        rc = et_fail(err, "%s: out of memory", index_path);
        goto done;
    }
    int i = 0;
    for (const cJSON *e = wm->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || !shard_name_ok(e->valuestring)) {
            rc = et_fail(err, "%s: weight_map entry for tensor '%s' is not a plain shard file name "
                         "in the model folder (no '/', '\\' or '..'); re-download the model",
                         index_path, show(e->string).s);
            goto done;
        }
        shards[i] = e->valuestring;
    }
    /* Open each distinct shard once. */
    qsort(shards, (size_t)n, sizeof *shards, cmp_str);
    int n_unique = 0;
    for (i = 0; i < n; i++)
        if (i == 0 || strcmp(shards[i], shards[n_unique - 1])) shards[n_unique++] = shards[i];
    m->files = calloc((size_t)n_unique, sizeof *m->files);
    if (!m->files) {
        rc = et_fail(err, "%s: out of memory", index_path);
        goto done;
    }
    for (i = 0; i < n_unique; i++) {
        char *p = path_join(m->dir, shards[i]);
        if (!p) {
            rc = et_fail(err, "out of memory");
            goto done;
        }
        rc = et_st_open(&m->files[i], p, err);
        free(p);
        if (rc) {
            et_wrap(err, "shard '%s' listed in %s", show(shards[i]).s, index_path);
            goto done;
        }
        m->n_files++;
    }
    i = 0;
    for (const cJSON *e = wm->child; e; e = e->next, i++) {
        const char **hit = bsearch(&e->valuestring, shards, (size_t)n_unique, sizeof *shards, cmp_str);
        int fi = (int)(hit - shards);
        const et_st_tensor *t = et_st_find(&m->files[fi], e->string);
        if (!t) {
            rc = et_fail(err, "%s: weight_map puts tensor '%s' in shard '%s', but that shard has no "
                         "such tensor; the index does not match the shards: re-download the model",
                         index_path, show(e->string).s, show(e->valuestring).s);
            goto done;
        }
        m->entries[i] = (struct et_st_model_entry){t->name, t, fi};
    }
    m->n_entries = n;
    qsort(m->entries, (size_t)n, sizeof *m->entries, cmp_entry);
    for (i = 1; i < n; i++)
        if (!strcmp(m->entries[i].name, m->entries[i - 1].name)) {
            rc = et_fail(err, "%s: weight_map lists tensor '%s' twice; re-download the model",
                         index_path, show(m->entries[i].name).s);
            goto done;
        }
done:
    free(shards);
    cJSON_Delete(root);
    return rc;
}

static int open_single(et_st_model *m, et_error *err) {
    char *p = path_join(m->dir, SINGLE_NAME);
    if (!p) return et_fail(err, "out of memory");
    struct stat st;
    if (stat(p, &st) && errno == ENOENT) {
        free(p);
        return et_fail(err, "%s: has neither " INDEX_NAME " nor " SINGLE_NAME "; point the model path "
                       "at a Hugging Face model folder (config.json + safetensors weights)", m->dir);
    }
    m->files = calloc(1, sizeof *m->files);
    int rc = m->files ? et_st_open(&m->files[0], p, err) : et_fail(err, "out of memory");
    free(p);
    if (rc) return rc;
    m->n_files = 1;
    const et_st_file *f = &m->files[0];
    m->entries = calloc((size_t)f->n_tensors + 1, sizeof *m->entries);
    if (!m->entries) return et_fail(err, "out of memory");
    for (int i = 0; i < f->n_tensors; i++) /* already sorted by name */
        m->entries[i] = (struct et_st_model_entry){f->tensors[i].name, &f->tensors[i], 0};
    m->n_entries = f->n_tensors;
    return 0;
}

int et_st_model_open(et_st_model *m, const char *dir, et_error *err) {
    memset(m, 0, sizeof *m);
    m->dir = strdup(dir);
    char *index_path = path_join(dir, INDEX_NAME), *single_path = path_join(dir, SINGLE_NAME);
    if (!m->dir || !index_path || !single_path) {
        free(index_path);
        free(single_path);
        et_st_model_close(m);
        return et_fail(err, "out of memory");
    }
    /* transformers' order: a regular file model.safetensors wins, the index is read
     * only without it (its save_pretrained leaves a stale index behind when a sharded
     * model is re-saved as one file). */
    struct stat st;
    int single_is_file = stat(single_path, &st) == 0 && S_ISREG(st.st_mode);
    free(single_path);
    char *text = NULL;
    size_t len = 0;
    int rc = single_is_file ? ENOENT : read_small_file(index_path, &text, &len, err);
    if (rc == ENOENT) rc = open_single(m, err);
    else if (rc == 0) rc = open_sharded(m, index_path, text, len, err);
    free(text);
    free(index_path);
    if (rc) et_st_model_close(m);
    return rc ? -1 : 0;
}

void et_st_model_close(et_st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++) et_st_close(&m->files[i]);
    free(m->files);
    free(m->entries);
    free(m->dir);
    memset(m, 0, sizeof *m);
}

const et_st_tensor *et_st_model_find(const et_st_model *m, const char *name,
                                     const et_st_file **file) {
    struct et_st_model_entry key = {.name = name};
    const struct et_st_model_entry *e =
        bsearch(&key, m->entries, (size_t)m->n_entries, sizeof *m->entries, cmp_entry);
    if (!e) return NULL;
    if (file) *file = &m->files[e->file];
    return e->tensor;
}

int et_st_model_check(const et_st_model *m, const char *name, int ndim,
                      const int64_t *expected_shape, et_error *err) {
    const et_st_file *f;
    const et_st_tensor *t = et_st_model_find(m, name, &f);
    if (!t)
        return et_fail(err, "%s: model has no tensor '%s', which config.json implies; the weights do "
                       "not match config.json (wrong folder, or an unsupported variant)", m->dir,
                       show(name).s);
    if (expected_shape) {
        int same = t->ndim == ndim;
        for (int i = 0; same && i < ndim; i++) same = t->shape[i] == expected_shape[i];
        if (!same) {
            char have[160], want[160];
            format_shape(have, sizeof have, t->ndim, t->shape);
            format_shape(want, sizeof want, ndim, expected_shape);
            return et_fail(err, "tensor '%s' in %s has shape %s, config.json implies %s; the weights "
                           "do not match config.json", show(name).s, f->path, have, want);
        }
    }
    return 0;
}

int et_st_model_read_f32(const et_st_model *m, const char *name, float *out, int ndim,
                         const int64_t *expected_shape, et_error *err) {
    if (et_st_model_check(m, name, ndim, expected_shape, err)) return -1;
    const et_st_file *f;
    const et_st_tensor *t = et_st_model_find(m, name, &f);
    return et_st_read_f32(f, t, out, err);
}
