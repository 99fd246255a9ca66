#include "trainer/dp_rng.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                  \
    a += b; d ^= a; d = ROTL(d, 16);    \
    c += d; b ^= c; b = ROTL(b, 12);    \
    a += b; d ^= a; d = ROTL(d, 8);     \
    c += d; b ^= c; b = ROTL(b, 7)

void et_chacha20_block(uint32_t out[16], const uint32_t key[8], uint32_t counter,
                       const uint32_t nonce[3]) {
    uint32_t s[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
                      key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
                      counter, nonce[0], nonce[1], nonce[2]};
    uint32_t x[16];
    memcpy(x, s, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) out[i] = x[i] + s[i];
}

int et_dp_rng_init(et_dp_rng *r, int secure, uint64_t seed, et_error *err) {
    memset(r, 0, sizeof *r);
    r->secure = secure;
    if (secure) {
        size_t got = 0;
        while (got < sizeof r->key) {
            ssize_t n = getrandom((char *)r->key + got, sizeof r->key - got, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                return et_fail(err, "cannot read the OS random generator (getrandom: %s); "
                                    "DP noise needs it",
                               strerror(errno));
            got += (size_t)n;
        }
        return 0;
    }
    /* Deterministic: expand the seed with splitmix64 into the key. */
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9e3779b97f4a7c15ull;
        uint64_t v = z;
        v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
        v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
        v ^= v >> 31;
        r->key[2 * i] = (uint32_t)v;
        r->key[2 * i + 1] = (uint32_t)(v >> 32);
    }
    return 0;
}

/* Words [2*index, 2*index+1] of the stream (purpose, step) as a 53-bit uniform. The
 * block number index/8 is 56 bits: the low 32 are ChaCha20's counter, the high 24 ride
 * in the nonce word above the purpose (zero for every block below 2^32, so those
 * streams are RFC 8439's plain counter; before 2026-11-26 the high bits were dropped
 * and the row-subset draws of units 2048 apart repeated). */
double et_dp_uniform(const et_dp_rng *r, uint32_t purpose, uint64_t step, uint64_t index) {
    const uint64_t blk = index / 8;
    uint32_t nonce[3] = {purpose | (uint32_t)((blk >> 32) & 0xFFFFFFu) << 8, (uint32_t)step,
                         (uint32_t)(step >> 32)};
    uint32_t block[16];
    et_chacha20_block(block, r->key, (uint32_t)blk, nonce);
    int w = (int)(index % 8) * 2;
    uint64_t bits = ((uint64_t)block[w] << 21) ^ (block[w + 1] >> 11);
    return (double)(bits & ((1ull << 53) - 1)) * 0x1.0p-53;
}

uint64_t et_dp_dropout_seed(const et_dp_rng *r, uint64_t step) {
    const uint32_t nonce[3] = {ET_DP_PURPOSE_DROPOUT, (uint32_t)step, (uint32_t)(step >> 32)};
    uint32_t block[16];
    et_chacha20_block(block, r->key, 0, nonce);
    return (uint64_t)block[0] << 32 | block[1];
}

static double u53(const uint32_t *w) {
    uint64_t bits = ((uint64_t)w[0] << 21) ^ (w[1] >> 11);
    return (double)(bits & ((1ull << 53) - 1)) * 0x1.0p-53;
}

void et_dp_add_noise(float *out, int64_t n, double std, const et_dp_rng *r, uint64_t step) {
    uint32_t nonce[3] = {ET_DP_PURPOSE_NOISE, (uint32_t)step, (uint32_t)(step >> 32)};
    /* One 16-word block gives the 8 uniforms (4 normals via 2 Box-Muller pairs) of
     * two elements. */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += 2) {
        uint32_t block[16];
        et_chacha20_block(block, r->key, (uint32_t)(i / 2), nonce);
        for (int e = 0; e < 2 && i + e < n; e++) {
            const uint32_t *w = block + 8 * e;
            double sum = 0;
            for (int pair = 0; pair < 2; pair++) {
                double u1 = u53(w + 4 * pair), u2 = u53(w + 4 * pair + 2);
                double rad = sqrt(-2.0 * log(1.0 - u1)); /* 1 - u1 in (0, 1] */
                sum += rad * cos(2.0 * M_PI * u2) + rad * sin(2.0 * M_PI * u2);
            }
            out[i + e] += (float)(std * sum / 2.0);
        }
    }
}
