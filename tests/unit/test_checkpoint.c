/* Checkpoints (trainer/checkpoint.c): save and load round trip, the stored recipe, a
 * re-save of a step over a folder that holds a stray file (the old state must survive
 * every failure: 2026-11-26, the old state was deleted before the new folder was in
 * place), and a `latest` pointer that does not name the checkpoint it points to.
 *
 * rename and renameat2 are wrapped below (this executable's definitions take the
 * place of libc's for the library linked into it) so that a test can make one of
 * them fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "trainer/checkpoint.h"

/* ---- failure injection ---------------------------------------------------------------- */
static int exchange_errno;    /* renameat2 with RENAME_EXCHANGE fails with this, when set */
static const char *fail_from; /* rename(from, ...) whose from ends with this fails (EIO) */

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags) {
    if ((flags & RENAME_EXCHANGE) && exchange_errno) {
        errno = exchange_errno;
        return -1;
    }
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

int rename(const char *from, const char *to) {
    size_t n = fail_from ? strlen(fail_from) : 0, m = strlen(from);
    if (n && m >= n && !strcmp(from + m - n, fail_from)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0u);
}

/* ---- helpers -------------------------------------------------------------------------- */
typedef struct {
    char dir[256];
    et_hf_config cfg;
    et_lora lora;
    float *m, *v;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/et_test_checkpoint_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    et_hf_config_init(&f->cfg, ET_ARCH_LLAMA);
    f->cfg.vocab_size = 50;
    f->cfg.hidden_size = 32;
    f->cfg.intermediate_size = 64;
    f->cfg.num_layers = 1;
    f->cfg.num_heads = 2;
    f->cfg.num_kv_heads = 2;
    f->cfg.head_dim = 16;
    et_error err;
    assert_int_equal(et_lora_create(&f->lora, &f->cfg, 4, 8.0f, 0, 0.0f,
                                    (1u << ET_PROJ_Q) | (1u << ET_PROJ_V), &err), 0);
    f->m = calloc((size_t)f->lora.n_params, sizeof(float));
    f->v = calloc((size_t)f->lora.n_params, sizeof(float));
    exchange_errno = 0;
    fail_from = NULL;
    *state = f;
    return 0;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state) {
    fixture *f = *state;
    exchange_errno = 0;
    fail_from = NULL;
    remove_tree(f->dir);
    et_lora_free(&f->lora);
    free(f->m);
    free(f->v);
    free(f);
    return 0;
}

/* Fills the state with `value` and saves it as step `step`. */
static int save(fixture *f, int64_t step, float value, const char *recipe, et_error *err) {
    for (int64_t i = 0; i < f->lora.n_params; i++) f->lora.params[i] = f->m[i] = f->v[i] = value;
    et_checkpoint_out c = {step, f->m, f->v, NULL, recipe, 0};
    return et_checkpoint_save(f->dir, &f->lora, &c, err);
}

/* Loads latest; returns the value every parameter holds (asserting they agree). */
static float load(fixture *f, int64_t want_step, char **recipe) {
    et_error err;
    int64_t step = -1;
    memset(f->lora.params, 0, sizeof(float) * (size_t)f->lora.n_params);
    int rc = et_checkpoint_load_latest(f->dir, &f->lora, f->m, f->v, &step, NULL, recipe, &err);
    if (rc) fail_msg("load: %s", err.msg);
    assert_int_equal(step, want_step);
    float x = f->lora.params[0];
    for (int64_t i = 0; i < f->lora.n_params; i++) {
        assert_true(f->lora.params[i] == x);
        assert_true(f->m[i] == x && f->v[i] == x);
    }
    return x;
}

static void write_file(const char *path, const char *text) {
    FILE *o = fopen(path, "w");
    assert_non_null(o);
    fputs(text, o);
    fclose(o);
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Entries of checkpoints/ whose name starts with `prefix`. */
static int count_entries(const fixture *f, const char *prefix) {
    char p[512];
    snprintf(p, sizeof p, "%s/checkpoints", f->dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

/* ---- tests ---------------------------------------------------------------------------- */
static void round_trip_with_recipe(void **state) {
    fixture *f = *state;
    et_error err;
    const char *recipe = "# Resolved\nlora:\n  alpha: 16\n  note: \"a:b\\n\"\n";
    assert_int_equal(save(f, 4, 1.5f, recipe, &err), 0);
    char *got = NULL;
    assert_true(load(f, 4, &got) == 1.5f);
    assert_non_null(got);
    assert_string_equal(got, recipe);
    free(got);
    /* without a recipe (as an older ehrtune's checkpoint): NULL, not an error */
    assert_int_equal(save(f, 8, 2.5f, NULL, &err), 0);
    got = (char *)"x";
    assert_true(load(f, 8, &got) == 2.5f);
    assert_null(got);
}

/* A resumed run re-saves step 8, whose folder holds a file ehrtune did not write. The
 * save succeeds; the user's file is kept (aside, not deleted). */
static void resave_over_stray_file(void **state) {
    fixture *f = *state;
    et_error err;
    char p[512];
    assert_int_equal(save(f, 8, 1.0f, NULL, &err), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step-8/NOTE", f->dir);
    write_file(p, "mine\n");
    snprintf(p, sizeof p, "%s/checkpoints/latest", f->dir);
    write_file(p, "step-8\n");
    int rc = save(f, 8, 2.0f, NULL, &err);
    if (rc) fail_msg("re-save over a stray file: %s", err.msg);
    assert_true(load(f, 8, NULL) == 2.0f);
    /* the note survives somewhere under checkpoints/ (the old folder set aside) */
    assert_int_equal(count_entries(f, ".old-step-8-"), 1);
    assert_int_equal(count_entries(f, ".tmp-step-"), 0);
    /* the same once more through the move-aside path (no RENAME_EXCHANGE) */
    exchange_errno = EINVAL;
    snprintf(p, sizeof p, "%s/checkpoints/step-8/NOTE", f->dir);
    write_file(p, "mine again\n");
    rc = save(f, 8, 3.0f, NULL, &err);
    if (rc) fail_msg("re-save over a stray file without exchange: %s", err.msg);
    assert_true(load(f, 8, NULL) == 3.0f);
    assert_int_equal(count_entries(f, ".old-step-8-"), 2);
    assert_int_equal(count_entries(f, ".tmp-step-"), 0);
}

/* The new folder cannot be put in place: the old checkpoint stays, whole and loadable
 * (the old code had deleted its state.safetensors first). */
static void failed_resave_keeps_old_state(void **state) {
    fixture *f = *state;
    et_error err;
    char p[512];
    assert_int_equal(save(f, 8, 1.0f, "recipe one\n", &err), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step-8/NOTE", f->dir);
    write_file(p, "mine\n");
    /* exchange refused by the file system, then the move into place fails */
    exchange_errno = EINVAL;
    fail_from = "/.tmp-step-8";
    assert_int_not_equal(save(f, 8, 2.0f, "recipe two\n", &err), 0);
    assert_non_null(strstr(err.msg, "step-8"));
    fail_from = NULL;
    exchange_errno = 0;
    snprintf(p, sizeof p, "%s/checkpoints/step-8/state.safetensors", f->dir);
    assert_true(exists(p));
    snprintf(p, sizeof p, "%s/checkpoints/step-8/NOTE", f->dir);
    assert_true(exists(p));
    char *recipe = NULL;
    assert_true(load(f, 8, &recipe) == 1.0f);
    assert_string_equal(recipe, "recipe one\n");
    free(recipe);
    assert_int_equal(count_entries(f, ".old-step-"), 0);
    assert_int_equal(count_entries(f, ".tmp-step-"), 0);
    /* the swap itself fails (any error but "not supported"): nothing moves */
    exchange_errno = EIO;
    assert_int_not_equal(save(f, 8, 3.0f, NULL, &err), 0);
    exchange_errno = 0;
    assert_true(load(f, 8, NULL) == 1.0f);
    /* the old folder could not even be moved aside */
    exchange_errno = EINVAL;
    fail_from = "/step-8";
    assert_int_not_equal(save(f, 8, 4.0f, NULL, &err), 0);
    fail_from = NULL;
    exchange_errno = 0;
    assert_true(load(f, 8, NULL) == 1.0f);
    assert_int_equal(count_entries(f, ".tmp-step-"), 0);
}

/* `latest` must name step-N, N the step stored in that folder. */
static void corrupt_latest_refused(void **state) {
    fixture *f = *state;
    et_error err;
    char latest[512];
    int64_t step;
    assert_int_equal(save(f, 4, 1.0f, NULL, &err), 0);
    assert_int_equal(save(f, 8, 2.0f, NULL, &err), 0);
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", f->dir);
    static const char *const bad[] = {"garbage\n", "step-\n", "step-../step-4\n", "step-4x\n",
                                      "step--4\n", "step-12\n", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(latest, bad[i]);
        err.msg[0] = 0;
        assert_int_equal(et_checkpoint_load_latest(f->dir, &f->lora, f->m, f->v, &step, NULL,
                                                   NULL, &err), -1);
        assert_true(err.msg[0]);
    }
    /* a pointer to another step's folder renamed by hand: step-8's name, step 4 inside */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/checkpoints/step-8", f->dir);
    snprintf(b, sizeof b, "%s/checkpoints/step-8.bak", f->dir);
    assert_int_equal(rename(a, b), 0);
    snprintf(b, sizeof b, "%s/checkpoints/step-4", f->dir);
    assert_int_equal(rename(b, a), 0);
    write_file(latest, "step-8\n");
    assert_int_equal(et_checkpoint_load_latest(f->dir, &f->lora, f->m, f->v, &step, NULL, NULL,
                                               &err), -1);
    assert_non_null(strstr(err.msg, "step 4"));
    /* the intact pointer loads */
    snprintf(b, sizeof b, "%s/checkpoints/step-4", f->dir);
    assert_int_equal(rename(a, b), 0);
    write_file(latest, "step-4\n");
    assert_true(load(f, 4, NULL) == 1.0f);
}

static int has_step(const fixture *f, int step) {
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/checkpoints/step-%d/state.safetensors", f->dir, step);
    return stat(p, &st) == 0;
}

/* run.keep_checkpoints: the newest `keep` stay, older ones go once the new one is in
 * place; the one `latest` names always stays (here step 3, re-saved after step 5). */
static void keep_prunes_old_checkpoints(void **state) {
    fixture *f = *state;
    et_error err;
    for (int step = 1; step <= 5; step++) {
        for (int64_t i = 0; i < f->lora.n_params; i++) f->lora.params[i] = f->m[i] = f->v[i] = (float)step;
        et_checkpoint_out c = {step, f->m, f->v, NULL, NULL, 2};
        assert_int_equal(et_checkpoint_save(f->dir, &f->lora, &c, &err), 0);
    }
    assert_false(has_step(f, 1) || has_step(f, 2) || has_step(f, 3));
    assert_true(has_step(f, 4) && has_step(f, 5));
    assert_true(load(f, 5, NULL) == 5.0f);
    /* a resume from an older step re-saves it: it stays, with the two newest */
    for (int64_t i = 0; i < f->lora.n_params; i++) f->lora.params[i] = f->m[i] = f->v[i] = 3.0f;
    et_checkpoint_out c3 = {3, f->m, f->v, NULL, NULL, 2};
    assert_int_equal(et_checkpoint_save(f->dir, &f->lora, &c3, &err), 0);
    assert_true(has_step(f, 3) && has_step(f, 4) && has_step(f, 5));
    assert_true(load(f, 3, NULL) == 3.0f);
    /* keep 0: nothing is deleted */
    et_checkpoint_out c6 = {6, f->m, f->v, NULL, NULL, 0};
    assert_int_equal(et_checkpoint_save(f->dir, &f->lora, &c6, &err), 0);
    assert_true(has_step(f, 3) && has_step(f, 4) && has_step(f, 5) && has_step(f, 6));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_with_recipe, setup, teardown),
        cmocka_unit_test_setup_teardown(resave_over_stray_file, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_resave_keeps_old_state, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_latest_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_prunes_old_checkpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
