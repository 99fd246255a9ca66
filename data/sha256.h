/* SHA-256 (FIPS 180-4, section 6.2), used to fingerprint every input of a run
 * (corpus, base model files, recipe, the binary itself) in manifest.json.
 *
 * Streaming: init, any number of updates of any size, final. Feeding a message in
 * pieces gives the same digest as feeding it whole. Files are hashed through a
 * 1 MiB buffer, so a 16 GB model never needs 16 GB of memory; it does need to be
 * read once (portable C, no SHA extensions: a few hundred MB/s per core). */
#ifndef EHRTUNE_SHA256_H
#define EHRTUNE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"

#define ET_SHA256_DIGEST_BYTES 32
#define ET_SHA256_HEX_CHARS 64 /* plus the terminating NUL: char out[65] */

typedef struct {
    uint32_t h[8];          /* intermediate hash value H(i) */
    uint64_t total_bytes;   /* message length so far; FIPS limits it to 2^64 bits */
    uint8_t block[64];      /* a partial block waiting for more input */
    size_t block_len;
} et_sha256;

void et_sha256_init(et_sha256 *ctx);
void et_sha256_update(et_sha256 *ctx, const void *data, size_t n);
/* Pads, writes the 32-byte digest and leaves ctx unusable until the next init. */
void et_sha256_final(et_sha256 *ctx, uint8_t digest[ET_SHA256_DIGEST_BYTES]);

/* Lower-case hex of a digest, NUL-terminated (the form `sha256sum` prints). */
void et_sha256_digest_hex(const uint8_t digest[ET_SHA256_DIGEST_BYTES], char out[65]);

/* One-shot: the hex digest of n bytes. */
void et_sha256_hex(const void *data, size_t n, char out[65]);

/* Hex digest of a file's content, streamed through a 1 MiB buffer. Fails (message
 * naming the file) when it cannot be opened or read, is not a regular file, or
 * changes size or mtime while being hashed (the digest would then match no
 * version of the file). */
int et_sha256_file(const char *path, char out_hex[65], et_error *err);

/* Same, and *n_bytes receives the number of bytes hashed, so a size recorded next
 * to the digest describes the very same content. */
int et_sha256_file_n(const char *path, char out_hex[65], uint64_t *n_bytes, et_error *err);

#endif
