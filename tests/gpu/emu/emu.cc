// CUDA emulation on the CPU (docs/cuda.md, "CPU emulation"): fibers for CUDA threads,
// the runtime API, device memory with a limit, NaN-poisoned allocations.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include <map>
#include <vector>

#include "emu_device.h"

namespace emu {

enum { READY, WAIT_BLOCK, WAIT_WARP, DONE };
#define SLOT_BYTES 64
#define STACK_BYTES (256 * 1024)
#define ARENA_BYTES (232 * 1024)

struct PendingCopy {
    void *dst;
    unsigned char bytes[16];
    int n, group;
};

struct Fiber {
    ucontext_t ctx;
    uint3 tid;
    int lane, warp, state;
    char *stack;
    std::vector<PendingCopy> copies; // cp.async issued, not yet waited for
    int open_group;                  // group number the next copies join
};

struct Warp {
    unsigned live, pending;
    int arrived;
    unsigned char slots[32][SLOT_BYTES];
};

struct Block {
    std::vector<Fiber> f;
    int n, alive, bar_arrived, nwarps;
    Warp warps[32];
    ucontext_t sched;
    block_fn fn;
    void *ctx;
    std::vector<std::pair<const void *, size_t>> sites;
    size_t arena_used, dyn_bytes;
};

Fiber *g_cur;
uint3 g_block_idx;
dim3 g_block_dim, g_grid_dim;
static Block g_blk;
alignas(128) static unsigned char g_arena[ARENA_BYTES];
static std::vector<char *> g_stack_pool;
static std::map<const void *, int> g_max_dyn;
static cudaError_t g_last = cudaSuccess;

void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "emu: fault in block (%u,%u,%u) thread (%u,%u,%u): ", g_block_idx.x,
            g_block_idx.y, g_block_idx.z, g_cur ? g_cur->tid.x : 0, g_cur ? g_cur->tid.y : 0,
            g_cur ? g_cur->tid.z : 0);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

uint3 thread_idx() { return g_cur->tid; }
int lane_id() { return g_cur->lane; }

static void wait(int state) {
    g_cur->state = state;
    swapcontext(&g_cur->ctx, &g_blk.sched);
}

static void release_block() {
    for (auto &f : g_blk.f)
        if (f.state == WAIT_BLOCK) f.state = READY;
    g_blk.bar_arrived = 0;
}

static void release_warp(int w) {
    for (auto &f : g_blk.f)
        if (f.warp == w && f.state == WAIT_WARP) f.state = READY;
    g_blk.warps[w].arrived = 0;
}

void syncthreads() {
    if (++g_blk.bar_arrived == g_blk.alive) release_block();
    else wait(WAIT_BLOCK);
}

static void warp_rendezvous(unsigned mask) {
    Warp &w = g_blk.warps[g_cur->warp];
    const unsigned part = mask & w.live, me = 1u << g_cur->lane;
    if (!(part & me)) fail("warp collective with lane %d outside its mask %08x", g_cur->lane, mask);
    if (w.arrived == 0) w.pending = part;
    else if (w.pending != part)
        fail("warp collective masks differ (%08x vs %08x): divergent collectives", w.pending, part);
    if (++w.arrived == __builtin_popcount(part)) release_warp(g_cur->warp);
    else wait(WAIT_WARP);
}

unsigned live_mask_of_my_warp() { return g_blk.warps[g_cur->warp].live; }

void warp_exchange(unsigned mask, const void *in, int bytes, void *out,
                   void (*fn)(const unsigned char *, int, int, void *, const void *),
                   const void *ctx) {
    if (bytes > SLOT_BYTES) fail("warp_exchange of %d bytes", bytes);
    Warp &w = g_blk.warps[g_cur->warp];
    if (bytes) memcpy(w.slots[g_cur->lane], in, bytes);
    warp_rendezvous(mask);
    if (fn) fn(&w.slots[0][0], SLOT_BYTES, g_cur->lane, out, ctx);
    warp_rendezvous(mask);
}

void ballot_fn(const unsigned char *slots, int sb, int lane, void *out, const void *ctx) {
    const unsigned mask = *(const unsigned *)ctx & g_blk.warps[g_cur->warp].live;
    unsigned r = 0;
    for (int l = 0; l < 32; l++)
        if (mask & (1u << l)) {
            int pred;
            memcpy(&pred, slots + l * sb, 4);
            if (pred) r |= 1u << l;
        }
    *(unsigned *)out = r;
}

void *shared_at(const void *site, size_t bytes, size_t align) {
    for (auto &s : g_blk.sites)
        if (s.first == site) return g_arena + s.second;
    (void)align;
    size_t off = (g_blk.arena_used + 127) & ~(size_t)127;
    if (off + bytes > ARENA_BYTES) fail("static shared memory over %d bytes", ARENA_BYTES);
    const size_t dyn_end = (g_blk.dyn_bytes + 127) & ~(size_t)127;
    if (off + bytes - dyn_end > 48 * 1024) fail("static shared memory over 48 KB");
    memset(g_arena + off, 0xFF, bytes);
    g_blk.sites.push_back({site, off});
    g_blk.arena_used = off + bytes;
    return g_arena + off;
}

void cp_async(void *dst, const void *src, int bytes) {
    PendingCopy c;
    c.dst = dst, c.n = bytes, c.group = g_cur->open_group;
    if (src) memcpy(c.bytes, src, bytes);
    else memset(c.bytes, 0, bytes);
    g_cur->copies.push_back(c);
}
void cp_async_commit() { g_cur->open_group++; }
void cp_async_wait(int groups_left) {
    // groups numbered < open_group - groups_left are complete
    std::vector<PendingCopy> keep;
    for (auto &c : g_cur->copies) {
        if (c.group < g_cur->open_group - groups_left) memcpy(c.dst, c.bytes, c.n);
        else keep.push_back(c);
    }
    g_cur->copies.swap(keep);
}

void *dyn_smem() { return g_arena; }
size_t dyn_smem_bytes() { return g_blk.dyn_bytes; }

static void fiber_main() {
    g_blk.fn(g_blk.ctx);
    Fiber *me = g_cur;
    if (!me->copies.empty()) fail("thread exits with %zu cp.async copies never waited for", me->copies.size());
    me->state = DONE;
    g_blk.alive--;
    Warp &w = g_blk.warps[me->warp];
    w.live &= ~(1u << me->lane);
    if (g_blk.bar_arrived > 0 && g_blk.bar_arrived == g_blk.alive) release_block();
    if (w.arrived > 0 && w.arrived == __builtin_popcount(w.pending & w.live)) release_warp(me->warp);
    // returning resumes uc_link (the scheduler)
}

cudaError_t set_max_dyn_smem(const void *kernel_id, int bytes) {
    if (bytes < 0 || bytes > 227 * 1024) return g_last = cudaErrorInvalidValue;
    g_max_dyn[kernel_id] = bytes;
    return cudaSuccess;
}

cudaError_t run_grid(dim3 grid, dim3 block, size_t smem, const void *kernel_id, block_fn fn,
                     void *ctx) {
    const unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
        fprintf(stderr, "emu: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n",
                grid.x, grid.y, grid.z, block.x, block.y, block.z);
        return g_last = cudaErrorInvalidConfiguration;
    }
    int limit = 48 * 1024;
    auto it = g_max_dyn.find(kernel_id);
    if (it != g_max_dyn.end() && it->second > limit) limit = it->second;
    if (smem > (size_t)limit) {
        fprintf(stderr, "emu: %zu bytes of dynamic shared memory over the kernel's limit %d "
                        "(cudaFuncSetAttribute)\n", smem, limit);
        return g_last = cudaErrorInvalidValue;
    }
    const int n = (int)nthreads;
    while ((int)g_stack_pool.size() < n) g_stack_pool.push_back((char *)malloc(STACK_BYTES));
    g_grid_dim = grid;
    g_block_dim = block;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                g_block_idx = {bx, by, bz};
                Block &b = g_blk;
                b.f.assign(n, Fiber());
                b.n = b.alive = n;
                b.bar_arrived = 0;
                b.nwarps = (n + 31) / 32;
                b.fn = fn, b.ctx = ctx;
                b.sites.clear();
                b.dyn_bytes = smem;
                b.arena_used = smem;
                memset(g_arena, 0xFF, smem);
                for (int w = 0; w < b.nwarps; w++) {
                    int lanes = n - 32 * w < 32 ? n - 32 * w : 32;
                    b.warps[w].live = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
                    b.warps[w].arrived = 0;
                }
                for (int i = 0; i < n; i++) {
                    Fiber &f = b.f[i];
                    f.tid = {(unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                             (unsigned)(i / (block.x * block.y))};
                    f.lane = i % 32, f.warp = i / 32, f.state = READY;
                    f.copies.clear();
                    f.open_group = 0;
                    f.stack = g_stack_pool[i];
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack;
                    f.ctx.uc_stack.ss_size = STACK_BYTES;
                    f.ctx.uc_link = &b.sched;
                    makecontext(&f.ctx, fiber_main, 0);
                }
                while (b.alive > 0) {
                    bool ran = false;
                    for (int i = 0; i < n; i++)
                        if (b.f[i].state == READY) {
                            g_cur = &b.f[i];
                            swapcontext(&b.sched, &b.f[i].ctx);
                            ran = true;
                        }
                    if (!ran) {
                        g_cur = nullptr;
                        fail("deadlock: %d threads wait at a barrier that cannot complete", b.alive);
                    }
                }
                g_cur = nullptr;
            }
    return cudaSuccess;
}

}  // namespace emu

// ---------------------------------------------------------------- runtime API
static std::map<void *, size_t> g_allocs;
static size_t g_alloc_bytes = 0;
// EMU_MEMORY_MIB sets the device size (default 8 GiB), to exercise out-of-memory paths.
static size_t g_limit = getenv("EMU_MEMORY_MIB") ? (size_t)atoll(getenv("EMU_MEMORY_MIB")) << 20
                                                 : (size_t)8 << 30;

extern "C" {

void emu_set_memory_limit(size_t bytes) { g_limit = bytes; }
size_t emu_allocated_bytes(void) { return g_alloc_bytes; }

cudaError_t cudaGetDeviceCount(int *n) { *n = getenv("EMU_NO_DEVICE") ? 0 : 1; return *n ? cudaSuccess : cudaErrorNoDevice; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CPU emulation");
    p->totalGlobalMem = g_limit;
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = 227 * 1024;
    p->major = 9, p->minor = 0, p->multiProcessorCount = 4, p->l2CacheSize = 1 << 20;
    p->warpSize = 32, p->maxThreadsPerBlock = 1024;
    return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int d) {
    switch (a) {
    case cudaDevAttrMultiProcessorCount: *v = 4; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = 48 * 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = 227 * 1024; break;
    default: *v = 0;
    }
    return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaDeviceReset(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) {
    cudaError_t e = emu::g_last;
    emu::g_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return emu::g_last; }
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unspecified launch failure";
    }
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    default: return "cudaErrorLaunchFailure";
    }
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = nullptr;
    if (g_alloc_bytes + bytes > g_limit) return emu::g_last = cudaErrorMemoryAllocation;
    void *q = nullptr;
    if (posix_memalign(&q, 256, bytes ? bytes : 1)) return emu::g_last = cudaErrorMemoryAllocation;
    memset(q, 0xFF, bytes);  // NaN in fp32 and bf16: unwritten memory shows
    g_allocs[q] = bytes;
    g_alloc_bytes += bytes;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    auto it = g_allocs.find(p);
    if (it == g_allocs.end()) {
        fprintf(stderr, "emu: cudaFree of a pointer cudaMalloc did not return\n");
        abort();
    }
    g_alloc_bytes -= it->second;
    g_allocs.erase(it);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = g_limit - g_alloc_bytes;
    *total_bytes = g_limit;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t s) {
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    if (bytes) memset(p, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
    return cudaMemset(p, value, bytes);
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = (cudaStream_t)malloc(1); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { return cudaSuccess; }
struct emu_event { double t; };
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new emu_event{0}; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    e->t = ts.tv_sec + ts.tv_nsec * 1e-9;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)((b->t - a->t) * 1e3);
    return cudaSuccess;
}

}  // extern "C"
