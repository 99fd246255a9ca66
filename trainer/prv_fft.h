/* The two convolutions the PRV accountant needs, on real probability vectors:
 *  - the n-fold CYCLIC self-convolution of a length-N vector (N even, any size), i.e.
 *    irfft(rfft(p)^n) as Opacus computes it, done with a real-to-complex packing, a
 *    Bluestein DFT of length N/2 and a radix-2 complex FFT;
 *  - the linear convolution of two length-N vectors, keeping the central N values
 *    (scipy.signal.convolve(a, b, mode="same")).
 * Internal to trainer/accountant_prv.c. */
#ifndef EHRTUNE_PRV_FFT_H
#define EHRTUNE_PRV_FFT_H

#include <stdint.h>

#include "data/error.h"

/* p[0..n-1] <- the n_fold-fold cyclic self-convolution of p (n even, >= 2). */
int et_prv_cyclic_self_convolve(double *p, int64_t n, int64_t n_fold, et_error *err);

/* out[k] = Σ_j a[j]·b[k + n/2 - 1 - j] over valid j: the centre n of the full linear
 * convolution (n even). out may alias neither input. */
int et_prv_convolve_same(const double *a, const double *b, int64_t n, double *out,
                         et_error *err);

#endif
