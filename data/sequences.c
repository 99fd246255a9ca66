#include "data/sequences.h"

#include <stdlib.h>
#include <string.h>

void et_rows_free(et_rows *r) {
    if (!r) return;
    free(r->input_ids);
    free(r->targets);
    free(r->row_doc);
    free(r->row_start);
    free(r->row_patient);
    free(r->row_unit);
    free(r->row_n_valid);
    free(r->row_n_targets);
    memset(r, 0, sizeof *r);
}

/* Number of targets a chunk [start, start+n) of a document would have. */
static int32_t chunk_targets(const uint8_t *mask, int64_t start, int64_t n) {
    int32_t k = 0;
    for (int64_t t = 1; t < n; t++) k += mask[start + t] != 0;
    return k;
}

/* A conditional document (prompt/response, chat turns): it begins with a masked-out
 * prefix (the prompt; the token after BOS is no target) and a target follows. Its
 * targets are meant to be learnt WITH what precedes them, so it is never cut into
 * independent chunks: a later chunk would train the response without its instruction.
 * As TRL's SFT truncation ("keep_start") it keeps its first seq_len tokens only. Notes
 * (targets from the start, masked spans inside or not) are chunked as HF's group_texts. */
static int is_conditional(const uint8_t *mask, int64_t len) {
    if (len < 2 || mask[1]) return 0;
    int64_t t = 2;
    while (t < len && !mask[t]) t++;
    return t < len;
}

/* How much of a document becomes rows: all of it, or (conditional and longer than
 * seq_len) its first T tokens. */
static int64_t used_length(const uint8_t *mask, int64_t len, int64_t T, int *truncated) {
    *truncated = len > T && is_conditional(mask, len);
    return *truncated ? T : len;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* row_unit = rank of the row's patient id among the distinct ids: a dense index
 * that does not depend on document order. */
static int assign_units(et_rows *r, et_error *err) {
    if (r->n_rows == 0) return 0;
    int64_t *ids = malloc((size_t)r->n_rows * sizeof *ids);
    if (!ids) return et_fail(err, "rows: out of memory");
    memcpy(ids, r->row_patient, (size_t)r->n_rows * sizeof *ids);
    qsort(ids, (size_t)r->n_rows, sizeof *ids, cmp_i64);
    int64_t n = 0;
    for (int64_t i = 0; i < r->n_rows; i++)
        if (i == 0 || ids[i] != ids[n - 1]) ids[n++] = ids[i];
    r->n_patients = n;
    for (int64_t i = 0; i < r->n_rows; i++) {
        const int64_t *hit = bsearch(&r->row_patient[i], ids, (size_t)n, sizeof *ids, cmp_i64);
        r->row_unit[i] = hit - ids;
    }
    free(ids);
    return 0;
}

int et_rows_build(et_rows *r, const et_corpus *c, int seq_len, int split, int32_t pad_id,
                  et_error *err) {
    memset(r, 0, sizeof *r);
    if (seq_len < 2)
        return et_fail(err, "rows: seq_len %d is too small (need >= 2: a row predicts token t+1 "
                            "from token t)", seq_len);
    if (split < ET_SPLIT_ALL || split > ET_SPLIT_TEST)
        return et_fail(err, "rows: split %d is not -1 (all), 0 (train), 1 (val) or 2 (test)", split);
    const int64_t T = seq_len;

    /* Pass 1: count the rows that carry at least one target. */
    int64_t n_rows = 0, n_dropped = 0, n_truncated = 0, n_truncated_empty = 0;
    for (int64_t d = 0; d < c->n_docs; d++) {
        if (split != ET_SPLIT_ALL && c->split[d] != split) continue;
        const uint8_t *mask = et_corpus_doc_mask(c, d);
        int truncated;
        int64_t len = used_length(mask, et_corpus_doc_len(c, d), T, &truncated);
        n_truncated += truncated;
        for (int64_t s = 0; s < len; s += T) {
            int64_t n = len - s < T ? len - s : T;
            if (chunk_targets(mask, s, n) > 0) n_rows++;
            else n_dropped++, n_truncated_empty += truncated;
        }
    }

    r->seq_len = seq_len;
    r->n_dropped = n_dropped;
    r->n_truncated = n_truncated;
    r->n_truncated_empty = n_truncated_empty;
    size_t cells = (size_t)(n_rows ? n_rows : 1) * (size_t)T;
    size_t nr = (size_t)(n_rows ? n_rows : 1);
    r->input_ids = malloc(cells * sizeof(int32_t));
    r->targets = malloc(cells * sizeof(int32_t));
    r->row_doc = malloc(nr * sizeof(int64_t));
    r->row_start = malloc(nr * sizeof(int64_t));
    r->row_patient = malloc(nr * sizeof(int64_t));
    r->row_unit = malloc(nr * sizeof(int64_t));
    r->row_n_valid = malloc(nr * sizeof(int32_t));
    r->row_n_targets = malloc(nr * sizeof(int32_t));
    if (!r->input_ids || !r->targets || !r->row_doc || !r->row_start || !r->row_patient ||
        !r->row_unit || !r->row_n_valid || !r->row_n_targets) {
        et_rows_free(r);
        return et_fail(err, "rows: out of memory for %lld rows of %d tokens", (long long)n_rows,
                       seq_len);
    }

    /* Pass 2: fill them. */
    int64_t row = 0;
    for (int64_t d = 0; d < c->n_docs; d++) {
        if (split != ET_SPLIT_ALL && c->split[d] != split) continue;
        const int32_t *tok = et_corpus_doc_tokens(c, d);
        const uint8_t *mask = et_corpus_doc_mask(c, d);
        int truncated;
        int64_t len = used_length(mask, et_corpus_doc_len(c, d), T, &truncated);
        for (int64_t s = 0; s < len; s += T) {
            int64_t n = len - s < T ? len - s : T;
            int32_t k = chunk_targets(mask, s, n);
            if (k == 0) continue;
            int32_t *ids = r->input_ids + row * T, *tg = r->targets + row * T;
            for (int64_t t = 0; t < T; t++) {
                ids[t] = t < n ? tok[s + t] : pad_id;
                tg[t] = (t + 1 < n && mask[s + t + 1]) ? tok[s + t + 1] : ET_TARGET_IGNORE;
            }
            r->row_doc[row] = d;
            r->row_start[row] = s;
            r->row_patient[row] = c->patient_ids[d];
            r->row_n_valid[row] = (int32_t)n;
            r->row_n_targets[row] = k;
            row++;
        }
    }
    r->n_rows = n_rows;
    if (assign_units(r, err)) {
        et_rows_free(r);
        return -1;
    }
    return 0;
}
