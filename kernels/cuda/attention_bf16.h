/* Choice of the kernels behind etc_attention_forward_bf16 and
 * etc_attention_backward_bf16 (kernels/cuda/ops_cuda.h). All variants are
 * deterministic and compute the same sums in different orders, so their results
 * differ by rounding only; each is covered by the parity harness and timed there
 * against the others.
 *
 * Backward (dK/dV and dQ):
 *   ETC_ATTN_BWD_CHAIN (the default: measured fastest so far on an H200, docs/perf.md):
 *     warps of 16 rows; dK/dV blocks of 64 keys walking the whole (head, query tile)
 *     list.
 *   ETC_ATTN_BWD_SPLIT: dK/dV blocks of 32 keys whose two warp pairs share the list and
 *     add their partials in a fixed order (measured slower than the chain).
 *   ETC_ATTN_BWD_WIDE: dQ and dK/dV kernels whose warps own 32 rows or keys
 *     (attention_bf16_wide.cu): half the shared-memory reads per tensor-core op. Head
 *     dims up to 64; larger ones run the chain kernels.
 * Forward:
 *   ETC_ATTN_FWD_NARROW (the default): 64-row blocks, 16 rows a warp.
 *   ETC_ATTN_FWD_WIDE: 128-row blocks, 32 rows a warp (head dims up to 64; larger ones
 *     run the narrow kernel).
 * Not thread-safe: select before running attention. */
#ifndef EHRTUNE_ATTENTION_BF16_H
#define EHRTUNE_ATTENTION_BF16_H

#ifdef __cplusplus
extern "C" {
#endif

enum { ETC_ATTN_BWD_SPLIT = 0, ETC_ATTN_BWD_CHAIN = 1, ETC_ATTN_BWD_WIDE = 2 };
enum { ETC_ATTN_FWD_NARROW = 0, ETC_ATTN_FWD_WIDE = 1 };

/* Select the variant used by later calls; return the previous one, or -1
 * (selection unchanged) for an unknown variant. */
int etc_attention_bf16_backward_variant(int variant);
int etc_attention_bf16_forward_variant(int variant);

/* 1 when head dim d runs the wide kernels once they are selected. */
int etc_attention_bf16_wide_supported(int d);

#ifdef __cplusplus
}
#endif

#endif
