/* Token embedding lookup and its scatter-add backward. */
#include <string.h>

#include "kernels/ops.h"

void et_embedding_forward(float *out, const int32_t *ids, const float *table, int n, int dim) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        memcpy(out + (int64_t)i * dim, table + (int64_t)ids[i] * dim, (size_t)dim * sizeof(float));
}

/* Rows may repeat ids, so threads split the columns rather than the rows: each
 * thread owns a block of columns of every table row and the sum order stays fixed. */
#define EMBEDDING_COL_BLOCK 64
void et_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int n, int dim) {
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < dim; j0 += EMBEDDING_COL_BLOCK) {
        int j1 = j0 + EMBEDDING_COL_BLOCK < dim ? j0 + EMBEDDING_COL_BLOCK : dim;
        for (int i = 0; i < n; i++) {
            float *row = dtable + (int64_t)ids[i] * dim;
            const float *g = dout + (int64_t)i * dim;
            for (int j = j0; j < j1; j++) row[j] += g[j];
        }
    }
}
