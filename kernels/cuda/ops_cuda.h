/* CUDA backend: twins of the ops in kernels/ops.h, callable from C.
 * Pointers are device pointers. See kernels/ops.h for each op's semantics. */
#ifndef EHRTUNE_OPS_CUDA_H
#define EHRTUNE_OPS_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of visible CUDA devices; 0 when there is no driver or device. */
int etc_device_count(void);
/* Writes the device name; returns compute capability ×10 (90 for sm_90), -1 on error. */
int etc_device_name(int device, char *name, int len);

#ifdef __cplusplus
}
#endif

#endif
