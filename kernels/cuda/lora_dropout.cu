// The input gradient of a group of LoRA'd projections under LoRA dropout, in one
// pass over dx:
//     dx[i, c] (+)= scale · Σ_j keep_j(i, c) · Σ_t dxa[i, j·r + t] · A[j·r + t, c]
// where member j's mask keep_j is its forward dropout mask (stream offset_j +
// i·in + c, drawn again here) and A holds the members' A matrices one under the
// other ([k·r, in], the LoRA parameter order). It replaces, per member, a GEMM that
// wrote dxa_j·A_j to a scratch tensor and a dropout backward that read it back and
// added it into dx: one read-modify-write of dx for the whole group instead of
// four passes a member, and one bf16 rounding instead of two. The products are
// rank k·r <= 64, so CUDA cores do them from shared memory.
#include "kernels/cuda/context.h"
#include "kernels/cuda/mma.h"
#include "kernels/cuda/philox.h"

namespace {

constexpr int TILE_ROWS = 32, TILE_COLS = 64, MAX_KR = 64, MAX_K = 3;

struct member_offsets {
    uint64_t v[MAX_K];
};

// 256 threads: thread (ty, tx) = (tid / 8, tid % 8) owns row ty of the tile and its
// 8 columns tx·8 ..; the tile's dxa rows and A columns are staged in fp32.
__global__ void __launch_bounds__(256)
    lora_dropout_dx(__nv_bfloat16 *dx, const __nv_bfloat16 *dxa, int64_t ld_dxa,
                    const __nv_bfloat16 *a, int n, int in, int k, int r, float p, float scale,
                    uint64_t seed, member_offsets off, int overwrite) {
    __shared__ float sa[MAX_KR][TILE_COLS];
    __shared__ float sx[TILE_ROWS][MAX_KR + 1];
    const int kr = k * r, c0 = blockIdx.x * TILE_COLS, r0 = blockIdx.y * TILE_ROWS;
    for (int e = threadIdx.x; e < kr * TILE_COLS; e += blockDim.x) {
        const int t = e / TILE_COLS, c = e % TILE_COLS;
        sa[t][c] = c0 + c < in ? etc_f32(a[(int64_t)t * in + c0 + c]) : 0.0f;
    }
    for (int e = threadIdx.x; e < TILE_ROWS * kr; e += blockDim.x) {
        const int i = e / kr, t = e % kr;
        sx[i][t] = r0 + i < n ? etc_f32(dxa[(int64_t)(r0 + i) * ld_dxa + t]) : 0.0f;
    }
    __syncthreads();
    const int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
    const int row = r0 + ty, col = c0 + tx * 8;
    if (row >= n || col >= in) return;
    float out[8];
#pragma unroll
    for (int q = 0; q < 8; q++) out[q] = 0.0f;
    for (int j = 0; j < k; j++) {
        float acc[8];
#pragma unroll
        for (int q = 0; q < 8; q++) acc[q] = 0.0f;
        for (int t = 0; t < r; t++) {
            const float xv = sx[ty][j * r + t];
#pragma unroll
            for (int q = 0; q < 8; q++) acc[q] += xv * sa[j * r + t][tx * 8 + q];
        }
        bool kept[8];
        etc_draw_keep<8>(kept, seed, off.v[j], (int64_t)row * in + col, p);
#pragma unroll
        for (int q = 0; q < 8; q++)
            if (kept[q]) out[q] += acc[q] * scale;
    }
    const int64_t pack = ((int64_t)row * in + col) / 8;
    if (!overwrite) {
        float d[8];
        etc_load<__nv_bfloat16, 8>(d, dx, pack);
#pragma unroll
        for (int q = 0; q < 8; q++) out[q] += d[q];
    }
    etc_store<__nv_bfloat16, 8>(dx, pack, out);
}

}  // namespace

extern "C" int etc_lora_dropout_dx_supported(int in, int k, int r) {
    return in > 0 && in % 8 == 0 && k >= 1 && k <= MAX_K && r >= 1 && k * r <= MAX_KR;
}

extern "C" int etc_lora_dropout_dx_bf16(etc_bf16 *dx, const etc_bf16 *dxa, int64_t ld_dxa,
                                        const etc_bf16 *a, int n, int in, int k, int r, float p,
                                        uint64_t seed, const uint64_t *offsets, int overwrite) {
    if (n < 0 || !etc_lora_dropout_dx_supported(in, k, r) || ld_dxa < (int64_t)k * r)
        return etc_fail("etc_lora_dropout_dx_bf16: unsupported shape n=%d in=%d k=%d r=%d "
                        "(in a multiple of 8, k <= %d, k·r <= %d)",
                        n, in, k, r, MAX_K, MAX_KR);
    if (!etc_aligned16(dx)) return etc_fail("etc_lora_dropout_dx_bf16: dx is not 16-byte aligned");
    if (n == 0) return 0;
    member_offsets off = {{0, 0, 0}};
    for (int j = 0; j < k; j++) off.v[j] = offsets[j];
    dim3 grid((unsigned)((in + TILE_COLS - 1) / TILE_COLS), (unsigned)((n + TILE_ROWS - 1) / TILE_ROWS));
    if (grid.y > 65535) return etc_fail("etc_lora_dropout_dx_bf16: %d rows exceed the launch grid", n);
    lora_dropout_dx<<<grid, 256, 0, etc_stream()>>>((__nv_bfloat16 *)dx,
                                                    (const __nv_bfloat16 *)dxa, ld_dxa,
                                                    (const __nv_bfloat16 *)a, n, in, k, r,
                                                    etc_dropout_threshold(p), etc_dropout_scale(p), seed, off,
                                                    overwrite);
    return etc_check_launch("etc_lora_dropout_dx_bf16");
}

// ---- forward: the members' x·Aᵀ of their own masked copies of x, x read once ----
namespace {

constexpr int XA_ROWS = 64, XA_COLS = 64, XA_MAX_R = 32;

struct member_outputs {
    __nv_bfloat16 *xa[MAX_K]; /* member j's [n, r] output, row stride ld */
};

// k·64 threads: thread (j, row) = (tid / 64, tid % 64) accumulates member j's r
// outputs of tile row `row` over column chunks of 64 staged in shared memory; the
// A reads of a warp are one address (broadcast), the x reads one column of 32 rows.
__global__ void __launch_bounds__(192)
    lora_dropout_xa(member_outputs outs, int64_t ld, const __nv_bfloat16 *x,
                    const __nv_bfloat16 *a, int n, int in, int k, int r, float p, float scale,
                    uint64_t seed, member_offsets off) {
    __shared__ float sx[XA_ROWS][XA_COLS + 1];
    __shared__ float sa[MAX_KR][XA_COLS];
    const int j = threadIdx.x / XA_ROWS, ty = threadIdx.x % XA_ROWS, r0 = blockIdx.x * XA_ROWS;
    const int kr = k * r, row = r0 + ty;
    const uint64_t my_off = off.v[j];
    float acc[XA_MAX_R];
#pragma unroll
    for (int t = 0; t < XA_MAX_R; t++) acc[t] = 0.0f;
    for (int c0 = 0; c0 < in; c0 += XA_COLS) {
        __syncthreads(); /* the previous chunk is consumed */
        for (int e = threadIdx.x; e < XA_ROWS * XA_COLS; e += blockDim.x) {
            const int i = e / XA_COLS, c = e % XA_COLS;
            sx[i][c] = r0 + i < n && c0 + c < in ? etc_f32(x[(int64_t)(r0 + i) * in + c0 + c]) : 0.0f;
        }
        for (int e = threadIdx.x; e < kr * XA_COLS; e += blockDim.x) {
            const int t = e / XA_COLS, c = e % XA_COLS;
            sa[t][c] = c0 + c < in ? etc_f32(a[(int64_t)t * in + c0 + c]) : 0.0f;
        }
        __syncthreads();
        if (row >= n) continue;
        const int cols = in - c0 < XA_COLS ? in - c0 : XA_COLS;
        for (int c = 0; c < cols; c += 4) {
            bool kept[4];
            etc_draw_keep<4>(kept, seed, my_off, (int64_t)row * in + c0 + c, p);
#pragma unroll
            for (int q = 0; q < 4; q++) {
                if (c + q >= cols || !kept[q]) continue;
                const float v = sx[ty][c + q] * scale;
#pragma unroll
                for (int t = 0; t < XA_MAX_R; t++)
                    if (t < r) acc[t] += v * sa[j * r + t][c + q];
            }
        }
    }
    if (row >= n) return;
    __nv_bfloat16 *dst = outs.xa[j] + (int64_t)row * ld;
#pragma unroll
    for (int t = 0; t < XA_MAX_R; t++) /* compile-time indices keep acc in registers */
        if (t < r) dst[t] = __float2bfloat16_rn(acc[t]);
}

// The same product on the tensor cores, for r a multiple of 8 (<= 32) and rows of x
// 16-byte aligned (in a multiple of 8). Why: the CUDA-core kernel above loads one
// shared A value per multiply-add and is bound by shared-memory issue (~15 TFLOP/s
// estimated: ≈ 5 ms a step at the 1B shape, batch 4 — about the masked copies it
// replaced); here x is read once from global memory, each member's masked copy
// lives only in shared memory, and mma.sync does the products.
//
// A block: 64 rows of x, 8 warps; warp w owns rows 16·(w % 4) .. and the k16
// steps 2·(w / 4), 2·(w / 4) + 1 of each 64-column chunk. Per chunk the threads
// stage x — 16-byte packs, masked for each member as etc_draw_keep draws them, kept
// values unscaled (the dropout scale multiplies the fp32 sums at the end) — and the
// chunk's k·r rows of A; the chunk after is loaded into registers while the warps
// compute. At the end warps 4..7 hand their partial sums to warps 0..3 through
// shared memory, which add them in a fixed order: deterministic.
constexpr int XM_ROWS = 64, XM_COLS = 64, XM_LDS = XM_COLS + 8, XM_THREADS = 256;
constexpr int XM_PACKS = XM_ROWS * XM_COLS / 8 / XM_THREADS;  // x packs a thread stages
constexpr int XM_MAX_TILES = 4;                                // n8 tiles a member (r <= 32)

// A 16-byte pack of x (8 bf16 at stream positions first .. first + 7) under one
// member's mask: kept values as they are (unscaled), dropped ones zero. Two bf16 a
// 32-bit word, the lower index in the low half.
__device__ __forceinline__ uint4 dropout_pack8(uint4 v, uint64_t seed, uint64_t offset,
                                               int64_t first, float p) {
    bool kept[8];
    etc_draw_keep<8>(kept, seed, offset, first, p);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
    uint32_t o[4];
#pragma unroll
    for (int z = 0; z < 4; z++)
        o[z] = w[z] & ((kept[2 * z] ? 0x0000ffffu : 0u) | (kept[2 * z + 1] ? 0xffff0000u : 0u));
    return make_uint4(o[0], o[1], o[2], o[3]);
}

__global__ void __launch_bounds__(XM_THREADS)
    lora_dropout_xa_mma(member_outputs outs, int64_t ld, const __nv_bfloat16 *x,
                        const __nv_bfloat16 *a, int n, int in, int k, int r, float p,
                        float scale, uint64_t seed, member_offsets off) {
    __shared__ __align__(16) __nv_bfloat16 sx[MAX_K][XM_ROWS][XM_LDS];
    __shared__ __align__(16) __nv_bfloat16 sa[MAX_KR][XM_LDS];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int strip = warp & 3, half = warp >> 2, r0 = blockIdx.x * XM_ROWS;
    const int kr = k * r, tiles = r / 8, mat = lane >> 3, rr = lane & 7;
    float acc[MAX_K][XM_MAX_TILES][4];
#pragma unroll
    for (int j = 0; j < MAX_K; j++)
#pragma unroll
        for (int u = 0; u < XM_MAX_TILES; u++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[j][u][e] = 0.0f;

    uint4 next[XM_PACKS];  // the next chunk's x packs, in flight during the products
    auto load = [&](int c0) {
#pragma unroll
        for (int q = 0; q < XM_PACKS; q++) {
            const int e = tid + q * XM_THREADS, i = e / (XM_COLS / 8), c = c0 + (e % (XM_COLS / 8)) * 8;
            next[q] = r0 + i < n && c < in
                          ? *reinterpret_cast<const uint4 *>(x + (int64_t)(r0 + i) * in + c)
                          : make_uint4(0, 0, 0, 0);
        }
    };
    load(0);
    for (int c0 = 0; c0 < in; c0 += XM_COLS) {
        __syncthreads(); /* the previous chunk's products are done */
#pragma unroll
        for (int q = 0; q < XM_PACKS; q++) {
            const int e = tid + q * XM_THREADS, i = e / (XM_COLS / 8), cc = (e % (XM_COLS / 8)) * 8;
            const int row = r0 + i, col = c0 + cc;
            const bool valid = row < n && col < in;
#pragma unroll
            for (int j = 0; j < MAX_K; j++) {
                if (j >= k) break;
                *reinterpret_cast<uint4 *>(&sx[j][i][cc]) =
                    valid ? dropout_pack8(next[q], seed, off.v[j], (int64_t)row * in + col, p)
                          : make_uint4(0, 0, 0, 0);
            }
        }
        for (int e = tid; e < kr * (XM_COLS / 8); e += XM_THREADS) {
            const int t = e / (XM_COLS / 8), cc = (e % (XM_COLS / 8)) * 8;
            *reinterpret_cast<uint4 *>(&sa[t][cc]) =
                c0 + cc < in ? *reinterpret_cast<const uint4 *>(a + (int64_t)t * in + c0 + cc)
                             : make_uint4(0, 0, 0, 0);
        }
        __syncthreads();
        if (c0 + XM_COLS < in) load(c0 + XM_COLS);
#pragma unroll
        for (int j = 0; j < MAX_K; j++) {
            if (j >= k) break;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int ks = (2 * half + h) * 16;
                uint32_t af[4];
                etc_ldmatrix_x4(af, &sx[j][strip * 16 + (mat & 1) * 8 + rr][ks + (mat >> 1) * 8]);
#pragma unroll
                for (int u = 0; u < XM_MAX_TILES; u += 2) {
                    if (u >= tiles) break;
                    // B of tiles u, u + 1 (rows of A = outputs; the row past a member's
                    // last tile belongs to the next member or is unused: never summed)
                    uint32_t bm[4];
                    etc_ldmatrix_x4(bm, &sa[j * r + u * 8 + (mat >> 1) * 8 + rr][ks + (mat & 1) * 8]);
                    etc_mma_bf16(acc[j][u], af, bm[0], bm[1]);
                    if (u + 1 < tiles) etc_mma_bf16(acc[j][u + 1], af, bm[2], bm[3]);
                }
            }
        }
    }
    // warps 4..7 -> shared memory (over the spent x tiles) -> warps 0..3 add and store
    __syncthreads();
    float *partial = reinterpret_cast<float *>(&sx[0][0][0]);  // [4 strips][32 lanes][k·tiles·4]
    const int per_lane = k * tiles * 4;
    if (half == 1) {
#pragma unroll
        for (int j = 0; j < MAX_K; j++)
#pragma unroll
            for (int u = 0; u < XM_MAX_TILES; u++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (j < k && u < tiles) partial[(strip * 32 + lane) * per_lane + (j * tiles + u) * 4 + e] = acc[j][u][e];
    }
    __syncthreads();
    if (half == 1) return;
    const int g = lane >> 2, t2 = (lane & 3) * 2;
#pragma unroll
    for (int j = 0; j < MAX_K; j++)
#pragma unroll
        for (int u = 0; u < XM_MAX_TILES; u++) {
            if (j >= k || u >= tiles) break;
            float c[4];
#pragma unroll
            for (int e = 0; e < 4; e++)
                c[e] = (acc[j][u][e] + partial[(strip * 32 + lane) * per_lane + (j * tiles + u) * 4 + e]) * scale;
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int row = r0 + strip * 16 + g + hr * 8;
                if (row >= n) continue;
                __nv_bfloat162 v2 = __floats2bfloat162_rn(c[2 * hr], c[2 * hr + 1]);
                *reinterpret_cast<__nv_bfloat162 *>(outs.xa[j] + (int64_t)row * ld + u * 8 + t2) = v2;
            }
        }
}

}  // namespace

extern "C" int etc_lora_dropout_xa_supported(int in, int k, int r) {
    return in > 0 && in % 4 == 0 && k >= 1 && k <= MAX_K && r >= 1 && r <= XA_MAX_R &&
           k * r <= MAX_KR;
}

extern "C" int etc_lora_dropout_xa_bf16(etc_bf16 *const *xa, int64_t ld, const etc_bf16 *x,
                                        const etc_bf16 *a, int n, int in, int k, int r, float p,
                                        uint64_t seed, const uint64_t *offsets) {
    if (n < 0 || !etc_lora_dropout_xa_supported(in, k, r) || ld < r)
        return etc_fail("etc_lora_dropout_xa_bf16: unsupported shape n=%d in=%d k=%d r=%d "
                        "(in a multiple of 4, k <= %d, r <= %d, k·r <= %d)",
                        n, in, k, r, MAX_K, XA_MAX_R, MAX_KR);
    if (n == 0) return 0;
    member_offsets off = {{0, 0, 0}};
    member_outputs outs = {{nullptr, nullptr, nullptr}};
    for (int j = 0; j < k; j++) off.v[j] = offsets[j], outs.xa[j] = (__nv_bfloat16 *)xa[j];
    bool mma = r % 8 == 0 && r <= 8 * XM_MAX_TILES && in % 8 == 0 && ld % 2 == 0 &&
               etc_aligned16(x, a);
    for (int j = 0; j < k; j++) mma = mma && ((uintptr_t)xa[j] & 3) == 0;
    if (mma) {
        const unsigned blocks = (unsigned)((n + XM_ROWS - 1) / XM_ROWS);
        lora_dropout_xa_mma<<<blocks, XM_THREADS, 0, etc_stream()>>>(
            outs, ld, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)a, n, in, k, r,
            etc_dropout_threshold(p), etc_dropout_scale(p), seed, off);
        return etc_check_launch("etc_lora_dropout_xa_bf16");
    }
    const unsigned blocks = (unsigned)((n + XA_ROWS - 1) / XA_ROWS);
    lora_dropout_xa<<<blocks, k * XA_ROWS, 0, etc_stream()>>>(
        outs, ld, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)a, n, in, k, r,
        etc_dropout_threshold(p), etc_dropout_scale(p), seed, off);
    return etc_check_launch("etc_lora_dropout_xa_bf16");
}

// ---- the weight gradient: dA of every member from its own masked x, x read once ----
namespace {

// A block: 64 columns of x (warp w of 4 owns columns 16·w ..), one split of the rows,
// walked in chunks of 64 rows. Per chunk the threads stage each member's masked x
// (kept values unscaled) and the chunk's dxa rows in shared memory; then member j's
// dA tile [r × 64] += dxa_jᵀ·drop_j(x) by mma.sync: A operands (m = output row t,
// k = row of x) come from the dxa tile read transposed, B operands from the masked x
// tile read transposed. Each split writes its scaled fp32 partial [k·r, 64 columns]
// to scratch; lora_dropout_da_sum adds the splits in order into da.
constexpr int DA_ROWS = 64, DA_COLS = 64, DA_LDS = 72, DA_THREADS = 128, DA_MAX_MT = 4;

__global__ void __launch_bounds__(DA_THREADS)
    lora_dropout_da(float *partial, const __nv_bfloat16 *dxa, int64_t ld_dxa,
                    const __nv_bfloat16 *x, int n, int in, int k, int r, int rows_per_split,
                    float p, float scale, uint64_t seed, member_offsets off) {
    __shared__ __align__(16) __nv_bfloat16 sx[MAX_K][DA_ROWS][DA_LDS];
    __shared__ __align__(16) __nv_bfloat16 sd[DA_ROWS][DA_LDS];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, mat = lane >> 3, rr = lane & 7;
    const int c0 = blockIdx.x * DA_COLS, split = blockIdx.y, kr = k * r, mts = r / 16;
    const int row_begin = split * rows_per_split;
    const int row_end = row_begin + rows_per_split < n ? row_begin + rows_per_split : n;
    float acc[DA_MAX_MT][2][4];  // m-tiles of all members (k·r / 16 <= 4), 2 n8 tiles
#pragma unroll
    for (int m = 0; m < DA_MAX_MT; m++)
#pragma unroll
        for (int u = 0; u < 2; u++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[m][u][e] = 0.0f;
    for (int i0 = row_begin; i0 < row_end; i0 += DA_ROWS) {
        __syncthreads(); /* the previous chunk's products are done */
        for (int e = tid; e < DA_ROWS * (DA_COLS / 8); e += DA_THREADS) {
            const int i = e / (DA_COLS / 8), cc = (e % (DA_COLS / 8)) * 8;
            const int row = i0 + i, col = c0 + cc;
            const bool valid = row < row_end && col < in;
            const uint4 v = valid ? *reinterpret_cast<const uint4 *>(x + (int64_t)row * in + col)
                                  : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int j = 0; j < MAX_K; j++) {
                if (j >= k) break;
                *reinterpret_cast<uint4 *>(&sx[j][i][cc]) =
                    valid ? dropout_pack8(v, seed, off.v[j], (int64_t)row * in + col, p)
                          : make_uint4(0, 0, 0, 0);
            }
        }
        for (int e = tid; e < DA_ROWS * (kr / 8); e += DA_THREADS) {
            const int i = e / (kr / 8), cc = (e % (kr / 8)) * 8, row = i0 + i;
            *reinterpret_cast<uint4 *>(&sd[i][cc]) =
                row < row_end ? *reinterpret_cast<const uint4 *>(dxa + (int64_t)row * ld_dxa + cc)
                              : make_uint4(0, 0, 0, 0);
        }
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < DA_ROWS / 16; ks++)
#pragma unroll
            for (int m = 0; m < DA_MAX_MT; m++) {
                if (m >= k * mts) break;
                const int j = m / mts, t0 = m * 16;  // member j's output rows t0 .. t0 + 15
                uint32_t af[4], bm[4];
                // A (m = t, k = row): matrices (t +0, row +0), (t +8, +0), (+0, +8), (+8, +8)
                etc_ldmatrix_x4_trans(af, &sd[ks * 16 + (mat >> 1) * 8 + rr][t0 + (mat & 1) * 8]);
                // B (k = row, n = column) of the warp's two n8 tiles
                etc_ldmatrix_x4_trans(bm, &sx[j][ks * 16 + (mat & 1) * 8 + rr][warp * 16 + (mat >> 1) * 8]);
                etc_mma_bf16(acc[m][0], af, bm[0], bm[1]);
                etc_mma_bf16(acc[m][1], af, bm[2], bm[3]);
            }
    }
    const int g = lane >> 2, t2 = (lane & 3) * 2;
    float *dst = partial + (int64_t)split * kr * in;
#pragma unroll
    for (int m = 0; m < DA_MAX_MT; m++) {
        if (m >= k * mts) break;
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int col = c0 + warp * 16 + u * 8 + t2;
            if (col >= in) continue;  // in is a multiple of 8: both columns or neither
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int t = m * 16 + g + hr * 8;
                *reinterpret_cast<float2 *>(dst + (int64_t)t * in + col) =
                    make_float2(acc[m][u][2 * hr] * scale, acc[m][u][2 * hr + 1] * scale);
            }
        }
    }
}

// da[e] += Σ_s partial[s][e], s in order.
__global__ void lora_dropout_da_sum(float *da, const float *partial, int64_t count, int splits) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < count;
         e += (int64_t)gridDim.x * blockDim.x) {
        float sum = 0.0f;
        for (int s = 0; s < splits; s++) sum += partial[(int64_t)s * count + e];
        da[e] += sum;
    }
}

}  // namespace

extern "C" int etc_lora_dropout_da_supported(int in, int k, int r) {
    return in > 0 && in % 8 == 0 && k >= 1 && k <= MAX_K && r >= 16 && r % 16 == 0 &&
           k * r <= 16 * DA_MAX_MT;
}

extern "C" int etc_lora_dropout_da_bf16(float *da, const etc_bf16 *dxa, int64_t ld_dxa,
                                        const etc_bf16 *x, int n, int in, int k, int r, float p,
                                        uint64_t seed, const uint64_t *offsets, void *scratch,
                                        size_t scratch_bytes) {
    if (n < 0 || !etc_lora_dropout_da_supported(in, k, r) || ld_dxa < (int64_t)k * r || ld_dxa % 8)
        return etc_fail("etc_lora_dropout_da_bf16: unsupported shape n=%d in=%d k=%d r=%d "
                        "ld_dxa=%lld (in a multiple of 8, r of 16, k·r <= %d, ld_dxa of 8)",
                        n, in, k, r, (long long)ld_dxa, 16 * DA_MAX_MT);
    if (!etc_aligned16(dxa, x, scratch))
        return etc_fail("etc_lora_dropout_da_bf16: dxa, x and scratch must be 16-byte aligned");
    if (n == 0) return 0;
    const int col_tiles = (in + DA_COLS - 1) / DA_COLS, chunks = (n + DA_ROWS - 1) / DA_ROWS;
    const size_t per_split = (size_t)k * r * in * sizeof(float);
    // about two blocks an SM, never more splits than row chunks or than scratch holds
    int splits = (2 * etc_sm_count() + col_tiles - 1) / col_tiles;
    if (splits > chunks) splits = chunks;
    if ((size_t)splits * per_split > scratch_bytes) splits = (int)(scratch_bytes / per_split);
    if (splits < 1)
        return etc_fail("etc_lora_dropout_da_bf16: %zu bytes of scratch hold no split's %zu "
                        "bytes of partial sums", scratch_bytes, per_split);
    if (splits > 65535) splits = 65535;
    const int rows_per_split = (chunks + splits - 1) / splits * DA_ROWS;
    splits = (n + rows_per_split - 1) / rows_per_split;
    member_offsets off = {{0, 0, 0}};
    for (int j = 0; j < k; j++) off.v[j] = offsets[j];
    float *partial = (float *)scratch;
    dim3 grid((unsigned)col_tiles, (unsigned)splits);
    lora_dropout_da<<<grid, DA_THREADS, 0, etc_stream()>>>(
        partial, (const __nv_bfloat16 *)dxa, ld_dxa, (const __nv_bfloat16 *)x, n, in, k, r,
        rows_per_split, etc_dropout_threshold(p), etc_dropout_scale(p), seed, off);
    if (etc_check_launch("etc_lora_dropout_da_bf16")) return -1;
    const int64_t count = (int64_t)k * r * in;
    lora_dropout_da_sum<<<etc_grid(count, 256), 256, 0, etc_stream()>>>(da, partial, count, splits);
    return etc_check_launch("etc_lora_dropout_da_bf16 (sum)");
}
