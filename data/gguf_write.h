/* GGUF writer (version 3), for llama.cpp LoRA adapters.
 *
 * Layout (ggml docs/gguf.md; research/formats.md §6), all little-endian:
 *   "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
 *   kv_count × { string key | u32 value_type | value }
 *   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   zero padding to the alignment | data section
 * A string is u64 length + bytes (no NUL). ne[0] is the fastest-varying dimension,
 * so ne is the PyTorch shape reversed; the bytes are the same row-major data.
 * Each tensor's offset is relative to the data section and a multiple of the
 * alignment; every tensor is zero-padded to the alignment.
 *
 * Only what an adapter needs is supported: scalar keys (u32, f32, string, bool)
 * and F32 / F16 / BF16 tensors given as fp32 (converted on add, round to nearest
 * even). The writer owns copies of everything added. */
#ifndef EHRTUNE_GGUF_WRITE_H
#define EHRTUNE_GGUF_WRITE_H

#include <stdint.h>

#include "data/error.h"

#define ET_GGUF_VERSION 3
#define ET_GGUF_DEFAULT_ALIGNMENT 32 /* GGUF_DEFAULT_ALIGNMENT: used when general.alignment is absent */
#define ET_GGUF_MAX_NAME 63          /* GGML_MAX_NAME (64) includes the NUL */
#define ET_GGUF_MAX_DIMS 4

/* gguf_type: the value types of a key. */
enum {
    ET_GGUF_TYPE_UINT8 = 0, ET_GGUF_TYPE_INT8 = 1, ET_GGUF_TYPE_UINT16 = 2,
    ET_GGUF_TYPE_INT16 = 3, ET_GGUF_TYPE_UINT32 = 4, ET_GGUF_TYPE_INT32 = 5,
    ET_GGUF_TYPE_FLOAT32 = 6, ET_GGUF_TYPE_BOOL = 7, ET_GGUF_TYPE_STRING = 8,
    ET_GGUF_TYPE_ARRAY = 9, ET_GGUF_TYPE_UINT64 = 10, ET_GGUF_TYPE_INT64 = 11,
    ET_GGUF_TYPE_FLOAT64 = 12
};

/* ggml_type values of the tensor types the writer stores. */
typedef enum { ET_GGML_F32 = 0, ET_GGML_F16 = 1, ET_GGML_BF16 = 30 } et_ggml_type;

/* "F32", "F16", "BF16". */
const char *et_ggml_type_name(et_ggml_type t);

typedef struct et_gguf_writer et_gguf_writer;

/* NULL only when out of memory. */
et_gguf_writer *et_gguf_writer_new(void);
void et_gguf_writer_free(et_gguf_writer *w);

/* Keys must be unique, non-empty, ASCII and shorter than 65536 bytes. Values are
 * copied. Errors name the key. */
int et_gguf_add_string(et_gguf_writer *w, const char *key, const char *value, et_error *err);
int et_gguf_add_u32(et_gguf_writer *w, const char *key, uint32_t value, et_error *err);
int et_gguf_add_f32(et_gguf_writer *w, const char *key, float value, et_error *err);
int et_gguf_add_bool(et_gguf_writer *w, const char *key, int value, et_error *err);

/* Adds a tensor from fp32 data in PyTorch order: torch_shape[0..ndim) is the
 * row-major shape ([out, in] for a weight); the file gets ne = the reverse. The
 * data is converted to `type` and copied. name: unique, 1..63 bytes; ndim 1..4. */
int et_gguf_add_tensor_f32(et_gguf_writer *w, const char *name, int ndim,
                           const int64_t *torch_shape, const float *data, et_ggml_type type,
                           et_error *err);

/* Writes the file: PATH.tmp.<pid> in the same folder (mode 0600 with
 * ET_GGUF_WRITE_PRIVATE, else 0666 & ~umask), fsync, rename onto path. The
 * alignment is ET_GGUF_DEFAULT_ALIGNMENT unless a "general.alignment" u32 key was
 * added (a power of two, checked when added), as readers expect. */
enum { ET_GGUF_WRITE_PRIVATE = 1 };
int et_gguf_write(const et_gguf_writer *w, const char *path, int flags, et_error *err);

#endif
