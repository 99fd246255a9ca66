/* The CUDA model's life cycle and optimizer side: creation from host weights (or
 * random ones on the device), the LoRA state on the device, gradient norm and
 * AdamW, copies to and from the host. The forward/backward list is in
 * model_cuda_pass.c, attention dispatch in model_cuda_attn.c, memory in
 * model_cuda_plan.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/model_cuda.h"

const char *et_prof_name(int category) {
    static const char *const names[ET_PROF_COUNT] = {
        "embedding",    "rmsnorm",      "frozen_gemm", "lora_gemm", "dropout",
        "rope",         "attention_fwd", "attention_bwd", "swiglu", "residual_add",
        "lm_head_gemm", "loss",         "memset",      "optimizer", "other"};
    return category >= 0 && category < ET_PROF_COUNT ? names[category] : "?";
}

#ifdef EHRTUNE_HAVE_CUDA

#include "kernels/ops.h"
#include "trainer/model_cuda_internal.h"

int cuda_fail(et_error *err, const char *what) {
    return et_fail(err, "CUDA backend, %s: %s", what, etc_last_error());
}

int et_cuda_device_count(char *name, int len) {
    int n = etc_device_count();
    if (name && len > 0) {
        name[0] = 0;
        if (n > 0) etc_device_name(0, name, len);
    }
    return n;
}

/* Host-side set-up shared by both constructors: shapes, LoRA layout, host arrays,
 * the attention choice, then the device allocations. */
static int model_begin(et_cuda_model **out, const et_hf_config *c, const et_lora *l,
                       const et_cuda_options *o, et_error *err) {
    *out = NULL;
    if (o->b < 1 || o->t < 2)
        return et_fail(err, "CUDA model: batch %d x %d tokens is not a training shape", o->b, o->t);
    if ((int64_t)o->b * o->t > 2147483647 / (c->intermediate_size > c->hidden_size ? c->intermediate_size : c->hidden_size))
        return et_fail(err, "CUDA model: batch %d x %d tokens is too large for 32-bit GEMM sizes",
                       o->b, o->t);
    if (etc_device_count() < 1)
        return et_fail(err, "CUDA model: no CUDA device is visible (check nvidia-smi, "
                            "CUDA_VISIBLE_DEVICES), or set run.device: cpu");
    et_cuda_model *cm = calloc(1, sizeof *cm);
    if (!cm) return et_fail(err, "out of memory");
    cm->cfg = *c;
    cm->opt = *o;
    cm->opt.lora_kext = et_cuda_kext_requested(o);
    cm->r = l->r;
    cm->targets = l->targets;
    cm->lora_scale = l->scale;
    cm->dropout = l->dropout;
    const char *fused = getenv("EHRTUNE_CUDA_LORA_DROPOUT_FUSED");
    cm->dropout_fused = fused && !strcmp(fused, "1");
    cm->n_params = l->n_params;
    const int slots = c->num_layers * ET_PROJ_COUNT;
    cm->off_a = malloc(sizeof(int64_t) * (size_t)slots);
    cm->off_b = malloc(sizeof(int64_t) * (size_t)slots);
    cm->layers = calloc((size_t)c->num_layers, sizeof *cm->layers);
    cm->slots = calloc((size_t)c->num_layers, sizeof *cm->slots);
    const size_t n = (size_t)o->b * o->t;
    cm->h_dloss = malloc(n * sizeof(float));
    cm->h_losses = malloc(n * sizeof(float));
    if (!cm->off_a || !cm->off_b || !cm->layers || !cm->slots || !cm->h_dloss || !cm->h_losses) {
        et_cuda_model_free(cm);
        return et_fail(err, "out of memory");
    }
    for (int layer = 0; layer < c->num_layers; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            const et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            cm->off_a[layer * ET_PROJ_COUNT + p] = s->a ? s->a - l->params : -1;
            cm->off_b[layer * ET_PROJ_COUNT + p] = s->a ? s->b - l->params : -1;
        }
    if (cuda_attention_select(cm, err) || cuda_model_alloc(cm, err)) {
        et_cuda_model_free(cm);
        return -1;
    }
    /* RoPE tables for positions 0..t-1 (fp32, as the CPU's) */
    const size_t nt = (size_t)o->t * (c->head_dim / 2);
    float *tab = malloc(2 * nt * sizeof(float));
    if (!tab) {
        et_cuda_model_free(cm);
        return et_fail(err, "out of memory");
    }
    et_rope_tables(tab, tab + nt, &c->rope, o->t, c->head_dim);
    int bad = etc_memcpy_h2d(cm->rope_cos, tab, nt * 4) || etc_memcpy_h2d(cm->rope_sin, tab + nt, nt * 4);
    free(tab);
    if (bad || et_cuda_model_upload(cm, l, NULL, NULL, err) || et_cuda_model_zero_grads(cm, err)) {
        if (bad) cuda_fail(err, "uploading RoPE tables");
        et_cuda_model_free(cm);
        return -1;
    }
    *out = cm;
    return 0;
}

/* fp32 host tensor -> bf16 device tensor, through a bounded staging buffer. */
static int upload_bf16(etc_bf16 *dst, const float *src, size_t count, float *stage,
                       size_t stage_count) {
    for (size_t at = 0; at < count; at += stage_count) {
        size_t len = count - at < stage_count ? count - at : stage_count;
        if (etc_memcpy_h2d(stage, src + at, len * 4) || etc_cast_f32_to_bf16(dst + at, stage, (int64_t)len))
            return -1;
    }
    return 0;
}

/* The same into a strided matrix: `rows` rows of `cols` values, ld apart on the device. */
static int upload_bf16_rows(etc_bf16 *dst, int64_t ld, const float *src, size_t rows, size_t cols,
                            float *stage, size_t stage_count) {
    const size_t chunk = stage_count / cols > 0 ? stage_count / cols : 1;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        const size_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        if (etc_memcpy_h2d(stage, src + r0 * cols, nr * cols * 4) ||
            etc_cast_f32_to_bf16_rows(dst + (int64_t)r0 * ld, ld, stage, (int64_t)nr, (int64_t)cols))
            return -1;
    }
    return 0;
}

int et_cuda_model_create(et_cuda_model **out, const et_model *m, const et_lora *l,
                         const et_cuda_options *o, et_error *err) {
    et_cuda_model *cm;
    if (model_begin(&cm, &m->cfg, l, o, err)) return -1;
    const et_hf_config *c = &m->cfg;
    const size_t stage_count = (size_t)16 << 20;  /* 64 MiB of fp32 at a time */
    float *stage = NULL;
    if (etc_malloc((void **)&stage, stage_count * 4)) {
        et_cuda_model_free(cm);
        return cuda_fail(err, "staging buffer for the base weights");
    }
    const size_t C = (size_t)c->hidden_size;
    int bad = upload_bf16(cm->embed, m->embed, (size_t)c->vocab_size * C, stage, stage_count);
    if (!c->tie_word_embeddings)
        bad = bad || upload_bf16(cm->lm_head, m->lm_head, (size_t)c->vocab_size * C, stage, stage_count);
    bad = bad || upload_bf16(cm->final_norm, m->final_norm, C, stage, stage_count);
    for (int layer = 0; layer < c->num_layers && !bad; layer++) {
        const et_layer_weights *hw = &m->layers[layer];
        cuda_layer_weights *dw = &cm->layers[layer];
        bad = upload_bf16(dw->attn_norm, hw->attn_norm, C, stage, stage_count) ||
              upload_bf16(dw->mlp_norm, hw->mlp_norm, C, stage, stage_count);
        for (int p = 0; p < ET_PROJ_COUNT && !bad; p++) {
            int in, outf;
            et_proj_shape(c, (et_proj)p, &in, &outf);
            const int64_t ld = cuda_weight_ld(cm, p);
            bad = ld == in ? upload_bf16(dw->w[p], hw->w[p], (size_t)in * outf, stage, stage_count)
                           : upload_bf16_rows(dw->w[p], ld, hw->w[p], (size_t)outf, (size_t)in, stage,
                                              stage_count);
            if (!bad && (dw->bias[p] != NULL) != (hw->bias[p] != NULL)) {
                etc_free(stage);
                et_cuda_model_free(cm);
                return et_fail(err, "CUDA model: layer %d %s bias presence differs from the config",
                               layer, et_proj_name((et_proj)p));
            }
            if (!bad && hw->bias[p])
                bad = upload_bf16(dw->bias[p], hw->bias[p], (size_t)outf, stage, stage_count);
        }
    }
    bad = bad || cuda_kext_refresh(cm) || etc_synchronize();
    etc_free(stage);
    if (bad) {
        et_cuda_model_free(cm);
        return cuda_fail(err, "uploading the base weights");
    }
    *out = cm;
    return 0;
}

int et_cuda_model_create_random(et_cuda_model **out, const et_hf_config *c, const et_lora *l,
                                const et_cuda_options *o, uint64_t seed, et_error *err) {
    et_cuda_model *cm;
    if (model_begin(&cm, c, l, o, err)) return -1;
    const size_t C = (size_t)c->hidden_size;
    const float root3 = sqrtf(3.0f);
    uint64_t stream = seed * 1000003u;
    /* uniform with the given std: half-width sqrt(3)·std */
#define FILL(dst, count, center, sd) \
    etc_fill_uniform_bf16((dst), (int64_t)(count), (center) - root3 * (sd), (center) + root3 * (sd), stream++)
    int bad = FILL(cm->embed, (size_t)c->vocab_size * C, 0.0f, 1.0f);
    if (!c->tie_word_embeddings) bad = bad || FILL(cm->lm_head, (size_t)c->vocab_size * C, 0.0f, 1.0f / sqrtf((float)C));
    bad = bad || FILL(cm->final_norm, C, 1.0f, 0.05f);
    for (int layer = 0; layer < c->num_layers && !bad; layer++) {
        cuda_layer_weights *dw = &cm->layers[layer];
        bad = FILL(dw->attn_norm, C, 1.0f, 0.05f) || FILL(dw->mlp_norm, C, 1.0f, 0.05f);
        for (int p = 0; p < ET_PROJ_COUNT && !bad; p++) {
            int in, outf;
            et_proj_shape(c, (et_proj)p, &in, &outf);
            /* K-extended rows: their extra columns are rewritten by cuda_kext_refresh */
            bad = FILL(dw->w[p], (size_t)cuda_weight_ld(cm, p) * outf, 0.0f, 1.0f / sqrtf((float)in));
            if (!bad && dw->bias[p]) bad = FILL(dw->bias[p], outf, 0.0f, 0.02f);
        }
    }
#undef FILL
    if (bad || cuda_kext_refresh(cm) || etc_synchronize()) {
        et_cuda_model_free(cm);
        return cuda_fail(err, "random base weights");
    }
    *out = cm;
    return 0;
}

void et_cuda_model_free(et_cuda_model *cm) {
    if (!cm) return;
    cuda_model_release(cm);
    free(cm->off_a);
    free(cm->off_b);
    free(cm->layers);
    free(cm->slots);
    free(cm->h_dloss);
    free(cm->h_losses);
    free(cm);
}

size_t et_cuda_model_bytes(const et_cuda_model *cm) { return cm->wbytes + cm->lbytes + cm->abytes; }
const char *et_cuda_model_attention_path(const et_cuda_model *cm) { return cm->attn_note; }
int et_cuda_model_lora_kext(const et_cuda_model *cm) {
    return cm->kext_cols[0] > 0 || cm->kext_cols[1] > 0; /* q/k/v or gate/up extended */
}
int et_cuda_model_dropout_fused(const et_cuda_model *cm) { return cm->dropout_fused; }

int et_cuda_model_step(et_cuda_model *cm, const et_batch *batch, float loss_scale,
                       uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                       int64_t *n_valid, et_error *err) {
    cm->train = 1;
    cm->seed = dropout_seed;
    cm->step = dropout_step;
    return cuda_model_pass(cm, batch, 1, 1, loss_scale, loss_sum, n_valid, err);
}

int et_cuda_model_forward(et_cuda_model *cm, const et_batch *batch, double *loss_sum,
                          int64_t *n_valid, et_error *err) {
    cm->train = 0;
    return cuda_model_pass(cm, batch, 0, 0, 0.0f, loss_sum, n_valid, err);
}

int et_cuda_profile_begin(int capacity, et_error *err) {
    if (etc_timeline_start(capacity)) return cuda_fail(err, "starting the profile");
    return 0;
}

int et_cuda_profile_end(et_cuda_profile *p, et_error *err) {
    memset(p, 0, sizeof *p);
    etc_timeline_totals t;
    if (etc_timeline_stop(p->ms, p->marks, ET_PROF_COUNT, &t)) return cuda_fail(err, "ending the profile");
    p->n_marks = t.marks;
    p->dropped = t.dropped;
    p->total_ms = t.total_ms;
    return 0;
}

int et_cuda_model_zero_grads(et_cuda_model *cm, et_error *err) {
    if (etc_memset(cm->grads, 0, (size_t)cm->n_params * 4)) return cuda_fail(err, "zeroing gradients");
    etc_timeline_mark(ET_PROF_OPTIMIZER);
    return 0;
}

int et_cuda_model_grad_norm(et_cuda_model *cm, double *norm, et_error *err) {
    double ss = 0;
    if (etc_sumsq(cm->norm2, cm->grads, cm->n_params) || etc_memcpy_d2h(&ss, cm->norm2, sizeof ss))
        return cuda_fail(err, "gradient norm");
    etc_timeline_mark(ET_PROF_OPTIMIZER);
    *norm = sqrt(ss);
    return 0;
}

int et_cuda_model_scale_grads(et_cuda_model *cm, float s, et_error *err) {
    if (etc_scale(cm->grads, s, cm->n_params)) return cuda_fail(err, "gradient clipping");
    etc_timeline_mark(ET_PROF_OPTIMIZER);
    return 0;
}

int et_cuda_model_adamw(et_cuda_model *cm, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int step, et_error *err) {
    if (etc_adamw_update(cm->params, cm->adam_m, cm->adam_v, cm->grads, cm->n_params, (float)lr,
                         (float)beta1, (float)beta2, (float)eps, (float)weight_decay, step) ||
        etc_cast_f32_to_bf16(cm->params16, cm->params, cm->n_params) || cuda_kext_refresh(cm))
        return cuda_fail(err, "AdamW step");
    etc_timeline_mark(ET_PROF_OPTIMIZER);
    return 0;
}

int et_cuda_model_download(et_cuda_model *cm, et_lora *l, float *m, float *v, et_error *err) {
    const size_t bytes = (size_t)cm->n_params * 4;
    if (l->n_params != cm->n_params)
        return et_fail(err, "CUDA model: LoRA state of %lld parameters, the device holds %lld",
                       (long long)l->n_params, (long long)cm->n_params);
    if (etc_memcpy_d2h(l->params, cm->params, bytes) || (m && etc_memcpy_d2h(m, cm->adam_m, bytes)) ||
        (v && etc_memcpy_d2h(v, cm->adam_v, bytes)))
        return cuda_fail(err, "copying the LoRA state to the host");
    return 0;
}

int et_cuda_model_upload(et_cuda_model *cm, const et_lora *l, const float *m, const float *v,
                         et_error *err) {
    const size_t bytes = (size_t)cm->n_params * 4;
    if (l->n_params != cm->n_params)
        return et_fail(err, "CUDA model: LoRA state of %lld parameters, the device holds %lld",
                       (long long)l->n_params, (long long)cm->n_params);
    int bad = etc_memcpy_h2d(cm->params, l->params, bytes);
    bad = bad || (m ? etc_memcpy_h2d(cm->adam_m, m, bytes) : etc_memset(cm->adam_m, 0, bytes));
    bad = bad || (v ? etc_memcpy_h2d(cm->adam_v, v, bytes) : etc_memset(cm->adam_v, 0, bytes));
    bad = bad || etc_cast_f32_to_bf16(cm->params16, cm->params, cm->n_params) || cuda_kext_refresh(cm);
    if (bad) return cuda_fail(err, "copying the LoRA state to the device");
    return 0;
}

int et_cuda_model_download_grads(et_cuda_model *cm, float *grads, et_error *err) {
    if (etc_memcpy_d2h(grads, cm->grads, (size_t)cm->n_params * 4))
        return cuda_fail(err, "copying gradients to the host");
    return 0;
}

#else /* no CUDA backend in this build */

static int no_cuda(et_error *err) {
    return et_fail(err, "this ehrtune was built without the CUDA backend (no nvcc at build "
                        "time): set run.device: cpu, or rebuild on a machine with the CUDA toolkit");
}
int et_cuda_device_count(char *name, int len) {
    if (name && len > 0) name[0] = 0;
    return 0;
}
int et_cuda_model_create(et_cuda_model **out, const et_model *m, const et_lora *l,
                         const et_cuda_options *o, et_error *err) {
    *out = NULL;
    return no_cuda(err);
}
int et_cuda_model_create_random(et_cuda_model **out, const et_hf_config *c, const et_lora *l,
                                const et_cuda_options *o, uint64_t seed, et_error *err) {
    *out = NULL;
    return no_cuda(err);
}
void et_cuda_model_free(et_cuda_model *cm) {}
size_t et_cuda_model_bytes(const et_cuda_model *cm) { return 0; }
const char *et_cuda_model_attention_path(const et_cuda_model *cm) { return "none"; }
int et_cuda_model_lora_kext(const et_cuda_model *cm) { return 0; }
int et_cuda_model_dropout_fused(const et_cuda_model *cm) { return 0; }
int et_cuda_model_step(et_cuda_model *cm, const et_batch *batch, float loss_scale,
                       uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                       int64_t *n_valid, et_error *err) {
    return no_cuda(err);
}
int et_cuda_model_forward(et_cuda_model *cm, const et_batch *batch, double *loss_sum,
                          int64_t *n_valid, et_error *err) {
    return no_cuda(err);
}
int et_cuda_profile_begin(int capacity, et_error *err) { return no_cuda(err); }
int et_cuda_profile_end(et_cuda_profile *p, et_error *err) {
    memset(p, 0, sizeof *p);
    return no_cuda(err);
}
int et_cuda_model_zero_grads(et_cuda_model *cm, et_error *err) { return no_cuda(err); }
int et_cuda_model_grad_norm(et_cuda_model *cm, double *norm, et_error *err) { return no_cuda(err); }
int et_cuda_model_scale_grads(et_cuda_model *cm, float s, et_error *err) { return no_cuda(err); }
int et_cuda_model_adamw(et_cuda_model *cm, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int step, et_error *err) {
    return no_cuda(err);
}
int et_cuda_model_download(et_cuda_model *cm, et_lora *l, float *m, float *v, et_error *err) {
    return no_cuda(err);
}
int et_cuda_model_upload(et_cuda_model *cm, const et_lora *l, const float *m, const float *v,
                         et_error *err) {
    return no_cuda(err);
}
int et_cuda_model_download_grads(et_cuda_model *cm, float *grads, et_error *err) {
    return no_cuda(err);
}

#endif
