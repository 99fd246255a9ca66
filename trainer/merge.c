/* Streaming LoRA merge into BF16, HF-sharded safetensors. See merge.h. */
#include "trainer/merge.h"
#include "data/atomic_file.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Default output chunk: 16 MiB of bf16 per write, whatever the tensor size. */
#define DEFAULT_CHUNK_ELEMS (8 << 20)
/* Compute tile: 256 KiB of fp32 scratch, which stays in L2 between widening, the
 * GEMM and the rounding (the traffic to memory is then bf16 in, bf16 out). */
#define TILE_ELEMS (64 << 10)

/* ---- the HF safetensors source ------------------------------------------------ */
typedef struct {
    et_st_model model;
    et_merge_tensor *infos;
    const et_st_tensor **st;   /* [n] */
    const et_st_file **files;  /* [n] */
    /* read-ahead window of the tensor being read, in elements */
    int adv_tensor;
    int64_t adv_ahead, adv_released;
} hf_source;

/* Elements per read-ahead / release step. */
#define ADVICE_WINDOW (8 << 20)

/* madvise over the pages holding [p, p + len), clamped to the mapping. WILLNEED
 * asks the kernel to start reading now (the merge reads sequentially); DONTNEED
 * after a chunk is converted unmaps its pages, so the process does not accumulate
 * the whole base model as resident mapped pages (they stay in the page cache, and
 * a later access maps them again). */
static void advise(const et_st_file *f, const uint8_t *p, size_t len, int advice) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(page - 1), end = (uintptr_t)f->map + f->map_size;
    uintptr_t b = (uintptr_t)p + len < end ? (uintptr_t)p + len : end;
    if (b > a) madvise((void *)a, b - a, advice);
}

static int hf_read_f32(void *ctx, int i, int64_t first, int64_t n, float *out, et_error *err) {
    hf_source *h = ctx;
    const et_st_tensor *t = h->st[i];
    const uint8_t *p = et_st_data(h->files[i], t);
    size_t es = (size_t)et_dtype_bits(t->dtype) / 8;
    if (i != h->adv_tensor) {
        h->adv_tensor = i;
        h->adv_ahead = h->adv_released = 0;
    }
    if (first + n > h->adv_ahead) { /* ask for the next two windows */
        int64_t w = n > ADVICE_WINDOW ? n : ADVICE_WINDOW;
        advise(h->files[i], p + es * (size_t)first, es * (size_t)(2 * w), MADV_WILLNEED);
        h->adv_ahead = first + 2 * w;
    }
    int rc = 0;
    switch (t->dtype) {
    case ET_DT_F32: memcpy(out, p + 4 * first, sizeof(float) * (size_t)n); break;
    case ET_DT_BF16: {
        const uint16_t *s = (const uint16_t *)p + first;
#pragma omp simd
        for (int64_t k = 0; k < n; k++) {
            uint32_t b = (uint32_t)s[k] << 16;
            memcpy(&out[k], &b, 4);
        }
        break;
    }
    case ET_DT_F16: {
        const uint16_t *s = (const uint16_t *)p + first;
        for (int64_t k = 0; k < n; k++) out[k] = et_f16_to_f32(s[k]);
        break;
    }
    default:
        rc = et_fail(err, "%s: tensor %s has dtype %s; the merge reads F32, F16 or BF16",
                     h->files[i]->path, t->name, et_dtype_name(t->dtype));
    }
    if (first + n - h->adv_released >= ADVICE_WINDOW || first + n == et_st_numel(t)) {
        advise(h->files[i], p + es * (size_t)h->adv_released,
               es * (size_t)(first + n - h->adv_released), MADV_DONTNEED);
        h->adv_released = first + n;
    }
    return rc;
}

static const void *hf_bf16_bytes(void *ctx, int i) {
    hf_source *h = ctx;
    return h->st[i]->dtype == ET_DT_BF16 ? et_st_data(h->files[i], h->st[i]) : NULL;
}

static int hf_bf16_extent(void *ctx, int i, const char **path, uint64_t *offset) {
    hf_source *h = ctx;
    if (h->st[i]->dtype != ET_DT_BF16) return -1;
    *path = h->files[i]->path;
    *offset = (uint64_t)((const uint8_t *)et_st_data(h->files[i], h->st[i]) - h->files[i]->map);
    return 0;
}

static void hf_close(void *ctx) {
    hf_source *h = ctx;
    if (!h) return;
    et_st_model_close(&h->model);
    free(h->infos);
    free(h->st);
    free(h->files);
    free(h);
}

int et_merge_source_open_hf(et_merge_source *s, const char *dir, et_error *err) {
    memset(s, 0, sizeof *s);
    hf_source *h = calloc(1, sizeof *h);
    if (!h) return et_fail(err, "out of memory");
    if (et_st_model_open(&h->model, dir, err)) {
        free(h);
        return -1;
    }
    int n = h->model.n_entries;
    h->infos = calloc((size_t)n, sizeof *h->infos);
    h->st = calloc((size_t)n, sizeof *h->st);
    h->files = calloc((size_t)n, sizeof *h->files);
    if (!h->infos || !h->st || !h->files) {
        hf_close(h);
        return et_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const struct et_st_model_entry *e = &h->model.entries[i];
        const et_st_tensor *t = e->tensor;
        if (t->dtype != ET_DT_F32 && t->dtype != ET_DT_BF16 && t->dtype != ET_DT_F16) {
            et_fail(err, "%s: tensor %s has dtype %s; a merge needs F32, F16 or BF16 weights",
                    h->model.files[e->file].path, t->name, et_dtype_name(t->dtype));
            hf_close(h);
            return -1;
        }
        h->st[i] = t;
        h->files[i] = &h->model.files[e->file];
        h->infos[i].name = e->name;
        h->infos[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) h->infos[i].shape[d] = t->shape[d];
    }
    h->adv_tensor = -1;
    s->ctx = h;
    s->n_tensors = n;
    s->tensors = h->infos;
    s->read_f32 = hf_read_f32;
    s->bf16_bytes = hf_bf16_bytes;
    s->bf16_extent = hf_bf16_extent;
    s->close = hf_close;
    return 0;
}

void et_merge_source_close(et_merge_source *s) {
    if (s && s->close) s->close(s->ctx);
    if (s) memset(s, 0, sizeof *s);
}

/* ---- planning ------------------------------------------------------------------ */
typedef struct {
    int src;            /* index into the source */
    int layer;          /* HF order key: -1 before the layers, L after */
    int64_t numel;
    const et_lora_slot *slot; /* the LoRA merged into it, or NULL */
    int shard;
    uint64_t begin;     /* offset in its shard's data buffer */
} plan_tensor;

/* "model.layers.12.self_attn.q_proj.weight" -> 12 and the rest after "12.". */
static int layer_of(const char *name, const char **rest) {
    static const char prefix[] = "model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1)) return -1;
    char *end;
    long v = strtol(name + sizeof prefix - 1, &end, 10);
    if (end == name + sizeof prefix - 1 || *end != '.' || v < 0 || v > 1000000) return -1;
    *rest = end + 1;
    return (int)v;
}

static int cmp_hf_order(const void *a, const void *b, void *names_v) {
    const plan_tensor *x = a, *y = b;
    const et_merge_tensor *names = names_v;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(names[x->src].name, names[y->src].name);
}

/* qsort_r needs _GNU_SOURCE (set for the whole build). */
static void sort_hf_order(plan_tensor *p, int n, const et_merge_tensor *infos) {
    qsort_r(p, (size_t)n, sizeof *p, cmp_hf_order, (void *)infos);
}

/* Finds the base tensor of every targeted projection, checks its shape and ties
 * the slot to it. */
static int attach_lora(plan_tensor *p, int n, const et_merge_source *src, const et_lora *l,
                       et_error *err) {
    if (!l) return 0;
    for (int layer = 0; layer < l->num_layers; layer++)
        for (int pj = 0; pj < ET_PROJ_COUNT; pj++) {
            const et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)pj);
            if (!s->a) continue;
            char name[256];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", layer,
                     et_proj_module((et_proj)pj));
            int found = -1;
            for (int i = 0; i < n; i++)
                if (!strcmp(src->tensors[p[i].src].name, name)) found = i;
            if (found < 0)
                return et_fail(err, "base model has no tensor %s, which the adapter targets "
                                    "(adapter made for another model?)", name);
            const et_merge_tensor *t = &src->tensors[p[found].src];
            if (t->ndim != 2 || t->shape[0] != s->out || t->shape[1] != s->in)
                return et_fail(err, "base model tensor %s has shape [%lld, %lld]; the adapter's "
                                    "B·A is [%d, %d] (adapter made for another model?)",
                               name, (long long)(t->ndim > 0 ? t->shape[0] : 0),
                               (long long)(t->ndim > 1 ? t->shape[1] : 0), s->out, s->in);
            p[found].slot = s;
        }
    return 0;
}

/* ---- writing -----------------------------------------------------------------------
 * A writer thread drains a FIFO of jobs into the shard while the main thread reads,
 * merges and rounds the next chunk, so arithmetic overlaps the disk. A job is either
 * one of two bf16 buffers (double buffering) or a byte range of a source file,
 * copied with copy_file_range (no trip through user space, as cp does) or, where
 * the file system cannot, written from the mapping. */

/* Round to nearest even, NaN kept quiet: the same bits as et_f32_to_bf16, written
 * here so the hot loop inlines (a call per element would cost more than the disk). */
static inline uint16_t to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

#define QUEUE 4
typedef struct {
    const void *data;   /* bytes to write (a bf16 buffer or the source mapping) */
    size_t len;
    int src_fd;         /* >= 0: copy [src_off, src_off + len) of this file instead */
    off_t src_off;
    int buf;            /* bf16 buffer released once written, or -1 */
} write_job;

typedef struct {
    int64_t elems;              /* output chunk, elements */
    int64_t tile, f32_elems;    /* compute tile, elements; fp32 scratch size (>= a row) */
    float *f32;                 /* [f32_elems], main thread only */
    uint16_t *bf16[2];          /* [elems] each, handed to the writer in turn */
    int next;                   /* the buffer to fill next */
    /* writer thread state, guarded by mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    write_job q[QUEUE];
    int head, count, busy[2], stop, running;
    int fd, err_no, can_copy_range;
} pipeline;

static void *writer_main(void *arg) {
    pipeline *pl = arg;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (pl->count == 0 && !pl->stop) pthread_cond_wait(&pl->cv, &pl->mu);
        if (pl->count == 0) {
            pthread_mutex_unlock(&pl->mu);
            return NULL;
        }
        write_job j = pl->q[pl->head];
        int failed = pl->err_no != 0;
        pthread_mutex_unlock(&pl->mu);
        int e = 0;
        if (!failed && j.src_fd >= 0 && pl->can_copy_range) {
            off_t off = j.src_off;
            size_t left = j.len;
            while (left) {
                ssize_t k = copy_file_range(j.src_fd, &off, pl->fd, NULL, left, 0);
                if (k < 0 && errno == EINTR) continue;
                if (k <= 0) break;
                left -= (size_t)k;
            }
            if (left && left == j.len && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                                          errno == EOPNOTSUPP || errno == EBADF)) {
                pl->can_copy_range = 0; /* nothing copied: fall back to write() for good */
                if (et_write_all(pl->fd, j.data, j.len)) e = errno ? errno : EIO;
            } else if (left) e = errno ? errno : EIO;
        } else if (!failed && et_write_all(pl->fd, j.data, j.len)) e = errno ? errno : EIO;
        pthread_mutex_lock(&pl->mu);
        if (e && !pl->err_no) pl->err_no = e;
        if (j.buf >= 0) pl->busy[j.buf] = 0;
        pl->head = (pl->head + 1) % QUEUE;
        pl->count--;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
    }
}

static int pipeline_start(pipeline *pl, int fd) {
    pl->fd = fd;
    pl->head = pl->count = pl->stop = pl->err_no = 0;
    pl->busy[0] = pl->busy[1] = 0;
    pl->can_copy_range = 1;
    if (pthread_create(&pl->thread, NULL, writer_main, pl) != 0) return -1;
    pl->running = 1;
    return 0;
}

/* Waits for every queued job and the thread's end; returns the first write errno. */
static int pipeline_finish(pipeline *pl) {
    if (!pl->running) return 0;
    pthread_mutex_lock(&pl->mu);
    pl->stop = 1;
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
    pthread_join(pl->thread, NULL);
    pl->running = 0;
    return pl->err_no;
}

static int enqueue(pipeline *pl, write_job j) {
    pthread_mutex_lock(&pl->mu);
    while (pl->count == QUEUE && !pl->err_no) pthread_cond_wait(&pl->cv, &pl->mu);
    int e = pl->err_no;
    if (!e) {
        pl->q[(pl->head + pl->count) % QUEUE] = j;
        pl->count++;
        if (j.buf >= 0) pl->busy[j.buf] = 1;
        pthread_cond_broadcast(&pl->cv);
    }
    pthread_mutex_unlock(&pl->mu);
    return e;
}

/* The next free bf16 buffer (waits while the writer still holds it). */
static uint16_t *take_buffer(pipeline *pl, int *which) {
    pthread_mutex_lock(&pl->mu);
    while (pl->busy[pl->next] && !pl->err_no) pthread_cond_wait(&pl->cv, &pl->mu);
    int failed = pl->err_no != 0;
    pthread_mutex_unlock(&pl->mu);
    if (failed) return NULL;
    *which = pl->next;
    pl->next ^= 1;
    return pl->bf16[*which];
}

/* Source files opened for copy_file_range, by path (a model has a few shards). */
typedef struct {
    const char *path[64];
    int fd[64];
    int n;
} fd_cache;

static int cached_fd(fd_cache *c, const char *path) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->path[i], path)) return c->fd[i];
    if (c->n == 64) return -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    c->path[c->n] = path;
    c->fd[c->n++] = fd;
    return fd;
}

/* Queues one tensor's BF16 bytes. */
static int write_tensor(pipeline *pl, fd_cache *fds, const et_merge_source *src,
                        const plan_tensor *pt, const et_lora *l, const char *path, et_error *err) {
    const et_merge_tensor *t = &src->tensors[pt->src];
    const void *raw = (!pt->slot && src->bf16_bytes) ? src->bf16_bytes(src->ctx, pt->src) : NULL;
    if (raw) {
        write_job j = {raw, (size_t)pt->numel * 2, -1, 0, -1};
        const char *file;
        uint64_t off;
        if (src->bf16_extent && src->bf16_extent(src->ctx, pt->src, &file, &off) == 0 &&
            (j.src_fd = cached_fd(fds, file)) >= 0)
            j.src_off = (off_t)off;
        int e = enqueue(pl, j);
        return e ? et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(e)) : 0;
    }
    /* Output chunks (one bf16 buffer each) of whole rows when a LoRA delta is added
     * (the GEMM works per row); within a chunk, tiles small enough for the fp32
     * scratch to stay in cache: widen, add B·A, round, all while the tile is hot. */
    int64_t row_len = t->ndim >= 2 ? pt->numel / t->shape[0] : pt->numel;
    if (row_len < 1) row_len = 1;
    int64_t rows_per = pl->elems / row_len, tile_rows = pl->tile / row_len;
    int64_t step = pt->slot ? (rows_per > 0 ? rows_per : 1) * row_len : pl->elems;
    int64_t tile = pt->slot ? (tile_rows > 0 ? tile_rows : 1) * row_len : pl->tile;
    if (pt->slot && (step > pl->elems || tile > pl->f32_elems))
        return et_fail(err, "tensor %s: a row of %lld elements exceeds the merge buffer",
                       t->name, (long long)row_len);
    for (int64_t first = 0; first < pt->numel; first += step) {
        int64_t n = pt->numel - first < step ? pt->numel - first : step;
        int which;
        uint16_t *o = take_buffer(pl, &which);
        if (!o) return et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(pl->err_no));
        for (int64_t t0 = 0; t0 < n; t0 += tile) {
            int64_t tn = n - t0 < tile ? n - t0 : tile;
            float *f = pl->f32;
            if (src->read_f32(src->ctx, pt->src, first + t0, tn, f, err)) return -1;
            if (pt->slot) {
                const et_lora_slot *s = pt->slot;
                int64_t row0 = (first + t0) / row_len, nrows = tn / row_len;
                /* W[rows] += scale · B[rows, :] · A */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nrows, s->in, l->r,
                            l->scale, s->b + row0 * l->r, l->r, s->a, s->in, 1.0f, f, s->in);
            }
            uint16_t *ot = o + t0;
#pragma omp simd
            for (int64_t k = 0; k < tn; k++) ot[k] = to_bf16(f[k]);
        }
        write_job j = {o, (size_t)n * 2, -1, 0, which};
        int e = enqueue(pl, j);
        if (e) return et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(e));
    }
    return 0;
}

/* One shard: header (tensors of the shard sorted by name, __metadata__ first,
 * space-padded to a multiple of 8, as the reference writer does), then data. */
static int write_shard(const char *path, int shard, plan_tensor *p, int n,
                       const et_merge_source *src, const et_lora *l,
                       const et_merge_options *o, pipeline *pl, fd_cache *fds,
                       uint64_t *file_bytes, et_error *err) {
    /* Tensors of this shard, by name. */
    int *idx = malloc(sizeof(int) * (size_t)n), m = 0;
    if (!idx) return et_fail(err, "out of memory");
    for (int i = 0; i < n; i++)
        if (p[i].shard == shard) idx[m++] = i;
    for (int i = 1; i < m; i++) /* insertion sort: a shard holds at most a few hundred */
        for (int j = i; j > 0 && strcmp(src->tensors[p[idx[j - 1]].src].name,
                                        src->tensors[p[idx[j]].src].name) > 0; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    cJSON *h = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    for (int i = 0; o->metadata && o->metadata[i] && o->metadata[i + 1]; i += 2)
        if (strcmp(o->metadata[i], "format"))
            cJSON_AddStringToObject(meta, o->metadata[i], o->metadata[i + 1]);
    uint64_t off = 0;
    for (int k = 0; k < m; k++) {
        plan_tensor *pt = &p[idx[k]];
        const et_merge_tensor *t = &src->tensors[pt->src];
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(e, "dtype", "BF16");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        pt->begin = off;
        off += (uint64_t)pt->numel * 2;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)pt->begin));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!json) {
        free(idx);
        return et_fail(err, "out of memory");
    }
    size_t jlen = strlen(json);
    uint64_t hlen = (jlen + 7) / 8 * 8;
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        et_fail(err, "%s: cannot create (%s)", path, strerror(errno));
        goto done;
    }
    char *hbuf = malloc(8 + hlen);
    if (!hbuf) {
        et_fail(err, "out of memory");
        goto done;
    }
    memcpy(hbuf, &hlen, 8);
    memcpy(hbuf + 8, json, jlen);
    memset(hbuf + 8 + jlen, ' ', hlen - jlen);
    int bad = et_write_all(fd, hbuf, 8 + hlen);
    free(hbuf);
    if (bad) {
        et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(errno));
        goto done;
    }
    if (pipeline_start(pl, fd)) {
        et_fail(err, "cannot start the writer thread");
        goto done;
    }
    int bad_tensor = 0;
    for (int k = 0; k < m && !bad_tensor; k++)
        bad_tensor = write_tensor(pl, fds, src, &p[idx[k]], l, path, err);
    int e = pipeline_finish(pl);
    if (bad_tensor) goto done;
    if (e) {
        et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(e));
        goto done;
    }
    if (fsync(fd) != 0) {
        et_fail(err, "%s: fsync failed (%s)", path, strerror(errno));
        goto done;
    }
    *file_bytes += 8 + hlen + off;
    rc = 0;
done:
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = et_fail(err, "%s: close failed (%s)", path, strerror(errno));
    free(json);
    free(idx);
    return rc;
}

static int write_index(const char *out_dir, const plan_tensor *p, int n,
                       const et_merge_source *src, int n_shards, uint64_t total_bytes,
                       int64_t total_params, et_error *err) {
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_parameters", (double)total_params);
    cJSON_AddNumberToObject(meta, "total_size", (double)total_bytes);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    /* Keys sorted, as transformers writes the index (json.dumps sort_keys). */
    int *idx = malloc(sizeof(int) * (size_t)n);
    if (!idx) {
        cJSON_Delete(root);
        return et_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(src->tensors[p[idx[j - 1]].src].name,
                                        src->tensors[p[idx[j]].src].name) > 0; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    char shard_name[64];
    for (int k = 0; k < n; k++) {
        snprintf(shard_name, sizeof shard_name, "model-%05d-of-%05d.safetensors",
                 p[idx[k]].shard + 1, n_shards);
        cJSON_AddStringToObject(map, src->tensors[p[idx[k]].src].name, shard_name);
    }
    free(idx);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out_dir);
    FILE *f = text ? fopen(path, "wx") : NULL;
    int bad = !f || fputs(text, f) < 0 || fputc('\n', f) < 0;
    if (f) bad = (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) || bad;
    free(text);
    if (bad) return et_fail(err, "%s: cannot write (%s)", path, strerror(errno));
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int et_merge_write(const et_merge_source *src, const et_hf_config *cfg, const et_lora *l,
                   const char *out_dir, const et_merge_options *o_in, et_merge_stats *st,
                   et_error *err) {
    et_merge_options o = {0};
    if (o_in) o = *o_in;
    if (!o.max_shard_bytes) o.max_shard_bytes = ET_MERGE_DEFAULT_SHARD_BYTES;
    et_merge_stats stats = {0};
    double t0 = now_s();
    int n = src->n_tensors, rc = -1;
    if (n == 0) return et_fail(err, "base model has no tensors");
    plan_tensor *p = calloc((size_t)n, sizeof *p);
    int64_t chunk = o.chunk_elems > 0 ? o.chunk_elems : DEFAULT_CHUNK_ELEMS;
    /* A LoRA'd row must fit whole (the GEMM works per row). */
    for (int i = 0; i < n; i++)
        if (src->tensors[i].ndim == 2 && src->tensors[i].shape[1] > chunk) chunk = src->tensors[i].shape[1];
    pipeline pl;
    memset(&pl, 0, sizeof pl);
    fd_cache fds;
    fds.n = 0;
    pl.elems = chunk;
    pl.tile = chunk < TILE_ELEMS ? chunk : TILE_ELEMS;
    pl.f32_elems = pl.tile;
    for (int i = 0; i < n; i++) /* a LoRA'd row must fit the scratch whole */
        if (src->tensors[i].ndim == 2 && src->tensors[i].shape[1] > pl.f32_elems)
            pl.f32_elems = src->tensors[i].shape[1];
    pl.f32 = malloc(sizeof(float) * (size_t)pl.f32_elems);
    pl.bf16[0] = malloc(sizeof(uint16_t) * (size_t)chunk);
    pl.bf16[1] = malloc(sizeof(uint16_t) * (size_t)chunk);
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.cv, NULL);
    /* One BLAS thread: the GEMMs are thin (K = r) and the second core belongs to the
     * writer thread; OpenBLAS's idle workers would spin against it. Restored at the end. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (!p || !pl.f32 || !pl.bf16[0] || !pl.bf16[1]) {
        et_fail(err, "out of memory");
        goto done;
    }
    int64_t total_params = 0;
    for (int i = 0; i < n; i++) {
        const et_merge_tensor *t = &src->tensors[i];
        const char *rest;
        p[i].src = i;
        p[i].numel = 1;
        for (int d = 0; d < t->ndim; d++) p[i].numel *= t->shape[d];
        int layer = layer_of(t->name, &rest);
        p[i].layer = layer >= 0 ? layer
                     : !strncmp(t->name, "model.embed_tokens.", 19) ? -1
                                                                     : cfg->num_layers;
        total_params += p[i].numel;
    }
    sort_hf_order(p, n, src->tensors);
    if (attach_lora(p, n, src, l, err)) goto done;

    /* Shards: greedy in HF order, as huggingface_hub's split_state_dict_into_shards. */
    int shard = 0;
    uint64_t in_shard = 0;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)p[i].numel * 2;
        if (in_shard > 0 && in_shard + bytes > o.max_shard_bytes) {
            shard++;
            in_shard = 0;
        }
        p[i].shard = shard;
        in_shard += bytes;
        stats.tensor_bytes += bytes;
        stats.n_merged += p[i].slot != NULL;
    }
    int n_shards = shard + 1;
    char path[4200];
    for (int s = 0; s < n_shards; s++) {
        if (n_shards == 1) snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        else
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", out_dir, s + 1,
                     n_shards);
        if (write_shard(path, s, p, n, src, l, &o, &pl, &fds, &stats.file_bytes, err)) goto done;
    }
    if (n_shards > 1 &&
        write_index(out_dir, p, n, src, n_shards, stats.tensor_bytes, total_params, err))
        goto done;
    stats.n_tensors = n;
    stats.n_shards = n_shards;
    stats.seconds = now_s() - t0;
    if (st) *st = stats;
    rc = 0;
done:
    openblas_set_num_threads(blas_threads);
    for (int i = 0; i < fds.n; i++) close(fds.fd[i]);
    pthread_cond_destroy(&pl.cv);
    pthread_mutex_destroy(&pl.mu);
    free(p);
    free(pl.f32);
    free(pl.bf16[0]);
    free(pl.bf16[1]);
    return rc;
}
