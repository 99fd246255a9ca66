// Per-category device time from a pool of CUDA events (timeline.h).
#include <stdlib.h>

#include "kernels/cuda/context.h"
#include "kernels/cuda/timeline.h"

// events[0] is the start; events[1 + i] closes interval i, charged to category[i].
static struct {
    int active, capacity, used, dropped;
    cudaEvent_t *events;
    int *category;
    cudaError_t record_error; // the first failed record, reported by stop
} g_tl;

static void release(int created) {
    for (int i = 0; i < created; i++) cudaEventDestroy(g_tl.events[i]);
    free(g_tl.events);
    free(g_tl.category);
    g_tl.events = nullptr;
    g_tl.category = nullptr;
    g_tl.active = 0;
}

extern "C" int etc_timeline_start(int capacity) {
    if (g_tl.active) return etc_fail("etc_timeline_start: a timeline is already active");
    if (capacity < 1) return etc_fail("etc_timeline_start: capacity %d, needs at least 1", capacity);
    g_tl.events = (cudaEvent_t *)calloc((size_t)capacity + 1, sizeof(cudaEvent_t));
    g_tl.category = (int *)calloc((size_t)capacity, sizeof(int));
    if (!g_tl.events || !g_tl.category) {
        release(0);
        return etc_fail("etc_timeline_start: out of host memory for %d events", capacity);
    }
    // Created here, not in mark: creating an event can synchronise or allocate,
    // which would distort the very time being measured.
    for (int i = 0; i <= capacity; i++) {
        cudaError_t e = cudaEventCreate(&g_tl.events[i]);
        if (e != cudaSuccess) {
            release(i);
            return etc_fail("etc_timeline_start: cudaEventCreate failed at event %d of %d (%s)", i,
                            capacity + 1, cudaGetErrorString(e));
        }
    }
    g_tl.capacity = capacity;
    g_tl.used = g_tl.dropped = 0;
    g_tl.record_error = cudaEventRecord(g_tl.events[0], etc_stream());
    g_tl.active = 1;
    return 0;
}

extern "C" void etc_timeline_mark(int category) {
    if (!g_tl.active) return;
    if (g_tl.used == g_tl.capacity) {
        g_tl.dropped++;
        return;
    }
    cudaError_t e = cudaEventRecord(g_tl.events[g_tl.used + 1], etc_stream());
    if (e != cudaSuccess) {
        if (g_tl.record_error == cudaSuccess) g_tl.record_error = e;
        return;
    }
    g_tl.category[g_tl.used++] = category;
}

extern "C" int etc_timeline_active(void) { return g_tl.active; }

extern "C" int etc_timeline_stop(double *ms_per_category, int *marks_per_category, int n_categories,
                                 etc_timeline_totals *totals) {
    if (!g_tl.active) return etc_fail("etc_timeline_stop: no timeline is active");
    const int created = g_tl.capacity + 1, used = g_tl.used;
    int rc = 0;
    for (int i = 0; i < n_categories; i++) {
        ms_per_category[i] = 0;
        if (marks_per_category) marks_per_category[i] = 0;
    }
    if (totals) *totals = etc_timeline_totals{used, g_tl.dropped, 0.0};
    cudaError_t e = g_tl.record_error;
    if (e == cudaSuccess) e = cudaEventSynchronize(g_tl.events[used]);
    if (e != cudaSuccess)
        rc = etc_fail("etc_timeline_stop: CUDA error while timing (%s)", cudaGetErrorString(e));
    for (int i = 0; i < used && rc == 0; i++) {
        const int c = g_tl.category[i];
        if (c < 0 || c >= n_categories) {
            rc = etc_fail("etc_timeline_stop: mark %d has category %d, outside [0, %d)", i, c,
                          n_categories);
            break;
        }
        float ms = 0;
        e = cudaEventElapsedTime(&ms, g_tl.events[i], g_tl.events[i + 1]);
        if (e != cudaSuccess) {
            rc = etc_fail("etc_timeline_stop: cudaEventElapsedTime of mark %d failed (%s)", i,
                          cudaGetErrorString(e));
            break;
        }
        ms_per_category[c] += ms;
        if (marks_per_category) marks_per_category[c]++;
    }
    // The span as one measurement, so a caller can check that the intervals add up.
    float span = 0;
    if (rc == 0 && totals && used > 0) {
        e = cudaEventElapsedTime(&span, g_tl.events[0], g_tl.events[used]);
        if (e != cudaSuccess)
            rc = etc_fail("etc_timeline_stop: cudaEventElapsedTime of the span failed (%s)",
                          cudaGetErrorString(e));
        totals->total_ms = span;
    }
    if (rc != 0)
        for (int i = 0; i < n_categories; i++) ms_per_category[i] = 0;
    release(created);
    return rc;
}
