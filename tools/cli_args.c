/* Strict number parsing and option bookkeeping for the CLI (tools/cli_args.h). */
#include "tools/cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What every parser refuses before strto* sees it: "", and white space in front
 * (the trailing kind is caught by "nothing after the number"). */
static int bad_start(const char *s) { return !s || !*s || isspace((unsigned char)*s); }

int et_cli_int(const char *s, long long lo, long long hi, long long *out) {
    if (bad_start(s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int et_cli_uint(const char *s, unsigned long long *out) {
    if (bad_start(s) || *s == '-') return -1; /* strtoull wraps "-1" to 2^64 - 1 */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

int et_cli_double(const char *s, double *out) {
    if (bad_start(s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int et_cli_once(const char *cmd, et_cli_seen *seen, const char *name) {
    for (int k = 0; k < seen->n; k++)
        if (!strcmp(seen->name[k], name)) {
            fprintf(stderr, "%s: %s given twice (give it once)\n", cmd, name);
            return -1;
        }
    if (seen->n < (int)(sizeof seen->name / sizeof *seen->name)) seen->name[seen->n++] = name;
    return 0;
}

const char *et_cli_value(const char *cmd, et_cli_seen *seen, const char *name, int argc,
                         char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", cmd, name);
        return NULL;
    }
    /* "--init-adapter --resume": the next option is not this one's value (a path that
     * starts with "--" is written ./--name) */
    const char *v = argv[*i + 1];
    if (v[0] == '-' && v[1] == '-' && ((v[2] >= 'a' && v[2] <= 'z') || (v[2] >= 'A' && v[2] <= 'Z'))) {
        fprintf(stderr, "%s: %s needs a value (got the option '%s')\n", cmd, name, v);
        return NULL;
    }
    if (et_cli_once(cmd, seen, name)) return NULL;
    return argv[++*i];
}
