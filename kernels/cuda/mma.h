// Warp-level tensor-core primitives (sm_80+) for the hand-written bf16 kernels:
// mma.sync m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix. Fragment layouts
// (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4, t = lane % 4:
//   A (16×16, row): a[0] = (row g,   k 2t..2t+1)   a[1] = (row g+8, k 2t..2t+1)
//                   a[2] = (row g,   k 2t+8..+9)   a[3] = (row g+8, k 2t+8..+9)
//   B (16×8, col):  b[0] = (k 2t..2t+1, col g)     b[1] = (k 2t+8..+9, col g)
//   C/D (16×8):     c[0..1] = (row g, cols 2t, 2t+1), c[2..3] = (row g+8, same cols)
// Two bf16 in one 32-bit register: the lower index in the low half.
// tests/gpu/emu/shadow/kernels/cuda/mma.h is the CPU-emulation twin of this file.
#ifndef EHRTUNE_CUDA_MMA_H
#define EHRTUNE_CUDA_MMA_H

#include <cuda_bf16.h>
#include <stdint.h>

// d += a·b for one 16×8×16 tile.
__device__ __forceinline__ void etc_mma_bf16(float (&d)[4], const uint32_t (&a)[4],
                                             uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8×8 bf16 matrices from shared memory: lane l gives the address of row
// (l % 8) of matrix l / 8 (16 contiguous, 16-byte aligned bytes); register i
// receives, of matrix i, elements (row g, col 2t) and (row g, col 2t+1).
__device__ __forceinline__ void etc_ldmatrix_x4(uint32_t (&r)[4], const void *row_addr) {
    const unsigned addr = (unsigned)__cvta_generic_to_shared(row_addr);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}

// Four 8×8 bf16 matrices from shared memory, transposed: lane l gives the address
// of row (l % 8) of matrix l / 8 (16 contiguous, 16-byte aligned bytes); register i
// receives, of matrix i, elements (row 2t, col g) and (row 2t+1, col g). For a
// row-major [k][n] tile this is the B fragment of mma (k = row, n = col).
__device__ __forceinline__ void etc_ldmatrix_x4_trans(uint32_t (&r)[4], const void *row_addr) {
    const unsigned addr = (unsigned)__cvta_generic_to_shared(row_addr);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}

// Asynchronous 16-byte global -> shared copy (cp.async, L2 only). valid = false
// writes 16 zero bytes instead (src-size 0: nothing is read from src).
__device__ __forceinline__ void etc_cp_async16(void *smem_dst, const void *gmem_src, bool valid) {
    const unsigned addr = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(gmem_src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
// Closes the group of copies issued so far by this thread.
__device__ __forceinline__ void etc_cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's groups are still in flight. Other threads'
// copies are visible only after a __syncthreads that follows their waits.
template <int N> __device__ __forceinline__ void etc_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ uint32_t etc_pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

#endif
