/* ehrtune error reporting.
 *
 * Library code never exits and never prints: a function that can fail takes an
 * `et_error *` as its last argument, fills it with ONE human message (file, place,
 * what was expected, what to do) and returns non-zero. Only the CLI (tools/)
 * prints the message and exits. Messages must never contain patient-derived text
 * (token ids, note text): name the file, line, key or tensor instead. */
#ifndef EHRTUNE_ERROR_H
#define EHRTUNE_ERROR_H

#include <stddef.h>

#define ET_ERROR_MAX 1024

typedef struct et_error {
    char msg[ET_ERROR_MAX];
} et_error;

/* Formats the message into err (if non-NULL) and returns -1, so callers can write
 * `return et_fail(err, "...")`. */
int et_fail(et_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with more context ("while loading X: ..."). */
int et_wrap(et_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
