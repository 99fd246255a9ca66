/* PEFT export: adapter_config.json with every field PEFT 0.21 writes, and
 * adapter_model.safetensors (F32, or BF16 on request) with PEFT's key names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/safetensors.h"
#include "trainer/export.h"

/* The PEFT version whose LoraConfig field set this file reproduces, and against
 * which tests/crosscheck/make_export_fixtures.py checked it (written as
 * "peft_version": PEFT records the version that produced a config). */
#define PEFT_SCHEMA_VERSION "0.21.2"

static int write_text(const char *path, const char *text, et_error *err) {
    FILE *f = fopen(path, "wx");
    if (!f) return et_fail(err, "%s: cannot create (%s)", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    return bad ? et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(errno)) : 0;
}

/* LoraConfig.to_dict() of PEFT 0.21.2, keys sorted as save_pretrained writes them
 * (json.dumps(sort_keys=True)); target_modules sorted (PEFT writes a set). */
static cJSON *peft_config(const et_export_run *r) {
    const et_lora *l = &r->lora;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNullToObject(c, "alora_invocation_tokens");
    cJSON_AddObjectToObject(c, "alpha_pattern");
    cJSON_AddNullToObject(c, "arrow_config");
    cJSON_AddNullToObject(c, "auto_mapping");
    cJSON_AddStringToObject(c, "base_model_name_or_path",
                            r->recipe.model.path ? r->recipe.model.path : r->base_dir);
    cJSON_AddStringToObject(c, "bias", "none");
    cJSON_AddNullToObject(c, "corda_config");
    cJSON_AddFalseToObject(c, "ensure_weight_tying");
    cJSON_AddNullToObject(c, "eva_config");
    cJSON_AddNullToObject(c, "exclude_modules");
    cJSON_AddFalseToObject(c, "fan_in_fan_out");
    cJSON_AddTrueToObject(c, "inference_mode");
    if (r->recipe.lora.init == ET_RECIPE_INIT_GAUSSIAN)
        cJSON_AddStringToObject(c, "init_lora_weights", "gaussian");
    else cJSON_AddTrueToObject(c, "init_lora_weights");
    cJSON_AddNullToObject(c, "kasa_config");
    cJSON_AddNullToObject(c, "layer_replication");
    cJSON_AddNullToObject(c, "layers_pattern");
    cJSON_AddNullToObject(c, "layers_to_transform");
    cJSON_AddObjectToObject(c, "loftq_config");
    /* The recipe's values (exact decimals), which the adapter was checked to match. */
    cJSON_AddNumberToObject(c, "lora_alpha", r->recipe.lora.alpha);
    cJSON_AddFalseToObject(c, "lora_bias");
    cJSON_AddNumberToObject(c, "lora_dropout", r->recipe.lora.dropout);
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

int et_export_peft(const et_export_run *r, const char *dir, int bf16, et_error *err) {
    char path[4400];
    cJSON *cfg = peft_config(r);
    char *text = cfg ? cJSON_Print(cfg) : NULL;
    cJSON_Delete(cfg);
    if (!text) return et_fail(err, "out of memory");
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    int rc = write_text(path, text, err);
    free(text);
    if (rc) return rc;

    const et_lora *l = &r->lora;
    et_st_writer w;
    et_st_writer_init(&w);
    et_dtype dt = bf16 ? ET_DT_BF16 : ET_DT_F32;
    char key[256];
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
    for (int i = 0; !rc && r->metadata[i] && r->metadata[i + 1]; i += 2)
        rc = et_st_writer_set_metadata(&w, r->metadata[i], r->metadata[i + 1], err);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!rc) rc = et_st_writer_write(&w, path, ET_ST_WRITE_PRIVATE, err);
    et_st_writer_free(&w);
    return rc;
}
