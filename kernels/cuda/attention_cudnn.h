/* cuDNN's fused flash attention as a third choice of bf16 attention for the CUDA
 * model (kernels/cuda/attention_cudnn.cu), beside our own tensor-core kernels
 * (attention_bf16.h). Same tensors and masking as etc_attention_forward_bf16 /
 * etc_attention_backward_bf16 (kernels/cuda/ops_cuda.h): q, out, dout, dq
 * [B, T, Hq, D], k, v, dk, dv [B, T, Hkv, D] bf16, lse [B, Hq, T] fp32, causal with
 * an optional sliding window. Two differences:
 *   - the backward OVERWRITES dq, dk, dv (ours accumulate into them), and needs no
 *     delta scratch;
 *   - lse holds cuDNN's softmax statistics: only this pair's backward may read what
 *     this pair's forward wrote (the parity harness compares them with ours anyway).
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

int etc_attention_cudnn_forward(etc_bf16 *out, float *lse, const etc_bf16 *q, const etc_bf16 *k,
                                const etc_bf16 *v, int b, int t, int hq, int hkv, int d,
                                int window);
int etc_attention_cudnn_backward(etc_bf16 *dq, etc_bf16 *dk, etc_bf16 *dv, const etc_bf16 *dout,
                                 const etc_bf16 *q, const etc_bf16 *k, const etc_bf16 *v,
                                 const etc_bf16 *out, const float *lse, int b, int t, int hq,
                                 int hkv, int d, int window);

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
