/* Randomness for DP-SGD: Poisson sampling of privacy units and the Gaussian noise.
 *
 * ChaCha20 (RFC 8439) as a counter-based CSPRNG: block(key, counter, nonce) with
 * nonce = (purpose, step) and the block counter indexing within a step. Every draw
 * is a pure function of (key, purpose, step, index), so draws never depend on the
 * order in which they are made, and nothing about the stream is kept in state.
 *
 * Secure mode (the default): the 256-bit key comes from the OS CSPRNG (getrandom),
 * is never logged, never saved, and a resumed run draws a fresh key. Deterministic
 * mode (privacy.secure_rng: false; tests only) derives the key from run.seed. */
#ifndef EHRTUNE_DP_RNG_H
#define EHRTUNE_DP_RNG_H

#include <stdint.h>

#include "data/error.h"

typedef struct {
    uint32_t key[8];
    int secure;
} et_dp_rng;

enum {
    ET_DP_PURPOSE_SAMPLE = 1,
    ET_DP_PURPOSE_SUBSET = 2,
    ET_DP_PURPOSE_NOISE = 3,
    ET_DP_PURPOSE_DROPOUT = 4, /* the step's LoRA-dropout seed under DP (et_dp_dropout_seed) */
};

int et_dp_rng_init(et_dp_rng *r, int secure, uint64_t seed, et_error *err);

/* The ChaCha20 block function (RFC 8439 §2.3): 16 output words. */
void et_chacha20_block(uint32_t out[16], const uint32_t key[8], uint32_t counter,
                       const uint32_t nonce[3]);

/* Uniform in [0, 1) with 53 random bits: draw `index` (< 2^59) of stream (purpose,
 * step); purpose < 256. */
double et_dp_uniform(const et_dp_rng *r, uint32_t purpose, uint64_t step, uint64_t index);

/* The LoRA-dropout seed of optimizer step `step` under DP: 64 bits of the stream
 * (DROPOUT, step). Masks seeded from the public run.seed and a row's position in the
 * batch let one unit's presence change the others' masks, known to anyone with the
 * seed: the sum of clipped gradients then moves by more than C (found 2026-11-26: 1.3C
 * with 8 units at dropout 0.05). Under a secret key the masks are unpredictable and
 * i.i.d. whatever the positions, so the other units' contributions have the same
 * distribution with or without any one unit. */
uint64_t et_dp_dropout_seed(const et_dp_rng *r, uint64_t step);

/* out[i] += N(0, std²) for i < n, for optimizer step `step`. Each value is the sum of
 * four independent normals divided by 2 (same variance), as Opacus's secure mode draws
 * it, which blunts the floating-point attacks on Gaussian sampling (Holohan & Braghin
 * 2021; see ../shared/research/dp.md §4). Normals come from Box-Muller on 53-bit
 * uniforms. */
void et_dp_add_noise(float *out, int64_t n, double std, const et_dp_rng *r, uint64_t step);

#endif
