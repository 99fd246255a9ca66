/* ehrtune privacy: ε for (q, σ, steps, δ), or σ for a target ε, with the RDP or PRV
 * accountant (trainer/accountant.h). The output form is relied on by scripts:
 *   epsilon: "<ε>\n"  or --json {"epsilon": x, "accountant": "rdp", "order": a}
 *            (--manifest adds "recorded_epsilon" and "phases")
 *   sigma:   "<σ>\n"  or --json {"noise_multiplier": x, "epsilon": e, "accountant": "prv"}
 * With --epochs the JSON gains "steps", and the text form notes the steps on stderr
 * (stdout stays one number so `$(ehrtune privacy ...)` works). */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/recipe.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "trainer/accountant.h"
#include "trainer/manifest.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune privacy epsilon --sample-rate Q --noise-multiplier S\n"
            "                               (--steps T | --epochs E) --delta D\n"
            "                               [--accountant rdp|prv] [--json]\n"
            "       ehrtune privacy epsilon --phases '[[S, Q, T], ...]' --delta D\n"
            "                               [--accountant rdp|prv] [--json]\n"
            "       ehrtune privacy epsilon --manifest RUN/manifest.json [--json]\n"
            "       ehrtune privacy sigma   --target-epsilon E --sample-rate Q\n"
            "                               (--steps T | --epochs E) --delta D\n"
            "                               [--accountant rdp|prv] [--json]\n"
            "\n"
            "epsilon: the (epsilon, delta) spent by T steps of DP-SGD with Poisson sampling\n"
            "  at rate Q and noise multiplier S (noise std S times the clip norm).\n"
            "  --phases composes several (sigma, q, steps) phases, as a resumed run that\n"
            "  changed sigma or q lists them in its manifest's privacy.phases; --manifest\n"
            "  recomputes a run's epsilon from its manifest (phases, delta, accountant) and\n"
            "  fails (exit 1) unless it equals the epsilon the manifest records.\n"
            "sigma: the noise multiplier that keeps epsilon <= E, found by Opacus's search\n"
            "  (result within 0.01 below E; error when no S <= 1e6 reaches E).\n"
            "\n"
            "  --sample-rate Q       probability each unit is in a step's batch, in (0, 1]\n"
            "  --noise-multiplier S  > 0\n"
            "  --target-epsilon E    > 0\n"
            "  --steps T             number of steps, >= 1\n"
            "  --epochs E            instead of --steps: T = floor(E / Q), as Opacus\n"
            "  --delta D             in (0, 1)\n"
            "  --accountant A        prv (default; Gopi et al., tight, eps_error 0.01,\n"
            "                        delta_error D/1000) or rdp (Renyi DP, Opacus's orders)\n"
            "  --json                one JSON object instead of one number\n"
            "\n"
            "See docs/privacy-accounting.md.\n");
}

/* Shortest decimal that reads back as the same double (as Python's repr). */
static void format_double(char *buf, size_t n, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void print_json_number(const char *key, double v, int first) {
    char num[64];
    if (isfinite(v)) format_double(num, sizeof num, v);
    else snprintf(num, sizeof num, "null"); /* JSON has no infinity */
    printf("%s\"%s\": %s", first ? "{" : ", ", key, num);
}

/* Reads "--name value" or "--name=value" at argv[*i]; returns 1 if it matched. An
 * option given twice sets *bad (the second would silently win). */
static int take_option(int argc, char **argv, int *i, const char *name, const char **value,
                       int *bad, et_cli_seen *seen) {
    size_t len = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, len) != 0) return 0;
    if (arg[len] == '=') {
        if (et_cli_once("ehrtune: privacy", seen, name)) *bad = 1;
        else *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0') return 0;
    const char *v = et_cli_value("ehrtune: privacy", seen, name, argc, argv, i);
    if (v) *value = v;
    else *bad = 1;
    return 1;
}

static int parse_double(const char *name, const char *s, double *out) {
    double v;
    if (et_cli_double(s, &v)) {
        fprintf(stderr, "ehrtune: privacy: %s expects a finite number, got '%s'\n", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* [[sigma, q, steps], ...] (the manifest's privacy.phases) into the accountant; each
 * phase checked as a single one would be. */
static int add_phases(et_accountant *acc, const cJSON *phases, const char *what) {
    if (!cJSON_IsArray(phases) || cJSON_GetArraySize(phases) < 1) {
        fprintf(stderr, "ehrtune: privacy epsilon: %s must be a non-empty JSON array of "
                        "[noise_multiplier, sample_rate, steps]\n", what);
        return -1;
    }
    int i = 0;
    const cJSON *ph;
    cJSON_ArrayForEach(ph, phases) {
        const cJSON *s = cJSON_GetArrayItem(ph, 0), *q = cJSON_GetArrayItem(ph, 1),
                    *t = cJSON_GetArrayItem(ph, 2);
        et_error err = {{0}};
        if (!cJSON_IsArray(ph) || cJSON_GetArraySize(ph) != 3 || !cJSON_IsNumber(s) ||
            !cJSON_IsNumber(q) || !cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
            !(t->valuedouble >= 1 && t->valuedouble <= 9007199254740992.0)) {
            fprintf(stderr, "ehrtune: privacy epsilon: %s: phase %d is not [noise_multiplier, "
                            "sample_rate, whole number of steps]\n", what, i);
            return -1;
        }
        if (et_accountant_step(acc, s->valuedouble, q->valuedouble, (int64_t)t->valuedouble, &err)) {
            fprintf(stderr, "ehrtune: privacy epsilon: %s: phase %d: %s\n", what, i, err.msg);
            return -1;
        }
        i++;
    }
    return 0;
}

/* The numbers `--manifest` needs from a run's manifest.json. */
static int read_run_privacy(const char *path, et_accountant *acc, double *delta,
                            double *recorded) {
    et_error err = {{0}};
    cJSON *m = et_manifest_read_json(path, &err);
    if (!m) {
        fprintf(stderr, "ehrtune: privacy epsilon: %s\n", err.msg);
        return -1;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "privacy");
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(p, "enabled");
    const cJSON *acc_name = cJSON_GetObjectItemCaseSensitive(p, "accountant");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "delta");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "epsilon");
    int rc = -1;
    et_accountant_kind kind;
    if (!cJSON_IsTrue(on)) {
        fprintf(stderr, "ehrtune: privacy epsilon: %s: the run trained without DP-SGD "
                        "(privacy.enabled is not true): it has no epsilon\n", path);
    } else if (!cJSON_IsString(acc_name) || et_accountant_kind_parse(acc_name->valuestring, &kind, &err) ||
               !cJSON_IsNumber(d) || !cJSON_IsNumber(e)) {
        fprintf(stderr, "ehrtune: privacy epsilon: %s: privacy.accountant, privacy.delta or "
                        "privacy.epsilon missing or malformed: not an ehrtune run manifest?\n", path);
    } else {
        et_accountant_init(acc, kind);
        *delta = d->valuedouble;
        *recorded = e->valuedouble;
        char what[4200];
        snprintf(what, sizeof what, "%s: privacy.phases", path);
        rc = add_phases(acc, cJSON_GetObjectItemCaseSensitive(p, "phases"), what);
    }
    cJSON_Delete(m);
    return rc;
}

static int same_ascii_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static int parse_accountant(const char *name, et_accountant_kind *kind) {
    et_error err = {{0}};
    /* the spellings a recipe's privacy.accountant takes (any case) */
    for (int k = 0; k < 2; k++)
        if (same_ascii_nocase(name, et_recipe_accountant_names[k])) name = et_recipe_accountant_names[k];
    if (et_accountant_kind_parse(name, kind, &err)) {
        fprintf(stderr, "ehrtune: privacy: --accountant: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* `epsilon --phases` / `epsilon --manifest`: ε of several (σ, q, steps) phases. */
static int epsilon_of_phases(const char *manifest_s, const char *phases_s, const char *q_s,
                             const char *sigma_s, const char *steps_s, const char *epochs_s,
                             const char *delta_s, const char *accountant_s, int json) {
    const char *one = manifest_s ? "--manifest" : "--phases";
    const char *clash = (manifest_s && phases_s) ? "--phases" : q_s ? "--sample-rate"
                        : sigma_s ? "--noise-multiplier" : steps_s ? "--steps"
                        : epochs_s ? "--epochs" : (manifest_s && delta_s) ? "--delta"
                        : (manifest_s && accountant_s) ? "--accountant" : NULL;
    if (clash) {
        fprintf(stderr, "ehrtune: privacy epsilon: %s takes its numbers from %s; drop %s\n", one,
                manifest_s ? "the manifest" : "the phases", clash);
        return 2;
    }
    et_accountant acc;
    et_accountant_init(&acc, ET_ACCOUNTANT_PRV);
    double delta = 0, recorded = NAN;
    if (manifest_s) {
        if (read_run_privacy(manifest_s, &acc, &delta, &recorded)) {
            et_accountant_free(&acc);
            return 1;
        }
    } else {
        et_accountant_kind kind = ET_ACCOUNTANT_PRV;
        if (!delta_s) {
            fprintf(stderr, "ehrtune: privacy epsilon: --delta is required (see --help)\n");
            return 2;
        }
        if (parse_double("--delta", delta_s, &delta) || (accountant_s && parse_accountant(accountant_s, &kind)))
            return 2;
        et_accountant_init(&acc, kind);
        cJSON *ph = cJSON_Parse(phases_s);
        const int bad = add_phases(&acc, ph, "--phases");
        cJSON_Delete(ph);
        if (bad) {
            et_accountant_free(&acc);
            return 2;
        }
    }
    et_error err = {{0}};
    double eps = 0, order = NAN;
    const int rc = et_accountant_epsilon(&acc, delta, &eps, &order, &err);
    const et_accountant_kind kind = acc.kind;
    const int n_phases = acc.n_phases;
    et_accountant_free(&acc);
    if (rc) {
        fprintf(stderr, "ehrtune: privacy epsilon: %s\n", err.msg);
        return 1;
    }
    /* the run computed its ε with the same code and numbers: equal up to the last digit
     * its JSON keeps (17 significant digits round-trip a double) */
    const int matches = !manifest_s || fabs(eps - recorded) <= 1e-12 * fabs(recorded);
    if (json) {
        print_json_number("epsilon", eps, 1);
        printf(", \"accountant\": \"%s\"", et_accountant_kind_name(kind));
        if (kind == ET_ACCOUNTANT_RDP) print_json_number("order", order, 0);
        printf(", \"phases\": %d", n_phases);
        if (manifest_s) {
            print_json_number("recorded_epsilon", recorded, 0);
            printf(", \"matches\": %s", matches ? "true" : "false");
        }
        printf("}\n");
    } else {
        printf("%.6f\n", eps);
    }
    if (!matches)
        fprintf(stderr, "ehrtune: privacy epsilon: %s records epsilon %.17g but its phases give "
                        "%.17g\n", manifest_s, recorded, eps);
    if (fflush(stdout) != 0) return 1;
    return matches ? 0 : 1;
}

int cmd_privacy(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    int want_sigma;
    if (!strcmp(argv[1], "epsilon")) want_sigma = 0;
    else if (!strcmp(argv[1], "sigma")) want_sigma = 1;
    else {
        fprintf(stderr, "ehrtune: privacy: unknown action '%s' (expected 'epsilon' or "
                        "'sigma')\n", argv[1]);
        usage(stderr);
        return 2;
    }

    const char *q_s = NULL, *sigma_s = NULL, *target_s = NULL, *steps_s = NULL,
               *epochs_s = NULL, *delta_s = NULL, *accountant_s = NULL, *phases_s = NULL,
               *manifest_s = NULL;
    int json = 0, bad = 0;
    et_cli_seen seen = {0};
    for (int i = 2; i < argc && !bad; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (take_option(argc, argv, &i, "--sample-rate", &q_s, &bad, &seen)) {}
        else if (!want_sigma &&
                 take_option(argc, argv, &i, "--noise-multiplier", &sigma_s, &bad, &seen)) {}
        else if (want_sigma &&
                 take_option(argc, argv, &i, "--target-epsilon", &target_s, &bad, &seen)) {}
        else if (take_option(argc, argv, &i, "--steps", &steps_s, &bad, &seen)) {}
        else if (take_option(argc, argv, &i, "--epochs", &epochs_s, &bad, &seen)) {}
        else if (take_option(argc, argv, &i, "--delta", &delta_s, &bad, &seen)) {}
        else if (take_option(argc, argv, &i, "--accountant", &accountant_s, &bad, &seen)) {}
        else if (!want_sigma && take_option(argc, argv, &i, "--phases", &phases_s, &bad, &seen)) {}
        else if (!want_sigma && take_option(argc, argv, &i, "--manifest", &manifest_s, &bad, &seen)) {}
        else {
            fprintf(stderr, "ehrtune: privacy %s: unknown argument '%s'\n", argv[1], a);
            bad = 1;
        }
    }
    if (bad) {
        fprintf(stderr, "ehrtune: see 'ehrtune privacy --help'\n");
        return 2;
    }

    if (manifest_s || phases_s) return epsilon_of_phases(manifest_s, phases_s, q_s, sigma_s, steps_s,
                                                         epochs_s, delta_s, accountant_s, json);
    if (!accountant_s) accountant_s = "prv";
    const char *missing = !q_s ? "--sample-rate"
                          : !delta_s ? "--delta"
                          : (!want_sigma && !sigma_s) ? "--noise-multiplier"
                          : (want_sigma && !target_s) ? "--target-epsilon"
                          : (!steps_s && !epochs_s) ? "--steps or --epochs"
                          : NULL;
    if (missing) {
        fprintf(stderr, "ehrtune: privacy %s: %s is required (see --help)\n", argv[1], missing);
        return 2;
    }
    if (steps_s && epochs_s) {
        fprintf(stderr, "ehrtune: privacy %s: give --steps or --epochs, not both\n", argv[1]);
        return 2;
    }

    et_error err = {{0}};
    et_accountant_kind kind;
    if (parse_accountant(accountant_s, &kind)) return 2;
    double q, delta, sigma = 0, target = 0, epochs = 0;
    if (parse_double("--sample-rate", q_s, &q) || parse_double("--delta", delta_s, &delta) ||
        (sigma_s && parse_double("--noise-multiplier", sigma_s, &sigma)) ||
        (target_s && parse_double("--target-epsilon", target_s, &target)) ||
        (epochs_s && parse_double("--epochs", epochs_s, &epochs)))
        return 2;
    if (!(q > 0 && q <= 1)) {
        fprintf(stderr, "ehrtune: privacy: --sample-rate must be in (0, 1], got %s\n", q_s);
        return 2;
    }
    if (!(delta > 0 && delta < 1)) {
        fprintf(stderr, "ehrtune: privacy: --delta must be in (0, 1), got %s\n", delta_s);
        return 2;
    }
    if (!want_sigma && !(sigma > 0)) {
        fprintf(stderr, "ehrtune: privacy: --noise-multiplier must be > 0, got %s\n", sigma_s);
        return 2;
    }
    if (want_sigma && !(target > 0)) {
        fprintf(stderr, "ehrtune: privacy: --target-epsilon must be > 0, got %s\n", target_s);
        return 2;
    }

    int64_t steps;
    if (steps_s) {
        long long v;
        if (et_cli_int(steps_s, 1, INT64_MAX, &v)) {
            fprintf(stderr, "ehrtune: privacy: --steps must be an integer >= 1, got '%s'\n",
                    steps_s);
            return 2;
        }
        steps = v;
    } else {
        if (!(epochs > 0)) {
            fprintf(stderr, "ehrtune: privacy: --epochs must be > 0, got %s\n", epochs_s);
            return 2;
        }
        steps = et_steps_for_epochs(epochs, q);
        if (steps < 1) {
            fprintf(stderr, "ehrtune: privacy: --epochs %s at --sample-rate %s is %s steps "
                            "(floor(epochs / q)); need at least 1\n", epochs_s, q_s,
                    steps < 0 ? "too many" : "0");
            return 2;
        }
        if (!json)
            fprintf(stderr, "ehrtune: note: --epochs %s at --sample-rate %s is %lld steps "
                            "(floor(epochs / q), as Opacus)\n", epochs_s, q_s, (long long)steps);
    }

    double eps = 0, order = NAN;
    if (want_sigma) {
        if (et_sigma_for_epsilon(kind, target, delta, q, steps, 0.01, &sigma, &eps, &err)) {
            fprintf(stderr, "ehrtune: privacy sigma: %s\n", err.msg);
            return 1;
        }
    } else {
        et_accountant acc;
        et_accountant_init(&acc, kind);
        int rc = et_accountant_step(&acc, sigma, q, steps, &err) ||
                 et_accountant_epsilon(&acc, delta, &eps, &order, &err);
        et_accountant_free(&acc);
        if (rc) {
            fprintf(stderr, "ehrtune: privacy epsilon: %s\n", err.msg);
            return 1;
        }
    }

    if (json) {
        if (want_sigma) {
            print_json_number("noise_multiplier", sigma, 1);
            print_json_number("epsilon", eps, 0);
        } else {
            print_json_number("epsilon", eps, 1);
        }
        printf(", \"accountant\": \"%s\"", et_accountant_kind_name(kind));
        if (!want_sigma && kind == ET_ACCOUNTANT_RDP) print_json_number("order", order, 0);
        if (epochs_s) printf(", \"steps\": %lld", (long long)steps);
        printf("}\n");
    } else if (want_sigma) {
        printf("%.12g\n", sigma);
    } else {
        printf("%.6f\n", eps);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
