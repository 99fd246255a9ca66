/* ehrtune train RECIPE.yaml [key=value ...] [--resume] [--init-adapter DIR [--init-adapter-public]] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/recipe.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune train RECIPE.yaml [section.key=value ...] [--resume] [--stop-after N]\n"
            "                     [--init-adapter PEFT_DIR [--init-adapter-public]]\n"
            "\n"
            "Fine-tunes LoRA weights as the recipe says (docs/recipes.md lists every key).\n"
            "  section.key=value  override one recipe key, e.g. lora.r=32 optim.lr=1e-4\n"
            "  --resume           continue the run in run.out from its latest checkpoint\n"
            "  --init-adapter DIR start from a PEFT adapter instead of a fresh LoRA init\n"
            "                     (its sha256 goes into the manifest)\n"
            "  --init-adapter-public  with privacy.enabled: declare that adapter free of\n"
            "                     this run's patients' data (or privately trained): the DP\n"
            "                     guarantee holds only then; the manifest records the claim\n"
            "  --stop-after N     checkpoint and stop after N steps (resume later), e.g. to\n"
            "                     fit a scheduler's time slot\n"
            "Writes into run.out: config.resolved.yaml, metrics.jsonl, checkpoints/,\n"
            "adapter/ (PEFT format), manifest.json. The directory is 0700 and its files 0600.\n");
}

/* A path as one shell word: as is when it is plain, else in single quotes ('\'' for ' ). */
static void print_shell_word(FILE *f, const char *s) {
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        "_-./+,:@%") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    fputc('\'', f);
}

int cmd_train(int argc, char **argv) {
    const char *recipe_path = NULL;
    et_train_options o = {0};
    o.version = EHRTUNE_VERSION;
    /* key=value overrides, in order; option values (which may hold '=') are not */
    const char **overrides = calloc((size_t)argc, sizeof *overrides);
    int n_overrides = 0;
    et_cli_seen seen = {0};
    if (!overrides) {
        fprintf(stderr, "ehrtune train: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(overrides);
            return 0;
        }
        if (!strcmp(argv[i], "--resume")) o.resume = 1;
        else if (!strcmp(argv[i], "--init-adapter-public")) o.init_adapter_public = 1;
        else if (!strcmp(argv[i], "--init-adapter")) {
            o.init_adapter = et_cli_value("ehrtune train", &seen, argv[i], argc, argv, &i);
            if (!o.init_adapter) {
                free(overrides);
                return 2;
            }
        } else if (!strcmp(argv[i], "--stop-after")) {
            const char *v = et_cli_value("ehrtune train", &seen, argv[i], argc, argv, &i);
            long long n;
            if (!v || et_cli_int(v, 1, INT64_MAX, &n)) {
                if (v)
                    fprintf(stderr, "ehrtune train: --stop-after needs a positive step count, "
                                    "not '%s'\n", v);
                free(overrides);
                return 2;
            }
            o.stop_after = n;
        }
        else if (argv[i][0] == '-') {
            fprintf(stderr, "ehrtune train: unknown option '%s'\n", argv[i]);
            usage(stderr);
            free(overrides);
            return 2;
        } else if (strchr(argv[i], '=')) {
            overrides[n_overrides++] = argv[i];
        } else {
            if (recipe_path) {
                fprintf(stderr, "ehrtune train: two recipes given ('%s', '%s'); an override is "
                                "section.key=value\n", recipe_path, argv[i]);
                free(overrides);
                return 2;
            }
            recipe_path = argv[i];
        }
    }
    if (!recipe_path || (o.init_adapter_public && !o.init_adapter)) {
        if (recipe_path) fprintf(stderr, "ehrtune train: --init-adapter-public needs --init-adapter\n");
        else usage(stderr);
        free(overrides);
        return 2;
    }
    et_recipe r;
    et_error err = {{0}};
    et_recipe_init(&r);
    if (et_recipe_load(&r, recipe_path, &err)) goto fail;
    for (int i = 0; i < n_overrides; i++)
        if (et_recipe_override(&r, overrides[i], &err)) goto fail;
    if (et_recipe_validate(&r, &err)) goto fail;
    /* Everything the run writes derives from patient data: owner-only. */
    umask(077);
    o.progress = stdout;
    o.progress_is_tty = isatty(STDOUT_FILENO);
    et_train_result res;
    if (et_train(&r, &o, &res, &err)) goto fail;
    printf("trained %lld steps: loss %.4f -> %.4f, %.0f tokens/s\n", (long long)res.steps_done,
           res.first_loss, res.last_loss, res.tokens_per_s);
    if (res.dp)
        printf("privacy: epsilon %.4f spent (accounted at the run's delta; see manifest.json)%s\n",
               res.epsilon, res.budget_exhausted ? " — stopped: the next step would exceed the "
                                                  "target epsilon" : "");
    if (res.stopped_early) {
        /* the resolved recipe, not the one given: it holds every override (run.out,
         * privacy.*, ...), so the command resumes this very run */
        char resolved[4200];
        snprintf(resolved, sizeof resolved, "%s/config.resolved.yaml", res.run_dir);
        printf("stopped after step %lld as asked; continue with: ehrtune train ",
               (long long)res.steps_done);
        if (resolved[0] == '-') fputs("./", stdout); /* a path, not an option */
        print_shell_word(stdout, resolved);
        printf(" --resume\n");
        et_recipe_free(&r);
        free(overrides);
        return 0;
    }
    printf("adapter: %s/adapter (PEFT)   metrics: %s/metrics.jsonl\n", res.run_dir, res.run_dir);
    et_recipe_free(&r);
    free(overrides);
    return 0;
fail:
    if (o.progress && o.progress_is_tty) fputc('\n', stdout);
    fprintf(stderr, "ehrtune train: %s\n", err.msg);
    et_recipe_free(&r);
    free(overrides);
    return 1;
}
