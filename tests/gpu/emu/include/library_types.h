/* CUDA emulation shim (tests/gpu/emu). */
#include "cublasLt.h"
