/* ehrtune demo: the whole path in seconds on the CPU —
 *   synth (synthetic de-identified notes) → ingest (tokenizer + PHI scan → corpus.h5)
 *   → a tiny random Llama model sized to the tokenizer → LoRA training with
 *   recipes/tiny-cpu.yaml → the loss curve and where the adapter and metrics are. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/atomic_file.h"
#include "data/hf_config.h"
#include "data/recipe.h"
#include "data/tokenizer.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/model.h"
#include "trainer/train.h"

#define DEMO_PATIENTS "120"
#define DEMO_TOKENIZER "tests/fixtures/tokenizers/demo-bytelevel/tokenizer.json"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune demo [--recipe recipes/tiny-cpu.yaml] [--dir runs/demo]\n"
            "                    [--tokenizer " DEMO_TOKENIZER "]\n"
            "\n"
            "Writes synthetic notes (DIR/notes.jsonl), ingests them with the tokenizer into\n"
            "DIR/corpus.h5, builds a tiny random Llama model sized to the tokenizer\n"
            "(DIR/model), then trains LoRA on the CPU with the recipe and prints the loss\n"
            "curve and where the adapter and metrics are. Run from the repository root (the\n"
            "recipe's and the tokenizer's default paths are relative to it).\n");
}

static void tiny_config(et_hf_config *c, int vocab) {
    et_hf_config_init(c, ET_ARCH_LLAMA);
    c->vocab_size = vocab;
    c->hidden_size = 64;
    c->intermediate_size = 176;
    c->num_layers = 2;
    c->num_heads = 4;
    c->num_kv_heads = 2;
    c->head_dim = 16;
    c->max_position_embeddings = 256;
    c->rms_norm_eps = 1e-5f;
    c->rope.type = ET_ROPE_DEFAULT;
    c->rope.theta = 10000.0;
    c->tie_word_embeddings = 0;
}

/* Copies a small file (the tokenizer, into the model folder as HF keeps it). */
static int copy_file(const char *from, const char *to, et_error *err) {
    FILE *in = fopen(from, "rb");
    if (!in) return et_fail(err, "%s: cannot open (%s)", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return et_fail(err, "%s: cannot create (%s)", to, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    return bad ? et_fail(err, "%s: copy failed", to) : 0;
}

/* Prints the per-step losses of metrics.jsonl as a compact curve. */
static void print_curve(const char *metrics_path) {
    FILE *f = fopen(metrics_path, "r");
    if (!f) return;
    char line[512];
    int i = 0;
    printf("loss by step:");
    while (fgets(line, sizeof line, f)) {
        /* the line's own step (logging may skip steps); under DP the loss is null */
        const char *st = strstr(line, "\"step\":"), *s = strstr(line, "\"loss\":");
        if (st && s && (i % 5 == 0)) {
            long long step = strtoll(st + 7, NULL, 10);
            if (!strncmp(s + 7, "null", 4)) printf(" %lld:-", step);
            else printf(" %lld:%.2f", step, strtod(s + 7, NULL));
        }
        i++;
    }
    printf("\n");
    fclose(f);
}

int cmd_demo(int argc, char **argv) {
    const char *recipe_path = "recipes/tiny-cpu.yaml", *dir = "runs/demo",
               *tokenizer = DEMO_TOKENIZER;
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        const char **dst = !strcmp(argv[i], "--recipe")      ? &recipe_path
                           : !strcmp(argv[i], "--dir")       ? &dir
                           : !strcmp(argv[i], "--tokenizer") ? &tokenizer
                                                             : NULL;
        if (dst) {
            if (!(*dst = et_cli_value("ehrtune demo", &seen, argv[i], argc, argv, &i))) return 2;
        } else {
            fprintf(stderr, "ehrtune demo: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    umask(077);
    et_error err = {{0}};
    et_recipe r;
    et_recipe_init(&r);
    et_model m;
    et_tokenizer *tok = NULL;
    int have_model = 0, rc = 1;
    char model_dir[4096], corpus[4096], notes[4096], out[4096], path[4200];
    snprintf(model_dir, sizeof model_dir, "%s/model", dir);
    snprintf(corpus, sizeof corpus, "%s/corpus.h5", dir);
    snprintf(notes, sizeof notes, "%s/notes.jsonl", dir);
    /* A fresh run directory each time, so the demo can be repeated. */
    snprintf(out, sizeof out, "%s/train-%ld", dir, (long)time(NULL));
    if (et_recipe_load(&r, recipe_path, &err)) {
        et_wrap(&err, "run `ehrtune demo` from the repository root, or pass --recipe");
        goto done;
    }
    /* Set as they are, not as "key=value" overrides: those are read as YAML, where a
     * '#', ": ", '[', '&' or '!' in --dir would change the value. */
    char **const fields[] = {&r.model.path, &r.data.train, &r.run.out};
    const char *const values[] = {model_dir, corpus, out};
    for (int i = 0; i < 3; i++) {
        char *copy = strdup(values[i]);
        if (!copy) {
            et_fail(&err, "out of memory");
            goto done;
        }
        free(*fields[i]);
        *fields[i] = copy;
    }
    if (et_recipe_validate(&r, &err)) goto done;
    if (et_tokenizer_load(&tok, tokenizer, &err)) {
        et_wrap(&err, "run `ehrtune demo` from the repository root, or pass --tokenizer");
        goto done;
    }
    if (et_make_dirs(dir, 0, &err)) goto done; /* only --dir and its parents (not ./runs) */

    /* 1. Synthetic notes, 2. the corpus (PHI-scanned, tokenized), by the real commands. */
    char *synth_argv[] = {"synth", "--patients", DEMO_PATIENTS, "--seed", "7", "--instructions",
                          "-o", notes, "--force", NULL};
    char *ingest_argv[] = {"ingest", notes, "--tokenizer", (char *)tokenizer, "-o", corpus,
                           "--val-frac", "0.05", "--force", NULL};
    if (cmd_synth(9, synth_argv) != 0 || cmd_ingest(9, ingest_argv) != 0) {
        et_fail(&err, "preparing the demo corpus failed (message above)");
        goto done;
    }
    /* 3. A tiny random model whose vocabulary is the tokenizer's. */
    et_hf_config cfg;
    tiny_config(&cfg, et_tokenizer_vocab_size(tok));
    if (et_model_init_random(&m, &cfg, 2024, &err)) goto done;
    have_model = 1;
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    if (et_model_save_hf(&m, model_dir, &err) || copy_file(tokenizer, path, &err)) goto done;
    printf("model:  %s (random tiny Llama: %d layers, hidden %d, vocab %d)\n", model_dir,
           cfg.num_layers, cfg.hidden_size, cfg.vocab_size);

    /* 4. Train. */
    et_train_options o = {0};
    o.version = EHRTUNE_VERSION;
    o.progress = stdout;
    o.progress_is_tty = isatty(STDOUT_FILENO);
    et_train_result res;
    if (et_train(&r, &o, &res, &err)) goto done;
    char metrics[4200];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    print_curve(metrics);
    printf("trained %lld steps on the CPU: loss %.3f -> %.3f (%.0f tokens/s)\n",
           (long long)res.steps_done, res.first_loss, res.last_loss, res.tokens_per_s);
    printf("adapter: %s/adapter (PEFT format)\nmetrics: %s\nmanifest: %s/manifest.json\n", out,
           metrics, out);
    rc = 0;
done:
    if (rc) fprintf(stderr, "ehrtune demo: %s\n", err.msg);
    if (have_model) et_model_free(&m);
    et_tokenizer_free(tok);
    et_recipe_free(&r);
    return rc;
}
