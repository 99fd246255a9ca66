/* LoRA training throughput on the CUDA backend: random bf16 base weights made on
 * the device, random tokens, full training steps (forward, loss, backward, global
 * norm clip, AdamW), timed with the host clock after a device synchronisation.
 * Reported as tests/gpu/bench_hf_peft.py reports its peer, with the same MFU
 * formula: 4·N_frozen·tokens + 6·N_lora·tokens + 3·(2·B·T²·H·D)·layers per step.
 * After the timed steps, one more step runs with the device timeline on
 * (et_cuda_profile_begin): where its time goes by op class. */
#ifndef EHRTUNE_BENCH_CUDA_H
#define EHRTUNE_BENCH_CUDA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data/error.h"
#include "data/hf_config.h"
#include "trainer/model_cuda.h"

typedef struct {
    et_hf_config cfg;
    int batch, seq, rank, warmup, steps;
    float alpha;
    int activation_checkpointing;
    int dp; /* also time DP-SGD steps on the same batches (trainer/model_cuda_dp.h): per-example
               gradients, each row its own privacy unit, clip, noise, AdamW */
    float dropout; /* LoRA dropout (the shipped non-DP recipes use 0.05; HF+PEFT's
                      lora_dropout in its twin run) */
} et_cuda_bench_config;

typedef struct {
    double tokens_per_s, step_s_median, step_s_min;
    double forward_s_median; /* forward only (no loss gradient, no backward): where time goes */
    double model_tflop_per_step, achieved_tflops;
    double peak_tflops; /* datasheet dense bf16 of the device, 0 when unknown */
    double mfu;         /* achieved / peak, or -1 when the peak is unknown */
    double peak_mem_gib;    /* every device allocation of the run (the plan + cuBLASLt) */
    double device_used_gib; /* total − free at the end (includes the CUDA context) */
    double loss_first, loss_last;
    int64_t n_lora, n_frozen;
    char device[128];
    char attention[448];
    int lora_kext; /* the K-extended LoRA layout ran (the default; EHRTUNE_CUDA_LORA_KEXT=0: off) */
    int dropout_fused; /* LoRA dropout ran the fused kernels (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1) */
    /* with dp: the DP step's median and min, its ratio to step_s_median, and the
       device memory DP adds (per-example gradients + norms) */
    double dp_step_s_median, dp_step_s_min, dp_ratio;
    double dp_extra_mib;
    /* the one profiled step (not among the timed ones): device ms per op class, and
       its host-clock duration (profile.total_ms near it: the marks cover the step) */
    et_cuda_profile profile;
    double profile_wall_ms;
} et_cuda_bench_result;

/* Llama-3.2-1B's shape (hidden 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256,
 * tied embeddings, llama3 RoPE), as tests/gpu/bench_hf_peft.py builds it. */
void et_cuda_bench_llama_1b(et_hf_config *c);

int et_cuda_bench_run(const et_cuda_bench_config *b, et_cuda_bench_result *r, et_error *err);

/* One JSON object (no newline) describing the run, in bench_hf_peft.py's keys plus
 * "impl": "ehrtune-cuda", "profile": {category: ms, ...}, "profile_step_ms" (Σ of
 * the profile), "profile_wall_ms" and "profile_dropped". Returns the length written
 * (snprintf semantics). */
int et_cuda_bench_json(char *out, size_t len, const et_cuda_bench_config *b,
                       const et_cuda_bench_result *r);

/* The profile as a short table (category, ms, % of the profiled step), biggest
 * first, categories without marks left out; each line starts with `indent`. */
void et_cuda_bench_print_profile(FILE *f, const et_cuda_bench_result *r, const char *indent);

#endif
