/* CUDA backend: twins of the ops in kernels/ops.h, callable from C.
 *
 * Semantics, argument order and accumulate rules are exactly those of the
 * matching et_* function in kernels/ops.h (forward writes, backward +=); only the
 * differences are written here. tests/gpu/parity.c checks each twin against its
 * CPU reference.
 *
 * Conventions of this backend:
 *   - Every tensor pointer is a DEVICE pointer (cudaMalloc). Scalars are by value.
 *   - Every op returns 0 on success and non-zero on failure (a bad argument, a
 *     launch error, a cuBLAS status); etc_last_error() then says what happened.
 *     Launches are asynchronous: an error inside a kernel surfaces at a later
 *     call or synchronisation, as always with CUDA.
 *   - All work goes to ONE stream, set by etc_set_stream() (default: the legacy
 *     default stream). The cuBLASLt handle and its workspace are shared by every
 *     op, so ops must not run concurrently on several streams or host threads.
 *   - fp32 twins (etc_<op>_forward/backward) compute in fp32 (no TF32) and match
 *     the CPU to rounding. bf16 twins (etc_<op>_forward_bf16 ...) take bf16
 *     activations and base weights and accumulate in fp32; norm statistics, lse,
 *     losses and trainable-weight gradients stay fp32.
 *   - etc_bf16 is the raw 16-bit pattern of a bfloat16 (the top half of an fp32),
 *     so C code can hold and copy it without CUDA headers.
 *   - 16-byte aligned pointers (anything cudaMalloc returns, offset by multiples
 *     of 16 bytes) take the vectorised paths; other pointers still work, slower,
 *     except in attention, which returns an error for them. */
#ifndef EHRTUNE_OPS_CUDA_H
#define EHRTUNE_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t etc_bf16;

/* ---- device and runtime state ---------------------------------------------- */
/* Number of visible CUDA devices; 0 when there is no driver or device. */
int etc_device_count(void);
/* Writes the device name; returns compute capability ×10 (90 for sm_90), -1 on error. */
int etc_device_name(int device, char *name, int len);
/* The message of the last failure of an etc_* call on this host thread ("" if none). */
const char *etc_last_error(void);
/* Makes every later op run on `stream` (a cudaStream_t; NULL = default stream). */
int etc_set_stream(void *stream);
/* Frees the cuBLASLt handle, its workspace and cached GEMM plans (before
 * cudaDeviceReset or at exit; the next op recreates them). */
void etc_shutdown(void);

/* ---- conversions ------------------------------------------------------------ */
/* Round to nearest even, as torch's .to(torch.bfloat16). */
int etc_cast_f32_to_bf16(etc_bf16 *out, const float *x, int64_t n);
/* dst[row·ld + col] = bf16(src[row·cols + col]) (packed rows into a strided matrix). */
int etc_cast_f32_to_bf16_rows(etc_bf16 *dst, int64_t ld, const float *src, int64_t rows,
                              int64_t cols);
int etc_cast_bf16_to_f32(float *out, const etc_bf16 *x, int64_t n);

/* ---- GEMM (cuBLASLt, fp32 accumulation) --------------------------------------
 * Same contract as et_matmul: C[M,N] = alpha·op(A)·op(B) + beta·C, row-major.
 * k must be > 0. */
int etc_matmul(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
               int trans_b, float alpha, float beta);
/* bf16 A, B and C. */
int etc_matmul_bf16(etc_bf16 *c, const etc_bf16 *a, const etc_bf16 *b, int m, int n, int k,
                    int trans_a, int trans_b, float alpha, float beta);
/* Strided forms (the CUDA trainer's fused residual adds and grouped LoRA GEMMs):
 * D = alpha·op(A)·op(B) + beta·C (+ bias[col], bias may be NULL) where lda, ldb, ldd
 * are the row strides (elements) of the row-major A, B and D (0: packed rows) and C,
 * with D's layout, is read from `c` (NULL: D itself; another buffer is left
 * untouched). */
int etc_matmul_bf16_ld(etc_bf16 *d, int64_t ldd, const etc_bf16 *c, const etc_bf16 *a,
                       int64_t lda, const etc_bf16 *b, int64_t ldb, const etc_bf16 *bias, int m,
                       int n, int k, int trans_a, int trans_b, float alpha, float beta);
int etc_matmul_bf16_f32out_ld(float *c, int64_t ldc, const etc_bf16 *a, int64_t lda,
                              const etc_bf16 *b, int64_t ldb, int m, int n, int k, int trans_a,
                              int trans_b, float alpha, float beta);
/* bf16 A and B, fp32 C (gradients of fp32 master weights). */
int etc_matmul_bf16_f32out(float *c, const etc_bf16 *a, const etc_bf16 *b, int m, int n, int k,
                           int trans_a, int trans_b, float alpha, float beta);

/* ---- embedding ---- */
int etc_embedding_forward(float *out, const int32_t *ids, const float *table, int n, int dim);
/* Uses atomics: with repeated ids the summation order (and so the last bit) varies. */
int etc_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int n, int dim);
int etc_embedding_forward_bf16(etc_bf16 *out, const int32_t *ids, const etc_bf16 *table, int n,
                               int dim);

/* ---- RMSNorm ---- */
int etc_rmsnorm_forward(float *out, float *rstd, const float *x, const float *weight, int n,
                        int dim, float eps);
int etc_rmsnorm_backward(float *dx, float *dweight, const float *dout, const float *x,
                         const float *weight, const float *rstd, int n, int dim);
/* bf16 x, weight, out (HF: weight · (x̂ rounded to bf16)); rstd fp32. */
int etc_rmsnorm_forward_bf16(etc_bf16 *out, float *rstd, const etc_bf16 *x,
                             const etc_bf16 *weight, int n, int dim, float eps);
/* Rows of `out` ld_out elements apart (>= dim); the columns after dim are untouched. */
int etc_rmsnorm_forward_ld_bf16(etc_bf16 *out, int64_t ld_out, float *rstd, const etc_bf16 *x,
                                const etc_bf16 *weight, int n, int dim, float eps);
/* dx bf16 (+=), dweight fp32 (+=, may be NULL). */
int etc_rmsnorm_backward_bf16(etc_bf16 *dx, float *dweight, const etc_bf16 *dout,
                              const etc_bf16 *x, const etc_bf16 *weight, const float *rstd,
                              int n, int dim);
/* dx only, dout's rows ld_dout elements apart (>= dim; the CUDA trainer's d(ln1) rows
 * carry the K-extended LoRA columns after them). */
int etc_rmsnorm_backward_ld_bf16(etc_bf16 *dx, const etc_bf16 *dout, int64_t ld_dout,
                                 const etc_bf16 *x, const etc_bf16 *weight, const float *rstd,
                                 int n, int dim);

/* ---- linear (cuBLASLt; the forward bias is fused into the GEMM epilogue) ---- */
int etc_linear_forward(float *out, const float *x, const float *w, const float *bias, int n,
                       int in_dim, int out_dim);
int etc_linear_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x,
                        const float *w, int n, int in_dim, int out_dim);
/* bias bf16 (may be NULL). */
int etc_linear_forward_bf16(etc_bf16 *out, const etc_bf16 *x, const etc_bf16 *w,
                            const etc_bf16 *bias, int n, int in_dim, int out_dim);
/* dx bf16; dw and dbias fp32. Each may be NULL. */
int etc_linear_backward_bf16(etc_bf16 *dx, float *dw, float *dbias, const etc_bf16 *dout,
                             const etc_bf16 *x, const etc_bf16 *w, int n, int in_dim,
                             int out_dim);

/* ---- LoRA ---- */
int etc_lora_forward(float *out, float *xa, const float *x, const float *a, const float *b,
                     float scale, int n, int in_dim, int r, int out_dim);
int etc_lora_backward(float *dx, float *da, float *db, float *scratch_dxa, const float *dout,
                      const float *x, const float *xa, const float *a, const float *b,
                      float scale, int n, int in_dim, int r, int out_dim);
/* bf16 activations and a bf16 copy of A and B (the caller casts the fp32 masters
 * after each optimizer step); da and db are fp32. */
int etc_lora_forward_bf16(etc_bf16 *out, etc_bf16 *xa, const etc_bf16 *x, const etc_bf16 *a,
                          const etc_bf16 *b, float scale, int n, int in_dim, int r, int out_dim);
int etc_lora_backward_bf16(etc_bf16 *dx, float *da, float *db, etc_bf16 *scratch_dxa,
                           const etc_bf16 *dout, const etc_bf16 *x, const etc_bf16 *xa,
                           const etc_bf16 *a, const etc_bf16 *b, float scale, int n, int in_dim,
                           int r, int out_dim);

/* K-extended LoRA (docs/cuda.md): a projection's bf16 weight rows carry `width`
 * extra columns after its input features, one r-column block per LoRA'd member of
 * its input group. A segment covers one weight's extra block: dst its first extra
 * column (row stride ld, `rows` = out features); col0 the block of its own LoRA
 * (scale·B from params[b_off ..], B [rows, r] fp32), or -1 for none; every other
 * extra column is written 0. segs lives in device memory; max_elems bounds rows·width. */
typedef struct {
    etc_bf16 *dst;
    int64_t ld, b_off;
    int rows, width, col0;
} etc_kext_seg;
int etc_lora_kext_weights_bf16(const etc_kext_seg *segs, int nseg, int64_t max_elems,
                               const float *params, int r, float scale);

/* ---- RoPE (tables fp32 [max_pos, d/2], as et_rope_tables writes them) ---- */
int etc_rope_forward(float *out, const float *x, const float *cos_tab, const float *sin_tab,
                     int b, int t, int h, int d);
int etc_rope_backward(float *dx, const float *dout, const float *cos_tab, const float *sin_tab,
                      int b, int t, int h, int d);
int etc_rope_forward_bf16(etc_bf16 *out, const etc_bf16 *x, const float *cos_tab,
                          const float *sin_tab, int b, int t, int h, int d);
int etc_rope_backward_bf16(etc_bf16 *dx, const etc_bf16 *dout, const float *cos_tab,
                           const float *sin_tab, int b, int t, int h, int d);
/* dx = (not +=) the backward of dout; dx may alias dout (the CUDA trainer rotates the
 * attention's dq and dk in place). */
int etc_rope_backward_set_bf16(etc_bf16 *dx, const etc_bf16 *dout, const float *cos_tab,
                               const float *sin_tab, int b, int t, int h, int d);

/* The sliding window the attention kernels work with: window <= 0 or >= t masks
 * nothing, so it is 0 then ("none"). The kernels add the window to block indices in
 * int: a config's sentinel window near INT_MAX would overflow there and silently
 * drop every dK/dV contribution (the forward and dQ stay right). */
static inline int etc_attention_window(int window, int t) {
    return window > 0 && window < t ? window : 0;
}

/* ---- attention (fp32; flash-style: online softmax, no T×T buffer) ----
 * d must be a multiple of 4 and <= 128; hq a multiple of hkv. Deterministic: dq is
 * owned by query-tile blocks and dk/dv by key-tile blocks (no atomics). */
int etc_attention_forward(float *out, float *lse, const float *q, const float *k,
                          const float *v, int b, int t, int hq, int hkv, int d, int window);
int etc_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           int b, int t, int hq, int hkv, int d, int window);

/* ---- SwiGLU ---- */
int etc_swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
int etc_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int64_t n);
int etc_swiglu_forward_bf16(etc_bf16 *out, const etc_bf16 *gate, const etc_bf16 *up, int64_t n);
int etc_swiglu_backward_bf16(etc_bf16 *dgate, etc_bf16 *dup, const etc_bf16 *dout,
                             const etc_bf16 *gate, const etc_bf16 *up, int64_t n);

/* ---- cross-entropy (one pass over each row with an online max/sum: no softmax
 * copy of the logits is ever made) ---- */
int etc_cross_entropy_forward(float *losses, float *lse, const float *logits,
                              const int32_t *targets, int n, int vocab);
int etc_cross_entropy_backward(float *dlogits, const float *logits, const float *lse,
                               const int32_t *targets, const float *dloss, int n, int vocab);
/* bf16 logits and dlogits; losses, lse and dloss fp32. */
int etc_cross_entropy_forward_bf16(float *losses, float *lse, const etc_bf16 *logits,
                                   const int32_t *targets, int n, int vocab);
int etc_cross_entropy_backward_bf16(etc_bf16 *dlogits, const etc_bf16 *logits, const float *lse,
                                    const int32_t *targets, const float *dloss, int n,
                                    int vocab);

/* ---- add ---- */
int etc_add_forward(float *out, const float *a, const float *b, int64_t n);
int etc_add_backward(float *da, float *db, const float *dout, int64_t n);
int etc_add_forward_bf16(etc_bf16 *out, const etc_bf16 *a, const etc_bf16 *b, int64_t n);
int etc_add_backward_bf16(etc_bf16 *da, etc_bf16 *db, const etc_bf16 *dout, int64_t n);

/* ---- dropout: the same Philox4x32-10 draws as kernels/cpu/philox.c
 * (et_dropout_uniform), so the mask is bit-identical to the CPU's for the same
 * (seed, offset); keep may be NULL (mask not stored) ---- */
int etc_dropout_forward(float *out, uint8_t *keep, const float *x, float p, uint64_t seed,
                        uint64_t offset, int64_t n);
int etc_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float p, int64_t n);
int etc_dropout_forward_bf16(etc_bf16 *out, uint8_t *keep, const etc_bf16 *x, float p,
                             uint64_t seed, uint64_t offset, int64_t n);
int etc_dropout_backward_bf16(etc_bf16 *dx, const etc_bf16 *dout, const uint8_t *keep, float p,
                              int64_t n);
/* The backward with the mask drawn again from (seed, offset), as the forward of the
 * same call drew it, instead of read from a keep buffer (the CUDA trainer: a byte an
 * element neither written nor read). */
int etc_dropout_backward_redraw_bf16(etc_bf16 *dx, const etc_bf16 *dout, float p, uint64_t seed,
                                     uint64_t offset, int64_t n);
/* The input gradient of k LoRA'd projections reading one input, under LoRA dropout:
 * dx (overwrite ? = : +=) scale·Σ_j keep_j ∘ (dxa_j·A_j), keep_j member j's forward
 * mask (stream offsets[j] + i·in + c, drawn again), dxa [n, k·r] (row stride
 * ld_dxa), a [k·r, in] the members' A's one under the other. One pass over dx for
 * the group (kernels/cuda/lora_dropout.cu). Shapes: etc_lora_dropout_dx_supported. */
int etc_lora_dropout_dx_supported(int in, int k, int r);
/* Its forward: xa[j] (member j's [n, r], row stride ld) = drop_j(x)·A_jᵀ for the k
 * members at once, x read once and each member's mask (stream offsets[j] + i·in + c)
 * applied while it is in shared memory — no masked copy of x. */
int etc_lora_dropout_xa_supported(int in, int k, int r);
int etc_lora_dropout_xa_bf16(etc_bf16 *const *xa, int64_t ld, const etc_bf16 *x, const etc_bf16 *a,
                             int n, int in, int k, int r, float p, uint64_t seed,
                             const uint64_t *offsets);
/* Its weight gradient: da [k·r, in] fp32 += scale·Σ_i dxa[i, j·r + t]·keep_j(i, c)·x[i, c]
 * (member j's dA = dxa_jᵀ·drop_j(x)) for the k members at once, x read once, masks
 * drawn while x is in shared memory — no masked copy of x. Tensor cores; rows split
 * in chunks whose fp32 partials (in `scratch`, scratch_bytes of device memory) are
 * added in a fixed order: deterministic. Shapes: etc_lora_dropout_da_supported (r a
 * multiple of 16, in of 8); fails if the scratch cannot hold one chunk's partials. */
int etc_lora_dropout_da_supported(int in, int k, int r);
int etc_lora_dropout_da_bf16(float *da, const etc_bf16 *dxa, int64_t ld_dxa, const etc_bf16 *x,
                             int n, int in, int k, int r, float p, uint64_t seed,
                             const uint64_t *offsets, void *scratch, size_t scratch_bytes);
int etc_lora_dropout_dx_bf16(etc_bf16 *dx, const etc_bf16 *dxa, int64_t ld_dxa, const etc_bf16 *a,
                             int n, int in, int k, int r, float p, uint64_t seed,
                             const uint64_t *offsets, int overwrite);

/* ---- AdamW (fp32 master weights and state; same operation order as the CPU) ---- */
int etc_adamw_update(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int step);

/* ---- reductions ---- */
/* *out = Σ x² accumulated in double; out is a DEVICE pointer to one double. The
 * summation order is fixed (deterministic). */
int etc_sumsq(double *out, const float *x, int64_t n);
int etc_scale(float *x, float s, int64_t n);

/* ==== additions for the CUDA training path (trainer/model_cuda.c) ==== */

/* ---- attention, bf16 on the tensor cores (mma.sync; kernels/cuda/attention_bf16.cu):
 * same contract as the fp32 twin, with bf16 q, k, v, out and gradients, fp32 lse.
 * Head dims: multiples of 16 up to 128 (etc_attention_bf16_supported). Backward
 * needs scratch_delta [B, Hq, T] fp32 (overwritten). Deterministic (no atomics). */
int etc_attention_bf16_supported(int d);
int etc_attention_forward_bf16(etc_bf16 *out, float *lse, const etc_bf16 *q, const etc_bf16 *k,
                               const etc_bf16 *v, int b, int t, int hq, int hkv, int d,
                               int window);
int etc_attention_backward_bf16(etc_bf16 *dq, etc_bf16 *dk, etc_bf16 *dv, float *scratch_delta,
                                const etc_bf16 *dout, const etc_bf16 *q, const etc_bf16 *k,
                                const etc_bf16 *v, const etc_bf16 *out, const float *lse, int b,
                                int t, int hq, int hkv, int d, int window);

/* ---- cross-entropy forward + backward in place (kernels/cuda/cross_entropy_fused.cu):
 * writes losses and lse as etc_cross_entropy_forward_bf16, then overwrites each row
 * of logits with dloss[i]·(softmax − onehot) (zeros where targets[i] < 0). dloss NULL:
 * forward only, logits untouched. */
int etc_cross_entropy_fused_bf16(float *losses, float *lse, etc_bf16 *logits,
                                 const int32_t *targets, const float *dloss, int n, int vocab);

/* ---- SwiGLU backward written over its inputs (kernels/cuda/swiglu_inplace.cu):
 * gate ← d/dgate, up ← d/dup of etc_swiglu_backward_bf16 (which accumulates into
 * separate buffers). For training, where gate and up are dead after backward. */
int etc_swiglu_backward_inplace_bf16(etc_bf16 *gate, etc_bf16 *up, const etc_bf16 *dout,
                                     int64_t n);

/* ---- device memory for C callers (kernels/cuda/memory.cu). Copies and memsets run
 * on the ops' stream; etc_memcpy_d2h waits for it. Failures name the bytes asked
 * and the bytes free. */
int etc_malloc(void **p, size_t bytes);
void etc_free(void *p);
int etc_memcpy_h2d(void *dst, const void *src, size_t bytes);
int etc_memcpy_d2h(void *dst, const void *src, size_t bytes);
int etc_memcpy_d2d(void *dst, const void *src, size_t bytes);
int etc_memset(void *p, int value, size_t bytes);
/* Waits for all queued work; returns non-zero (with the message) if any failed. */
int etc_synchronize(void);
int etc_mem_info(size_t *free_bytes, size_t *total_bytes);
/* out[i] = lo + (hi − lo)·u(seed, i), u uniform in [0, 1) from a counter-based hash
 * (random weights for benchmarks; not the CPU's et_uniform stream). */
int etc_fill_uniform_bf16(etc_bf16 *out, int64_t n, float lo, float hi, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif
