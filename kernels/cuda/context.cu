// Runtime state of the CUDA backend: the last error message, the stream, the
// cuBLASLt handle and its workspace. One set per process (see ops_cuda.h).
#include <stdarg.h>
#include <stdio.h>

#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/context.h"

// 32 MiB: what NVIDIA recommends for cuBLASLt on Hopper.
#define ETC_WORKSPACE_BYTES ((size_t)32 << 20)

static thread_local char g_error[512];
static cudaStream_t g_stream = nullptr;
static cublasLtHandle_t g_lt = nullptr;
static void *g_workspace = nullptr;

int etc_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return -1;
}

int etc_check_launch(const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    return etc_fail("%s: CUDA error %s (%s)", op, cudaGetErrorName(e), cudaGetErrorString(e));
}

cudaStream_t etc_stream(void) { return g_stream; }

int etc_sm_count(void) {
    static int cached_device = -1, cached_count = 0;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return 1;
    if (dev != cached_device) {
        int n = 0;
        if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1)
            n = 1;
        cached_count = n, cached_device = dev;
    }
    return cached_count;
}

unsigned etc_grid(int64_t work, int threads) {
    int64_t need = (work + threads - 1) / threads;
    int64_t cap = (int64_t)etc_sm_count() * 16;
    if (need > cap) need = cap;
    return need < 1 ? 1u : (unsigned)need;
}

int etc_cublaslt(cublasLtHandle_t *handle, void **workspace, size_t *workspace_bytes) {
    if (!g_lt) {
        cublasStatus_t s = cublasLtCreate(&g_lt);
        if (s != CUBLAS_STATUS_SUCCESS) {
            g_lt = nullptr;
            return etc_fail("cuBLASLt: cublasLtCreate failed (%s)", cublasLtGetStatusName(s));
        }
    }
    if (!g_workspace) {
        cudaError_t e = cudaMalloc(&g_workspace, ETC_WORKSPACE_BYTES);
        if (e != cudaSuccess) {
            g_workspace = nullptr;
            cudaGetLastError();  // not sticky: the next op must not see this error as its own
            return etc_fail("cuBLASLt: cannot allocate its %zu MiB workspace (%s)",
                            ETC_WORKSPACE_BYTES >> 20, cudaGetErrorString(e));
        }
    }
    *handle = g_lt;
    *workspace = g_workspace;
    *workspace_bytes = ETC_WORKSPACE_BYTES;
    return 0;
}

extern "C" const char *etc_last_error(void) { return g_error; }

extern "C" int etc_set_stream(void *stream) {
    g_stream = (cudaStream_t)stream;
    return 0;
}

extern "C" void etc_shutdown(void) {
    etc_attention_cudnn_release();
    etc_matmul_forget_plans();
    etc_reduce_forget();
    if (g_workspace) cudaFree(g_workspace);
    if (g_lt) cublasLtDestroy(g_lt);
    g_workspace = nullptr;
    g_lt = nullptr;
}
