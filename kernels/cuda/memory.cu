// Device memory, copies and synchronisation for C callers that include no CUDA
// header (trainer/model_cuda.c), plus a random fill for benchmark weights.
#include "kernels/cuda/context.h"

namespace {

// splitmix64 of (seed, index): a counter-based hash, so any element is computable
// on its own (no generator state).
__device__ __forceinline__ float hash_uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

__global__ void fill_uniform_bf16(__nv_bfloat16 *out, int64_t n, float lo, float span,
                                  uint64_t seed) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(lo + span * hash_uniform(seed, (uint64_t)i));
}

int copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *name) {
    if (bytes == 0) return 0;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, etc_stream());
    if (e == cudaSuccess && kind == cudaMemcpyDeviceToHost) e = cudaStreamSynchronize(etc_stream());
    if (e != cudaSuccess)
        return etc_fail("%s of %zu bytes failed: %s (%s)", name, bytes, cudaGetErrorName(e),
                        cudaGetErrorString(e));
    return 0;
}

}  // namespace

extern "C" int etc_malloc(void **p, size_t bytes) {
    *p = nullptr;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 16);
    if (e == cudaSuccess) return 0;
    cudaGetLastError();  // an allocation failure is not sticky: clear it
    *p = nullptr;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return etc_fail("cudaMalloc of %.2f GiB failed (%s); the device has %.2f GiB free of %.2f GiB",
                    bytes / 1073741824.0, cudaGetErrorString(e), free_b / 1073741824.0,
                    total_b / 1073741824.0);
}

extern "C" void etc_free(void *p) {
    if (p) cudaFree(p);
}

extern "C" int etc_memcpy_h2d(void *dst, const void *src, size_t bytes) {
    return copy(dst, src, bytes, cudaMemcpyHostToDevice, "etc_memcpy_h2d");
}
extern "C" int etc_memcpy_d2h(void *dst, const void *src, size_t bytes) {
    return copy(dst, src, bytes, cudaMemcpyDeviceToHost, "etc_memcpy_d2h");
}
extern "C" int etc_memcpy_d2d(void *dst, const void *src, size_t bytes) {
    return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, "etc_memcpy_d2d");
}

extern "C" int etc_memset(void *p, int value, size_t bytes) {
    if (bytes == 0) return 0;
    cudaError_t e = cudaMemsetAsync(p, value, bytes, etc_stream());
    if (e != cudaSuccess)
        return etc_fail("etc_memset of %zu bytes failed: %s", bytes, cudaGetErrorString(e));
    return 0;
}

extern "C" int etc_synchronize(void) {
    cudaError_t e = cudaStreamSynchronize(etc_stream());
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess)
        return etc_fail("CUDA error while running queued work: %s (%s)", cudaGetErrorName(e),
                        cudaGetErrorString(e));
    return 0;
}

extern "C" int etc_mem_info(size_t *free_bytes, size_t *total_bytes) {
    cudaError_t e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) return etc_fail("cudaMemGetInfo failed: %s", cudaGetErrorString(e));
    return 0;
}

extern "C" int etc_fill_uniform_bf16(etc_bf16 *out, int64_t n, float lo, float hi, uint64_t seed) {
    if (n < 0) return etc_fail("etc_fill_uniform_bf16: negative count");
    if (n == 0) return 0;
    fill_uniform_bf16<<<etc_grid(n, 256), 256, 0, etc_stream()>>>((__nv_bfloat16 *)out, n, lo,
                                                                   hi - lo, seed);
    return etc_check_launch("etc_fill_uniform_bf16");
}
