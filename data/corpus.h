/* Corpus HDF5 file, schema version 1: writer (streaming) and reader.
 *
 *   /tokens         int32  [n_tokens]    chunked, zstd (filter 32015)
 *   /loss_mask      uint8  [n_tokens]    chunked, zstd; 1 = token is a training target
 *   /doc_offsets    int64  [n_docs+1]    doc i = tokens[off[i], off[i+1]); off[0] = 0
 *   /patient_ids    int64  [n_docs]
 *   /split          uint8  [n_docs]      0 train, 1 val, 2 test
 *   /groups/<name>  int16  [n_docs]      code i <-> attribute `labels`[i]; -1 = missing
 *   /structured     float32 [n_docs, F]  optional; attribute `names` [F]; NaN = missing
 *   root attributes: format = "ehrtune-corpus", version = 1, tokenizer_sha256,
 *   vocab_size, source_sha256, phi_scan (JSON), created (ISO-8601 UTC).
 * docs/corpus.md is the full description. Every string is a variable-length UTF-8
 * HDF5 string, so h5py returns `str`. The zstd filter is registered in-process
 * (data/zstd_filter.h); Python reads these files with `import hdf5plugin`.
 *
 * Neither side prints: HDF5's own error-stack printing is switched off and its
 * failures become et_error messages naming the file and the dataset. */
#ifndef EHRTUNE_CORPUS_H
#define EHRTUNE_CORPUS_H

#include <stdint.h>

#include "data/error.h"

#define ET_CORPUS_FORMAT "ehrtune-corpus"
#define ET_CORPUS_VERSION 1

enum { ET_SPLIT_TRAIN = 0, ET_SPLIT_VAL = 1, ET_SPLIT_TEST = 2, ET_SPLIT_ALL = -1 };

/* Limits the writer enforces: groups are demographic categories (sex, age band,
 * ...), not identifiers, and their label lists must fit in an HDF5 attribute. */
#define ET_CORPUS_MAX_GROUPS 64
#define ET_CORPUS_MAX_LABELS 1024
#define ET_CORPUS_MAX_NAME 64

/* ---------------------------------------------------------------- writer --- */

typedef struct et_corpus_writer et_corpus_writer;

typedef struct {
    const char *tokenizer_sha256; /* hex sha256 of tokenizer.json; "" for pretokenized */
    int64_t vocab_size;           /* > 0: every token must be < vocab_size.
                                     0: unknown; written as max token id + 1 */
    const char *source_sha256;    /* hex sha256 of the input file (or set it later with
                                     et_corpus_writer_set_source_sha256) */
    const char *phi_scan;         /* JSON summary of the PHI scan */
    const char *created;          /* ISO-8601 UTC; NULL = now */
    int n_structured;             /* F columns of /structured; 0 = no /structured */
    const char *const *structured_names; /* [n_structured] */
    int zstd_level;               /* 0 = ET_ZSTD_DEFAULT_LEVEL */
    int64_t chunk_tokens;         /* HDF5 chunk of /tokens and /loss_mask; 0 = 65536.
                                     Also the size of the writer's token buffer. */
    int64_t chunk_docs;           /* chunk of the per-document datasets; 0 = 4096 */
    int force;                    /* replace an existing output file */
} et_corpus_writer_options;

typedef struct {
    int64_t patient_id;
    int split;                       /* ET_SPLIT_TRAIN / VAL / TEST */
    const int32_t *tokens;
    int64_t n_tokens;
    const uint8_t *loss_mask;        /* [n_tokens] of 0/1; NULL = all tokens in the loss */
    int n_groups;                    /* groups named by this document */
    const char *const *group_names;  /* [n_groups]; a name first seen here creates
                                        /groups/<name>, earlier documents get -1 */
    const char *const *group_labels; /* [n_groups]; NULL = missing (-1) */
    const float *structured;         /* [n_structured] or NULL (all NaN) */
} et_corpus_doc;

/* Starts writing `path`. Refuses an existing file unless opt->force. The data go
 * to `<path>.tmp-XXXXXX` (mode 0600) until et_corpus_writer_finish renames it.
 * Memory stays constant: tokens and per-document values are buffered one chunk
 * at a time and appended to extensible chunked datasets. */
int et_corpus_writer_open(et_corpus_writer **w, const char *path,
                          const et_corpus_writer_options *opt, et_error *err);

/* Appends one document (copied; the caller may reuse its arrays). Checks tokens
 * (>= 0, < vocab_size when given), mask values, split, group names/limits. After
 * a failure the writer is unusable: call et_corpus_writer_abort. */
int et_corpus_writer_add(et_corpus_writer *w, const et_corpus_doc *doc, et_error *err);

/* Sets the source_sha256 attribute, for writers that hash the input while they
 * stream it and know the digest only at the end. */
int et_corpus_writer_set_source_sha256(et_corpus_writer *w, const char *hex, et_error *err);

/* Sets the phi_scan attribute (JSON summary), for writers that scan while they stream. */
int et_corpus_writer_set_phi_scan(et_corpus_writer *w, const char *json, et_error *err);

/* Flushes, writes attributes, closes, fsyncs and renames the temp file onto the
 * output path. Always frees w; on failure the temp file is removed. Refuses a
 * corpus with no documents. */
int et_corpus_writer_finish(et_corpus_writer *w, et_error *err);

/* Closes and removes the temp file, frees w. NULL is allowed. */
void et_corpus_writer_abort(et_corpus_writer *w);

/* ---------------------------------------------------------------- reader --- */

typedef struct {
    char *name;
    int n_labels;
    char **labels;   /* [n_labels] */
    int16_t *codes;  /* [n_docs]; -1 = missing, else index into labels */
} et_corpus_group;

/* An opened corpus. The reader loads the WHOLE corpus into memory (5 bytes per
 * token: 1e9 tokens = 5 GB); a hyperslab-streaming reader for corpora bigger
 * than RAM is future work (docs/corpus.md). All arrays are owned by the struct. */
typedef struct {
    char *path;
    int64_t n_docs, n_tokens, vocab_size;
    int64_t *doc_offsets;  /* [n_docs+1] */
    int32_t *tokens;       /* [n_tokens] */
    uint8_t *loss_mask;    /* [n_tokens], 0/1 */
    int64_t *patient_ids;  /* [n_docs] */
    uint8_t *split;        /* [n_docs] */
    int n_groups;
    et_corpus_group *groups;
    int n_structured;          /* F; 0 when the file has no /structured */
    char **structured_names;   /* [F] */
    float *structured;         /* [n_docs * F], row-major */
    char *tokenizer_sha256, *source_sha256, *phi_scan, *created;
} et_corpus;

/* Opens and fully validates a corpus: format/version attributes, every required
 * dataset present with the right rank, type and length, doc_offsets starting at
 * 0, non-decreasing and ending at n_tokens, tokens in [0, vocab_size), masks
 * 0/1, splits 0..2, group codes in [-1, n_labels). On failure *c is left empty. */
int et_corpus_open(et_corpus *c, const char *path, et_error *err);

/* Frees everything; safe on a zeroed or already-closed corpus. */
void et_corpus_close(et_corpus *c);

static inline int64_t et_corpus_doc_len(const et_corpus *c, int64_t doc) {
    return c->doc_offsets[doc + 1] - c->doc_offsets[doc];
}
static inline const int32_t *et_corpus_doc_tokens(const et_corpus *c, int64_t doc) {
    return c->tokens + c->doc_offsets[doc];
}
static inline const uint8_t *et_corpus_doc_mask(const et_corpus *c, int64_t doc) {
    return c->loss_mask + c->doc_offsets[doc];
}

/* The group called `name`, or NULL. */
const et_corpus_group *et_corpus_find_group(const et_corpus *c, const char *name);

#endif
