#include "trainer/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/atomic_file.h"
#include "data/safetensors.h"

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int mkdir_if_missing(const char *path, et_error *err) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return et_fail(err, "%s: cannot create directory (%s)", path, strerror(errno));
    return 0;
}

/* Removes a checkpoint folder left by an interrupted save (files only, one level). */
static void remove_tmp_dir(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/state.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

int et_checkpoint_save(const char *run_dir, const et_lora *l, const et_checkpoint_out *c,
                       et_error *err) {
    char ckdir[4096], tmp[4200], final[4200], file[4300], latest[4200];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", run_dir);
    if (mkdir_if_missing(ckdir, err)) return -1;
    snprintf(tmp, sizeof tmp, "%s/.tmp-step-%lld", ckdir, (long long)c->step);
    snprintf(final, sizeof final, "%s/step-%lld", ckdir, (long long)c->step);
    remove_tmp_dir(tmp);
    if (mkdir_if_missing(tmp, err)) return -1;

    et_st_writer w;
    et_st_writer_init(&w);
    int64_t shape[1] = {l->n_params};
    char buf[64];
    int rc = et_st_writer_add_f32(&w, "lora", ET_DT_F32, 1, shape, l->params, err);
    if (!rc) rc = et_st_writer_add_f32(&w, "adam_m", ET_DT_F32, 1, shape, c->adam_m, err);
    if (!rc) rc = et_st_writer_add_f32(&w, "adam_v", ET_DT_F32, 1, shape, c->adam_v, err);
    snprintf(buf, sizeof buf, "%lld", (long long)c->step);
    if (!rc) rc = et_st_writer_set_metadata(&w, "step", buf, err);
    snprintf(buf, sizeof buf, "%d", l->r);
    if (!rc) rc = et_st_writer_set_metadata(&w, "lora_r", buf, err);
    snprintf(buf, sizeof buf, "%u", l->targets);
    if (!rc) rc = et_st_writer_set_metadata(&w, "lora_targets", buf, err);
    snprintf(buf, sizeof buf, "%lld", (long long)l->n_params);
    if (!rc) rc = et_st_writer_set_metadata(&w, "lora_params", buf, err);
    if (!rc) rc = et_st_writer_set_metadata(&w, "lora_order", ET_LORA_ORDER, err);
    if (!rc && c->extra_json) rc = et_st_writer_set_metadata(&w, "extra", c->extra_json, err);
    snprintf(file, sizeof file, "%s/state.safetensors", tmp);
    if (!rc) rc = et_st_writer_write(&w, file, ET_ST_WRITE_PRIVATE, err);
    et_st_writer_free(&w);
    if (rc) {
        remove_tmp_dir(tmp);
        return et_wrap(err, "saving checkpoint step %lld", (long long)c->step);
    }
    /* An older checkpoint of the same step (a resumed run re-saving) is replaced. */
    remove_tmp_dir(final);
    if (fsync_path(tmp) != 0 || rename(tmp, final) != 0 || fsync_path(ckdir) != 0) {
        remove_tmp_dir(tmp);
        return et_fail(err, "%s: cannot finish checkpoint (%s)", final, strerror(errno));
    }
    snprintf(latest, sizeof latest, "%s/latest", ckdir);
    char line[64];
    int n = snprintf(line, sizeof line, "step-%lld\n", (long long)c->step);
    if (et_write_file_atomic(latest, line, (size_t)n, ET_FILE_PRIVATE, "checkpoint pointer", err))
        return -1;
    return 0;
}

static int meta_int(const et_st_file *f, const char *key, long long *out, et_error *err) {
    const char *v = et_st_metadata(f, key);
    char *end;
    if (!v) return et_fail(err, "%s: metadata '%s' missing — not an ehrtune checkpoint", f->path, key);
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (errno || *end) return et_fail(err, "%s: metadata '%s' is not an integer", f->path, key);
    return 0;
}

int et_checkpoint_load_latest(const char *run_dir, et_lora *l, float *adam_m, float *adam_v,
                              int64_t *step, char **extra_json, et_error *err) {
    char latest[4200], name[256], file[4600];
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", run_dir);
    FILE *f = fopen(latest, "r");
    if (!f) return 1;
    int ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    if (!ok || strncmp(name, "step-", 5) || strchr(name, '/'))
        return et_fail(err, "%s: does not name a checkpoint folder (step-N)", latest);
    snprintf(file, sizeof file, "%s/checkpoints/%s/state.safetensors", run_dir, name);
    et_st_file st;
    if (et_st_open(&st, file, err)) return -1;
    int rc = -1;
    long long s = 0, r = 0, targets = 0, n = 0;
    if (meta_int(&st, "step", &s, err) || meta_int(&st, "lora_r", &r, err) ||
        meta_int(&st, "lora_targets", &targets, err) || meta_int(&st, "lora_params", &n, err))
        goto done;
    const char *order = et_st_metadata(&st, "lora_order");
    if (!order || strcmp(order, ET_LORA_ORDER)) {
        et_fail(err, "%s: LoRA parameters stored in order '%s', this ehrtune reads '%s' — the "
                     "checkpoint was written by an older ehrtune; resume it with that version "
                     "or start the run again",
                file, order ? order : "A,B per projection", ET_LORA_ORDER);
        goto done;
    }
    if (r != l->r || (unsigned)targets != l->targets || n != l->n_params) {
        et_fail(err, "%s: checkpoint has LoRA r=%lld over targets mask %lld (%lld parameters) but "
                     "the recipe asks for r=%d, mask %u (%lld) — resume with the recipe the run "
                     "started with (its copy is config.resolved.yaml)",
                file, r, targets, n, l->r, l->targets, (long long)l->n_params);
        goto done;
    }
    const char *names[3] = {"lora", "adam_m", "adam_v"};
    float *dst[3] = {l->params, adam_m, adam_v};
    for (int i = 0; i < 3; i++) {
        const et_st_tensor *t = et_st_find(&st, names[i]);
        if (!t || t->dtype != ET_DT_F32 || et_st_numel(t) != l->n_params) {
            et_fail(err, "%s: tensor '%s' missing or not F32[%lld]", file, names[i],
                    (long long)l->n_params);
            goto done;
        }
        if (et_st_read_f32(&st, t, dst[i], err)) goto done;
    }
    *step = s;
    if (extra_json) {
        const char *x = et_st_metadata(&st, "extra");
        *extra_json = x ? strdup(x) : NULL;
    }
    rc = 0;
done:
    et_st_close(&st);
    return rc;
}
