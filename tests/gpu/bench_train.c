/* The CUDA training path on a GPU machine, without CMake or the CLI's
 * dependencies (tests/gpu/check.sh builds it with nvcc + gcc):
 *
 *   bench_train --parity [--json FILE]
 *       20 AdamW steps of two tiny models on the CPU reference and on CUDA; every
 *       step's loss must agree within 2e-2 relative (tests/gpu/train_parity.h);
 *       then 12 DP-SGD steps (per-unit clipping, the same ChaCha20 noise) likewise.
 *   bench_train --bench [--batch 1] [--seq 2048] [--warmup 2] [--steps 5] [--ckpt]
 *                       [--json FILE] [--layers N --hidden N --heads N --kv-heads N
 *                       --ffn N --vocab N]
 *       LoRA r=16 (all seven projections) training steps on Llama-3.2-1B's shape (or
 *       the shape given) with random weights: tokens/s, MFU, peak memory
 *       (trainer/bench_cuda.h). --dp: then DP-SGD steps on the same batches (each row
 *       its own unit: per-example gradients, clip, noise) and their ratio to the
 *       plain step ("dp_ratio"). Before the JSON line, where one extra (untimed)
 *       step's device time goes by op class ("profile" in the JSON).
 *
 * Exit: 0 ok, 1 a failure or a parity miss, 2 usage, 77 no CUDA device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/gpu/train_parity.h"
#include "trainer/bench_cuda.h"

#ifdef ET_BENCH_STANDALONE
/* data/hf_config.c needs cJSON, absent on the GPU machine; this is its rule. */
int et_hf_layer_window(const et_hf_config *c, int layer) {
    return c->sliding_window > 0 && layer >= c->sliding_window_first_layer ? c->sliding_window : 0;
}
#endif

static int usage(void) {
    fprintf(stderr, "usage: bench_train --parity [--json FILE]\n"
                    "       bench_train --bench [--batch N] [--seq N] [--warmup N] [--steps N] "
                    "[--ckpt] [--dp] [--dropout P] [--json FILE]\n"
                    "                           [--layers N] [--hidden N] [--heads N] [--kv-heads N] "
                    "[--ffn N] [--vocab N]\n");
    return 2;
}

/* Messages go inside JSON strings: no double quotes, backslashes or controls. */
static const char *json_safe(char *s) {
    for (char *p = s; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '\'';
    return s;
}

static void emit(FILE *json, const char *line) {
    printf("%s\n", line);
    fflush(stdout);
    if (json) {
        fprintf(json, "%s\n", line);
        fflush(json);
    }
}

static int run_parity(FILE *json) {
    train_parity_case cases[TRAIN_PARITY_CASES];
    int nc = train_parity_cases(cases), failed = 0;
    for (int i = 0; i < nc; i++) {
        train_parity_result res;
        et_error err = {{0}};
        char line[4096];
        if (train_parity_run(&cases[i], &res, &err)) {
            snprintf(line, sizeof line,
                     "{\"kind\": \"train_parity\", \"case\": \"%s\", \"status\": \"ERROR\", "
                     "\"error\": \"%.300s\"}", cases[i].name, json_safe(err.msg));
            emit(json, line);
            failed++;
            continue;
        }
        const int ok = train_parity_ok(&res);
        failed += !ok;
        printf("train parity %-24s attention: %s\n", cases[i].name, res.attention);
        printf("  step  cpu_loss    cuda_loss   rel.diff\n");
        for (int s = 0; s < res.steps; s++)
            printf("  %4d  %10.6f  %10.6f  %.2e\n", s + 1, res.cpu[s], res.gpu[s],
                   fabs(res.gpu[s] - res.cpu[s]) / fabs(res.cpu[s]));
        int at = snprintf(line, sizeof line,
                          "{\"kind\": \"train_parity\", \"case\": \"%s\", \"status\": \"%s\", "
                          "\"steps\": %d, \"limit\": %g, \"worst_rel\": %.3e, \"worst_step\": %d, "
                          "\"grad_limit\": %g, \"grad_rel_step1\": %.3e, \"attention\": \"%s\", "
                          "\"lora_kext\": %s, \"dropout_fused\": %s, \"cpu\": [",
                          cases[i].name, ok ? "PASS" : "FAIL", res.steps, TRAIN_PARITY_LIMIT,
                          res.worst, res.worst_step + 1, TRAIN_PARITY_GRAD_LIMIT, res.grad_err0,
                          res.attention, res.lora_kext ? "true" : "false",
                          res.dropout_fused ? "true" : "false");
        for (int s = 0; s < res.steps; s++)
            at += snprintf(line + at, sizeof line - at, "%s%.6f", s ? ", " : "", res.cpu[s]);
        at += snprintf(line + at, sizeof line - at, "], \"cuda\": [");
        for (int s = 0; s < res.steps; s++)
            at += snprintf(line + at, sizeof line - at, "%s%.6f", s ? ", " : "", res.gpu[s]);
        snprintf(line + at, sizeof line - at, "]}");
        emit(json, line);
    }
    /* DP-SGD on both backends (the first case's model, 4 rows in 3 privacy units) */
    train_parity_case dc = cases[0];
    dc.name = "llama-dp-units";
    dc.batch = 4;
    dc.steps = 12;
    train_parity_result res;
    double norm_err;
    et_error err = {{0}};
    char line[4096];
    if (train_parity_run_dp(&dc, TRAIN_PARITY_DP_CLIP, TRAIN_PARITY_DP_SIGMA, &res, &norm_err, &err)) {
        snprintf(line, sizeof line,
                 "{\"kind\": \"train_parity\", \"case\": \"%s\", \"status\": \"ERROR\", "
                 "\"error\": \"%.300s\"}", dc.name, json_safe(err.msg));
        emit(json, line);
        return 1;
    }
    const int ok = train_parity_ok(&res) && norm_err <= TRAIN_PARITY_GRAD_LIMIT;
    failed += !ok;
    printf("train parity %-24s attention: %s (clip %g, sigma %g, unit-norm rel.diff %.2e)\n",
           dc.name, res.attention, TRAIN_PARITY_DP_CLIP, TRAIN_PARITY_DP_SIGMA, norm_err);
    printf("  step  cpu_loss    cuda_loss   rel.diff\n");
    for (int s = 0; s < res.steps; s++)
        printf("  %4d  %10.6f  %10.6f  %.2e\n", s + 1, res.cpu[s], res.gpu[s],
               fabs(res.gpu[s] - res.cpu[s]) / fabs(res.cpu[s]));
    snprintf(line, sizeof line,
             "{\"kind\": \"train_parity\", \"case\": \"%s\", \"status\": \"%s\", \"steps\": %d, "
             "\"limit\": %g, \"worst_rel\": %.3e, \"worst_step\": %d, \"grad_limit\": %g, "
             "\"grad_rel_step1\": %.3e, \"unit_norm_rel_step1\": %.3e, \"clip\": %g, \"sigma\": %g, "
             "\"attention\": \"%s\", \"lora_kext\": %s, \"dropout_fused\": %s}",
             dc.name, ok ? "PASS" : "FAIL", res.steps, TRAIN_PARITY_LIMIT, res.worst,
             res.worst_step + 1, TRAIN_PARITY_GRAD_LIMIT, res.grad_err0, norm_err,
             TRAIN_PARITY_DP_CLIP, TRAIN_PARITY_DP_SIGMA, res.attention,
             res.lora_kext ? "true" : "false", res.dropout_fused ? "true" : "false");
    emit(json, line);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    int parity = 0, bench = 0;
    et_cuda_bench_config b;
    memset(&b, 0, sizeof b);
    et_cuda_bench_llama_1b(&b.cfg);
    b.batch = 1, b.seq = 2048, b.rank = 16, b.alpha = 32.0f, b.warmup = 2, b.steps = 5;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *dst = !strcmp(a, "--batch") ? &b.batch : !strcmp(a, "--seq") ? &b.seq
                 : !strcmp(a, "--warmup") ? &b.warmup : !strcmp(a, "--steps") ? &b.steps
                 : !strcmp(a, "--layers") ? &b.cfg.num_layers : !strcmp(a, "--hidden") ? &b.cfg.hidden_size
                 : !strcmp(a, "--heads") ? &b.cfg.num_heads : !strcmp(a, "--kv-heads") ? &b.cfg.num_kv_heads
                 : !strcmp(a, "--ffn") ? &b.cfg.intermediate_size : !strcmp(a, "--vocab") ? &b.cfg.vocab_size
                 : NULL;
        if (dst && i + 1 < argc) *dst = atoi(argv[++i]);
        else if (!strcmp(a, "--parity")) parity = 1;
        else if (!strcmp(a, "--bench")) bench = 1;
        else if (!strcmp(a, "--ckpt")) b.activation_checkpointing = 1;
        else if (!strcmp(a, "--dp")) b.dp = 1;
        else if (!strcmp(a, "--dropout") && i + 1 < argc) b.dropout = (float)atof(argv[++i]);
        else if (!strcmp(a, "--json") && i + 1 < argc) json_path = argv[++i];
        else return usage();
    }
    if (parity == bench) return usage();
    b.cfg.head_dim = b.cfg.num_heads > 0 ? b.cfg.hidden_size / b.cfg.num_heads : 0;
    char name[128];
    if (et_cuda_device_count(name, sizeof name) < 1) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    FILE *json = json_path ? fopen(json_path, "a") : NULL;
    if (json_path && !json) {
        fprintf(stderr, "bench_train: cannot write %s\n", json_path);
        return 1;
    }
    int rc;
    if (parity) {
        rc = run_parity(json);
    } else {
        et_cuda_bench_result r;
        et_error err = {{0}};
        char line[4096];
        if (et_cuda_bench_run(&b, &r, &err)) {
            snprintf(line, sizeof line,
                     "{\"kind\": \"bench\", \"impl\": \"ehrtune-cuda\", \"status\": \"error\", "
                     "\"batch\": %d, \"seq\": %d, \"activation_checkpointing\": %s, "
                     "\"error\": \"%.900s\"}",
                     b.batch, b.seq, b.activation_checkpointing ? "true" : "false", json_safe(err.msg));
            rc = 1;
        } else {
            et_cuda_bench_json(line, sizeof line, &b, &r);
            /* before the JSON line: check.sh shows each run's last log line */
            et_cuda_bench_print_profile(stdout, &r, "  ");
            rc = 0;
        }
        emit(json, line);
    }
    if (json) fclose(json);
    return rc;
}
