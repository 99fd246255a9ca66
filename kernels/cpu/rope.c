/* Rotary position embedding, HF rotate_half convention: element i of a head pairs
 * with element i + d/2 and both rotate by angle pos·inv_freq[i]. */
#include <math.h>

#include "kernels/ops.h"

/* HF computes inv_freq in fp32 with Python-float scalars cast to fp32 at each op
 * (modeling_rope_utils.py): base ** (arange(0, d, 2).float() / d), then 1.0 / that.
 * The same operations, in the same order, in float here. A Python scalar divided by
 * a tensor is torch's reciprocal(t) · scalar (Tensor.__rdiv__), not scalar / t: the
 * two round differently, so the llama3 band is written that way too. */
void et_rope_inv_freq(float *inv_freq, const et_rope_params *p, int d) {
    const float base = (float)p->theta;
    for (int i = 0; i < d / 2; i++) inv_freq[i] = 1.0f / powf(base, (float)(2 * i) / (float)d);

    if (p->type == ET_ROPE_LINEAR) {
        for (int i = 0; i < d / 2; i++) inv_freq[i] /= (float)p->factor;
    } else if (p->type == ET_ROPE_LLAMA3) {
        /* _compute_llama3_parameters: long wavelengths are divided by factor, short
         * ones kept, and the band between is interpolated smoothly. */
        const float factor = (float)p->factor;
        const float low = (float)p->low_freq_factor;
        const float band = (float)(p->high_freq_factor - p->low_freq_factor); /* Python floats */
        const float orig = (float)p->original_max_pos;
        const float low_wavelen = (float)(p->original_max_pos / p->low_freq_factor);
        const float high_wavelen = (float)(p->original_max_pos / p->high_freq_factor);
        const float two_pi = (float)(2.0 * M_PI);
        for (int i = 0; i < d / 2; i++) {
            float f = inv_freq[i];
            float wavelen = (1.0f / f) * two_pi;
            float scaled = wavelen > low_wavelen ? f / factor : f;
            if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
                float s = ((1.0f / wavelen) * orig - low) / band;
                scaled = (1.0f - s) * scaled / factor + s * scaled;
            }
            inv_freq[i] = scaled;
        }
    }
}

/* HF: freqs = inv_freq ⊗ positions as one fp32 product, then cos/sin (attention
 * scaling is 1 for default, linear and llama3). The product is rounded to fp32
 * before cos/sin, exactly as HF does, which matters at large positions. */
void et_rope_tables(float *cos_tab, float *sin_tab, const et_rope_params *p, int max_pos, int d) {
    const int half = d / 2;
    float inv_freq[half > 0 ? half : 1];
    et_rope_inv_freq(inv_freq, p, d);
#pragma omp parallel for schedule(static)
    for (int pos = 0; pos < max_pos; pos++)
        for (int i = 0; i < half; i++) {
            float angle = (float)pos * inv_freq[i];
            cos_tab[(int64_t)pos * half + i] = (float)cos((double)angle);
            sin_tab[(int64_t)pos * half + i] = (float)sin((double)angle);
        }
}

/* out[i] = x[i]·cos − x[i+d/2]·sin;  out[i+d/2] = x[i+d/2]·cos + x[i]·sin.
 * Both inputs of a pair are read before either output is written (out may alias x). */
void et_rope_forward(float *out, const float *x, const float *cos_tab, const float *sin_tab,
                     int b, int t, int h, int d) {
    const int half = d / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int bi = 0; bi < b; bi++)
        for (int pos = 0; pos < t; pos++) {
            const float *c = cos_tab + (int64_t)pos * half, *s = sin_tab + (int64_t)pos * half;
            for (int hi = 0; hi < h; hi++) {
                int64_t base = (((int64_t)bi * t + pos) * h + hi) * d;
                for (int i = 0; i < half; i++) {
                    float x1 = x[base + i], x2 = x[base + i + half];
                    out[base + i] = x1 * c[i] - x2 * s[i];
                    out[base + i + half] = x2 * c[i] + x1 * s[i];
                }
            }
        }
}

/* The rotation is orthogonal, so the gradient is the rotation by −θ. */
void et_rope_backward(float *dx, const float *dout, const float *cos_tab, const float *sin_tab,
                      int b, int t, int h, int d) {
    const int half = d / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int bi = 0; bi < b; bi++)
        for (int pos = 0; pos < t; pos++) {
            const float *c = cos_tab + (int64_t)pos * half, *s = sin_tab + (int64_t)pos * half;
            for (int hi = 0; hi < h; hi++) {
                int64_t base = (((int64_t)bi * t + pos) * h + hi) * d;
                for (int i = 0; i < half; i++) {
                    float g1 = dout[base + i], g2 = dout[base + i + half];
                    dx[base + i] += g1 * c[i] + g2 * s[i];
                    dx[base + i + half] += g2 * c[i] - g1 * s[i];
                }
            }
        }
}
