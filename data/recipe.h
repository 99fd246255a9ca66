/* Recipes: one YAML file that says everything about a training run.
 *
 *   et_recipe r;
 *   if (et_recipe_load(&r, "recipes/tiny-cpu.yaml", &err)            // parse + defaults
 *    || et_recipe_override(&r, "lora.r=32", &err)                     // CLI key=value
 *    || et_recipe_validate(&r, &err)) { ... report err.msg ... }      // cross-field rules
 *   ...
 *   et_recipe_write_yaml(&r, "runs/x/config.resolved.yaml", &err);   // every key
 *   et_recipe_free(&r);
 *
 * The YAML has six sections (model, lora, data, optim, privacy, run); every key is
 * optional except model.path and data.train. docs/recipes.md is the user reference
 * (key, type, default, meaning); the table in recipe.c is the single source of truth
 * for names, types, defaults and ranges.
 *
 * Paths (model.path, data.train, data.val, run.out) are kept exactly as written.
 * Relative paths are relative to the current working directory of the process (as in
 * torchtune and axolotl), NOT to the recipe file's folder.
 *
 * Errors name the place: "recipes/x.yaml:7: unknown key 'lora.rank' — did you mean
 * 'lora.r'?" or "override 'lora.rnk=32': ...". Range and type errors are caught where
 * the value is read; rules that involve several keys (privacy: exactly one of
 * target_epsilon / noise_multiplier, ...) are checked by et_recipe_validate, which
 * et_recipe_load does NOT call, so that overrides can complete a recipe first. */
#ifndef EHRTUNE_RECIPE_H
#define EHRTUNE_RECIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "data/error.h"

/* ---- enums (each has a name table below; the names are the YAML spellings) ---- */

typedef enum { ET_RECIPE_QUANT_NONE = 0, ET_RECIPE_QUANT_NF4 = 1 } et_recipe_quantize;

/* auto: bf16 base weights on CUDA, fp32 on CPU. */
typedef enum { ET_RECIPE_DTYPE_AUTO = 0, ET_RECIPE_DTYPE_FP32 = 1, ET_RECIPE_DTYPE_BF16 = 2 } et_recipe_dtype;

/* The seven Llama projections, in HF module order. Bit i of et_recipe_lora.targets
 * is target i: ET_LORA_TARGET_BIT(ET_LORA_Q). */
typedef enum {
    ET_LORA_Q = 0,    /* q_proj    */
    ET_LORA_K = 1,    /* k_proj    */
    ET_LORA_V = 2,    /* v_proj    */
    ET_LORA_O = 3,    /* o_proj    */
    ET_LORA_GATE = 4, /* gate_proj */
    ET_LORA_UP = 5,   /* up_proj   */
    ET_LORA_DOWN = 6, /* down_proj */
    ET_LORA_NUM_TARGETS = 7
} et_lora_target;
#define ET_LORA_TARGET_BIT(t) (1u << (t))
#define ET_LORA_ALL_TARGETS ((1u << ET_LORA_NUM_TARGETS) - 1u)
extern const char *const et_lora_target_names[ET_LORA_NUM_TARGETS]; /* "q_proj", ... */

/* default: PEFT's init (A kaiming-uniform(a=sqrt(5)), B = 0);
 * gaussian: PEFT's init_lora_weights="gaussian" (A normal with std 1/r, B = 0). */
typedef enum { ET_RECIPE_INIT_DEFAULT = 0, ET_RECIPE_INIT_GAUSSIAN = 1 } et_recipe_lora_init;

/* Which documents of data.train (by the corpus /split dataset) are trained on. */
typedef enum {
    ET_RECIPE_SPLIT_TRAIN = 0,
    ET_RECIPE_SPLIT_VAL = 1,
    ET_RECIPE_SPLIT_TEST = 2,
    ET_RECIPE_SPLIT_ALL = 3
} et_recipe_split;

/* Same values, same order as et_schedule_kind in trainer/schedule.h (cast freely). */
typedef enum {
    ET_RECIPE_SCHED_CONSTANT = 0,
    ET_RECIPE_SCHED_LINEAR = 1,
    ET_RECIPE_SCHED_COSINE = 2
} et_recipe_schedule;

typedef enum {
    ET_RECIPE_UNIT_PATIENT = 0,
    ET_RECIPE_UNIT_DOCUMENT = 1,
    ET_RECIPE_UNIT_SEQUENCE = 2
} et_recipe_privacy_unit;

typedef enum { ET_RECIPE_ACCOUNTANT_RDP = 0, ET_RECIPE_ACCOUNTANT_PRV = 1 } et_recipe_accountant;

typedef enum { ET_RECIPE_DEVICE_AUTO = 0, ET_RECIPE_DEVICE_CPU = 1, ET_RECIPE_DEVICE_CUDA = 2 } et_recipe_device;

/* Name tables, indexed by the enum value (the YAML spellings). */
extern const char *const et_recipe_quantize_names[2];   /* none, nf4 */
extern const char *const et_recipe_dtype_names[3];      /* auto, fp32, bf16 */
extern const char *const et_recipe_lora_init_names[2];  /* default, gaussian */
extern const char *const et_recipe_split_names[4];      /* train, val, test, all */
extern const char *const et_recipe_schedule_names[3];   /* constant, linear, cosine */
extern const char *const et_recipe_unit_names[3];       /* patient, document, sequence */
extern const char *const et_recipe_accountant_names[2]; /* rdp, prv */
extern const char *const et_recipe_device_names[3];     /* auto, cpu, cuda */

/* ---- sections ---- */

typedef struct {
    char *path;                  /* required: HF folder (config.json, *.safetensors, tokenizer.json) */
    et_recipe_quantize quantize; /* [none] nf4 = QLoRA: frozen base weights stored as NF4 */
    et_recipe_dtype dtype;       /* [auto] compute/storage dtype of the frozen base weights */
} et_recipe_model;

typedef struct {
    int r;                    /* [16] rank, >= 1 */
    int alpha;                /* [32] >= 1; scaling = alpha/r, or alpha/sqrt(r) with use_rslora */
    double dropout;           /* [0.05] 0 <= dropout < 1, on the LoRA input (as PEFT) */
    unsigned targets;         /* [all seven] bitmask of ET_LORA_TARGET_BIT(...), never 0 */
    bool use_rslora;          /* [false] */
    et_recipe_lora_init init; /* [default] */
} et_recipe_lora;

typedef struct {
    char *train;           /* required: corpus .h5 written by `ehrtune ingest` */
    char *val;             /* [NULL = none] separate corpus for validation loss; when NULL
                              the trainer may use the val split of `train` */
    int seq_len;           /* [1024] tokens per training sequence, >= 2 */
    et_recipe_split split; /* [train] documents of `train` used for training */
} et_recipe_data;

typedef struct {
    double lr;                   /* [2e-4] > 0, peak learning rate */
    et_recipe_schedule schedule; /* [cosine] */
    int warmup_steps;            /* [0] >= 0, linear warm-up from 0 */
    double weight_decay;         /* [0.0] >= 0, AdamW decoupled weight decay */
    double beta1;                /* [0.9]   0 <= beta1 < 1 */
    double beta2;                /* [0.999] 0 <= beta2 < 1 */
    double eps;                  /* [1e-8]  > 0 */
    double max_grad_norm;        /* [1.0] >= 0, global-norm clipping (non-private only); 0 = off */
    int grad_accum;              /* [1] >= 1 micro-batches per optimizer step (non-private) */
    int64_t steps;               /* [0] >= 0 optimizer steps; 0 = derive from epochs */
    double epochs;               /* [1] > 0, may be fractional; used when steps == 0 */
} et_recipe_optim;

/* When enabled, the logical batch is a Poisson sample of privacy units (rate q), processed
 * in micro-batches of run.micro_batch sequences; optim.grad_accum and optim.max_grad_norm
 * do not apply (privacy.max_grad_norm is the per-unit clipping bound C). */
typedef struct {
    bool enabled;                      /* [false] */
    et_recipe_privacy_unit unit;       /* [patient] */
    double target_epsilon;             /* > 0; calibrate sigma to reach it (has_target_epsilon) */
    double noise_multiplier;           /* > 0; sigma given directly (has_noise_multiplier) */
    double delta;                      /* 0 < delta < 1 (has_delta); unset = "auto": chosen by the
                                          trainer from the number of units N: min(1e-5, 1/(10 N)) */
    double max_grad_norm;              /* [1.0] > 0, per-unit clipping bound C */
    double sample_rate;                /* 0 < q <= 1 (has_sample_rate) */
    int expected_batch_size;           /* >= 1, q = expected_batch_size / N (has_expected_batch_size);
                                          neither set: expected_batch_size = micro_batch * grad_accum */
    double epochs;                     /* > 0 (has_epochs): steps = floor(epochs / q), as Opacus */
    int64_t steps;                     /* >= 1 (has_steps); neither set: optim.steps / optim.epochs */
    et_recipe_accountant accountant;   /* [prv] */
    bool secure_rng;                   /* [true] noise seeded from the OS CSPRNG, seed never logged */
    int max_sequences_per_unit;        /* [4] >= 1, sequences one unit contributes per step */
    /* Which optional, default-less fields were set (a recipe may write them as `null`). */
    bool has_target_epsilon, has_noise_multiplier, has_delta;
    bool has_sample_rate, has_expected_batch_size;
    bool has_epochs, has_steps;
} et_recipe_privacy;

typedef struct {
    char *out;                     /* [runs/<recipe-file-stem>] run directory */
    et_recipe_device device;       /* [auto] cuda when a GPU is visible, else cpu */
    int micro_batch;               /* [8] >= 1 sequences per forward/backward */
    uint64_t seed;                 /* [1234] data order, LoRA init, dropout (not DP noise when
                                      privacy.secure_rng) */
    int checkpoint_every;          /* [100] >= 0 steps between checkpoints; 0 = only at the end */
    int keep_checkpoints;          /* [0] >= 0 newest checkpoints kept on disk; 0 = all */
    int log_every;                 /* [1] >= 1 steps between metrics.jsonl lines */
    bool activation_checkpointing; /* [false] recompute each layer in backward */
    int64_t max_steps;             /* [0] >= 0 hard cap on optimizer steps; 0 = no cap */
} et_recipe_run;

typedef struct et_recipe {
    et_recipe_model model;
    et_recipe_lora lora;
    et_recipe_data data;
    et_recipe_optim optim;
    et_recipe_privacy privacy;
    et_recipe_run run;
    char *source; /* the file it was loaded from (or the name given to load_string); NULL if none */
} et_recipe;

/* ---- API ---- */

/* Fills every field with its default; strings NULL (run.out too: load sets it from the
 * file name). Owns nothing yet, but et_recipe_free is safe on it. */
void et_recipe_init(et_recipe *r);

/* Reads a YAML recipe: init, then applies every key found (type and range checked, with
 * file:line in errors). Does not run et_recipe_validate. On failure r is freed and reset. */
int et_recipe_load(et_recipe *r, const char *path, et_error *err);

/* Same, from text in memory; `name` stands for the file in messages and run.out's default
 * (runs/<stem of name>); NULL means "recipe". Handy for tests. */
int et_recipe_load_string(et_recipe *r, const char *yaml, const char *name, et_error *err);

/* Applies one "section.key=value" (value read as a YAML scalar or flow list; a list may
 * also be written a,b,c; an empty value unsets a default-less key). On failure the
 * message starts "override '<assignment>': " and r is unchanged. */
int et_recipe_override(et_recipe *r, const char *assignment, et_error *err);

/* Cross-field rules and required keys (model.path, data.train), plus every range again
 * (so a struct filled in code is held to the same rules). Call after the overrides. */
int et_recipe_validate(const et_recipe *r, et_error *err);

/* Writes the fully resolved recipe (every key, defaults included; unset default-less keys
 * as null, delta as auto) so that et_recipe_load gives back an equal recipe. Written to a
 * temporary name then renamed; mode 0600. */
int et_recipe_write_yaml(const et_recipe *r, const char *path, et_error *err);

/* 1 when every field (strings by content, has_* flags included) is equal; `source` ignored. */
int et_recipe_equal(const et_recipe *a, const et_recipe *b);

/* Frees the strings and resets r to et_recipe_init's state. */
void et_recipe_free(et_recipe *r);

#endif
