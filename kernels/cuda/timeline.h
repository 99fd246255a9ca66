/* Where the device time of a sequence of ops goes, by category, from CUDA events
 * recorded on the one stream (etc_stream()) between the ops.
 *
 * Why events and not host timers: launches are asynchronous, so only the device
 * knows when an op ended. An event after each op (or group of ops) splits the
 * stream into back-to-back intervals; interval i is charged to the category of
 * the mark that closes it, so the categories add up to the whole span from
 * etc_timeline_start to the last mark (device idle time waiting for the host is
 * charged to the op that follows it). Events are created up front, so a mark costs
 * one cudaEventRecord and no allocation; with no timeline active a mark is one
 * branch and does nothing on the device.
 *
 * One timeline per process, used from one host thread (not thread-safe), like the
 * stream and cuBLASLt handle it shares with the ops. */
#ifndef EHRTUNE_CUDA_TIMELINE_H
#define EHRTUNE_CUDA_TIMELINE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int marks;       /* marks recorded (at most the capacity) */
    int dropped;     /* marks after the pool was full: not timed, their time not counted */
    double total_ms; /* device time from the start event to the last recorded mark */
} etc_timeline_totals;

/* Creates `capacity` (>= 1) events for the marks plus one, and records that one now
 * as the start. Fails (etc_last_error) when a timeline is already active or an
 * event cannot be created (nothing is left allocated then). */
int etc_timeline_start(int capacity);

/* Records an event closing the work queued since the previous mark (or the start)
 * and charges it to `category` (0 <= category < the n_categories given to stop).
 * No timeline active: nothing. Pool full: counted in `dropped`, nothing recorded. */
void etc_timeline_mark(int category);

/* 1 while a timeline is active. */
int etc_timeline_active(void);

/* Waits for the last mark, writes each category's summed milliseconds into
 * ms_per_category[n_categories] and its number of marks into marks_per_category
 * (may be NULL), fills *totals (may be NULL), frees the events and ends the
 * timeline. Fails when no timeline is active, a mark's category is outside
 * [0, n_categories), or the CUDA runtime reports an error (the events are freed
 * and the timeline ended in every case). */
int etc_timeline_stop(double *ms_per_category, int *marks_per_category, int n_categories,
                      etc_timeline_totals *totals);

#ifdef __cplusplus
}
#endif

#endif
