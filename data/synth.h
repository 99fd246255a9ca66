/* Synthetic de-identified EHR notes (`ehrtune synth`), for demos, tests and the
 * PHI guard's benchmark. No real patient data is ever involved.
 *
 * Output: JSONL in the ingest schema (docs/phi.md), one object per line:
 *   {"patient_id": 17, "note_type": "progress_note", "text": "...",
 *    "structured": {"vitals": {..}, "labs": {..}, "diagnoses": [ICD-10], "medications": [..]},
 *    "group": {"sex": "F", "age_band": "60-69", "race_ethnicity": "White", "payer": "Medicare"}}
 * and, with instructions on, after each note an instruction pair built from it:
 *   {"patient_id": 17, "task": "problem_list", "prompt": "<instruction>\n\n<note>",
 *    "response": "...", "group": {..}}
 *
 * The output is a function of the options alone: the same options give the same
 * bytes on every run and platform. Turning plant_phi or canaries on changes only
 * the inserted sentences: every note's other text stays as it was.
 *
 * With plant_phi, each note gets `phi_per_note` sentences holding an identifier
 * (kinds drawn uniformly, several surface variants each) and the truth file gets
 * one line per planted identifier and per field it lands in:
 *   {"line": 12, "field": "text", "kind": "phone", "variant": "paren", "start": 431, "end": 445}
 * (start/end: byte offsets into the decoded JSON string of that field).
 *
 * With canaries K > 0, K patients (distinct, drawn at random) each get one random
 * 10-digit secret in a sentence template, inserted into `canary_repeats` of their
 * notes; the canary file gets one line per canary:
 *   {"canary": 0, "patient_id": 17, "secret": "4829103756",
 *    "template": "Outside hospital record {secret} was reviewed.",
 *    "prefix": "Outside hospital record ", "insertions": [{"line": 52, "field": "text",
 *    "start": 310, "end": 320}, ...]}
 * The secrets are MRN-shaped on purpose (Secret Sharer canaries, research/dp.md §6),
 * so the PHI guard flags them: ingest a canary corpus with --allow-phi-findings. */
#ifndef EHRTUNE_SYNTH_H
#define EHRTUNE_SYNTH_H

#include <stdint.h>

#include "data/error.h"
#include "data/phi_scan.h"

#define ET_SYNTH_MAX_PATIENTS 10000000
#define ET_SYNTH_MAX_NOTES_PER_PATIENT 50
#define ET_SYNTH_MAX_CANARIES 100000

typedef struct {
    int64_t patients;       /* 1..ET_SYNTH_MAX_PATIENTS; ids are 1..patients */
    uint64_t seed;
    int notes_per_patient;  /* 1..ET_SYNTH_MAX_NOTES_PER_PATIENT; 0 = 3 */
    int instructions;       /* emit an instruction pair after each note */
    int plant_phi;          /* plant identifiers (truth_path required) */
    int phi_per_note;       /* planted sentences per note; 0 = 3 */
    int canaries;           /* 0..min(patients, ET_SYNTH_MAX_CANARIES) (canary_path required) */
    int canary_repeats;     /* 1..notes_per_patient; 0 = 1 */
    int force;              /* replace existing output files */
} et_synth_options;

typedef struct {
    int64_t lines, notes, instruction_pairs;
    int64_t planted[ET_PHI_KINDS]; /* identifiers planted per kind (notes only, not prompts) */
    int64_t canary_insertions;     /* in notes (prompts copy them again) */
} et_synth_stats;

/* Writes the notes to out_path, and the truth / canary lists when asked. Each
 * file is written under a temporary name in its folder and renamed only when all
 * are complete, so a failure leaves no partial output. Existing files are
 * refused unless opt->force. Paths must differ. stats may be NULL. */
int et_synth_write(const char *out_path, const char *truth_path, const char *canary_path,
                   const et_synth_options *opt, et_synth_stats *stats, et_error *err);

#endif
