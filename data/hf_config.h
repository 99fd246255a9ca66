/* Hugging Face config.json for LlamaForCausalLM, MistralForCausalLM and
 * Qwen2ForCausalLM.
 *
 * Loading applies the defaults of transformers' config classes for the detected
 * architecture, except that the five size fields (vocab_size, hidden_size,
 * intermediate_size, num_hidden_layers, num_attention_heads) are required: a
 * config without them is not a real checkpoint's. Anything this toolkit cannot
 * reproduce exactly (another architecture, hidden_act other than silu, RoPE types
 * other than default/linear/llama3, partial rotary, pre-quantized weights) is an
 * error naming the field and value. See docs/formats-loading.md. */
#ifndef EHRTUNE_HF_CONFIG_H
#define EHRTUNE_HF_CONFIG_H

#include <stdint.h>

#include "data/error.h"
#include "kernels/ops.h" /* et_rope_params */

typedef enum { ET_ARCH_LLAMA, ET_ARCH_MISTRAL, ET_ARCH_QWEN2 } et_arch;

#define ET_HF_MAX_EOS 8

typedef struct {
    et_arch arch;
    int vocab_size, hidden_size, intermediate_size;
    int num_layers, num_heads, num_kv_heads, head_dim;
    int max_position_embeddings;
    float rms_norm_eps;
    et_rope_params rope;
    int tie_word_embeddings;        /* 1: the head reuses embed_tokens (a stored lm_head.weight
                                     * must equal it: et_model_load) */
    int attention_bias;             /* bias on q_proj, k_proj, v_proj */
    int o_bias;                     /* bias on o_proj (Llama attention_bias; never Qwen2) */
    int mlp_bias;                   /* bias on gate_proj, up_proj, down_proj */
    /* Sliding-window attention: layer i uses window `sliding_window` iff
     * sliding_window > 0 and i >= sliding_window_first_layer (use
     * et_hf_layer_window). Mistral: every layer. Qwen2: only when
     * use_sliding_window is true, from layer max_window_layers on (or the first
     * "sliding_attention" entry of layer_types). Llama: never. */
    int sliding_window;             /* 0 = full causal attention */
    int sliding_window_first_layer;
    int bos_token_id;               /* -1 = none (null) */
    int eos_token_id;               /* first of eos_token_ids, -1 = none */
    int n_eos;                      /* eos_token_id may be a list (Llama-3 instruct) */
    int eos_token_ids[ET_HF_MAX_EOS];
    char torch_dtype[16];           /* "bfloat16", ... ("" = not given) */
} et_hf_config;

/* transformers' default config for arch (LlamaConfig() etc.): a starting point
 * for building a config by hand, e.g. a tiny test model. */
void et_hf_config_init(et_hf_config *c, et_arch arch);

/* Parses and validates config.json at path. */
int et_hf_config_load(et_hf_config *c, const char *path, et_error *err);

/* Validates c and writes a config.json that transformers (v4 and v5) loads back
 * to the same model: v4 RoPE keys (rope_theta + rope_scaling), all sizes
 * explicit. Written atomically (temp file + rename). */
int et_hf_config_write(const et_hf_config *c, const char *path, et_error *err);

/* Largest sizes et_hf_config_validate accepts: generous (real models are far
 * below them) but small enough that every size product fits 64-bit arithmetic and
 * a crafted config.json cannot wrap an allocation. */
#define ET_HF_MAX_LAYERS 1024
#define ET_HF_MAX_VOCAB (1 << 24)
#define ET_HF_MAX_HIDDEN (1 << 20)      /* hidden_size, intermediate_size, heads x head_dim */
#define ET_HF_MAX_HEADS 4096
#define ET_HF_MAX_HEAD_DIM 4096
#define ET_HF_MAX_PARAMS (1ull << 40)   /* ~1.1e12 parameters (4 TiB of fp32) */

/* Upper bound on the parameter count of c (every optional bias and an untied
 * lm_head counted), computed with overflow checks: -1 when a size is not
 * positive or the arithmetic would wrap 64 bits. */
int et_hf_param_count(const et_hf_config *c, uint64_t *out);

/* Checks sizes and consistency (heads % kv_heads, even head_dim, RoPE keys,
 * arch-specific biases); `what` names the source in the message (a path). */
int et_hf_config_validate(const et_hf_config *c, const char *what, et_error *err);

/* Window of layer i (0 = full causal attention). */
int et_hf_layer_window(const et_hf_config *c, int layer);

/* "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM". */
const char *et_arch_name(et_arch a);

#endif
