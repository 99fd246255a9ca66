// cuDNN's fused flash attention (forward: O and the softmax statistics; backward:
// dQ, dK, dV) through the cuDNN frontend's graph API — the contract is in
// attention_cudnn.h.
//
// Why beside our kernels (attention_bf16*.cu): cuDNN's Hopper engines are built on
// wgmma and the tensor-memory accelerator, which our mma.sync kernels are not, and
// attention is the largest share of the training step after the frozen GEMMs
// (docs/cuda.md). The model takes this pair only when asked
// (EHRTUNE_CUDA_ATTENTION=cudnn) and after the same self-check as ours, until a GPU
// run has timed both (tests/gpu/check.sh).
//
// Nothing links against libcudnn: the frontend is built with dynamic loading and
// this file dlopens libcudnn.so.9 (or $EHRTUNE_CUDNN_LIB) on first use, so a machine
// without cuDNN runs every other op and reports this pair unavailable. Compiled in
// only where the frontend headers were found (ETC_HAVE_CUDNN_FRONTEND: CMake looks
// where `make deps` puts them, tests/gpu/check.sh where prebuild.sh carried them).
//
// Our tensors are described to cuDNN in place as strided [B, H, T, D] views (T rows
// H·D apart, heads D apart): nothing is copied. Graphs are built once per shape and
// kept; the frontend may throw, so every call into it is inside try/catch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/context.h"

#if defined(ETC_HAVE_CUDNN_FRONTEND)

#include <dlfcn.h>
#include <math.h>

#include <exception>
#include <memory>
#include <unordered_map>
#include <vector>

#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
#include <cudnn_frontend.h>

// The frontend's dynamic loading reads the library handle from here.
namespace cudnn_frontend {
void *cudnn_dlhandle = nullptr;
}
namespace fe = cudnn_frontend;

namespace {

enum : int64_t { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_DO, UID_DQ, UID_DK, UID_DV };

struct graph_key {
    int backward, b, t, hq, hkv, d, window;
    bool operator==(const graph_key &o) const {
        return backward == o.backward && b == o.b && t == o.t && hq == o.hq && hkv == o.hkv &&
               d == o.d && window == o.window;
    }
};

struct cached_graph {
    graph_key key;
    std::shared_ptr<fe::graph::Graph> graph;
    int64_t workspace;
    bool deterministic;  // backward: cuDNN's deterministic algorithm
};

struct cudnn_state {
    int tried = 0, loaded = 0, usable = 0;  // library opened; handle created too
    char why[320] = "";
    char note[160] = "";
    void *library = nullptr;
    cudnnHandle_t handle = nullptr;
    size_t version = 0;
    std::vector<cached_graph> graphs;  // a run uses a handful of shapes
    void *workspace = nullptr;
    size_t workspace_bytes = 0;
};
cudnn_state *g_cudnn = nullptr;

#ifndef ETC_CUDNN_LIB_HINT  // where CMake found libcudnn at configure time, if anywhere
#define ETC_CUDNN_LIB_HINT ""
#endif

// dlopen + version: needs no GPU (etc_attention_cudnn_check_graphs stops here).
int load_library(cudnn_state &s) {
    const char *names[4] = {getenv("EHRTUNE_CUDNN_LIB"), "libcudnn.so.9", ETC_CUDNN_LIB_HINT,
                            "libcudnn.so"};
    const char *first_error = nullptr;
    char first_error_copy[200] = "";
    for (const char *name : names) {
        if (!name || !*name) continue;
        s.library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (s.library) break;
        if (!first_error && (first_error = dlerror()))
            snprintf(first_error_copy, sizeof first_error_copy, "%s", first_error);
    }
    if (!s.library) {
        snprintf(s.why, sizeof s.why,
                 "libcudnn.so.9 not found (%s); install cuDNN 9 or set EHRTUNE_CUDNN_LIB to its path",
                 first_error_copy[0] ? first_error_copy : "dlopen failed");
        return -1;
    }
    fe::cudnn_dlhandle = s.library;
    try {
        s.version = fe::detail::get_backend_version();
    } catch (const std::exception &e) {
        snprintf(s.why, sizeof s.why, "cuDNN did not start: %s", e.what());
        return -1;
    }
    if (s.version < 90000) {
        snprintf(s.why, sizeof s.why, "cuDNN %zu is older than 9.0 (its fused attention needs 9)",
                 s.version);
        return -1;
    }
    return 0;
}

// A handle: needs the GPU.
int create_handle(cudnn_state &s) {
    try {
        cudnnStatus_t st = fe::detail::create_handle(&s.handle);
        if (st != CUDNN_STATUS_SUCCESS) {
            snprintf(s.why, sizeof s.why, "cudnnCreate failed (status %d)", (int)st);
            s.handle = nullptr;
            return -1;
        }
    } catch (const std::exception &e) {
        snprintf(s.why, sizeof s.why, "cuDNN did not start: %s", e.what());
        return -1;
    }
    return 0;
}

cudnn_state *state() {
    if (!g_cudnn) g_cudnn = new cudnn_state();
    cudnn_state &s = *g_cudnn;
    if (!s.tried) {
        s.tried = 1;
        if (!s.loaded) s.loaded = load_library(s) == 0;
        s.usable = s.loaded && create_handle(s) == 0;
    }
    return &s;
}

// Our [B, T, H, D] rows as cuDNN's [B, H, T, D] dims.
std::shared_ptr<fe::graph::Tensor_attributes> bhtd(fe::graph::Graph &g, const char *name,
                                                   int64_t uid, int64_t b, int64_t h, int64_t t,
                                                   int64_t d) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim({b, h, t, d})
                        .set_stride({t * h * d, d, h * d, 1})
                        .set_data_type(fe::DataType_t::BFLOAT16));
}

void as_bhtd(const std::shared_ptr<fe::graph::Tensor_attributes> &x, int64_t uid, int64_t b,
             int64_t h, int64_t t, int64_t d) {
    x->set_output(true)
        .set_uid(uid)
        .set_dim({b, h, t, d})
        .set_stride({t * h * d, d, h * d, 1})
        .set_data_type(fe::DataType_t::BFLOAT16);
}

// The statistics [B, Hq, T] fp32, as cuDNN's [B, H, T, 1].
fe::graph::Tensor_attributes stats_attributes(int64_t b, int64_t hq, int64_t t) {
    return fe::graph::Tensor_attributes()
        .set_name("stats")
        .set_uid(UID_STATS)
        .set_dim({b, hq, t, 1})
        .set_stride({hq * t, t, 1, 1})
        .set_data_type(fe::DataType_t::FLOAT);
}

// sm_version > 0 describes the graph for that architecture instead of asking the
// device; it must be set before any node is added (nodes copy the graph's context).
std::shared_ptr<fe::graph::Graph> new_graph(int sm_version) {
    auto g = std::make_shared<fe::graph::Graph>();
    if (sm_version > 0) {
        g->set_sm_version(sm_version);
        g->set_sm_count(132);  // an H100/H200's
    }
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    return g;
}

// The graph of `key`, described but not built; deterministic asks for cuDNN's
// deterministic backward; sm_version as new_graph.
std::shared_ptr<fe::graph::Graph> describe_graph(const graph_key &key, bool deterministic,
                                                 int sm_version) {
    const int64_t b = key.b, t = key.t, hq = key.hq, hkv = key.hkv, d = key.d;
    const float scale = 1.0f / sqrtf((float)key.d);
    auto g = new_graph(sm_version);
    auto q = bhtd(*g, "q", UID_Q, b, hq, t, d);
    auto k = bhtd(*g, "k", UID_K, b, hkv, t, d);
    auto v = bhtd(*g, "v", UID_V, b, hkv, t, d);
    if (!key.backward) {
        auto opt = fe::graph::SDPA_attributes()
                       .set_name("attention")
                       .set_generate_stats(true)
                       .set_causal_mask(true)
                       .set_attn_scale(scale);
        // key j visible to query i iff j <= i and j > i - window (ops.h)
        if (key.window > 0) opt.set_diagonal_band_left_bound(key.window);
        auto outputs = g->sdpa(q, k, v, opt);
        as_bhtd(outputs[0], UID_O, b, hq, t, d);
        outputs[1]->set_output(true)
            .set_uid(UID_STATS)
            .set_dim({b, hq, t, 1})
            .set_stride({hq * t, t, 1, 1})
            .set_data_type(fe::DataType_t::FLOAT);
    } else {
        auto o = bhtd(*g, "o", UID_O, b, hq, t, d);
        auto dout = bhtd(*g, "dout", UID_DO, b, hq, t, d);
        auto stats = g->tensor(stats_attributes(b, hq, t));
        auto opt = fe::graph::SDPA_backward_attributes()
                       .set_name("attention_backward")
                       .set_causal_mask(true)
                       .set_attn_scale(scale);
        if (key.window > 0) opt.set_diagonal_band_left_bound(key.window);
        if (deterministic) opt.set_deterministic_algorithm(true);
        auto grads = g->sdpa_backward(q, k, v, o, dout, stats, opt);
        as_bhtd(grads[0], UID_DQ, b, hq, t, d);
        as_bhtd(grads[1], UID_DK, b, hkv, t, d);
        as_bhtd(grads[2], UID_DV, b, hkv, t, d);
    }
    return g;
}

// Builds the graph of `key` for this GPU; nullptr and *error on failure.
std::shared_ptr<fe::graph::Graph> build_graph(cudnn_state &s, const graph_key &key,
                                              bool deterministic, std::string *error) {
    auto g = describe_graph(key, deterministic, 0);
    fe::error_t e = g->build(s.handle, {fe::HeurMode_t::A});
    if (e.is_bad()) {
        *error = e.get_message();
        return nullptr;
    }
    return g;
}

// The cached graph of `key`, built on first use; nullptr after etc_fail. A backward
// asks for cuDNN's deterministic algorithm first; where cuDNN refuses it for the shape,
// deterministic_only makes that a failure, otherwise the other algorithm is built and
// the note says so. A backward cached earlier without it also fails deterministic_only.
const cached_graph *graph_for(const graph_key &key, bool deterministic_only) {
    cudnn_state &s = *state();
    if (!s.usable) {
        etc_fail("cuDNN attention unavailable: %s", s.why);
        return nullptr;
    }
    const char *what = key.backward ? "backward" : "forward";
    for (const cached_graph &c : s.graphs)
        if (c.key == key) {
            if (key.backward && deterministic_only && !c.deterministic) break;
            return &c;
        }
    try {
        std::string error;
        bool deterministic = key.backward != 0;
        auto g = build_graph(s, key, deterministic, &error);
        if (!g && key.backward && deterministic_only) {
            etc_fail("cuDNN attention backward (b=%d t=%d hq=%d hkv=%d d=%d window=%d): no "
                     "deterministic algorithm for this shape: %s",
                     key.b, key.t, key.hq, key.hkv, key.d, key.window, error.c_str());
            return nullptr;
        }
        if (!g && key.backward) {  // cuDNN may refuse the deterministic algorithm
            std::string first = error;
            deterministic = false;
            g = build_graph(s, key, false, &error);
            if (g)
                snprintf(s.note, sizeof s.note, "cuDNN %zu, backward not deterministic (%.80s)",
                         s.version, first.c_str());
        } else if (g && key.backward) {
            snprintf(s.note, sizeof s.note, "cuDNN %zu, deterministic backward", s.version);
        }
        if (!g) {
            etc_fail("cuDNN attention %s (b=%d t=%d hq=%d hkv=%d d=%d window=%d): %s", what, key.b,
                     key.t, key.hq, key.hkv, key.d, key.window, error.c_str());
            return nullptr;
        }
        int64_t ws = 0;
        fe::error_t e = g->get_workspace_size(ws);
        if (e.is_bad()) {
            etc_fail("cuDNN attention %s: workspace size: %s", what, e.get_message().c_str());
            return nullptr;
        }
        for (cached_graph &c : s.graphs)  // a non-deterministic backward replaced
            if (c.key == key) {
                c = {key, g, ws, deterministic};
                return &c;
            }
        s.graphs.push_back({key, g, ws, deterministic});
        return &s.graphs.back();
    } catch (const std::exception &ex) {
        etc_fail("cuDNN attention %s (b=%d t=%d hq=%d hkv=%d d=%d): %s", what, key.b, key.t,
                 key.hq, key.hkv, key.d, ex.what());
        return nullptr;
    }
}

// Grows the one workspace to `bytes` (the device is idle when cudaFree returns).
int reserve_workspace(cudnn_state &s, size_t bytes) {
    if (bytes <= s.workspace_bytes) return 0;
    if (s.workspace) etc_free(s.workspace);
    s.workspace = nullptr, s.workspace_bytes = 0;
    if (etc_malloc(&s.workspace, bytes)) return -1;
    s.workspace_bytes = bytes;
    return 0;
}

int run_graph(const cached_graph *c, std::unordered_map<int64_t, void *> &pack, const char *what) {
    cudnn_state &s = *state();
    if (reserve_workspace(s, (size_t)c->workspace)) return -1;
    try {
        cudnnStatus_t st = fe::detail::set_stream(s.handle, etc_stream());
        if (st != CUDNN_STATUS_SUCCESS)
            return etc_fail("cuDNN attention %s: cudnnSetStream failed (status %d)", what, (int)st);
        fe::error_t e = c->graph->execute(s.handle, pack, s.workspace);
        if (e.is_bad())
            return etc_fail("cuDNN attention %s: %s", what, e.get_message().c_str());
    } catch (const std::exception &ex) {
        return etc_fail("cuDNN attention %s: %s", what, ex.what());
    }
    return etc_check_launch(what);
}

int check_shape(int b, int t, int hq, int hkv, int d) {
    if (b < 1 || t < 1 || hq < 1 || hkv < 1 || hq % hkv || d < 8 || d % 8 || d > 256)
        return etc_fail("cuDNN attention: unsupported shape b=%d t=%d hq=%d hkv=%d d=%d (head dim "
                        "a multiple of 8 up to 256, hq a multiple of hkv)",
                        b, t, hq, hkv, d);
    return 0;
}

}  // namespace

extern "C" int etc_attention_cudnn_available(char *why, size_t why_len) {
    cudnn_state &s = *state();
    if (!s.usable && why && why_len) snprintf(why, why_len, "%s", s.why);
    return s.usable;
}

extern "C" int etc_attention_cudnn_preferred(char *why, size_t why_len) {
    if (!etc_attention_cudnn_available(why, why_len)) return 0;
    const cudnn_state &s = *g_cudnn;
    if (s.version < ETC_CUDNN_PREFERRED_VERSION) {
        if (why && why_len)
            snprintf(why, why_len,
                     "cuDNN %zu predates 9.15.1 (fused-attention shape fixes), so it runs only "
                     "when asked for by name",
                     s.version);
        return 0;
    }
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
        cudaGetLastError();
        if (why && why_len) snprintf(why, why_len, "the device's compute capability is unknown");
        return 0;
    }
    const int cc = major * 10 + minor;
    if (cc != 90 && cc != 100 && cc != 103) {
        if (why && why_len)
            snprintf(why, why_len,
                     "sm_%d: cuDNN's fused attention leads only on sm_90 and sm_100/103, where "
                     "it is most tested; it runs here only when asked for by name",
                     cc);
        return 0;
    }
    return 1;
}

extern "C" int etc_attention_cudnn_forward(etc_bf16 *out, float *lse, const etc_bf16 *q,
                                           const etc_bf16 *k, const etc_bf16 *v, int b, int t,
                                           int hq, int hkv, int d, int window) {
    if (check_shape(b, t, hq, hkv, d)) return -1;
    const cached_graph *c = graph_for({0, b, t, hq, hkv, d, etc_attention_window(window, t)}, false);
    if (!c) return -1;
    std::unordered_map<int64_t, void *> pack = {
        {UID_Q, (void *)q}, {UID_K, (void *)k}, {UID_V, (void *)v}, {UID_O, out}, {UID_STATS, lse}};
    return run_graph(c, pack, "forward");
}

extern "C" int etc_attention_cudnn_backward(etc_bf16 *dq, etc_bf16 *dk, etc_bf16 *dv,
                                            const etc_bf16 *dout, const etc_bf16 *q,
                                            const etc_bf16 *k, const etc_bf16 *v,
                                            const etc_bf16 *out, const float *lse, int b, int t,
                                            int hq, int hkv, int d, int window) {
    if (check_shape(b, t, hq, hkv, d)) return -1;
    const cached_graph *c = graph_for({1, b, t, hq, hkv, d, etc_attention_window(window, t)}, false);
    if (!c) return -1;
    std::unordered_map<int64_t, void *> pack = {
        {UID_Q, (void *)q},    {UID_K, (void *)k},       {UID_V, (void *)v},
        {UID_O, (void *)out},  {UID_DO, (void *)dout},   {UID_STATS, (void *)lse},
        {UID_DQ, dq},          {UID_DK, dk},             {UID_DV, dv}};
    return run_graph(c, pack, "backward");
}

extern "C" int etc_attention_cudnn_prepare(int b, int t, int hq, int hkv, int d, int window,
                                           int deterministic_only) {
    if (check_shape(b, t, hq, hkv, d)) return -1;
    const int w = etc_attention_window(window, t);
    const cached_graph *f = graph_for({0, b, t, hq, hkv, d, w}, false);
    if (!f) return -1;
    const size_t forward_ws = (size_t)f->workspace;  // f may move when the cache grows
    const cached_graph *g = graph_for({1, b, t, hq, hkv, d, w}, deterministic_only != 0);
    if (!g) return -1;
    const size_t ws = forward_ws > (size_t)g->workspace ? forward_ws : (size_t)g->workspace;
    return reserve_workspace(*state(), ws);
}

extern "C" const char *etc_attention_cudnn_note(void) { return g_cudnn ? g_cudnn->note : ""; }

extern "C" size_t etc_attention_cudnn_workspace_bytes(void) {
    return g_cudnn ? g_cudnn->workspace_bytes : 0;
}

extern "C" int etc_attention_cudnn_check_graphs(int b, int t, int hq, int hkv, int d, int window,
                                                char *msg, size_t msg_len) {
    cudnn_state &s = *state();
    if (!s.loaded) {
        if (msg && msg_len) snprintf(msg, msg_len, "%s", s.why);
        return 0;
    }
    if (check_shape(b, t, hq, hkv, d)) {
        if (msg && msg_len) snprintf(msg, msg_len, "%s", etc_last_error());
        return -1;
    }
    for (int backward = 0; backward < 2; backward++) {
        const graph_key key = {backward, b, t, hq, hkv, d, etc_attention_window(window, t)};
        try {
            auto g = describe_graph(key, backward != 0, 90);  // Hopper: no device asked
            fe::error_t e = g->validate();
            if (e.is_good()) e = g->build_operation_graph(nullptr);
            if (e.is_bad()) {
                if (msg && msg_len)
                    snprintf(msg, msg_len, "%s graph (b=%d t=%d hq=%d hkv=%d d=%d window=%d): %s",
                             backward ? "backward" : "forward", b, t, hq, hkv, d, window,
                             e.get_message().c_str());
                return -1;
            }
        } catch (const std::exception &ex) {
            if (msg && msg_len) snprintf(msg, msg_len, "%s", ex.what());
            return -1;
        }
    }
    if (msg && msg_len) snprintf(msg, msg_len, "cuDNN %zu accepted both graphs", s.version);
    return 1;
}

extern "C" void etc_attention_cudnn_release(void) {
    if (!g_cudnn) return;
    cudnn_state &s = *g_cudnn;
    s.graphs.clear();
    if (s.workspace) etc_free(s.workspace);
    s.workspace = nullptr, s.workspace_bytes = 0;
    try {
        if (s.handle) fe::detail::destroy_handle(s.handle);
    } catch (const std::exception &) {
    }
    s.handle = nullptr;
    // the library stays loaded (the frontend keeps function pointers into it); a
    // later call creates a new handle
    s.tried = 0, s.usable = 0;
}

#else  // built without the cuDNN frontend headers

extern "C" int etc_attention_cudnn_available(char *why, size_t why_len) {
    if (why && why_len)
        snprintf(why, why_len, "built without the cuDNN frontend headers (`make deps` fetches "
                               "them from PyPI; then reconfigure)");
    return 0;
}

extern "C" int etc_attention_cudnn_preferred(char *why, size_t why_len) {
    return etc_attention_cudnn_available(why, why_len);
}

extern "C" int etc_attention_cudnn_forward(etc_bf16 *, float *, const etc_bf16 *,
                                           const etc_bf16 *, const etc_bf16 *, int, int, int, int,
                                           int, int) {
    return etc_fail("cuDNN attention: this build has no cuDNN frontend (see "
                    "etc_attention_cudnn_available)");
}

extern "C" int etc_attention_cudnn_backward(etc_bf16 *, etc_bf16 *, etc_bf16 *, const etc_bf16 *,
                                            const etc_bf16 *, const etc_bf16 *, const etc_bf16 *,
                                            const etc_bf16 *, const float *, int, int, int, int,
                                            int, int) {
    return etc_fail("cuDNN attention: this build has no cuDNN frontend (see "
                    "etc_attention_cudnn_available)");
}

extern "C" int etc_attention_cudnn_check_graphs(int, int, int, int, int, int, char *msg,
                                                size_t msg_len) {
    etc_attention_cudnn_available(msg, msg_len);
    return 0;
}

extern "C" int etc_attention_cudnn_prepare(int, int, int, int, int, int, int) {
    return etc_fail("cuDNN attention: this build has no cuDNN frontend (see "
                    "etc_attention_cudnn_available)");
}

extern "C" const char *etc_attention_cudnn_note(void) { return ""; }
extern "C" size_t etc_attention_cudnn_workspace_bytes(void) { return 0; }
extern "C" void etc_attention_cudnn_release(void) {}

#endif
