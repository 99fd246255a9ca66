/* Philox4x32-10 and the uniform draw built on it (et_uniform, declared in ops.h). */
#include "kernels/cpu/philox.h"
#include "kernels/ops.h"

/* Multipliers and Weyl key increments from the Philox paper / Random123. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void et_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0; /* the key bump after the last round is never used */
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* uniform(seed, counter): Philox4x32-10 with counter block (lo32(counter),
 * hi32(counter), 0, 0) and key (lo32(seed), hi32(seed)); the top 24 bits of output
 * word 0 scaled by 2^-24. Every value is exact in fp32 and lies in [0, 1 - 2^-24],
 * so `u >= p` never depends on float rounding and both backends agree bit for bit. */
float et_uniform(uint64_t seed, uint64_t counter) {
    const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), 0, 0};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    et_philox4x32_10(out, ctr, key);
    return (float)(out[0] >> 8) * 0x1p-24f;
}

void et_dropout_uniform4(uint64_t seed, uint64_t block, float u[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    et_philox4x32_10(out, ctr, key);
    for (int w = 0; w < 4; w++) u[w] = (float)(out[w] >> 8) * 0x1p-24f;
}

float et_dropout_uniform(uint64_t seed, uint64_t j) {
    float u[4];
    et_dropout_uniform4(seed, j >> 2, u);
    return u[j & 3];
}
