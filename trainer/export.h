/* ehrtune export: a finished training run → PEFT adapter, merged model and/or
 * llama.cpp GGUF LoRA, each with a model card and the run's manifest.
 *
 *   OUT/export.json          what was exported, from which run (marks the folder as
 *                            an ehrtune export, so --force only ever replaces one)
 *   OUT/peft/                adapter_config.json, adapter_model.safetensors
 *   OUT/merged/              config.json, model*.safetensors (+ index), tokenizer files
 *   OUT/gguf/                adapter.gguf
 *   OUT/<format>/README.md   model card        OUT/<format>/manifest.json  run's manifest
 *
 * One rule for the layout: every format gets its own subfolder, also when only one
 * is asked for. Each subfolder is complete on its own (weights + card + manifest),
 * so it can be handed over alone. The whole of OUT is written under a temporary
 * name beside it and renamed when complete; a failure leaves nothing behind, and
 * an existing OUT is refused unless force is set (then swapped in atomically).
 * docs/export.md describes the formats and decisions. */
#ifndef EHRTUNE_EXPORT_H
#define EHRTUNE_EXPORT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "data/error.h"
#include "data/hf_config.h"
#include "data/recipe.h"
#include "trainer/lora.h"
#include "trainer/merge.h"

typedef enum { ET_EXPORT_PEFT = 1u, ET_EXPORT_MERGED = 2u, ET_EXPORT_GGUF = 4u } et_export_format;

/* "peft", "merged", "gguf" (the subfolder names and the --format spellings). */
const char *et_export_format_name(et_export_format f);
/* Parses "peft,gguf" (comma-separated, each once) into ET_EXPORT_* bits. */
int et_export_parse_formats(const char *s, unsigned *formats, et_error *err);

/* The run's privacy guarantee as recorded in manifest.json ("privacy.*"). */
typedef struct {
    int dp;                    /* 1: privacy.enabled and a finite epsilon recorded */
    double epsilon, delta;     /* NaN when absent */
    double noise_multiplier, sample_rate, max_grad_norm;
    double steps, n_units, max_sequences_per_unit;
    char unit[32], accountant[32], adjacency[32], sampling[32];
    char statement[512];       /* one line, plain words; see et_privacy_statement */
} et_export_privacy;

/* Summary of metrics.jsonl (absent file: steps_logged 0). */
typedef struct {
    int64_t steps_logged, last_step;
    double first_loss, last_loss;
    double tokens, targets;
} et_export_metrics;

/* Everything an export reads from a run, loaded and checked once. */
typedef struct {
    char run_dir[4096];
    char base_dir[4096];       /* resolved base model folder */
    char manifest_sha256[65];  /* digest of RUN/manifest.json, as copied */
    et_recipe recipe;          /* RUN/config.resolved.yaml */
    cJSON *manifest;           /* RUN/manifest.json */
    cJSON *eval;               /* RUN/eval.json when present, else NULL */
    et_hf_config cfg;          /* base config.json */
    et_lora lora;              /* RUN/adapter, shapes checked against cfg */
    et_export_privacy privacy;
    et_export_metrics metrics;
    const char *export_version;/* this binary's version (EHRTUNE_VERSION) */
    /* safetensors __metadata__ / GGUF "ehrtune.*" pairs: key, value, ..., NULL */
    char *metadata[32];
} et_export_run;

/* Loads RUN_DIR: the manifest must say run.status "completed" and adapter/ must
 * hold a PEFT adapter whose r / alpha / targets / rsLoRA match the recipe. The
 * base model is base_override, else the folder of the manifest's
 * base_model/config.json, else the recipe's model.path. The adapter's shapes are
 * checked against the base config.json first (another model: error naming the
 * tensor), then each base file the manifest lists must have the recorded size,
 * config.json the recorded sha256, and with verify_base every file its sha256.
 * On failure r is left closed. */
int et_export_run_open(et_export_run *r, const char *run_dir, const char *base_override,
                       int verify_base, const char *export_version, et_error *err);
void et_export_run_close(et_export_run *r);

/* The run manifest's files[] entry with this role (e.g. "corpus",
 * "output/adapter_model.safetensors"), or NULL. */
const cJSON *et_export_manifest_file(const cJSON *manifest, const char *role);

/* A manifest value by dotted path ("privacy.epsilon"), or NULL. */
const cJSON *et_export_manifest_get(const cJSON *manifest, const char *dotted);
/* A number by dotted path, reading the manifest's spellings of non-finite values
 * ("Infinity", "-Infinity"); NaN when absent or not a number. */
double et_export_manifest_number(const cJSON *manifest, const char *dotted);

/* The format writers: each fills an existing folder (weights and format files;
 * the card and manifest are added by et_export). bf16: adapter weights stored as
 * BF16 instead of F32. */
int et_export_peft(const et_export_run *r, const char *dir, int bf16, et_error *err);
int et_export_gguf(const et_export_run *r, const char *dir, int bf16, et_error *err);
int et_export_merged(const et_export_run *r, const char *dir, uint64_t max_shard_bytes,
                     et_merge_stats *st, et_error *err);

/* Llama/Mistral → "llama", Qwen2 → "qwen2" (llama.cpp's general.architecture). */
const char *et_gguf_arch_name(et_arch a);

typedef struct {
    unsigned formats;          /* ET_EXPORT_* bits, at least one */
    const char *base_dir;      /* NULL: as et_export_run_open resolves it */
    int force;                 /* replace an existing OUT that is an ehrtune export */
    int adapter_bf16;          /* PEFT and GGUF adapter weights in BF16 (default F32) */
    uint64_t max_shard_bytes;  /* merged shards; 0 = 5 GB */
    int verify_base;           /* sha256 of every base file against the manifest */
    const char *version;       /* EHRTUNE_VERSION of the exporting binary */
} et_export_options;

typedef struct {
    et_merge_stats merge;      /* when ET_EXPORT_MERGED */
    double seconds;            /* whole export */
} et_export_result;

int et_export(const char *run_dir, const char *out_dir, const et_export_options *o,
              et_export_result *res, et_error *err);

#endif
