/* DP-SGD on the CUDA backend (kernels/cuda/dp.cu): per-unit clipping of per-example
 * LoRA gradients and the Gaussian noise, the device twins of trainer/dp.c's
 * et_dp_clip_add and trainer/dp_rng.c's et_dp_add_noise. Every pointer is a DEVICE
 * pointer except `key`. Return 0, or non-zero with etc_last_error(). */
#ifndef EHRTUNE_DP_CUDA_H
#define EHRTUNE_DP_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blocks per unit of etc_dp_unit_norms: its scratch holds n_units x this doubles. */
#define ETC_DP_NORM_BLOCKS 128

/* g: [rows, stride] fp32 per-example gradients, n used values per row; unit u owns
 * rows unit_first[u] .. unit_first[u+1] (int32, device). Sums each unit's rows into
 * its first row (float adds in row order, as trainer/train_dp.c), then
 * norm2[u] = Σ g², accumulated in double with a fixed order (deterministic), and
 * factor[u] = (float)min(1, clip/(sqrt(norm2[u]) + 1e-6)) computed in double.
 * scratch: n_units x ETC_DP_NORM_BLOCKS doubles. */
int etc_dp_unit_norms(double *norm2, float *factor, double *scratch, float *g, int64_t n,
                      int64_t stride, const int32_t *unit_first, int n_units, double clip);

/* sum[i] += factor[u]·g[unit_first[u]][i] for u = 0 .. n_units−1 in order (separate
 * float multiply and add per unit: bitwise the CPU's sequence of et_dp_clip_add). */
int etc_dp_clip_sum(float *sum, const float *g, int64_t n, int64_t stride,
                    const int32_t *unit_first, const float *factor, int n_units);

/* out[i] += std·(z1 + z2 + z3 + z4)/2: et_dp_add_noise's stream exactly (ChaCha20 with
 * `key` (host array), nonce (ET_DP_PURPOSE_NOISE = 3, step), block i/2 for the pair of
 * elements i, i+1; two Box-Muller pairs on 53-bit uniforms per element). */
int etc_dp_add_noise(float *out, int64_t n, double std, const uint32_t key[8], uint64_t step);

#ifdef __cplusplus
}
#endif

#endif
