#include "data/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

/* Section 4.1.2 functions. */
static inline uint32_t ch(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (~x & z); }
static inline uint32_t maj(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (x & z) ^ (y & z); }
static inline uint32_t big_sigma0(uint32_t x) { return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22); }
static inline uint32_t big_sigma1(uint32_t x) { return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25); }
static inline uint32_t small_sigma0(uint32_t x) { return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3); }
static inline uint32_t small_sigma1(uint32_t x) { return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10); }

/* The message is big-endian 32-bit words (section 3.1), whatever the host order. */
static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Section 6.2.2: one 512-bit block into the hash state. */
static void compress(uint32_t h[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++)
        w[t] = small_sigma1(w[t - 2]) + w[t - 7] + small_sigma0(w[t - 15]) + w[t - 16];

    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = hh + big_sigma1(e) + ch(e, f, g) + K[t] + w[t];
        uint32_t t2 = big_sigma0(a) + maj(a, b, c);
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void et_sha256_init(et_sha256 *ctx) {
    /* Section 5.3.3: fractional parts of the square roots of the first 8 primes. */
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(ctx->h, H0, sizeof H0);
    ctx->total_bytes = 0;
    ctx->block_len = 0;
}

void et_sha256_update(et_sha256 *ctx, const void *data, size_t n) {
    const uint8_t *p = data;
    ctx->total_bytes += n;
    if (ctx->block_len > 0) {
        size_t take = 64 - ctx->block_len;
        if (take > n) take = n;
        memcpy(ctx->block + ctx->block_len, p, take);
        ctx->block_len += take;
        p += take;
        n -= take;
        if (ctx->block_len < 64) return;
        compress(ctx->h, ctx->block);
        ctx->block_len = 0;
    }
    /* Whole blocks straight from the caller's buffer: no copy on the hot path. */
    for (; n >= 64; p += 64, n -= 64) compress(ctx->h, p);
    memcpy(ctx->block, p, n);
    ctx->block_len = n;
}

void et_sha256_final(et_sha256 *ctx, uint8_t digest[ET_SHA256_DIGEST_BYTES]) {
    /* Section 5.1.1: a 1 bit, zeros up to 448 mod 512 bits, then the bit length as
     * a 64-bit big-endian integer. */
    uint64_t bit_len = ctx->total_bytes * 8;
    ctx->block[ctx->block_len++] = 0x80;
    if (ctx->block_len > 56) {
        memset(ctx->block + ctx->block_len, 0, 64 - ctx->block_len);
        compress(ctx->h, ctx->block);
        ctx->block_len = 0;
    }
    memset(ctx->block + ctx->block_len, 0, 56 - ctx->block_len);
    store_be32(ctx->block + 56, (uint32_t)(bit_len >> 32));
    store_be32(ctx->block + 60, (uint32_t)bit_len);
    compress(ctx->h, ctx->block);
    for (int i = 0; i < 8; i++) store_be32(digest + 4 * i, ctx->h[i]);
    memset(ctx, 0, sizeof *ctx);
}

void et_sha256_digest_hex(const uint8_t digest[ET_SHA256_DIGEST_BYTES], char out[65]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < ET_SHA256_DIGEST_BYTES; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[ET_SHA256_HEX_CHARS] = '\0';
}

void et_sha256_hex(const void *data, size_t n, char out[65]) {
    et_sha256 ctx;
    uint8_t digest[ET_SHA256_DIGEST_BYTES];
    et_sha256_init(&ctx);
    et_sha256_update(&ctx, data, n);
    et_sha256_final(&ctx, digest);
    et_sha256_digest_hex(digest, out);
}

#define FILE_BUFFER_BYTES (1u << 20)

/* Streams an open regular file into ctx. Returns 0, or an errno value. */
static int hash_fd(int fd, et_sha256 *ctx, uint8_t *buf, uint64_t *n_bytes) {
    *n_bytes = 0;
    for (;;) {
        ssize_t got = read(fd, buf, FILE_BUFFER_BYTES);
        if (got < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (got == 0) return 0;
        et_sha256_update(ctx, buf, (size_t)got);
        *n_bytes += (uint64_t)got;
    }
}

int et_sha256_file_n(const char *path, char out_hex[65], uint64_t *n_bytes, et_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return et_fail(err, "%s: cannot open for hashing (%s); check that the file exists "
                            "and is readable", path, strerror(errno));
    struct stat before;
    if (fstat(fd, &before) != 0) {
        int e = errno;
        close(fd);
        return et_fail(err, "%s: cannot stat (%s)", path, strerror(e));
    }
    if (!S_ISREG(before.st_mode)) {
        close(fd);
        return et_fail(err, "%s: not a regular file; only regular files can be hashed", path);
    }
    uint8_t *buf = malloc(FILE_BUFFER_BYTES);
    if (!buf) {
        close(fd);
        return et_fail(err, "%s: out of memory for the 1 MiB hashing buffer", path);
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint: larger read-ahead */
#endif
    et_sha256 ctx;
    et_sha256_init(&ctx);
    uint64_t n = 0;
    int read_errno = hash_fd(fd, &ctx, buf, &n);
    free(buf);
    struct stat after;
    int stat_rc = fstat(fd, &after);
    close(fd);
    if (read_errno)
        return et_fail(err, "%s: read failed after %llu bytes (%s)", path,
                       (unsigned long long)n, strerror(read_errno));
    /* A file rewritten while we read it has a digest that matches no version of it;
     * an audit record must not carry such a digest. */
    if (stat_rc != 0 || after.st_size != before.st_size || (uint64_t)after.st_size != n ||
        after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)
        return et_fail(err, "%s: file changed while being hashed (size %lld -> %lld bytes, "
                            "%llu read); hash it again when nothing is writing to it",
                       path, (long long)before.st_size, (long long)after.st_size,
                       (unsigned long long)n);
    uint8_t digest[ET_SHA256_DIGEST_BYTES];
    et_sha256_final(&ctx, digest);
    et_sha256_digest_hex(digest, out_hex);
    if (n_bytes) *n_bytes = n;
    return 0;
}

int et_sha256_file(const char *path, char out_hex[65], et_error *err) {
    return et_sha256_file_n(path, out_hex, NULL, err);
}
