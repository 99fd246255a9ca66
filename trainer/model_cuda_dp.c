/* DP-SGD on the device model: see trainer/model_cuda_dp.h. The per-example split
 * itself is in model_cuda_pass.c's proj_backward (one dA/dB GEMM slice per row when
 * cm->pe_grads is set); the clipping and noise kernels are kernels/cuda/dp.cu. */
#include "trainer/model_cuda_dp.h"

#include <math.h>
#include <stdlib.h>

#ifdef EHRTUNE_HAVE_CUDA

#include "kernels/cuda/dp_cuda.h"
#include "trainer/model_cuda_internal.h"

struct et_cuda_dp {
    int max_rows;
    int64_t n_params;
    void *block; /* the one allocation: everything below */
    size_t bytes;
    float *pe;         /* [max_rows, n_params] */
    double *scratch;   /* [max_rows, ETC_DP_NORM_BLOCKS] */
    double *norm2;     /* [max_rows] */
    float *factor;     /* [max_rows] */
    int32_t *unit_first; /* [max_rows + 1] */
    int32_t *h_unit_first;
    double *h_norm2;
};

static size_t up16(size_t x) { return (x + 15) & ~(size_t)15; }

int et_cuda_dp_create(et_cuda_dp **out, const et_cuda_model *cm, int max_rows, et_error *err) {
    *out = NULL;
    if (max_rows < 1) return et_fail(err, "CUDA DP: micro-batch of %d rows", max_rows);
    et_cuda_dp *dp = calloc(1, sizeof *dp);
    if (!dp) return et_fail(err, "out of memory");
    dp->max_rows = max_rows;
    dp->n_params = cm->n_params;
    const size_t rows = (size_t)max_rows;
    const size_t o_scratch = up16(rows * (size_t)cm->n_params * 4);
    const size_t o_norm2 = o_scratch + up16(rows * ETC_DP_NORM_BLOCKS * 8);
    const size_t o_factor = o_norm2 + up16(rows * 8);
    const size_t o_first = o_factor + up16(rows * 4);
    dp->bytes = o_first + up16((rows + 1) * 4);
    dp->h_unit_first = malloc(sizeof(int32_t) * (rows + 1));
    dp->h_norm2 = malloc(sizeof(double) * rows);
    if (!dp->h_unit_first || !dp->h_norm2) {
        et_cuda_dp_free(dp);
        return et_fail(err, "out of memory");
    }
    if (etc_malloc(&dp->block, dp->bytes)) {
        et_fail(err, "CUDA DP: per-example LoRA gradients (%d rows x %lld parameters x 4 bytes "
                     "= %.1f MiB): %s; lower run.micro_batch",
                max_rows, (long long)cm->n_params, (double)dp->bytes / (1 << 20), etc_last_error());
        dp->block = NULL;
        et_cuda_dp_free(dp);
        return -1;
    }
    char *b = dp->block;
    dp->pe = (float *)b;
    dp->scratch = (double *)(b + o_scratch);
    dp->norm2 = (double *)(b + o_norm2);
    dp->factor = (float *)(b + o_factor);
    dp->unit_first = (int32_t *)(b + o_first);
    *out = dp;
    return 0;
}

void et_cuda_dp_free(et_cuda_dp *dp) {
    if (!dp) return;
    if (dp->block) etc_free(dp->block);
    free(dp->h_unit_first);
    free(dp->h_norm2);
    free(dp);
}

size_t et_cuda_dp_bytes(const et_cuda_dp *dp) { return dp ? dp->bytes : 0; }

int et_cuda_dp_step(et_cuda_model *cm, et_cuda_dp *dp, const et_batch *batch, float loss_scale,
                    uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                    int64_t *n_valid, et_error *err) {
    if (batch->b > dp->max_rows)
        return et_fail(err, "CUDA DP: micro-batch of %d rows exceeds the planned %d", batch->b,
                       dp->max_rows);
    cm->train = 1;
    cm->seed = dropout_seed;
    cm->step = dropout_step;
    cm->pe_grads = dp->pe;
    int rc = cuda_model_pass(cm, batch, 1, 1, loss_scale, loss_sum, n_valid, err);
    cm->pe_grads = NULL;
    return rc;
}

int et_cuda_dp_clip_accumulate(et_cuda_model *cm, et_cuda_dp *dp, const int64_t *unit_first,
                               int n_units, double clip, double *norms, et_error *err) {
    if (n_units < 0 || n_units > dp->max_rows || unit_first[0] != 0 ||
        unit_first[n_units] > dp->max_rows)
        return et_fail(err, "CUDA DP: %d units (rows from 0 to %lld) do not fit the planned %d "
                            "rows", n_units, n_units >= 0 ? (long long)unit_first[n_units] : -1LL,
                       dp->max_rows);
    if (n_units == 0) return 0;
    for (int u = 0; u <= n_units; u++) dp->h_unit_first[u] = (int32_t)unit_first[u];
    if (etc_memcpy_h2d(dp->unit_first, dp->h_unit_first, sizeof(int32_t) * (size_t)(n_units + 1)) ||
        etc_dp_unit_norms(dp->norm2, dp->factor, dp->scratch, dp->pe, dp->n_params, dp->n_params,
                          dp->unit_first, n_units, clip) ||
        etc_dp_clip_sum(cm->grads, dp->pe, dp->n_params, dp->n_params, dp->unit_first, dp->factor,
                        n_units))
        return cuda_fail(err, "DP per-unit clipping");
    if (!norms) return 0;
    if (etc_memcpy_d2h(dp->h_norm2, dp->norm2, sizeof(double) * (size_t)n_units))
        return cuda_fail(err, "DP per-unit norms");
    for (int u = 0; u < n_units; u++) norms[u] = sqrt(dp->h_norm2[u]);
    return 0;
}

int et_cuda_dp_noise(et_cuda_model *cm, double std, const uint32_t key[8], uint64_t step,
                     float scale, et_error *err) {
    if (etc_dp_add_noise(cm->grads, cm->n_params, std, key, step) ||
        etc_scale(cm->grads, scale, cm->n_params))
        return cuda_fail(err, "DP noise");
    return 0;
}

int et_cuda_dp_download(const et_cuda_dp *dp, float *host, int rows, et_error *err) {
    if (rows > dp->max_rows) return et_fail(err, "CUDA DP: %d rows of %d", rows, dp->max_rows);
    if (etc_memcpy_d2h(host, dp->pe, (size_t)rows * (size_t)dp->n_params * 4))
        return cuda_fail(err, "copying per-example gradients to the host");
    return 0;
}

#else /* no CUDA backend in this build */

static int no_cuda(et_error *err) {
    return et_fail(err, "this ehrtune was built without the CUDA backend (no nvcc at build "
                        "time): set run.device: cpu, or rebuild on a machine with the CUDA toolkit");
}
int et_cuda_dp_create(et_cuda_dp **out, const et_cuda_model *cm, int max_rows, et_error *err) {
    *out = NULL;
    return no_cuda(err);
}
void et_cuda_dp_free(et_cuda_dp *dp) {}
size_t et_cuda_dp_bytes(const et_cuda_dp *dp) { return 0; }
int et_cuda_dp_step(et_cuda_model *cm, et_cuda_dp *dp, const et_batch *batch, float loss_scale,
                    uint64_t dropout_seed, uint64_t dropout_step, double *loss_sum,
                    int64_t *n_valid, et_error *err) {
    return no_cuda(err);
}
int et_cuda_dp_clip_accumulate(et_cuda_model *cm, et_cuda_dp *dp, const int64_t *unit_first,
                               int n_units, double clip, double *norms, et_error *err) {
    return no_cuda(err);
}
int et_cuda_dp_noise(et_cuda_model *cm, double std, const uint32_t key[8], uint64_t step,
                     float scale, et_error *err) {
    return no_cuda(err);
}
int et_cuda_dp_download(const et_cuda_dp *dp, float *host, int rows, et_error *err) {
    return no_cuda(err);
}

#endif
