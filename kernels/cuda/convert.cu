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

}  // namespace

extern "C" int etc_cast_f32_to_bf16(etc_bf16 *out, const float *x, int64_t n) {
    return etc_map(cast_op<float, __nv_bfloat16>{(__nv_bfloat16 *)out, x}, n,
                   etc_aligned16(out, x), "etc_cast_f32_to_bf16");
}
extern "C" int etc_cast_bf16_to_f32(float *out, const etc_bf16 *x, int64_t n) {
    return etc_map(cast_op<__nv_bfloat16, float>{out, (const __nv_bfloat16 *)x}, n,
                   etc_aligned16(out, x), "etc_cast_bf16_to_f32");
}
