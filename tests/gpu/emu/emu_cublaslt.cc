// cuBLASLt emulation (tests/gpu/emu): column-major D = alpha·op(A)·op(B) + beta·C
// (+ bias per row of D), fp32 accumulation in double, output rounded to its type.
#include <string.h>

#include "emu_device.h"
#include "include/cublasLt.h"

struct emu_lt_handle { int unused; };
struct emu_lt_desc {
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    cudaDataType_t bias_type = CUDA_R_32F;
    bool bias_type_set = false;
};
struct emu_lt_layout { cudaDataType_t type; uint64_t rows, cols; int64_t ld; };
struct emu_lt_pref { int unused; };

static double get(const void *p, cudaDataType_t t, size_t i) {
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    return (float)((const __nv_bfloat16 *)p)[i];
}
static void put(void *p, cudaDataType_t t, size_t i, float v) {
    if (t == CUDA_R_32F) ((float *)p)[i] = v;
    else ((__nv_bfloat16 *)p)[i] = __nv_bfloat16(v);
}

extern "C" {
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = new emu_lt_handle(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
const char *cublasLtGetStatusName(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_(emulated error)";
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c, cudaDataType_t s) {
    if (c != CUBLAS_COMPUTE_32F || s != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = new emu_lt_desc();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                              const void *buf, size_t size) {
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: memcpy(&d->ta, buf, sizeof d->ta); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: memcpy(&d->tb, buf, sizeof d->tb); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: memcpy(&d->epi, buf, sizeof d->epi); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: memcpy(&d->bias, buf, sizeof d->bias); break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        memcpy(&d->bias_type, buf, sizeof d->bias_type);
        d->bias_type_set = true;
        break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (ld < (int64_t)rows) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new emu_lt_layout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = new emu_lt_pref(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { delete p; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t,
                                                    const void *, size_t) {
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *returned) {
    memset(results, 0, sizeof *results);
    *returned = requested > 0 ? 1 : 0;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha_p, const void *a,
                              cublasLtMatrixLayout_t al, const void *b, cublasLtMatrixLayout_t bl,
                              const void *beta_p, const void *c, cublasLtMatrixLayout_t cl, void *dst,
                              cublasLtMatrixLayout_t dl, const cublasLtMatmulAlgo_t *, void *, size_t,
                              cudaStream_t) {
    const float alpha = *(const float *)alpha_p, beta = *(const float *)beta_p;
    const uint64_t m = dl->rows, n = dl->cols;
    const uint64_t k = d->ta == CUBLAS_OP_N ? al->cols : al->rows;
    if ((d->ta == CUBLAS_OP_N ? al->rows : al->cols) != m) return CUBLAS_STATUS_INVALID_VALUE;
    if ((d->tb == CUBLAS_OP_N ? bl->rows : bl->cols) != k) return CUBLAS_STATUS_INVALID_VALUE;
    if ((d->tb == CUBLAS_OP_N ? bl->cols : bl->rows) != n) return CUBLAS_STATUS_INVALID_VALUE;
    if (cl->rows != m || cl->cols != n) return CUBLAS_STATUS_INVALID_VALUE;
    if (al->type != bl->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool bias = d->epi == CUBLASLT_EPILOGUE_BIAS;
    if (bias && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
    const cudaDataType_t bt = d->bias_type_set ? d->bias_type : dl->type;
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) {
            double acc = 0.0;
            for (uint64_t p = 0; p < k; p++) {
                const size_t ia = d->ta == CUBLAS_OP_N ? i + p * al->ld : p + i * al->ld;
                const size_t ib = d->tb == CUBLAS_OP_N ? p + j * bl->ld : j + p * bl->ld;
                acc += get(a, al->type, ia) * get(b, bl->type, ib);
            }
            float v = alpha * (float)acc;
            if (beta != 0.0f) v += beta * (float)get(c, cl->type, i + j * cl->ld);
            if (bias) v += (float)get(d->bias, bt, i);
            put(dst, dl->type, i + j * dl->ld, v);
        }
    return CUBLAS_STATUS_SUCCESS;
}
}
