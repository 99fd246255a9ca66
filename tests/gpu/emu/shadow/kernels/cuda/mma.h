// CPU-emulation twin of kernels/cuda/mma.h (same functions, same fragment
// layouts): the warp's lanes deposit their registers, each lane computes its own
// outputs from the gathered tile. See the real file for the layouts.
#ifndef EHRTUNE_CUDA_MMA_H
#define EHRTUNE_CUDA_MMA_H

#include <cuda_bf16.h>
#include <stdint.h>

namespace emu_mma {
static inline float lo(uint32_t r) { return __uint_as_float(r << 16); }
static inline float hi(uint32_t r) { return __uint_as_float(r & 0xffff0000u); }
struct slot { uint32_t a[4], b[2]; };
static void mma_fn(const unsigned char *slots, int sb, int lane, void *out, const void *) {
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        slot s;
        memcpy(&s, slots + l * sb, sizeof s);
        const int g = l / 4, t = l % 4;
        A[g][2 * t] = lo(s.a[0]), A[g][2 * t + 1] = hi(s.a[0]);
        A[g + 8][2 * t] = lo(s.a[1]), A[g + 8][2 * t + 1] = hi(s.a[1]);
        A[g][2 * t + 8] = lo(s.a[2]), A[g][2 * t + 9] = hi(s.a[2]);
        A[g + 8][2 * t + 8] = lo(s.a[3]), A[g + 8][2 * t + 9] = hi(s.a[3]);
        B[2 * t][g] = lo(s.b[0]), B[2 * t + 1][g] = hi(s.b[0]);
        B[2 * t + 8][g] = lo(s.b[1]), B[2 * t + 9][g] = hi(s.b[1]);
    }
    const int g = lane / 4, t = lane % 4;
    float *d = (float *)out;
    for (int e = 0; e < 4; e++) {
        const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
        float acc = 0.0f;
        for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
        d[e] += acc;
    }
}
static void ldsm_trans_fn(const unsigned char *slots, int sb, int lane, void *out, const void *) {
    const int g = lane / 4, t = lane % 4;
    uint32_t *r = (uint32_t *)out;
    for (int m = 0; m < 4; m++) {
        const unsigned short *row0, *row1;
        memcpy(&row0, slots + (m * 8 + 2 * t) * sb, sizeof row0);
        memcpy(&row1, slots + (m * 8 + 2 * t + 1) * sb, sizeof row1);
        r[m] = (uint32_t)row0[g] | ((uint32_t)row1[g] << 16);
    }
}
static void ldsm_fn(const unsigned char *slots, int sb, int lane, void *out, const void *) {
    const int g = lane / 4, t = lane % 4;
    uint32_t *r = (uint32_t *)out;
    for (int m = 0; m < 4; m++) {
        const unsigned short *row;
        memcpy(&row, slots + (m * 8 + g) * sb, sizeof row);
        r[m] = (uint32_t)row[2 * t] | ((uint32_t)row[2 * t + 1] << 16);
    }
}
}  // namespace emu_mma

static inline void etc_mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    emu_mma::slot s;
    memcpy(s.a, a, sizeof s.a);
    s.b[0] = b0, s.b[1] = b1;
    float acc[4] = {d[0], d[1], d[2], d[3]};
    emu::warp_exchange(0xffffffffu, &s, sizeof s, acc, emu_mma::mma_fn, nullptr);
    for (int e = 0; e < 4; e++) d[e] = acc[e];
}

static inline void etc_ldmatrix_x4(uint32_t (&r)[4], const void *row_addr) {
    if (((uintptr_t)row_addr & 15) != 0) emu::fail("ldmatrix row address not 16-byte aligned");
    if ((const unsigned char *)row_addr < (const unsigned char *)emu::dyn_smem() ||
        (const unsigned char *)row_addr >= (const unsigned char *)emu::dyn_smem() + 232 * 1024)
        emu::fail("ldmatrix address outside shared memory");
    uint32_t out[4];
    emu::warp_exchange(0xffffffffu, &row_addr, sizeof row_addr, out, emu_mma::ldsm_fn, nullptr);
    for (int i = 0; i < 4; i++) r[i] = out[i];
}

static inline void etc_ldmatrix_x4_trans(uint32_t (&r)[4], const void *row_addr) {
    if (((uintptr_t)row_addr & 15) != 0) emu::fail("ldmatrix row address not 16-byte aligned");
    if ((const unsigned char *)row_addr < (const unsigned char *)emu::dyn_smem() ||
        (const unsigned char *)row_addr >= (const unsigned char *)emu::dyn_smem() + 232 * 1024)
        emu::fail("ldmatrix address outside shared memory");
    uint32_t out[4];
    emu::warp_exchange(0xffffffffu, &row_addr, sizeof row_addr, out, emu_mma::ldsm_trans_fn, nullptr);
    for (int i = 0; i < 4; i++) r[i] = out[i];
}

// cp.async: the copy is recorded at issue (source bytes captured) and lands in
// shared memory only when this thread waits, so a read before the wait, or by
// another thread before a barrier that follows the wait, sees stale data.
static inline void etc_cp_async16(void *smem_dst, const void *gmem_src, bool valid) {
    if (((uintptr_t)smem_dst & 15) || (valid && ((uintptr_t)gmem_src & 15)))
        emu::fail("cp.async with an address not 16-byte aligned");
    emu::cp_async(smem_dst, valid ? gmem_src : nullptr, 16);
}
static inline void etc_cp_async_commit() { emu::cp_async_commit(); }
template <int N> static inline void etc_cp_async_wait() { emu::cp_async_wait(N); }

static inline uint32_t etc_pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

#endif
