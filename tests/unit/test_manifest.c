/* manifest.json: written files parse back with cJSON and carry the right sizes and
 * digests (checked against et_sha256_hex of the bytes the test wrote, and against
 * `sha256sum` where present), nested keys land where their dotted names say, the
 * file is 0600, and any failure leaves no manifest behind. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "data/sha256.h"
#include "trainer/manifest.h"

typedef struct {
    char dir[64];
} fixture;

static void write_file(const char *dir, const char *name, const char *content) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
}

/* Removes the test folder tree (two levels: the model folder and its subfolder). */
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/et_manifest_XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..")) n++;
    closedir(d);
    return n;
}

static cJSON *parse_file(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static const cJSON *at(const cJSON *obj, const char *a, const char *b, const char *c) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (x && b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (x && c) x = cJSON_GetObjectItemCaseSensitive(x, c);
    assert_non_null(x);
    return x;
}

static void expect_entry(const cJSON *entry, const char *role, const char *path,
                         const char *content) {
    assert_string_equal(at(entry, "role", NULL, NULL)->valuestring, role);
    assert_string_equal(at(entry, "path", NULL, NULL)->valuestring, path);
    assert_true(at(entry, "bytes", NULL, NULL)->valuedouble == (double)strlen(content));
    char hex[65];
    et_sha256_hex(content, strlen(content), hex);
    assert_string_equal(at(entry, "sha256", NULL, NULL)->valuestring, hex);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "sha256sum '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = {0};
    char *got = fgets(line, sizeof line, p);
    const int rc = pclose(p);
    if (rc == 0) { /* the system tool agrees, where it exists */
        assert_non_null(got);
        assert_memory_equal(line, hex, 64);
    } else if (system("command -v sha256sum > /dev/null 2>&1") == 0) {
        fail_msg("sha256sum exists but failed (exit %d)", rc); /* a failure, not a skip */
    }
}

static void writes_files_nested_keys_and_environment(void **state) {
    fixture *fx = *state;
    char model[128], sub[160], corpus[128], recipe[128], out[128], p[256];
    snprintf(model, sizeof model, "%s/model", fx->dir);
    snprintf(sub, sizeof sub, "%s/subdir.json", model); /* a folder that matches: skipped */
    assert_int_equal(mkdir(model, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(model, "tokenizer.json", "{\"model\": {}}");
    write_file(model, "model.safetensors", "not really a safetensors file");
    write_file(model, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"]}");
    write_file(model, "README.md", "excluded by the filter");
    write_file(sub, "inner.json", "not descended into");
    write_file(fx->dir, "corpus.h5", "corpus bytes");
    write_file(fx->dir, "recipe.yaml", "lora:\n  r: 8\n");
    snprintf(corpus, sizeof corpus, "%s/corpus.h5", fx->dir);
    snprintf(recipe, sizeof recipe, "%s/recipe.yaml", fx->dir);
    snprintf(out, sizeof out, "%s/manifest.json", fx->dir);

    et_manifest *m = et_manifest_new();
    assert_non_null(m);
    et_error err = {{0}};
    assert_int_equal(et_manifest_add_file(m, "corpus", corpus, &err), 0);
    char model_slash[140];
    snprintf(model_slash, sizeof model_slash, "%s/", model); /* trailing slash tolerated */
    assert_int_equal(et_manifest_add_dir_files(m, "base_model", model_slash, NULL, &err), 0);
    assert_int_equal(et_manifest_add_file(m, "recipe", recipe, &err), 0);
    et_manifest_set_str(m, "run.started", "2025-01-01T00:00:00Z");
    et_manifest_set_num(m, "privacy.epsilon", 2.0);
    et_manifest_set_num(m, "privacy.epsilon", 3.5); /* last value wins */
    et_manifest_set_num(m, "privacy.delta", 1e-7);
    et_manifest_set_num(m, "privacy.noise_free_epsilon", 1.0 / 0.0);
    et_manifest_set_bool(m, "privacy.poisson_sampling", true);
    et_manifest_set_str(m, "a.b.c.d", "deep");
    cJSON *acct = cJSON_CreateObject();
    cJSON_AddStringToObject(acct, "name", "prv");
    cJSON_AddNumberToObject(acct, "steps", 1000);
    et_manifest_set_json(m, "privacy.accountant", acct);
    et_manifest_add_environment(m, "0.1.0-test");
    assert_int_equal(et_manifest_write(m, out, &err), 0);
    et_manifest_free(m);

    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_entries(fx->dir), 4); /* corpus, recipe, model/, manifest: no temp */

    cJSON *j = parse_file(out);
    assert_string_equal(at(j, "manifest", "format", NULL)->valuestring, "ehrtune-manifest");
    assert_int_equal(at(j, "manifest", "version", NULL)->valueint, 1);
    const char *written = at(j, "manifest", "written_utc", NULL)->valuestring;
    assert_int_equal(strlen(written), 20);
    assert_true(written[10] == 'T' && written[19] == 'Z');

    const cJSON *files = at(j, "files", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(files), 5);
    expect_entry(cJSON_GetArrayItem(files, 0), "corpus", corpus, "corpus bytes");
    snprintf(p, sizeof p, "%s/config.json", model); /* sorted by name */
    expect_entry(cJSON_GetArrayItem(files, 1), "base_model/config.json", p,
                 "{\"architectures\": [\"LlamaForCausalLM\"]}");
    snprintf(p, sizeof p, "%s/model.safetensors", model);
    expect_entry(cJSON_GetArrayItem(files, 2), "base_model/model.safetensors", p,
                 "not really a safetensors file");
    snprintf(p, sizeof p, "%s/tokenizer.json", model);
    expect_entry(cJSON_GetArrayItem(files, 3), "base_model/tokenizer.json", p, "{\"model\": {}}");
    expect_entry(cJSON_GetArrayItem(files, 4), "recipe", recipe, "lora:\n  r: 8\n");

    assert_string_equal(at(j, "run", "started", NULL)->valuestring, "2025-01-01T00:00:00Z");
    assert_true(at(j, "privacy", "epsilon", NULL)->valuedouble == 3.5);
    assert_true(at(j, "privacy", "delta", NULL)->valuedouble == 1e-7);
    assert_string_equal(at(j, "privacy", "noise_free_epsilon", NULL)->valuestring, "Infinity");
    assert_true(cJSON_IsTrue(at(j, "privacy", "poisson_sampling", NULL)));
    assert_string_equal(at(j, "privacy", "accountant", "name")->valuestring, "prv");
    assert_int_equal(at(j, "privacy", "accountant", "steps")->valueint, 1000);
    assert_string_equal(at(at(j, "a", "b", NULL), "c", "d", NULL)->valuestring, "deep");

    assert_string_equal(at(j, "code", "version", NULL)->valuestring, "0.1.0-test");
    /* The executable is this test binary: its recorded digest must be its digest. */
    char exe_hex[65];
    assert_int_equal(et_sha256_file("/proc/self/exe", exe_hex, &err), 0);
    assert_string_equal(at(j, "code", "executable_sha256", NULL)->valuestring, exe_hex);
    assert_true(cJSON_IsBool(at(j, "code", "cuda_compiled", NULL)));
    char host[256] = {0};
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    assert_string_equal(at(j, "host", "hostname", NULL)->valuestring, host);
    assert_string_equal(at(j, "host", "os", "sysname")->valuestring, "Linux");
    assert_int_equal(at(j, "host", "logical_cores", NULL)->valueint, sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(at(j, "host", "openmp_max_threads", NULL)->valueint >= 1);
    assert_true(at(j, "host", "memory_total_bytes", NULL)->valuedouble > 1e6);
    const cJSON *cpu = at(j, "host", "cpu_model", NULL); /* null where /proc has no name */
    assert_true(cJSON_IsNull(cpu) || (cJSON_IsString(cpu) && cpu->valuestring[0]));
    assert_int_equal(strlen(at(j, "host", "recorded_utc", NULL)->valuestring), 20);
    cJSON_Delete(j);
}

static void missing_file_names_it_and_writes_nothing(void **state) {
    fixture *fx = *state;
    char out[128], missing[128];
    snprintf(out, sizeof out, "%s/manifest.json", fx->dir);
    snprintf(missing, sizeof missing, "%s/no-such-corpus.h5", fx->dir);
    et_manifest *m = et_manifest_new();
    et_error err = {{0}};
    assert_int_not_equal(et_manifest_add_file(m, "corpus", missing, &err), 0);
    assert_non_null(strstr(err.msg, missing));
    et_manifest_set_num(m, "privacy.epsilon", 1.0);
    assert_int_not_equal(et_manifest_write(m, out, &err), 0);
    assert_non_null(strstr(err.msg, missing)); /* the refusal says why */
    assert_non_null(strstr(err.msg, "incomplete"));
    et_manifest_free(m);
    assert_int_equal(count_entries(fx->dir), 0); /* no manifest, no temp file */
}

static void bad_dir_and_duplicate_role_are_errors(void **state) {
    fixture *fx = *state;
    char model[128], out[128];
    snprintf(model, sizeof model, "%s/model", fx->dir);
    snprintf(out, sizeof out, "%s/manifest.json", fx->dir);
    et_error err = {{0}};

    et_manifest *m = et_manifest_new();
    assert_int_not_equal(et_manifest_add_dir_files(m, "base_model", model, NULL, &err), 0);
    assert_non_null(strstr(err.msg, model));
    et_manifest_free(m);

    assert_int_equal(mkdir(model, 0700), 0);
    write_file(model, "README.md", "no weights here");
    m = et_manifest_new();
    assert_int_not_equal(et_manifest_add_dir_files(m, "base_model", model, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "no regular file"));
    et_manifest_free(m);

    /* A custom filter picks the file up; adding the folder twice repeats roles. */
    m = et_manifest_new();
    assert_int_equal(et_manifest_add_dir_files(m, "docs", model, ".txt,.md", &err), 0);
    assert_int_not_equal(et_manifest_add_dir_files(m, "docs", model, ".md", &err), 0);
    assert_non_null(strstr(err.msg, "docs/README.md"));
    assert_int_not_equal(et_manifest_write(m, out, &err), 0);
    et_manifest_free(m);
    assert_int_equal(count_entries(fx->dir), 1); /* only model/ */
}

static void misused_key_refuses_write(void **state) {
    fixture *fx = *state;
    char out[128];
    snprintf(out, sizeof out, "%s/manifest.json", fx->dir);
    et_error err = {{0}};

    et_manifest *m = et_manifest_new();
    et_manifest_set_num(m, "privacy.epsilon", 1.0);
    et_manifest_set_num(m, "privacy.epsilon.value", 2.0); /* epsilon is not an object */
    assert_int_not_equal(et_manifest_write(m, out, &err), 0);
    assert_non_null(strstr(err.msg, "privacy.epsilon.value"));
    et_manifest_free(m);

    m = et_manifest_new();
    et_manifest_set_str(m, "files.extra", "x"); /* reserved */
    assert_int_not_equal(et_manifest_write(m, out, &err), 0);
    assert_non_null(strstr(err.msg, "reserved"));
    et_manifest_free(m);

    m = et_manifest_new();
    et_manifest_set_bool(m, "run..done", true);
    assert_int_not_equal(et_manifest_write(m, out, &err), 0);
    assert_non_null(strstr(err.msg, "run..done"));
    et_manifest_free(m);
    assert_int_equal(count_entries(fx->dir), 0);

    /* Writing into a folder that does not exist names the path. */
    char nowhere[160];
    snprintf(nowhere, sizeof nowhere, "%s/missing-dir/manifest.json", fx->dir);
    m = et_manifest_new();
    assert_int_not_equal(et_manifest_write(m, nowhere, &err), 0);
    assert_non_null(strstr(err.msg, nowhere));
    et_manifest_free(m);
}

static void replaces_existing_manifest_atomically(void **state) {
    fixture *fx = *state;
    char out[128];
    snprintf(out, sizeof out, "%s/manifest.json", fx->dir);
    write_file(fx->dir, "manifest.json", "old");
    chmod(out, 0644);
    et_error err = {{0}};
    et_manifest *m = et_manifest_new();
    et_manifest_set_str(m, "run.status", "finished");
    assert_int_equal(et_manifest_write(m, out, &err), 0);
    et_manifest_free(m);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    cJSON *j = parse_file(out);
    assert_string_equal(at(j, "run", "status", NULL)->valuestring, "finished");
    assert_int_equal(cJSON_GetArraySize(at(j, "files", NULL, NULL)), 0);
    cJSON_Delete(j);
    assert_int_equal(count_entries(fx->dir), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_files_nested_keys_and_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_names_it_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_dir_and_duplicate_role_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(misused_key_refuses_write, setup, teardown),
        cmocka_unit_test_setup_teardown(replaces_existing_manifest_atomically, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
