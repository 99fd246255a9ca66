/* Base weights: one fp32 block, loaded from an HF folder or filled at random. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/safetensors.h"
#include "kernels/ops.h"
#include "trainer/model.h"

/* Walks every base tensor in a fixed order: HF name, shape and destination. The one
 * table serves allocation, loading, random init and saving. */
typedef struct {
    char name[128];
    int ndim;
    int64_t shape[2];
    float **dst;
    int is_norm; /* RMSNorm weight: random init 1 ± small noise */
} weight_spec;

static int weight_specs(weight_spec *w, et_model *m) {
    const et_hf_config *c = &m->cfg;
    int k = 0, C = c->hidden_size;
#define W(nm_fmt, nd, s0, s1, dest, norm, ...)                                  \
    do {                                                                        \
        snprintf(w[k].name, sizeof w[k].name, nm_fmt, __VA_ARGS__);             \
        w[k].ndim = nd; w[k].shape[0] = s0; w[k].shape[1] = s1;                 \
        w[k].dst = dest; w[k].is_norm = norm; k++;                              \
    } while (0)
    W("%s", 2, c->vocab_size, C, &m->embed, 0, "model.embed_tokens.weight");
    for (int l = 0; l < c->num_layers; l++) {
        et_layer_weights *lw = &m->layers[l];
        W("model.layers.%d.input_layernorm.weight", 1, C, 0, &lw->attn_norm, 1, l);
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            int in, out;
            et_proj_shape(c, (et_proj)p, &in, &out);
            W("model.layers.%d.%s.weight", 2, out, in, &lw->w[p], 0, l, et_proj_module(p));
            int has_bias = (p <= ET_PROJ_V && c->attention_bias) ||
                           (p == ET_PROJ_O && c->o_bias) || (p >= ET_PROJ_GATE && c->mlp_bias);
            if (has_bias)
                W("model.layers.%d.%s.bias", 1, out, 0, &lw->bias[p], 0, l, et_proj_module(p));
        }
        W("model.layers.%d.post_attention_layernorm.weight", 1, C, 0, &lw->mlp_norm, 1, l);
    }
    W("%s", 1, C, 0, &m->final_norm, 1, "model.norm.weight");
    if (!c->tie_word_embeddings) W("%s", 2, c->vocab_size, C, &m->lm_head, 0, "lm_head.weight");
#undef W
    return k;
}

/* Specs per model: embeddings, final norm, lm_head, and per layer two norms plus
 * at most 7 weights and 7 biases. num_layers is bounded by et_hf_config_validate. */
static size_t spec_count_max(const et_hf_config *c) { return 4 + (size_t)c->num_layers * 16; }

/* Sum of the element counts of w[0..n), and its size in fp32 bytes; -1 when the
 * arithmetic wraps (et_hf_config_validate's bounds should make that impossible). */
static int weights_size(const weight_spec *w, int n, size_t *floats, size_t *bytes) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t cnt;
        if (w[i].shape[0] < 0 || (w[i].ndim == 2 && w[i].shape[1] < 0)) return -1;
        if (__builtin_mul_overflow((uint64_t)w[i].shape[0],
                                   (uint64_t)(w[i].ndim == 2 ? w[i].shape[1] : 1), &cnt) ||
            __builtin_add_overflow(total, cnt, &total))
            return -1;
    }
    size_t b;
    if (__builtin_mul_overflow(total, sizeof(float), &b)) return -1;
    *floats = total;
    *bytes = b;
    return 0;
}

/* Validates the config, lists the weights and points the layer table at them;
 * the block itself is allocated by model_alloc_block. */
static int model_specs(et_model *m, weight_spec **specs_out, int *n_out, et_error *err) {
    if (et_hf_config_validate(&m->cfg, "model config", err)) return -1;
    m->layers = calloc((size_t)m->cfg.num_layers, sizeof *m->layers);
    size_t cap = spec_count_max(&m->cfg);
    weight_spec *w = calloc(cap, sizeof *w);
    if (!m->layers || !w) {
        free(w);
        return et_fail(err, "out of memory");
    }
    int n = weight_specs(w, m);
    if ((size_t)n > cap) abort(); /* cannot happen: at most 16 specs per layer */
    *specs_out = w;
    *n_out = n;
    return 0;
}

/* Allocates the block and points every weight into it. */
static int model_alloc_block(et_model *m, weight_spec *w, int n, et_error *err) {
    size_t total, bytes;
    if (weights_size(w, n, &total, &bytes))
        return et_fail(err, "model config: the base weights' size overflows; the sizes in "
                       "config.json are not a real model's");
    m->block = malloc(bytes);
    if (!m->block)
        return et_fail(err, "out of memory: base weights need %.1f GiB of fp32",
                       (double)bytes / (1 << 30));
    m->block_floats = total;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *w[i].dst = m->block + off;
        off += (size_t)w[i].shape[0] * (size_t)(w[i].ndim == 2 ? w[i].shape[1] : 1);
    }
    if (m->cfg.tie_word_embeddings) m->lm_head = m->embed;
    return 0;
}

static int model_alloc(et_model *m, weight_spec **specs_out, int *n_out, et_error *err) {
    if (model_specs(m, specs_out, n_out, err)) return -1;
    if (model_alloc_block(m, *specs_out, *n_out, err)) {
        free(*specs_out);
        *specs_out = NULL;
        return -1;
    }
    return 0;
}

/* tie_word_embeddings with an lm_head.weight in the file: transformers (v5) then
 * does not tie and uses the stored head. Equal values (after conversion to fp32,
 * whatever the two dtypes) give the same model; different ones are refused. */
static int check_tied_head(const et_model *m, const et_st_model *st, const char *dir,
                           et_error *err) {
    const et_st_file *f;
    const et_st_tensor *t = et_st_model_find(st, "lm_head.weight", &f);
    if (!t) return 0;
    const et_hf_config *c = &m->cfg;
    int64_t shape[2] = {c->vocab_size, c->hidden_size};
    if (et_st_model_check(st, "lm_head.weight", 2, shape, err)) return -1;
    float *row = malloc((size_t)c->hidden_size * sizeof *row);
    if (!row) return et_fail(err, "out of memory");
    int rc = 0;
    for (int64_t r = 0; r < c->vocab_size && !rc; r++) {
        rc = et_st_read_f32_range(f, t, r * c->hidden_size, c->hidden_size, row, err);
        const float *e = m->embed + (size_t)r * (size_t)c->hidden_size;
        for (int j = 0; j < c->hidden_size && !rc; j++)
            if (row[j] != e[j] && !(isnan(row[j]) && isnan(e[j])))
                rc = et_fail(err, "%s: config.json says tie_word_embeddings: true, but %s holds an "
                             "lm_head.weight that differs from model.embed_tokens.weight (row %lld, "
                             "column %d: %g vs %g); transformers would use the stored lm_head, "
                             "ehrtune the embeddings. To use the stored head, set "
                             "\"tie_word_embeddings\": false in config.json; to tie, remove "
                             "lm_head.weight from the weights", dir, f->path, (long long)r, j,
                             (double)row[j], (double)e[j]);
    }
    free(row);
    return rc;
}

int et_model_load(et_model *m, const char *dir, et_error *err) {
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (et_hf_config_load(&m->cfg, path, err)) return -1;
    weight_spec *w;
    int n;
    if (model_specs(m, &w, &n, err)) {
        et_model_free(m);
        return -1;
    }
    et_st_model st;
    if (et_st_model_open(&st, dir, err)) {
        free(w);
        et_model_free(m);
        return -1;
    }
    /* Every tensor present with its shape before the block is allocated: a
     * config.json that does not match the weights fails here, not in malloc. */
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = et_st_model_check(&st, w[i].name, w[i].ndim, w[i].shape, err);
    if (!rc) rc = model_alloc_block(m, w, n, err);
    for (int i = 0; i < n && !rc; i++)
        rc = et_st_model_read_f32(&st, w[i].name, *w[i].dst, w[i].ndim, w[i].shape, err);
    if (!rc && m->cfg.tie_word_embeddings) rc = check_tied_head(m, &st, dir, err);
    et_st_model_close(&st);
    free(w);
    if (rc) et_model_free(m);
    return rc;
}

int et_model_init_random(et_model *m, const et_hf_config *cfg, uint64_t seed, et_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    weight_spec *w;
    int n;
    if (model_alloc(m, &w, &n, err)) {
        et_model_free(m);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int64_t cnt = w[i].shape[0] * (w[i].ndim == 2 ? w[i].shape[1] : 1);
        float *dst = *w[i].dst;
        uint64_t s = seed * 1000003u + (uint64_t)i;
        /* Uniform noise, fan-in scaled so activations and logits keep unit order:
         * embeddings std 1, matrices std 1/sqrt(in), norms 1 ± 0.05, biases std 0.02.
         * (A 0.02-std init gives near-uniform logits that a LoRA cannot move far.) */
        double sd = w[i].is_norm ? 0.05 : w[i].ndim == 1 ? 0.02
                    : *w[i].dst == m->embed ? 1.0 : 1.0 / sqrt((double)w[i].shape[1]);
        float half = (float)(sd * sqrt(3.0)), center = w[i].is_norm ? 1.0f : 0.0f;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < cnt; j++)
            dst[j] = center + half * (2.0f * et_uniform(s, (uint64_t)j) - 1.0f);
    }
    free(w);
    return 0;
}

int et_model_save_hf(const et_model *m, const char *dir, et_error *err) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return et_fail(err, "%s: cannot create directory (%s)", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (et_hf_config_write(&m->cfg, path, err)) return -1;
    weight_spec *w = calloc(spec_count_max(&m->cfg), sizeof *w);
    if (!w) return et_fail(err, "out of memory");
    et_model tmp = *m; /* weight_specs writes through dst pointers: point them at a copy */
    int n = weight_specs(w, &tmp);
    et_st_writer wr;
    et_st_writer_init(&wr);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = et_st_writer_add_f32(&wr, w[i].name, ET_DT_F32, w[i].ndim, w[i].shape, *w[i].dst,
                                  err);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = et_st_writer_write(&wr, path, 0, err);
    et_st_writer_free(&wr);
    free(w);
    return rc;
}

void et_model_free(et_model *m) {
    free(m->block);
    free(m->layers);
    memset(m, 0, sizeof *m);
}
