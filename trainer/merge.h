/* LoRA merged into the base weights: W' = W + scale · B · A for every targeted
 * projection, every tensor stored as BF16 in HF-sharded safetensors.
 *
 * The merge streams: one chunk of rows at a time is read from the base (mmap),
 * widened to fp32, given its LoRA delta (one GEMM per chunk: B[rows] · A), rounded
 * to bf16 and written. A base tensor already in BF16 that no adapter touches is
 * copied byte for byte. Memory stays at a few tens of MB whatever the model size,
 * so an 8B model merges on a machine with less RAM than its fp32 weights, at the
 * speed of the disk (docs/perf.md, "Export / merge throughput").
 *
 * The base is read through et_merge_source, a small interface that yields fp32
 * elements of a named tensor. Today the only source is an HF safetensors folder
 * (F32/F16/BF16). When QLoRA lands, an NF4 source dequantises here, so the delta
 * is added to exactly the weights the adapter was trained against. */
#ifndef EHRTUNE_MERGE_H
#define EHRTUNE_MERGE_H

#include <stdint.h>

#include "data/error.h"
#include "data/hf_config.h"
#include "data/safetensors.h"
#include "trainer/lora.h"

/* huggingface_hub's default max_shard_size "5GB" (decimal units). */
#define ET_MERGE_DEFAULT_SHARD_BYTES 5000000000ull

typedef struct {
    const char *name;                 /* HF tensor name, e.g. "model.layers.0.mlp.up_proj.weight" */
    int ndim;
    int64_t shape[ET_ST_MAX_DIMS];
} et_merge_tensor;

typedef struct et_merge_source {
    void *ctx;
    int n_tensors;
    const et_merge_tensor *tensors;   /* [n_tensors] */
    /* fp32 copies of elements [first, first + n) of tensor i, row-major. */
    int (*read_f32)(void *ctx, int i, int64_t first, int64_t n, float *out, et_error *err);
    /* The stored bytes of tensor i when they are BF16 already (copied as they are
     * when no LoRA touches the tensor), else NULL. May be NULL itself. */
    const void *(*bf16_bytes)(void *ctx, int i);
    /* Where those bytes lie in a file (path, byte offset), so they can be copied
     * file to file (copy_file_range) without passing through memory; -1 when not
     * in a file. May be NULL. */
    int (*bf16_extent)(void *ctx, int i, const char **path, uint64_t *offset);
    void (*close)(void *ctx);
} et_merge_source;

/* Source over an HF model folder (model.safetensors or sharded with an index).
 * Every tensor must be F32, F16 or BF16 (an error names the first that is not). */
int et_merge_source_open_hf(et_merge_source *s, const char *dir, et_error *err);
void et_merge_source_close(et_merge_source *s);

typedef struct {
    uint64_t max_shard_bytes;         /* 0 = ET_MERGE_DEFAULT_SHARD_BYTES */
    const char *const *metadata;      /* extra __metadata__ of every shard: key, value, ..., NULL */
    int64_t chunk_elems;              /* work buffer in elements; 0 = 8 Mi (tests set it tiny to
                                         exercise chunking; the output never depends on it) */
} et_merge_options;

typedef struct {
    int n_tensors, n_merged, n_shards;
    uint64_t tensor_bytes;            /* sum of tensor bytes (index "total_size") */
    uint64_t file_bytes;              /* bytes written, headers included */
    double seconds;                   /* wall time of reading, merging and writing (fsync'd) */
} et_merge_stats;

/* Writes the merged weights into out_dir (which must exist; files are created
 * 0600 under their final names, so the caller makes the folder atomic):
 * model.safetensors when everything fits one shard, else
 * model-0000k-of-0000n.safetensors + model.safetensors.index.json. Shards hold
 * whole tensors in HF order (embeddings, layers 0..L-1, final norm, head) and close
 * before exceeding max_shard_bytes; a tensor bigger than that gets a shard alone.
 * Errors: a targeted projection missing from the base or of another shape than
 * cfg implies (adapter made for another model), a non-float base tensor, I/O. */
int et_merge_write(const et_merge_source *src, const et_hf_config *cfg, const et_lora *lora,
                   const char *out_dir, const et_merge_options *o, et_merge_stats *st,
                   et_error *err);

#endif
