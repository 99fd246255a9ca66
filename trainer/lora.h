/* LoRA adapter state: the only trainable parameters.
 *
 * All A and B matrices live in ONE flat fp32 block (`params`), with a gradient
 * block of the same layout (`grads`), so the optimizer, gradient-norm clipping,
 * DP clipping, checkpoints and all-reduce each see one contiguous vector.
 * Layout: for layer 0..L-1: the A [r, in] of each enabled target in HF order
 * (q,k,v,o,gate,up,down), then the B [out, r] of each in the same order (PEFT
 * shapes). Grouping the A's puts the A's of projections reading one input side by
 * side (the CUDA step's shared x·Aᵀ and dA GEMMs). Checkpoints record the order. */
#ifndef EHRTUNE_LORA_H
#define EHRTUNE_LORA_H

#include <stdint.h>

#include "data/error.h"
#include "data/hf_config.h"

/* The layout above, as checkpoints name it; one written in another order is refused. */
#define ET_LORA_ORDER "per-layer:A*,B*"

/* The seven projections of a Llama-family block, in HF module order. */
typedef enum {
    ET_PROJ_Q = 0, ET_PROJ_K, ET_PROJ_V, ET_PROJ_O, ET_PROJ_GATE, ET_PROJ_UP, ET_PROJ_DOWN,
    ET_PROJ_COUNT
} et_proj;

/* "q_proj", ... and the module path inside a layer ("self_attn.q_proj", "mlp.up_proj"). */
const char *et_proj_name(et_proj p);
const char *et_proj_module(et_proj p);
/* Input and output features of projection p for this config. */
void et_proj_shape(const et_hf_config *c, et_proj p, int *in_features, int *out_features);

typedef struct {
    float *a, *b;   /* into et_lora.params: A [r, in], B [out, r]; NULL if not targeted */
    float *da, *db; /* into et_lora.grads */
    int in, out;
} et_lora_slot;

typedef struct {
    int r;
    float alpha;
    float scale;       /* alpha / r, or alpha / sqrt(r) with rslora */
    int use_rslora;
    float dropout;
    unsigned targets;  /* bit p set = projection p carries LoRA */
    int num_layers;
    int64_t n_params;
    float *params;     /* [n_params] */
    float *grads;      /* [n_params] */
    et_lora_slot *slots; /* [num_layers * ET_PROJ_COUNT] */
} et_lora;

/* The LoRA scaling PEFT applies: alpha / r, or alpha / sqrt(r) with rsLoRA. */
float et_lora_scale(double alpha, int r, int use_rslora);

/* Allocates params and grads (zeroed) for the given config; does not initialise. */
int et_lora_create(et_lora *l, const et_hf_config *c, int r, float alpha, int use_rslora,
                   float dropout, unsigned targets, et_error *err);
void et_lora_free(et_lora *l);

static inline et_lora_slot *et_lora_slot_at(const et_lora *l, int layer, et_proj p) {
    return &l->slots[layer * ET_PROJ_COUNT + (int)p];
}

/* PEFT default init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0.
 * gaussian: A normal with std 1/r (PEFT's), B = 0. Deterministic in seed. */
typedef enum { ET_LORA_INIT_DEFAULT = 0, ET_LORA_INIT_GAUSSIAN = 1 } et_lora_init;
void et_lora_init_weights(et_lora *l, et_lora_init init, uint64_t seed);

/* PEFT key of a slot's A or B: "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight". */
void et_lora_key(char *out, int len, int layer, et_proj p, int is_b);

/* Reads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors,
 * F32/BF16/F16 weights). Creates `l` from its config (r, lora_alpha, target_modules,
 * use_rslora, lora_dropout) and loads every tensor, checking shapes against `c`. */
int et_lora_load_peft(et_lora *l, const et_hf_config *c, const char *dir, et_error *err);

/* adapter_config.json as PEFT 0.21's LoraConfig.save_pretrained writes it: every field,
 * keys sorted, target_modules sorted. gaussian_init: init_lora_weights "gaussian". */
typedef struct cJSON cJSON;
cJSON *et_lora_peft_config(const et_lora *l, const char *base_model, int gaussian_init);

/* Writes a PEFT adapter directory (F32 weights). base_model: for adapter_config.json.
 * metadata: extra safetensors __metadata__ pairs (key, value, key, value, ..., NULL). */
int et_lora_save_peft(const et_lora *l, const char *dir, const char *base_model,
                      const char *const *metadata, et_error *err);

/* adapter_model.safetensors alone, PEFT key names, F32 or (bf16 != 0) BF16 weights,
 * private file mode. metadata as above (may be NULL). */
int et_lora_write_safetensors(const et_lora *l, const char *path, int bf16,
                              const char *const *metadata, et_error *err);

#endif
