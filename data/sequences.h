/* Training rows of a fixed length cut from corpus documents.
 *
 * Rules (docs/corpus.md, "Rows"):
 *   - Each document is cut into consecutive, non-overlapping chunks of seq_len
 *     tokens (stride seq_len), except conditional ones (below). Packing happens only within one document: a row
 *     never mixes documents, hence never mixes patients (the DP privacy unit).
 *   - A short final chunk is padded at the END with pad_id; padding is never a
 *     target. Because padding only follows the real tokens, causal attention
 *     already keeps it out of every real token's attention: no attention mask
 *     is needed beyond the causal one.
 *   - targets[t] = input_ids[t+1] when t+1 is a real token of the same row whose
 *     loss_mask is 1, else -1 (HF causal-LM semantics: position t predicts t+1;
 *     -1 plays the role of HF's -100). The last position is always -1.
 *   - Consequence of stride seq_len (the choice of HF's run_clm `group_texts`):
 *     the first token of each chunk after the first is never a target, i.e. one
 *     target in seq_len is lost at each chunk boundary. Every row predicts only
 *     within itself, so rows are independent.
 *   - A row with no target at all (a 1-token tail, or a fully masked chunk) is
 *     dropped: it would cost compute and add nothing; n_dropped counts them.
 *   - Conditional documents (a masked prefix after BOS, then targets: prompt/response,
 *     chat turns) are not chunked: longer than seq_len, they keep
 *     their first seq_len tokens (TRL's SFT "keep_start" truncation), so a response is
 *     never learnt without its instruction. n_truncated counts them; of those,
 *     n_truncated_empty had no target left (the response began past seq_len). */
#ifndef EHRTUNE_SEQUENCES_H
#define EHRTUNE_SEQUENCES_H

#include <stdint.h>

#include "data/corpus.h"
#include "data/error.h"

#define ET_TARGET_IGNORE (-1)

typedef struct {
    int seq_len;
    int64_t n_rows;
    int32_t *input_ids;   /* [n_rows * seq_len] */
    int32_t *targets;     /* [n_rows * seq_len], ET_TARGET_IGNORE where no loss */
    int64_t *row_doc;     /* [n_rows] corpus document index */
    int64_t *row_start;   /* [n_rows] offset of the row's first token within its document */
    int64_t *row_patient; /* [n_rows] patient id (corpus /patient_ids) */
    int64_t *row_unit;    /* [n_rows] dense patient index in [0, n_patients): the rank of the
                             patient id among the distinct ids of these rows */
    int32_t *row_n_valid; /* [n_rows] real tokens; positions >= n_valid are padding */
    int32_t *row_n_targets; /* [n_rows] positions with a target */
    int64_t n_patients;   /* distinct patients among the rows */
    int64_t n_dropped;    /* chunks dropped for having no target */
    int64_t n_truncated;  /* conditional documents cut to their first seq_len tokens */
    int64_t n_truncated_empty; /* ... of which no target was left */
} et_rows;

/* Builds the rows of every document whose split is `split` (ET_SPLIT_ALL: all
 * documents), in document order. seq_len >= 2. All rows are materialised
 * (8 bytes per position). On failure *rows is left empty. */
int et_rows_build(et_rows *rows, const et_corpus *c, int seq_len, int split, int32_t pad_id,
                  et_error *err);

/* Frees everything; safe on a zeroed or freed et_rows. */
void et_rows_free(et_rows *rows);

static inline const int32_t *et_rows_input_ids(const et_rows *r, int64_t row) {
    return r->input_ids + row * r->seq_len;
}
static inline const int32_t *et_rows_targets(const et_rows *r, int64_t row) {
    return r->targets + row * r->seq_len;
}

#endif
