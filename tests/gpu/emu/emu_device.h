// CUDA emulation on the CPU (a dev aid, docs/cuda.md, "CPU emulation"): what kernel code
// sees. Every CUDA thread of a block is a fiber on one host thread; __syncthreads
// and every warp collective (shuffles, ballots, mma, ldmatrix) are rendezvous
// points where the fiber yields until all participants arrive. Blocks run one
// after another; shared memory is a per-block arena poisoned with 0xFF (NaN) at
// block start, and device memory from cudaMalloc is poisoned the same way.
#ifndef EHRTUNE_EMU_DEVICE_H
#define EHRTUNE_EMU_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <tuple>
#include <type_traits>

#include "emu_runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __CUDACC_EMU__ 1

// ---- vector types ----
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(8) uint2 { unsigned x, y; };
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline float2 make_float2(float a, float b) { return {a, b}; }
static inline int4 make_int4(int a, int b, int c, int d) { return {a, b, c, d}; }
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
static inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }

// ---- bf16 ----
struct __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(float f);  // round to nearest even
    operator float() const {
        uint32_t u = (uint32_t)__x << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
};
struct alignas(4) __nv_bfloat162 { __nv_bfloat16 x, y; };
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;
static inline unsigned short emu_f2bf_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return 0x7FC0;
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
inline __nv_bfloat16::__nv_bfloat16(float f) : __x(emu_f2bf_bits(f)) {}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
static inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
static inline float __bfloat162float(__nv_bfloat16 h) { return (float)h; }
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    return {__nv_bfloat16(a), __nv_bfloat16(b)};
}
static inline __nv_bfloat162 __float22bfloat162_rn(float2 v) { return __floats2bfloat162_rn(v.x, v.y); }
static inline float2 __bfloat1622float2(__nv_bfloat162 v) { return {(float)v.x, (float)v.y}; }
static inline float __low2float(__nv_bfloat162 v) { return (float)v.x; }
static inline float __high2float(__nv_bfloat162 v) { return (float)v.y; }
static inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return {a, b}; }

// ---- fast math, bit casts, integer helpers ----
// glibc declares (but does not export) __expf and __logf: macros instead.
#define __expf(x) expf(x)
#define __logf(x) logf(x)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __saturatef(float x) { return x < 0.f ? 0.f : x > 1.f ? 1.f : x; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float exp2f_emu(float x) { return exp2f(x); }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline int __float_as_int(float f) { int u; memcpy(&u, &f, 4); return u; }
static inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
template <typename T> static inline T __ldg(const T *p) { return *p; }
// CUDA's device min/max overloads (integral and floating, mixed widths).
template <typename A, typename B>
static inline typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a < (C)b ? (C)a : (C)b;
}
template <typename A, typename B>
static inline typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a > (C)b ? (C)a : (C)b;
}

// ---- the thread model ----
namespace emu {
struct Block;
struct Fiber;
extern Fiber *g_cur;
extern uint3 g_block_idx;
extern dim3 g_block_dim, g_grid_dim;
uint3 thread_idx();
int lane_id();
void syncthreads();
// Warp rendezvous among the live lanes in `mask`: every lane deposits `bytes` of
// `in` in slot lane; after all arrive, `fn(slots, lane, out)` runs for each lane
// (reading any slot), then a second rendezvous protects the slots.
void warp_exchange(unsigned mask, const void *in, int bytes, void *out,
                   void (*fn)(const unsigned char *slots, int slot_bytes, int lane, void *out,
                              const void *ctx),
                   const void *ctx);
unsigned live_mask_of_my_warp();
void *shared_at(const void *site, size_t bytes, size_t align);
// cp.async model: src NULL copies zeros.
void cp_async(void *dst, const void *src, int bytes);
void cp_async_commit();
void cp_async_wait(int groups_left);
void *dyn_smem();
size_t dyn_smem_bytes();
void fail(const char *fmt, ...);

typedef void (*block_fn)(void *ctx);
// Runs fn(ctx) as every thread of every block of the grid (returns a CUDA error).
cudaError_t run_grid(dim3 grid, dim3 block, size_t smem, const void *kernel_id, block_fn fn,
                     void *ctx);
cudaError_t set_max_dyn_smem(const void *kernel_id, int bytes);
}  // namespace emu

#define threadIdx (emu::thread_idx())
#define blockIdx (emu::g_block_idx)
#define blockDim (emu::g_block_dim)
#define gridDim (emu::g_grid_dim)
static const int warpSize = 32;

static inline void __syncthreads() { emu::syncthreads(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    emu::warp_exchange(mask, nullptr, 0, nullptr, nullptr, nullptr);
}
static inline void __threadfence() {}
static inline void __threadfence_block() {}

namespace emu {
// Each lane deposits its value and its own (mode, arg, width), then reads its source.
template <typename T>
void shfl_fn(const unsigned char *slots, int sb, int lane, void *out, const void *) {
    T v;
    int mode, arg, width;
    memcpy(&mode, slots + lane * sb + sizeof(T), 4);
    memcpy(&arg, slots + lane * sb + sizeof(T) + 4, 4);
    memcpy(&width, slots + lane * sb + sizeof(T) + 8, 4);
    const int base = lane & ~(width - 1), sub = lane & (width - 1);
    int src = lane;
    if (mode == 0) src = base + (arg & (width - 1));               // shfl (idx)
    else if (mode == 1) src = base + ((sub ^ arg) & (width - 1));   // xor
    else if (mode == 2) src = sub + arg < width ? lane + arg : lane; // down
    else src = sub - arg >= 0 ? lane - arg : lane;                   // up
    memcpy(&v, slots + src * sb, sizeof(T));
    memcpy(out, &v, sizeof(T));
}
template <typename T> T shfl(unsigned mask, T v, int mode, int arg, int width) {
    unsigned char in[sizeof(T) + 12];
    memcpy(in, &v, sizeof(T));
    memcpy(in + sizeof(T), &mode, 4);
    memcpy(in + sizeof(T) + 4, &arg, 4);
    memcpy(in + sizeof(T) + 8, &width, 4);
    T out;
    warp_exchange(mask, in, sizeof in, &out, shfl_fn<T>, nullptr);
    return out;
}
}  // namespace emu

template <typename T> static inline T __shfl_sync(unsigned m, T v, int src, int w = 32) {
    return emu::shfl<T>(m, v, 0, src, w);
}
template <typename T> static inline T __shfl_xor_sync(unsigned m, T v, int x, int w = 32) {
    return emu::shfl<T>(m, v, 1, x, w);
}
template <typename T> static inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) {
    return emu::shfl<T>(m, v, 2, (int)d, w);
}
template <typename T> static inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32) {
    return emu::shfl<T>(m, v, 3, (int)d, w);
}
namespace emu {
void ballot_fn(const unsigned char *slots, int sb, int lane, void *out, const void *ctx);
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    int in[2] = {pred != 0, 1};
    unsigned out;
    emu::warp_exchange(mask, in, sizeof in, &out, emu::ballot_fn, &mask);
    return out;
}
static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) {
    return __ballot_sync(mask, pred) == (mask & emu::live_mask_of_my_warp());
}

// Atomics: fibers of one host thread never interleave inside an expression.
template <typename T> static inline T atomicAdd(T *p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> static inline T atomicMax(T *p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <typename T> static inline T atomicMin(T *p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <typename T> static inline T atomicExch(T *p, T v) { T old = *p; *p = v; return old; }
template <typename T> static inline T atomicCAS(T *p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}

// ---- launches: `k<<<g, b, s, st>>>(args)` is rewritten to
// `emu::launch(k, g, b, s, st)(args)` by launch_rewrite.py ----
namespace emu {
template <typename... P> struct launcher {
    void (*kernel)(P...);
    dim3 grid, block;
    size_t smem;
    template <typename... A> void operator()(A &&...args) {
        std::tuple<typename std::decay<P>::type...> bound((P)args...);
        struct ctx_t {
            void (*k)(P...);
            std::tuple<typename std::decay<P>::type...> *args;
        } c{kernel, &bound};
        run_grid(grid, block, smem, (const void *)kernel,
                 [](void *p) {
                     ctx_t *c = (ctx_t *)p;
                     std::apply(c->k, *c->args);
                 },
                 &c);
    }
};
template <typename... P>
launcher<P...> launch(void (*k)(P...), dim3 g, dim3 b, size_t smem = 0, cudaStream_t = nullptr) {
    return launcher<P...>{k, g, b, smem};
}
}  // namespace emu

template <typename F> static inline cudaError_t cudaFuncSetAttribute(F f, cudaFuncAttribute a, int v) {
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) return emu::set_max_dyn_smem((const void *)f, v);
    return cudaSuccess;
}

// `__shared__ T name[N]...;` and `extern __shared__ T name[];` are rewritten by
// launch_rewrite.py into these (a per-block arena, poisoned at block start).
#define EMU_SHARED(TYPE, NAME, DIMS)                                                   \
    typedef TYPE emu_shared_t_##NAME DIMS;                                             \
    static const char emu_site_##NAME = 0;                                             \
    emu_shared_t_##NAME &NAME = *(emu_shared_t_##NAME *)emu::shared_at(                \
        &emu_site_##NAME, sizeof(emu_shared_t_##NAME), alignof(emu_shared_t_##NAME))
#define EMU_EXTERN_SHARED(TYPE, NAME) TYPE *NAME = (TYPE *)emu::dyn_smem()

#endif
