/* ehrtune export RUN_DIR --format peft|merged|gguf[,...] -o OUT_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/export.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune export RUN_DIR --format FMT[,FMT...] -o OUT_DIR [--force]\n"
            "                      [--dtype f32|bf16] [--base MODEL_DIR] [--max-shard-size SIZE]\n"
            "                      [--verify-base]\n"
            "\n"
            "Exports a finished training run. FMT (comma-separated or --format repeated):\n"
            "  peft    adapter_config.json + adapter_model.safetensors (loads with PEFT)\n"
            "  merged  LoRA folded into the base weights: BF16 safetensors, sharded, with\n"
            "          config.json and tokenizer files (loads with transformers)\n"
            "  gguf    adapter.gguf, a LoRA adapter for llama.cpp (--lora)\n"
            "Each format goes to OUT_DIR/<format>/ with a model card (README.md) and the run's\n"
            "manifest.json. OUT_DIR is written under a temporary name and renamed when\n"
            "complete; nothing is left behind on failure.\n"
            "  --force           replace OUT_DIR if it is an earlier ehrtune export\n"
            "  --dtype           adapter weights for peft and gguf (default f32)\n"
            "  --base DIR        base model folder (default: the one the run trained on,\n"
            "                    from its manifest); its files must match the manifest\n"
            "  --max-shard-size  merged shards, e.g. 5GB (default), 500MB, or bytes\n"
            "  --verify-base     also compare the sha256 of every base file with the\n"
            "                    manifest (reads the whole model once)\n");
}

/* "5GB", "500MB", "2.5GB", "123456": decimal units, as huggingface_hub. Plain digits
 * and one dot only (strtod alone took " 5GB", "0x100" and "0.5" bytes). */
static int parse_size(const char *s, uint64_t *out) {
    if (!*s || strspn(s, "0123456789.") == 0 || *s == '.') return -1;
    char *end;
    double v = strtod(s, &end);
    for (const char *c = s; c < end; c++)
        if (!(*c >= '0' && *c <= '9') && *c != '.') return -1;
    double mul = 1;
    if (!strcmp(end, "KB") || !strcmp(end, "kB")) mul = 1e3;
    else if (!strcmp(end, "MB")) mul = 1e6;
    else if (!strcmp(end, "GB")) mul = 1e9;
    else if (!strcmp(end, "TB")) mul = 1e12;
    else if (*end) return -1;
    if (!(v > 0) || end == s || v * mul > 1e15) return -1;
    if (mul == 1 && v != floor(v)) return -1; /* bytes are whole */
    *out = (uint64_t)llround(v * mul);
    return *out ? 0 : -1;
}

int cmd_export(int argc, char **argv) {
    const char *run = NULL, *out = NULL;
    et_export_options o = {0};
    o.version = EHRTUNE_VERSION;
    et_error err = {{0}};
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) o.force = 1;
        else if (!strcmp(a, "--verify-base")) o.verify_base = 1;
        else if (!strcmp(a, "--format")) {
            /* may be repeated (one format each time), unlike the other options */
            if (i + 1 >= argc) {
                fprintf(stderr, "ehrtune export: --format needs a value\n");
                return 2;
            }
            unsigned f;
            if (et_export_parse_formats(argv[++i], &f, &err)) {
                fprintf(stderr, "ehrtune export: %s\n", err.msg);
                return 2;
            }
            if (o.formats & f) {
                fprintf(stderr, "ehrtune export: a format is given twice\n");
                return 2;
            }
            o.formats |= f;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--base") || !strcmp(a, "--dtype") ||
                   !strcmp(a, "--max-shard-size")) {
            const char *v = et_cli_value("ehrtune export", &seen, a, argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "-o")) out = v;
            else if (!strcmp(a, "--base")) o.base_dir = v;
            else if (!strcmp(a, "--dtype")) {
                if (!strcmp(v, "bf16")) o.adapter_bf16 = 1;
                else if (strcmp(v, "f32")) {
                    fprintf(stderr, "ehrtune export: --dtype must be f32 or bf16, not '%s'\n", v);
                    return 2;
                }
            } else if (parse_size(v, &o.max_shard_bytes)) {
                fprintf(stderr, "ehrtune export: --max-shard-size '%s' is not a size such as 5GB, "
                                "500MB or a number of bytes\n", v);
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "ehrtune export: unknown option '%s' (see ehrtune export --help)\n",
                    a);
            return 2;
        } else if (!run) run = a;
        else {
            fprintf(stderr, "ehrtune export: one run directory only ('%s', '%s')\n", run, a);
            return 2;
        }
    }
    if (!run || !out || !o.formats) {
        fprintf(stderr, "ehrtune export: %s (see ehrtune export --help)\n",
                !run ? "no RUN_DIR given" : !out ? "no -o OUT_DIR given" : "no --format given");
        return 2;
    }
    /* The exported weights derive from patient data: owner-only, like the run. */
    umask(077);
    et_export_result res;
    if (et_export(run, out, &o, &res, &err)) {
        fprintf(stderr, "ehrtune export: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        et_export_format f = (et_export_format)(1u << i);
        if (!(o.formats & f)) continue;
        printf("%-6s %s/%s/\n", et_export_format_name(f), out, et_export_format_name(f));
    }
    if (o.formats & ET_EXPORT_MERGED && res.merge.seconds > 0)
        printf("merged: %d tensors (%d with LoRA) in %d shard%s, %.3f GB in %.2f s (%.2f s/GB)\n",
               res.merge.n_tensors, res.merge.n_merged, res.merge.n_shards,
               res.merge.n_shards == 1 ? "" : "s", res.merge.file_bytes / 1e9, res.merge.seconds,
               res.merge.seconds / (res.merge.file_bytes / 1e9));
    return 0;
}
