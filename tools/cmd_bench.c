/* ehrtune bench: LoRA training steps (forward, backward, AdamW) on random weights
 * and random tokens for a given Llama shape; prints tokens/s and peak memory as one
 * JSON line. tests/crosscheck/bench_torch_peft.py is the PyTorch + PEFT peer with
 * the same arguments, so both can be run side by side (docs/perf.md). With
 * --device cuda the steps run on the CUDA backend (trainer/bench_cuda.h; the peer
 * there is tests/gpu/bench_hf_peft.py, same MFU formula). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "data/hf_config.h"
#include "kernels/ops.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/bench_cuda.h"
#include "trainer/dp.h"
#include "trainer/dp_rng.h"
#include "trainer/model.h"
#include "trainer/model_cuda.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune bench [--hidden 256] [--layers 4] [--heads 8] [--kv-heads 8]\n"
            "                     [--ffn 688] [--vocab 32000] [--seq 256] [--batch 4]\n"
            "                     [--rank 16] [--warmup 2] [--steps 10]\n"
            "                     [--device cpu|cuda] [--llama-1b] [--ckpt] [--plan] [--dp]\n"
            "                     [--dropout 0.05]\n"
            "\n"
            "Times LoRA training steps (all seven projections, AdamW) with random weights;\n"
            "prints one JSON line. CPU threads: OMP_NUM_THREADS.\n"
            "  --device cuda  bf16 training on the GPU: tokens/s, MFU, peak GPU memory; then\n"
            "                 one more step's device time by op class (stderr, and\n"
            "                 \"profile\" in the JSON)\n"
            "  --llama-1b     Llama-3.2-1B's shape (hidden 2048, 16 layers, 32/8 heads,\n"
            "                 FFN 8192, vocab 128256, tied head); later flags override it\n"
            "  --ckpt         activation checkpointing (cuda)\n"
            "  --dropout P    LoRA dropout (cuda; default 0, as the HF+PEFT peer run)\n"
            "  --plan         print the CUDA device memory plan for the shape and exit\n"
            "                 (no GPU needed)\n"
            "  --dp           DP-SGD steps on the same batch: per-example LoRA gradients,\n"
            "                 per-example clipping, noise; reports the extra bytes (with\n"
            "                 --device cuda: also the non-DP step and the ratio)\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* --device cuda and --plan. */
static int bench_cuda(const et_hf_config *c, int batch, int seq, int rank, int warmup, int steps, int dp,
                      int ckpt, float dropout, int plan_only) {
    if (plan_only) {
        et_plan p;
        et_cuda_options o = {batch, seq, ckpt, 0, 0};
        et_cuda_model_plan(&p, c, rank, (1u << ET_PROJ_COUNT) - 1, dropout, &o);
        printf("CUDA device memory plan: batch %d x %d tokens, LoRA r=%d on 7 projections%s\n",
               batch, seq, rank, ckpt ? ", activation checkpointing" : "");
        for (int i = 0; i < p.n; i++)
            printf("  %-36s %-30s %10.1f MiB\n", p.item[i].name, p.item[i].shape,
                   p.item[i].bytes / 1048576.0);
        printf("  %-36s %-30s %10.1f MiB (+ 32 MiB cuBLASLt workspace)\n", "total", "",
               p.total / 1048576.0);
        return 0;
    }
    et_cuda_bench_config b = {*c, batch, seq, rank, warmup, steps, 2.0f * rank, ckpt, dp, dropout};
    et_cuda_bench_result r;
    et_error err = {{0}};
    if (et_cuda_bench_run(&b, &r, &err)) {
        fprintf(stderr, "ehrtune bench: %s\n", err.msg);
        return 1;
    }
    char line[4096];
    et_cuda_bench_json(line, sizeof line, &b, &r);
    printf("%s\n", line);
    /* stderr: stdout stays one JSON line for scripts */
    et_cuda_bench_print_profile(stderr, &r, "");
    return 0;
}

int cmd_bench(int argc, char **argv) {
    int hidden = 256, layers = 4, heads = 8, kv = 8, ffn = 688, vocab = 32000, seq = 256,
        batch = 4, rank = 16, warmup = 2, steps = 10;
    int cuda = 0, ckpt = 0, plan = 0, dp = 0;
    float dropout = 0.0f;
    et_cli_seen seen = {0};
    et_hf_config c;
    et_hf_config_init(&c, ET_ARCH_LLAMA);
    struct { const char *flag; int *dst; } opts[] = {
        {"--hidden", &hidden}, {"--layers", &layers}, {"--heads", &heads}, {"--kv-heads", &kv},
        {"--ffn", &ffn},       {"--vocab", &vocab},   {"--seq", &seq},     {"--batch", &batch},
        {"--rank", &rank},     {"--warmup", &warmup}, {"--steps", &steps}};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--device")) {
            if (!et_cli_value("ehrtune bench", &seen, argv[i], argc, argv, &i)) return 2;
            if (strcmp(argv[i], "cpu") && strcmp(argv[i], "cuda")) {
                fprintf(stderr, "ehrtune bench: --device must be cpu or cuda, not '%s'\n", argv[i]);
                return 2;
            }
            cuda = !strcmp(argv[i], "cuda");
            continue;
        }
        if (!strcmp(argv[i], "--llama-1b")) {
            et_cuda_bench_llama_1b(&c);
            hidden = c.hidden_size, layers = c.num_layers, heads = c.num_heads;
            kv = c.num_kv_heads, ffn = c.intermediate_size, vocab = c.vocab_size;
            continue;
        }
        if (!strcmp(argv[i], "--dp")) {
            dp = 1;
            continue;
        }
        if (!strcmp(argv[i], "--dropout")) {
            if (!et_cli_value("ehrtune bench", &seen, argv[i], argc, argv, &i)) return 2;
            double p;
            if (et_cli_double(argv[i], &p) || !(p >= 0.0 && (float)p < 1.0f)) {
                fprintf(stderr, "ehrtune bench: --dropout wants a number in [0, 1), not '%s'\n",
                        argv[i]);
                return 2;
            }
            dropout = (float)p;
            continue;
        }
        if (!strcmp(argv[i], "--ckpt") || !strcmp(argv[i], "--plan")) {
            if (!strcmp(argv[i], "--ckpt")) ckpt = 1;
            else plan = 1;
            continue;
        }
        size_t k = 0;
        for (; k < sizeof opts / sizeof *opts; k++)
            if (!strcmp(argv[i], opts[k].flag)) {
                if (!et_cli_value("ehrtune bench", &seen, opts[k].flag, argc, argv, &i)) return 2;
                /* whole numbers only ("4xyz" is a typo, not 4); --warmup may be 0 */
                long long v;
                const long long min = !strcmp(opts[k].flag, "--warmup") ? 0 : 1;
                if (et_cli_int(argv[i], min, 1LL << 30, &v)) {
                    fprintf(stderr, "ehrtune bench: %s wants a whole number in %lld..%lld, not "
                                    "'%s'\n", opts[k].flag, min, 1LL << 30, argv[i]);
                    return 2;
                }
                *opts[k].dst = (int)v;
                break;
            }
        if (k == sizeof opts / sizeof *opts) {
            fprintf(stderr, "ehrtune bench: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    c.hidden_size = hidden;
    c.num_layers = layers;
    c.num_heads = heads;
    c.num_kv_heads = kv;
    c.head_dim = heads > 0 ? hidden / heads : 0;
    c.intermediate_size = ffn;
    c.vocab_size = vocab;
    if (c.max_position_embeddings < seq) c.max_position_embeddings = seq;
    c.rms_norm_eps = 1e-5f;
    et_error err = {{0}};
    if (steps < 1 || batch < 1 || seq < 2 || et_hf_config_validate(&c, "bench shape", &err)) {
        fprintf(stderr, "ehrtune bench: %s\n", err.msg[0] ? err.msg : "bad shape");
        return 2;
    }
    if (dp && plan) {
        fprintf(stderr, "ehrtune bench: --dp and --plan cannot be combined\n");
        return 2;
    }
    if (plan || cuda) return bench_cuda(&c, batch, seq, rank, warmup, steps, dp, ckpt, dropout, plan);
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
    /* --dp: every sequence is its own privacy unit (so each per-example gradient is
     * clipped), as DP-SGD on this batch would do it; the extra memory is the
     * per-example gradients (the clipped sum accumulates in l.grads). */
    size_t np = (size_t)l.n_params;
    float *pe = dp ? malloc(sizeof(float) * np * (size_t)batch) : NULL;
    float *row_scale = dp ? malloc(sizeof(float) * (size_t)batch) : NULL;
    et_dp_rng rng;
    if (dp && (!pe || !row_scale || et_dp_rng_init(&rng, 0, 1, &err))) {
        if (!err.msg[0]) et_fail(&err, "out of memory for per-example gradients");
        goto fail;
    }
    if (dp) {
        b.row_loss_scale = row_scale;
        for (int e = 0; e < batch; e++) {
            int nt = 0;
            for (int t = 0; t < seq; t++) nt += tg[(size_t)e * seq + t] >= 0;
            row_scale[e] = 1.0f / (float)nt;
        }
    }
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = now_s();
        double loss;
        int64_t nv;
        memset(l.grads, 0, sizeof(float) * (size_t)l.n_params);
        if (et_model_forward(&m, &l, a, &b, 1, 1, (uint64_t)s, &loss, &nv, &err)) goto fail;
        if (!dp) {
            et_model_backward(&m, &l, a, &b, 1.0f / (float)nv);
        } else {
            memset(pe, 0, sizeof(float) * np * (size_t)batch);
            et_model_backward_per_example(&m, &l, a, &b, 1.0f, pe);
            for (int e = 0; e < batch; e++) /* the clipped sum accumulates in l.grads */
                et_dp_clip_add(l.grads, pe + (size_t)e * np, (int64_t)np, 1.0, NULL);
            et_dp_add_noise(l.grads, (int64_t)np, 1.0, &rng, (uint64_t)s);
            et_scale(l.grads, 1.0f / (float)batch, (int64_t)np);
        }
        et_adamw_update(l.params, mo, vo, l.grads, l.n_params, 1e-4, 0.9, 0.999, 1e-8, 0.0, s + 1);
    }
    double dt = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("{\"impl\":\"%s\",\"tokens_per_s\":%.1f,\"step_s\":%.4f,\"peak_rss_mb\":%.1f,"
           "\"threads\":%d,\"hidden\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"ffn\":%d,"
           "\"vocab\":%d,\"seq\":%d,\"batch\":%d,\"rank\":%d,\"lora_params\":%lld,\"steps\":%d,"
           "\"dp_extra_bytes\":%zu}\n",
           dp ? "ehrtune-cpu-dp" : "ehrtune-cpu", (double)n * steps / dt, dt / steps, ru.ru_maxrss / 1024.0, threads, hidden, layers,
           heads, kv, ffn, vocab, seq, batch, rank, (long long)l.n_params, steps,
           dp ? sizeof(float) * np * (size_t)batch : (size_t)0);
    free(pe);
    free(row_scale);
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
