// Tile-level building blocks shared by the bf16 tensor-core attention kernels
// (attention_bf16.cu: the 16-rows-a-warp kernels; attention_bf16_wide.cu: the
// 32-rows-a-warp ones): the problem geometry, visibility tests, asynchronous tile
// copies into shared memory, and warp-level products on mma.sync fragments
// (kernels/cuda/mma.h gives the fragment layouts). Device code only, C++.
#ifndef EHRTUNE_CUDA_ATTENTION_BF16_TILE_H
#define EHRTUNE_CUDA_ATTENTION_BF16_TILE_H

#include <math.h>
#include <stdint.h>

#include "kernels/cuda/context.h"
#include "kernels/cuda/mma.h"

namespace etc_attn {

typedef __nv_bfloat16 bf16;
constexpr int THREADS = 128;  // 4 warps
constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;

struct geom {
    int t, hq, hkv, group, window;
    float scale, scale2;  // 1/sqrt(d), and the same times log2(e)
};

__device__ __forceinline__ bool visible(int i, int j, int t, int window) {
    return j <= i && i < t && (window <= 0 || j > i - window);
}
// True when every query in [q_lo, q_hi] sees every key in [k_lo, k_hi]: the tile
// needs no mask.
__device__ __forceinline__ bool all_visible(int q_lo, int q_hi, int k_lo, int k_hi, int t,
                                            int window) {
    return k_hi <= q_lo && q_hi < t && (window <= 0 || k_lo > q_hi - window);
}

__device__ __forceinline__ uint32_t ld32(const bf16 *p) {
    return *reinterpret_cast<const uint32_t *>(p);
}

// Issues asynchronous copies of rows [first, first + ROWS) of one head of a
// [B, T, H, D] tensor (src points at row 0 of that head, rows `stride` elements
// apart) into shared memory with row stride LDS; rows at or past t become zeros.
// The caller commits the group and waits before use.
template <int ROWS, int D, int LDS>
__device__ __forceinline__ void copy_tile_async(bf16 *dst, const bf16 *src, int64_t stride,
                                                int first, int t) {
    constexpr int CHUNKS = D / 8;  // 16-byte pieces of a row
    for (int idx = threadIdx.x; idx < ROWS * CHUNKS; idx += THREADS) {
        const int r = idx / CHUNKS, c = (idx % CHUNKS) * 8;
        const bool valid = first + r < t;
        etc_cp_async16(dst + r * LDS + c, valid ? src + (int64_t)(first + r) * stride + c : src,
                       valid);
    }
}

// A fragment (16 rows from r0, k from k0) of a row-major shared matrix with row
// stride ld, by one ldmatrix: matrices (rows +0, k +0), (+8, +0), (+0, +8), (+8, +8).
__device__ __forceinline__ void frag_a(uint32_t (&a)[4], const bf16 *m, int ld, int r0, int k0,
                                       int lane) {
    const int mat = lane >> 3, rr = lane & 7;
    etc_ldmatrix_x4(a, m + (r0 + (mat & 1) * 8 + rr) * ld + k0 + (mat >> 1) * 8);
}

// S[16 × 8·NTILES] += A (KT k-steps) · Bᵀ where B rows are the n index: the B
// operands of two n-tiles come from the row-major [n][k] shared tile by one
// ldmatrix: matrices (n +0, k +0), (+0, +8), (+8, +0), (+8, +8).
template <int KT, int NTILES>
__device__ __forceinline__ void gemm_abt(float (&s)[NTILES][4], const uint32_t (&a)[KT][4],
                                         const bf16 *b, int ldb, int lane) {
    const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int kk = 0; kk < KT; kk++)
#pragma unroll
        for (int nt = 0; nt < NTILES; nt += 2) {
            uint32_t bm[4];
            etc_ldmatrix_x4(bm, b + (nt * 8 + (mat >> 1) * 8 + rr) * ldb + kk * 16 + (mat & 1) * 8);
            etc_mma_bf16(s[nt], a[kk], bm[0], bm[1]);
            etc_mma_bf16(s[nt + 1], a[kk], bm[2], bm[3]);
        }
}

// acc[16 × D] += P[16 × 16·KSTEPS] · M where P sits in accumulator layout (pairs of
// n-tiles form one A operand) and M is the row-major [k][D] shared tile, read
// transposed by ldmatrix.
template <int KSTEPS, int D>
__device__ __forceinline__ void gemm_pm(float (&acc)[D / 8][4], const float (&p)[2 * KSTEPS][4],
                                        const bf16 *m, int ldm, int lane) {
    const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
        const uint32_t pa[4] = {etc_pack_bf16(p[2 * ks][0], p[2 * ks][1]),
                                etc_pack_bf16(p[2 * ks][2], p[2 * ks][3]),
                                etc_pack_bf16(p[2 * ks + 1][0], p[2 * ks + 1][1]),
                                etc_pack_bf16(p[2 * ks + 1][2], p[2 * ks + 1][3])};
#pragma unroll
        for (int dt = 0; dt < D / 8; dt += 2) {
            uint32_t bm[4];
            etc_ldmatrix_x4_trans(bm, m + (ks * 16 + (mat & 1) * 8 + rr) * ldm + (dt + (mat >> 1)) * 8);
            etc_mma_bf16(acc[dt], pa, bm[0], bm[1]);
            etc_mma_bf16(acc[dt + 1], pa, bm[2], bm[3]);
        }
    }
}

__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// dst[0..1] += scale·(v0, v1) on a bf16 pair (read-modify-write: backward accumulates).
__device__ __forceinline__ void add_pair(bf16 *dst, float v0, float v1, float scale) {
    __nv_bfloat162 old = *reinterpret_cast<__nv_bfloat162 *>(dst);
    const float2 f = __bfloat1622float2(old);
    *reinterpret_cast<__nv_bfloat162 *>(dst) = __floats2bfloat162_rn(f.x + scale * v0, f.y + scale * v1);
}

// True when some query in [q_lo, q_hi] sees some key in [k_lo, k_hi].
__device__ __forceinline__ bool any_visible(int q_lo, int q_hi, int k_lo, int k_hi, int t,
                                            int window) {
    const int qh = min(q_hi, t - 1);
    return q_lo <= qh && k_lo <= qh && (window <= 0 || q_lo - k_hi < window);
}

// ---- pipelines shared by the kernels: K/V tiles streaming past a query block, and
// (head, query tile) items streaming past a key block. Both double-buffer with
// cp.async: the next tile loads while this one is used.

// Fragment of 16 rows (r_lo and r_lo + 8) × KT k-steps of a [rows][head] tensor
// straight from global memory, rows at or past t as zeros: Q and dO stay in registers
// for a whole query block.
template <int KT>
__device__ __forceinline__ void load_rows(uint32_t (&f)[KT][4], const bf16 *base, int64_t stride,
                                          int r_lo, int t, int tq) {
    const int r_hi = r_lo + 8;
#pragma unroll
    for (int kk = 0; kk < KT; kk++) {
        const int c = kk * 16 + 2 * tq;
        f[kk][0] = r_lo < t ? ld32(base + r_lo * stride + c) : 0u;
        f[kk][1] = r_hi < t ? ld32(base + r_hi * stride + c) : 0u;
        f[kk][2] = r_lo < t ? ld32(base + r_lo * stride + c + 8) : 0u;
        f[kk][3] = r_hi < t ? ld32(base + r_hi * stride + c + 8) : 0u;
    }
}

// Starts the copies of the first K/V tile (keys k_begin..) into buffer 0 and commits
// them as one group (an empty group when the key range is empty).
template <int BC, int D, int LDS>
__device__ __forceinline__ void kv_tiles_begin(bf16 *ks, bf16 *vs, const bf16 *kb, const bf16 *vb,
                                               int64_t krow, int k_begin, int k_end, int t) {
    if (k_begin < k_end) {
        copy_tile_async<BC, D, LDS>(ks, kb, krow, k_begin, t);
        copy_tile_async<BC, D, LDS>(vs, vb, krow, k_begin, t);
    }
    etc_cp_async_commit();
}

// Before the block works on tile `it` (keys kt..kt + BC − 1, in buffer it & 1): starts
// the next tile's copies into the other buffer when there is one, waits for this
// tile's, and makes every thread's copies visible (a barrier). The caller ends each
// iteration with a barrier too, so the buffer is free before the copies after next.
template <int BC, int D, int LDS>
__device__ __forceinline__ void kv_tiles_next(bf16 *ks, bf16 *vs, const bf16 *kb, const bf16 *vb,
                                              int64_t krow, int kt, int it, int k_end, int t) {
    constexpr int TILE = BC * LDS;
    if (kt + BC < k_end) {
        copy_tile_async<BC, D, LDS>(ks + ((it + 1) & 1) * TILE, kb, krow, kt + BC, t);
        copy_tile_async<BC, D, LDS>(vs + ((it + 1) & 1) * TILE, vb, krow, kt + BC, t);
        etc_cp_async_commit();
        etc_cp_async_wait<1>();
    } else {
        etc_cp_async_wait<0>();
    }
    __syncthreads();
}

// One (query head h, rows qt..qt + BR − 1) item of a dK/dV kernel into its shared
// slot, by all threads: Q and dO asynchronously (the caller commits), lse in the exp2
// domain (+inf past t: p = 0) and delta by plain stores, visible after the barrier
// that starts the item's iteration.
template <int BR, int D, int LDS>
__device__ __forceinline__ void load_item(bf16 *qdst, bf16 *gdst, float *lse_dst, float *dl_dst,
                                          const bf16 *q, const bf16 *dout, const float *lse,
                                          const float *delta, int b, int h, int qt, const geom &s) {
    const int64_t qrow = (int64_t)s.hq * D, qoff = (int64_t)b * s.t * qrow + (int64_t)h * D;
    copy_tile_async<BR, D, LDS>(qdst, q + qoff, qrow, qt, s.t);
    copy_tile_async<BR, D, LDS>(gdst, dout + qoff, qrow, qt, s.t);
    const float *lrow = lse + ((int64_t)b * s.hq + h) * s.t;
    const float *drow = delta + ((int64_t)b * s.hq + h) * s.t;
    for (int r = threadIdx.x; r < BR; r += THREADS) {
        lse_dst[r] = qt + r < s.t ? lrow[qt + r] * LOG2E : INFINITY;
        dl_dst[r] = qt + r < s.t ? drow[qt + r] : 0.0f;
    }
}

// The (query head, query tile) items a dK/dV block of keys [j_block, j_block + bk)
// walks: for each head of the KV head's group, the BR-row query tiles from the one
// holding j_block to the last row that sees a key of the block (the window's end, or
// t). Item `it` is head head(it), rows row(it)..row(it) + BR − 1.
template <int BR> struct item_list {
    int q_begin, n_q, total, first_head;
    __device__ __forceinline__ item_list(int j_block, int bk, int hk, const geom &s) {
        q_begin = j_block / BR * BR;
        const int q_end = s.window > 0 ? min(s.t, j_block + bk - 1 + s.window) : s.t;
        n_q = q_end > q_begin ? (q_end - q_begin + BR - 1) / BR : 0;
        total = n_q * s.group;
        first_head = hk * s.group;
    }
    __device__ __forceinline__ int head(int it) const { return first_head + it / n_q; }
    __device__ __forceinline__ int row(int it) const { return q_begin + (it % max(n_q, 1)) * BR; }
};

// The dK/dV kernels whose two warp pairs take alternate items: both items of `step`
// (2·step for pair 0, 2·step + 1 for pair 1) into slots pair·2 + buf, by all threads.
template <int BR, int D, int LDS>
__device__ __forceinline__ void load_pair_items(const item_list<BR> &il, int step, int buf,
                                                bf16 *qs, bf16 *gs, float *lse_s, float *dl_s,
                                                const bf16 *q, const bf16 *dout, const float *lse,
                                                const float *delta, int b, const geom &s) {
    constexpr int QTILE = BR * LDS;
    for (int p = 0; p < 2 && 2 * step + p < il.total; p++) {
        const int it = 2 * step + p, slot = p * 2 + buf;
        load_item<BR, D, LDS>(qs + slot * QTILE, gs + slot * QTILE, lse_s + slot * BR,
                              dl_s + slot * BR, q, dout, lse, delta, b, il.head(it), il.row(it), s);
    }
}

// ---- products for warps that own MT 16-row m-tiles (attention_bf16_wide.cu).
// One ldmatrix of the shared B operand now feeds MT times the mma of the
// single-tile products above: at MT = 2 the shared-memory traffic per tensor-core
// op halves, which is what limits the 16-rows-a-warp kernels.

// S[MT][16 × 8·NTILES] += A[MT] (KT k-steps, in registers) · Bᵀ, B row-major [n][k].
template <int MT, int KT, int NTILES>
__device__ __forceinline__ void gemm_abt_m(float (&s)[MT][NTILES][4], const uint32_t (&a)[MT][KT][4],
                                           const bf16 *b, int ldb, int lane) {
    const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int kk = 0; kk < KT; kk++)
#pragma unroll
        for (int nt = 0; nt < NTILES; nt += 2) {
            uint32_t bm[4];
            etc_ldmatrix_x4(bm, b + (nt * 8 + (mat >> 1) * 8 + rr) * ldb + kk * 16 + (mat & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                etc_mma_bf16(s[mt][nt], a[mt][kk], bm[0], bm[1]);
                etc_mma_bf16(s[mt][nt + 1], a[mt][kk], bm[2], bm[3]);
            }
        }
}

// The same with A read from a row-major shared matrix (rows a_row0 .. + 16·MT) one
// k-step at a time: for operands that would not fit in registers beside the
// accumulators.
template <int MT, int KT, int NTILES>
__device__ __forceinline__ void gemm_abt_m_smem(float (&s)[MT][NTILES][4], const bf16 *a, int lda,
                                                int a_row0, const bf16 *b, int ldb, int lane) {
    const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int kk = 0; kk < KT; kk++) {
        uint32_t af[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) frag_a(af[mt], a, lda, a_row0 + mt * 16, kk * 16, lane);
#pragma unroll
        for (int nt = 0; nt < NTILES; nt += 2) {
            uint32_t bm[4];
            etc_ldmatrix_x4(bm, b + (nt * 8 + (mat >> 1) * 8 + rr) * ldb + kk * 16 + (mat & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                etc_mma_bf16(s[mt][nt], af[mt], bm[0], bm[1]);
                etc_mma_bf16(s[mt][nt + 1], af[mt], bm[2], bm[3]);
            }
        }
    }
}

// acc[MT][16 × D] += P[MT][16 × 16·KSTEPS] · M, P in accumulator layout, M the
// row-major [k][D] shared tile read transposed.
template <int MT, int KSTEPS, int D>
__device__ __forceinline__ void gemm_pm_m(float (&acc)[MT][D / 8][4],
                                          const float (&p)[MT][2 * KSTEPS][4], const bf16 *m,
                                          int ldm, int lane) {
    const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            pa[mt][0] = etc_pack_bf16(p[mt][2 * ks][0], p[mt][2 * ks][1]);
            pa[mt][1] = etc_pack_bf16(p[mt][2 * ks][2], p[mt][2 * ks][3]);
            pa[mt][2] = etc_pack_bf16(p[mt][2 * ks + 1][0], p[mt][2 * ks + 1][1]);
            pa[mt][3] = etc_pack_bf16(p[mt][2 * ks + 1][2], p[mt][2 * ks + 1][3]);
        }
#pragma unroll
        for (int dt = 0; dt < D / 8; dt += 2) {
            uint32_t bm[4];
            etc_ldmatrix_x4_trans(bm, m + (ks * 16 + (mat & 1) * 8 + rr) * ldm + (dt + (mat >> 1)) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                etc_mma_bf16(acc[mt][dt], pa[mt], bm[0], bm[1]);
                etc_mma_bf16(acc[mt][dt + 1], pa[mt], bm[2], bm[3]);
            }
        }
    }
}

// Raises a kernel's dynamic shared memory limit when it needs more than the
// default 48 KB.
template <typename K> int allow_smem(K kernel, size_t bytes, const char *name) {
    if (bytes <= 48 * 1024) return 0;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();  // not sticky: the caller falls back; later ops must not fail on it
        return etc_fail("%s: %zu bytes of shared memory refused (%s)", name, bytes, cudaGetErrorString(e));
    }
    return 0;
}

// attention_bf16_wide.cu: the 32-rows-a-warp kernels, for head dims 16..WIDE_MAX_D
// in steps of 16. Same arguments and accumulation as the 16-row ones; the backward
// expects delta computed already. 0, or etc_fail.
constexpr int WIDE_MAX_D = 64;
int wide_forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, int b, int d,
                 const geom &s);
int wide_backward(bf16 *dq, bf16 *dk, bf16 *dv, const float *delta, const bf16 *dout,
                  const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, int b, int d,
                  const geom &s);

}  // namespace etc_attn

#endif
