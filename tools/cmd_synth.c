/* ehrtune synth: deterministic synthetic de-identified EHR notes (data/synth.h).
 * Prints one summary line (counts only) on stdout; errors on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"
#include "tools/cli_args.h"
#include "tools/commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ehrtune synth --patients N -o notes.jsonl [options]\n"
            "\n"
            "Writes synthetic de-identified EHR records as JSONL in the ingest schema:\n"
            "progress notes, radiology reports and discharge summaries of one admission per\n"
            "patient, each with structured vitals, labs, ICD-10 diagnoses, medications and a\n"
            "demographic group. The same options give byte-identical output.\n"
            "\n"
            "  --patients N            number of patients, 1..%d (ids 1..N)\n"
            "  --seed S                seed (default 0)\n"
            "  -o, --output FILE       notes to write (temp name first, renamed when complete)\n"
            "  --notes-per-patient K   1..%d (default 3: progress, radiology, discharge)\n"
            "  --instructions          after each note, an instruction pair built from it\n"
            "                          (prompt/response: problem list, impression, medications)\n"
            "  --plant-phi             plant identifiers of every PHI-guard kind into the notes\n"
            "  --phi-truth FILE        with --plant-phi: where each one is (benchmark truth)\n"
            "  --phi-per-note N        planted identifiers per note, 1..32 (default 3)\n"
            "  --canaries K            K random 10-digit secrets, one patient each\n"
            "  --canary-file FILE      with --canaries: the list of canaries (keep it apart)\n"
            "  --canary-repeats R      notes of that patient that carry it (default 1)\n"
            "  --force                 replace existing output files\n"
            "\n"
            "Clean output holds no PHI (relative times, placeholders, ages <= 89 or \"90+\");\n"
            "ehrtune phi-scan finds nothing in it. See docs/phi.md.\n",
            ET_SYNTH_MAX_PATIENTS, ET_SYNTH_MAX_NOTES_PER_PATIENT);
}

static int parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    if (et_cli_int(s, lo, hi, out)) {
        fprintf(stderr, "ehrtune: synth: %s wants an integer in %lld..%lld, got '%s'\n", flag, lo,
                hi, s);
        return -1;
    }
    return 0;
}

int cmd_synth(int argc, char **argv) {
    et_synth_options o;
    memset(&o, 0, sizeof o);
    const char *out = NULL, *truth = NULL, *canaries = NULL;
    int have_patients = 0;
    et_cli_seen seen = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--instructions")) {
            o.instructions = 1;
        } else if (!strcmp(a, "--plant-phi")) {
            o.plant_phi = 1;
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--patients") || !strcmp(a, "--seed") || !strcmp(a, "-o") ||
                   !strcmp(a, "--output") || !strcmp(a, "--notes-per-patient") ||
                   !strcmp(a, "--phi-truth") || !strcmp(a, "--phi-per-note") ||
                   !strcmp(a, "--canaries") || !strcmp(a, "--canary-file") ||
                   !strcmp(a, "--canary-repeats")) {
            /* -o and --output are one option */
            const char *name = !strcmp(a, "--output") ? "-o" : a;
            const char *s = et_cli_value("ehrtune: synth", &seen, name, argc, argv, &i);
            if (!s) return 2;
            if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = s;
            else if (!strcmp(a, "--phi-truth")) truth = s;
            else if (!strcmp(a, "--canary-file")) canaries = s;
            else if (!strcmp(a, "--seed")) {
                unsigned long long u;
                if (et_cli_uint(s, &u)) {
                    fprintf(stderr, "ehrtune: synth: --seed wants a non-negative integer, got "
                                    "'%s'\n", s);
                    return 2;
                }
                o.seed = u;
            } else if (!strcmp(a, "--patients")) {
                if (parse_int(a, s, 1, ET_SYNTH_MAX_PATIENTS, &v)) return 2;
                o.patients = v;
                have_patients = 1;
            } else if (!strcmp(a, "--notes-per-patient")) {
                if (parse_int(a, s, 1, ET_SYNTH_MAX_NOTES_PER_PATIENT, &v)) return 2;
                o.notes_per_patient = (int)v;
            } else if (!strcmp(a, "--phi-per-note")) {
                if (parse_int(a, s, 1, 32, &v)) return 2;
                o.phi_per_note = (int)v;
            } else if (!strcmp(a, "--canaries")) {
                if (parse_int(a, s, 0, ET_SYNTH_MAX_CANARIES, &v)) return 2;
                o.canaries = (int)v;
            } else {
                if (parse_int(a, s, 1, ET_SYNTH_MAX_NOTES_PER_PATIENT, &v)) return 2;
                o.canary_repeats = (int)v;
            }
        } else {
            fprintf(stderr, "ehrtune: synth: unknown argument '%s' (see ehrtune synth --help)\n", a);
            return 2;
        }
    }
    if (!have_patients || !out) {
        fprintf(stderr, "ehrtune: synth: --patients and -o are required\n");
        usage(stderr);
        return 2;
    }
    if (!o.plant_phi != !truth || !o.canaries != !canaries) {
        fprintf(stderr, "ehrtune: synth: %s\n",
                !o.plant_phi != !truth ? "--plant-phi and --phi-truth FILE go together"
                                       : "--canaries K and --canary-file FILE go together");
        return 2;
    }
    et_error err = {{0}};
    et_synth_stats st;
    if (et_synth_write(out, truth, canaries, &o, &st, &err)) {
        fprintf(stderr, "ehrtune: synth: %s\n", err.msg);
        return 1;
    }
    int64_t planted = 0;
    for (int k = 0; k < ET_PHI_KINDS; k++) planted += st.planted[k];
    printf("synth: %s: %lld lines (%lld notes, %lld instruction pairs) for %lld patients",
           out, (long long)st.lines, (long long)st.notes, (long long)st.instruction_pairs,
           (long long)o.patients);
    if (o.plant_phi) printf("; %lld identifiers planted (truth: %s)", (long long)planted, truth);
    if (o.canaries)
        printf("; %d canaries in %lld notes (list: %s)", o.canaries,
               (long long)st.canary_insertions, canaries);
    printf("\n");
    return 0;
}
