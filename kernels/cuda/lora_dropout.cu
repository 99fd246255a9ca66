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
    const unsigned blocks = (unsigned)((n + XA_ROWS - 1) / XA_ROWS);
    lora_dropout_xa<<<blocks, k * XA_ROWS, 0, etc_stream()>>>(
        outs, ld, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)a, n, in, k, r,
        etc_dropout_threshold(p), etc_dropout_scale(p), seed, off);
    return etc_check_launch("etc_lora_dropout_xa_bf16");
}
