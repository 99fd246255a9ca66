/* ehrtune ops: the one op list.
 *
 * Every op is a forward/backward pair with raw pointers and explicit sizes,
 * arguments ordered outputs first, then inputs/weights, then dimensions (llm.c).
 * This header declares the CPU reference backend (fp32, OpenBLAS + OpenMP), which
 * is the correctness contract. The CUDA backend (kernels/cuda/ops_cuda.h) has a
 * twin of each op and a parity test against the function here.
 *
 * Conventions (apply to every op below):
 *   - Row-major. N = number of token rows (B*T). C = hidden size.
 *   - Linear weights use the HF layout [out_features, in_features]: y = x·Wᵀ + b.
 *   - Attention tensors: q [B, T, Hq, D], k and v [B, T, Hkv, D]; GQA maps query
 *     head h to KV head h / (Hq / Hkv). Positions inside a row are 0..T-1.
 *   - Forward ops WRITE their outputs (=). Backward ops ACCUMULATE (+=) into every
 *     gradient they produce (dx, dweight, ...), so several consumers of a tensor
 *     can add their contributions; the caller zeroes gradient buffers.
 *     Exception: scratch buffers named `scratch_*` are overwritten.
 *   - Optional outputs/inputs may be NULL where noted.
 *   - Forward ops save what backward needs in explicit buffers (rstd, lse, ...). */
#ifndef EHRTUNE_OPS_H
#define EHRTUNE_OPS_H

#include <stdint.h>

/* The op list, used by the parity harness and docs to enumerate coverage. */
#define ET_OP_LIST(X) \
    X(embedding)      \
    X(rmsnorm)        \
    X(linear)         \
    X(lora)           \
    X(rope)           \
    X(attention)      \
    X(swiglu)         \
    X(cross_entropy)  \
    X(add)            \
    X(dropout)        \
    X(adamw)

/* ---- GEMM primitive -------------------------------------------------------
 * C[M,N] = alpha · op(A)·op(B) + beta · C, op(X) = Xᵀ when trans_X. lda etc. are
 * implied by the untransposed shapes (A is [M,K] or [K,M] when trans_a). */
void et_matmul(float *c, const float *a, const float *b, int m, int n, int k,
               int trans_a, int trans_b, float alpha, float beta);

/* ---- embedding ------------------------------------------------------------
 * out[i, :] = table[ids[i], :]. ids must be < vocab (checked by the caller). */
void et_embedding_forward(float *out, const int32_t *ids, const float *table, int n, int dim);
/* dtable[ids[i], :] += dout[i, :] */
void et_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int n, int dim);

/* ---- RMSNorm (HF: x · rsqrt(mean(x²) + eps) · weight) ----------------------
 * rstd [n] saved for backward. */
void et_rmsnorm_forward(float *out, float *rstd, const float *x, const float *weight,
                        int n, int dim, float eps);
/* dweight may be NULL (frozen norm weights). */
void et_rmsnorm_backward(float *dx, float *dweight, const float *dout, const float *x,
                         const float *weight, const float *rstd, int n, int dim);

/* ---- linear: out[n, out_dim] = x[n, in_dim] · wᵀ + bias --------------------
 * bias may be NULL. */
void et_linear_forward(float *out, const float *x, const float *w, const float *bias,
                       int n, int in_dim, int out_dim);
/* dx, dw, dbias may each be NULL (not needed / frozen). */
void et_linear_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x,
                        const float *w, int n, int in_dim, int out_dim);

/* ---- LoRA side path: out += scale · (x·Aᵀ)·Bᵀ -------------------------------
 * A [r, in_dim], B [out_dim, r] (PEFT layout). xa [n, r] is saved for backward.
 * x is the (possibly dropped-out) LoRA input. */
void et_lora_forward(float *out, float *xa, const float *x, const float *a, const float *b,
                     float scale, int n, int in_dim, int r, int out_dim);
/* dx may be NULL. scratch_dxa [n, r] is overwritten. */
void et_lora_backward(float *dx, float *da, float *db, float *scratch_dxa, const float *dout,
                      const float *x, const float *xa, const float *a, const float *b,
                      float scale, int n, int in_dim, int r, int out_dim);

/* ---- RoPE (HF rotate_half convention: element i pairs with i + D/2) ---------
 * cos_tab, sin_tab [max_pos, D/2] from et_rope_tables(). x [B, T, H, D].
 * out may alias x. */
void et_rope_forward(float *out, const float *x, const float *cos_tab, const float *sin_tab,
                     int b, int t, int h, int d);
/* dx += R(-θ) · dout. */
void et_rope_backward(float *dx, const float *dout, const float *cos_tab, const float *sin_tab,
                      int b, int t, int h, int d);

/* inv_freq for one head: d/2 entries, computed as HF does (fp32 math, llama3
 * scaling applied when rope_type is ET_ROPE_LLAMA3, /factor for ET_ROPE_LINEAR). */
typedef enum { ET_ROPE_DEFAULT = 0, ET_ROPE_LINEAR = 1, ET_ROPE_LLAMA3 = 2 } et_rope_type;
typedef struct {
    et_rope_type type;
    double theta;
    double factor;             /* linear, llama3 */
    double low_freq_factor;    /* llama3 */
    double high_freq_factor;   /* llama3 */
    double original_max_pos;   /* llama3 */
} et_rope_params;
void et_rope_inv_freq(float *inv_freq, const et_rope_params *p, int d);
/* cos/sin tables [max_pos, d/2] at positions 0..max_pos-1 (fp32, as HF). */
void et_rope_tables(float *cos_tab, float *sin_tab, const et_rope_params *p, int max_pos, int d);

/* ---- causal GQA attention (+ sliding window) --------------------------------
 * out [B, T, Hq, D]; lse [B, Hq, T] = log-sum-exp of the scaled scores of each
 * query row, saved so backward recomputes probabilities without a T×T buffer.
 * scale = 1/sqrt(D). window <= 0: full causal; otherwise key j is visible to
 * query i iff j <= i and j > i - window (HF/Mistral semantics). */
void et_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          int b, int t, int hq, int hkv, int d, int window);
void et_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           int b, int t, int hq, int hkv, int d, int window);

/* ---- SwiGLU: out = silu(gate) · up, elementwise over n values --------------- */
void et_swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
void et_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int64_t n);

/* ---- cross-entropy over logits [n, V] ---------------------------------------
 * targets[i] < 0 means "no loss at this row" (masked / padding / last position).
 * losses [n] (0 where masked) and lse [n] are written. */
void et_cross_entropy_forward(float *losses, float *lse, const float *logits,
                              const int32_t *targets, int n, int vocab);
/* dlogits[i, :] += dloss[i] · (softmax(logits[i]) − onehot(targets[i])); rows with
 * targets[i] < 0 get nothing. dloss [n] is typically 1/n_valid. */
void et_cross_entropy_backward(float *dlogits, const float *logits, const float *lse,
                               const int32_t *targets, const float *dloss, int n, int vocab);

/* ---- elementwise add (residual) --------------------------------------------- */
void et_add_forward(float *out, const float *a, const float *b, int64_t n);
/* da += dout; db += dout (either may be NULL). */
void et_add_backward(float *da, float *db, const float *dout, int64_t n);

/* ---- dropout (inverted): out = x · keep / (1 − p) ------------------------------
 * keep [n] bytes are drawn from a counter-based generator: element i of a call
 * with (seed, offset) is kept iff et_dropout_uniform(seed, offset + i) >= p, so the
 * mask is reproducible and identical on every backend. p == 0 copies x, keep all
 * ones. keep may be NULL (the mask is not stored). */
void et_dropout_forward(float *out, uint8_t *keep, const float *x, float p, uint64_t seed,
                        uint64_t offset, int64_t n);
void et_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float p, int64_t n);

/* Counter-based uniform in [0, 1): a pure function of (seed, counter) (LoRA init,
 * synthetic data). */
float et_uniform(uint64_t seed, uint64_t counter);
/* The dropout draw: stream position j is word j mod 4 of one Philox4x32-10 block at
 * counter j / 4, so four consecutive positions cost one block (et_uniform spends a
 * block on each). Shared with the CUDA twin. */
float et_dropout_uniform(uint64_t seed, uint64_t j);
/* The four draws of block `block` (positions 4·block .. 4·block + 3). */
void et_dropout_uniform4(uint64_t seed, uint64_t block, float u[4]);

/* ---- AdamW (PyTorch torch.optim.AdamW semantics, decoupled weight decay) ------
 * param ← param·(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
 * param ← param − lr · (m / (1−β1^step)) / (sqrt(v / (1−β2^step)) + eps).
 * step counts from 1. */
/* Hyperparameters are double, as Python holds them: 1 − β2 for the float 0.999f
 * would be 0.000999987, not PyTorch's 0.001. */
void et_adamw_update(float *param, float *m, float *v, const float *grad, int64_t n, double lr,
                     double beta1, double beta2, double eps, double weight_decay, int step);

/* ---- reductions ---- */
/* Σ x², accumulated in double. */
double et_sumsq(const float *x, int64_t n);
/* x *= s */
void et_scale(float *x, float s, int64_t n);

#endif
