/* PEFT adapter directories: adapter_config.json + adapter_model.safetensors. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/atomic_file.h"
#include "data/safetensors.h"
#include "trainer/lora.h"

static int proj_from_name(const char *s) {
    for (int p = 0; p < ET_PROJ_COUNT; p++)
        if (!strcmp(s, et_proj_name((et_proj)p))) return p;
    return -1;
}

/* Rejects adapter_config features ehrtune does not implement, naming the key. */
static int check_unsupported(const cJSON *cfg, const char *path, et_error *err) {
    static const char *const must_be_false[] = {"use_dora", "fan_in_fan_out", "lora_bias"};
    for (size_t i = 0; i < sizeof must_be_false / sizeof *must_be_false; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, must_be_false[i]);
        if (v && cJSON_IsTrue(v))
            return et_fail(err, "%s: \"%s\": true is not supported by ehrtune", path,
                           must_be_false[i]);
    }
    /* LoRA variants that keep plain LoRA's tensor names and shapes but compute
     * something else (found 2026-11-26: an aLoRA adapter, alora_invocation_tokens, loaded
     * and ran as plain LoRA), and patterns ehrtune does not apply: refused when set */
    static const char *const must_be_empty[] = {
        "rank_pattern",       "alpha_pattern",     "layers_to_transform", "modules_to_save",
        "alora_invocation_tokens", "use_qalora",   "use_bdlora",          "arrow_config",
        "kasa_config",        "monteclora_config", "layer_replication",   "exclude_modules",
        "trainable_token_indices", "target_parameters"};
    for (size_t i = 0; i < sizeof must_be_empty / sizeof *must_be_empty; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, must_be_empty[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v) &&
            !((cJSON_IsObject(v) || cJSON_IsArray(v)) && cJSON_GetArraySize(v) == 0) &&
            !(cJSON_IsString(v) && !v->valuestring[0]))
            return et_fail(err, "%s: \"%s\" is set; ehrtune supports uniform LoRA only "
                                "(remove it or re-export the adapter without it)",
                           path, must_be_empty[i]);
    }
    /* Initialisations that rewrite the base weights (W_res = W − s·B₀A₀): PEFT runs them
     * again when it loads the adapter, so the adapter belongs to a base that is not the
     * model's; applied to the plain base it computes something else (found 2026-11-26: a
     * "pissa" adapter loaded without a word, logits 0.73 relative L2 off PEFT's). PEFT's
     * path_initial_model_for_weight_conversion turns such an adapter into a plain one. */
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(cfg, "init_lora_weights");
    if (init && cJSON_IsString(init)) {
        const char *s = init->valuestring;
        if (!strncmp(s, "pissa", 5) || !strncmp(s, "corda", 5) || !strcasecmp(s, "olora") ||
            !strcmp(s, "loftq") || !strcmp(s, "lora_ga"))
            return et_fail(err, "%s: \"init_lora_weights\": \"%s\" rewrites the base weights, "
                                "so this adapter does not apply to the unmodified model; convert "
                                "it to a plain LoRA adapter first (PEFT's save_pretrained with "
                                "path_initial_model_for_weight_conversion)",
                           path, s);
    }
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(cfg, "bias");
    if (bias && cJSON_IsString(bias) && strcmp(bias->valuestring, "none"))
        return et_fail(err, "%s: \"bias\": \"%s\" is not supported (only \"none\")", path,
                       bias->valuestring);
    return 0;
}

static int parse_targets(const cJSON *tm, const char *path, unsigned *targets, et_error *err) {
    *targets = 0;
    if (cJSON_IsString(tm)) {
        if (!strcmp(tm->valuestring, "all-linear")) {
            *targets = (1u << ET_PROJ_COUNT) - 1;
            return 0;
        }
        int p = proj_from_name(tm->valuestring);
        if (p < 0)
            return et_fail(err, "%s: target_modules \"%s\" (a regex?) is not supported; "
                                "list module names such as [\"q_proj\", \"v_proj\"]",
                           path, tm->valuestring);
        *targets = 1u << p;
        return 0;
    }
    if (!cJSON_IsArray(tm) || cJSON_GetArraySize(tm) == 0)
        return et_fail(err, "%s: target_modules must be a non-empty list of module names", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, tm) {
        int p = cJSON_IsString(it) ? proj_from_name(it->valuestring) : -1;
        if (p < 0)
            return et_fail(err, "%s: target_modules names '%s', which a Llama-family model "
                                "lacks (valid: q_proj k_proj v_proj o_proj gate_proj up_proj "
                                "down_proj)",
                           path, cJSON_IsString(it) ? it->valuestring : "(not a string)");
        *targets |= 1u << p;
    }
    return 0;
}

int et_lora_load_peft(et_lora *l, const et_hf_config *c, const char *dir, et_error *err) {
    char path[4096], wpath[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    snprintf(wpath, sizeof wpath, "%s/adapter_model.safetensors", dir);
    char *text = et_read_file_text(path, 64u << 20, err);
    if (!text) return -1;
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    if (!cfg || !cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return et_fail(err, "%s: not a JSON object", path);
    }
    int rc = -1;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(cfg, "peft_type");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cfg, "r");
    const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(cfg, "lora_alpha");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "use_rslora");
    const cJSON *dp = cJSON_GetObjectItemCaseSensitive(cfg, "lora_dropout");
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(cfg, "target_modules");
    unsigned targets;
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA")) {
        et_fail(err, "%s: peft_type must be \"LORA\"", path);
        goto done;
    }
    if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble != floor(r->valuedouble)) {
        et_fail(err, "%s: \"r\" must be a positive integer", path);
        goto done;
    }
    if (check_unsupported(cfg, path, err) || parse_targets(tm, path, &targets, err)) goto done;
    float a = cJSON_IsNumber(alpha) ? (float)alpha->valuedouble : 8.0f; /* PEFT default */
    float d = cJSON_IsNumber(dp) ? (float)dp->valuedouble : 0.0f;
    if (et_lora_create(l, c, r->valueint, a, cJSON_IsTrue(rs), d, targets, err)) goto done;

    et_st_file f;
    if (et_st_open(&f, wpath, err)) {
        et_lora_free(l);
        goto done;
    }
    int used = 0;
    for (int layer = 0; layer < l->num_layers && rc == -1; layer++)
        for (int p = 0; p < ET_PROJ_COUNT; p++) {
            et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            if (!s->a) continue;
            for (int is_b = 0; is_b < 2; is_b++) {
                char key[256];
                et_lora_key(key, sizeof key, layer, (et_proj)p, is_b);
                const et_st_tensor *t = et_st_find(&f, key);
                if (!t) {
                    et_fail(err, "%s: tensor %s missing (adapter_config.json targets %s)", wpath,
                            key, et_proj_name((et_proj)p));
                    goto fail;
                }
                int64_t want0 = is_b ? s->out : l->r, want1 = is_b ? l->r : s->in;
                if (t->ndim != 2 || t->shape[0] != want0 || t->shape[1] != want1) {
                    et_fail(err, "%s: tensor %s has shape [%lld, %lld], the base model needs "
                                 "[%lld, %lld] — adapter made for a different base model?",
                            wpath, key, (long long)(t->ndim > 0 ? t->shape[0] : 0),
                            (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)want0,
                            (long long)want1);
                    goto fail;
                }
                if (et_st_read_f32(&f, t, is_b ? s->b : s->a, err)) goto fail;
                used++;
            }
        }
    if (used != f.n_tensors) {
        et_fail(err, "%s: holds %d tensors but adapter_config.json accounts for %d (layers "
                     "beyond the base model, or modules ehrtune does not train)",
                wpath, f.n_tensors, used);
        goto fail;
    }
    rc = 0;
fail:
    et_st_close(&f);
    if (rc) et_lora_free(l);
done:
    cJSON_Delete(cfg);
    return rc;
}

/* The PEFT version whose LoraConfig field set et_lora_peft_config reproduces, checked
 * by tests/crosscheck/make_export_fixtures.py (written as "peft_version": PEFT records
 * the version that produced a config). */
#define PEFT_SCHEMA_VERSION "0.21.2"

static double short_decimal(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    return strtod(buf, NULL);
}

/* LoraConfig.to_dict() of PEFT 0.21.2, keys sorted as save_pretrained writes them
 * (json.dumps(sort_keys=True)); target_modules sorted (PEFT writes a set). */
cJSON *et_lora_peft_config(const et_lora *l, const char *base_model, int gaussian_init) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNullToObject(c, "alora_invocation_tokens");
    cJSON_AddObjectToObject(c, "alpha_pattern");
    cJSON_AddNullToObject(c, "arrow_config");
    cJSON_AddNullToObject(c, "auto_mapping");
    cJSON_AddStringToObject(c, "base_model_name_or_path", base_model ? base_model : "");
    cJSON_AddStringToObject(c, "bias", "none");
    cJSON_AddNullToObject(c, "corda_config");
    cJSON_AddFalseToObject(c, "ensure_weight_tying");
    cJSON_AddNullToObject(c, "eva_config");
    cJSON_AddNullToObject(c, "exclude_modules");
    cJSON_AddFalseToObject(c, "fan_in_fan_out");
    cJSON_AddTrueToObject(c, "inference_mode");
    if (gaussian_init)
        cJSON_AddStringToObject(c, "init_lora_weights", "gaussian");
    else cJSON_AddTrueToObject(c, "init_lora_weights");
    cJSON_AddNullToObject(c, "kasa_config");
    cJSON_AddNullToObject(c, "layer_replication");
    cJSON_AddNullToObject(c, "layers_pattern");
    cJSON_AddNullToObject(c, "layers_to_transform");
    cJSON_AddObjectToObject(c, "loftq_config");
    /* Shortest decimals of the float values, so 0.05 is written 0.05 (as in the recipe),
     * not 0.05000000074505806. */
    cJSON_AddNumberToObject(c, "lora_alpha", short_decimal(l->alpha));
    cJSON_AddFalseToObject(c, "lora_bias");
    cJSON_AddNumberToObject(c, "lora_dropout", short_decimal(l->dropout));
    cJSON_AddNullToObject(c, "lora_ga_config");
    cJSON_AddNullToObject(c, "megatron_config");
    cJSON_AddStringToObject(c, "megatron_core", "megatron.core");
    cJSON_AddNullToObject(c, "modules_to_save");
    cJSON_AddNullToObject(c, "monteclora_config");
    cJSON_AddStringToObject(c, "peft_type", "LORA");
    cJSON_AddStringToObject(c, "peft_version", PEFT_SCHEMA_VERSION);
    cJSON_AddNumberToObject(c, "qalora_group_size", 16);
    cJSON_AddNumberToObject(c, "r", l->r);
    cJSON_AddObjectToObject(c, "rank_pattern");
    cJSON_AddNullToObject(c, "revision");
    /* sorted by name: down, gate, k, o, q, up, v */
    static const et_proj sorted[ET_PROJ_COUNT] = {ET_PROJ_DOWN, ET_PROJ_GATE, ET_PROJ_K, ET_PROJ_O,
                                                  ET_PROJ_Q,    ET_PROJ_UP,   ET_PROJ_V};
    cJSON *tm = cJSON_AddArrayToObject(c, "target_modules");
    for (int i = 0; i < ET_PROJ_COUNT; i++)
        if (l->targets & (1u << sorted[i]))
            cJSON_AddItemToArray(tm, cJSON_CreateString(et_proj_name(sorted[i])));
    cJSON_AddNullToObject(c, "target_parameters");
    cJSON_AddStringToObject(c, "task_type", "CAUSAL_LM");
    cJSON_AddNullToObject(c, "trainable_token_indices");
    cJSON_AddNullToObject(c, "use_bdlora");
    cJSON_AddFalseToObject(c, "use_dora");
    cJSON_AddFalseToObject(c, "use_qalora");
    cJSON_AddBoolToObject(c, "use_rslora", l->use_rslora);
    cJSON_AddNullToObject(c, "velora_config");
    return c;
}


int et_lora_save_peft(const et_lora *l, const char *dir, const char *base_model,
                      const char *const *metadata, et_error *err) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return et_fail(err, "%s: cannot create directory (%s)", dir, strerror(errno));
    cJSON *c = et_lora_peft_config(l, base_model, 0);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    int rc = text ? et_write_file_atomic(path, text, strlen(text), ET_FILE_PRIVATE,
                                         "adapter config", err)
                   : et_fail(err, "out of memory");
    free(text);
    if (rc) return rc;

    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    return et_lora_write_safetensors(l, path, 0, metadata, err);
}

int et_lora_write_safetensors(const et_lora *l, const char *path, int bf16,
                              const char *const *metadata, et_error *err) {
    et_st_writer w;
    et_st_writer_init(&w);
    et_dtype dt = bf16 ? ET_DT_BF16 : ET_DT_F32;
    char key[256];
    int rc = 0;
    for (int layer = 0; layer < l->num_layers && !rc; layer++)
        for (int p = 0; p < ET_PROJ_COUNT && !rc; p++) {
            const et_lora_slot *s = et_lora_slot_at(l, layer, (et_proj)p);
            if (!s->a) continue;
            int64_t sa[2] = {l->r, s->in}, sb[2] = {s->out, l->r};
            et_lora_key(key, sizeof key, layer, (et_proj)p, 0);
            rc = et_st_writer_add_f32(&w, key, dt, 2, sa, s->a, err);
            et_lora_key(key, sizeof key, layer, (et_proj)p, 1);
            if (!rc) rc = et_st_writer_add_f32(&w, key, dt, 2, sb, s->b, err);
        }
    for (int i = 0; !rc && metadata && metadata[i] && metadata[i + 1]; i += 2)
        rc = et_st_writer_set_metadata(&w, metadata[i], metadata[i + 1], err);
    if (!rc) rc = et_st_writer_write(&w, path, ET_ST_WRITE_PRIVATE, err);
    et_st_writer_free(&w);
    return rc;
}
