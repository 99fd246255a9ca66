/* PEFT export: adapter_config.json with every field PEFT 0.21 writes, and
 * adapter_model.safetensors (F32, or BF16 on request) with PEFT's key names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/safetensors.h"
#include "trainer/export.h"

static int write_text(const char *path, const char *text, et_error *err) {
    FILE *f = fopen(path, "wx");
    if (!f) return et_fail(err, "%s: cannot create (%s)", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    return bad ? et_fail(err, "%s: write failed (%s) — disk full?", path, strerror(errno)) : 0;
}

int et_export_peft(const et_export_run *r, const char *dir, int bf16, et_error *err) {
    char path[4400];
    cJSON *cfg = et_lora_peft_config(&r->lora, r->recipe.model.path ? r->recipe.model.path : r->base_dir,
                                     r->recipe.lora.init == ET_RECIPE_INIT_GAUSSIAN);
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
