/* CUDA emulation shim (tests/gpu/emu): runtime API + device-side definitions. */
#include "../emu_runtime.h"
#ifdef __cplusplus
#include "../emu_device.h"
#endif
