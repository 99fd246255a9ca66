// Causal GQA attention (+ sliding window) in bf16 on the tensor cores, flash-style
// (FlashAttention-2's schedule): mma.sync m16n8k16 with fp32 accumulators, the
// softmax kept online in the exp2 domain, probabilities rounded to bf16 only as
// operands of the next product. No T×T buffer exists.
//
// Work split (a block is 4 warps, a warp owns 16 rows of the tile):
//   forward   block = 64 query rows of one head; K/V stream through shared memory
//             in tiles of 64 keys, double-buffered with cp.async (the next tile
//             loads while this one is used); S = Q·Kᵀ and O += P·V stay in registers
//             (the S accumulators become the A operand of P·V without leaving them).
//             Blocks start with the last query tiles, which see the most keys.
//   delta     delta[row] = dout·out (fp32), one thread per (row, head).
//   dq        block = 64 query rows of one head; recomputes S and dP = dO·Vᵀ per
//             key tile (double-buffered), dS = P∘(dP − delta), dQ += dS·K.
//   dk, dv    block = 64 keys of one KV head; loops over the group's query heads
//             and the query tiles that see those keys (Q and dO double-buffered):
//             Sᵀ = K·Qᵀ, dV += Pᵀ·dO, dPᵀ = V·dOᵀ, dK += dSᵀ·Q.
// Every output element has one owner (no atomics): results are deterministic.
// Head dims: multiples of 16 up to 128. Outputs of backward accumulate (+=) into
// the bf16 gradients, as every backward op of kernels/ops.h.
#include <math.h>

#include "kernels/cuda/attention_bf16.h"
#include "kernels/cuda/attention_bf16_tile.h"

namespace {

using namespace etc_attn;

// Backward blocks per SM to keep resident: 3 needs <= 168 registers a thread, which
// the d <= 64 kernels reach (ptxas would otherwise take ~175 and fit only 2).
#define MIN_BLOCKS(D) ((D) <= 64 ? 3 : 1)

// ------------------------------------------------------------------ forward
// Shared memory: K and V tiles, two of each (the next tile loads during this one).
template <int D> __host__ __device__ constexpr size_t fwd_smem_bytes() {
    return (size_t)2 * 2 * 64 * (D + 8) * 2;
}

template <int D>
__global__ void __launch_bounds__(THREADS) attn_fwd(bf16 *out, float *lse, const bf16 *q,
                                                    const bf16 *k, const bf16 *v, geom s) {
    constexpr int BR = 64, BC = 64, LDS = D + 8, KT = D / 16, NT = D / 8, TILE = BC * LDS;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / s.group;
    /* the last query tiles see the most keys: they go first */
    const int i_block = (gridDim.x - 1 - blockIdx.x) * BR, i0 = i_block + warp * 16;
    const int64_t qrow = (int64_t)s.hq * D, krow = (int64_t)s.hkv * D;
    const bf16 *qb = q + (int64_t)b * s.t * qrow + (int64_t)h * D;
    const bf16 *kb = k + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const bf16 *vb = v + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const int r_lo = i0 + g, r_hi = i0 + g + 8;
    const int k_end = min(s.t, i_block + BR);
    const int k_begin = (s.window > 0 ? max(0, i_block - s.window + 1) : 0) / BC * BC;
    kv_tiles_begin<BC, D, LDS>(ks, vs, kb, vb, krow, k_begin, k_end, s.t);

    uint32_t qf[KT][4];
    load_rows<KT>(qf, qb, qrow, r_lo, s.t, tq);
    float o[NT][4];
#pragma unroll
    for (int dt = 0; dt < NT; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
    float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.0f, l_hi = 0.0f;

    for (int kt = k_begin, it = 0; kt < k_end; kt += BC, it++) {
        const bf16 *kcur = ks + (it & 1) * TILE, *vcur = vs + (it & 1) * TILE;
        kv_tiles_next<BC, D, LDS>(ks, vs, kb, vb, krow, kt, it, k_end, s.t);
        float sc[BC / 8][4];
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
        gemm_abt<KT, BC / 8>(sc, qf, kcur, LDS, lane);
        const bool full = all_visible(i0, i0 + 15, kt, kt + BC - 1, s.t, s.window);
        float mx_lo = m_lo, mx_hi = m_hi;
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float x = sc[nt][e] * s.scale2;
                if (!full && !visible(e < 2 ? r_lo : r_hi, kt + nt * 8 + 2 * tq + (e & 1), s.t, s.window))
                    x = -INFINITY;
                sc[nt][e] = x;
                if (e < 2) mx_lo = fmaxf(mx_lo, x);
                else mx_hi = fmaxf(mx_hi, x);
            }
        mx_lo = quad_max(mx_lo), mx_hi = quad_max(mx_hi);
        // Reference points: a row that has seen no visible key yet keeps 0 (no NaN).
        const float ref_lo = mx_lo == -INFINITY ? 0.0f : mx_lo;
        const float ref_hi = mx_hi == -INFINITY ? 0.0f : mx_hi;
        const float al_lo = exp2f(m_lo - ref_lo), al_hi = exp2f(m_hi - ref_hi);
        m_lo = mx_lo, m_hi = mx_hi;
        l_lo *= al_lo, l_hi *= al_hi;
#pragma unroll
        for (int dt = 0; dt < NT; dt++) o[dt][0] *= al_lo, o[dt][1] *= al_lo, o[dt][2] *= al_hi, o[dt][3] *= al_hi;
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++) {
            sc[nt][0] = exp2f(sc[nt][0] - ref_lo), sc[nt][1] = exp2f(sc[nt][1] - ref_lo);
            sc[nt][2] = exp2f(sc[nt][2] - ref_hi), sc[nt][3] = exp2f(sc[nt][3] - ref_hi);
            l_lo += sc[nt][0] + sc[nt][1], l_hi += sc[nt][2] + sc[nt][3];
        }
        gemm_pm<BC / 16, D>(o, sc, vcur, LDS, lane);
        __syncthreads();  // done with this buffer before the prefetch after next refills it
    }
    etc_cp_async_wait<0>();  // an empty key range still committed one (empty) group
    l_lo = quad_sum(l_lo), l_hi = quad_sum(l_hi);
    const float inv_lo = l_lo > 0.0f ? 1.0f / l_lo : 0.0f, inv_hi = l_hi > 0.0f ? 1.0f / l_hi : 0.0f;
    bf16 *ob = out + (int64_t)b * s.t * qrow + (int64_t)h * D;
#pragma unroll
    for (int dt = 0; dt < NT; dt++) {
        const int c = dt * 8 + 2 * tq;
        if (r_lo < s.t)
            *reinterpret_cast<__nv_bfloat162 *>(ob + r_lo * qrow + c) =
                __floats2bfloat162_rn(o[dt][0] * inv_lo, o[dt][1] * inv_lo);
        if (r_hi < s.t)
            *reinterpret_cast<__nv_bfloat162 *>(ob + r_hi * qrow + c) =
                __floats2bfloat162_rn(o[dt][2] * inv_hi, o[dt][3] * inv_hi);
    }
    if (tq == 0) {
        float *lb = lse + ((int64_t)b * s.hq + h) * s.t;
        if (r_lo < s.t) lb[r_lo] = (m_lo + log2f(l_lo)) * LN2;
        if (r_hi < s.t) lb[r_hi] = (m_hi + log2f(l_hi)) * LN2;
    }
}

// ------------------------------------------------------------------ backward
// delta [B, Hq, T] = Σ_d dout·out per (row, head), fp32.
template <int D>
__global__ void attn_delta(float *delta, const bf16 *dout, const bf16 *out, int t, int hq,
                           int64_t rows) {
    for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (int64_t)gridDim.x * blockDim.x) {
        const int h = (int)(r % hq);
        const int64_t bt = r / hq;  // b·t + i
        const int i = (int)(bt % t), b = (int)(bt / t);
        float acc = 0.0f;
#pragma unroll
        for (int c = 0; c < D; c += 8) {
            float x[8], y[8];
            etc_load<bf16, 8>(x, dout + r * D + c, 0);
            etc_load<bf16, 8>(y, out + r * D + c, 0);
#pragma unroll
            for (int e = 0; e < 8; e++) acc += x[e] * y[e];
        }
        delta[((int64_t)b * hq + h) * t + i] = acc;
    }
}

// Shared memory of attn_bwd_dq: K and V tiles of BC keys, two of each.
template <int D> __host__ __device__ constexpr int dq_key_tile() { return D <= 64 ? 64 : 32; }
template <int D> __host__ __device__ constexpr size_t dq_smem_bytes() {
    return (size_t)2 * 2 * dq_key_tile<D>() * (D + 8) * 2;
}

template <int D>
__global__ void __launch_bounds__(THREADS, MIN_BLOCKS(D)) attn_bwd_dq(bf16 *dq, const bf16 *dout, const bf16 *q,
                                                       const bf16 *k, const bf16 *v,
                                                       const float *lse, const float *delta,
                                                       geom s) {
    constexpr int BR = 64, BC = dq_key_tile<D>(), LDS = D + 8, KT = D / 16, NT = D / 8;
    constexpr int TILE = BC * LDS;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / s.group;
    const int i_block = (gridDim.x - 1 - blockIdx.x) * BR, i0 = i_block + warp * 16;
    const int64_t qrow = (int64_t)s.hq * D, krow = (int64_t)s.hkv * D;
    const int64_t qoff = (int64_t)b * s.t * qrow + (int64_t)h * D;
    const bf16 *qb = q + qoff, *gb = dout + qoff;
    const bf16 *kb = k + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const bf16 *vb = v + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const int r_lo = i0 + g, r_hi = i0 + g + 8;
    const int k_end = min(s.t, i_block + BR);
    const int k_begin = (s.window > 0 ? max(0, i_block - s.window + 1) : 0) / BC * BC;
    kv_tiles_begin<BC, D, LDS>(ks, vs, kb, vb, krow, k_begin, k_end, s.t);

    uint32_t qf[KT][4], gf[KT][4];
    load_rows<KT>(qf, qb, qrow, r_lo, s.t, tq);
    load_rows<KT>(gf, gb, qrow, r_lo, s.t, tq);
    const float *lrow = lse + ((int64_t)b * s.hq + h) * s.t;
    const float *drow = delta + ((int64_t)b * s.hq + h) * s.t;
    // Rows past t get lse = +inf: their probabilities come out 0.
    const float lse_lo = r_lo < s.t ? lrow[r_lo] * LOG2E : INFINITY;
    const float lse_hi = r_hi < s.t ? lrow[r_hi] * LOG2E : INFINITY;
    const float dl_lo = r_lo < s.t ? drow[r_lo] : 0.0f, dl_hi = r_hi < s.t ? drow[r_hi] : 0.0f;
    float acc[NT][4];
#pragma unroll
    for (int dt = 0; dt < NT; dt++) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;

    for (int kt = k_begin, it = 0; kt < k_end; kt += BC, it++) {
        const bf16 *kcur = ks + (it & 1) * TILE, *vcur = vs + (it & 1) * TILE;
        kv_tiles_next<BC, D, LDS>(ks, vs, kb, vb, krow, kt, it, k_end, s.t);
        float sc[BC / 8][4], dp[BC / 8][4];
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[nt][e] = dp[nt][e] = 0.0f;
        gemm_abt<KT, BC / 8>(sc, qf, kcur, LDS, lane);
        gemm_abt<KT, BC / 8>(dp, gf, vcur, LDS, lane);
        const bool full = all_visible(i0, i0 + 15, kt, kt + BC - 1, s.t, s.window);
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const bool lo = e < 2;
                float p = exp2f(sc[nt][e] * s.scale2 - (lo ? lse_lo : lse_hi));
                if (!full && !visible(lo ? r_lo : r_hi, kt + nt * 8 + 2 * tq + (e & 1), s.t, s.window))
                    p = 0.0f;
                sc[nt][e] = p * (dp[nt][e] - (lo ? dl_lo : dl_hi));  // dS
            }
        gemm_pm<BC / 16, D>(acc, sc, kcur, LDS, lane);
        __syncthreads();
    }
    etc_cp_async_wait<0>();
    bf16 *dqb = dq + qoff;
#pragma unroll
    for (int dt = 0; dt < NT; dt++) {
        const int c = dt * 8 + 2 * tq;
        if (r_lo < s.t) add_pair(dqb + r_lo * qrow + c, acc[dt][0], acc[dt][1], s.scale);
        if (r_hi < s.t) add_pair(dqb + r_hi * qrow + c, acc[dt][2], acc[dt][3], s.scale);
    }
}

// One (head, query tile) item of a dK/dV kernel whose warp owns 16 keys (rows
// key_row0.. of the block's K and V tiles, global keys j0..j0 + 15): Sᵀ = K·Qᵀ and
// dPᵀ = V·dOᵀ from the item's Q/dO tiles (rows qt..qt + BR − 1), then dV += Pᵀ·dO and
// dK += dSᵀ·Q (dK still unscaled).
template <int BR, int D, int LDS>
__device__ __forceinline__ void dkv_item(float (&dka)[D / 8][4], float (&dva)[D / 8][4],
                                         const bf16 *ks, const bf16 *vs, int key_row0,
                                         const bf16 *qcur, const bf16 *gcur, const float *lcur,
                                         const float *dcur, int qt, int j0, int lane,
                                         const geom &s) {
    constexpr int KT = D / 16;
    const int g = lane >> 2, tq = lane & 3, c_lo = j0 + g, c_hi = j0 + g + 8;
    float st[BR / 8][4], dpt[BR / 8][4];  // rows keys, columns queries
#pragma unroll
    for (int nt = 0; nt < BR / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[nt][e] = dpt[nt][e] = 0.0f;
    {
        uint32_t kf[KT][4], vf[KT][4];
#pragma unroll
        for (int kk = 0; kk < KT; kk++) {
            frag_a(kf[kk], ks, LDS, key_row0, kk * 16, lane);
            frag_a(vf[kk], vs, LDS, key_row0, kk * 16, lane);
        }
        gemm_abt<KT, BR / 8>(st, kf, qcur, LDS, lane);
        gemm_abt<KT, BR / 8>(dpt, vf, gcur, LDS, lane);
    }
    const bool full = all_visible(qt, qt + BR - 1, j0, j0 + 15, s.t, s.window);
#pragma unroll
    for (int nt = 0; nt < BR / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int col = nt * 8 + 2 * tq + (e & 1);
            float p = exp2f(st[nt][e] * s.scale2 - lcur[col]);
            if (!full && !visible(qt + col, e < 2 ? c_lo : c_hi, s.t, s.window)) p = 0.0f;
            st[nt][e] = p;
            dpt[nt][e] = p * (dpt[nt][e] - dcur[col]);  // dSᵀ
        }
    gemm_pm<BR / 16, D>(dva, st, gcur, LDS, lane);
    gemm_pm<BR / 16, D>(dka, dpt, qcur, LDS, lane);
}

// Shared memory of attn_bwd_dkv: K and V of the block's 64 keys, and two query
// tiles of Q and dO with their lse and delta (the next loads during this one).
template <int D> __host__ __device__ constexpr int dkv_query_tile() { return D <= 64 ? 64 : 32; }
template <int D> __host__ __device__ constexpr size_t dkv_smem_bytes() {
    return (size_t)(2 * 64 + 2 * 2 * dkv_query_tile<D>()) * (D + 8) * 2 +
           (size_t)2 * 2 * dkv_query_tile<D>() * 4;
}

template <int D>
__global__ void __launch_bounds__(THREADS, MIN_BLOCKS(D)) attn_bwd_dkv(bf16 *dk, bf16 *dv, const bf16 *dout,
                                                        const bf16 *q, const bf16 *k,
                                                        const bf16 *v, const float *lse,
                                                        const float *delta, geom s) {
    constexpr int BK = 64, BR = dkv_query_tile<D>(), LDS = D + 8, NT = D / 8;
    constexpr int QTILE = BR * LDS;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + BK * LDS;
    bf16 *qs = vs + BK * LDS, *gs = qs + 2 * QTILE;  // [2][QTILE] each
    float *lse_s = reinterpret_cast<float *>(gs + 2 * QTILE), *dl_s = lse_s + 2 * BR;  // [2][BR]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int b = blockIdx.z, hk = blockIdx.y;
    const int j_block = blockIdx.x * BK, j0 = j_block + warp * 16;
    const int64_t krow = (int64_t)s.hkv * D;
    const int64_t koff = (int64_t)b * s.t * krow + (int64_t)hk * D;
    const int c_lo = j0 + g, c_hi = j0 + g + 8;  // this lane's two keys

    const item_list<BR> il(j_block, BK, hk, s);
    /* item `it` into buffer `buf`, by all threads */
    auto prefetch = [&](int it, int buf) {
        load_item<BR, D, LDS>(qs + buf * QTILE, gs + buf * QTILE, lse_s + buf * BR, dl_s + buf * BR,
                              q, dout, lse, delta, b, il.head(it), il.row(it), s);
    };
    copy_tile_async<BK, D, LDS>(ks, k + koff, krow, j_block, s.t);
    copy_tile_async<BK, D, LDS>(vs, v + koff, krow, j_block, s.t);
    if (il.total > 0) prefetch(0, 0);
    etc_cp_async_commit();
    float dka[NT][4], dva[NT][4];
#pragma unroll
    for (int dt = 0; dt < NT; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[dt][e] = dva[dt][e] = 0.0f;

    for (int it = 0; it < il.total; it++) {
        const int qt = il.row(it);
        const bf16 *qcur = qs + (it & 1) * QTILE, *gcur = gs + (it & 1) * QTILE;
        const float *lcur = lse_s + (it & 1) * BR, *dcur = dl_s + (it & 1) * BR;
        if (it + 1 < il.total) {
            prefetch(it + 1, (it + 1) & 1);
            etc_cp_async_commit();
            etc_cp_async_wait<1>();
        } else {
            etc_cp_async_wait<0>();
        }
        __syncthreads();
        dkv_item<BR, D, LDS>(dka, dva, ks, vs, warp * 16, qcur, gcur, lcur, dcur, qt, j0, lane, s);
        __syncthreads();
    }
    etc_cp_async_wait<0>();
    bf16 *dkb = dk + koff, *dvb = dv + koff;
#pragma unroll
    for (int dt = 0; dt < NT; dt++) {
        const int c = dt * 8 + 2 * tq;
        if (c_lo < s.t) {
            add_pair(dkb + c_lo * krow + c, dka[dt][0], dka[dt][1], s.scale);
            add_pair(dvb + c_lo * krow + c, dva[dt][0], dva[dt][1], 1.0f);
        }
        if (c_hi < s.t) {
            add_pair(dkb + c_hi * krow + c, dka[dt][2], dka[dt][3], s.scale);
            add_pair(dvb + c_hi * krow + c, dva[dt][2], dva[dt][3], 1.0f);
        }
    }
}

// ------------------------------------------------- backward dk, dv: split chain
// attn_bwd_dkv's block works through group × (query tiles after its keys) one
// after the other: at t = 2048, group 4, the block of the first keys runs 128 tiles
// while the last runs 4, and at batch 1 its 256 blocks leave most of the GPU idle
// behind that chain. Here a block owns 32 keys, and its two warp pairs walk the
// same list of (head, query tile) items interleaved (pair 0 the even items, pair 1
// the odd ones): each pair's warps own 16 keys as before, the chain is a quarter as
// long (half the items, each half the rows), and the grid has twice the blocks.
// Query tiles are 16 rows, so the four Q/dO buffers (two per pair, the next item
// loading during this one) take 18 KB for d = 64 (27.5 KB the block).
// At the end pair 1 hands its fp32 dK, dV partials to pair 0 through shared
// memory, which adds them in a fixed order: still one owner per output, no atomics.
// Warps skip (warp-uniformly) the products of an item none of whose pairs is
// visible (the diagonal and window edges). The grid puts (batch, KV head) fastest
// and the key tiles in order, so the blocks with the most work start first.
constexpr int SPLIT_KEYS = 32, SPLIT_ROWS = 16;
template <int D> __host__ __device__ constexpr size_t dkv_split_smem_bytes() {
    return (size_t)(2 * SPLIT_KEYS + 2 * 2 * 2 * SPLIT_ROWS) * (D + 8) * 2 +
           (size_t)2 * 2 * 2 * SPLIT_ROWS * 4;
}


// Four blocks per SM (16 warps) for d <= 64: 128 registers, which ptxas meets
// without spilling (it takes ~141 when free); the smem allows more.
#define SPLIT_MIN_BLOCKS(D) ((D) <= 64 ? 4 : 1)

template <int D>
__global__ void __launch_bounds__(THREADS, SPLIT_MIN_BLOCKS(D))
    attn_bwd_dkv_split(bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q, const bf16 *k,
                       const bf16 *v, const float *lse, const float *delta, geom s) {
    constexpr int BK = SPLIT_KEYS, BR = SPLIT_ROWS, LDS = D + 8, NT = D / 8;
    constexpr int QTILE = BR * LDS;
    static_assert((size_t)2 * 2 * NT * 4 * 32 * 4 <= (size_t)2 * 2 * 2 * QTILE * 2,
                  "the partials of pair 1 must fit in the Q/dO buffers");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + BK * LDS;
    bf16 *qs = vs + BK * LDS, *gs = qs + 4 * QTILE;  // [pair][buf][QTILE] each
    float *lse_s = reinterpret_cast<float *>(gs + 4 * QTILE), *dl_s = lse_s + 4 * BR;  // [pair][buf][BR]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int pair = warp >> 1, wk = warp & 1;
    const int b = blockIdx.x / s.hkv, hk = blockIdx.x % s.hkv;
    const int j_block = blockIdx.y * BK, j0 = j_block + wk * 16;
    const int64_t krow = (int64_t)s.hkv * D;
    const int64_t koff = (int64_t)b * s.t * krow + (int64_t)hk * D;
    const int c_lo = j0 + g, c_hi = j0 + g + 8;  // this lane's two keys

    const item_list<BR> il(j_block, BK, hk, s);
    const int steps = (il.total + 1) / 2;
    auto prefetch = [&](int step, int buf) {
        load_pair_items<BR, D, LDS>(il, step, buf, qs, gs, lse_s, dl_s, q, dout, lse, delta, b, s);
    };
    copy_tile_async<BK, D, LDS>(ks, k + koff, krow, j_block, s.t);
    copy_tile_async<BK, D, LDS>(vs, v + koff, krow, j_block, s.t);
    if (steps > 0) prefetch(0, 0);
    etc_cp_async_commit();
    float dka[NT][4], dva[NT][4];
#pragma unroll
    for (int dt = 0; dt < NT; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[dt][e] = dva[dt][e] = 0.0f;

    for (int step = 0; step < steps; step++) {
        const int buf = step & 1, it = 2 * step + pair, slot = pair * 2 + buf;
        if (step + 1 < steps) {
            prefetch(step + 1, buf ^ 1);
            etc_cp_async_commit();
            etc_cp_async_wait<1>();
        } else {
            etc_cp_async_wait<0>();
        }
        __syncthreads();
        const int qt = il.row(it);
        if (it < il.total && any_visible(qt, qt + BR - 1, j0, j0 + 15, s.t, s.window)) {
            const bf16 *qcur = qs + slot * QTILE, *gcur = gs + slot * QTILE;
            const float *lcur = lse_s + slot * BR, *dcur = dl_s + slot * BR;
            dkv_item<BR, D, LDS>(dka, dva, ks, vs, wk * 16, qcur, gcur, lcur, dcur, qt, j0, lane, s);
        }
        __syncthreads();
    }
    etc_cp_async_wait<0>();
    __syncthreads();  // every copy landed and every read of the Q/dO buffers is done
    /* pair 1's partials, [tensor][wk][dt][e][lane] (lanes adjacent: no bank conflict) */
    float *part = reinterpret_cast<float *>(qs);
    if (pair == 1) {
#pragma unroll
        for (int dt = 0; dt < NT; dt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                part[(((0 * 2 + wk) * NT + dt) * 4 + e) * 32 + lane] = dka[dt][e];
                part[(((1 * 2 + wk) * NT + dt) * 4 + e) * 32 + lane] = dva[dt][e];
            }
    }
    __syncthreads();
    if (pair == 1) return;
#pragma unroll
    for (int dt = 0; dt < NT; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            dka[dt][e] += part[(((0 * 2 + wk) * NT + dt) * 4 + e) * 32 + lane];
            dva[dt][e] += part[(((1 * 2 + wk) * NT + dt) * 4 + e) * 32 + lane];
        }
    bf16 *dkb = dk + koff, *dvb = dv + koff;
#pragma unroll
    for (int dt = 0; dt < NT; dt++) {
        const int c = dt * 8 + 2 * tq;
        if (c_lo < s.t) {
            add_pair(dkb + c_lo * krow + c, dka[dt][0], dka[dt][1], s.scale);
            add_pair(dvb + c_lo * krow + c, dva[dt][0], dva[dt][1], 1.0f);
        }
        if (c_hi < s.t) {
            add_pair(dkb + c_hi * krow + c, dka[dt][2], dka[dt][3], s.scale);
            add_pair(dvb + c_hi * krow + c, dva[dt][2], dva[dt][3], 1.0f);
        }
    }
}

// The dK/dV kernel etc_attention_backward_bf16 runs (attention_bf16.h).
int bwd_variant = ETC_ATTN_BWD_CHAIN; /* faster on an H200 (docs/perf.md, 2026-11-26) */
int fwd_variant = ETC_ATTN_FWD_NARROW;

int make_geom(geom *s, const void *const *ptrs, int nptrs, int b, int t, int hq, int hkv, int d,
              int window, const char *name) {
    if (b < 0 || t < 0 || hq <= 0 || hkv <= 0 || hq % hkv)
        return etc_fail("%s: bad shape b=%d t=%d hq=%d hkv=%d (hq must be a multiple of hkv)",
                        name, b, t, hq, hkv);
    if (!etc_attention_bf16_supported(d))
        return etc_fail("%s: head dim %d unsupported (must be a multiple of 16, at most 128)",
                        name, d);
    if (hq > 65535 || b > 65535 || (t + 31) / 32 > 65535 || (int64_t)b * hkv > 2147483647)
        return etc_fail("%s: %d heads x batch %d x %d tokens exceeds the launch grid", name, hq, b, t);
    for (int i = 0; i < nptrs; i++)
        if (!etc_aligned16(ptrs[i]))
            return etc_fail("%s: tensor argument %d is not 16-byte aligned", name, i + 1);
    s->t = t, s->hq = hq, s->hkv = hkv, s->group = hq / hkv;
    s->window = etc_attention_window(window, t);
    s->scale = 1.0f / sqrtf((float)d);
    s->scale2 = s->scale * LOG2E;
    return 0;
}


template <int D>
int forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, int b,
            const geom &s) {
    if (fwd_variant == ETC_ATTN_FWD_WIDE && D <= WIDE_MAX_D)
        return wide_forward(out, lse, q, k, v, b, D, s);
    constexpr size_t smem = fwd_smem_bytes<D>();
    if (allow_smem(attn_fwd<D>, smem, "etc_attention_forward_bf16")) return -1;
    dim3 grid((s.t + 63) / 64, s.hq, b);
    attn_fwd<D><<<grid, THREADS, smem, etc_stream()>>>(out, lse, q, k, v, s);
    return etc_check_launch("etc_attention_forward_bf16");
}

template <int D>
int backward(bf16 *dq, bf16 *dk, bf16 *dv, float *delta, const bf16 *dout, const bf16 *q,
             const bf16 *k, const bf16 *v, const bf16 *out, const float *lse, int b,
             const geom &s) {
    const int64_t rows = (int64_t)b * s.t * s.hq;
    attn_delta<D><<<etc_grid(rows, 256), 256, 0, etc_stream()>>>(delta, dout, out, s.t, s.hq, rows);
    if (etc_check_launch("etc_attention_backward_bf16 (delta)")) return -1;
    if (bwd_variant == ETC_ATTN_BWD_WIDE && D <= WIDE_MAX_D)
        return wide_backward(dq, dk, dv, delta, dout, q, k, v, lse, b, D, s);
    constexpr size_t smem_q = dq_smem_bytes<D>(), smem_kv = dkv_smem_bytes<D>();
    if (allow_smem(attn_bwd_dq<D>, smem_q, "etc_attention_backward_bf16 (dq)") ||
        allow_smem(attn_bwd_dkv<D>, smem_kv, "etc_attention_backward_bf16 (dk, dv)"))
        return -1;
    dim3 grid_q((s.t + 63) / 64, s.hq, b);
    attn_bwd_dq<D><<<grid_q, THREADS, smem_q, etc_stream()>>>(dq, dout, q, k, v, lse, delta, s);
    if (etc_check_launch("etc_attention_backward_bf16 (dq)")) return -1;
    if (bwd_variant != ETC_ATTN_BWD_SPLIT) { /* chain, or wide at a head dim it lacks */
        dim3 grid_kv((s.t + 63) / 64, s.hkv, b);
        attn_bwd_dkv<D><<<grid_kv, THREADS, smem_kv, etc_stream()>>>(dk, dv, dout, q, k, v, lse, delta, s);
        return etc_check_launch("etc_attention_backward_bf16 (dk, dv)");
    }
    constexpr size_t smem_split = dkv_split_smem_bytes<D>();
    if (allow_smem(attn_bwd_dkv_split<D>, smem_split, "etc_attention_backward_bf16 (dk, dv split)"))
        return -1;
    /* (batch, KV head) fastest, key tiles in order: the blocks with the most work
     * start first, whatever the batch */
    dim3 grid_split(s.hkv * b, (s.t + SPLIT_KEYS - 1) / SPLIT_KEYS, 1);
    attn_bwd_dkv_split<D><<<grid_split, THREADS, smem_split, etc_stream()>>>(dk, dv, dout, q, k, v,
                                                                             lse, delta, s);
    return etc_check_launch("etc_attention_backward_bf16 (dk, dv split)");
}

#define ETC_HEAD_DIMS(X) X(16) X(32) X(48) X(64) X(80) X(96) X(112) X(128)

}  // namespace

extern "C" int etc_attention_bf16_backward_variant(int variant) {
    if (variant != ETC_ATTN_BWD_SPLIT && variant != ETC_ATTN_BWD_CHAIN && variant != ETC_ATTN_BWD_WIDE)
        return -1;
    const int previous = bwd_variant;
    bwd_variant = variant;
    return previous;
}

extern "C" int etc_attention_bf16_forward_variant(int variant) {
    if (variant != ETC_ATTN_FWD_NARROW && variant != ETC_ATTN_FWD_WIDE) return -1;
    const int previous = fwd_variant;
    fwd_variant = variant;
    return previous;
}

extern "C" int etc_attention_bf16_wide_supported(int d) {
    return etc_attention_bf16_supported(d) && d <= WIDE_MAX_D;
}

extern "C" int etc_attention_bf16_supported(int d) { return d >= 16 && d <= 128 && d % 16 == 0; }

extern "C" int etc_attention_forward_bf16(etc_bf16 *out, float *lse, const etc_bf16 *q,
                                          const etc_bf16 *k, const etc_bf16 *v, int b, int t,
                                          int hq, int hkv, int d, int window) {
    geom s;
    const void *ptrs[] = {out, q, k, v};
    if (make_geom(&s, ptrs, 4, b, t, hq, hkv, d, window, "etc_attention_forward_bf16")) return -1;
    if (b == 0 || t == 0) return 0;
    bf16 *o = (bf16 *)out;
    const bf16 *qq = (const bf16 *)q, *kk = (const bf16 *)k, *vv = (const bf16 *)v;
    switch (d) {
#define CASE(D) \
    case D: return forward<D>(o, lse, qq, kk, vv, b, s);
        ETC_HEAD_DIMS(CASE)
#undef CASE
    }
    return etc_fail("etc_attention_forward_bf16: head dim %d", d);
}

extern "C" int etc_attention_backward_bf16(etc_bf16 *dq, etc_bf16 *dk, etc_bf16 *dv,
                                           float *scratch_delta, const etc_bf16 *dout,
                                           const etc_bf16 *q, const etc_bf16 *k,
                                           const etc_bf16 *v, const etc_bf16 *out,
                                           const float *lse, int b, int t, int hq, int hkv,
                                           int d, int window) {
    geom s;
    const void *ptrs[] = {dq, dk, dv, dout, q, k, v, out};
    if (make_geom(&s, ptrs, 8, b, t, hq, hkv, d, window, "etc_attention_backward_bf16"))
        return -1;
    if (!scratch_delta) return etc_fail("etc_attention_backward_bf16: scratch_delta is NULL");
    if (b == 0 || t == 0) return 0;
    bf16 *gq = (bf16 *)dq, *gk = (bf16 *)dk, *gv = (bf16 *)dv;
    const bf16 *go = (const bf16 *)dout, *qq = (const bf16 *)q, *kk = (const bf16 *)k,
               *vv = (const bf16 *)v, *oo = (const bf16 *)out;
    switch (d) {
#define CASE(D) \
    case D: return backward<D>(gq, gk, gv, scratch_delta, go, qq, kk, vv, oo, lse, b, s);
        ETC_HEAD_DIMS(CASE)
#undef CASE
    }
    return etc_fail("etc_attention_backward_bf16: head dim %d", d);
}
