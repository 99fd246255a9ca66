/* expf that the compiler can vectorise (glibc's expf is a scalar call, and the
 * softmax of cross-entropy and attention is dominated by it otherwise).
 *
 * e^x = 2^n · e^r with n = round(x / ln 2), r = x − n·ln 2 (ln 2 split in two for
 * exactness), |r| <= ln2/2; e^r by its degree-6 Taylor/minimax-style polynomial
 * (relative error < 2.6e-7 over the range, about 2 ulp), 2^n built in the exponent
 * bits. Inputs below −87.3 give 0, above ln(FLT_MAX) = 88.7228 give +inf, NaN stays NaN. */
#ifndef EHRTUNE_FAST_EXP_H
#define EHRTUNE_FAST_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float et_expf(float x) {
    const float hi = 88.7228391f, lo = -87.33f; /* hi: ln(FLT_MAX) */
    float xc = x > hi ? hi : (x < lo ? lo : x);
    /* Round to nearest by the 1.5·2^23 trick: plain SSE2 arithmetic, so the loop
     * vectorises without SSE4.1's roundps (rintf would be a library call). */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;       /* ln2 high part: exact product */
    r = r - n * (-2.12194440e-4f);         /* ln2 low part */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (4.16666418e-2f +
              r * (8.33338592e-3f + r * 1.38874732e-3f)))));
    /* From x ≈ 88.38 on n rounds to 128, and 2^128 is no float: 2^127 · 2 (selects,
     * so the loop still vectorises). */
    const float n1 = n > 127.0f ? 127.0f : n;
    p = n > 127.0f ? p * 2.0f : p;
    int32_t bits = ((int32_t)n1 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    y = x > hi ? INFINITY : y;
    y = x < lo ? 0.0f : y;
    return x != x ? x : y;
}

#endif
