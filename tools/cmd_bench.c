/* ehrtune bench: LoRA training steps (forward, backward, AdamW) on random weights
 * and random tokens for a given Llama shape; prints tokens/s and peak memory as one
 * JSON line. tests/crosscheck/bench_torch_peft.py is the PyTorch + PEFT peer with
 * the same arguments, so both can be run side by side (docs/perf.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "data/hf_config.h"
#include "kernels/ops.h"
#include "tools/commands.h"
#include "trainer/model.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune bench [--hidden 256] [--layers 4] [--heads 8] [--kv-heads 8]\n"
            "                     [--ffn 688] [--vocab 32000] [--seq 256] [--batch 4]\n"
            "                     [--rank 16] [--warmup 2] [--steps 10]\n"
            "\n"
            "Times LoRA training steps (all seven projections, AdamW) on the CPU backend\n"
            "with random weights; prints one JSON line. Threads: OMP_NUM_THREADS.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cmd_bench(int argc, char **argv) {
    int hidden = 256, layers = 4, heads = 8, kv = 8, ffn = 688, vocab = 32000, seq = 256,
        batch = 4, rank = 16, warmup = 2, steps = 10;
    struct { const char *flag; int *dst; } opts[] = {
        {"--hidden", &hidden}, {"--layers", &layers}, {"--heads", &heads}, {"--kv-heads", &kv},
        {"--ffn", &ffn},       {"--vocab", &vocab},   {"--seq", &seq},     {"--batch", &batch},
        {"--rank", &rank},     {"--warmup", &warmup}, {"--steps", &steps}};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        size_t k = 0;
        for (; k < sizeof opts / sizeof *opts; k++)
            if (!strcmp(argv[i], opts[k].flag) && i + 1 < argc) {
                *opts[k].dst = atoi(argv[++i]);
                break;
            }
        if (k == sizeof opts / sizeof *opts) {
            fprintf(stderr, "ehrtune bench: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    et_hf_config c;
    et_hf_config_init(&c, ET_ARCH_LLAMA);
    c.hidden_size = hidden;
    c.num_layers = layers;
    c.num_heads = heads;
    c.num_kv_heads = kv;
    c.head_dim = heads > 0 ? hidden / heads : 0;
    c.intermediate_size = ffn;
    c.vocab_size = vocab;
    c.max_position_embeddings = seq;
    c.rms_norm_eps = 1e-5f;
    et_error err = {{0}};
    if (steps < 1 || batch < 1 || seq < 2 || et_hf_config_validate(&c, "bench shape", &err)) {
        fprintf(stderr, "ehrtune bench: %s\n", err.msg[0] ? err.msg : "bad shape");
        return 2;
    }
    et_model m;
    et_lora l;
    et_acts *a = NULL;
    if (et_model_init_random(&m, &c, 1, &err)) goto fail;
    if (et_lora_create(&l, &c, rank, 2.0f * rank, 0, 0.0f, (1u << ET_PROJ_COUNT) - 1, &err))
        goto fail;
    et_lora_init_weights(&l, ET_LORA_INIT_DEFAULT, 1);
    if (et_acts_create(&a, &c, &l, batch, seq, &err)) goto fail;
    size_t n = (size_t)batch * seq;
    int32_t *ids = malloc(n * sizeof *ids), *tg = malloc(n * sizeof *tg);
    float *mo = calloc((size_t)l.n_params, sizeof(float)), *vo = calloc((size_t)l.n_params, sizeof(float));
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(et_uniform(3, i) * vocab);
    for (size_t i = 0; i < n; i++) tg[i] = (i + 1) % seq ? ids[i + 1] : -1;
    et_batch b = {ids, tg, batch, seq, NULL};
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = now_s();
        double loss;
        int64_t nv;
        memset(l.grads, 0, sizeof(float) * (size_t)l.n_params);
        if (et_model_forward(&m, &l, a, &b, 1, 1, (uint64_t)s, &loss, &nv, &err)) goto fail;
        et_model_backward(&m, &l, a, &b, 1.0f / (float)nv);
        et_adamw_update(l.params, mo, vo, l.grads, l.n_params, 1e-4, 0.9, 0.999, 1e-8, 0.0, s + 1);
    }
    double dt = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("{\"impl\":\"ehrtune-cpu\",\"tokens_per_s\":%.1f,\"step_s\":%.4f,\"peak_rss_mb\":%.1f,"
           "\"threads\":%d,\"hidden\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"ffn\":%d,"
           "\"vocab\":%d,\"seq\":%d,\"batch\":%d,\"rank\":%d,\"lora_params\":%lld,\"steps\":%d}\n",
           (double)n * steps / dt, dt / steps, ru.ru_maxrss / 1024.0, threads, hidden, layers,
           heads, kv, ffn, vocab, seq, batch, rank, (long long)l.n_params, steps);
    free(ids);
    free(tg);
    free(mo);
    free(vo);
    et_acts_free(a);
    et_lora_free(&l);
    et_model_free(&m);
    return 0;
fail:
    fprintf(stderr, "ehrtune bench: %s\n", err.msg);
    return 1;
}
