/* cuDNN's fused flash attention as one choice of bf16 attention for the CUDA model
 * (kernels/cuda/attention_cudnn.cu), beside our own tensor-core kernels
 * (attention_bf16.h). Same tensors and masking as etc_attention_forward_bf16 /
 * etc_attention_backward_bf16 (kernels/cuda/ops_cuda.h): q, out, dout, dq
 * [B, T, Hq, D], k, v, dk, dv [B, T, Hkv, D] bf16, lse [B, Hq, T] fp32, causal with
 * an optional sliding window. Two differences:
 *   - the backward OVERWRITES dq, dk, dv (ours accumulate into them), and needs no
 *     delta scratch;
 *   - lse holds cuDNN's softmax statistics (natural-log log-sum-exp of the scaled
 *     scores, as ours; the parity row attention.lse.cudnn compares them): the model
 *     still pairs this forward with this backward only.
 * libcudnn (9.x) is opened at run time; without it, or in a build without the cuDNN
 * frontend headers, etc_attention_cudnn_available says why and the model keeps its
 * own kernels. */
#ifndef EHRTUNE_ATTENTION_CUDNN_H
#define EHRTUNE_ATTENTION_CUDNN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/ops_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when cuDNN's attention can be tried (library loaded, handle created); 0 and a
 * one-line reason in why (may be NULL) otherwise. Loads the library on first call. */
int etc_attention_cudnn_available(char *why, size_t why_len);

/* 1 when cuDNN may lead the default order: available, version 9.15.1 or later (the
 * fused-attention shape fixes PyTorch waits for before it prefers cuDNN, see
 * docs/cuda.md) and a device of compute capability 9.0 or 10.0/10.3 (where cuDNN's
 * attention is most tested). 0 and a reason otherwise; the pair can still be asked
 * for by name. */
#define ETC_CUDNN_PREFERRED_VERSION 91501
int etc_attention_cudnn_preferred(char *why, size_t why_len);

int etc_attention_cudnn_forward(etc_bf16 *out, float *lse, const etc_bf16 *q, const etc_bf16 *k,
                                const etc_bf16 *v, int b, int t, int hq, int hkv, int d,
                                int window);
int etc_attention_cudnn_backward(etc_bf16 *dq, etc_bf16 *dk, etc_bf16 *dv, const etc_bf16 *dout,
                                 const etc_bf16 *q, const etc_bf16 *k, const etc_bf16 *v,
                                 const etc_bf16 *out, const float *lse, int b, int t, int hq,
                                 int hkv, int d, int window);

/* Builds, once per shape, the forward and the backward graph of this shape (window 0:
 * full causal) and grows the workspace to both: a shape cuDNN refuses fails here, at a
 * moment the caller chooses, instead of inside a training step. deterministic_only:
 * a backward that cuDNN can run only with its non-deterministic algorithm fails too.
 * 0, or -1 with etc_last_error. The forward and backward calls build what is missing
 * themselves (then with either backward algorithm). */
int etc_attention_cudnn_prepare(int b, int t, int hq, int hkv, int d, int window,
                                int deterministic_only);

/* What the last backward plan built is: "deterministic" (cuDNN's deterministic
 * algorithm, bit-identical reruns) or "not deterministic" (cuDNN refused the
 * deterministic one for that shape); "" before any backward. Plus the cuDNN version. */
const char *etc_attention_cudnn_note(void);

/* Without a GPU: describes the forward and backward graphs of this shape as for sm_90
 * and has cuDNN validate them and build its operation graphs (no engine is chosen:
 * that needs the device). 1: accepted; 0: cannot check (no frontend in the build, or
 * libcudnn not found; msg says why); -1: rejected (msg has cuDNN's message). */
int etc_attention_cudnn_check_graphs(int b, int t, int hq, int hkv, int d, int window, char *msg,
                                     size_t msg_len);

/* Device bytes held for cuDNN's workspace (outside the model's memory plan). */
size_t etc_attention_cudnn_workspace_bytes(void);

/* Drops the cached graphs, the workspace and the handle (etc_shutdown calls it). */
void etc_attention_cudnn_release(void);

#ifdef __cplusplus
}
#endif

#endif
