/* RUN/manifest.json: the run's audit record. It answers, for an auditor or privacy
 * officer who was not there: which exact inputs (sha256 + size of the corpus, every
 * base model file and the recipe), which code (version, sha256 of the executable,
 * compiler), which hardware (host, CPU, cores, memory), when, and which privacy
 * guarantee (fields the trainer sets, e.g. "privacy.epsilon"). docs/manifest.md
 * lists the fields.
 *
 * Fail closed: a failed add_file / add_dir_files, or a misused key (a dotted key
 * that runs through a non-object value, a reserved key), is remembered, and
 * et_manifest_write then refuses to write: a manifest that lacks one of its inputs
 * must never look complete. The setters return nothing for that reason: their
 * errors surface at write time, naming the key.
 *
 * Hashing cost: every file is read once, streamed through 1 MiB buffers. An 8B
 * model (16 GB) takes about a minute per core at ~300 MB/s, or less when its shards
 * are hashed in parallel (add_dir_files uses OpenMP threads, one file each) and the
 * disk keeps up. It is done anyway: the digest is what ties the adapter to the
 * exact base weights it was trained against. */
#ifndef EHRTUNE_MANIFEST_H
#define EHRTUNE_MANIFEST_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "data/error.h"

typedef struct et_manifest et_manifest;

/* NULL only when out of memory. */
et_manifest *et_manifest_new(void);
/* A run's manifest.json (or another JSON-object file of the run, such as eval.json)
 * read back: a regular file of at most 64 MiB holding one JSON object; NULL with err
 * set otherwise. The caller frees it with cJSON_Delete. */
cJSON *et_manifest_read_json(const char *path, et_error *err);
void et_manifest_free(et_manifest *m);

/* Hashes one file and appends {"role","path","bytes","sha256"} to "files". role
 * names what the file is for ("corpus", "recipe", "base_model/config.json") and
 * must be unique in the manifest. path is recorded absolute (symlinks kept as
 * given). On error (file missing or unreadable, duplicate role) nothing is added
 * and the manifest is marked incomplete. */
int et_manifest_add_file(et_manifest *m, const char *role, const char *path, et_error *err);

/* Every regular file directly in dir whose name ends with one of the suffixes in
 * suffix_filter (comma-separated, e.g. ".json,.safetensors"; NULL means
 * ".json,.safetensors,.model,.txt,.jinja": an HF model folder's config, index,
 * tokenizer (incl. tokenizer.model, merges.txt), chat template and weights), sorted
 * by name, added with role "<role>/<name>". Subfolders are not descended into.
 * Files are hashed in parallel. No matching file is an error (wrong folder). */
int et_manifest_add_dir_files(et_manifest *m, const char *role, const char *dir,
                              const char *suffix_filter, et_error *err);

/* Set a field by dotted path, creating objects on the way ("privacy.epsilon" ->
 * {"privacy": {"epsilon": ...}}); setting an existing key replaces its value.
 * "files" and "manifest" are reserved. set_json takes ownership of value. */
void et_manifest_set_str(et_manifest *m, const char *dotted_key, const char *value);
void et_manifest_set_num(et_manifest *m, const char *dotted_key, double value);
void et_manifest_set_bool(et_manifest *m, const char *dotted_key, bool value);
void et_manifest_set_json(et_manifest *m, const char *dotted_key, cJSON *value);

/* Records "code" (version as given, or "unknown" when NULL; the executable's path
 * and sha256 via /proc/self/exe; compiler; whether the CUDA backend is compiled in)
 * and "host" (hostname; uname sysname/release/machine; CPU model from
 * /proc/cpuinfo; logical cores; OpenMP max threads; total memory from
 * /proc/meminfo; "recorded_utc" = now, ISO-8601). A fact the system does not
 * provide is recorded as null, never guessed. GPU facts are for the CUDA backend
 * to add ("host.gpu.name", ...). Pass EHRTUNE_VERSION from the CLI. */
void et_manifest_add_environment(et_manifest *m, const char *version);

/* Writes the manifest (pretty JSON, "manifest.written_utc" stamped now) to path:
 * temp file in the same folder, mode 0600, fsync, rename, fsync of the folder. An
 * existing file at path is replaced only by a complete new one. Refuses (and
 * writes nothing) when the manifest is incomplete; the message names the cause. */
int et_manifest_write(et_manifest *m, const char *path, et_error *err);

#endif
