/* CUDA emulation shim (tests/gpu/emu): bf16 lives in emu_device.h. */
#include "../emu_device.h"
