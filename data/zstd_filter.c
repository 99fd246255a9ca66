#include "data/zstd_filter.h"

#include <stdint.h>

#include <hdf5.h>
#include <zstd.h>

/* HDF5 (1.10 and later) stores a chunk's size in 32 bits, so no legitimate chunk
 * decodes to more than this; a frame claiming more is corrupt or hostile. */
#define MAX_CHUNK_BYTES ((unsigned long long)UINT32_MAX)

static _Thread_local const char *last_failure = "";
/* The dataset's chunk size in bytes while a reader reads it (0: unknown): a frame must
 * decode to exactly this. HDF5 copies a whole chunk out of whatever the filter returns,
 * so a shorter frame would be read past its end, and a longer one is a decompression
 * bomb. */
static _Thread_local size_t expected_chunk = 0;

void et_zstd_filter_expect(size_t chunk_bytes) { expected_chunk = chunk_bytes; }

static size_t fail(const char *why) {
    last_failure = why;
    return 0;
}

const char *et_zstd_filter_last_failure(void) { return last_failure; }

static size_t decode(size_t nbytes, size_t *buf_size, void **buf) {
    unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    if (size == ZSTD_CONTENTSIZE_ERROR)
        return fail("zstd chunk is not a zstd frame (corrupt chunk?)");
    if (size == ZSTD_CONTENTSIZE_UNKNOWN)
        return fail("zstd frame does not record its decompressed size (not written by "
                    "one-shot ZSTD_compress as filter 32015 requires)");
    if (size > MAX_CHUNK_BYTES)
        return fail("zstd frame claims a decompressed size above HDF5's 4 GiB chunk limit");
    if (expected_chunk && size != expected_chunk)
        return fail("zstd chunk decodes to another size than the dataset's chunks (corrupt or "
                    "crafted chunk)");
    /* Allocate at least one byte: an empty chunk still needs a valid buffer. */
    void *out = H5allocate_memory(size ? (size_t)size : 1, 0);
    if (!out) return fail("out of memory decompressing a zstd chunk");
    /* Like the reference decoder, the whole input is decoded into a buffer of the
     * first frame's declared size: extra frames or a lying header fail here. */
    size_t got = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
    if (ZSTD_isError(got) || got != size) {
        H5free_memory(out);
        return fail("zstd chunk does not decode to its declared size (corrupt chunk?)");
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = (size_t)size;
    return got;
}

static size_t encode(size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                     size_t *buf_size, void **buf) {
    int level = ET_ZSTD_DEFAULT_LEVEL;
    if (cd_nelmts > 0 && cd_values[0] > 0)
        level = cd_values[0] > (unsigned)ZSTD_maxCLevel() ? ZSTD_maxCLevel() : (int)cd_values[0];
    size_t cap = ZSTD_compressBound(nbytes);
    void *out = H5allocate_memory(cap, 0);
    if (!out) return fail("out of memory compressing a zstd chunk");
    size_t n = ZSTD_compress(out, cap, *buf, nbytes, level);
    if (ZSTD_isError(n)) {
        H5free_memory(out);
        return fail("zstd compression failed");
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = cap;
    return n;
}

size_t et_zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                      size_t nbytes, size_t *buf_size, void **buf) {
    last_failure = "";
    if (flags & H5Z_FLAG_REVERSE) return decode(nbytes, buf_size, buf);
    return encode(cd_nelmts, cd_values, nbytes, buf_size, buf);
}

int et_zstd_filter_register(et_error *err) {
    static int registered = 0;
    if (registered) return 0;
    static const H5Z_class2_t cls = {
        .version = H5Z_CLASS_T_VERS,
        .id = ET_ZSTD_FILTER_ID,
        .encoder_present = 1,
        .decoder_present = 1,
        .name = "Zstandard (ehrtune built-in; wire-compatible with hdf5plugin.Zstd)",
        .can_apply = NULL,
        .set_local = NULL,
        .filter = et_zstd_filter,
    };
    if (H5Zregister(&cls) < 0)
        return et_fail(err, "could not register the zstd HDF5 filter (id %d) with the HDF5 "
                            "library; is libhdf5 >= 1.8.11 installed?", ET_ZSTD_FILTER_ID);
    registered = 1;
    return 0;
}
