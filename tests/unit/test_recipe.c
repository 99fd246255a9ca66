/* Recipe YAML: the shipped recipes load, defaults, error messages (with line and
 * suggestion), overrides, the resolved write-out round trip and the privacy rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/recipe.h"

/* The smallest valid recipe: the two required keys. */
#define MINIMAL "model:\n  path: m\ndata:\n  train: c.h5\n"

static void load_ok(et_recipe *r, const char *yaml) {
    et_error err = {{0}};
    if (et_recipe_load_string(r, yaml, "recipes/x.yaml", &err)) fail_msg("load failed: %s", err.msg);
}

/* Loads `yaml` (as recipes/x.yaml), expects failure with exactly `msg`. */
static void load_fails_with(const char *yaml, const char *msg) {
    et_recipe r;
    et_error err = {{0}};
    int rc = et_recipe_load_string(&r, yaml, "recipes/x.yaml", &err);
    if (rc == 0) fail_msg("expected failure '%s', but the recipe loaded", msg);
    assert_string_equal(err.msg, msg);
    /* A failed load leaves nothing to free (and freeing is still safe). */
    assert_null(r.model.path);
    et_recipe_free(&r);
}

/* Loads `yaml`, then expects et_recipe_validate to fail with a message containing `part`. */
static void validate_fails_with(const char *yaml, const char *part) {
    et_recipe r;
    et_error err = {{0}};
    load_ok(&r, yaml);
    assert_int_not_equal(et_recipe_validate(&r, &err), 0);
    if (!strstr(err.msg, part)) fail_msg("message '%s' lacks '%s'", err.msg, part);
    et_recipe_free(&r);
}

static void validate_ok(const char *yaml) {
    et_recipe r;
    et_error err = {{0}};
    load_ok(&r, yaml);
    if (et_recipe_validate(&r, &err)) fail_msg("validate failed: %s", err.msg);
    et_recipe_free(&r);
}

/* ---------------------------------------------------------------------------------- */

static void every_shipped_recipe_loads_and_validates(void **state) {
    (void)state;
    const char *dir = EHRTUNE_SOURCE_DIR "/recipes";
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        et_recipe r;
        et_error err = {{0}};
        if (et_recipe_load(&r, path, &err) || et_recipe_validate(&r, &err)) fail_msg("%s", err.msg);
        assert_string_equal(r.source, path);
        et_recipe_free(&r);
        n++;
    }
    closedir(d);
    assert_true(n >= 4); /* tiny-cpu, llama-3.2-1b-lora(-dp), llama-3-8b-lora */

    /* Spot-check the values the demo and the DP recipe promise. */
    et_recipe r;
    et_error err = {{0}};
    assert_int_equal(et_recipe_load(&r, EHRTUNE_SOURCE_DIR "/recipes/tiny-cpu.yaml", &err), 0);
    assert_string_equal(r.model.path, "runs/demo/model");
    assert_string_equal(r.data.train, "runs/demo/corpus.h5");
    assert_string_equal(r.run.out, "runs/demo/train");
    assert_int_equal(r.data.seq_len, 64);
    assert_int_equal(r.lora.r, 8);
    assert_int_equal(r.lora.alpha, 16);
    assert_true(r.optim.lr == 2e-2);
    assert_int_equal(r.optim.steps, 100);
    assert_int_equal(r.run.device, ET_RECIPE_DEVICE_CPU);
    assert_false(r.privacy.enabled);
    /* The demo can be switched to DP with a single override. */
    assert_int_equal(et_recipe_override(&r, "privacy.enabled=true", &err), 0);
    if (et_recipe_validate(&r, &err)) fail_msg("%s", err.msg);
    et_recipe_free(&r);

    assert_int_equal(et_recipe_load(&r, EHRTUNE_SOURCE_DIR "/recipes/llama-3.2-1b-lora-dp.yaml", &err), 0);
    assert_true(r.privacy.enabled);
    assert_int_equal(r.privacy.unit, ET_RECIPE_UNIT_PATIENT);
    assert_true(r.privacy.has_target_epsilon && r.privacy.target_epsilon == 8.0);
    assert_false(r.privacy.has_noise_multiplier);
    assert_false(r.privacy.has_delta); /* auto */
    assert_true(r.privacy.has_expected_batch_size && r.privacy.expected_batch_size == 256);
    assert_true(r.privacy.has_epochs && r.privacy.epochs == 3.0);
    assert_int_equal(r.privacy.accountant, ET_RECIPE_ACCOUNTANT_PRV);
    assert_true(r.privacy.secure_rng);
    et_recipe_free(&r);
}

static void defaults_fill_every_unset_key(void **state) {
    (void)state;
    et_recipe r;
    load_ok(&r, MINIMAL);
    assert_string_equal(r.model.path, "m");
    assert_int_equal(r.model.quantize, ET_RECIPE_QUANT_NONE);
    assert_int_equal(r.model.dtype, ET_RECIPE_DTYPE_AUTO);

    assert_int_equal(r.lora.r, 16);
    assert_int_equal(r.lora.alpha, 32);
    assert_true(r.lora.dropout == 0.05);
    assert_int_equal(r.lora.targets, 0x7f);
    assert_int_equal(r.lora.targets, ET_LORA_ALL_TARGETS);
    assert_false(r.lora.use_rslora);
    assert_int_equal(r.lora.init, ET_RECIPE_INIT_DEFAULT);

    assert_string_equal(r.data.train, "c.h5");
    assert_null(r.data.val);
    assert_int_equal(r.data.seq_len, 1024);
    assert_int_equal(r.data.split, ET_RECIPE_SPLIT_TRAIN);

    assert_true(r.optim.lr == 2e-4);
    assert_int_equal(r.optim.schedule, ET_RECIPE_SCHED_COSINE);
    assert_int_equal(r.optim.warmup_steps, 0);
    assert_true(r.optim.weight_decay == 0.0);
    assert_true(r.optim.beta1 == 0.9);
    assert_true(r.optim.beta2 == 0.999);
    assert_true(r.optim.eps == 1e-8);
    assert_true(r.optim.max_grad_norm == 1.0);
    assert_int_equal(r.optim.grad_accum, 1);
    assert_int_equal(r.optim.steps, 0);
    assert_true(r.optim.epochs == 1.0);

    assert_false(r.privacy.enabled);
    assert_int_equal(r.privacy.unit, ET_RECIPE_UNIT_PATIENT);
    assert_false(r.privacy.has_target_epsilon || r.privacy.has_noise_multiplier || r.privacy.has_delta ||
                 r.privacy.has_sample_rate || r.privacy.has_expected_batch_size || r.privacy.has_epochs ||
                 r.privacy.has_steps);
    assert_true(r.privacy.max_grad_norm == 1.0);
    assert_int_equal(r.privacy.accountant, ET_RECIPE_ACCOUNTANT_PRV);
    assert_true(r.privacy.secure_rng);
    assert_int_equal(r.privacy.max_sequences_per_unit, 4);

    assert_string_equal(r.run.out, "runs/x"); /* runs/<recipe-file-stem> */
    assert_int_equal(r.run.device, ET_RECIPE_DEVICE_AUTO);
    assert_int_equal(r.run.micro_batch, 8);
    assert_int_equal(r.run.seed, 1234);
    assert_int_equal(r.run.checkpoint_every, 100);
    assert_int_equal(r.run.keep_checkpoints, 0);
    assert_int_equal(r.run.log_every, 1);
    assert_false(r.run.activation_checkpointing);
    assert_int_equal(r.run.max_steps, 0);
    et_error err = {{0}};
    assert_int_equal(et_recipe_validate(&r, &err), 0);
    et_recipe_free(&r);

    /* The enum name tables are the YAML spellings, in enum order. */
    assert_string_equal(et_lora_target_names[ET_LORA_Q], "q_proj");
    assert_string_equal(et_lora_target_names[ET_LORA_GATE], "gate_proj");
    assert_string_equal(et_lora_target_names[ET_LORA_DOWN], "down_proj");
    assert_string_equal(et_recipe_schedule_names[ET_RECIPE_SCHED_LINEAR], "linear");
    assert_string_equal(et_recipe_unit_names[ET_RECIPE_UNIT_SEQUENCE], "sequence");
}

static void explicit_values_are_read(void **state) {
    (void)state;
    et_recipe r;
    load_ok(&r, "model:\n  path: /models/Llama-3.2-1B\n  quantize: nf4\n  dtype: bf16\n"
                "lora:\n  r: 64\n  alpha: 16\n  dropout: 0\n  targets: [v_proj, q_proj]\n  use_rslora: yes\n"
                "  init: gaussian\n"
                "data:\n  train: 'd/n.h5'\n  val: \"d/v.h5\"\n  seq_len: 2\n  split: all\n"
                "optim:\n  lr: 3e-4\n  schedule: linear\n  steps: 500\n  epochs: 0.5\n"
                "privacy:\n  enabled: true\n  noise_multiplier: 1.1\n  delta: 1.0e-6\n  sample_rate: 0.01\n"
                "  accountant: rdp\n  secure_rng: false\n  unit: document\n"
                "run:\n  out: o\n  device: cuda\n  seed: 18446744073709551615\n  max_steps: 7\n");
    assert_string_equal(r.model.path, "/models/Llama-3.2-1B");
    assert_int_equal(r.model.quantize, ET_RECIPE_QUANT_NF4);
    assert_int_equal(r.model.dtype, ET_RECIPE_DTYPE_BF16);
    assert_int_equal(r.lora.r, 64);
    assert_int_equal(r.lora.alpha, 16);
    assert_true(r.lora.dropout == 0.0);
    assert_int_equal(r.lora.targets, ET_LORA_TARGET_BIT(ET_LORA_Q) | ET_LORA_TARGET_BIT(ET_LORA_V));
    assert_true(r.lora.use_rslora);
    assert_int_equal(r.lora.init, ET_RECIPE_INIT_GAUSSIAN);
    assert_string_equal(r.data.train, "d/n.h5");
    assert_string_equal(r.data.val, "d/v.h5");
    assert_int_equal(r.data.seq_len, 2);
    assert_int_equal(r.data.split, ET_RECIPE_SPLIT_ALL);
    assert_true(r.optim.lr == 3e-4);
    assert_int_equal(r.optim.schedule, ET_RECIPE_SCHED_LINEAR);
    assert_int_equal(r.optim.steps, 500);
    assert_true(r.optim.epochs == 0.5);
    assert_true(r.privacy.enabled);
    assert_true(r.privacy.has_noise_multiplier && r.privacy.noise_multiplier == 1.1);
    assert_true(r.privacy.has_delta && r.privacy.delta == 1e-6);
    assert_true(r.privacy.has_sample_rate && r.privacy.sample_rate == 0.01);
    assert_int_equal(r.privacy.accountant, ET_RECIPE_ACCOUNTANT_RDP);
    assert_false(r.privacy.secure_rng);
    assert_int_equal(r.privacy.unit, ET_RECIPE_UNIT_DOCUMENT);
    assert_string_equal(r.run.out, "o");
    assert_int_equal(r.run.device, ET_RECIPE_DEVICE_CUDA);
    assert_true(r.run.seed == UINT64_MAX);
    assert_int_equal(r.run.max_steps, 7);
    et_error err = {{0}};
    if (et_recipe_validate(&r, &err)) fail_msg("%s", err.msg);
    et_recipe_free(&r);
}

static void unknown_keys_name_the_line_and_suggest(void **state) {
    (void)state;
    load_fails_with("model:\n"           /* 1 */
                    "  path: m\n"        /* 2 */
                    "data:\n"            /* 3 */
                    "  train: c.h5\n"    /* 4 */
                    "lora:\n"            /* 5 */
                    "  r: 8\n"           /* 6 */
                    "  rank: 32\n",      /* 7 */
                    "recipes/x.yaml:7: unknown key 'lora.rank' — did you mean 'lora.r'?");
    load_fails_with(MINIMAL "lora:\n  dropuot: 0.1\n",
                    "recipes/x.yaml:6: unknown key 'lora.dropuot' — did you mean 'lora.dropout'?");
    /* A key that exists in another section points there. */
    load_fails_with(MINIMAL "optim:\n  seed: 1\n", "recipes/x.yaml:6: unknown key 'optim.seed' — did you mean 'run.seed'?");
    /* Sections: misspelt, or a key written at the top level. */
    load_fails_with(MINIMAL "optimizer:\n  lr: 1\n", "recipes/x.yaml:5: unknown section 'optimizer' — did you mean 'optim'?");
    load_fails_with("lr: 1e-4\n" MINIMAL, "recipes/x.yaml:1: unknown section 'lr' — did you mean 'optim.lr'?");
    /* Nothing close: list what the section has. */
    load_fails_with(MINIMAL "privacy:\n  zzzzzzzzzzzz: 1\n",
                    "recipes/x.yaml:6: unknown key 'privacy.zzzzzzzzzzzz' (keys of 'privacy': enabled, unit, "
                    "target_epsilon, noise_multiplier, delta, max_grad_norm, sample_rate, expected_batch_size, epochs, "
                    "steps, accountant, secure_rng, max_sequences_per_unit)");
}

static void bad_values_are_refused_with_the_line(void **state) {
    (void)state;
    {   /* deep flow nesting: refused before libyaml, whose scanner is quadratic in it */
        char *deep = malloc(200000);
        int at = snprintf(deep, 200000, "%s", MINIMAL "lora:\n  r: ");
        for (int i = 0; i < 60000; i++) deep[at++] = '[';
        for (int i = 0; i < 60000; i++) deep[at++] = ']';
        snprintf(deep + at, 200000 - (size_t)at, "\n");
        load_fails_with(deep, "recipes/x.yaml:6: brackets nest deeper than 32 levels; a recipe needs a few");
        free(deep);
        /* brackets inside quotes and comments are text, not nesting */
        et_recipe r;
        load_ok(&r, MINIMAL "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
                            "run:\n  out: \"runs/[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x\"\n");
        et_recipe_free(&r);
    }
    load_fails_with(MINIMAL "lora:\n  r: 0\n", "recipes/x.yaml:6: lora.r must be an integer >= 1; got '0'");
    load_fails_with(MINIMAL "lora:\n  r: 8.5\n", "recipes/x.yaml:6: lora.r must be an integer >= 1; got '8.5'");
    load_fails_with(MINIMAL "lora:\n  r: [1, 2]\n", "recipes/x.yaml:6: lora.r must be an integer >= 1; got a list");
    load_fails_with(MINIMAL "lora:\n  r:\n", "recipes/x.yaml:6: lora.r needs a value: an integer >= 1");
    load_fails_with(MINIMAL "lora:\n  dropout: 1.0\n", "recipes/x.yaml:6: lora.dropout must be a number in [0, 1); got '1.0'");
    load_fails_with(MINIMAL "lora:\n  dropout: -0.1\n", "recipes/x.yaml:6: lora.dropout must be a number in [0, 1); got '-0.1'");
    load_fails_with(MINIMAL "optim:\n  lr: 0\n", "recipes/x.yaml:6: optim.lr must be a number > 0; got '0'");
    load_fails_with(MINIMAL "optim:\n  lr: fast\n", "recipes/x.yaml:6: optim.lr must be a number > 0; got 'fast'");
    load_fails_with(MINIMAL "optim:\n  lr: .nan\n", "recipes/x.yaml:6: optim.lr must be a number > 0; got '.nan'");
    load_fails_with("data:\n  train: c.h5\n  seq_len: 1\n", "recipes/x.yaml:3: data.seq_len must be an integer >= 2; got '1'");
    load_fails_with(MINIMAL "run:\n  micro_batch: 0\n", "recipes/x.yaml:6: run.micro_batch must be an integer >= 1; got '0'");
    load_fails_with(MINIMAL "run:\n  seed: -1\n", "recipes/x.yaml:6: run.seed must be an integer in [0, 2^64); got '-1'");
    load_fails_with(MINIMAL "run:\n  activation_checkpointing: maybe\n",
                    "recipes/x.yaml:6: run.activation_checkpointing must be true or false; got 'maybe'");
    load_fails_with("model:\n  path: m\n  quantize: int8\n",
                    "recipes/x.yaml:3: model.quantize must be one of none, nf4; got 'int8'");
    load_fails_with(MINIMAL "optim:\n  schedule: [cosine]\n",
                    "recipes/x.yaml:6: optim.schedule must be one of constant, linear, cosine; got a list");
    load_fails_with(MINIMAL "privacy:\n  delta: 1\n", "recipes/x.yaml:6: privacy.delta must be a number in (0, 1), or auto; got '1'");
    load_fails_with(MINIMAL "privacy:\n  sample_rate: 1.5\n",
                    "recipes/x.yaml:6: privacy.sample_rate must be a number in (0, 1], or null; got '1.5'");
    /* Targets: unknown (with suggestion), duplicate, empty. */
    load_fails_with(MINIMAL "lora:\n  targets: [q_proj, qproj]\n",
                    "recipes/x.yaml:6: lora.targets: unknown module 'qproj' — did you mean 'q_proj'? (valid: q_proj, "
                    "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    load_fails_with(MINIMAL "lora:\n  targets:\n    - v_proj\n    - v_proj\n",
                    "recipes/x.yaml:7: lora.targets lists 'v_proj' twice");
    load_fails_with(MINIMAL "lora:\n  targets: []\n",
                    "recipes/x.yaml:6: lora.targets is empty; expected a non-empty list of q_proj, k_proj, v_proj, o_proj, "
                    "gate_proj, up_proj, down_proj");
    /* Structure: duplicates, non-mappings, YAML syntax, emptiness, extra documents. */
    load_fails_with(MINIMAL "lora:\n  r: 8\n  alpha: 16\n  r: 4\n",
                    "recipes/x.yaml:8: duplicate key 'lora.r' (first on line 6)");
    load_fails_with(MINIMAL "model:\n  dtype: bf16\n", "recipes/x.yaml:5: duplicate section 'model' (first on line 1)");
    load_fails_with(MINIMAL "lora: 8\n", "recipes/x.yaml:5: section 'lora' must be a mapping of key: value lines; got a scalar");
    load_fails_with(MINIMAL "lora:\n  - r\n", "recipes/x.yaml:6: section 'lora' must be a mapping of key: value lines; got a list");
    load_fails_with("- model\n", "recipes/x.yaml:1: a recipe is a mapping of sections (model:, lora:, data:, ...); got a list");
    load_fails_with("", "recipes/x.yaml: the recipe is empty; it needs at least model.path and data.train");
    load_fails_with(MINIMAL "---\n" MINIMAL,
                    "recipes/x.yaml:6: a recipe file holds one YAML document; found a second one");

    et_recipe r;
    et_error err = {{0}};
    assert_int_not_equal(et_recipe_load_string(&r, "model:\n  path: m\n lora: [\n", "recipes/x.yaml", &err), 0);
    if (strncmp(err.msg, "recipes/x.yaml:3: YAML syntax error: ", 37) != 0) fail_msg("got '%s'", err.msg);
    assert_int_not_equal(et_recipe_load_string(&r, "model:\n  path: m\n  dtype: [bf16\n", "recipes/x.yaml", &err), 0);
    if (!strstr(err.msg, "YAML syntax error")) fail_msg("got '%s'", err.msg);
    assert_int_not_equal(et_recipe_load_string(&r, "model:\n\tpath: m\n", "recipes/x.yaml", &err), 0);
    if (strncmp(err.msg, "recipes/x.yaml:2: YAML syntax error: ", 37) != 0 ||
        !strstr(err.msg, "YAML indents with spaces, not tabs"))
        fail_msg("got '%s'", err.msg);

    /* Missing files and missing required keys. */
    assert_int_not_equal(et_recipe_load(&r, "/nonexistent/r.yaml", &err), 0);
    if (strncmp(err.msg, "/nonexistent/r.yaml: cannot open recipe: ", 41) != 0) fail_msg("got '%s'", err.msg);
    validate_fails_with("data:\n  train: c.h5\n", "recipes/x.yaml: missing required key 'model.path'");
    validate_fails_with("model:\n  path: m\n", "recipes/x.yaml: missing required key 'data.train'");
    validate_fails_with(MINIMAL "optim:\n  steps: 10\n  warmup_steps: 11\n", "optim.warmup_steps (11) is larger than optim.steps (10)");
}

static void overrides_apply_and_explain_mistakes(void **state) {
    (void)state;
    et_recipe r;
    et_error err = {{0}};
    load_ok(&r, MINIMAL);

    assert_int_equal(et_recipe_override(&r, "lora.r=32", &err), 0);
    assert_int_equal(r.lora.r, 32);
    assert_int_equal(et_recipe_override(&r, "optim.lr=1e-3", &err), 0);
    assert_true(r.optim.lr == 1e-3);
    assert_int_equal(et_recipe_override(&r, "model.quantize=nf4", &err), 0);
    assert_int_equal(r.model.quantize, ET_RECIPE_QUANT_NF4);
    assert_int_equal(et_recipe_override(&r, "model.path=/models/with space/and:colon", &err), 0);
    assert_string_equal(r.model.path, "/models/with space/and:colon");
    assert_int_equal(et_recipe_override(&r, "run.out='#not a comment'", &err), 0);
    assert_string_equal(r.run.out, "#not a comment");

    /* Lists: flow YAML or comma-separated. */
    assert_int_equal(et_recipe_override(&r, "lora.targets=[q_proj, v_proj]", &err), 0);
    assert_int_equal(r.lora.targets, ET_LORA_TARGET_BIT(ET_LORA_Q) | ET_LORA_TARGET_BIT(ET_LORA_V));
    assert_int_equal(et_recipe_override(&r, "lora.targets=gate_proj,up_proj,down_proj", &err), 0);
    assert_int_equal(r.lora.targets, ET_LORA_TARGET_BIT(ET_LORA_GATE) | ET_LORA_TARGET_BIT(ET_LORA_UP) |
                                         ET_LORA_TARGET_BIT(ET_LORA_DOWN));

    /* Default-less keys: set, then unset with an empty value, null or auto. */
    assert_int_equal(et_recipe_override(&r, "data.val=v.h5", &err), 0);
    assert_string_equal(r.data.val, "v.h5");
    assert_int_equal(et_recipe_override(&r, "data.val=", &err), 0);
    assert_null(r.data.val);
    assert_int_equal(et_recipe_override(&r, "privacy.target_epsilon=3", &err), 0);
    assert_true(r.privacy.has_target_epsilon && r.privacy.target_epsilon == 3.0);
    assert_int_equal(et_recipe_override(&r, "privacy.target_epsilon=null", &err), 0);
    assert_false(r.privacy.has_target_epsilon);
    assert_int_equal(et_recipe_override(&r, "privacy.delta=1e-7", &err), 0);
    assert_true(r.privacy.has_delta && r.privacy.delta == 1e-7);
    assert_int_equal(et_recipe_override(&r, "privacy.delta=auto", &err), 0);
    assert_false(r.privacy.has_delta);
    /* one value per override: a second YAML document is refused, not dropped */
    assert_int_not_equal(et_recipe_override(&r, "lora.r=4\n---\n5", &err), 0);
    assert_non_null(strstr(err.msg, "more than one YAML document"));
    assert_int_equal(r.lora.r, 32);

    /* Mistakes: the message names the argument; the recipe is unchanged. */
    et_recipe before;
    load_ok(&before, MINIMAL);
    assert_int_equal(et_recipe_override(&before, "lora.r=32", &err), 0);
    assert_int_not_equal(et_recipe_override(&before, "lora.rnk=32", &err), 0);
    assert_string_equal(err.msg, "override 'lora.rnk=32': unknown key 'lora.rnk' — did you mean 'lora.r'?");
    assert_int_not_equal(et_recipe_override(&before, "optimizer.lr=1", &err), 0);
    assert_string_equal(err.msg, "override 'optimizer.lr=1': unknown key 'optimizer.lr' — did you mean 'optim.lr'?");
    assert_int_not_equal(et_recipe_override(&before, "r=4", &err), 0);
    assert_string_equal(err.msg, "override 'r=4': unknown key 'r' — did you mean 'lora.r'?");
    assert_int_not_equal(et_recipe_override(&before, "lora.r=0", &err), 0);
    assert_string_equal(err.msg, "override 'lora.r=0': lora.r must be an integer >= 1; got '0'");
    assert_int_not_equal(et_recipe_override(&before, "lora.r=", &err), 0);
    assert_string_equal(err.msg, "override 'lora.r=': lora.r needs a value: an integer >= 1");
    assert_int_not_equal(et_recipe_override(&before, "lora.r", &err), 0);
    assert_string_equal(err.msg, "override 'lora.r': expected section.key=value (e.g. lora.r=32)");
    assert_int_not_equal(et_recipe_override(&before, "lora.targets=q_proj,k_proj,q_proj", &err), 0);
    assert_string_equal(err.msg, "override 'lora.targets=q_proj,k_proj,q_proj': lora.targets lists 'q_proj' twice");
    assert_int_not_equal(et_recipe_override(&before, "lora.targets=[q_proj", &err), 0);
    if (!strstr(err.msg, "override 'lora.targets=[q_proj': the value is not a valid YAML")) fail_msg("got '%s'", err.msg);
    assert_int_not_equal(et_recipe_override(&before, "run.device=tpu", &err), 0);
    assert_string_equal(err.msg, "override 'run.device=tpu': run.device must be one of auto, cpu, cuda; got 'tpu'");
    assert_int_equal(before.lora.r, 32);
    assert_int_equal(before.lora.targets, ET_LORA_ALL_TARGETS);
    assert_int_equal(before.run.device, ET_RECIPE_DEVICE_AUTO);

    et_recipe_free(&before);
    et_recipe_free(&r);
}

/* write -> load gives an equal recipe; the file is 0600 and no temp file is left. */
static void round_trip(const et_recipe *r) {
    char dir[] = "/tmp/et_recipe_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/config.resolved.yaml", dir);
    et_error err = {{0}};
    if (et_recipe_write_yaml(r, path, &err)) fail_msg("%s", err.msg);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    et_recipe back;
    if (et_recipe_load(&back, path, &err)) fail_msg("%s", err.msg);
    assert_true(et_recipe_equal(r, &back));
    assert_string_equal(back.run.out, r->run.out);

    /* Equality is not trivially true: one changed field breaks it. */
    back.lora.dropout = nextafter(back.lora.dropout, 1.0);
    assert_false(et_recipe_equal(r, &back));
    et_recipe_free(&back);

    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    unlink(path);
    rmdir(dir);
}

static void write_then_load_gives_the_same_recipe(void **state) {
    (void)state;
    et_recipe r;
    /* Defaults only: unset keys come back unset (null / auto). */
    load_ok(&r, MINIMAL);
    round_trip(&r);
    et_recipe_free(&r);

    /* Everything changed, awkward strings and doubles included. */
    load_ok(&r, MINIMAL);
    const char *overrides[] = {
        "model.path=\"/models/we\\\"ird \\\\ path\\tnull: #x\"", "model.quantize=nf4", "model.dtype=fp32",
        "lora.r=7", "lora.alpha=13", "lora.dropout=0.1", "lora.targets=o_proj,down_proj", "lora.use_rslora=true",
        "lora.init=gaussian", "data.train='null'", "data.val=\"ünïcode/val.h5\"", "data.seq_len=3", "data.split=test",
        "optim.lr=3e-4", "optim.schedule=constant", "optim.warmup_steps=9", "optim.weight_decay=0.01",
        "optim.beta1=0.85", "optim.beta2=0.98765432109876543", "optim.eps=1e-300", "optim.max_grad_norm=0",
        "optim.grad_accum=3", "optim.steps=12345678901", "optim.epochs=2.5", "privacy.enabled=true",
        "privacy.unit=sequence", "privacy.noise_multiplier=0.7", "privacy.delta=1e-6",
        "privacy.max_grad_norm=0.3", "privacy.expected_batch_size=300", "privacy.steps=1000",
        "privacy.accountant=rdp", "privacy.secure_rng=off", "privacy.max_sequences_per_unit=2", "run.out=o/ut",
        "run.device=cpu", "run.micro_batch=5", "run.seed=18446744073709551615", "run.checkpoint_every=0", "run.keep_checkpoints=2",
        "run.log_every=3", "run.activation_checkpointing=true", "run.max_steps=77"};
    et_error err = {{0}};
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++)
        if (et_recipe_override(&r, overrides[i], &err)) fail_msg("%s", err.msg);
    assert_string_equal(r.model.path, "/models/we\"ird \\ path\tnull: #x");
    assert_string_equal(r.data.train, "null"); /* quoted: a string, not null */
    round_trip(&r);
    et_recipe_free(&r);
}

static void privacy_cross_field_rules(void **state) {
    (void)state;
    /* Off: half-filled privacy blocks are fine (switching DP on is one override). */
    validate_ok(MINIMAL "privacy:\n  enabled: false\n  target_epsilon: 8\n  noise_multiplier: 1\n");
    validate_ok(MINIMAL "privacy:\n");
    validate_ok(MINIMAL "privacy:\n  enabled: true\n  target_epsilon: 8\n");
    validate_ok(MINIMAL "privacy:\n  enabled: true\n  noise_multiplier: 1.0\n  sample_rate: 0.01\n  epochs: 2\n");

    validate_fails_with(MINIMAL "privacy:\n  enabled: true\n  target_epsilon: 8\n  noise_multiplier: 1\n",
                        "privacy: set exactly one of target_epsilon (sigma is calibrated to reach it) or "
                        "noise_multiplier (sigma given directly); both are set");
    validate_fails_with(MINIMAL "privacy:\n  enabled: true\n", "neither is set");
    validate_fails_with(MINIMAL "privacy:\n  enabled: true\n  target_epsilon: 8\n  sample_rate: 0.1\n"
                                "  expected_batch_size: 64\n",
                        "set at most one of sample_rate or expected_batch_size");
    validate_fails_with(MINIMAL "privacy:\n  enabled: true\n  target_epsilon: 8\n  epochs: 1\n  steps: 100\n",
                        "set at most one of epochs or steps");
    validate_fails_with(MINIMAL "optim:\n  steps: 50\nprivacy:\n  enabled: true\n  target_epsilon: 8\n  epochs: 1\n",
                        "the training length is set twice (privacy.epochs and optim.steps)");

    /* Overrides then validate: the CLI order. */
    et_recipe r;
    et_error err = {{0}};
    load_ok(&r, MINIMAL "privacy:\n  enabled: true\n  target_epsilon: 8\n");
    assert_int_equal(et_recipe_override(&r, "privacy.noise_multiplier=1.2", &err), 0);
    assert_int_not_equal(et_recipe_validate(&r, &err), 0);
    assert_string_equal(err.msg, "recipes/x.yaml: privacy: set exactly one of target_epsilon (sigma is calibrated to "
                                 "reach it) or noise_multiplier (sigma given directly); both are set");
    assert_int_equal(et_recipe_override(&r, "privacy.target_epsilon=", &err), 0);
    assert_int_equal(et_recipe_validate(&r, &err), 0);

    /* A struct filled in code meets the same ranges. */
    r.lora.dropout = 1.5;
    assert_int_not_equal(et_recipe_validate(&r, &err), 0);
    assert_string_equal(err.msg, "recipes/x.yaml: lora.dropout must be a number in [0, 1); got 1.5");
    et_recipe_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_shipped_recipe_loads_and_validates),
        cmocka_unit_test(defaults_fill_every_unset_key),
        cmocka_unit_test(explicit_values_are_read),
        cmocka_unit_test(unknown_keys_name_the_line_and_suggest),
        cmocka_unit_test(bad_values_are_refused_with_the_line),
        cmocka_unit_test(overrides_apply_and_explain_mistakes),
        cmocka_unit_test(write_then_load_gives_the_same_recipe),
        cmocka_unit_test(privacy_cross_field_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
