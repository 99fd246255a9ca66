/* Internal pieces of the synthetic EHR generator (data/synth.h), shared by
 * synth.c (driver, output, canaries), synth_notes.c (patients and clinical
 * prose) and synth_phi.c (planted identifiers). Not a public API.
 *
 * Everything is integer arithmetic on a seeded generator: no libm, no locale,
 * so the output is byte-identical for a seed on every platform. */
#ifndef EHRTUNE_SYNTH_PARTS_H
#define EHRTUNE_SYNTH_PARTS_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- RNG --- */

/* xoshiro256** seeded by splitmix64 from (seed, stream, index): every patient,
 * every planting pass and the canary draw have their own stream, so turning
 * --plant-phi or --canaries on leaves the clean text of every note unchanged. */
typedef struct {
    uint64_t s[4];
} synth_rng;

enum { SYNTH_STREAM_PATIENT = 1, SYNTH_STREAM_PLANT = 2, SYNTH_STREAM_CANARY = 3 };

void synth_rng_seed(synth_rng *r, uint64_t seed, uint64_t stream, uint64_t index);
uint64_t synth_rng_next(synth_rng *r);
uint32_t synth_rng_below(synth_rng *r, uint32_t n);  /* uniform in [0, n), n >= 1 */
int synth_rng_range(synth_rng *r, int lo, int hi);   /* uniform in [lo, hi] */
int synth_rng_chance(synth_rng *r, int percent);     /* 1 with probability percent/100 */

#define SYNTH_PICK(r, arr) ((arr)[synth_rng_below((r), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))])

/* ------------------------------------------------------ string builder --- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} synth_sb;

void sb_put(synth_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_putn(synth_sb *b, const char *s, size_t n);
void sb_reset(synth_sb *b);
void sb_free(synth_sb *b);
/* s as a JSON string literal (quotes included); s is ASCII */
void sb_json_string(synth_sb *b, const char *s, size_t n);
/* a scaled integer as a decimal: v = 1234, decimals = 2 -> "12.34" */
void sb_fixed(synth_sb *b, int v, int decimals);

/* ------------------------------------------------------------ patients --- */

#define SYNTH_MAX_COMORBID 4

typedef struct {
    int64_t id;
    int female;
    int age;            /* 18..89, or 90 meaning "90 or older" (never shown exactly) */
    const char *age_band, *race_ethnicity, *payer;
    int acute;          /* index of the admission reason */
    int n_chronic;
    int chronic[SYNTH_MAX_COMORBID];
    int los;            /* length of stay, days */
    int weight_dkg;     /* weight, tenths of kg */
} synth_patient;

void synth_patient_make(synth_patient *p, int64_t id, synth_rng *r);

/* One note: its text, the JSON of its "structured" object, and the
 * instruction-style pair built from it (prompt = prompt_head + text). */
typedef struct {
    const char *type; /* "progress_note", "discharge_summary", "radiology_report" */
    synth_sb text;
    synth_sb structured; /* a JSON object */
    const char *task;    /* "problem_list", "impression_summary", "discharge_medications" */
    synth_sb prompt_head;
    synth_sb response;
} synth_note;

void synth_note_make(synth_note *n, const synth_patient *p, int note_index, int n_notes,
                     synth_rng *r);
void synth_note_free(synth_note *n);

/* ------------------------------------------------- planted identifiers --- */

/* A sentence holding one identifier; [start, end) is the identifier inside it. */
typedef struct {
    char sentence[192];
    size_t start, end;
    int kind;             /* et_phi_kind */
    const char *variant;  /* surface form, e.g. "paren" */
} synth_plant;

/* A sentence with an identifier of `kind` in a random surface variant. */
void synth_plant_make(synth_plant *p, int kind, synth_rng *r);

#endif
