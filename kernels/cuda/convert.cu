// fp32 <-> bf16 casts (round to nearest even, as torch's .to(torch.bfloat16)).
#include "kernels/cuda/context.h"

namespace {

template <typename From, typename To> struct cast_op {
    // Packs of 4: 16 bytes of fp32 and 8 of bf16, both aligned when the bases are.
    using T = float;
    To *out;
    const From *x;
    template <int W> __device__ void apply(int64_t i) const {
        float v[W];
        etc_load<From, W>(v, x, i);
        etc_store<To, W>(out, i, v);
    }
};

// dst[row·ld + col] = bf16(src[row·cols + col]): packed rows into a strided matrix.
__global__ void cast_rows_kernel(__nv_bfloat16 *dst, int64_t ld, const float *src, int64_t rows,
                                 int64_t cols) {
    const int64_t n = rows * cols;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x)
        dst[(e / cols) * ld + e % cols] = __float2bfloat16_rn(src[e]);
}

}  // namespace

extern "C" int etc_cast_f32_to_bf16(etc_bf16 *out, const float *x, int64_t n) {
    return etc_map(cast_op<float, __nv_bfloat16>{(__nv_bfloat16 *)out, x}, n,
                   etc_aligned16(out, x), "etc_cast_f32_to_bf16");
}
extern "C" int etc_cast_bf16_to_f32(float *out, const etc_bf16 *x, int64_t n) {
    return etc_map(cast_op<__nv_bfloat16, float>{out, (const __nv_bfloat16 *)x}, n,
                   etc_aligned16(out, x), "etc_cast_bf16_to_f32");
}
extern "C" int etc_cast_f32_to_bf16_rows(etc_bf16 *dst, int64_t ld, const float *src,
                                         int64_t rows, int64_t cols) {
    if (rows < 0 || cols < 0 || ld < cols)
        return etc_fail("etc_cast_f32_to_bf16_rows: bad shape %lld x %lld, row stride %lld",
                        (long long)rows, (long long)cols, (long long)ld);
    if (rows * cols == 0) return 0;
    cast_rows_kernel<<<etc_grid(rows * cols, 256), 256, 0, etc_stream()>>>((__nv_bfloat16 *)dst, ld,
                                                                         src, rows, cols);
    return etc_check_launch("etc_cast_f32_to_bf16_rows");
}
