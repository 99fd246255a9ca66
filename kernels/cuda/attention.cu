// Causal GQA attention with an optional sliding window, fp32, flash-style: keys
// and values stream through shared memory in tiles of 32 rows, each query row
// keeps an online softmax (running max, rescaled sum and output) in registers, and
// backward recomputes probabilities from the saved lse. No T×T buffer exists.
//
// Work split (the same in all three kernels): a block is 4 warps; each warp owns
// 8 "items" (query rows in forward and dq, key rows in dk/dv), and a lane plays
// two roles in turn: for the scores it is one row of the 32-row tile in shared
// memory (so a warp computes an 8×32 score block with broadcast reads of its items
// and conflict-free 16-byte reads of padded tile rows), and for the accumulation
// it owns head-dimension elements d = lane + 32c (c < DPL = ceil(D/32)), reading
// the probabilities back from shared memory as broadcast float4s.
//
// Forward and dq blocks hold the query rows of up to 32 (row, head) pairs that
// share one KV head (GQA: the heads of a group reuse each K/V tile). dk/dv blocks
// own 32 consecutive keys of one KV head and loop over the group's query heads and
// the query rows that can see those keys, so every output element has exactly one
// owner: no atomics, deterministic results. As on the CPU, dq and dk/dv are
// separate passes that each recompute q·k and dout·v.
#include <math.h>

#include "kernels/cuda/context.h"

namespace {

#define WARPS 4
#define ITEMS 8   // per warp
#define TILE 32   // rows of K/V (forward, dq) or of Q/dout (dk/dv) per step
#define THREADS (WARPS * 32)

struct shape {
    int t, hq, hkv, d, window, group;
    int gb;  // query heads of the group per block (forward, dq)
    int rb;  // query rows per block: gb·rb <= 32 pairs
    float scale;
};

__device__ __forceinline__ bool visible(int i, int j, int t, int window) {
    return j <= i && i < t && (window <= 0 || j > i - window);
}

__device__ __forceinline__ float dot4(float4 a, float4 b) {
    return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}

// Copies `rows` rows of d floats (global row stride `stride`, first row `first`,
// valid while < limit) into shared memory with row stride `ss`; rows past the
// limit are zero. All threads of the block take part.
__device__ __forceinline__ void load_rows(float *dst, int ss, const float *src, int64_t stride,
                                          int first, int limit, int d) {
    const int quads = d / 4;
    for (int idx = threadIdx.x; idx < TILE * quads; idx += blockDim.x) {
        const int r = idx / quads, c = (idx % quads) * 4;
        float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
        if (first + r < limit)
            val = *reinterpret_cast<const float4 *>(src + (int64_t)(first + r) * stride + c);
        *reinterpret_cast<float4 *>(dst + r * ss + c) = val;
    }
}

// Pair p of a forward/dq block: query row and head, or valid = false.
__device__ __forceinline__ bool pair_of(int p, const shape &s, int &row, int &head) {
    const int r = p / s.gb, g = p % s.gb;
    row = blockIdx.x * s.rb + r;
    const int hg = blockIdx.y * s.gb + g;
    head = (blockIdx.z % s.hkv) * s.group + hg;
    return p < s.gb * s.rb && row < s.t && hg < s.group;
}

// Shared memory of forward: Q [32][D], K [32][D+4], V [32][D], P [4][8][32].
template <int DPL>
__global__ void __launch_bounds__(THREADS) attention_fwd(float *out, float *lse, const float *q,
                                                         const float *k, const float *v,
                                                         shape s) {
    extern __shared__ float4 smem4[];
    float *smem = reinterpret_cast<float *>(smem4);
    const int D = s.d, KS = D + 4;
    float *Qs = smem, *Ks = Qs + TILE * D, *Vs = Ks + TILE * KS, *Ps = Vs + TILE * D;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bi = blockIdx.z / s.hkv, hk = blockIdx.z % s.hkv;
    const int64_t q_row = (int64_t)s.hq * D, kv_row = (int64_t)s.hkv * D;

    // Q rows of the 32 pairs (zero for invalid pairs).
    for (int idx = threadIdx.x; idx < TILE * (D / 4); idx += blockDim.x) {
        const int p = idx / (D / 4), c = (idx % (D / 4)) * 4;
        int row, head;
        float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
        if (pair_of(p, s, row, head))
            val = *reinterpret_cast<const float4 *>(q + ((int64_t)bi * s.t + row) * q_row +
                                                    (int64_t)head * D + c);
        *reinterpret_cast<float4 *>(Qs + p * D + c) = val;
    }

    int row[ITEMS], head[ITEMS];
    bool valid[ITEMS];
    float m[ITEMS], l[ITEMS], acc[ITEMS][DPL];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        valid[it] = pair_of(warp * ITEMS + it, s, row[it], head[it]);
        m[it] = -INFINITY, l[it] = 0.0f;
#pragma unroll
        for (int c = 0; c < DPL; c++) acc[it][c] = 0.0f;
    }

    const int first_row = blockIdx.x * s.rb;
    const int last_row = min(s.t - 1, first_row + s.rb - 1);
    const int k_begin = s.window > 0 ? max(0, first_row - s.window + 1) : 0;
    const float *kb = k + (int64_t)bi * s.t * kv_row + (int64_t)hk * D;
    const float *vb = v + (int64_t)bi * s.t * kv_row + (int64_t)hk * D;
    const float *qw = Qs + warp * ITEMS * D;
    float *pw = Ps + warp * ITEMS * TILE;

    for (int kt = k_begin; kt <= last_row; kt += TILE) {
        __syncthreads();  // the previous tile is consumed (and Q is loaded)
        load_rows(Ks, KS, kb, kv_row, kt, last_row + 1, D);
        load_rows(Vs, D, vb, kv_row, kt, last_row + 1, D);
        __syncthreads();

        float sc[ITEMS];
#pragma unroll
        for (int it = 0; it < ITEMS; it++) sc[it] = 0.0f;
        const float *kr = Ks + lane * KS;
        for (int c = 0; c < D; c += 4) {
            const float4 kk = *reinterpret_cast<const float4 *>(kr + c);
#pragma unroll
            for (int it = 0; it < ITEMS; it++)
                sc[it] += dot4(*reinterpret_cast<const float4 *>(qw + it * D + c), kk);
        }
        const int j = kt + lane;
#pragma unroll
        for (int it = 0; it < ITEMS; it++) {
            const bool vis = valid[it] && visible(row[it], j, s.t, s.window);
            const float sv = vis ? sc[it] * s.scale : -INFINITY;
            const float tile_max = etc_warp_max(sv);
            float pe = 0.0f;
            if (tile_max != -INFINITY) {  // the same branch for the whole warp
                const float mn = fmaxf(m[it], tile_max);
                const float corr = __expf(m[it] - mn);  // 0 while nothing was seen
                pe = vis ? __expf(sv - mn) : 0.0f;
                l[it] = l[it] * corr + etc_warp_sum(pe);
#pragma unroll
                for (int c = 0; c < DPL; c++) acc[it][c] *= corr;
                m[it] = mn;
            }
            pw[it * TILE + lane] = pe;
        }
        __syncwarp();
        for (int jj = 0; jj < TILE; jj += 4) {
            float vr[4][DPL];
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int c = 0; c < DPL; c++) {
                    const int d = lane + 32 * c;
                    vr[u][c] = d < D ? Vs[(jj + u) * D + d] : 0.0f;
                }
#pragma unroll
            for (int it = 0; it < ITEMS; it++) {
                const float4 p4 = *reinterpret_cast<const float4 *>(pw + it * TILE + jj);
#pragma unroll
                for (int c = 0; c < DPL; c++)
                    acc[it][c] += p4.x * vr[0][c] + p4.y * vr[1][c] + p4.z * vr[2][c] +
                                  p4.w * vr[3][c];
            }
        }
        __syncwarp();
    }

#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        if (!valid[it]) continue;
        const float inv = 1.0f / l[it];
        float *o = out + ((int64_t)bi * s.t + row[it]) * q_row + (int64_t)head[it] * D;
#pragma unroll
        for (int c = 0; c < DPL; c++) {
            const int d = lane + 32 * c;
            if (d < D) o[d] = acc[it][c] * inv;
        }
        if (lane == 0) lse[((int64_t)bi * s.hq + head[it]) * s.t + row[it]] = m[it] + logf(l[it]);
    }
}

// dq pass. Shared memory: Q [32][D], dO [32][D], K [32][D+4], V [32][D+4], dS [4][8][32].
template <int DPL>
__global__ void __launch_bounds__(THREADS) attention_bwd_dq(float *dq, const float *dout,
                                                            const float *q, const float *k,
                                                            const float *v, const float *out,
                                                            const float *lse, shape s) {
    extern __shared__ float4 smem4[];
    float *smem = reinterpret_cast<float *>(smem4);
    const int D = s.d, KS = D + 4;
    float *Qs = smem, *Gs = Qs + TILE * D, *Ks = Gs + TILE * D, *Vs = Ks + TILE * KS;
    float *Ps = Vs + TILE * KS;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bi = blockIdx.z / s.hkv, hk = blockIdx.z % s.hkv;
    const int64_t q_row = (int64_t)s.hq * D, kv_row = (int64_t)s.hkv * D;

    for (int idx = threadIdx.x; idx < TILE * (D / 4); idx += blockDim.x) {
        const int p = idx / (D / 4), c = (idx % (D / 4)) * 4;
        int row, head;
        float4 qv = make_float4(0.f, 0.f, 0.f, 0.f), gv = qv;
        if (pair_of(p, s, row, head)) {
            const int64_t at = ((int64_t)bi * s.t + row) * q_row + (int64_t)head * D + c;
            qv = *reinterpret_cast<const float4 *>(q + at);
            gv = *reinterpret_cast<const float4 *>(dout + at);
        }
        *reinterpret_cast<float4 *>(Qs + p * D + c) = qv;
        *reinterpret_cast<float4 *>(Gs + p * D + c) = gv;
    }

    int row[ITEMS], head[ITEMS];
    bool valid[ITEMS];
    float row_lse[ITEMS], delta[ITEMS], acc[ITEMS][DPL];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        valid[it] = pair_of(warp * ITEMS + it, s, row[it], head[it]);
        row_lse[it] = 0.0f, delta[it] = 0.0f;
        if (valid[it]) {
            const int64_t at = ((int64_t)bi * s.t + row[it]) * q_row + (int64_t)head[it] * D;
            float dd = 0.0f;
            for (int d = lane; d < D; d += 32) dd += dout[at + d] * out[at + d];
            delta[it] = etc_warp_sum(dd);  // delta_i = dout_i · out_i = Σ_j P_ij dP_ij
            row_lse[it] = lse[((int64_t)bi * s.hq + head[it]) * s.t + row[it]];
        }
#pragma unroll
        for (int c = 0; c < DPL; c++) acc[it][c] = 0.0f;
    }

    const int first_row = blockIdx.x * s.rb;
    const int last_row = min(s.t - 1, first_row + s.rb - 1);
    const int k_begin = s.window > 0 ? max(0, first_row - s.window + 1) : 0;
    const float *kb = k + (int64_t)bi * s.t * kv_row + (int64_t)hk * D;
    const float *vb = v + (int64_t)bi * s.t * kv_row + (int64_t)hk * D;
    const float *qw = Qs + warp * ITEMS * D, *gw = Gs + warp * ITEMS * D;
    float *pw = Ps + warp * ITEMS * TILE;

    for (int kt = k_begin; kt <= last_row; kt += TILE) {
        __syncthreads();
        load_rows(Ks, KS, kb, kv_row, kt, last_row + 1, D);
        load_rows(Vs, KS, vb, kv_row, kt, last_row + 1, D);
        __syncthreads();

        float sc[ITEMS], dp[ITEMS];
#pragma unroll
        for (int it = 0; it < ITEMS; it++) sc[it] = dp[it] = 0.0f;
        const float *kr = Ks + lane * KS, *vr = Vs + lane * KS;
        for (int c = 0; c < D; c += 4) {
            const float4 kk = *reinterpret_cast<const float4 *>(kr + c);
            const float4 vv = *reinterpret_cast<const float4 *>(vr + c);
#pragma unroll
            for (int it = 0; it < ITEMS; it++) {
                sc[it] += dot4(*reinterpret_cast<const float4 *>(qw + it * D + c), kk);
                dp[it] += dot4(*reinterpret_cast<const float4 *>(gw + it * D + c), vv);
            }
        }
        const int j = kt + lane;
#pragma unroll
        for (int it = 0; it < ITEMS; it++) {
            const bool vis = valid[it] && visible(row[it], j, s.t, s.window);
            const float p = vis ? __expf(sc[it] * s.scale - row_lse[it]) : 0.0f;
            pw[it * TILE + lane] = p * (dp[it] - delta[it]);  // dS
        }
        __syncwarp();
        for (int jj = 0; jj < TILE; jj += 4) {
            float kreg[4][DPL];
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int c = 0; c < DPL; c++) {
                    const int d = lane + 32 * c;
                    kreg[u][c] = d < D ? Ks[(jj + u) * KS + d] : 0.0f;
                }
#pragma unroll
            for (int it = 0; it < ITEMS; it++) {
                const float4 g4 = *reinterpret_cast<const float4 *>(pw + it * TILE + jj);
#pragma unroll
                for (int c = 0; c < DPL; c++)
                    acc[it][c] += g4.x * kreg[0][c] + g4.y * kreg[1][c] + g4.z * kreg[2][c] +
                                  g4.w * kreg[3][c];
            }
        }
        __syncwarp();
    }

#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        if (!valid[it]) continue;
        float *o = dq + ((int64_t)bi * s.t + row[it]) * q_row + (int64_t)head[it] * D;
#pragma unroll
        for (int c = 0; c < DPL; c++) {
            const int d = lane + 32 * c;
            if (d < D) o[d] += s.scale * acc[it][c];
        }
    }
}

// dk/dv pass: a block owns keys [j0, j0 + 32) of one KV head. Shared memory:
// K [32][D], V [32][D] (the block's keys), Q [32][D+4], dO [32][D+4] (a query
// tile), lse [32], delta [32], P [4][8][32], dS [4][8][32].
template <int DPL>
__global__ void __launch_bounds__(THREADS) attention_bwd_dkv(float *dk, float *dv,
                                                             const float *dout, const float *q,
                                                             const float *k, const float *v,
                                                             const float *out, const float *lse,
                                                             shape s) {
    extern __shared__ float4 smem4[];
    float *smem = reinterpret_cast<float *>(smem4);
    const int D = s.d, QS = D + 4;
    float *Kb = smem, *Vb = Kb + TILE * D, *Qs = Vb + TILE * D, *Gs = Qs + TILE * QS;
    float *lse_s = Gs + TILE * QS, *delta_s = lse_s + TILE, *Ps = delta_s + TILE;
    float *DSs = Ps + WARPS * ITEMS * TILE;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bi = blockIdx.z / s.hkv, hk = blockIdx.z % s.hkv;
    const int64_t q_row = (int64_t)s.hq * D, kv_row = (int64_t)s.hkv * D;
    const int j0 = blockIdx.x * TILE;
    const int64_t kv_base = (int64_t)bi * s.t * kv_row + (int64_t)hk * D;

    load_rows(Kb, D, k + kv_base, kv_row, j0, s.t, D);
    load_rows(Vb, D, v + kv_base, kv_row, j0, s.t, D);

    float dka[ITEMS][DPL], dva[ITEMS][DPL];
#pragma unroll
    for (int it = 0; it < ITEMS; it++)
#pragma unroll
        for (int c = 0; c < DPL; c++) dka[it][c] = dva[it][c] = 0.0f;

    const int j_last = min(s.t - 1, j0 + TILE - 1);
    const int i_end = s.window > 0 ? min(s.t - 1, j_last + s.window - 1) : s.t - 1;
    const float *kw = Kb + warp * ITEMS * D, *vw = Vb + warp * ITEMS * D;
    float *pw = Ps + warp * ITEMS * TILE, *dsw = DSs + warp * ITEMS * TILE;

    for (int g = 0; g < s.group; g++) {
        const int head = hk * s.group + g;
        const int64_t q_base = (int64_t)bi * s.t * q_row + (int64_t)head * D;
        const float *lse_h = lse + ((int64_t)bi * s.hq + head) * s.t;
        for (int it0 = j0; it0 <= i_end; it0 += TILE) {
            __syncthreads();  // the previous query tile is consumed (and K/V are loaded)
            load_rows(Qs, QS, q + q_base, q_row, it0, i_end + 1, D);
            load_rows(Gs, QS, dout + q_base, q_row, it0, i_end + 1, D);
            for (int r = warp; r < TILE; r += WARPS) {  // delta_i = dout_i · out_i
                const int i = it0 + r;
                float dd = 0.0f;
                if (i <= i_end)
                    for (int d = lane; d < D; d += 32)
                        dd += dout[q_base + (int64_t)i * q_row + d] *
                              out[q_base + (int64_t)i * q_row + d];
                dd = etc_warp_sum(dd);
                if (lane == 0) {
                    delta_s[r] = dd;
                    lse_s[r] = i <= i_end ? lse_h[i] : 0.0f;
                }
            }
            __syncthreads();

            float sc[ITEMS], dp[ITEMS];
#pragma unroll
            for (int it = 0; it < ITEMS; it++) sc[it] = dp[it] = 0.0f;
            const float *qr = Qs + lane * QS, *gr = Gs + lane * QS;
            for (int c = 0; c < D; c += 4) {
                const float4 qq = *reinterpret_cast<const float4 *>(qr + c);
                const float4 gg = *reinterpret_cast<const float4 *>(gr + c);
#pragma unroll
                for (int it = 0; it < ITEMS; it++) {
                    sc[it] += dot4(qq, *reinterpret_cast<const float4 *>(kw + it * D + c));
                    dp[it] += dot4(gg, *reinterpret_cast<const float4 *>(vw + it * D + c));
                }
            }
            const int i = it0 + lane;
#pragma unroll
            for (int it = 0; it < ITEMS; it++) {
                const int j = j0 + warp * ITEMS + it;
                const bool vis = j < s.t && i <= i_end && visible(i, j, s.t, s.window);
                const float p = vis ? __expf(sc[it] * s.scale - lse_s[lane]) : 0.0f;
                pw[it * TILE + lane] = p;
                dsw[it * TILE + lane] = p * (dp[it] - delta_s[lane]);
            }
            __syncwarp();
            for (int ii = 0; ii < TILE; ii += 4) {
                float qreg[4][DPL], greg[4][DPL];
#pragma unroll
                for (int u = 0; u < 4; u++)
#pragma unroll
                    for (int c = 0; c < DPL; c++) {
                        const int d = lane + 32 * c;
                        qreg[u][c] = d < D ? Qs[(ii + u) * QS + d] : 0.0f;
                        greg[u][c] = d < D ? Gs[(ii + u) * QS + d] : 0.0f;
                    }
#pragma unroll
                for (int it = 0; it < ITEMS; it++) {
                    const float4 p4 = *reinterpret_cast<const float4 *>(pw + it * TILE + ii);
                    const float4 s4 = *reinterpret_cast<const float4 *>(dsw + it * TILE + ii);
#pragma unroll
                    for (int c = 0; c < DPL; c++) {
                        dva[it][c] += p4.x * greg[0][c] + p4.y * greg[1][c] + p4.z * greg[2][c] +
                                      p4.w * greg[3][c];
                        dka[it][c] += s4.x * qreg[0][c] + s4.y * qreg[1][c] + s4.z * qreg[2][c] +
                                      s4.w * qreg[3][c];
                    }
                }
            }
            __syncwarp();
        }
    }

#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int j = j0 + warp * ITEMS + it;
        if (j >= s.t) continue;
        float *dko = dk + kv_base + (int64_t)j * kv_row, *dvo = dv + kv_base + (int64_t)j * kv_row;
#pragma unroll
        for (int c = 0; c < DPL; c++) {
            const int d = lane + 32 * c;
            if (d < D) {
                dko[d] += s.scale * dka[it][c];
                dvo[d] += dva[it][c];
            }
        }
    }
}

int make_shape(shape *s, const void *const *ptrs, int nptrs, int b, int t, int hq, int hkv, int d,
               int window, const char *name) {
    if (b < 0 || t < 0 || hq <= 0 || hkv <= 0 || hq % hkv)
        return etc_fail("%s: bad shape b=%d t=%d hq=%d hkv=%d (hq must be a multiple of hkv)",
                        name, b, t, hq, hkv);
    if (d <= 0 || d % 4 || d > 32 * 4)
        return etc_fail("%s: head dim %d unsupported (must be a multiple of 4, at most 128)", name,
                        d);
    for (int i = 0; i < nptrs; i++)
        if (!etc_aligned16(ptrs[i]))
            return etc_fail("%s: tensor argument %d is not 16-byte aligned", name, i + 1);
    s->t = t, s->hq = hq, s->hkv = hkv, s->d = d, s->window = etc_attention_window(window, t);
    s->group = hq / hkv;
    s->gb = s->group < 32 ? s->group : 32;
    s->rb = 32 / s->gb;
    s->scale = 1.0f / sqrtf((float)d);
    return 0;
}

// Launches KERNEL<DPL> for the head dim, raising the shared-memory limit once per
// instance (blocks need more than the default 48 KB at d = 128).
#define DISPATCH(KERNEL, grid, smem_bytes, ...)                                              \
    do {                                                                                     \
        const int dpl_ = (s.d + 31) / 32;                                                    \
        auto launch_ = [&](auto kernel_) {                                                   \
            cudaFuncSetAttribute(kernel_, cudaFuncAttributeMaxDynamicSharedMemorySize,        \
                                 (int)(smem_bytes));                                         \
            kernel_<<<grid, THREADS, smem_bytes, etc_stream()>>>(__VA_ARGS__);               \
        };                                                                                   \
        if (dpl_ == 1) launch_(KERNEL<1>);                                                   \
        else if (dpl_ == 2) launch_(KERNEL<2>);                                              \
        else if (dpl_ == 3) launch_(KERNEL<3>);                                              \
        else launch_(KERNEL<4>);                                                             \
    } while (0)

}  // namespace

extern "C" int etc_attention_forward(float *out, float *lse, const float *q, const float *k,
                                     const float *v, int b, int t, int hq, int hkv, int d,
                                     int window) {
    shape s;
    const void *ptrs[] = {out, q, k, v};
    if (make_shape(&s, ptrs, 4, b, t, hq, hkv, d, window, "etc_attention_forward")) return -1;
    if (b == 0 || t == 0) return 0;
    dim3 grid((t + s.rb - 1) / s.rb, (s.group + s.gb - 1) / s.gb, b * hkv);
    const size_t smem = (size_t)(TILE * d * 2 + TILE * (d + 4) + WARPS * ITEMS * TILE) * 4;
    DISPATCH(attention_fwd, grid, smem, out, lse, q, k, v, s);
    return etc_check_launch("etc_attention_forward");
}

extern "C" int etc_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                                      const float *q, const float *k, const float *v,
                                      const float *out, const float *lse, int b, int t, int hq,
                                      int hkv, int d, int window) {
    shape s;
    const void *ptrs[] = {dq, dk, dv, dout, q, k, v, out};
    if (make_shape(&s, ptrs, 8, b, t, hq, hkv, d, window, "etc_attention_backward")) return -1;
    if (b == 0 || t == 0) return 0;
    dim3 grid_q((t + s.rb - 1) / s.rb, (s.group + s.gb - 1) / s.gb, b * hkv);
    const size_t smem_q = (size_t)(TILE * d * 2 + TILE * (d + 4) * 2 + WARPS * ITEMS * TILE) * 4;
    DISPATCH(attention_bwd_dq, grid_q, smem_q, dq, dout, q, k, v, out, lse, s);
    if (etc_check_launch("etc_attention_backward (dq)")) return -1;
    dim3 grid_kv((t + TILE - 1) / TILE, 1, b * hkv);
    const size_t smem_kv =
        (size_t)(TILE * d * 2 + TILE * (d + 4) * 2 + 2 * TILE + 2 * WARPS * ITEMS * TILE) * 4;
    DISPATCH(attention_bwd_dkv, grid_kv, smem_kv, dk, dv, dout, q, k, v, out, lse, s);
    return etc_check_launch("etc_attention_backward (dk, dv)");
}
