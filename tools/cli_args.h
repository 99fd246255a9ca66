/* Command-line values and options for tools/cmd_*.c.
 *
 * strtoll/strtoull/strtod skip leading white space, read "" as 0 (unless the caller
 * checks where they stopped), strtoull wraps "-1", and strtod takes "inf" and "nan":
 * these parsers refuse all of that. Each takes the whole string: base-10 digits (an
 * optional sign) for integers, a finite decimal number for doubles; nothing before or
 * after it. They print nothing; the command says which option was wrong.
 *
 * et_cli_value takes the value of a value-taking option and refuses one that is the
 * last argument or followed by another option ("--x needs a value") or was given before
 * ("--x given twice"). */
#ifndef EHRTUNE_CLI_ARGS_H
#define EHRTUNE_CLI_ARGS_H

/* A whole number in [lo, hi]. 0 on success, -1 otherwise (*out untouched). */
int et_cli_int(const char *s, long long lo, long long hi, long long *out);

/* A whole number >= 0 (up to 2^64 - 1); no sign. */
int et_cli_uint(const char *s, unsigned long long *out);

/* A finite number (strtod's decimal forms); the caller checks the range. */
int et_cli_double(const char *s, double *out);

/* The value-taking options one command has seen (by name). */
typedef struct {
    const char *name[32];
    int n;
} et_cli_seen;

/* argv[*i] is the option `name` (e.g. "--steps"; aliases such as -o / --output pass one
 * name). Returns its value argv[*i + 1] and advances *i, or NULL after printing
 * "<cmd>: <name> needs a value" or "<cmd>: <name> given twice" on stderr (cmd is the
 * command's message prefix, e.g. "ehrtune train"). */
const char *et_cli_value(const char *cmd, et_cli_seen *seen, const char *name, int argc,
                         char **argv, int *i);

/* Records `name` as given; -1 after printing "<cmd>: <name> given twice" if it was. For
 * options whose value is not the next argument (--name=value). */
int et_cli_once(const char *cmd, et_cli_seen *seen, const char *name);

#endif
