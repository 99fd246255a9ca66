#include "trainer/dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void et_dp_units_free(et_dp_units *u) {
    free(u->offsets);
    free(u->rows);
    memset(u, 0, sizeof *u);
}

/* Dense id of a row's unit: rows.row_unit for patients, a renumbering of row_doc for
 * documents (rows of one document are consecutive), the row itself for sequences. */
int et_dp_units_build(et_dp_units *u, const et_rows *rows, et_dp_unit kind, et_error *err) {
    memset(u, 0, sizeof *u);
    int64_t n = rows->n_rows;
    int64_t *unit_of = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!unit_of) return et_fail(err, "out of memory");
    int64_t n_units = 0;
    for (int64_t i = 0; i < n; i++) {
        if (kind == ET_DP_UNIT_PATIENT) unit_of[i] = rows->row_unit[i];
        else if (kind == ET_DP_UNIT_SEQUENCE) unit_of[i] = i;
        else unit_of[i] = (i > 0 && rows->row_doc[i] == rows->row_doc[i - 1]) ? unit_of[i - 1]
                                                                             : (i ? unit_of[i - 1] + 1 : 0);
        if (unit_of[i] + 1 > n_units) n_units = unit_of[i] + 1;
    }
    u->n_units = n_units;
    u->offsets = calloc((size_t)n_units + 1, sizeof(int64_t));
    u->rows = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!u->offsets || !u->rows) {
        free(unit_of);
        et_dp_units_free(u);
        return et_fail(err, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) u->offsets[unit_of[i] + 1]++;
    for (int64_t k = 0; k < n_units; k++) u->offsets[k + 1] += u->offsets[k];
    int64_t *fill = calloc((size_t)n_units + 1, sizeof(int64_t));
    if (!fill) {
        free(unit_of);
        et_dp_units_free(u);
        return et_fail(err, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) u->rows[u->offsets[unit_of[i]] + fill[unit_of[i]]++] = i;
    free(fill);
    free(unit_of);
    return 0;
}

void et_dp_batch_free(et_dp_batch *b) {
    free(b->units);
    free(b->unit_first);
    free(b->rows);
    memset(b, 0, sizeof *b);
}

static int grow(int64_t **p, int64_t *cap, int64_t need) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    int64_t *q = realloc(*p, sizeof(int64_t) * (size_t)c);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

int et_dp_sample(et_dp_batch *b, const et_dp_units *u, double q, int max_per_unit,
                 const et_dp_rng *rng, uint64_t step, et_error *err) {
    b->n_units = 0;
    b->n_rows = 0;
    for (int64_t k = 0; k < u->n_units; k++) {
        if (!(et_dp_uniform(rng, ET_DP_PURPOSE_SAMPLE, step, (uint64_t)k) < q)) continue;
        int64_t have = u->offsets[k + 1] - u->offsets[k];
        int64_t take = have < max_per_unit ? have : max_per_unit;
        if (grow(&b->units, &b->cap_units, b->n_units + 1) ||
            grow(&b->unit_first, &b->cap_first, b->n_units + 2) ||
            grow(&b->rows, &b->cap_rows, b->n_rows + have))
            return et_fail(err, "out of memory sampling a batch");
        b->units[b->n_units] = k;
        b->unit_first[b->n_units] = b->n_rows;
        int64_t *dst = b->rows + b->n_rows;
        memcpy(dst, u->rows + u->offsets[k], sizeof(int64_t) * (size_t)have);
        /* A uniform random subset of `take` rows: partial Fisher-Yates. */
        for (int64_t j = 0; j < take && take < have; j++) {
            double r = et_dp_uniform(rng, ET_DP_PURPOSE_SUBSET, step, ((uint64_t)k << 24) + (uint64_t)j);
            int64_t pick = j + (int64_t)(r * (double)(have - j));
            if (pick >= have) pick = have - 1;
            int64_t t = dst[j];
            dst[j] = dst[pick];
            dst[pick] = t;
        }
        b->n_rows += take;
        b->n_units++;
    }
    if (grow(&b->unit_first, &b->cap_first, b->n_units + 1)) return et_fail(err, "out of memory");
    b->unit_first[b->n_units] = b->n_rows;
    return 0;
}

double et_dp_clip_add(float *sum, const float *g, int64_t n, double clip, double *norm) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double nrm = sqrt(ss);
    if (norm) *norm = nrm;
    /* A non-finite gradient (an overflow in one unit's forward) has no finite clipped
     * form: 0·inf is NaN, and one such unit would turn the whole noisy sum into NaN
     * (found 2026-11-26). It contributes nothing; its norm reads as +inf. */
    if (!isfinite(nrm)) {
        if (norm) *norm = INFINITY;
        return 0.0;
    }
    double f = clip / (nrm + 1e-6);
    if (f > 1.0) f = 1.0;
    float ff = (float)f;
    for (int64_t i = 0; i < n; i++) sum[i] += ff * g[i];
    return f;
}
