// Inverted dropout with the CPU's counter-based mask: element i of a call with
// (seed, offset) is kept iff u(offset + i) >= p, where stream position j draws word
// j mod 4 of the Philox4x32-10 block at counter j / 4, exactly as kernels/cpu/philox.c
// computes it (pure 32-bit integer math, so the mask is bit-identical across
// backends); a pack of 8 bf16 at a position that is a multiple of 4 costs two blocks.
// The scale 1/(1 − p) is computed on the host in fp32 like the CPU, and p >= 1
// selects 0 (no NaN). keep == NULL: the mask is not stored (the trainer's forward).
#include "kernels/cuda/context.h"
#include "kernels/cuda/philox.h"

namespace {

template <typename E> struct dropout_fwd {
    using T = E;
    E *out;
    uint8_t *keep;
    const E *x;
    float p, scale;
    uint64_t seed, offset;
    template <int W> __device__ void apply(int64_t i) const {
        float v[W];
        bool kept[W];
        etc_pack<uint8_t, W> kp;
        etc_load<E, W>(v, x, i);
        etc_draw_keep<W>(kept, seed, offset, i * W, p);
#pragma unroll
        for (int k = 0; k < W; k++) {
            kp.v[k] = kept[k];
            v[k] = kept[k] ? v[k] * scale : 0.0f;
        }
        etc_store<E, W>(out, i, v);
        if (keep) reinterpret_cast<etc_pack<uint8_t, W> *>(keep)[i] = kp;
    }
};

// dx += mask · dout · scale with the mask drawn again instead of read from memory.
template <typename E> struct dropout_bwd_redraw {
    using T = E;
    E *dx;
    const E *dout;
    float p, scale;
    uint64_t seed, offset;
    template <int W> __device__ void apply(int64_t i) const {
        float d[W], g[W];
        bool kept[W];
        etc_load<E, W>(d, dx, i);
        etc_load<E, W>(g, dout, i);
        etc_draw_keep<W>(kept, seed, offset, i * W, p);
#pragma unroll
        for (int k = 0; k < W; k++)
            if (kept[k]) d[k] += g[k] * scale;
        etc_store<E, W>(dx, i, d);
    }
};

template <typename E> struct dropout_bwd {
    using T = E;
    E *dx;
    const E *dout;
    const uint8_t *keep;
    float scale;
    template <int W> __device__ void apply(int64_t i) const {
        float d[W], g[W];
        const etc_pack<uint8_t, W> kp = reinterpret_cast<const etc_pack<uint8_t, W> *>(keep)[i];
        etc_load<E, W>(d, dx, i);
        etc_load<E, W>(g, dout, i);
#pragma unroll
        for (int k = 0; k < W; k++)
            if (kp.v[k]) d[k] += g[k] * scale;
        etc_store<E, W>(dx, i, d);
    }
};

template <typename E>
int forward(E *out, uint8_t *keep, const E *x, float p, uint64_t seed, uint64_t offset, int64_t n,
            const char *name) {
    if (p <= 0.0f) {  // the CPU's shortcut: copy, keep everything (not a draw)
        if (n <= 0) return n < 0 ? etc_fail("%s: negative element count", name) : 0;
        cudaError_t e = cudaSuccess;
        if (out != x)
            e = cudaMemcpyAsync(out, x, (size_t)n * sizeof(E), cudaMemcpyDeviceToDevice,
                                etc_stream());
        if (e == cudaSuccess && keep) e = cudaMemsetAsync(keep, 1, (size_t)n, etc_stream());
        if (e != cudaSuccess) return etc_fail("%s: %s", name, cudaGetErrorString(e));
        return 0;
    }
    return etc_map(dropout_fwd<E>{out, keep, x, p, etc_dropout_scale(p), seed, offset}, n,
                   etc_aligned16(out, keep, x), name);
}

template <typename E>
int backward(E *dx, const E *dout, const uint8_t *keep, float p, int64_t n, const char *name) {
    return etc_map(dropout_bwd<E>{dx, dout, keep, etc_dropout_scale(p)}, n,
                   etc_aligned16(dx, dout, keep), name);
}

template <typename E>
int backward_redraw(E *dx, const E *dout, float p, uint64_t seed, uint64_t offset, int64_t n,
                    const char *name) {
    return etc_map(dropout_bwd_redraw<E>{dx, dout, etc_dropout_threshold(p), etc_dropout_scale(p),
                                         seed, offset},
                   n, etc_aligned16(dx, dout), name);
}

}  // namespace

extern "C" int etc_dropout_forward(float *out, uint8_t *keep, const float *x, float p,
                                   uint64_t seed, uint64_t offset, int64_t n) {
    return forward(out, keep, x, p, seed, offset, n, "etc_dropout_forward");
}
extern "C" int etc_dropout_backward(float *dx, const float *dout, const uint8_t *keep, float p,
                                    int64_t n) {
    return backward(dx, dout, keep, p, n, "etc_dropout_backward");
}
extern "C" int etc_dropout_forward_bf16(etc_bf16 *out, uint8_t *keep, const etc_bf16 *x, float p,
                                        uint64_t seed, uint64_t offset, int64_t n) {
    return forward((__nv_bfloat16 *)out, keep, (const __nv_bfloat16 *)x, p, seed, offset, n,
                   "etc_dropout_forward_bf16");
}
extern "C" int etc_dropout_backward_bf16(etc_bf16 *dx, const etc_bf16 *dout, const uint8_t *keep,
                                         float p, int64_t n) {
    return backward((__nv_bfloat16 *)dx, (const __nv_bfloat16 *)dout, keep, p, n,
                    "etc_dropout_backward_bf16");
}
extern "C" int etc_dropout_backward_redraw_bf16(etc_bf16 *dx, const etc_bf16 *dout, float p,
                                                uint64_t seed, uint64_t offset, int64_t n) {
    return backward_redraw((__nv_bfloat16 *)dx, (const __nv_bfloat16 *)dout, p, seed, offset, n,
                           "etc_dropout_backward_redraw_bf16");
}
