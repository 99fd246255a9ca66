/* HDF5 Zstandard filter (registered filter id 32015), built into ehrtune.
 *
 * Debian ships no zstd HDF5 plugin, so ehrtune registers the filter in-process
 * with H5Zregister: corpus files open without HDF5_PLUGIN_PATH. The wire format
 * is the one of the standard plugin (aparamon/HDF5Plugin-Zstandard, embedded in
 * hdf5plugin as `hdf5plugin.Zstd`), so h5py + hdf5plugin read our files and we
 * read theirs:
 *   - each chunk is ONE zstd frame made by one-shot ZSTD_compress, so the frame
 *     header carries the decompressed size (the reference decoder needs it);
 *   - cd_values[0], when present, is the compression level (default 3, clamped
 *     to [1, ZSTD_maxCLevel()]); decoding ignores cd_values.
 * Decoding is bound-checked: a frame without a content size, a content size
 * above HDF5's 4 GiB chunk limit or other than the dataset's chunk size (when the
 * reader says it), or a frame that does not decode to exactly its declared size is
 * refused (the filter returns 0, so HDF5 reports a read
 * error instead of allocating or writing out of bounds). */
#ifndef EHRTUNE_ZSTD_FILTER_H
#define EHRTUNE_ZSTD_FILTER_H

#include <stddef.h>

#include "data/error.h"

#define ET_ZSTD_FILTER_ID 32015
#define ET_ZSTD_DEFAULT_LEVEL 3

/* Registers the filter with the HDF5 library of this process. Idempotent;
 * call before creating or reading a zstd-compressed dataset. */
int et_zstd_filter_register(et_error *err);

/* The H5Z filter callback itself (H5Z_func_t), exposed so tests can feed it
 * crafted frames. Encodes, or decodes when flags has H5Z_FLAG_REVERSE; on
 * success replaces *buf (allocated with H5allocate_memory), sets *buf_size
 * and returns the number of valid bytes; returns 0 on failure and leaves *buf
 * untouched. */
size_t et_zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                      size_t nbytes, size_t *buf_size, void **buf);

/* Readers: the chunk size in bytes of the dataset about to be read on this thread
 * (0 after the read: unknown). While set, a frame that does not decode to exactly this
 * size is refused — HDF5 would copy a whole chunk out of a shorter one, and a longer
 * one is a decompression bomb. Only meaningful when zstd's input on write was the raw
 * chunk (no size-changing filter before it in the pipeline). */
void et_zstd_filter_expect(size_t chunk_bytes);

/* Why the last call of et_zstd_filter on this thread failed (a static string,
 * never data), or "" if it did not. HDF5 only reports "filter failed"; readers
 * append this reason to their message. */
const char *et_zstd_filter_last_failure(void);

#endif
