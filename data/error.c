#include "data/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int et_fail(et_error *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int et_wrap(et_error *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[ET_ERROR_MAX], old[ET_ERROR_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return -1;
}
