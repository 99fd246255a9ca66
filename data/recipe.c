/* Recipe YAML: parse (libyaml document API, which keeps a line for every node),
 * defaults, key=value overrides, validation and a resolved write-out.
 *
 * Everything about a key (section, name, type, where it lives in et_recipe, range,
 * default) is in one table, KEYS[], so that the parser, the override path, the
 * validator, the writer and the equality check cannot drift apart. */
#include "data/recipe.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

const char *const et_lora_target_names[ET_LORA_NUM_TARGETS] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const char *const et_recipe_quantize_names[2] = {"none", "nf4"};
const char *const et_recipe_dtype_names[3] = {"auto", "fp32", "bf16"};
const char *const et_recipe_lora_init_names[2] = {"default", "gaussian"};
const char *const et_recipe_split_names[4] = {"train", "val", "test", "all"};
const char *const et_recipe_schedule_names[3] = {"constant", "linear", "cosine"};
const char *const et_recipe_unit_names[3] = {"patient", "document", "sequence"};
const char *const et_recipe_accountant_names[2] = {"rdp", "prv"};
const char *const et_recipe_device_names[3] = {"auto", "cpu", "cuda"};

/* ------------------------------------------------------------------------------------ */
/* The key table                                                                        */

typedef enum { K_STRING, K_INT, K_INT64, K_UINT64, K_DOUBLE, K_BOOL, K_ENUM, K_TARGETS } key_type;

enum {
    F_REQUIRED = 1u << 0, /* string that must be set before validate passes */
    F_NULLABLE = 1u << 1, /* `null` means "unset" (has_* flag, or NULL string) */
    F_AUTO = 1u << 2,     /* the plain scalar `auto` also means "unset" (privacy.delta) */
    F_MIN_OPEN = 1u << 3, /* value > min (else >= min) */
    F_MAX_OPEN = 1u << 4, /* value < max (else <= max) */
};

typedef struct {
    const char *section, *key;
    key_type type;
    size_t offset;     /* of the value inside et_recipe */
    long has_offset;   /* of the bool has_* flag, or -1 */
    double min, max;   /* numeric range (see F_MIN_OPEN / F_MAX_OPEN) */
    unsigned flags;
    const char *const *names; /* K_ENUM: name table */
    int n_names;
    const char *expect; /* "an integer >= 1": what a valid value looks like */
} key_desc;

#define OFF(m) offsetof(et_recipe, m)
#define NOHAS (-1L)
#define HAS(m) ((long)offsetof(et_recipe, m))
#define BIG 1e300
#define ENUM(t) t, (int)(sizeof t / sizeof t[0])

static const key_desc KEYS[] = {
    {"model", "path", K_STRING, OFF(model.path), NOHAS, 0, 0, F_REQUIRED, NULL, 0, "a path to a Hugging Face model folder"},
    {"model", "quantize", K_ENUM, OFF(model.quantize), NOHAS, 0, 0, 0, ENUM(et_recipe_quantize_names), NULL},
    {"model", "dtype", K_ENUM, OFF(model.dtype), NOHAS, 0, 0, 0, ENUM(et_recipe_dtype_names), NULL},

    {"lora", "r", K_INT, OFF(lora.r), NOHAS, 1, 65536, 0, NULL, 0, "an integer >= 1"},
    {"lora", "alpha", K_INT, OFF(lora.alpha), NOHAS, 1, 1 << 30, 0, NULL, 0, "an integer >= 1"},
    {"lora", "dropout", K_DOUBLE, OFF(lora.dropout), NOHAS, 0, 1, F_MAX_OPEN, NULL, 0, "a number in [0, 1)"},
    {"lora", "targets", K_TARGETS, OFF(lora.targets), NOHAS, 0, 0, 0, NULL, 0,
     "a non-empty list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"},
    {"lora", "use_rslora", K_BOOL, OFF(lora.use_rslora), NOHAS, 0, 0, 0, NULL, 0, "true or false"},
    {"lora", "init", K_ENUM, OFF(lora.init), NOHAS, 0, 0, 0, ENUM(et_recipe_lora_init_names), NULL},

    {"data", "train", K_STRING, OFF(data.train), NOHAS, 0, 0, F_REQUIRED, NULL, 0, "a path to a corpus .h5 file"},
    {"data", "val", K_STRING, OFF(data.val), NOHAS, 0, 0, F_NULLABLE, NULL, 0, "a path to a corpus .h5 file, or null"},
    {"data", "seq_len", K_INT, OFF(data.seq_len), NOHAS, 2, 1 << 24, 0, NULL, 0, "an integer >= 2"},
    {"data", "split", K_ENUM, OFF(data.split), NOHAS, 0, 0, 0, ENUM(et_recipe_split_names), NULL},

    {"optim", "lr", K_DOUBLE, OFF(optim.lr), NOHAS, 0, BIG, F_MIN_OPEN, NULL, 0, "a number > 0"},
    {"optim", "schedule", K_ENUM, OFF(optim.schedule), NOHAS, 0, 0, 0, ENUM(et_recipe_schedule_names), NULL},
    {"optim", "warmup_steps", K_INT, OFF(optim.warmup_steps), NOHAS, 0, 2147483647.0, 0, NULL, 0, "an integer >= 0"},
    {"optim", "weight_decay", K_DOUBLE, OFF(optim.weight_decay), NOHAS, 0, BIG, 0, NULL, 0, "a number >= 0"},
    {"optim", "beta1", K_DOUBLE, OFF(optim.beta1), NOHAS, 0, 1, F_MAX_OPEN, NULL, 0, "a number in [0, 1)"},
    {"optim", "beta2", K_DOUBLE, OFF(optim.beta2), NOHAS, 0, 1, F_MAX_OPEN, NULL, 0, "a number in [0, 1)"},
    {"optim", "eps", K_DOUBLE, OFF(optim.eps), NOHAS, 0, BIG, F_MIN_OPEN, NULL, 0, "a number > 0"},
    {"optim", "max_grad_norm", K_DOUBLE, OFF(optim.max_grad_norm), NOHAS, 0, BIG, 0, NULL, 0, "a number >= 0 (0 = no clipping)"},
    {"optim", "grad_accum", K_INT, OFF(optim.grad_accum), NOHAS, 1, 2147483647.0, 0, NULL, 0, "an integer >= 1"},
    {"optim", "steps", K_INT64, OFF(optim.steps), NOHAS, 0, 9e15, 0, NULL, 0, "an integer >= 0 (0 = derive from epochs)"},
    {"optim", "epochs", K_DOUBLE, OFF(optim.epochs), NOHAS, 0, BIG, F_MIN_OPEN, NULL, 0, "a number > 0"},

    {"privacy", "enabled", K_BOOL, OFF(privacy.enabled), NOHAS, 0, 0, 0, NULL, 0, "true or false"},
    {"privacy", "unit", K_ENUM, OFF(privacy.unit), NOHAS, 0, 0, 0, ENUM(et_recipe_unit_names), NULL},
    {"privacy", "target_epsilon", K_DOUBLE, OFF(privacy.target_epsilon), HAS(privacy.has_target_epsilon), 0, BIG,
     F_NULLABLE | F_MIN_OPEN, NULL, 0, "a number > 0, or null"},
    {"privacy", "noise_multiplier", K_DOUBLE, OFF(privacy.noise_multiplier), HAS(privacy.has_noise_multiplier), 0, BIG,
     F_NULLABLE | F_MIN_OPEN, NULL, 0, "a number > 0, or null"},
    {"privacy", "delta", K_DOUBLE, OFF(privacy.delta), HAS(privacy.has_delta), 0, 1,
     F_NULLABLE | F_AUTO | F_MIN_OPEN | F_MAX_OPEN, NULL, 0, "a number in (0, 1), or auto"},
    {"privacy", "max_grad_norm", K_DOUBLE, OFF(privacy.max_grad_norm), NOHAS, 0, BIG, F_MIN_OPEN, NULL, 0, "a number > 0"},
    {"privacy", "sample_rate", K_DOUBLE, OFF(privacy.sample_rate), HAS(privacy.has_sample_rate), 0, 1,
     F_NULLABLE | F_MIN_OPEN, NULL, 0, "a number in (0, 1], or null"},
    {"privacy", "expected_batch_size", K_INT, OFF(privacy.expected_batch_size), HAS(privacy.has_expected_batch_size), 1,
     2147483647.0, F_NULLABLE, NULL, 0, "an integer >= 1, or null"},
    {"privacy", "epochs", K_DOUBLE, OFF(privacy.epochs), HAS(privacy.has_epochs), 0, BIG, F_NULLABLE | F_MIN_OPEN, NULL, 0,
     "a number > 0, or null"},
    {"privacy", "steps", K_INT64, OFF(privacy.steps), HAS(privacy.has_steps), 1, 9e15, F_NULLABLE, NULL, 0,
     "an integer >= 1, or null"},
    {"privacy", "accountant", K_ENUM, OFF(privacy.accountant), NOHAS, 0, 0, 0, ENUM(et_recipe_accountant_names), NULL},
    {"privacy", "secure_rng", K_BOOL, OFF(privacy.secure_rng), NOHAS, 0, 0, 0, NULL, 0, "true or false"},
    {"privacy", "max_sequences_per_unit", K_INT, OFF(privacy.max_sequences_per_unit), NOHAS, 1, 2147483647.0, 0, NULL, 0,
     "an integer >= 1"},

    {"run", "out", K_STRING, OFF(run.out), NOHAS, 0, 0, 0, NULL, 0, "a path to the run folder"},
    {"run", "device", K_ENUM, OFF(run.device), NOHAS, 0, 0, 0, ENUM(et_recipe_device_names), NULL},
    {"run", "micro_batch", K_INT, OFF(run.micro_batch), NOHAS, 1, 2147483647.0, 0, NULL, 0, "an integer >= 1"},
    {"run", "seed", K_UINT64, OFF(run.seed), NOHAS, 0, 0, 0, NULL, 0, "an integer in [0, 2^64)"},
    {"run", "checkpoint_every", K_INT, OFF(run.checkpoint_every), NOHAS, 0, 2147483647.0, 0, NULL, 0,
     "an integer >= 0 (0 = only at the end)"},
    {"run", "keep_checkpoints", K_INT, OFF(run.keep_checkpoints), NOHAS, 0, 2147483647.0, 0, NULL, 0,
     "an integer >= 0 (0 = keep every checkpoint)"},
    {"run", "log_every", K_INT, OFF(run.log_every), NOHAS, 1, 2147483647.0, 0, NULL, 0, "an integer >= 1"},
    {"run", "activation_checkpointing", K_BOOL, OFF(run.activation_checkpointing), NOHAS, 0, 0, 0, NULL, 0, "true or false"},
    {"run", "max_steps", K_INT64, OFF(run.max_steps), NOHAS, 0, 9e15, 0, NULL, 0, "an integer >= 0 (0 = no cap)"},
};
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

static const char *const SECTIONS[] = {"model", "lora", "data", "optim", "privacy", "run"};
#define N_SECTIONS ((int)(sizeof SECTIONS / sizeof SECTIONS[0]))

/* Longest "section.key" plus room; keys are short by construction. */
#define NAME_MAX_LEN 64

void et_recipe_init(et_recipe *r) {
    memset(r, 0, sizeof *r);
    r->model.quantize = ET_RECIPE_QUANT_NONE;
    r->model.dtype = ET_RECIPE_DTYPE_AUTO;

    r->lora.r = 16;
    r->lora.alpha = 32;
    r->lora.dropout = 0.05;
    r->lora.targets = ET_LORA_ALL_TARGETS;
    r->lora.use_rslora = false;
    r->lora.init = ET_RECIPE_INIT_DEFAULT;

    r->data.seq_len = 1024;
    r->data.split = ET_RECIPE_SPLIT_TRAIN;

    r->optim.lr = 2e-4;
    r->optim.schedule = ET_RECIPE_SCHED_COSINE;
    r->optim.warmup_steps = 0;
    r->optim.weight_decay = 0.0;
    r->optim.beta1 = 0.9;
    r->optim.beta2 = 0.999;
    r->optim.eps = 1e-8;
    r->optim.max_grad_norm = 1.0;
    r->optim.grad_accum = 1;
    r->optim.steps = 0;
    r->optim.epochs = 1.0;

    r->privacy.enabled = false;
    r->privacy.unit = ET_RECIPE_UNIT_PATIENT;
    r->privacy.max_grad_norm = 1.0;
    r->privacy.accountant = ET_RECIPE_ACCOUNTANT_PRV;
    r->privacy.secure_rng = true;
    r->privacy.max_sequences_per_unit = 4;

    r->run.device = ET_RECIPE_DEVICE_AUTO;
    r->run.micro_batch = 8;
    r->run.seed = 1234;
    r->run.checkpoint_every = 100;
    r->run.log_every = 1;
    r->run.activation_checkpointing = false;
    r->run.max_steps = 0;
}

void et_recipe_free(et_recipe *r) {
    if (!r) return;
    free(r->model.path);
    free(r->data.train);
    free(r->data.val);
    free(r->run.out);
    free(r->source);
    et_recipe_init(r);
}

/* ------------------------------------------------------------------------------------ */
/* "Did you mean": optimal-string-alignment distance (edits + adjacent transpositions) */

static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n >= NAME_MAX_LEN || m >= NAME_MAX_LEN) return 1 << 20;
    int d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* Close enough to suggest: about half the longer word may differ ('rank' -> 'r'). */
static int near_enough(const char *a, const char *b, int d) {
    size_t la = strlen(a), lb = strlen(b);
    size_t longer = la > lb ? la : lb;
    return d <= 1 + (int)(longer / 2);
}

static int find_section(const char *name) {
    for (int s = 0; s < N_SECTIONS; s++)
        if (strcmp(SECTIONS[s], name) == 0) return s;
    return -1;
}

static const key_desc *find_key(const char *section, const char *key) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].section, section) == 0 && strcmp(KEYS[i].key, key) == 0) return &KEYS[i];
    return NULL;
}

/* Suggests a "section.key" for an unknown (section, key); key may be NULL (an unknown
 * top-level name, which may also be a section name). Writes "" when nothing is close. */
static void suggest(const char *section, const char *key, char *out, size_t cap) {
    out[0] = '\0';
    if (!key) {
        /* A top-level name: a misspelt section, or a key written outside its section. */
        int best = -1, best_d = 1 << 20;
        for (int s = 0; s < N_SECTIONS; s++) {
            int d = edit_distance(section, SECTIONS[s]);
            if (d < best_d && near_enough(section, SECTIONS[s], d)) best = s, best_d = d;
        }
        for (int i = 0; i < N_KEYS && best_d > 0; i++) {
            if (strcmp(KEYS[i].key, section) == 0) {
                snprintf(out, cap, "%s.%s", KEYS[i].section, KEYS[i].key);
                return;
            }
        }
        if (best >= 0) snprintf(out, cap, "%s", SECTIONS[best]);
        return;
    }
    /* 1. The exact key name in another section ('optim.seed' -> 'run.seed'). */
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(KEYS[i].key, key) == 0) {
            snprintf(out, cap, "%s.%s", KEYS[i].section, KEYS[i].key);
            return;
        }
    }
    /* 2. The nearest key inside the section. */
    const key_desc *best = NULL;
    int best_d = 1 << 20;
    if (find_section(section) >= 0) {
        for (int i = 0; i < N_KEYS; i++) {
            if (strcmp(KEYS[i].section, section) != 0) continue;
            int d = edit_distance(key, KEYS[i].key);
            if (d < best_d && near_enough(key, KEYS[i].key, d)) best = &KEYS[i], best_d = d;
        }
    }
    /* 3. Else the nearest "section.key" anywhere. */
    if (!best) {
        char full[2 * NAME_MAX_LEN];
        snprintf(full, sizeof full, "%s.%s", section, key);
        for (int i = 0; i < N_KEYS; i++) {
            char cand[2 * NAME_MAX_LEN];
            snprintf(cand, sizeof cand, "%s.%s", KEYS[i].section, KEYS[i].key);
            int d = edit_distance(full, cand);
            if (d < best_d && near_enough(full, cand, d)) best = &KEYS[i], best_d = d;
        }
    }
    if (best) snprintf(out, cap, "%s.%s", best->section, best->key);
}

static void list_section_keys(const char *section, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < N_KEYS && len < cap; i++) {
        if (strcmp(KEYS[i].section, section) != 0) continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", KEYS[i].key);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static int fail_unknown_key(et_error *err, const char *where, const char *section, const char *key) {
    char hint[2 * NAME_MAX_LEN + 8];
    suggest(section, key, hint, sizeof hint);
    if (hint[0]) return et_fail(err, "%s: unknown key '%s.%s' — did you mean '%s'?", where, section, key, hint);
    if (find_section(section) >= 0) {
        char keys[512];
        list_section_keys(section, keys, sizeof keys);
        return et_fail(err, "%s: unknown key '%s.%s' (keys of '%s': %s)", where, section, key, section, keys);
    }
    return et_fail(err, "%s: unknown key '%s.%s' (sections: model, lora, data, optim, privacy, run)", where, section, key);
}

static int fail_unknown_section(et_error *err, const char *where, const char *name) {
    char hint[2 * NAME_MAX_LEN + 8];
    suggest(name, NULL, hint, sizeof hint);
    if (hint[0]) return et_fail(err, "%s: unknown section '%s' — did you mean '%s'?", where, name, hint);
    return et_fail(err, "%s: unknown section '%s' (sections: model, lora, data, optim, privacy, run)", where, name);
}

/* ------------------------------------------------------------------------------------ */
/* Scalars                                                                              */

static int ascii_casecmp(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        int d = tolower((unsigned char)*a) - tolower((unsigned char)*b);
        if (d) return d;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static int is_null_scalar(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "a scalar";
    }
}

static int parse_int64(const char *s, long long *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_uint64(const char *s, unsigned long long *out) {
    if (!*s || !isdigit((unsigned char)*s)) return -1; /* strtoull accepts "-1" */
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) > 1.0) return -1;
    if (*end || !isfinite(v)) return -1; /* no .inf/.nan, no hex tricks with junk */
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (ascii_casecmp(s, yes[i]) == 0) return *out = true, 0;
        if (ascii_casecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

static int in_range(const key_desc *k, double v) {
    if (k->flags & F_MIN_OPEN ? !(v > k->min) : !(v >= k->min)) return 0;
    if (k->flags & F_MAX_OPEN ? !(v < k->max) : !(v <= k->max)) return 0;
    return 1;
}

static void enum_list(const key_desc *k, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < k->n_names && len < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", k->names[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

/* Quotes a user value for a message, cut to a readable length. */
static const char *shown(const char *v, char *buf, size_t cap) {
    size_t n = strlen(v);
    if (n + 1 <= cap) return v;
    snprintf(buf, cap, "%.*s...", (int)(cap - 4), v);
    return buf;
}

static int fail_value(et_error *err, const char *where, const key_desc *k, const char *got) {
    char buf[80];
    if (k->type == K_ENUM) {
        char names[128];
        enum_list(k, names, sizeof names);
        return et_fail(err, "%s: %s.%s must be one of %s; got '%s'", where, k->section, k->key, names,
                       shown(got, buf, sizeof buf));
    }
    return et_fail(err, "%s: %s.%s must be %s; got '%s'", where, k->section, k->key, k->expect, shown(got, buf, sizeof buf));
}

static int fail_kind(et_error *err, const char *where, const key_desc *k, const yaml_node_t *n) {
    if (k->type == K_ENUM) {
        char names[128];
        enum_list(k, names, sizeof names);
        return et_fail(err, "%s: %s.%s must be one of %s; got %s", where, k->section, k->key, names, node_kind(n));
    }
    return et_fail(err, "%s: %s.%s must be %s; got %s", where, k->section, k->key, k->expect, node_kind(n));
}

/* Reads one LoRA target name; returns its index or fails with a suggestion. */
static int parse_target(const char *where, const key_desc *k, const char *name, size_t len, et_error *err) {
    char word[NAME_MAX_LEN];
    while (len && isspace((unsigned char)*name)) name++, len--;
    while (len && isspace((unsigned char)name[len - 1])) len--;
    if (len == 0) return et_fail(err, "%s: %s.%s has an empty entry; expected %s", where, k->section, k->key, k->expect);
    if (len >= sizeof word) return fail_value(err, where, k, name);
    memcpy(word, name, len);
    word[len] = '\0';
    int best = -1, best_d = 1 << 20;
    for (int t = 0; t < ET_LORA_NUM_TARGETS; t++) {
        if (strcmp(word, et_lora_target_names[t]) == 0) return t;
        int d = edit_distance(word, et_lora_target_names[t]);
        if (d < best_d && near_enough(word, et_lora_target_names[t], d)) best = t, best_d = d;
    }
    if (best >= 0)
        return et_fail(err, "%s: %s.%s: unknown module '%s' — did you mean '%s'? (valid: q_proj, k_proj, v_proj, o_proj, "
                       "gate_proj, up_proj, down_proj)", where, k->section, k->key, word, et_lora_target_names[best]);
    return et_fail(err, "%s: %s.%s: unknown module '%s' (valid: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
                   "down_proj)", where, k->section, k->key, word);
}

static int add_target(const char *where, const key_desc *k, unsigned *mask, const char *name, size_t len, et_error *err) {
    int t = parse_target(where, k, name, len, err);
    if (t < 0) return -1;
    if (*mask & ET_LORA_TARGET_BIT(t))
        return et_fail(err, "%s: %s.%s lists '%s' twice", where, k->section, k->key, et_lora_target_names[t]);
    *mask |= ET_LORA_TARGET_BIT(t);
    return 0;
}

static int parse_targets(const char *where, const key_desc *k, yaml_document_t *doc, yaml_node_t *n, unsigned *out,
                         et_error *err) {
    unsigned mask = 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(doc, *it);
            if (!item || item->type != YAML_SCALAR_NODE)
                return et_fail(err, "%s: %s.%s must be %s; an entry is %s", where, k->section, k->key, k->expect,
                               item ? node_kind(item) : "missing");
            const char *v = (const char *)item->data.scalar.value;
            if (add_target(where, k, &mask, v, strlen(v), err)) return -1;
        }
    } else if (n->type == YAML_SCALAR_NODE) { /* "q_proj,v_proj" (handy on a command line) */
        const char *v = (const char *)n->data.scalar.value;
        for (const char *p = v;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (add_target(where, k, &mask, p, len, err)) return -1;
            if (!comma) break;
            p = comma + 1;
        }
    } else {
        return fail_kind(err, where, k, n);
    }
    if (!mask) return et_fail(err, "%s: %s.%s is empty; expected %s", where, k->section, k->key, k->expect);
    *out = mask;
    return 0;
}

/* Sets one key from a YAML node. Parses completely before writing, so a failure
 * leaves r unchanged. `where` is "file:line" or "override '...'". */
static int apply_node(et_recipe *r, const key_desc *k, yaml_document_t *doc, yaml_node_t *n, const char *where,
                      et_error *err) {
    char *base = (char *)r;
    void *field = base + k->offset;
    bool *has = k->has_offset >= 0 ? (bool *)(base + k->has_offset) : NULL;

    int is_unset = is_null_scalar(n) ||
                   ((k->flags & F_AUTO) && n->type == YAML_SCALAR_NODE &&
                    n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp((char *)n->data.scalar.value, "auto") == 0);
    if (is_unset) {
        if (!(k->flags & F_NULLABLE))
            return et_fail(err, "%s: %s.%s needs a value: %s", where, k->section, k->key, k->expect);
        if (k->type == K_STRING) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else {
            if (has) *has = false;
            if (k->type == K_DOUBLE) *(double *)field = 0.0;
            if (k->type == K_INT) *(int *)field = 0;
            if (k->type == K_INT64) *(int64_t *)field = 0;
        }
        return 0;
    }

    if (k->type == K_TARGETS) {
        unsigned mask = 0;
        if (parse_targets(where, k, doc, n, &mask, err)) return -1;
        *(unsigned *)field = mask;
        return 0;
    }

    if (n->type != YAML_SCALAR_NODE) return fail_kind(err, where, k, n);
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length)
        return et_fail(err, "%s: %s.%s contains a NUL character", where, k->section, k->key);

    switch (k->type) {
    case K_STRING: {
        if (!v[0]) return fail_value(err, where, k, v);
        char *copy = strdup(v);
        if (!copy) return et_fail(err, "%s: out of memory", where);
        free(*(char **)field);
        *(char **)field = copy;
        break;
    }
    case K_INT:
    case K_INT64: {
        long long x;
        if (parse_int64(v, &x) || !in_range(k, (double)x)) return fail_value(err, where, k, v);
        if (k->type == K_INT) *(int *)field = (int)x;
        else *(int64_t *)field = (int64_t)x;
        break;
    }
    case K_UINT64: {
        unsigned long long x;
        if (parse_uint64(v, &x)) return fail_value(err, where, k, v);
        *(uint64_t *)field = (uint64_t)x;
        break;
    }
    case K_DOUBLE: {
        double x;
        if (parse_double(v, &x) || !in_range(k, x)) return fail_value(err, where, k, v);
        *(double *)field = x;
        break;
    }
    case K_BOOL: {
        bool x;
        if (parse_bool(v, &x)) return fail_value(err, where, k, v);
        *(bool *)field = x;
        break;
    }
    case K_ENUM: {
        int found = -1;
        for (int i = 0; i < k->n_names; i++)
            if (ascii_casecmp(v, k->names[i]) == 0) found = i;
        if (found < 0) return fail_value(err, where, k, v);
        *(int *)field = found; /* every recipe enum is int-sized */
        break;
    }
    case K_TARGETS: break; /* handled above */
    }
    if (has) *has = true;
    return 0;
}

_Static_assert(sizeof(et_recipe_quantize) == sizeof(int) && sizeof(et_recipe_device) == sizeof(int),
               "recipe enums are stored through an int pointer");

/* ------------------------------------------------------------------------------------ */
/* Loading                                                                              */

static char *stem_of(const char *name) {
    const char *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : (name ? name : "recipe");
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) len = (size_t)(dot - base);
    if (len == 0) base = "recipe", len = 6;
    char *out = malloc(len + 6);
    if (out) snprintf(out, len + 6, "runs/%.*s", (int)len, base);
    return out;
}

static int load_document(et_recipe *r, yaml_document_t *doc, const char *name, et_error *err) {
    char where[512];
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root || is_null_scalar(root))
        return et_fail(err, "%s: the recipe is empty; it needs at least model.path and data.train", name);
    if (root->type != YAML_MAPPING_NODE)
        return et_fail(err, "%s:%zu: a recipe is a mapping of sections (model:, lora:, data:, ...); got %s", name,
                       root->start_mark.line + 1, node_kind(root));

    size_t section_line[N_SECTIONS] = {0}, key_line[N_KEYS] = {0};
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
        size_t line = kn->start_mark.line + 1;
        snprintf(where, sizeof where, "%s:%zu", name, line);
        if (kn->type != YAML_SCALAR_NODE) return et_fail(err, "%s: a section name must be a plain word", where);
        const char *sname = (const char *)kn->data.scalar.value;
        int s = find_section(sname);
        if (s < 0) return fail_unknown_section(err, where, sname);
        if (section_line[s])
            return et_fail(err, "%s: duplicate section '%s' (first on line %zu)", where, sname, section_line[s]);
        section_line[s] = line;
        if (is_null_scalar(vn)) continue; /* `privacy:` with nothing under it */
        if (vn->type != YAML_MAPPING_NODE)
            return et_fail(err, "%s:%zu: section '%s' must be a mapping of key: value lines; got %s", name,
                           vn->start_mark.line + 1, sname, node_kind(vn));
        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
            yaml_node_t *kk = yaml_document_get_node(doc, q->key), *kv = yaml_document_get_node(doc, q->value);
            size_t kline = kk->start_mark.line + 1;
            snprintf(where, sizeof where, "%s:%zu", name, kline);
            if (kk->type != YAML_SCALAR_NODE) return et_fail(err, "%s: a key in '%s' must be a plain word", where, sname);
            const char *kname = (const char *)kk->data.scalar.value;
            const key_desc *k = find_key(sname, kname);
            if (!k) return fail_unknown_key(err, where, sname, kname);
            int ki = (int)(k - KEYS);
            if (key_line[ki])
                return et_fail(err, "%s: duplicate key '%s.%s' (first on line %zu)", where, sname, kname, key_line[ki]);
            key_line[ki] = kline;
            snprintf(where, sizeof where, "%s:%zu", name, kv->start_mark.line + 1);
            if (apply_node(r, k, doc, kv, where, err)) return -1;
        }
    }
    return 0;
}

static int yaml_problem(const yaml_parser_t *p, const char *text, const char *prefix, et_error *err) {
    const char *problem = p->problem ? p->problem : "malformed YAML";
    /* The one syntax error everybody meets: a tab used for indentation. */
    const char *hint = "";
    if (p->problem_mark.index < strlen(text) && text[p->problem_mark.index] == '\t')
        hint = "; YAML indents with spaces, not tabs";
    if (p->context)
        return et_fail(err, "%s:%zu: YAML syntax error: %s (%s, line %zu)%s", prefix, p->problem_mark.line + 1, problem,
                       p->context, p->context_mark.line + 1, hint);
    return et_fail(err, "%s:%zu: YAML syntax error: %s%s", prefix, p->problem_mark.line + 1, problem, hint);
}

/* Flow collections ([...], {...}) a recipe may nest: libyaml's scanner takes time
 * quadratic in the nesting (60,000 levels, a 120 KB file: ~10 s; found 2026-11-26),
 * and a recipe needs two or three. */
#define MAX_FLOW_DEPTH 32

/* 0, or the 1-based line where flow nesting first exceeds MAX_FLOW_DEPTH. Counts
 * brackets outside quoted strings and comments (a bracket inside a block scalar counts
 * too: harmless short of 32 unmatched ones). */
static size_t flow_too_deep(const char *s) {
    size_t line = 1;
    int depth = 0;
    char quote = 0, prev = '\n';
    for (; *s; prev = *s++) {
        const char c = *s;
        if (c == '\n') line++;
        if (quote) {
            if (quote == '"' && c == '\\' && s[1]) prev = *s++; /* an escaped character */
            else if (c == quote) quote = 0;
            continue;
        }
        const int after_space = prev == ' ' || prev == '\t' || prev == '\n';
        if (c == '#' && after_space) {
            while (s[1] && s[1] != '\n') s++;
            continue;
        }
        /* a quote opens a quoted scalar only where a scalar can start (not "it's") */
        if ((c == '"' || c == '\'') && (after_space || strchr("[{,:", prev))) quote = c;
        else if ((c == '[' || c == '{') && ++depth > MAX_FLOW_DEPTH) return line;
        else if ((c == ']' || c == '}') && depth > 0) depth--;
    }
    return 0;
}

int et_recipe_load_string(et_recipe *r, const char *yaml, const char *name, et_error *err) {
    et_recipe_init(r);
    const char *shown_name = name ? name : "recipe";
    const size_t deep = flow_too_deep(yaml);
    if (deep)
        return et_fail(err, "%s:%zu: brackets nest deeper than %d levels; a recipe needs a few",
                       shown_name, deep, MAX_FLOW_DEPTH);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return et_fail(err, "%s: out of memory", shown_name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_problem(&parser, yaml, shown_name, err);
    } else {
        rc = load_document(r, &doc, shown_name, err);
        yaml_document_delete(&doc);
        if (rc == 0) { /* one recipe per file: a second document is a mistake */
            if (!yaml_parser_load(&parser, &doc)) {
                rc = yaml_problem(&parser, yaml, shown_name, err);
            } else {
                yaml_node_t *extra = yaml_document_get_root_node(&doc);
                if (extra)
                    rc = et_fail(err, "%s:%zu: a recipe file holds one YAML document; found a second one", shown_name,
                                 extra->start_mark.line + 1);
                yaml_document_delete(&doc);
            }
        }
    }
    yaml_parser_delete(&parser);
    if (rc == 0 && !r->run.out && !(r->run.out = stem_of(name))) rc = et_fail(err, "%s: out of memory", shown_name);
    if (rc == 0 && name && !(r->source = strdup(name))) rc = et_fail(err, "%s: out of memory", shown_name);
    if (rc) et_recipe_free(r);
    return rc;
}

int et_recipe_load(et_recipe *r, const char *path, et_error *err) {
    et_recipe_init(r);
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, "%s: cannot open recipe: %s", path, strerror(errno));
    /* Recipes are small; a 1 MiB cap keeps a wrong path (a model file) from being slurped. */
    enum { MAX_RECIPE_BYTES = 1 << 20 };
    char *text = malloc(MAX_RECIPE_BYTES + 1);
    if (!text) {
        fclose(f);
        return et_fail(err, "%s: out of memory", path);
    }
    errno = 0;
    size_t n = fread(text, 1, MAX_RECIPE_BYTES + 1, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(text);
        return et_fail(err, "%s: cannot read recipe: %s", path, strerror(errno));
    }
    if (n > MAX_RECIPE_BYTES) {
        free(text);
        return et_fail(err, "%s: larger than 1 MiB; is this really a recipe (YAML) file?", path);
    }
    if (memchr(text, '\0', n)) {
        free(text);
        return et_fail(err, "%s: contains NUL bytes; a recipe is a YAML text file", path);
    }
    text[n] = '\0';
    int rc = et_recipe_load_string(r, text, path, err);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Overrides                                                                            */

int et_recipe_override(et_recipe *r, const char *assignment, et_error *err) {
    char where[600], buf[80];
    snprintf(where, sizeof where, "override '%s'", shown(assignment, buf, sizeof buf));
    const char *eq = strchr(assignment, '=');
    if (!eq) return et_fail(err, "%s: expected section.key=value (e.g. lora.r=32)", where);
    size_t name_len = (size_t)(eq - assignment);
    char name[2 * NAME_MAX_LEN];
    if (name_len == 0 || name_len >= sizeof name) return et_fail(err, "%s: expected section.key=value (e.g. lora.r=32)", where);
    memcpy(name, assignment, name_len);
    name[name_len] = '\0';
    char *dot = strchr(name, '.');
    if (!dot) {
        char hint[2 * NAME_MAX_LEN + 8];
        suggest(name, NULL, hint, sizeof hint);
        if (hint[0] && strchr(hint, '.'))
            return et_fail(err, "%s: unknown key '%s' — did you mean '%s'?", where, name, hint);
        return et_fail(err, "%s: expected section.key=value (e.g. lora.r=32)", where);
    }
    *dot = '\0';
    const char *section = name, *key = dot + 1;
    const key_desc *k = find_key(section, key);
    if (!k) return fail_unknown_key(err, where, section, key);

    /* The value is read as YAML so that quoting, null and [a, b] mean what they mean in a file. */
    const char *value = eq + 1;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return et_fail(err, "%s: out of memory", where);
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, strlen(value));
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = et_fail(err, "%s: the value is not a valid YAML scalar or [list] (%s); quote it", where,
                     parser.problem ? parser.problem : "malformed");
    } else {
        /* one value: "4\n---\n5" must not quietly mean 4 (found 2026-11-26); checked
         * before anything is applied, so a refused override changes nothing */
        yaml_document_t more;
        if (!yaml_parser_load(&parser, &more)) {
            yaml_document_delete(&doc);
            rc = et_fail(err, "%s: the value is not a valid YAML scalar or [list] (%s); quote it", where,
                         parser.problem ? parser.problem : "malformed");
            yaml_parser_delete(&parser);
            return rc;
        }
        const int several = yaml_document_get_root_node(&more) != NULL;
        yaml_document_delete(&more);
        if (several) {
            yaml_document_delete(&doc);
            yaml_parser_delete(&parser);
            return et_fail(err, "%s: the value holds more than one YAML document; give one value", where);
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            /* Empty value: the same as `null`. */
            yaml_node_t empty = {0};
            empty.type = YAML_SCALAR_NODE;
            empty.data.scalar.value = (yaml_char_t *)"";
            empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
            rc = apply_node(r, k, &doc, &empty, where, err);
        } else {
            rc = apply_node(r, k, &doc, root, where, err);
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Validation                                                                           */

static double numeric_value(const et_recipe *r, const key_desc *k) {
    const char *f = (const char *)r + k->offset;
    switch (k->type) {
    case K_INT: return *(const int *)f;
    case K_INT64: return (double)*(const int64_t *)f;
    case K_DOUBLE: return *(const double *)f;
    default: return 0;
    }
}

static int is_set(const et_recipe *r, const key_desc *k) {
    return k->has_offset < 0 || *(const bool *)((const char *)r + k->has_offset);
}

int et_recipe_validate(const et_recipe *r, et_error *err) {
    const char *name = r->source ? r->source : "recipe";

    for (int i = 0; i < N_KEYS; i++) {
        const key_desc *k = &KEYS[i];
        const char *f = (const char *)r + k->offset;
        switch (k->type) {
        case K_STRING: {
            const char *s = *(char *const *)f;
            if ((!s || !s[0]) && (k->flags & F_REQUIRED))
                return et_fail(err, "%s: missing required key '%s.%s' (%s)", name, k->section, k->key, k->expect);
            if ((!s || !s[0]) && !(k->flags & F_NULLABLE))
                return et_fail(err, "%s: %s.%s is not set; expected %s", name, k->section, k->key, k->expect);
            break;
        }
        case K_INT:
        case K_INT64:
        case K_DOUBLE: {
            if (!is_set(r, k)) break;
            double v = numeric_value(r, k);
            if (!isfinite(v) || !in_range(k, v)) {
                char got[64];
                snprintf(got, sizeof got, "%.17g", v);
                return et_fail(err, "%s: %s.%s must be %s; got %s", name, k->section, k->key, k->expect, got);
            }
            break;
        }
        case K_ENUM: {
            int v = *(const int *)f;
            if (v < 0 || v >= k->n_names)
                return et_fail(err, "%s: %s.%s holds an invalid value (%d)", name, k->section, k->key, v);
            break;
        }
        case K_TARGETS: {
            unsigned m = *(const unsigned *)f;
            if (m == 0 || (m & ~ET_LORA_ALL_TARGETS))
                return et_fail(err, "%s: lora.targets must be %s", name, k->expect);
            break;
        }
        case K_UINT64:
        case K_BOOL: break;
        }
    }

    const et_recipe_optim *o = &r->optim;
    if (o->steps > 0 && o->warmup_steps > o->steps)
        return et_fail(err, "%s: optim.warmup_steps (%d) is larger than optim.steps (%lld); the learning rate would "
                       "never reach optim.lr", name, o->warmup_steps, (long long)o->steps);

    const et_recipe_privacy *p = &r->privacy;
    if (!p->enabled) return 0;
    if (p->has_target_epsilon == p->has_noise_multiplier)
        return et_fail(err, "%s: privacy: set exactly one of target_epsilon (sigma is calibrated to reach it) or "
                       "noise_multiplier (sigma given directly); %s", name,
                       p->has_target_epsilon ? "both are set" : "neither is set");
    if (p->has_sample_rate && p->has_expected_batch_size)
        return et_fail(err, "%s: privacy: set at most one of sample_rate or expected_batch_size (q = "
                       "expected_batch_size / units); both are set", name);
    if (p->has_epochs && p->has_steps)
        return et_fail(err, "%s: privacy: set at most one of epochs or steps; both are set", name);
    if ((p->has_epochs || p->has_steps) && o->steps > 0)
        return et_fail(err, "%s: the training length is set twice (privacy.%s and optim.steps); with privacy enabled "
                       "set it under privacy and remove optim.steps", name, p->has_epochs ? "epochs" : "steps");
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Writing                                                                              */

/* The shortest decimal that reads back as exactly x, spelt so that YAML 1.1 readers
 * (PyYAML) also see a float: "2.0e-04" style needs a '.' in the mantissa. */
static void format_double(double x, char *out, size_t cap) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, x);
        if (strtod(out, NULL) == x) break;
    }
    if (strchr(out, '.')) return;
    size_t len = strlen(out), at = strcspn(out, "eE"); /* insert ".0" before the exponent */
    if (len + 3 > cap) return;
    memmove(out + at + 2, out + at, len - at + 1);
    out[at] = '.';
    out[at + 1] = '0';
}

static void write_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void write_value(FILE *f, const et_recipe *r, const key_desc *k) {
    const char *field = (const char *)r + k->offset;
    char num[96];
    if (!is_set(r, k)) {
        fputs(k->flags & F_AUTO ? "auto" : "null", f);
        return;
    }
    switch (k->type) {
    case K_STRING: {
        const char *s = *(char *const *)field;
        if (s) write_quoted(f, s);
        else fputs("null", f);
        break;
    }
    case K_INT: fprintf(f, "%d", *(const int *)field); break;
    case K_INT64: fprintf(f, "%lld", (long long)*(const int64_t *)field); break;
    case K_UINT64: fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case K_DOUBLE:
        format_double(*(const double *)field, num, sizeof num);
        fputs(num, f);
        break;
    case K_BOOL: fputs(*(const bool *)field ? "true" : "false", f); break;
    case K_ENUM: {
        int v = *(const int *)field;
        fputs(v >= 0 && v < k->n_names ? k->names[v] : "?", f);
        break;
    }
    case K_TARGETS: {
        unsigned m = *(const unsigned *)field;
        fputc('[', f);
        for (int t = 0, first = 1; t < ET_LORA_NUM_TARGETS; t++) {
            if (!(m & ET_LORA_TARGET_BIT(t))) continue;
            fprintf(f, "%s%s", first ? "" : ", ", et_lora_target_names[t]);
            first = 0;
        }
        fputc(']', f);
        break;
    }
    }
}

int et_recipe_write_yaml(const et_recipe *r, const char *path, et_error *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return et_fail(err, "%s: path too long", path);
    unlink(tmp); /* a fresh file only: a leftover or a planted link goes first */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return et_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return et_fail(err, "%s: cannot open for writing: %s", tmp, strerror(errno));
    }
    /* the source path in a comment line: a newline in it would end the comment */
    char source[1024] = "";
    if (r->source) {
        snprintf(source, sizeof source, "%s", r->source);
        for (char *c = source; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    fprintf(f, "# Resolved ehrtune recipe: every key, defaults included%s%s.\n"
               "# Relative paths are relative to the working directory of the run.\n",
            r->source ? ", from " : "", source);
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(f, "%s%s:\n", s ? "\n" : "", SECTIONS[s]);
        for (int i = 0; i < N_KEYS; i++) {
            if (strcmp(KEYS[i].section, SECTIONS[s]) != 0) continue;
            fprintf(f, "  %s: ", KEYS[i].key);
            write_value(f, r, &KEYS[i]);
            fputc('\n', f);
        }
    }
    int failed = fflush(f) != 0 || ferror(f) || fsync(fd) != 0;
    int saved = errno;
    if (fclose(f) != 0) failed = 1, saved = errno;
    if (failed) {
        unlink(tmp);
        return et_fail(err, "%s: write failed: %s", path, strerror(saved));
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        return et_fail(err, "%s: cannot rename the temporary file into place: %s", path, strerror(saved));
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

int et_recipe_equal(const et_recipe *a, const et_recipe *b) {
    for (int i = 0; i < N_KEYS; i++) {
        const key_desc *k = &KEYS[i];
        const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
        if (k->has_offset >= 0) {
            bool ha = *(const bool *)((const char *)a + k->has_offset), hb = *(const bool *)((const char *)b + k->has_offset);
            if (ha != hb) return 0;
            if (!ha) continue; /* an unset value carries no meaning */
        }
        switch (k->type) {
        case K_STRING:
            if (!str_eq(*(char *const *)fa, *(char *const *)fb)) return 0;
            break;
        case K_INT:
        case K_ENUM:
            if (*(const int *)fa != *(const int *)fb) return 0;
            break;
        case K_INT64:
            if (*(const int64_t *)fa != *(const int64_t *)fb) return 0;
            break;
        case K_UINT64:
            if (*(const uint64_t *)fa != *(const uint64_t *)fb) return 0;
            break;
        case K_DOUBLE:
            if (*(const double *)fa != *(const double *)fb) return 0;
            break;
        case K_BOOL:
            if (*(const bool *)fa != *(const bool *)fb) return 0;
            break;
        case K_TARGETS:
            if (*(const unsigned *)fa != *(const unsigned *)fb) return 0;
            break;
        }
    }
    return 1;
}
