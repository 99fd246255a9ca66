// Causal GQA attention in bf16, "wide" kernels: the same schedule and arithmetic
// as attention_bf16.cu, but each warp owns 32 rows (two 16-row m-tiles) instead of
// 16, so every ldmatrix of a shared operand feeds twice the mma.sync.
//
// Why: in the 16-rows-a-warp kernels one ldmatrix.x4 (512 bytes of shared memory,
// 4 cycles of an SM's 128 B/cycle) feeds two m16n8k16 products (~2 cycles each at
// the tensor cores' mma.sync rate), so shared memory, not the tensor cores, sets
// the pace; at the 1B shape the backward ran at 110 TFLOP/s on an H200
// (docs/perf.md). FlashAttention-2 gives its warps 32 or more rows for this reason.
// The cost is registers (accumulators for 32 rows): these kernels take head dims up
// to 64 (WIDE_MAX_D); larger ones keep the 16-row kernels.
//
// Work split (a block is 4 warps):
//   forward  block = 128 query rows of one head, warp = 32 rows; K/V tiles of 64 keys,
//            double-buffered with cp.async. A warp skips (warp-uniformly) the tiles
//            none of its rows sees: the diagonal of a 128-row block spans two tiles.
//   dq       block = 128 query rows, warp = 32 rows; K/V tiles of 32 keys,
//            double-buffered; S and dP recomputed, dQ += dS·K.
//   dk, dv   block = 64 keys of one KV head; warp = 32 keys (wk = warp & 1) of one
//            pair (warp >> 1). The (query head, 32-row query tile) items that see the
//            keys are dealt alternately to the two pairs, each double-buffering its
//            own Q/dO tiles; K and V are read from shared memory for each product
//            (their fragments would not fit beside the dK, dV accumulators). At the
//            end pair 1 hands its fp32 partials to pair 0 through shared memory,
//            which adds them in a fixed order: one owner per output, no atomics,
//            deterministic as the other kernels.
#include "kernels/cuda/attention_bf16_tile.h"

namespace etc_attn {
namespace {

constexpr int WF_ROWS = 128, WF_KEYS = 64;    // forward: block rows, key tile
constexpr int WQ_ROWS = 128, WQ_KEYS = 32;    // dq: block rows, key tile
constexpr int WKV_KEYS = 64, WKV_ROWS = 32;   // dk, dv: block keys, query item rows

template <int D> constexpr size_t wide_fwd_smem() { return (size_t)2 * 2 * WF_KEYS * (D + 8) * 2; }
template <int D> constexpr size_t wide_dq_smem() { return (size_t)2 * 2 * WQ_KEYS * (D + 8) * 2; }
template <int D> constexpr size_t wide_dkv_smem() {
    return (size_t)(2 * WKV_KEYS + 2 * 4 * WKV_ROWS) * (D + 8) * 2 + (size_t)2 * 4 * WKV_ROWS * 4;
}

// ------------------------------------------------------------------ forward
template <int D>
__global__ void __launch_bounds__(THREADS, 2)
    attn_fwd_wide(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, geom s) {
    constexpr int BR = WF_ROWS, BC = WF_KEYS, LDS = D + 8, KT = D / 16, NT = D / 8, TILE = BC * LDS;
    constexpr int MT = 2;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / s.group;
    const int i_block = (gridDim.x - 1 - blockIdx.x) * BR, i0 = i_block + warp * 32;
    const int64_t qrow = (int64_t)s.hq * D, krow = (int64_t)s.hkv * D;
    const bf16 *qb = q + (int64_t)b * s.t * qrow + (int64_t)h * D;
    const bf16 *kb = k + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const bf16 *vb = v + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const int k_end = min(s.t, i_block + BR);
    const int k_begin = (s.window > 0 ? max(0, i_block - s.window + 1) : 0) / BC * BC;
    kv_tiles_begin<BC, D, LDS>(ks, vs, kb, vb, krow, k_begin, k_end, s.t);

    uint32_t qf[MT][KT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) load_rows<KT>(qf[mt], qb, qrow, i0 + mt * 16 + g, s.t, tq);
    float o[MT][NT][4];
    float m[MT][2], l[MT][2];  // [m-tile][row g, row g + 8]
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int dt = 0; dt < NT; dt++) o[mt][dt][0] = o[mt][dt][1] = o[mt][dt][2] = o[mt][dt][3] = 0.0f;
        m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
    }

    for (int kt = k_begin, it = 0; kt < k_end; kt += BC, it++) {
        const bf16 *kcur = ks + (it & 1) * TILE, *vcur = vs + (it & 1) * TILE;
        kv_tiles_next<BC, D, LDS>(ks, vs, kb, vb, krow, kt, it, k_end, s.t);
        if (any_visible(i0, i0 + 31, kt, kt + BC - 1, s.t, s.window)) {
            float sc[MT][BC / 8][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++) sc[mt][nt][0] = sc[mt][nt][1] = sc[mt][nt][2] = sc[mt][nt][3] = 0.0f;
            gemm_abt_m<MT, KT, BC / 8>(sc, qf, kcur, LDS, lane);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const int r0 = i0 + mt * 16;
                const bool full = all_visible(r0, r0 + 15, kt, kt + BC - 1, s.t, s.window);
                float mx[2] = {m[mt][0], m[mt][1]};
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        float x = sc[mt][nt][e] * s.scale2;
                        if (!full && !visible(r0 + g + (e >> 1) * 8, kt + nt * 8 + 2 * tq + (e & 1), s.t, s.window))
                            x = -INFINITY;
                        sc[mt][nt][e] = x;
                        mx[e >> 1] = fmaxf(mx[e >> 1], x);
                    }
                float ref[2], al[2];
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    mx[hf] = quad_max(mx[hf]);
                    // a row that has seen no visible key yet keeps 0 as reference (no NaN)
                    ref[hf] = mx[hf] == -INFINITY ? 0.0f : mx[hf];
                    al[hf] = exp2f(m[mt][hf] - ref[hf]);
                    m[mt][hf] = mx[hf];
                    l[mt][hf] *= al[hf];
                }
#pragma unroll
                for (int dt = 0; dt < NT; dt++)
                    o[mt][dt][0] *= al[0], o[mt][dt][1] *= al[0], o[mt][dt][2] *= al[1], o[mt][dt][3] *= al[1];
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++) {
                    sc[mt][nt][0] = exp2f(sc[mt][nt][0] - ref[0]), sc[mt][nt][1] = exp2f(sc[mt][nt][1] - ref[0]);
                    sc[mt][nt][2] = exp2f(sc[mt][nt][2] - ref[1]), sc[mt][nt][3] = exp2f(sc[mt][nt][3] - ref[1]);
                    l[mt][0] += sc[mt][nt][0] + sc[mt][nt][1], l[mt][1] += sc[mt][nt][2] + sc[mt][nt][3];
                }
            }
            gemm_pm_m<MT, BC / 16, D>(o, sc, vcur, LDS, lane);
        }
        __syncthreads();  // done with this buffer before the prefetch after next refills it
    }
    etc_cp_async_wait<0>();  // an empty key range still committed one (empty) group
    bf16 *ob = out + (int64_t)b * s.t * qrow + (int64_t)h * D;
    float *lb = lse + ((int64_t)b * s.hq + h) * s.t;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int r = i0 + mt * 16 + g + hf * 8;
            const float sum = quad_sum(l[mt][hf]);
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            if (r >= s.t) continue;
#pragma unroll
            for (int dt = 0; dt < NT; dt++)
                *reinterpret_cast<__nv_bfloat162 *>(ob + r * qrow + dt * 8 + 2 * tq) =
                    __floats2bfloat162_rn(o[mt][dt][2 * hf] * inv, o[mt][dt][2 * hf + 1] * inv);
            if (tq == 0) lb[r] = (m[mt][hf] + log2f(sum)) * LN2;
        }
}

// ------------------------------------------------------------------ dq
template <int D>
__global__ void __launch_bounds__(THREADS, 2)
    attn_bwd_dq_wide(bf16 *dq, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                     const float *lse, const float *delta, geom s) {
    constexpr int BR = WQ_ROWS, BC = WQ_KEYS, LDS = D + 8, KT = D / 16, NT = D / 8, TILE = BC * LDS;
    constexpr int MT = 2;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / s.group;
    const int i_block = (gridDim.x - 1 - blockIdx.x) * BR, i0 = i_block + warp * 32;
    const int64_t qrow = (int64_t)s.hq * D, krow = (int64_t)s.hkv * D;
    const int64_t qoff = (int64_t)b * s.t * qrow + (int64_t)h * D;
    const bf16 *kb = k + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const bf16 *vb = v + (int64_t)b * s.t * krow + (int64_t)hk * D;
    const int k_end = min(s.t, i_block + BR);
    const int k_begin = (s.window > 0 ? max(0, i_block - s.window + 1) : 0) / BC * BC;
    kv_tiles_begin<BC, D, LDS>(ks, vs, kb, vb, krow, k_begin, k_end, s.t);

    uint32_t qf[MT][KT][4], gf[MT][KT][4];
    float lse2[MT][2], dl[MT][2];  // lse in the exp2 domain (+inf past t: p = 0), delta
    const float *lrow = lse + ((int64_t)b * s.hq + h) * s.t;
    const float *drow = delta + ((int64_t)b * s.hq + h) * s.t;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        const int r = i0 + mt * 16 + g;
        load_rows<KT>(qf[mt], q + qoff, qrow, r, s.t, tq);
        load_rows<KT>(gf[mt], dout + qoff, qrow, r, s.t, tq);
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            lse2[mt][hf] = r + 8 * hf < s.t ? lrow[r + 8 * hf] * LOG2E : INFINITY;
            dl[mt][hf] = r + 8 * hf < s.t ? drow[r + 8 * hf] : 0.0f;
        }
    }
    float acc[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int dt = 0; dt < NT; dt++) acc[mt][dt][0] = acc[mt][dt][1] = acc[mt][dt][2] = acc[mt][dt][3] = 0.0f;

    for (int kt = k_begin, it = 0; kt < k_end; kt += BC, it++) {
        const bf16 *kcur = ks + (it & 1) * TILE, *vcur = vs + (it & 1) * TILE;
        kv_tiles_next<BC, D, LDS>(ks, vs, kb, vb, krow, kt, it, k_end, s.t);
        if (any_visible(i0, i0 + 31, kt, kt + BC - 1, s.t, s.window)) {
            float sc[MT][BC / 8][4], dp[MT][BC / 8][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) sc[mt][nt][e] = dp[mt][nt][e] = 0.0f;
            gemm_abt_m<MT, KT, BC / 8>(sc, qf, kcur, LDS, lane);
            gemm_abt_m<MT, KT, BC / 8>(dp, gf, vcur, LDS, lane);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const int r0 = i0 + mt * 16;
                const bool full = all_visible(r0, r0 + 15, kt, kt + BC - 1, s.t, s.window);
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int hf = e >> 1;
                        float p = exp2f(sc[mt][nt][e] * s.scale2 - lse2[mt][hf]);
                        if (!full && !visible(r0 + g + hf * 8, kt + nt * 8 + 2 * tq + (e & 1), s.t, s.window))
                            p = 0.0f;
                        sc[mt][nt][e] = p * (dp[mt][nt][e] - dl[mt][hf]);  // dS
                    }
            }
            gemm_pm_m<MT, BC / 16, D>(acc, sc, kcur, LDS, lane);
        }
        __syncthreads();
    }
    etc_cp_async_wait<0>();
    bf16 *dqb = dq + qoff;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int r = i0 + mt * 16 + g + hf * 8;
            if (r >= s.t) continue;
#pragma unroll
            for (int dt = 0; dt < NT; dt++)
                add_pair(dqb + r * qrow + dt * 8 + 2 * tq, acc[mt][dt][2 * hf], acc[mt][dt][2 * hf + 1], s.scale);
        }
}

// ------------------------------------------------------------------ dk, dv
template <int D>
__global__ void __launch_bounds__(THREADS, 2)
    attn_bwd_dkv_wide(bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q, const bf16 *k,
                      const bf16 *v, const float *lse, const float *delta, geom s) {
    constexpr int BK = WKV_KEYS, BR = WKV_ROWS, LDS = D + 8, KT = D / 16, NT = D / 8;
    constexpr int QTILE = BR * LDS, MT = 2;
    // pair 1's partials: [tensor][wk][mt][dt][e][lane], over the spent Q/dO buffers
    static_assert((size_t)2 * 2 * MT * NT * 4 * 32 * 4 <= (size_t)2 * 4 * QTILE * 2,
                  "the partials of pair 1 must fit in the Q/dO buffers");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem_raw), *vs = ks + BK * LDS;
    bf16 *qs = vs + BK * LDS, *gs = qs + 4 * QTILE;  // [pair][buf][QTILE] each
    float *lse_s = reinterpret_cast<float *>(gs + 4 * QTILE), *dl_s = lse_s + 4 * BR;  // [pair][buf][BR]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const int pair = warp >> 1, wk = warp & 1;
    const int b = blockIdx.z, hk = blockIdx.y;
    const int j_block = blockIdx.x * BK, j0 = j_block + wk * 32;
    const int64_t krow = (int64_t)s.hkv * D;
    const int64_t koff = (int64_t)b * s.t * krow + (int64_t)hk * D;

    const item_list<BR> il(j_block, BK, hk, s);
    const int steps = (il.total + 1) / 2;
    auto prefetch = [&](int step, int buf) {
        load_pair_items<BR, D, LDS>(il, step, buf, qs, gs, lse_s, dl_s, q, dout, lse, delta, b, s);
    };
    copy_tile_async<BK, D, LDS>(ks, k + koff, krow, j_block, s.t);
    copy_tile_async<BK, D, LDS>(vs, v + koff, krow, j_block, s.t);
    if (steps > 0) prefetch(0, 0);
    etc_cp_async_commit();
    float dka[MT][NT][4], dva[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int dt = 0; dt < NT; dt++)
#pragma unroll
            for (int e = 0; e < 4; e++) dka[mt][dt][e] = dva[mt][dt][e] = 0.0f;

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
        if (it < il.total && any_visible(qt, qt + BR - 1, j0, j0 + 31, s.t, s.window)) {
            const bf16 *qcur = qs + slot * QTILE, *gcur = gs + slot * QTILE;
            const float *lcur = lse_s + slot * BR, *dcur = dl_s + slot * BR;
            float st[MT][BR / 8][4], dpt[MT][BR / 8][4];  // rows keys, columns queries
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < BR / 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) st[mt][nt][e] = dpt[mt][nt][e] = 0.0f;
            gemm_abt_m_smem<MT, KT, BR / 8>(st, ks, LDS, wk * 32, qcur, LDS, lane);   // Sᵀ = K·Qᵀ
            gemm_abt_m_smem<MT, KT, BR / 8>(dpt, vs, LDS, wk * 32, gcur, LDS, lane);  // dPᵀ = V·dOᵀ
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const int c0 = j0 + mt * 16;
                const bool full = all_visible(qt, qt + BR - 1, c0, c0 + 15, s.t, s.window);
#pragma unroll
                for (int nt = 0; nt < BR / 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int col = nt * 8 + 2 * tq + (e & 1);
                        float p = exp2f(st[mt][nt][e] * s.scale2 - lcur[col]);
                        if (!full && !visible(qt + col, c0 + g + (e >> 1) * 8, s.t, s.window)) p = 0.0f;
                        st[mt][nt][e] = p;
                        dpt[mt][nt][e] = p * (dpt[mt][nt][e] - dcur[col]);  // dSᵀ
                    }
            }
            gemm_pm_m<MT, BR / 16, D>(dva, st, gcur, LDS, lane);
            gemm_pm_m<MT, BR / 16, D>(dka, dpt, qcur, LDS, lane);
        }
        __syncthreads();
    }
    etc_cp_async_wait<0>();
    __syncthreads();  // every copy landed and every read of the Q/dO buffers is done
    float *part = reinterpret_cast<float *>(qs);
    auto at = [&](int tensor, int mt, int dt, int e) {
        return ((((tensor * 2 + wk) * MT + mt) * NT + dt) * 4 + e) * 32 + lane;  // lanes adjacent
    };
    if (pair == 1) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int dt = 0; dt < NT; dt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    part[at(0, mt, dt, e)] = dka[mt][dt][e];
                    part[at(1, mt, dt, e)] = dva[mt][dt][e];
                }
    }
    __syncthreads();
    if (pair == 1) return;
    bf16 *dkb = dk + koff, *dvb = dv + koff;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int c = j0 + mt * 16 + g + hf * 8;
            if (c >= s.t) continue;
#pragma unroll
            for (int dt = 0; dt < NT; dt++) {
                const int col = dt * 8 + 2 * tq;
                add_pair(dkb + c * krow + col, dka[mt][dt][2 * hf] + part[at(0, mt, dt, 2 * hf)],
                         dka[mt][dt][2 * hf + 1] + part[at(0, mt, dt, 2 * hf + 1)], s.scale);
                add_pair(dvb + c * krow + col, dva[mt][dt][2 * hf] + part[at(1, mt, dt, 2 * hf)],
                         dva[mt][dt][2 * hf + 1] + part[at(1, mt, dt, 2 * hf + 1)], 1.0f);
            }
        }
}

template <int D>
int forward_d(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, int b,
              const geom &s) {
    constexpr size_t smem = wide_fwd_smem<D>();
    if (allow_smem(attn_fwd_wide<D>, smem, "etc_attention_forward_bf16 (wide)")) return -1;
    dim3 grid((s.t + WF_ROWS - 1) / WF_ROWS, s.hq, b);
    attn_fwd_wide<D><<<grid, THREADS, smem, etc_stream()>>>(out, lse, q, k, v, s);
    return etc_check_launch("etc_attention_forward_bf16 (wide)");
}

template <int D>
int backward_d(bf16 *dq, bf16 *dk, bf16 *dv, const float *delta, const bf16 *dout, const bf16 *q,
               const bf16 *k, const bf16 *v, const float *lse, int b, const geom &s) {
    constexpr size_t smem_q = wide_dq_smem<D>(), smem_kv = wide_dkv_smem<D>();
    if (allow_smem(attn_bwd_dq_wide<D>, smem_q, "etc_attention_backward_bf16 (dq, wide)") ||
        allow_smem(attn_bwd_dkv_wide<D>, smem_kv, "etc_attention_backward_bf16 (dk, dv, wide)"))
        return -1;
    dim3 grid_q((s.t + WQ_ROWS - 1) / WQ_ROWS, s.hq, b);
    attn_bwd_dq_wide<D><<<grid_q, THREADS, smem_q, etc_stream()>>>(dq, dout, q, k, v, lse, delta, s);
    if (etc_check_launch("etc_attention_backward_bf16 (dq, wide)")) return -1;
    /* the first keys have the most query tiles: their blocks go first */
    dim3 grid_kv((s.t + WKV_KEYS - 1) / WKV_KEYS, s.hkv, b);
    attn_bwd_dkv_wide<D><<<grid_kv, THREADS, smem_kv, etc_stream()>>>(dk, dv, dout, q, k, v, lse, delta, s);
    return etc_check_launch("etc_attention_backward_bf16 (dk, dv, wide)");
}

}  // namespace

int wide_forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, int b, int d,
                 const geom &s) {
    switch (d) {
    case 16: return forward_d<16>(out, lse, q, k, v, b, s);
    case 32: return forward_d<32>(out, lse, q, k, v, b, s);
    case 48: return forward_d<48>(out, lse, q, k, v, b, s);
    case 64: return forward_d<64>(out, lse, q, k, v, b, s);
    }
    return etc_fail("etc_attention_forward_bf16 (wide): head dim %d (at most %d)", d, WIDE_MAX_D);
}

int wide_backward(bf16 *dq, bf16 *dk, bf16 *dv, const float *delta, const bf16 *dout,
                  const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, int b, int d,
                  const geom &s) {
    switch (d) {
    case 16: return backward_d<16>(dq, dk, dv, delta, dout, q, k, v, lse, b, s);
    case 32: return backward_d<32>(dq, dk, dv, delta, dout, q, k, v, lse, b, s);
    case 48: return backward_d<48>(dq, dk, dv, delta, dout, q, k, v, lse, b, s);
    case 64: return backward_d<64>(dq, dk, dv, delta, dout, q, k, v, lse, b, s);
    }
    return etc_fail("etc_attention_backward_bf16 (wide): head dim %d (at most %d)", d, WIDE_MAX_D);
}

}  // namespace etc_attn
