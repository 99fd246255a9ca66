#include "trainer/checkpoint.h"

#include <dirent.h>
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

/* A free name CKDIR/.old-step-N-XXXXXX for a folder moved aside. */
static int old_name(char *out, size_t n, const char *ckdir, long long step) {
    snprintf(out, n, "%s/.old-step-%lld-XXXXXX", ckdir, step);
    return mkdtemp(out) && rmdir(out) == 0 ? 0 : -1;
}

/* The replaced checkpoint, swapped to `dir` (the .tmp-step-N name): its state goes; a
 * folder that still holds files ehrtune did not write (a user's note, an NFS .nfs*
 * file) is kept under a name of its own (not the next save's .tmp-step-N). */
static void discard_old(const char *dir, const char *ckdir, long long step) {
    remove_tmp_dir(dir);
    struct stat st;
    char keep[4200];
    if (lstat(dir, &st) == 0 && old_name(keep, sizeof keep, ckdir, step) == 0) rename(dir, keep);
}

/* Puts the folder tmp at final. An older checkpoint of the same step (a resumed run
 * re-saving) is replaced only once the new one is in place: swapped atomically where
 * the file system can, else moved aside first and put back on failure. The old
 * state survives every failure. */
static int replace_dir(const char *tmp, const char *final, const char *ckdir, long long step,
                       et_error *err) {
    struct stat st;
    if (lstat(final, &st) != 0) {
        if (rename(tmp, final) != 0)
            return et_fail(err, "%s: cannot finish checkpoint (%s)", final, strerror(errno));
        return 0;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
        discard_old(tmp, ckdir, step); /* the old one is now at tmp */
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS) /* EINVAL, ENOSYS: no exchange on this file system */
        return et_fail(err, "%s: cannot replace the checkpoint (%s); the previous one is kept",
                       final, strerror(errno));
    char old[4200];
    if (old_name(old, sizeof old, ckdir, step) != 0 || rename(final, old) != 0)
        return et_fail(err, "%s: cannot move the previous checkpoint aside (%s); it is kept",
                       final, strerror(errno));
    if (rename(tmp, final) != 0) {
        int e = errno;
        if (rename(old, final) != 0)
            return et_fail(err, "%s: cannot finish checkpoint (%s); the previous one is at %s",
                           final, strerror(e), old);
        return et_fail(err, "%s: cannot finish checkpoint (%s); the previous one is kept", final,
                       strerror(e));
    }
    remove_tmp_dir(old); /* a folder still holding other files stays at its .old name */
    return 0;
}

static int by_step_desc(const void *a, const void *b) {
    const long long x = *(const long long *)a, y = *(const long long *)b;
    return (x < y) - (x > y);
}

/* Deletes every CKDIR/step-N folder but the `keep` of highest N and `current` (which
 * `latest` names): after the new checkpoint and the pointer are in place, so a crash
 * here leaves an extra old checkpoint, never too few. A folder holding files ehrtune
 * did not write loses its state file and stays (nothing else is deleted). */
static void prune(const char *ckdir, int keep, long long current) {
    struct dirent **names = NULL;
    const int n = scandir(ckdir, &names, NULL, NULL);
    if (n < 0) return;
    long long *steps = malloc(sizeof *steps * (size_t)(n > 0 ? n : 1));
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;
        char *end;
        if (steps && !strncmp(d, "step-", 5) && d[5] >= '0' && d[5] <= '9') {
            errno = 0;
            const long long v = strtoll(d + 5, &end, 10);
            if (!*end && !errno) steps[k++] = v;
        }
        free(names[i]);
    }
    free(names);
    if (!steps) return;
    qsort(steps, (size_t)k, sizeof *steps, by_step_desc);
    for (int i = keep; i < k; i++) {
        if (steps[i] == current) continue;
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/step-%lld", ckdir, steps[i]);
        remove_tmp_dir(dir);
    }
    free(steps);
    fsync_path(ckdir);
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
    if (!rc && c->recipe_resolved)
        rc = et_st_writer_set_metadata(&w, "recipe_resolved", c->recipe_resolved, err);
    snprintf(file, sizeof file, "%s/state.safetensors", tmp);
    if (!rc) rc = et_st_writer_write(&w, file, ET_ST_WRITE_PRIVATE, err);
    et_st_writer_free(&w);
    if (rc) {
        remove_tmp_dir(tmp);
        return et_wrap(err, "saving checkpoint step %lld", (long long)c->step);
    }
    if (fsync_path(tmp) != 0) {
        et_fail(err, "%s: cannot finish checkpoint (%s)", final, strerror(errno));
        remove_tmp_dir(tmp);
        return -1;
    }
    if (replace_dir(tmp, final, ckdir, (long long)c->step, err)) {
        remove_tmp_dir(tmp);
        return -1;
    }
    if (fsync_path(ckdir) != 0)
        return et_fail(err, "%s: cannot finish checkpoint (%s)", final, strerror(errno));
    snprintf(latest, sizeof latest, "%s/latest", ckdir);
    char line[64];
    int n = snprintf(line, sizeof line, "step-%lld\n", (long long)c->step);
    if (et_write_file_atomic(latest, line, (size_t)n, ET_FILE_PRIVATE, "checkpoint pointer", err))
        return -1;
    if (c->keep > 0) prune(ckdir, c->keep, (long long)c->step);
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
                              int64_t *step, char **extra_json, char **recipe_resolved,
                              et_error *err) {
    char latest[4200], name[256], file[4600];
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", run_dir);
    FILE *f = fopen(latest, "r");
    if (!f) return 1;
    int ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    /* step-N, N in digits: the folder's own step is checked against it below */
    char *end = NULL;
    long long named = -1;
    if (ok && !strncmp(name, "step-", 5) && name[5] >= '0' && name[5] <= '9') {
        errno = 0;
        named = strtoll(name + 5, &end, 10);
        if (errno || *end) named = -1;
    }
    if (named < 0)
        return et_fail(err, "%s: does not name a checkpoint folder (step-N)", latest);
    snprintf(file, sizeof file, "%s/checkpoints/%s/state.safetensors", run_dir, name);
    et_st_file st;
    if (et_st_open(&st, file, err)) return -1;
    int rc = -1;
    long long s = 0, r = 0, targets = 0, n = 0;
    if (meta_int(&st, "step", &s, err) || meta_int(&st, "lora_r", &r, err) ||
        meta_int(&st, "lora_targets", &targets, err) || meta_int(&st, "lora_params", &n, err))
        goto done;
    if (s != named) {
        et_fail(err, "%s: names %s but the checkpoint there is of step %lld — the pointer or the "
                     "folder was changed by hand; point latest at the folder of the step to resume",
                latest, name, s);
        goto done;
    }
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
    if (recipe_resolved) {
        const char *x = et_st_metadata(&st, "recipe_resolved");
        *recipe_resolved = x ? strdup(x) : NULL;
    }
    rc = 0;
done:
    et_st_close(&st);
    return rc;
}
