// Device discovery for `run.device: auto`: how many CUDA GPUs this process sees.
// Never fails: no driver, no device or any CUDA error all mean "0 GPUs".
#include <cuda_runtime.h>

#include "kernels/cuda/ops_cuda.h"

extern "C" int etc_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return 0;
    }
    return n;
}

extern "C" int etc_device_name(int device, char *name, int len) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return -1;
    int i = 0;
    for (; i < len - 1 && prop.name[i]; i++) name[i] = prop.name[i];
    if (len > 0) name[i] = 0;
    return prop.major * 10 + prop.minor;
}
