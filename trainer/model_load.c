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

static int spec_count_max(const et_hf_config *c) { return 4 + c->num_layers * 16; }

/* Allocates the block and points every weight into it. */
static int model_alloc(et_model *m, weight_spec **specs_out, int *n_out, et_error *err) {
    m->layers = calloc((size_t)m->cfg.num_layers, sizeof *m->layers);
    weight_spec *w = calloc((size_t)spec_count_max(&m->cfg), sizeof *w);
    if (!m->layers || !w) {
        free(w);
        return et_fail(err, "out of memory");
    }
    int n = weight_specs(w, m);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)w[i].shape[0] * (size_t)(w[i].ndim == 2 ? w[i].shape[1] : 1);
    m->block = malloc(total * sizeof(float));
    if (!m->block) {
        free(w);
        return et_fail(err, "out of memory: base weights need %.1f GiB of fp32",
                       total * 4.0 / (1 << 30));
    }
    m->block_floats = total;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *w[i].dst = m->block + off;
        off += (size_t)w[i].shape[0] * (size_t)(w[i].ndim == 2 ? w[i].shape[1] : 1);
    }
    if (m->cfg.tie_word_embeddings) m->lm_head = m->embed;
    *specs_out = w;
    *n_out = n;
    return 0;
}

int et_model_load(et_model *m, const char *dir, et_error *err) {
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (et_hf_config_load(&m->cfg, path, err)) return -1;
    weight_spec *w;
    int n;
    if (model_alloc(m, &w, &n, err)) {
        et_model_free(m);
        return -1;
    }
    et_st_model st;
    if (et_st_model_open(&st, dir, err)) {
        free(w);
        et_model_free(m);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = et_st_model_read_f32(&st, w[i].name, *w[i].dst, w[i].ndim, w[i].shape, err);
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
    weight_spec *w = calloc((size_t)spec_count_max(&m->cfg), sizeof *w);
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
