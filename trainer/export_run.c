/* Loading a finished run for export: recipe, manifest, adapter, base config, the
 * privacy record and a metrics summary, with every consistency check made before
 * anything is written. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/sha256.h"
#include "trainer/export.h"
#include "trainer/manifest.h"

const cJSON *et_export_manifest_get(const cJSON *root, const char *dotted) {
    char key[128];
    const cJSON *cur = root;
    while (cur && *dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n >= sizeof key) return NULL;
        memcpy(key, dotted, n);
        key[n] = 0;
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        dotted += n + (dot ? 1 : 0);
    }
    return cur;
}

double et_export_manifest_number(const cJSON *root, const char *dotted) {
    const cJSON *v = et_export_manifest_get(root, dotted);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "Infinity")) return INFINITY;
        if (!strcmp(v->valuestring, "-Infinity")) return -INFINITY;
    }
    return NAN;
}

static double jnum(const cJSON *root, const char *dotted) {
    return et_export_manifest_number(root, dotted);
}

static void jstr(const cJSON *root, const char *dotted, char *out, size_t n) {
    const cJSON *v = et_export_manifest_get(root, dotted);
    snprintf(out, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static void read_privacy(et_export_privacy *p, const cJSON *m) {
    memset(p, 0, sizeof *p);
    p->epsilon = jnum(m, "privacy.epsilon");
    p->delta = jnum(m, "privacy.delta");
    p->noise_multiplier = jnum(m, "privacy.noise_multiplier");
    p->sample_rate = jnum(m, "privacy.sample_rate");
    p->max_grad_norm = jnum(m, "privacy.max_grad_norm");
    p->steps = jnum(m, "privacy.steps");
    p->n_units = jnum(m, "privacy.units");
    if (isnan(p->n_units)) p->n_units = jnum(m, "privacy.n_units"); /* docs/manifest.md spelling */
    p->max_sequences_per_unit = jnum(m, "privacy.max_sequences_per_unit");
    jstr(m, "privacy.unit", p->unit, sizeof p->unit);
    jstr(m, "privacy.accountant", p->accountant, sizeof p->accountant);
    jstr(m, "privacy.adjacency", p->adjacency, sizeof p->adjacency);
    jstr(m, "privacy.sampling", p->sampling, sizeof p->sampling);
    p->dp = cJSON_IsTrue(et_export_manifest_get(m, "privacy.enabled")) && isfinite(p->epsilon) && p->epsilon >= 0 &&
            isfinite(p->delta);
    if (!p->dp) {
        snprintf(p->statement, sizeof p->statement,
                 "No formal privacy guarantee: this model was trained without differential "
                 "privacy. Treat it like the patient data it was trained on.");
        return;
    }
    snprintf(p->statement, sizeof p->statement,
             "(epsilon = %.4g, delta = %.3g) differential privacy at the %s level, computed by "
             "the %s accountant: adding or removing all training data of any one %s changes the "
             "probability of any outcome of training by at most a factor e^%.4g = %.4g, except "
             "with probability %.3g.",
             p->epsilon, p->delta, p->unit[0] ? p->unit : "(unrecorded)",
             p->accountant[0] ? p->accountant : "(unrecorded)", p->unit[0] ? p->unit : "unit",
             p->epsilon, exp(p->epsilon), p->delta);
}

static void read_metrics(et_export_metrics *mt, const char *path) {
    memset(mt, 0, sizeof *mt);
    mt->first_loss = mt->last_loss = NAN;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(j, "loss");
        if (cJSON_IsNumber(step) && cJSON_IsNumber(loss)) {
            if (mt->steps_logged == 0) mt->first_loss = loss->valuedouble;
            mt->last_loss = loss->valuedouble;
            mt->last_step = (int64_t)step->valuedouble;
            mt->steps_logged++;
            const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "tokens");
            const cJSON *tgt = cJSON_GetObjectItemCaseSensitive(j, "targets");
            if (cJSON_IsNumber(tok)) mt->tokens += tok->valuedouble;
            if (cJSON_IsNumber(tgt)) mt->targets += tgt->valuedouble;
        }
        cJSON_Delete(j);
    }
    fclose(f);
}

/* The base model folder: --base, else where the manifest says config.json was
 * read, else the recipe's model.path. */
static int resolve_base(et_export_run *r, const char *override, et_error *err) {
    if (override) {
        snprintf(r->base_dir, sizeof r->base_dir, "%s", override);
        return 0;
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(r->manifest, "files"), *f;
    cJSON_ArrayForEach(f, files) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(f, "role");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(f, "path");
        if (cJSON_IsString(role) && cJSON_IsString(path) &&
            !strcmp(role->valuestring, "base_model/config.json")) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s", path->valuestring);
            snprintf(r->base_dir, sizeof r->base_dir, "%s", dirname(tmp));
            return 0;
        }
    }
    if (!r->recipe.model.path)
        return et_fail(err, "%s: no base model recorded (neither manifest nor recipe); pass --base",
                       r->run_dir);
    snprintf(r->base_dir, sizeof r->base_dir, "%s", r->recipe.model.path);
    return 0;
}

/* The adapter weights are the ones the manifest recorded at the end of training: the
 * card and the privacy statement describe those weights, not whatever the folder holds
 * now (found 2026-11-26: replaced weights exported with the run's statement). */
static int check_adapter_digest(const et_export_run *r, const char *run_dir, et_error *err) {
    const cJSON *f = et_export_manifest_file(r->manifest, "output/adapter_model.safetensors");
    if (!f)
        return et_fail(err, "%s/manifest.json: no entry for output/adapter_model.safetensors (the "
                            "run did not finish, or the manifest was edited)",
                       run_dir);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(f, "sha256");
    if (!cJSON_IsString(sha))
        return et_fail(err, "%s/manifest.json: the adapter's entry has no sha256", run_dir);
    char path[4200], hex[65];
    snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", run_dir);
    if (et_sha256_file(path, hex, err)) return -1;
    if (strcmp(hex, sha->valuestring))
        return et_fail(err, "%s: sha256 %s differs from the run's manifest (%s): the adapter "
                            "changed after training; export the run's own adapter",
                       path, hex, sha->valuestring);
    return 0;
}

const cJSON *et_export_manifest_file(const cJSON *manifest, const char *role) {
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(manifest, "files")) {
        const cJSON *rl = cJSON_GetObjectItemCaseSensitive(f, "role");
        if (cJSON_IsString(rl) && !strcmp(rl->valuestring, role)) return f;
    }
    return NULL;
}

/* Each base file the manifest lists must be there with the recorded size;
 * config.json (and with verify, every file) must have the recorded sha256. */
static int check_base_identity(const et_export_run *r, int verify, et_error *err) {
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(r->manifest, "files"), *f;
    cJSON_ArrayForEach(f, files) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(f, "role");
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(f, "sha256");
        if (!cJSON_IsString(role) || strncmp(role->valuestring, "base_model/", 11)) continue;
        const char *name = role->valuestring + 11;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", r->base_dir, name);
        struct stat st;
        if (stat(path, &st) != 0)
            return et_fail(err, "%s: missing, but the run trained on a base model holding it "
                                "(manifest role %s) — wrong --base folder?",
                           path, role->valuestring);
        if (cJSON_IsNumber(bytes) && (double)st.st_size != bytes->valuedouble)
            return et_fail(err, "%s: %lld bytes, but the run's base model file had %.0f — this is "
                                "not the base model the adapter was trained on",
                           path, (long long)st.st_size, bytes->valuedouble);
        if ((verify || !strcmp(name, "config.json")) && cJSON_IsString(sha)) {
            char hex[65];
            if (et_sha256_file(path, hex, err)) return -1;
            if (strcmp(hex, sha->valuestring))
                return et_fail(err, "%s: sha256 %s differs from the run's manifest (%s) — this is "
                                    "not the base model the adapter was trained on",
                               path, hex, sha->valuestring);
        }
    }
    return 0;
}

static int check_adapter_matches_recipe(const et_export_run *r, et_error *err) {
    const et_recipe_lora *rl = &r->recipe.lora;
    const et_lora *l = &r->lora;
    if (l->r != rl->r || l->targets != rl->targets || l->use_rslora != (int)rl->use_rslora ||
        fabsf(l->alpha - (float)rl->alpha) > 1e-6f * fabsf((float)rl->alpha))
        return et_fail(err, "%s/adapter: adapter_config.json (r=%d, alpha=%g, rslora=%d, targets "
                            "mask %u) disagrees with config.resolved.yaml (r=%d, alpha=%d, "
                            "rslora=%d, targets mask %u) — the adapter was replaced after training?",
                       r->run_dir, l->r, l->alpha, l->use_rslora, l->targets, rl->r, rl->alpha,
                       (int)rl->use_rslora, rl->targets);
    return 0;
}

/* Shortest decimal that reads back as the same double. */
static void exact_number(char *out, size_t n, double v) {
    snprintf(out, n, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, n, "%.17g", v);
}

static int add_meta(et_export_run *r, int *k, const char *key, const char *value) {
    if (*k + 2 >= (int)(sizeof r->metadata / sizeof *r->metadata)) return -1;
    r->metadata[*k] = strdup(key);
    r->metadata[*k + 1] = strdup(value ? value : "");
    if (!r->metadata[*k] || !r->metadata[*k + 1]) return -1;
    *k += 2;
    return 0;
}

/* ehrtune's own keys in every weights file it exports: which code, which run
 * (the manifest's digest ties the weights to their audit record), and the
 * guarantee, so it travels with the weights even without the card. */
static int build_metadata(et_export_run *r, et_error *err) {
    char code[128], exe[80], num[64];
    jstr(r->manifest, "code.version", code, sizeof code);
    jstr(r->manifest, "code.executable_sha256", exe, sizeof exe);
    const et_export_privacy *p = &r->privacy;
    int k = 0, bad = 0;
    bad |= add_meta(r, &k, "ehrtune_version", code[0] ? code : "unknown");
    bad |= add_meta(r, &k, "ehrtune_export_version", r->export_version);
    if (exe[0]) bad |= add_meta(r, &k, "ehrtune_executable_sha256", exe);
    bad |= add_meta(r, &k, "ehrtune_manifest_sha256", r->manifest_sha256);
    bad |= add_meta(r, &k, "ehrtune_privacy", p->statement);
    bad |= add_meta(r, &k, "ehrtune_dp", p->dp ? "true" : "false");
    if (p->dp) {
        exact_number(num, sizeof num, p->epsilon);
        bad |= add_meta(r, &k, "ehrtune_dp_epsilon", num);
        exact_number(num, sizeof num, p->delta);
        bad |= add_meta(r, &k, "ehrtune_dp_delta", num);
        bad |= add_meta(r, &k, "ehrtune_dp_unit", p->unit);
        bad |= add_meta(r, &k, "ehrtune_dp_accountant", p->accountant);
    }
    r->metadata[k] = NULL;
    return bad ? et_fail(err, "out of memory") : 0;
}

int et_export_run_open(et_export_run *r, const char *run_dir, const char *base_override,
                       int verify_base, const char *export_version, et_error *err) {
    memset(r, 0, sizeof *r);
    et_recipe_init(&r->recipe);
    snprintf(r->run_dir, sizeof r->run_dir, "%s", run_dir);
    r->export_version = export_version ? export_version : "unknown";
    char path[4400];
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        et_fail(err, "%s: no such run directory", run_dir);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/manifest.json", run_dir);
    if (stat(path, &st) != 0) {
        et_fail(err, "%s: no manifest.json — not an ehrtune run directory (or a run that never "
                     "started)", run_dir);
        goto fail;
    }
    if (!(r->manifest = et_manifest_read_json(path, err))) goto fail;
    if (et_sha256_file(path, r->manifest_sha256, err)) goto fail;
    const cJSON *status = et_export_manifest_get(r->manifest, "run.status");
    if (!cJSON_IsString(status) || strncmp(status->valuestring, "completed", 9)) {
        et_fail(err, "%s: the run has not finished (manifest run.status is \"%s\"); export needs "
                     "the final adapter: continue it with `ehrtune train RECIPE --resume`",
                run_dir, cJSON_IsString(status) ? status->valuestring : "missing");
        goto fail;
    }
    snprintf(path, sizeof path, "%s/config.resolved.yaml", run_dir);
    if (et_recipe_load(&r->recipe, path, err)) goto fail;
    if (resolve_base(r, base_override, err)) goto fail;
    snprintf(path, sizeof path, "%s/config.json", r->base_dir);
    if (et_hf_config_load(&r->cfg, path, err)) {
        et_wrap(err, "base model (%s)", base_override ? "--base"
                                        : "where the run read it; pass --base DIR if it moved");
        goto fail;
    }
    snprintf(path, sizeof path, "%s/adapter", run_dir);
    if (stat(path, &st) != 0) {
        et_fail(err, "%s: no adapter/ folder — the run did not finish", run_dir);
        goto fail;
    }
    if (check_adapter_digest(r, run_dir, err)) goto fail;
    if (et_lora_load_peft(&r->lora, &r->cfg, path, err)) goto fail; /* frees itself on failure */
    if (check_adapter_matches_recipe(r, err) || check_base_identity(r, verify_base, err)) goto fail;
    read_privacy(&r->privacy, r->manifest);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    read_metrics(&r->metrics, path);
    snprintf(path, sizeof path, "%s/eval.json", run_dir);
    if (stat(path, &st) == 0 && !(r->eval = et_manifest_read_json(path, err))) goto fail;
    if (build_metadata(r, err)) goto fail;
    return 0;
fail:
    et_export_run_close(r);
    return -1;
}

void et_export_run_close(et_export_run *r) {
    if (r->lora.params) et_lora_free(&r->lora);
    et_recipe_free(&r->recipe);
    cJSON_Delete(r->manifest);
    cJSON_Delete(r->eval);
    for (int i = 0; r->metadata[i]; i++) free(r->metadata[i]);
    memset(r, 0, sizeof *r);
}
