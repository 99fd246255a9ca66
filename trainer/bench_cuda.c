#include "trainer/bench_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/ops.h"
#include "trainer/lora.h"
#include "trainer/model.h"
#include "trainer/model_cuda.h"
#include "trainer/model_cuda_dp.h"

#ifdef EHRTUNE_HAVE_CUDA
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/ops_cuda.h"
#endif

void et_cuda_bench_llama_1b(et_hf_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = ET_ARCH_LLAMA;
    c->vocab_size = 128256;
    c->hidden_size = 2048;
    c->intermediate_size = 8192;
    c->num_layers = 16;
    c->num_heads = 32;
    c->num_kv_heads = 8;
    c->head_dim = 64;
    c->max_position_embeddings = 131072;
    c->rms_norm_eps = 1e-5f;
    c->rope = (et_rope_params){ET_ROPE_LLAMA3, 500000.0, 32.0, 1.0, 4.0, 8192.0};
    c->tie_word_embeddings = 1;
    c->bos_token_id = 128000;
    c->eos_token_id = 128001;
    c->n_eos = 1;
    c->eos_token_ids[0] = 128001;
}

/* Dense bf16 tensor-core peak by device name (datasheets, as bench_hf_peft.py);
 * the longest matching key wins. */
static double peak_for(const char *name) {
    static const struct {
        const char *key;
        double tflops;
    } table[] = {{"H100", 989.0}, {"H100 PCIe", 756.0}, {"H100 NVL", 835.0}, {"H200", 989.0},
                 {"A100", 312.0}};
    double best = 0;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strstr(name, table[i].key) && strlen(table[i].key) > best_len)
            best = table[i].tflops, best_len = strlen(table[i].key);
    return best;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Step s's batch: fresh random tokens every step, as the peer draws them. */
static void make_batch(const et_cuda_bench_config *b, int32_t *ids, int32_t *tg, int s) {
    const size_t n = (size_t)b->batch * b->seq;
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(et_uniform(1000 + (uint64_t)s, i) * b->cfg.vocab_size);
    for (size_t i = 0; i < n; i++) tg[i] = (i + 1) % (size_t)b->seq ? ids[i + 1] : -1;
}

/* One full training step on step s's batch, made by make_batch (queued; the loss's
 * and the norm's read-backs synchronise part of it): zero, forward + backward, clip
 * to 1, AdamW. */
static int train_step(const et_cuda_bench_config *b, et_cuda_model *cm, int32_t *ids, int32_t *tg,
                      int s, double *loss, int64_t *nv, et_error *err) {
    const size_t n = (size_t)b->batch * b->seq;
    et_batch batch = {ids, tg, b->batch, b->seq, NULL};
    double norm;
    if (et_cuda_model_zero_grads(cm, err) ||
        et_cuda_model_step(cm, &batch, 1.0f / (float)(n - (size_t)b->batch), 1, (uint64_t)s, loss,
                           nv, err) ||
        et_cuda_model_grad_norm(cm, &norm, err))
        return -1;
    if (norm > 1.0 && et_cuda_model_scale_grads(cm, (float)(1.0 / (norm + 1e-6)), err)) return -1;
    return et_cuda_model_adamw(cm, 1e-4, 0.9, 0.999, 1e-8, 0.0, s + 1, err);
}

/* One more step, outside the timed loop, with the device timeline on: where a
 * step's time goes (the marks' event records would otherwise be in the timing). */
static int bench_profile(const et_cuda_bench_config *b, et_cuda_bench_result *r,
                         et_cuda_model *cm, int32_t *ids, int32_t *tg, et_error *err) {
    /* under 50 marks a layer (about 80 with LoRA dropout; a recomputed forward adds
       its half again), 3 for each of the head's chunks (>= 64 rows each), the
       optimizer's 4 and the pass's 3, with room to spare */
    const int capacity = 64 + 128 * b->cfg.num_layers + 3 * b->batch * b->seq / 64;
    double loss;
    int64_t nv;
    make_batch(b, ids, tg, b->warmup + b->steps);
    if (et_cuda_profile_begin(capacity, err)) return -1;
    const double t0 = now_s();
    if (train_step(b, cm, ids, tg, b->warmup + b->steps, &loss, &nv, err)) {
        et_cuda_profile p; /* close it; the step's error is the one to report */
        et_error ignored = {{0}};
        et_cuda_profile_end(&p, &ignored);
        return -1;
    }
    if (et_cuda_profile_end(&r->profile, err)) return -1; /* synchronises */
    r->profile_wall_ms = (now_s() - t0) * 1e3;
    return 0;
}

/* DP-SGD steps on the batches of the timed loop (same seeds): each row its own
 * privacy unit, clip 1, σ 1, norms read back as the trainer does for its report. */
static int bench_dp(const et_cuda_bench_config *b, et_cuda_bench_result *r, et_cuda_model *cm,
                    int32_t *ids, int32_t *tg, double *times, et_error *err) {
    et_cuda_dp *dp = NULL;
    int64_t *first = malloc(sizeof(int64_t) * (size_t)(b->batch + 1));
    float *row_scale = malloc(sizeof(float) * (size_t)b->batch);
    double *norms = malloc(sizeof(double) * (size_t)b->batch);
    const uint32_t key[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int rc = -1;
    if (!first || !row_scale || !norms) {
        et_fail(err, "out of memory");
        goto done;
    }
    if (et_cuda_dp_create(&dp, cm, b->batch, err)) goto done;
    r->dp_extra_mib = (double)et_cuda_dp_bytes(dp) / 1048576.0;
    for (int i = 0; i <= b->batch; i++) first[i] = i;
    for (int i = 0; i < b->batch; i++) row_scale[i] = 1.0f / (float)(b->seq - 1);
    for (int s = 0; s < b->warmup + b->steps; s++) {
        make_batch(b, ids, tg, s);
        et_batch batch = {ids, tg, b->batch, b->seq, row_scale};
        double t0 = now_s(), loss;
        int64_t nv;
        if (et_cuda_model_zero_grads(cm, err) ||
            et_cuda_dp_step(cm, dp, &batch, 1.0f, et_dropout_seed(1, s), 0, &loss, &nv, err) ||
            et_cuda_dp_clip_accumulate(cm, dp, first, b->batch, 1.0, norms, err) ||
            et_cuda_dp_noise(cm, 1.0, key, (uint64_t)s, 1.0f / (float)b->batch, err) ||
            et_cuda_model_adamw(cm, 1e-4, 0.9, 0.999, 1e-8, 0.0, b->warmup + b->steps + s + 1, err))
            goto done;
#ifdef EHRTUNE_HAVE_CUDA
        if (etc_synchronize()) {
            et_fail(err, "bench (DP): %s", etc_last_error());
            goto done;
        }
#endif
        if (s >= b->warmup) times[s - b->warmup] = now_s() - t0;
    }
    qsort(times, (size_t)b->steps, sizeof *times, cmp_double);
    r->dp_step_s_median = times[b->steps / 2];
    r->dp_step_s_min = times[0];
    r->dp_ratio = r->dp_step_s_median / r->step_s_median;
    rc = 0;
done:
    et_cuda_dp_free(dp);
    free(first), free(row_scale), free(norms);
    return rc;
}

int et_cuda_bench_run(const et_cuda_bench_config *b, et_cuda_bench_result *r, et_error *err) {
    memset(r, 0, sizeof *r);
    const et_hf_config *c = &b->cfg;
    if (b->batch < 1 || b->seq < 2 || b->steps < 1 || b->warmup < 0 || b->rank < 1)
        return et_fail(err, "batch, seq, steps and rank must be positive");
#ifndef EHRTUNE_HAVE_CUDA
    return et_fail(err, "this ehrtune was built without the CUDA backend (no nvcc at build time)");
#endif
    if (et_cuda_device_count(r->device, sizeof r->device) < 1)
        return et_fail(err, "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    et_lora l;
    if (b->dropout < 0.0f || b->dropout >= 1.0f) return et_fail(err, "dropout must be in [0, 1)");
    if (et_lora_create(&l, c, b->rank, b->alpha, 0, b->dropout, (1u << ET_PROJ_COUNT) - 1, err))
        return -1;
    et_lora_init_weights(&l, ET_LORA_INIT_DEFAULT, 1);
    et_cuda_model *cm = NULL;
    et_cuda_options o = {b->batch, b->seq, b->activation_checkpointing, 0, 0};
    const size_t n = (size_t)b->batch * b->seq;
    int32_t *ids = malloc(n * sizeof *ids), *tg = malloc(n * sizeof *tg);
    double *times = malloc(sizeof(double) * (size_t)b->steps);
    int rc = -1;
    if (!ids || !tg || !times) {
        et_fail(err, "out of memory");
        goto done;
    }
    if (et_cuda_model_create_random(&cm, c, &l, &o, 1, err)) goto done;
    snprintf(r->attention, sizeof r->attention, "%s", et_cuda_model_attention_path(cm));
    r->lora_kext = et_cuda_model_lora_kext(cm);
    r->dropout_fused = et_cuda_model_dropout_fused(cm);
    for (int s = 0; s < b->warmup + b->steps; s++) {
        make_batch(b, ids, tg, s);
        double t0 = now_s(), loss;
        int64_t nv;
        if (train_step(b, cm, ids, tg, s, &loss, &nv, err)) goto done;
#ifdef EHRTUNE_HAVE_CUDA
        if (etc_synchronize()) {
            et_fail(err, "bench: %s", etc_last_error());
            goto done;
        }
#endif
        if (s >= b->warmup) times[s - b->warmup] = now_s() - t0;
        if (s == 0) r->loss_first = loss / (double)nv;
        r->loss_last = loss / (double)nv;
    }
    qsort(times, (size_t)b->steps, sizeof *times, cmp_double);
    r->step_s_median = times[b->steps / 2];
    r->step_s_min = times[0];
    if (bench_profile(b, r, cm, ids, tg, err)) goto done;
    if (b->dp && bench_dp(b, r, cm, ids, tg, times, err)) goto done;
    /* forward-only passes on the last batch: the forward's share of the step */
    double fwd[3];
    for (int s = 0; s < 3; s++) {
        et_batch batch = {ids, tg, b->batch, b->seq, NULL};
        double t0 = now_s(), loss;
        int64_t nv;
        if (et_cuda_model_forward(cm, &batch, &loss, &nv, err)) goto done;
        fwd[s] = now_s() - t0; /* the loss read back synchronises */
    }
    qsort(fwd, 3, sizeof *fwd, cmp_double);
    r->forward_s_median = fwd[1];
    r->tokens_per_s = (double)n / r->step_s_median;
    /* FLOP model of bench_hf_peft.py */
    const double C = c->hidden_size, H = c->num_heads, D = c->head_dim;
    const double per_layer = C * H * D * 2 + C * c->num_kv_heads * D * 2 + 3 * C * c->intermediate_size;
    r->n_frozen = (int64_t)(c->num_layers * per_layer + (double)c->vocab_size * C);
    r->n_lora = l.n_params;
    const double flops = 4.0 * r->n_frozen * n + 6.0 * r->n_lora * n +
                         3.0 * (2.0 * b->batch * (double)b->seq * b->seq * H * D) * c->num_layers;
    r->model_tflop_per_step = flops / 1e12;
    r->achieved_tflops = flops / r->step_s_median / 1e12;
    r->peak_tflops = peak_for(r->device);
    r->mfu = r->peak_tflops > 0 ? r->achieved_tflops / r->peak_tflops : -1;
    /* the model's three allocations, cuBLASLt's 32 MiB workspace, etc_sumsq's partials */
    r->peak_mem_gib = (et_cuda_model_bytes(cm) + (32u << 20) + 8192) / 1073741824.0 +
                      r->dp_extra_mib / 1024.0;
#ifdef EHRTUNE_HAVE_CUDA
    /* + cuDNN's attention workspace when that pair runs (cuDNN's own handle and
     * kernels are not counted here: device_used_gib below sees them) */
    r->peak_mem_gib += etc_attention_cudnn_workspace_bytes() / 1073741824.0;
    size_t free_b = 0, total_b = 0;
    if (!etc_mem_info(&free_b, &total_b)) r->device_used_gib = (total_b - free_b) / 1073741824.0;
#endif
    rc = 0;
done:
    et_cuda_model_free(cm);
    et_lora_free(&l);
    free(ids), free(tg), free(times);
    return rc;
}

int et_cuda_bench_json(char *out, size_t len, const et_cuda_bench_config *b,
                       const et_cuda_bench_result *r) {
    char mfu[32] = "null", peak[32] = "null";
    if (r->mfu >= 0) snprintf(mfu, sizeof mfu, "%.4f", r->mfu);
    if (r->peak_tflops > 0) snprintf(peak, sizeof peak, "%.1f", r->peak_tflops);
    char dp[256] = "", prof[1024];
    int at = snprintf(prof, sizeof prof, ", \"profile_step_ms\": %.3f, \"profile_wall_ms\": %.3f, "
                                         "\"profile_dropped\": %d, \"profile\": {",
                      r->profile.total_ms, r->profile_wall_ms, r->profile.dropped);
    for (int i = 0; i < ET_PROF_COUNT && at < (int)sizeof prof; i++)
        at += snprintf(prof + at, sizeof prof - (size_t)at, "%s\"%s\": %.3f", i ? ", " : "",
                       et_prof_name(i), r->profile.ms[i]);
    if (at < (int)sizeof prof) snprintf(prof + at, sizeof prof - (size_t)at, "}");
    if (b->dp)
        snprintf(dp, sizeof dp,
                 ", \"dp\": true, \"dp_step_s_median\": %.4f, \"dp_step_s_min\": %.4f, "
                 "\"dp_ratio\": %.3f, \"dp_extra_mib\": %.1f",
                 r->dp_step_s_median, r->dp_step_s_min, r->dp_ratio, r->dp_extra_mib);
    return snprintf(
        out, len,
        "{\"kind\": \"bench\", \"impl\": \"ehrtune-cuda\", \"status\": \"ok\", \"device\": \"%s\", "
        "\"batch\": %d, \"seq\": %d, \"hidden\": %d, \"layers\": %d, \"heads\": %d, "
        "\"kv_heads\": %d, \"ffn\": %d, \"vocab\": %d, \"lora_r\": %d, \"lora_alpha\": %.1f, "
        "\"lora_dropout\": %g, \"lora_dropout_fused\": %s, \"lora_kext\": %s, "
        "\"activation_checkpointing\": %s, \"n_frozen_matmul\": %lld, \"n_lora\": %lld, "
        "\"warmup\": %d, \"steps\": %d, \"step_s_median\": %.4f, \"step_s_min\": %.4f, "
        "\"forward_s_median\": %.4f, "
        "\"tokens_per_s\": %.1f, \"model_tflop_per_step\": %.3f, \"achieved_tflops\": %.1f, "
        "\"peak_tflops\": %s, \"mfu\": %s, \"peak_mem_gib\": %.2f, \"device_used_gib\": %.2f, "
        "\"loss_first\": %.4f, \"loss_last\": %.4f, \"attention\": \"%s\"%s%s}",
        r->device, b->batch, b->seq, b->cfg.hidden_size, b->cfg.num_layers, b->cfg.num_heads,
        b->cfg.num_kv_heads, b->cfg.intermediate_size, b->cfg.vocab_size, b->rank, b->alpha,
        (double)b->dropout, r->dropout_fused ? "true" : "false", r->lora_kext ? "true" : "false", b->activation_checkpointing ? "true" : "false", (long long)r->n_frozen,
        (long long)r->n_lora, b->warmup, b->steps, r->step_s_median, r->step_s_min,
        r->forward_s_median,
        r->tokens_per_s, r->model_tflop_per_step, r->achieved_tflops, peak, mfu, r->peak_mem_gib,
        r->device_used_gib, r->loss_first, r->loss_last, r->attention, dp, prof);
}

void et_cuda_bench_print_profile(FILE *f, const et_cuda_bench_result *r, const char *indent) {
    const et_cuda_profile *p = &r->profile;
    int order[ET_PROF_COUNT], k = 0;
    for (int i = 0; i < ET_PROF_COUNT; i++)
        if (p->marks[i] > 0) order[k++] = i;
    for (int i = 1; i < k; i++) /* biggest first: insertion sort of at most 14 */
        for (int j = i; j > 0 && p->ms[order[j]] > p->ms[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    const double total = p->total_ms > 0 ? p->total_ms : 1;
    fprintf(f, "%sprofiled step: %.2f ms on the device (%.2f ms host clock), %d marks\n", indent,
            p->total_ms, r->profile_wall_ms, p->n_marks);
    if (p->dropped)
        fprintf(f, "%s  %d marks past the timeline's capacity: their time is missing\n", indent,
                p->dropped);
    fprintf(f, "%s  %-14s %9s %6s %6s\n", indent, "category", "ms", "%", "marks");
    for (int i = 0; i < k; i++)
        fprintf(f, "%s  %-14s %9.3f %5.1f%% %6d\n", indent, et_prof_name(order[i]), p->ms[order[i]],
                100.0 * p->ms[order[i]] / total, p->marks[order[i]]);
}
