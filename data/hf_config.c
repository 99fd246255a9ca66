/* config.json reader/writer for the Llama family (see hf_config.h). Defaults
 * follow transformers' LlamaConfig, MistralConfig and Qwen2Config. */
#include "data/hf_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/atomic_file.h"

#define MAX_CONFIG_BYTES (16u << 20)

static const struct {
    const char *class_name, *model_type;
} ARCHS[] = {
    [ET_ARCH_LLAMA] = {"LlamaForCausalLM", "llama"},
    [ET_ARCH_MISTRAL] = {"MistralForCausalLM", "mistral"},
    [ET_ARCH_QWEN2] = {"Qwen2ForCausalLM", "qwen2"},
};
#define N_ARCHS ((int)(sizeof ARCHS / sizeof ARCHS[0]))

const char *et_arch_name(et_arch a) {
    return (unsigned)a < (unsigned)N_ARCHS ? ARCHS[a].class_name : "?";
}

void et_hf_config_init(et_hf_config *c, et_arch arch) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    c->vocab_size = 32000;
    c->hidden_size = 4096;
    c->intermediate_size = 11008;
    c->num_layers = 32;
    c->num_heads = 32;
    c->num_kv_heads = 32;
    c->head_dim = 4096 / 32;
    c->max_position_embeddings = 2048;
    c->rms_norm_eps = 1e-6f;
    c->rope = (et_rope_params){.type = ET_ROPE_DEFAULT, .theta = 10000.0, .factor = 1.0};
    c->bos_token_id = 1;
    c->eos_token_id = 2;
    c->n_eos = 1;
    c->eos_token_ids[0] = 2;
    if (arch == ET_ARCH_MISTRAL) {
        c->intermediate_size = 14336;
        c->num_kv_heads = 8;
        c->max_position_embeddings = 4096 * 32;
        c->sliding_window = 4096;
    } else if (arch == ET_ARCH_QWEN2) {
        c->vocab_size = 151936;
        c->intermediate_size = 22016;
        c->max_position_embeddings = 32768;
        c->attention_bias = 1; /* Qwen2: q/k/v always biased, o_proj and MLP never */
        c->bos_token_id = c->eos_token_id = -1;
        c->n_eos = 0;
    }
}

int et_hf_layer_window(const et_hf_config *c, int layer) {
    return c->sliding_window > 0 && layer >= c->sliding_window_first_layer ? c->sliding_window : 0;
}

/* ---- JSON field access --------------------------------------------------------- */

/* Where fields are read from: the file (for messages) and an object in it;
 * `prefix` names that object ("" at top level, "rope_scaling." inside it). */
typedef struct {
    const char *path;
    const cJSON *obj;
    const char *prefix;
} src;

static const char *jtype(const cJSON *j) {
    return cJSON_IsObject(j) ? "an object" : cJSON_IsArray(j) ? "an array"
         : cJSON_IsString(j) ? "a string" : cJSON_IsNumber(j) ? "a number"
         : cJSON_IsBool(j) ? "a boolean" : cJSON_IsNull(j) ? "null" : "invalid";
}

static const cJSON *field(const src *s, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(s->obj, key);
}

static int present(const cJSON *j) {
    return j && !cJSON_IsNull(j);
}

static int as_int(const cJSON *j, int *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (d != floor(d) || d < INT_MIN || d > INT_MAX) return -1;
    *out = (int)d;
    return 0;
}

/* Absent keeps *v; null gives null_value, or is an error when null_ok is 0. */
static int get_int(const src *s, const char *key, int *v, int null_ok, int null_value, et_error *err) {
    const cJSON *j = field(s, key);
    if (!j) return 0;
    if (cJSON_IsNull(j)) {
        if (null_ok) {
            *v = null_value;
            return 0;
        }
        return et_fail(err, "%s: field '%s%s' is null, expected an integer", s->path, s->prefix, key);
    }
    if (as_int(j, v))
        return et_fail(err, "%s: field '%s%s' must be an integer, got %s%s", s->path, s->prefix, key,
                       jtype(j), cJSON_IsNumber(j) ? " that is not a whole 32-bit value" : "");
    return 0;
}

static int req_int(const src *s, const char *key, int *v, et_error *err) {
    if (!present(field(s, key)))
        return et_fail(err, "%s: missing required field '%s%s'; a Llama/Mistral/Qwen2 config.json "
                       "always has it: is this the model's own config.json?", s->path, s->prefix, key);
    return get_int(s, key, v, 0, 0, err);
}

static int get_num(const src *s, const char *key, double *v, et_error *err) {
    const cJSON *j = field(s, key);
    if (!j) return 0;
    if (!cJSON_IsNumber(j))
        return et_fail(err, "%s: field '%s%s' must be a number, got %s", s->path, s->prefix, key,
                       jtype(j));
    *v = j->valuedouble;
    return 0;
}

static int req_num(const src *s, const char *key, double *v, const char *why, et_error *err) {
    if (!present(field(s, key)))
        return et_fail(err, "%s: missing field '%s%s', required %s", s->path, s->prefix, key, why);
    return get_num(s, key, v, err);
}

static int get_bool(const src *s, const char *key, int *v, et_error *err) {
    const cJSON *j = field(s, key);
    if (!j) return 0;
    if (!cJSON_IsBool(j))
        return et_fail(err, "%s: field '%s%s' must be true or false, got %s", s->path, s->prefix, key,
                       jtype(j));
    *v = cJSON_IsTrue(j);
    return 0;
}

/* Keys of one config object beyond which the quadratic duplicate check below would
 * stall on a crafted file; real configs have under a hundred. */
#define MAX_CONFIG_KEYS 4096

/* Python's json keeps the LAST of duplicate keys, cJSON's lookup the first:
 * refuse duplicates rather than silently disagree with transformers. */
static int check_duplicates(const src *s, et_error *err) {
    int n = 0;
    for (const cJSON *a = s->obj->child; a; a = a->next)
        if (++n > MAX_CONFIG_KEYS)
            return et_fail(err, "%s: %s%.*s%s has over %d keys; a model config has a few dozen "
                                "(is this a config.json?)",
                           s->path, s->prefix[0] ? "object '" : "the top-level object",
                           s->prefix[0] ? (int)strlen(s->prefix) - 1 : 0, s->prefix,
                           s->prefix[0] ? "'" : "", MAX_CONFIG_KEYS);
    for (const cJSON *a = s->obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string))
                return et_fail(err, "%s: key '%s%.100s' appears twice; keep one", s->path, s->prefix,
                               a->string);
    return 0;
}

/* ---- architecture -------------------------------------------------------------- */

static int detect_arch(const src *s, et_arch *arch, et_error *err) {
    const cJSON *archs = field(s, "architectures"), *mt = field(s, "model_type");
    int from_class = -1, from_type = -1;
    if (present(archs)) {
        if (!cJSON_IsArray(archs) || !cJSON_IsString(archs->child))
            return et_fail(err, "%s: field 'architectures' must be a non-empty list of strings", s->path);
        const char *name = archs->child->valuestring;
        for (int i = 0; i < N_ARCHS; i++)
            if (!strcmp(name, ARCHS[i].class_name)) from_class = i;
        if (from_class < 0)
            return et_fail(err, "%s: architectures[0] is '%.100s'; supported: LlamaForCausalLM, "
                           "MistralForCausalLM, Qwen2ForCausalLM", s->path, name);
    }
    if (present(mt)) {
        if (!cJSON_IsString(mt))
            return et_fail(err, "%s: field 'model_type' must be a string, got %s", s->path, jtype(mt));
        for (int i = 0; i < N_ARCHS; i++)
            if (!strcmp(mt->valuestring, ARCHS[i].model_type)) from_type = i;
        if (from_type < 0 && from_class < 0)
            return et_fail(err, "%s: model_type is '%.100s'; supported: llama, mistral, qwen2", s->path,
                           mt->valuestring);
        /* transformers picks the config class from model_type and the model
         * class from architectures; if they disagree, which one is meant? */
        if (from_class >= 0 && from_type != from_class)
            return et_fail(err, "%s: architectures[0] '%s' does not match model_type '%.100s'; fix "
                           "config.json so both name the same architecture", s->path,
                           ARCHS[from_class].class_name, mt->valuestring);
    }
    if (from_class < 0 && from_type < 0)
        return et_fail(err, "%s: neither 'architectures' nor 'model_type' is given; cannot tell the "
                       "architecture (supported: LlamaForCausalLM, MistralForCausalLM, "
                       "Qwen2ForCausalLM)", s->path);
    *arch = (et_arch)(from_class >= 0 ? from_class : from_type);
    return 0;
}

/* ---- RoPE ---------------------------------------------------------------------- */

/* v4: rope_theta + rope_scaling {"rope_type"|"type", factor, ...}.
 * v5: rope_parameters {"rope_type", "rope_theta", factor, ...}. */
static int parse_rope(const src *top, et_hf_config *c, et_error *err) {
    const cJSON *rs = field(top, "rope_scaling"), *rp = field(top, "rope_parameters");
    /* an empty rope_scaling is no scaling, as transformers v5 reads it (rope_scaling or
     * rope_parameters) */
    if (cJSON_IsObject(rs) && !rs->child) rs = NULL;
    if (present(rs) && present(rp))
        return et_fail(err, "%s: both 'rope_scaling' (transformers v4) and 'rope_parameters' (v5) are "
                       "given; keep one", top->path);
    double theta = c->rope.theta;
    if (get_num(top, "rope_theta", &theta, err)) return -1;
    double partial = 1.0;
    if (get_num(top, "partial_rotary_factor", &partial, err)) return -1;
    c->rope.type = ET_ROPE_DEFAULT;
    c->rope.factor = 1.0;

    const cJSON *dict = present(rs) ? rs : present(rp) ? rp : NULL;
    if (dict) {
        const char *dname = dict == rs ? "rope_scaling" : "rope_parameters";
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s.", dname);
        src d = {top->path, dict, prefix};
        if (!cJSON_IsObject(dict))
            return et_fail(err, "%s: field '%s' must be an object, got %s", top->path, dname, jtype(dict));
        if (check_duplicates(&d, err)) return -1;
        const cJSON *rt = field(&d, "rope_type"), *ty = field(&d, "type");
        if ((present(rt) && !cJSON_IsString(rt)) || (present(ty) && !cJSON_IsString(ty)))
            return et_fail(err, "%s: '%srope_type' must be a string", top->path, prefix);
        if (present(rt) && present(ty) && strcmp(rt->valuestring, ty->valuestring))
            return et_fail(err, "%s: '%srope_type' ('%.40s') and its legacy alias '%stype' ('%.40s') "
                           "disagree; keep one", top->path, prefix, rt->valuestring, prefix,
                           ty->valuestring);
        const char *type = present(rt) ? rt->valuestring : present(ty) ? ty->valuestring : NULL;
        if (!type) {
            for (const cJSON *m = dict->child; m; m = m->next)
                if (cJSON_IsObject(m))
                    return et_fail(err, "%s: per-layer-type '%s' (key '%.60s') is not supported by "
                                   "Llama/Mistral/Qwen2", top->path, dname, m->string);
            if (dict == rs)
                return et_fail(err, "%s: 'rope_scaling' has no 'rope_type' (or 'type'); add one of "
                               "default, linear, llama3", top->path);
            type = "default"; /* v5 rope_parameters default */
        }
        double dict_theta = theta;
        if (get_num(&d, "rope_theta", &dict_theta, err)) return -1;
        if (field(top, "rope_theta") && field(&d, "rope_theta") && dict_theta != theta)
            return et_fail(err, "%s: 'rope_theta' and '%srope_theta' disagree; keep one", top->path,
                           prefix);
        theta = dict_theta;
        if (get_num(&d, "partial_rotary_factor", &partial, err)) return -1;

        if (!strcmp(type, "default")) {
            /* nothing else to read */
        } else if (!strcmp(type, "linear")) {
            c->rope.type = ET_ROPE_LINEAR;
            if (req_num(&d, "factor", &c->rope.factor, "for linear RoPE scaling", err)) return -1;
        } else if (!strcmp(type, "llama3")) {
            c->rope.type = ET_ROPE_LLAMA3;
            const char *why = "for llama3 RoPE scaling";
            if (req_num(&d, "factor", &c->rope.factor, why, err) ||
                req_num(&d, "low_freq_factor", &c->rope.low_freq_factor, why, err) ||
                req_num(&d, "high_freq_factor", &c->rope.high_freq_factor, why, err) ||
                req_num(&d, "original_max_position_embeddings", &c->rope.original_max_pos, why, err))
                return -1;
        } else {
            return et_fail(err, "%s: RoPE type '%.40s' (field '%srope_type') is not supported; "
                           "supported: default, linear, llama3", top->path, type, prefix);
        }
    }
    if (partial != 1.0)
        return et_fail(err, "%s: partial_rotary_factor is %g; only full rotary embeddings (1.0) are "
                       "supported", top->path, partial);
    c->rope.theta = theta;
    return 0;
}

/* ---- sliding window ------------------------------------------------------------ */

static int parse_window(const src *s, et_hf_config *c, et_error *err) {
    c->sliding_window = 0;
    c->sliding_window_first_layer = 0;
    if (c->arch == ET_ARCH_LLAMA) return 0; /* LlamaForCausalLM ignores the key */
    int window = 4096;
    if (get_int(s, "sliding_window", &window, 1, 0, err)) return -1;
    int window_given = present(field(s, "sliding_window"));
    if (c->arch == ET_ARCH_MISTRAL) {
        if (window_given && window <= 0)
            return et_fail(err, "%s: sliding_window is %d; use null for full attention", s->path, window);
        c->sliding_window = window;
        return 0;
    }
    /* Qwen2: sliding_window only counts when use_sliding_window is true, and
     * then only for layers from max_window_layers on (or as layer_types says). */
    int use = 0, first = 28;
    if (get_bool(s, "use_sliding_window", &use, err) ||
        get_int(s, "max_window_layers", &first, 0, 0, err))
        return -1;
    const cJSON *lt = field(s, "layer_types");
    if (present(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->num_layers)
            return et_fail(err, "%s: 'layer_types' must be a list of %d strings (one per layer)",
                           s->path, c->num_layers);
        int i = 0, first_sliding = -1;
        for (const cJSON *e = lt->child; e; e = e->next, i++) {
            int sliding = cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
            if (!sliding && !(cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")))
                return et_fail(err, "%s: layer_types[%d] must be \"full_attention\" or "
                               "\"sliding_attention\"", s->path, i);
            if (sliding && first_sliding < 0) first_sliding = i;
            if (!sliding && first_sliding >= 0)
                return et_fail(err, "%s: layer_types[%d] is full attention after a sliding layer; only "
                               "full layers followed by sliding layers are supported", s->path, i);
        }
        /* transformers' Qwen2Config sets sliding_window to None when use_sliding_window is
         * false, and its modeling code then fails on a "sliding_attention" layer */
        if (!use && first_sliding >= 0)
            return et_fail(err, "%s: layer_types[%d] is \"sliding_attention\" but use_sliding_window "
                           "is %s, so transformers has no window for it (and fails); set "
                           "use_sliding_window to true (with sliding_window) or make every entry "
                           "\"full_attention\"", s->path, first_sliding,
                           field(s, "use_sliding_window") ? "false" : "absent (false)");
        first = first_sliding < 0 ? c->num_layers : first_sliding;
    }
    if (first < 0)
        return et_fail(err, "%s: max_window_layers is %d, must be >= 0", s->path, first);
    if (use && window_given && window <= 0)
        return et_fail(err, "%s: use_sliding_window is true but sliding_window is %d", s->path, window);
    if (use && window > 0 && first < c->num_layers) {
        c->sliding_window = window;
        c->sliding_window_first_layer = first;
    }
    return 0;
}

/* ---- token ids and dtype --------------------------------------------------------- */

static int parse_tokens(const src *s, et_hf_config *c, et_error *err) {
    if (get_int(s, "bos_token_id", &c->bos_token_id, 1, -1, err)) return -1;
    const cJSON *eos = field(s, "eos_token_id");
    if (!eos) return 0;
    c->n_eos = 0;
    if (cJSON_IsNull(eos)) {
    } else if (cJSON_IsArray(eos)) {
        for (const cJSON *e = eos->child; e; e = e->next) {
            int v;
            if (as_int(e, &v) || v < 0)
                return et_fail(err, "%s: eos_token_id list holds a non-integer or negative entry",
                               s->path);
            if (c->n_eos == ET_HF_MAX_EOS)
                return et_fail(err, "%s: eos_token_id lists more than %d ids", s->path, ET_HF_MAX_EOS);
            c->eos_token_ids[c->n_eos++] = v;
        }
    } else {
        int v;
        if (as_int(eos, &v) || v < 0)
            return et_fail(err, "%s: eos_token_id must be a non-negative integer, a list of them, or "
                           "null; got %s", s->path, jtype(eos));
        c->eos_token_ids[c->n_eos++] = v;
    }
    c->eos_token_id = c->n_eos ? c->eos_token_ids[0] : -1;
    return 0;
}

static int parse_dtype(const src *s, et_hf_config *c, et_error *err) {
    const cJSON *d = field(s, "torch_dtype");
    if (!present(d)) d = field(s, "dtype"); /* transformers v5 name */
    c->torch_dtype[0] = 0;
    if (!present(d)) return 0;
    if (!cJSON_IsString(d) || strlen(d->valuestring) >= sizeof c->torch_dtype)
        return et_fail(err, "%s: torch_dtype must be a short string such as \"bfloat16\"", s->path);
    strcpy(c->torch_dtype, d->valuestring);
    return 0;
}

/* ---- validation ----------------------------------------------------------------- */

/* a*b and a+b on uint64_t, or -1 when they wrap. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out) ? -1 : 0; }
static int add_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out) ? -1 : 0; }

int et_hf_param_count(const et_hf_config *c, uint64_t *out) {
    if (c->vocab_size <= 0 || c->hidden_size <= 0 || c->intermediate_size <= 0 || c->num_layers <= 0 ||
        c->num_heads <= 0 || c->num_kv_heads <= 0 || c->head_dim <= 0)
        return -1;
    uint64_t V = (uint64_t)c->vocab_size, C = (uint64_t)c->hidden_size,
             I = (uint64_t)c->intermediate_size, L = (uint64_t)c->num_layers;
    uint64_t q, kv, t, layer = 0, total;
    /* q_proj/o_proj: C x heads*head_dim; k/v_proj: C x kv_heads*head_dim; + biases */
    if (mul_u64((uint64_t)c->num_heads, (uint64_t)c->head_dim, &q) ||
        mul_u64((uint64_t)c->num_kv_heads, (uint64_t)c->head_dim, &kv))
        return -1;
    if (mul_u64(C, q, &t) || mul_u64(t, 2, &t) || add_u64(layer, t, &layer)) return -1;
    if (mul_u64(C, kv, &t) || mul_u64(t, 2, &t) || add_u64(layer, t, &layer)) return -1;
    if (mul_u64(C, I, &t) || mul_u64(t, 3, &t) || add_u64(layer, t, &layer)) return -1;
    /* two norms (2C); every bias: q (q), k and v (kv each), o (C), gate and up (I each),
     * down (C) */
    if (add_u64(layer, 4 * C + q + 2 * kv + 2 * I, &layer)) return -1;
    if (mul_u64(layer, L, &total)) return -1;
    if (mul_u64(V, C, &t) || mul_u64(t, 2, &t) || add_u64(total, t, &total) ||
        add_u64(total, C, &total)) /* embeddings + lm_head, final norm */
        return -1;
    *out = total;
    return 0;
}

int et_hf_config_validate(const et_hf_config *c, const char *what, et_error *err) {
    const struct {
        const char *key;
        int v, max; /* max 0: any positive int */
    } pos[] = {
        {"vocab_size", c->vocab_size, ET_HF_MAX_VOCAB},
        {"hidden_size", c->hidden_size, ET_HF_MAX_HIDDEN},
        {"intermediate_size", c->intermediate_size, ET_HF_MAX_HIDDEN},
        {"num_hidden_layers", c->num_layers, ET_HF_MAX_LAYERS},
        {"num_attention_heads", c->num_heads, ET_HF_MAX_HEADS},
        {"num_key_value_heads", c->num_kv_heads, ET_HF_MAX_HEADS},
        {"head_dim", c->head_dim, ET_HF_MAX_HEAD_DIM},
        {"max_position_embeddings", c->max_position_embeddings, 0},
    };
    if ((unsigned)c->arch >= (unsigned)N_ARCHS)
        return et_fail(err, "%s: unknown architecture value %d", what, (int)c->arch);
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return et_fail(err, "%s: %s is %d, must be positive", what, pos[i].key, pos[i].v);
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].max && pos[i].v > pos[i].max)
            return et_fail(err, "%s: %s is %d, above the largest this toolkit accepts (%d; real "
                           "models are far smaller); is config.json damaged?", what, pos[i].key,
                           pos[i].v, pos[i].max);
    if (c->num_heads % c->num_kv_heads)
        return et_fail(err, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads "
                       "(%d)", what, c->num_heads, c->num_kv_heads);
    if (c->head_dim % 2)
        return et_fail(err, "%s: head_dim is %d; RoPE needs an even head_dim", what, c->head_dim);
    if ((long long)c->num_heads * c->head_dim > ET_HF_MAX_HIDDEN)
        return et_fail(err, "%s: num_attention_heads × head_dim is %lld, above the largest this "
                       "toolkit accepts (%d); is config.json damaged?", what,
                       (long long)c->num_heads * c->head_dim, ET_HF_MAX_HIDDEN);
    uint64_t params;
    if (et_hf_param_count(c, &params) || params > ET_HF_MAX_PARAMS)
        return et_fail(err, "%s: these sizes (vocab %d, hidden %d, intermediate %d, %d layers) make a "
                       "model of over %llu parameters, more than this toolkit accepts; is config.json "
                       "damaged?", what, c->vocab_size, c->hidden_size, c->intermediate_size,
                       c->num_layers, (unsigned long long)ET_HF_MAX_PARAMS);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
        return et_fail(err, "%s: rms_norm_eps must be a positive number", what);
    const et_rope_params *r = &c->rope;
    if (!(r->theta > 0) || !isfinite(r->theta))
        return et_fail(err, "%s: rope_theta must be a positive number", what);
    if (r->type != ET_ROPE_DEFAULT && (!(r->factor > 0) || !isfinite(r->factor)))
        return et_fail(err, "%s: RoPE scaling 'factor' must be a positive number", what);
    if (r->type == ET_ROPE_LLAMA3) {
        if (!(r->low_freq_factor > 0) || !(r->high_freq_factor > r->low_freq_factor) ||
            !isfinite(r->high_freq_factor))
            return et_fail(err, "%s: llama3 RoPE needs 0 < low_freq_factor < high_freq_factor (got "
                           "%g, %g)", what, r->low_freq_factor, r->high_freq_factor);
        if (!(r->original_max_pos > 0) || r->original_max_pos != floor(r->original_max_pos) ||
            r->original_max_pos > INT_MAX)
            return et_fail(err, "%s: llama3 RoPE 'original_max_position_embeddings' must be a positive "
                           "integer", what);
    } else if (r->type != ET_ROPE_DEFAULT && r->type != ET_ROPE_LINEAR) {
        return et_fail(err, "%s: unknown RoPE type %d", what, (int)r->type);
    }
    if (c->sliding_window < 0 || c->sliding_window_first_layer < 0 ||
        c->sliding_window_first_layer > c->num_layers)
        return et_fail(err, "%s: sliding window %d from layer %d is out of range", what,
                       c->sliding_window, c->sliding_window_first_layer);
    if (c->arch == ET_ARCH_LLAMA && c->sliding_window)
        return et_fail(err, "%s: LlamaForCausalLM has no sliding-window attention", what);
    if (c->arch == ET_ARCH_MISTRAL && c->sliding_window && c->sliding_window_first_layer)
        return et_fail(err, "%s: Mistral's sliding window applies to every layer", what);
    if (c->arch == ET_ARCH_LLAMA && c->attention_bias != c->o_bias)
        return et_fail(err, "%s: Llama's attention_bias covers q/k/v and o_proj alike", what);
    if (c->arch == ET_ARCH_MISTRAL && (c->attention_bias || c->o_bias || c->mlp_bias))
        return et_fail(err, "%s: Mistral has no projection biases", what);
    if (c->arch == ET_ARCH_QWEN2 && (!c->attention_bias || c->o_bias || c->mlp_bias))
        return et_fail(err, "%s: Qwen2 has biases on q/k/v only", what);
    if (c->n_eos < 0 || c->n_eos > ET_HF_MAX_EOS || c->bos_token_id < -1 || c->eos_token_id < -1 ||
        (c->n_eos > 0 && c->eos_token_ids[0] != c->eos_token_id))
        return et_fail(err, "%s: bos/eos token ids out of range or eos_token_id is not the first of "
                       "eos_token_ids", what);
    return 0;
}

/* ---- load ------------------------------------------------------------------------ */

static int read_text(const char *path, char **out, size_t *len, et_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return et_fail(err, "%s: cannot open: %s; a Hugging Face model folder has a config.json", path,
                       strerror(errno));
    char *buf = malloc(MAX_CONFIG_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_CONFIG_BYTES + 1, fp) : 0;
    int bad = ferror(fp);
    fclose(fp);
    if (!buf) return et_fail(err, "%s: out of memory", path);
    if (bad || n > MAX_CONFIG_BYTES) {
        free(buf);
        return et_fail(err, bad ? "%s: read error" : "%s: larger than 16 MiB; not a config.json", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int parse_config(et_hf_config *c, const char *path, const cJSON *root, et_error *err) {
    src s = {path, root, ""};
    if (!cJSON_IsObject(root))
        return et_fail(err, "%s: top level is %s, expected a JSON object", path, jtype(root));
    if (check_duplicates(&s, err)) return -1;
    et_arch arch = ET_ARCH_LLAMA;
    if (detect_arch(&s, &arch, err)) return -1;
    et_hf_config_init(c, arch);

    const cJSON *q = field(&s, "quantization_config");
    if (present(q)) {
        const cJSON *m = cJSON_IsObject(q) ? cJSON_GetObjectItemCaseSensitive(q, "quant_method") : NULL;
        return et_fail(err, "%s: the checkpoint is pre-quantized (quantization_config, quant_method "
                       "'%.40s'); use the unquantized bf16/fp16 model: ehrtune quantizes to NF4 itself",
                       path, cJSON_IsString(m) ? m->valuestring : "?");
    }
    const cJSON *act = field(&s, "hidden_act");
    if (present(act) && (!cJSON_IsString(act) || (strcmp(act->valuestring, "silu") &&
                                                  strcmp(act->valuestring, "swish"))))
        return et_fail(err, "%s: hidden_act is '%.40s'; only silu (SwiGLU MLP) is supported", path,
                       cJSON_IsString(act) ? act->valuestring : jtype(act));

    if (req_int(&s, "vocab_size", &c->vocab_size, err) ||
        req_int(&s, "hidden_size", &c->hidden_size, err) ||
        req_int(&s, "intermediate_size", &c->intermediate_size, err) ||
        req_int(&s, "num_hidden_layers", &c->num_layers, err) ||
        req_int(&s, "num_attention_heads", &c->num_heads, err))
        return -1;
    /* num_key_value_heads: null means "= heads" in all three classes; absent
     * means the class default (Llama: = heads, Mistral: 8, Qwen2: 32). */
    c->num_kv_heads = arch == ET_ARCH_LLAMA ? c->num_heads : c->num_kv_heads;
    if (get_int(&s, "num_key_value_heads", &c->num_kv_heads, 1, c->num_heads, err)) return -1;
    if (!field(&s, "num_key_value_heads") && c->num_kv_heads > 0 && c->num_heads % c->num_kv_heads)
        return et_fail(err, "%s: num_key_value_heads is not given, and %s's default (%d) does not "
                       "divide num_attention_heads (%d); add num_key_value_heads", path,
                       ARCHS[arch].class_name, c->num_kv_heads, c->num_heads);
    if (c->num_heads <= 0 || c->hidden_size <= 0)
        return et_fail(err, "%s: hidden_size and num_attention_heads must be positive", path);
    c->head_dim = 0;
    if (get_int(&s, "head_dim", &c->head_dim, 1, 0, err)) return -1;
    if (c->head_dim == 0) {
        if (c->hidden_size % c->num_heads)
            return et_fail(err, "%s: hidden_size %d is not a multiple of num_attention_heads %d and "
                           "head_dim is not given", path, c->hidden_size, c->num_heads);
        c->head_dim = c->hidden_size / c->num_heads;
    }
    double eps = c->rms_norm_eps;
    if (get_int(&s, "max_position_embeddings", &c->max_position_embeddings, 0, 0, err) ||
        get_num(&s, "rms_norm_eps", &eps, err) ||
        get_bool(&s, "tie_word_embeddings", &c->tie_word_embeddings, err))
        return -1;
    c->rms_norm_eps = (float)eps;
    /* transformers applies attention_dropout to the attention weights in training;
     * ehrtune has no attention dropout, so any other value would train differently */
    double attn_dropout = 0.0;
    if (get_num(&s, "attention_dropout", &attn_dropout, err)) return -1;
    if (attn_dropout != 0.0)
        return et_fail(err, "%s: attention_dropout is %g; ehrtune does not apply attention dropout "
                       "(transformers does, in training), so it cannot reproduce this model's "
                       "training; set \"attention_dropout\": 0.0 in config.json (the value of "
                       "every released Llama, Mistral and Qwen2 checkpoint)", path, attn_dropout);
    if (arch == ET_ARCH_LLAMA) {
        if (get_bool(&s, "attention_bias", &c->attention_bias, err) ||
            get_bool(&s, "mlp_bias", &c->mlp_bias, err))
            return -1;
        c->o_bias = c->attention_bias;
    }
    if (parse_rope(&s, c, err) || parse_window(&s, c, err) || parse_tokens(&s, c, err) ||
        parse_dtype(&s, c, err))
        return -1;
    return et_hf_config_validate(c, path, err);
}

int et_hf_config_load(et_hf_config *c, const char *path, et_error *err) {
    char *text = NULL;
    size_t len = 0;
    if (read_text(path, &text, &len, err)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int rc = 0;
    if (!root) {
        int line = 1, col = 1;
        for (const char *p = text; end && p < end; p++) {
            if (*p == '\n') line++, col = 1;
            else col++;
        }
        rc = et_fail(err, "%s:%d:%d: invalid JSON; fix or re-download config.json", path, line, col);
    } else {
        for (const char *p = end; p < text + len; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                rc = et_fail(err, "%s: unexpected text after the JSON object (byte %td)", path,
                             p - text);
                break;
            }
        if (!rc) rc = parse_config(c, path, root, err);
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---- write ------------------------------------------------------------------------ */

/* Shortest decimal that reads back as the same float / double, so 1e-05 stays
 * "1e-05" instead of the double expansion of the float. */
static void mark_as_float(char *buf, size_t cap) {
    /* "500000" would read back as a Python int; HF writes 500000.0 for floats. */
    if (!strpbrk(buf, ".eEn") && strlen(buf) + 3 <= cap) strcat(buf, ".0");
}

static void fmt_float(char *buf, size_t cap, float v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    mark_as_float(buf, cap);
}

static void fmt_double(char *buf, size_t cap, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    mark_as_float(buf, cap);
}

int et_hf_config_write(const et_hf_config *c, const char *path, et_error *err) {
    if (et_hf_config_validate(c, path, err)) return -1;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap), num[40];
#define OUT(...) (n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, __VA_ARGS__))
    if (!b) return et_fail(err, "%s: out of memory", path);
    OUT("{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", ARCHS[c->arch].class_name,
        ARCHS[c->arch].model_type);
    OUT("  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n", c->vocab_size,
        c->hidden_size, c->intermediate_size);
    OUT("  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n", c->num_layers, c->num_heads);
    OUT("  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n", c->num_kv_heads, c->head_dim);
    OUT("  \"hidden_act\": \"silu\",\n  \"max_position_embeddings\": %d,\n",
        c->max_position_embeddings);
    fmt_float(num, sizeof num, c->rms_norm_eps);
    OUT("  \"rms_norm_eps\": %s,\n", num);
    fmt_double(num, sizeof num, c->rope.theta);
    OUT("  \"rope_theta\": %s,\n", num);
    if (c->rope.type == ET_ROPE_DEFAULT) {
        OUT("  \"rope_scaling\": null,\n");
    } else {
        fmt_double(num, sizeof num, c->rope.factor);
        OUT("  \"rope_scaling\": {\"rope_type\": \"%s\", \"factor\": %s",
            c->rope.type == ET_ROPE_LINEAR ? "linear" : "llama3", num);
        if (c->rope.type == ET_ROPE_LLAMA3) {
            fmt_double(num, sizeof num, c->rope.low_freq_factor);
            OUT(", \"low_freq_factor\": %s", num);
            fmt_double(num, sizeof num, c->rope.high_freq_factor);
            OUT(", \"high_freq_factor\": %s", num);
            OUT(", \"original_max_position_embeddings\": %d", (int)c->rope.original_max_pos);
        }
        OUT("},\n");
    }
    OUT("  \"tie_word_embeddings\": %s,\n", c->tie_word_embeddings ? "true" : "false");
    if (c->arch == ET_ARCH_LLAMA)
        OUT("  \"attention_bias\": %s,\n  \"mlp_bias\": %s,\n", c->attention_bias ? "true" : "false",
            c->mlp_bias ? "true" : "false");
    if (c->arch == ET_ARCH_MISTRAL) {
        if (c->sliding_window) OUT("  \"sliding_window\": %d,\n", c->sliding_window);
        else OUT("  \"sliding_window\": null,\n");
    }
    if (c->arch == ET_ARCH_QWEN2) {
        int use = c->sliding_window > 0;
        OUT("  \"use_sliding_window\": %s,\n", use ? "true" : "false");
        if (use) OUT("  \"sliding_window\": %d,\n", c->sliding_window);
        else OUT("  \"sliding_window\": null,\n");
        OUT("  \"max_window_layers\": %d,\n", use ? c->sliding_window_first_layer : c->num_layers);
    }
    if (c->bos_token_id >= 0) OUT("  \"bos_token_id\": %d,\n", c->bos_token_id);
    else OUT("  \"bos_token_id\": null,\n");
    if (c->n_eos <= 1) {
        if (c->eos_token_id >= 0) OUT("  \"eos_token_id\": %d,\n", c->eos_token_id);
        else OUT("  \"eos_token_id\": null,\n");
    } else {
        OUT("  \"eos_token_id\": [");
        for (int i = 0; i < c->n_eos; i++) OUT("%s%d", i ? ", " : "", c->eos_token_ids[i]);
        OUT("],\n");
    }
    if (c->torch_dtype[0]) {
        for (const char *p = c->torch_dtype; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
                free(b);
                return et_fail(err, "%s: torch_dtype '%s' is not a dtype name", path, c->torch_dtype);
            }
        OUT("  \"torch_dtype\": \"%s\",\n", c->torch_dtype);
    }
    OUT("  \"use_cache\": true\n}\n");
#undef OUT
    int rc = n >= cap ? et_fail(err, "%s: config text too long", path) : et_write_file_atomic(path, b, n, 0, "config.json", err);
    free(b);
    return rc;
}
