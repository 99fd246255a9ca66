// Stand-in for kernels/cuda/attention_cudnn.cu under the CPU emulation of CUDA
// (tests/gpu/emu/build.sh compiles this file in its place): cuDNN cannot run here,
// but the model's handling of it can — cuDNN first in the default order, the graphs
// of a micro-batch size built before a step (etc_attention_cudnn_prepare), the
// refusal of a shape or of a deterministic backward, the fallback to our kernels
// mid-run, and a backward that overwrites dq, dk, dv. The "cuDNN" arithmetic is our
// own bf16 kernels', so parity with the CPU still holds.
//
//   EHRTUNE_EMU_CUDNN unset or 0   unavailable (as a machine without libcudnn)
//   EHRTUNE_EMU_CUDNN=1            available, deterministic backward
//   EHRTUNE_EMU_CUDNN=nondet       available, non-deterministic backward only
//   EHRTUNE_EMU_CUDNN_REFUSE=BxT   graphs of B sequences of T tokens are refused
//   EHRTUNE_EMU_CUDNN_VERSION=V    the version it reports (default 91900)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/attention_bf16.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/context.h"

namespace {

int mode() {  // 0 unavailable, 1 deterministic, 2 non-deterministic only
    const char *m = getenv("EHRTUNE_EMU_CUDNN");
    if (!m || !*m || !strcmp(m, "0")) return 0;
    return strcmp(m, "nondet") ? 1 : 2;
}

int refused(int b, int t) {
    const char *r = getenv("EHRTUNE_EMU_CUDNN_REFUSE");
    int rb = 0, rt = 0;
    return r && sscanf(r, "%dx%d", &rb, &rt) == 2 && rb == b && rt == t;
}

char g_note[160] = "";
void *g_workspace = nullptr;  // the backward's delta scratch
size_t g_workspace_bytes = 0;

int reserve(size_t bytes) {
    if (bytes <= g_workspace_bytes) return 0;
    if (g_workspace) etc_free(g_workspace);
    g_workspace = nullptr, g_workspace_bytes = 0;
    if (etc_malloc(&g_workspace, bytes)) return -1;
    g_workspace_bytes = bytes;
    return 0;
}

int usable(const char *what, int b, int t) {
    if (!mode()) return etc_fail("cuDNN attention unavailable: emulation without EHRTUNE_EMU_CUDNN");
    if (refused(b, t))
        return etc_fail("cuDNN attention %s (b=%d t=%d): graph not supported (emulated refusal)",
                        what, b, t);
    return 0;
}

}  // namespace

extern "C" int etc_attention_cudnn_available(char *why, size_t why_len) {
    if (mode()) return 1;
    if (why && why_len)
        snprintf(why, why_len, "no cuDNN under the CPU emulation (EHRTUNE_EMU_CUDNN=1 stands in for it)");
    return 0;
}

extern "C" int etc_attention_cudnn_preferred(char *why, size_t why_len) {
    if (!etc_attention_cudnn_available(why, why_len)) return 0;
    const char *v = getenv("EHRTUNE_EMU_CUDNN_VERSION");
    const long version = v && *v ? atol(v) : 91900;
    if (version < ETC_CUDNN_PREFERRED_VERSION) {
        if (why && why_len)
            snprintf(why, why_len, "cuDNN %ld predates 9.15.1 (emulated), so it runs only when "
                                   "asked for by name", version);
        return 0;
    }
    return 1;
}

extern "C" int etc_attention_cudnn_prepare(int b, int t, int hq, int hkv, int d, int window,
                                           int deterministic_only) {
    (void)hkv, (void)d, (void)window;
    if (usable("forward", b, t)) return -1;
    if (deterministic_only && mode() == 2)
        return etc_fail("cuDNN attention backward (b=%d t=%d): no deterministic algorithm for this "
                        "shape (emulated)", b, t);
    snprintf(g_note, sizeof g_note, "emulated cuDNN, %s",
             mode() == 2 ? "backward not deterministic" : "deterministic backward");
    return reserve((size_t)b * hq * t * sizeof(float));
}

extern "C" int etc_attention_cudnn_forward(etc_bf16 *out, float *lse, const etc_bf16 *q,
                                           const etc_bf16 *k, const etc_bf16 *v, int b, int t,
                                           int hq, int hkv, int d, int window) {
    if (usable("forward", b, t)) return -1;
    return etc_attention_forward_bf16(out, lse, q, k, v, b, t, hq, hkv, d, window);
}

extern "C" int etc_attention_cudnn_backward(etc_bf16 *dq, etc_bf16 *dk, etc_bf16 *dv,
                                            const etc_bf16 *dout, const etc_bf16 *q,
                                            const etc_bf16 *k, const etc_bf16 *v,
                                            const etc_bf16 *out, const float *lse, int b, int t,
                                            int hq, int hkv, int d, int window) {
    if (usable("backward", b, t) || reserve((size_t)b * hq * t * sizeof(float))) return -1;
    // cuDNN overwrites: whatever the caller left in dq, dk, dv is not read
    const size_t nq = (size_t)b * t * hq * d, nk = (size_t)b * t * hkv * d;
    return etc_memset(dq, 0, nq * 2) || etc_memset(dk, 0, nk * 2) || etc_memset(dv, 0, nk * 2) ||
           etc_attention_backward_bf16(dq, dk, dv, (float *)g_workspace, dout, q, k, v, out, lse,
                                       b, t, hq, hkv, d, window);
}

extern "C" const char *etc_attention_cudnn_note(void) { return g_note; }

extern "C" size_t etc_attention_cudnn_workspace_bytes(void) { return g_workspace_bytes; }

extern "C" int etc_attention_cudnn_check_graphs(int, int, int, int, int, int, char *msg,
                                                size_t msg_len) {
    if (msg && msg_len) snprintf(msg, msg_len, "no cuDNN graphs under the CPU emulation");
    return 0;
}

extern "C" void etc_attention_cudnn_release(void) {
    if (g_workspace) etc_free(g_workspace);
    g_workspace = nullptr, g_workspace_bytes = 0;
}
