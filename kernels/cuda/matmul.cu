// GEMM through cuBLASLt with fp32 accumulation (CUBLAS_COMPUTE_32F: plain fp32 for
// fp32 operands, never TF32, so fp32 results match the CPU to rounding).
//
// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major
// matrix read as column-major is its transpose; so the call swaps A and B and
// keeps each transpose flag. Plans (descriptors + the heuristic's algorithm) are
// cached by shape, because the heuristic query costs tens of microseconds of host
// time and a training step repeats the same few shapes.
#include <string.h>

#include "kernels/cuda/context.h"

typedef struct {
    cudaDataType_t ab, c;
    int trans_a, trans_b, m, n, k, bias;
    int64_t lda, ldb, ldc;  // row strides in elements of the row-major operands
    uint32_t align;  // bytes every pointer is aligned to (the algorithm may rely on it)
} plan_key;

typedef struct {
    plan_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} plan;

#define PLAN_SLOTS 128
static plan g_plans[PLAN_SLOTS];
static int g_plan_count = 0, g_plan_next = 0;

static void plan_free(plan *p) {
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof *p);
}

void etc_matmul_forget_plans(void) {
    for (int i = 0; i < g_plan_count; i++) plan_free(&g_plans[i]);
    g_plan_count = g_plan_next = 0;
}

#define LT_TRY(call, what)                                                              \
    do {                                                                                \
        cublasStatus_t s_ = (call);                                                     \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                              \
            plan_free(p);                                                               \
            return etc_fail("matmul %dx%dx%d: %s failed (%s)", key->m, key->n, key->k, \
                            what, cublasLtGetStatusName(s_));                           \
        }                                                                               \
    } while (0)

// Builds the column-major problem: m' = N, n' = M, k' = K, A' = b, B' = a.
static int plan_build(plan *p, const plan_key *key, cublasLtHandle_t lt, size_t workspace) {
    memset(p, 0, sizeof *p);
    p->key = *key;
    const int M = key->m, N = key->n, K = key->k;
    cublasOperation_t op_a = key->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // applied to b
    cublasOperation_t op_b = key->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // applied to a
    LT_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
           "set TRANSA");
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
           "set TRANSB");
    if (key->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;  // bias[row of Cᵀ] = bias[col of C]
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                              sizeof epi),
               "set EPILOGUE");
        cudaDataType_t bt = key->c;
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                              sizeof bt),
               "set BIAS_DATA_TYPE");
    }
    // Stored shapes (column-major): b is [N,K] (ld N) or, transposed, [K,N] (ld K);
    // a row-major row stride is the column-major leading dimension.
    uint64_t a_rows = key->trans_b ? K : N, a_cols = key->trans_b ? N : K;
    uint64_t b_rows = key->trans_a ? M : K, b_cols = key->trans_a ? K : M;
    LT_TRY(cublasLtMatrixLayoutCreate(&p->la, key->ab, a_rows, a_cols, key->ldb), "layout A");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lb, key->ab, b_rows, b_cols, key->lda), "layout B");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lc, key->c, (uint64_t)N, (uint64_t)M, key->ldc),
           "layout C");

    cublasLtMatmulPreference_t pref = nullptr;
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace);
    const cublasLtMatmulPreferenceAttributes_t align_attrs[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4 && s == CUBLAS_STATUS_SUCCESS; i++)
        s = cublasLtMatmulPreferenceSetAttribute(pref, align_attrs[i], &key->align,
                                                 sizeof key->align);
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &result,
                                           &found);
    cublasLtMatmulPreferenceDestroy(pref);
    LT_TRY(s, "AlgoGetHeuristic");
    if (found < 1) {
        plan_free(p);
        return etc_fail("matmul %dx%dx%d: cuBLASLt has no algorithm for this shape/type", M, N, K);
    }
    p->algo = result.algo;
    return 0;
}

// D = alpha·op(A)·op(B) + beta·C (+ bias); C is read from `cin`, which may be D itself.
// lda, ldb, ldc: row strides of the row-major A, B and C/D, or 0 for packed rows.
static int gemm(cudaDataType_t ab, cudaDataType_t ct, void *c, const void *cin, const void *a,
                const void *b, const void *bias, int m, int n, int k, int trans_a, int trans_b,
                float alpha, float beta, int64_t lda, int64_t ldb, int64_t ldc) {
    if (m < 0 || n < 0 || k < 0) return etc_fail("matmul: negative size %dx%dx%d", m, n, k);
    if (m == 0 || n == 0) return 0;
    if (k == 0) return etc_fail("matmul %dx%dx0: k must be > 0", m, n);
    const int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (!lda) lda = a_cols;
    if (!ldb) ldb = b_cols;
    if (!ldc) ldc = n;
    if (lda < a_cols || ldb < b_cols || ldc < n)
        return etc_fail("matmul %dx%dx%d: row strides %lld, %lld, %lld below the rows' %lld, "
                        "%lld, %d elements",
                        m, n, k, (long long)lda, (long long)ldb, (long long)ldc,
                        (long long)a_cols, (long long)b_cols, n);
    cublasLtHandle_t lt;
    void *ws;
    size_t ws_bytes;
    if (etc_cublaslt(&lt, &ws, &ws_bytes)) return -1;

    plan_key key;
    memset(&key, 0, sizeof key);  // padding bytes take part in memcmp
    key.ab = ab, key.c = ct, key.trans_a = !!trans_a, key.trans_b = !!trans_b;
    key.m = m, key.n = n, key.k = k, key.bias = bias != nullptr;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    // 16-byte vector access needs aligned pointers and rows that start 16 bytes apart
    const size_t es_ab = ab == CUDA_R_16BF ? 2 : 4, es_c = ct == CUDA_R_16BF ? 2 : 4;
    const bool rows16 = (lda * es_ab) % 16 == 0 && (ldb * es_ab) % 16 == 0 && (ldc * es_c) % 16 == 0;
    key.align = rows16 && etc_aligned16(a, b, c, bias, cin) ? 16 : (uint32_t)es_ab;
    plan *p = nullptr;
    for (int i = 0; i < g_plan_count; i++)
        if (!memcmp(&g_plans[i].key, &key, sizeof key)) p = &g_plans[i];
    if (!p) {
        // Round-robin eviction once full: shapes of one run are few and repeat.
        p = &g_plans[g_plan_next];
        if (g_plan_count == PLAN_SLOTS) plan_free(p);
        if (plan_build(p, &key, lt, ws_bytes)) return -1;
        if (g_plan_count < PLAN_SLOTS) g_plan_count++;
        g_plan_next = (g_plan_next + 1) % PLAN_SLOTS;
    }
    if (bias) {
        cublasStatus_t s = cublasLtMatmulDescSetAttribute(
            p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        if (s != CUBLAS_STATUS_SUCCESS)
            return etc_fail("matmul %dx%dx%d: set BIAS_POINTER failed (%s)", m, n, k,
                            cublasLtGetStatusName(s));
    }
    cublasStatus_t s = cublasLtMatmul(lt, p->op, &alpha, b, p->la, a, p->lb, &beta, cin, p->lc,
                                      c, p->lc, &p->algo, ws, ws_bytes, etc_stream());
    if (s != CUBLAS_STATUS_SUCCESS)
        return etc_fail("matmul %dx%dx%d: cublasLtMatmul failed (%s)", m, n, k,
                        cublasLtGetStatusName(s));
    return 0;
}

int etc_gemm_bias(int bf16, void *c, const void *a, const void *b, const void *bias, int m, int n,
                  int k, int trans_a, int trans_b, float alpha, float beta) {
    cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    return gemm(t, t, c, c, a, b, bias, m, n, k, trans_a, trans_b, alpha, beta, 0, 0, 0);
}

extern "C" int etc_matmul(float *c, const float *a, const float *b, int m, int n, int k,
                          int trans_a, int trans_b, float alpha, float beta) {
    return gemm(CUDA_R_32F, CUDA_R_32F, c, c, a, b, nullptr, m, n, k, trans_a, trans_b, alpha,
                beta, 0, 0, 0);
}

extern "C" int etc_matmul_bf16(etc_bf16 *c, const etc_bf16 *a, const etc_bf16 *b, int m, int n,
                               int k, int trans_a, int trans_b, float alpha, float beta) {
    return gemm(CUDA_R_16BF, CUDA_R_16BF, c, c, a, b, nullptr, m, n, k, trans_a, trans_b, alpha,
                beta, 0, 0, 0);
}

extern "C" int etc_matmul_bf16_f32out(float *c, const etc_bf16 *a, const etc_bf16 *b, int m,
                                      int n, int k, int trans_a, int trans_b, float alpha,
                                      float beta) {
    return gemm(CUDA_R_16BF, CUDA_R_32F, c, c, a, b, nullptr, m, n, k, trans_a, trans_b, alpha,
                beta, 0, 0, 0);
}

extern "C" int etc_matmul_bf16_ld(etc_bf16 *d, int64_t ldd, const etc_bf16 *c, const etc_bf16 *a,
                                  int64_t lda, const etc_bf16 *b, int64_t ldb,
                                  const etc_bf16 *bias, int m, int n, int k, int trans_a,
                                  int trans_b, float alpha, float beta) {
    return gemm(CUDA_R_16BF, CUDA_R_16BF, d, c ? c : d, a, b, bias, m, n, k, trans_a, trans_b,
                alpha, beta, lda, ldb, ldd);
}

extern "C" int etc_matmul_bf16_f32out_ld(float *c, int64_t ldc, const etc_bf16 *a, int64_t lda,
                                         const etc_bf16 *b, int64_t ldb, int m, int n, int k,
                                         int trans_a, int trans_b, float alpha, float beta) {
    return gemm(CUDA_R_16BF, CUDA_R_32F, c, c, a, b, nullptr, m, n, k, trans_a, trans_b, alpha,
                beta, lda, ldb, ldc);
}
