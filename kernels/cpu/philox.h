/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11): a counter-based generator, i.e. a keyed bijection of a 128-bit counter.
 * Pure 32-bit integer math, so the CUDA backend computes bit-identical values.
 * Verified against the Random123 known-answer vectors in tests/unit/test_ops_forward.c. */
#ifndef EHRTUNE_PHILOX_H
#define EHRTUNE_PHILOX_H

#include <stdint.h>

/* out = Philox4x32 with 10 rounds of (ctr, key). */
void et_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

#endif
