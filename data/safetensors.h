/* safetensors: bounds-checked reader, sharded-model loader and writer.
 *
 * File layout (huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON, then the byte buffer. Each header entry is
 *   "name": {"dtype": "BF16", "shape": [d0, ...], "data_offsets": [BEGIN, END]}
 * with offsets relative to the buffer; an optional "__metadata__" entry is a flat
 * string→string map. The reader enforces every check the reference Rust reader
 * makes (see docs/formats-loading.md) and a few stricter ones; any violation is
 * one et_error message naming the file, the tensor and what to do.
 *
 * Files are mapped read-only (mmap); pointers into a file (tensor names, data)
 * stay valid until et_st_close. Byte order: the format is little-endian and so is
 * every supported host (checked at compile time). */
#ifndef EHRTUNE_SAFETENSORS_H
#define EHRTUNE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"

/* ---- dtypes ------------------------------------------------------------------
 * Every dtype string of the format, in the reference enum's order (increasing
 * alignment), which the writer uses to lay tensors out naturally aligned. */
typedef enum {
    ET_DT_BOOL, ET_DT_F4, ET_DT_F6_E2M3, ET_DT_F6_E3M2, ET_DT_U8, ET_DT_I8,
    ET_DT_F8_E5M2, ET_DT_F8_E4M3, ET_DT_F8_E8M0, ET_DT_F8_E4M3FNUZ, ET_DT_F8_E5M2FNUZ,
    ET_DT_I16, ET_DT_U16, ET_DT_F16, ET_DT_BF16, ET_DT_I32, ET_DT_U32, ET_DT_F32,
    ET_DT_C64, ET_DT_F64, ET_DT_I64, ET_DT_U64,
    ET_DT_COUNT
} et_dtype;

/* "BF16" etc.; "?" for an out-of-range value. */
const char *et_dtype_name(et_dtype dt);
/* Bits per element (4 for F4, 6 for F6_*, 8 for BOOL, 64 for C64). */
int et_dtype_bits(et_dtype dt);
/* Parses a header dtype string (exact, case-sensitive). Returns 0 on success. */
int et_dtype_parse(const char *s, et_dtype *out);

/* Offset of the first byte of s[0..n) that is not part of valid UTF-8 (overlong
 * forms, surrogates and code points above U+10FFFF are invalid), or n if all is. */
size_t et_utf8_check(const uint8_t *s, size_t n);

/* fp16 / bf16 <-> fp32 bit conversions (exact for decoding; encoding rounds to
 * nearest even, NaN stays NaN, overflow goes to ±inf as PyTorch does). */
float et_f16_to_f32(uint16_t h);
float et_bf16_to_f32(uint16_t b);
uint16_t et_f32_to_bf16(float f);
uint16_t et_f32_to_f16(float f);

/* ---- one file ---------------------------------------------------------------- */
#define ET_ST_MAX_DIMS 8            /* the format has no limit; no real tensor needs more */
#define ET_ST_MAX_HEADER 100000000u /* reference MAX_HEADER_SIZE */

typedef struct {
    const char *name;
    et_dtype dtype;
    int ndim;                        /* 0 = scalar (one element) */
    int64_t shape[ET_ST_MAX_DIMS];
    uint64_t begin, end;             /* byte range relative to the data buffer */
} et_st_tensor;

typedef struct {
    char *path;                      /* as given to et_st_open */
    const uint8_t *map;              /* whole file, read-only */
    size_t map_size;
    const uint8_t *data;             /* byte buffer = map + 8 + header length */
    uint64_t data_size;
    et_st_tensor *tensors;           /* sorted by name (strcmp) */
    int n_tensors;
    char **meta_keys, **meta_values; /* __metadata__, in file order */
    int n_meta;
} et_st_file;

/* Opens and fully validates one .safetensors file. On failure f is left closed
 * (nothing to free) and err names the file, the tensor and the problem. */
int et_st_open(et_st_file *f, const char *path, et_error *err);
void et_st_close(et_st_file *f);

/* Tensor by exact name, or NULL. O(log n). */
const et_st_tensor *et_st_find(const et_st_file *f, const char *name);
/* __metadata__ value for key, or NULL. */
const char *et_st_metadata(const et_st_file *f, const char *key);

/* Number of elements (product of shape; 1 for a scalar). Validated not to overflow. */
int64_t et_st_numel(const et_st_tensor *t);
/* Raw little-endian bytes of t (end - begin of them) inside the mapping. */
const void *et_st_data(const et_st_file *f, const et_st_tensor *t);

/* Converts t to fp32 into out[et_st_numel(t)]. Supported source dtypes: F32,
 * F16, BF16, F64 (F64 rounds to nearest float). Others fail naming the dtype. */
int et_st_read_f32(const et_st_file *f, const et_st_tensor *t, float *out, et_error *err);
/* The same for elements [first, first + n) of t in row-major order (e.g. one row
 * at a time); a range outside the tensor is an error. */
int et_st_read_f32_range(const et_st_file *f, const et_st_tensor *t, int64_t first, int64_t n,
                         float *out, et_error *err);

/* ---- a Hugging Face model folder ---------------------------------------------
 * As transformers chooses: if DIR/model.safetensors is a regular file (symlinks
 * followed) it is the model, and any model.safetensors.index.json beside it is
 * ignored (save_pretrained leaves a stale one when re-saving unsharded).
 * Otherwise DIR/model.safetensors.index.json's "weight_map" (tensor -> shard file
 * name) is authoritative: each shard is opened once, every listed tensor must
 * exist in its shard, and tensors a shard holds but the map does not list are not
 * visible. */
typedef struct {
    char *dir;
    et_st_file *files;
    int n_files;
    struct et_st_model_entry {
        const char *name;            /* points into the owning file's tensor */
        const et_st_tensor *tensor;
        int file;                    /* index into files */
    } *entries;                      /* sorted by name */
    int n_entries;
} et_st_model;

int et_st_model_open(et_st_model *m, const char *dir, et_error *err);
void et_st_model_close(et_st_model *m);

/* Tensor by name, or NULL; *file (if non-NULL) receives the shard holding it. */
const et_st_tensor *et_st_model_find(const et_st_model *m, const char *name,
                                     const et_st_file **file);

/* Finds `name`, checks its shape equals expected_shape[0..ndim) (skipped when
 * expected_shape is NULL: then out must hold et_st_numel of the stored tensor),
 * and converts it to fp32 into out. Errors: missing tensor; "tensor X in FILE has
 * shape [..], config.json implies [..]"; unsupported dtype. */
int et_st_model_read_f32(const et_st_model *m, const char *name, float *out, int ndim,
                         const int64_t *expected_shape, et_error *err);
/* The checks of et_st_model_read_f32 (present, shape) without reading: lets a
 * caller verify every tensor before allocating room for them. */
int et_st_model_check(const et_st_model *m, const char *name, int ndim,
                      const int64_t *expected_shape, et_error *err);

/* ---- writer ------------------------------------------------------------------
 * Collects tensors (data is NOT copied: pointers must stay valid until
 * et_st_writer_write returns), then writes a spec-conformant file: header with
 * __metadata__ first (always holding "format", "pt" unless the caller set one),
 * space-padded to a multiple of 8; tensors sorted by dtype alignment (descending)
 * then name, contiguous from offset 0, so each is naturally aligned. The file is
 * written to PATH.tmp.<random> in the same folder, fsync'd and renamed to PATH,
 * so a reader never sees a partial file. */
typedef struct {
    char *name;
    et_dtype dtype;                  /* dtype stored in the file */
    int ndim;
    int64_t shape[ET_ST_MAX_DIMS];
    const void *data;
    int from_f32;                    /* data is fp32, converted to dtype on write */
} et_st_wtensor;

typedef struct {
    et_st_wtensor *tensors;
    int n_tensors, cap_tensors;
    char **meta_keys, **meta_values;
    int n_meta, cap_meta;
} et_st_writer;

enum { ET_ST_WRITE_PRIVATE = 1 };    /* create the file with mode 0600 (default 0666 & ~umask) */

void et_st_writer_init(et_st_writer *w);
void et_st_writer_free(et_st_writer *w);
/* Adds a tensor whose data is already in `dtype` (little-endian, row-major).
 * Any whole-byte dtype is accepted. */
int et_st_writer_add(et_st_writer *w, const char *name, et_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, et_error *err);
/* Adds fp32 data to be stored as `dtype` (F32, BF16 or F16; rounding to nearest
 * even). */
int et_st_writer_add_f32(et_st_writer *w, const char *name, et_dtype dtype, int ndim,
                         const int64_t *shape, const float *data, et_error *err);
/* Sets (or replaces) one __metadata__ entry. */
int et_st_writer_set_metadata(et_st_writer *w, const char *key, const char *value,
                              et_error *err);
/* flags: 0 or ET_ST_WRITE_PRIVATE. */
int et_st_writer_write(const et_st_writer *w, const char *path, int flags, et_error *err);

#endif
