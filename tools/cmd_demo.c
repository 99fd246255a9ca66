/* ehrtune demo: a tiny random Llama model + a synthetic pretokenized corpus, then
 * LoRA training with recipes/tiny-cpu.yaml on the CPU — the whole path in seconds.
 *
 * The corpus is drawn from a sparse random Markov chain (each token has three
 * likely successors), so there is real structure for the adapter to learn and the
 * loss falls visibly. It stands in for tokenized notes until the text pipeline
 * (synth + tokenizer) exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/corpus.h"
#include "data/hf_config.h"
#include "data/recipe.h"
#include "kernels/ops.h"
#include "tools/commands.h"
#include "trainer/model.h"
#include "trainer/train.h"

#define DEMO_VOCAB 512
#define DEMO_PATIENTS 120
#define DEMO_DOCS_PER_PATIENT 3

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune demo [--recipe recipes/tiny-cpu.yaml] [--dir runs/demo]\n"
            "\n"
            "Builds a tiny random Llama model (DIR/model) and a synthetic pretokenized\n"
            "corpus (DIR/corpus.h5), then trains LoRA on the CPU with the recipe and prints\n"
            "the loss curve and where the adapter and metrics are. Run from the repository\n"
            "root (the recipe's paths are relative to it).\n");
}

static void tiny_config(et_hf_config *c) {
    et_hf_config_init(c, ET_ARCH_LLAMA);
    c->vocab_size = DEMO_VOCAB;
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
    c->bos_token_id = 1;
    c->eos_token_id = 2;
}

/* Documents from a sparse Markov chain: successor k of token t is
 * succ[t*3+k], chosen with probabilities 0.6 / 0.3 / 0.1. */
static int write_corpus(const char *path, et_error *err) {
    int32_t succ[DEMO_VOCAB * 3];
    for (int i = 0; i < DEMO_VOCAB * 3; i++)
        succ[i] = 3 + (int32_t)(et_uniform(42, (uint64_t)i) * (DEMO_VOCAB - 3));
    et_corpus_writer_options opt = {0};
    opt.tokenizer_sha256 = "";
    opt.vocab_size = DEMO_VOCAB;
    opt.source_sha256 = "";
    opt.phi_scan = "{\"scanned\": false, \"reason\": \"synthetic demo tokens\"}";
    opt.force = 1;
    et_corpus_writer *w;
    if (et_corpus_writer_open(&w, path, &opt, err)) return -1;
    int32_t tokens[400];
    uint64_t ctr = 0;
    static const char *const group_names[1] = {"sex"};
    static const char *const sexes[2] = {"F", "M"};
    for (int p = 0; p < DEMO_PATIENTS; p++)
        for (int d = 0; d < DEMO_DOCS_PER_PATIENT; d++) {
            int n = 80 + (int)(et_uniform(7, ctr++) * 300);
            tokens[0] = 1; /* BOS */
            int32_t t = 3 + (int32_t)(et_uniform(7, ctr++) * (DEMO_VOCAB - 3));
            for (int i = 1; i < n; i++) {
                tokens[i] = t;
                double u = et_uniform(7, ctr++);
                t = succ[t * 3 + (u < 0.6 ? 0 : u < 0.9 ? 1 : 2)];
            }
            const char *label = sexes[p % 2];
            et_corpus_doc doc = {0};
            doc.patient_id = 1000 + p;
            doc.split = p % 20 == 0 ? ET_SPLIT_VAL : p % 20 == 1 ? ET_SPLIT_TEST : ET_SPLIT_TRAIN;
            doc.tokens = tokens;
            doc.n_tokens = n;
            doc.n_groups = 1;
            doc.group_names = group_names;
            doc.group_labels = &label;
            if (et_corpus_writer_add(w, &doc, err)) {
                et_corpus_writer_abort(w);
                return -1;
            }
        }
    return et_corpus_writer_finish(w, err);
}

static int mkdir_private(const char *path, et_error *err) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return et_fail(err, "%s: cannot create directory (%s)", path, strerror(errno));
    return 0;
}

/* Prints the per-step losses of metrics.jsonl as a compact curve. */
static void print_curve(const char *metrics_path) {
    FILE *f = fopen(metrics_path, "r");
    if (!f) return;
    char line[512];
    int i = 0;
    printf("loss by step:");
    while (fgets(line, sizeof line, f)) {
        const char *s = strstr(line, "\"loss\":");
        if (s && (i % 5 == 0)) printf(" %d:%.2f", i + 1, strtod(s + 7, NULL));
        i++;
    }
    printf("\n");
    fclose(f);
}

int cmd_demo(int argc, char **argv) {
    const char *recipe_path = "recipes/tiny-cpu.yaml", *dir = "runs/demo";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--recipe") && i + 1 < argc) recipe_path = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else {
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
    int have_model = 0, rc = 1;
    char model_dir[4096], corpus[4096], out[4096], ov[4400];
    snprintf(model_dir, sizeof model_dir, "%s/model", dir);
    snprintf(corpus, sizeof corpus, "%s/corpus.h5", dir);
    /* A fresh run directory each time, so the demo can be repeated. */
    snprintf(out, sizeof out, "%s/train-%ld", dir, (long)time(NULL));
    if (et_recipe_load(&r, recipe_path, &err)) {
        et_wrap(&err, "run `ehrtune demo` from the repository root, or pass --recipe");
        goto done;
    }
    const char *const overrides[] = {"model.path=", "data.train=", "run.out="};
    const char *const values[] = {model_dir, corpus, out};
    for (int i = 0; i < 3; i++) {
        snprintf(ov, sizeof ov, "%s%s", overrides[i], values[i]);
        if (et_recipe_override(&r, ov, &err)) goto done;
    }
    if (et_recipe_validate(&r, &err)) goto done;

    if (mkdir_private("runs", &err) || mkdir_private(dir, &err)) goto done;
    et_hf_config cfg;
    tiny_config(&cfg);
    if (et_model_init_random(&m, &cfg, 2024, &err)) goto done;
    have_model = 1;
    if (et_model_save_hf(&m, model_dir, &err)) goto done;
    printf("model:  %s (random tiny Llama: %d layers, hidden %d, vocab %d)\n", model_dir,
           cfg.num_layers, cfg.hidden_size, cfg.vocab_size);
    if (write_corpus(corpus, &err)) goto done;
    printf("corpus: %s (%d synthetic patients x %d documents)\n", corpus, DEMO_PATIENTS,
           DEMO_DOCS_PER_PATIENT);

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
    printf("adapter: %s/adapter (PEFT format)\nmetrics: %s\n", out, metrics);
    rc = 0;
done:
    if (rc) fprintf(stderr, "ehrtune demo: %s\n", err.msg);
    if (have_model) et_model_free(&m);
    et_recipe_free(&r);
    return rc;
}
