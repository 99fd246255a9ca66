#include "trainer/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

static const char *const PROJ_NAME[ET_PROJ_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
static const char *const PROJ_MODULE[ET_PROJ_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

const char *et_proj_name(et_proj p) { return (unsigned)p < ET_PROJ_COUNT ? PROJ_NAME[p] : "?"; }
const char *et_proj_module(et_proj p) { return (unsigned)p < ET_PROJ_COUNT ? PROJ_MODULE[p] : "?"; }

void et_proj_shape(const et_hf_config *c, et_proj p, int *in, int *out) {
    int qdim = c->num_heads * c->head_dim, kvdim = c->num_kv_heads * c->head_dim;
    switch (p) {
    case ET_PROJ_Q: *in = c->hidden_size; *out = qdim; break;
    case ET_PROJ_K:
    case ET_PROJ_V: *in = c->hidden_size; *out = kvdim; break;
    case ET_PROJ_O: *in = qdim; *out = c->hidden_size; break;
    case ET_PROJ_GATE:
    case ET_PROJ_UP: *in = c->hidden_size; *out = c->intermediate_size; break;
    default: *in = c->intermediate_size; *out = c->hidden_size; break;
    }
}

/* PEFT: lora_alpha / math.sqrt(r) (or / r) in Python floats, cast to fp32 where it
 * multiplies a tensor; in double here too (in float, sqrtf differs by an ulp at r = 6). */
float et_lora_scale(double alpha, int r, int use_rslora) {
    return (float)(use_rslora ? alpha / sqrt((double)r) : alpha / r);
}

int et_lora_create(et_lora *l, const et_hf_config *c, int r, float alpha, int use_rslora,
                   float dropout, unsigned targets, et_error *err) {
    memset(l, 0, sizeof *l);
    if (r < 1) return et_fail(err, "LoRA rank r must be >= 1 (got %d)", r);
    if (!(targets & ((1u << ET_PROJ_COUNT) - 1)))
        return et_fail(err, "LoRA needs at least one target module");
    l->r = r;
    l->alpha = alpha;
    l->use_rslora = use_rslora;
    l->scale = et_lora_scale(alpha, r, use_rslora);
    l->dropout = dropout;
    l->targets = targets;
    l->num_layers = c->num_layers;
    int64_t n = 0;
    for (int layer = 0; layer < c->num_layers; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            if (!(targets & (1u << p))) continue;
            int in, out;
            et_proj_shape(c, (et_proj)p, &in, &out);
            n += (int64_t)r * in + (int64_t)out * r;
        }
    l->n_params = n;
    l->params = calloc((size_t)n, sizeof(float));
    l->grads = calloc((size_t)n, sizeof(float));
    l->slots = calloc((size_t)c->num_layers * ET_PROJ_COUNT, sizeof(et_lora_slot));
    if (!l->params || !l->grads || !l->slots) {
        et_lora_free(l);
        return et_fail(err, "out of memory allocating %lld LoRA parameters", (long long)n);
    }
    /* Per layer, the A matrices of the targeted projections in HF order, then their B
     * matrices: projections that read the same input (q, k, v; gate, up) then have
     * their A's side by side, one [k·r, in] matrix, so the CUDA step computes their
     * x·Aᵀ and dA with one GEMM each (docs/design.md, "LoRA parameter order"). */
    int64_t off = 0;
    for (int layer = 0; layer < c->num_layers; layer++) {
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            et_proj_shape(c, (et_proj)p, &s->in, &s->out);
            if (!(targets & (1u << p))) continue;
            s->a = l->params + off;
            s->da = l->grads + off;
            off += (int64_t)r * s->in;
        }
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            if (!s->a) continue;
            s->b = l->params + off;
            s->db = l->grads + off;
            off += (int64_t)s->out * r;
        }
    }
    return 0;
}

void et_lora_free(et_lora *l) {
    free(l->params);
    free(l->grads);
    free(l->slots);
    memset(l, 0, sizeof *l);
}

void et_lora_init_weights(et_lora *l, et_lora_init init, uint64_t seed) {
    uint64_t counter = 0;
    for (int layer = 0; layer < l->num_layers; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            if (!s->a) continue;
            int64_t na = (int64_t)l->r * s->in;
            if (init == ET_LORA_INIT_GAUSSIAN) {
                /* std 1/r, as PEFT's nn.init.normal_(lora_A, std=1/r), by Box-Muller on
                 * the counter-based uniform */
                float sd = 1.0f / (float)l->r;
                for (int64_t i = 0; i < na; i++) {
                    double u1 = et_uniform(seed, counter++), u2 = et_uniform(seed, counter++);
                    if (u1 < 1e-300) u1 = 1e-300;
                    s->a[i] = sd * (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
                }
            } else {
                /* kaiming_uniform_(a=sqrt(5)): bound = gain*sqrt(3/fan_in), gain = sqrt(2/6). */
                float bound = 1.0f / sqrtf((float)s->in);
                for (int64_t i = 0; i < na; i++)
                    s->a[i] = bound * (2.0f * et_uniform(seed, counter++) - 1.0f);
            }
            memset(s->b, 0, sizeof(float) * (size_t)s->out * (size_t)l->r);
        }
}

void et_lora_key(char *out, int len, int layer, et_proj p, int is_b) {
    snprintf(out, (size_t)len, "base_model.model.model.layers.%d.%s.lora_%s.weight", layer,
             et_proj_module(p), is_b ? "B" : "A");
}
