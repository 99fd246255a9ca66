/* Choice of the dK/dV kernel behind etc_attention_backward_bf16 (kernels/cuda/ops_cuda.h).
 *
 * ETC_ATTN_BWD_CHAIN (the default: measured faster on an H200, docs/perf.md): blocks of
 * 64 keys walking the whole (head, query tile) list. ETC_ATTN_BWD_SPLIT: blocks of 32
 * keys whose two warp pairs share the list and add their partials in a fixed order: a
 * chain a quarter as long and twice the blocks, but slower in practice (more shared-
 * memory traffic per tensor-core op). Both are deterministic and compute the same sums
 * (in a different order, so results differ by rounding only). The chain kernel stays
 * as the fallback a caller can select when the split one fails a self-check, and as
 * the baseline the parity harness times it against. Not thread-safe: set it before
 * running attention. */
#ifndef EHRTUNE_ATTENTION_BF16_H
#define EHRTUNE_ATTENTION_BF16_H

#ifdef __cplusplus
extern "C" {
#endif

enum { ETC_ATTN_BWD_SPLIT = 0, ETC_ATTN_BWD_CHAIN = 1 };

/* Selects the variant used by later backward calls; returns the previous one, or -1
 * (selection unchanged) for an unknown variant. */
int etc_attention_bf16_backward_variant(int variant);

#ifdef __cplusplus
}
#endif

#endif
