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

    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    return et_lora_write_safetensors(&r->lora, path, bf16, (const char *const *)r->metadata, err);
}
