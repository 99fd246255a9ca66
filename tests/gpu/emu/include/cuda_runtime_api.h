/* CUDA emulation shim (tests/gpu/emu): the runtime API. */
#include "../emu_runtime.h"
