/* ehrtune inspect --plan RECIPE.yaml: the memory plan of a training run, printed
 * before anything is allocated or any weight read (only config.json is opened). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/hf_config.h"
#include "data/recipe.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/model.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune inspect --plan RECIPE.yaml [section.key=value ...]\n"
            "                       [--config CONFIG.json]\n"
            "\n"
            "Prints every planned buffer of a training step (name, shape, bytes) and the\n"
            "total, from the model's config.json, run.micro_batch and data.seq_len.\n"
            "--config reads the model shape from another config.json (e.g. when the\n"
            "weights are not on this machine).\n");
}

static void human(char *out, size_t n, double bytes) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

int cmd_inspect(int argc, char **argv) {
    const char *recipe_path = NULL, *config = NULL;
    int plan = 0;
    et_cli_seen seen = {0};
    /* key=value overrides, in order; option values (which may hold '=') are not */
    const char **overrides = calloc((size_t)argc, sizeof *overrides);
    int n_overrides = 0;
    if (!overrides) {
        fprintf(stderr, "ehrtune inspect: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(overrides);
            return 0;
        } else if (!strcmp(argv[i], "--plan")) plan = 1;
        else if (!strcmp(argv[i], "--config")) {
            if (!(config = et_cli_value("ehrtune inspect", &seen, argv[i], argc, argv, &i))) {
                free(overrides);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "ehrtune inspect: unknown option '%s'\n", argv[i]);
            free(overrides);
            return 2;
        } else if (strchr(argv[i], '=')) {
            overrides[n_overrides++] = argv[i];
        } else if (recipe_path) {
            fprintf(stderr, "ehrtune inspect: two recipes given ('%s', '%s'); an override is "
                            "section.key=value\n", recipe_path, argv[i]);
            free(overrides);
            return 2;
        } else {
            recipe_path = argv[i];
        }
    }
    if (!plan || !recipe_path) {
        usage(stderr);
        free(overrides);
        return 2;
    }
    et_error err = {{0}};
    et_recipe r;
    et_recipe_init(&r);
    et_hf_config cfg;
    char path[4200];
    if (et_recipe_load(&r, recipe_path, &err)) goto fail;
    for (int i = 0; i < n_overrides; i++)
        if (et_recipe_override(&r, overrides[i], &err)) goto fail;
    if (et_recipe_validate(&r, &err)) goto fail;
    if (!config) {
        snprintf(path, sizeof path, "%s/config.json", r.model.path);
        config = path;
    }
    if (et_hf_config_load(&cfg, config, &err)) {
        et_wrap(&err, "reading the model shape (use --config FILE if the model is elsewhere)");
        goto fail;
    }
    et_plan p;
    et_model_plan(&p, &cfg, r.run.micro_batch, r.data.seq_len, r.lora.r, r.lora.targets,
                  (float)r.lora.dropout);
    printf("memory plan: %s, micro_batch %d x seq_len %d, LoRA r=%d, CPU backend (fp32)\n",
           et_arch_name(cfg.arch), r.run.micro_batch, r.data.seq_len, r.lora.r);
    printf("%-34s %-32s %14s\n", "tensor", "shape", "bytes");
    char h[32];
    for (int i = 0; i < p.n; i++) {
        if (!p.item[i].bytes) continue;
        human(h, sizeof h, (double)p.item[i].bytes);
        printf("%-34s %-32s %14s\n", p.item[i].name, p.item[i].shape, h);
    }
    human(h, sizeof h, (double)p.total);
    printf("%-34s %-32s %14s  (%zu bytes)\n", "total", "", h, p.total);
    et_recipe_free(&r);
    free(overrides);
    return 0;
fail:
    fprintf(stderr, "ehrtune inspect: %s\n", err.msg);
    et_recipe_free(&r);
    free(overrides);
    return 1;
}
