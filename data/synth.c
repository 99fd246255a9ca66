/* ehrtune synth driver (data/synth.h): seeded streams, the output files, the
 * planted identifiers' truth and the canaries. Clinical prose lives in
 * synth_notes.c, the planted identifier sentences in synth_phi.c. */
#include "data/synth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/synth_parts.h"

/* ---------------------------------------------------------------- RNG --- */

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void synth_rng_seed(synth_rng *r, uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t x = mix64(mix64(seed) ^ mix64(stream * 0x2545f4914f6cdd1dull) ^ mix64(~index));
    for (int i = 0; i < 4; i++) r->s[i] = x = mix64(x + (uint64_t)i);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t synth_rng_next(synth_rng *r) { /* xoshiro256** */
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint32_t synth_rng_below(synth_rng *r, uint32_t n) {
    return (uint32_t)(((synth_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

int synth_rng_range(synth_rng *r, int lo, int hi) {
    return lo + (int)synth_rng_below(r, (uint32_t)(hi - lo + 1));
}

int synth_rng_chance(synth_rng *r, int percent) { return (int)synth_rng_below(r, 100) < percent; }

/* ------------------------------------------------------ string builder --- */

static int sb_grow(synth_sb *b, size_t need) {
    if (b->oom) return -1;
    if (b->len + need + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
        b->oom = 1;
        return -1;
    }
    b->buf = nb;
    b->cap = cap;
    return 0;
}

void sb_put(synth_sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sb_grow(b, (size_t)n)) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_putn(synth_sb *b, const char *s, size_t n) {
    if (sb_grow(b, n)) return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

void sb_reset(synth_sb *b) {
    b->len = 0;
    if (b->buf) b->buf[0] = 0;
}

void sb_free(synth_sb *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

void sb_json_string(synth_sb *b, const char *s, size_t n) {
    sb_putn(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_putn(b, s + run, i - run);
        run = i + 1;
        if (c == '"') sb_putn(b, "\\\"", 2);
        else if (c == '\\') sb_putn(b, "\\\\", 2);
        else if (c == '\n') sb_putn(b, "\\n", 2);
        else if (c == '\t') sb_putn(b, "\\t", 2);
        else sb_put(b, "\\u%04x", c);
    }
    sb_putn(b, s + run, n - run);
    sb_putn(b, "\"", 1);
}

void sb_fixed(synth_sb *b, int v, int decimals) {
    if (decimals <= 0) {
        sb_put(b, "%d", v);
        return;
    }
    int scale = decimals == 1 ? 10 : 100, a = v < 0 ? -v : v;
    sb_put(b, "%s%d.%0*d", v < 0 ? "-" : "", a / scale, decimals, a % scale);
}

/* ---------------------------------------------------------- out files --- */

typedef struct {
    const char *path;
    char *tmp;
    FILE *f;
} out_file;

static int out_open(out_file *o, const char *path, int force, et_error *err) {
    o->path = path;
    if (!force && access(path, F_OK) == 0)
        return et_fail(err, "%s: already exists (use --force to replace it)", path);
    size_t n = strlen(path) + 16;
    o->tmp = malloc(n);
    if (!o->tmp) return et_fail(err, "%s: out of memory", path);
    snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        return et_fail(err, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        return et_fail(err, "%s: %s", path, strerror(e));
    }
    return 0;
}

static int out_write(out_file *o, const synth_sb *b, et_error *err) {
    if (b->oom) return et_fail(err, "%s: out of memory while composing a line", o->path);
    if (fwrite(b->buf, 1, b->len, o->f) != b->len)
        return et_fail(err, "%s: write failed: %s", o->path, strerror(errno));
    return 0;
}

static int out_finish(out_file *o, et_error *err) {
    FILE *f = o->f;
    o->f = NULL;
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (bad) return et_fail(err, "%s: write failed: %s", o->path, strerror(e));
    return 0;
}

static void out_discard(out_file *o) {
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------ canaries --- */

/* Templates of the canary sentences: {secret} is a 10-digit number, |R| = 10^10
 * (research/dp.md §6). Each names an identifier, as an MRN leak would read. */
static const char *const CANARY_TEMPLATES[] = {
    "Outside hospital record {secret} was reviewed.",
    "Prior account {secret} was merged into this chart.",
    "Old MRN {secret} retired at registration.",
    "Lab accession {secret} was re-run for hemolysis.",
};
#define N_CANARY_TEMPLATES (sizeof CANARY_TEMPLATES / sizeof CANARY_TEMPLATES[0])

typedef struct {
    int64_t line;
    const char *field;
    size_t start, end;
} placement;

typedef struct {
    int64_t patient_index;
    char secret[11];
    int tmpl;
    int *notes;         /* [repeats] note indices of that patient that carry it */
    placement *placed;  /* [repeats * 2] */
    int n_placed;
} canary;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int draw_canaries(canary *cs, const et_synth_options *o, et_error *err) {
    synth_rng r;
    synth_rng_seed(&r, o->seed, SYNTH_STREAM_CANARY, 0);
    uint8_t *taken = calloc((size_t)(o->patients + 7) / 8, 1);
    int64_t *chosen = malloc(sizeof *chosen * (size_t)o->canaries);
    if (!taken || !chosen) {
        free(taken);
        free(chosen);
        return et_fail(err, "out of memory choosing canary patients");
    }
    for (int k = 0; k < o->canaries;) { /* distinct patients */
        int64_t p = synth_rng_below(&r, (uint32_t)o->patients);
        if (taken[p / 8] >> (p % 8) & 1) continue;
        taken[p / 8] |= (uint8_t)(1u << (p % 8));
        chosen[k++] = p;
    }
    qsort(chosen, (size_t)o->canaries, sizeof *chosen, cmp_i64);
    int rc = 0;
    for (int k = 0; k < o->canaries; k++) {
        canary *c = &cs[k];
        c->patient_index = chosen[k];
        for (int d = 0; d < 10; d++) c->secret[d] = (char)('0' + synth_rng_below(&r, 10));
        c->secret[10] = 0;
        c->tmpl = (int)synth_rng_below(&r, N_CANARY_TEMPLATES);
        c->notes = malloc(sizeof *c->notes * (size_t)o->notes_per_patient);
        c->placed = malloc(sizeof *c->placed * (size_t)o->canary_repeats * 2);
        if (!c->notes || !c->placed) {
            rc = et_fail(err, "out of memory for canaries");
            break;
        }
        /* canary_repeats distinct notes: a partial Fisher-Yates shuffle */
        for (int i = 0; i < o->notes_per_patient; i++) c->notes[i] = i;
        for (int i = 0; i < o->canary_repeats; i++) {
            int j = i + (int)synth_rng_below(&r, (uint32_t)(o->notes_per_patient - i));
            int t = c->notes[i];
            c->notes[i] = c->notes[j];
            c->notes[j] = t;
        }
    }
    free(taken);
    free(chosen);
    return rc;
}

static int canary_in_note(const canary *c, int repeats, int note) {
    for (int i = 0; i < repeats; i++)
        if (c->notes[i] == note) return 1;
    return 0;
}

static void canary_sentence(const canary *c, char *out, size_t cap, size_t *start, size_t *end) {
    const char *t = CANARY_TEMPLATES[c->tmpl], *hole = strstr(t, "{secret}");
    size_t pre = (size_t)(hole - t);
    snprintf(out, cap, "%.*s%s%s", (int)pre, t, c->secret, hole + 8);
    *start = pre;
    *end = pre + 10;
}

static void canary_line(synth_sb *b, const canary *c, int id, int64_t patient_id) {
    const char *t = CANARY_TEMPLATES[c->tmpl];
    size_t pre = (size_t)(strstr(t, "{secret}") - t);
    sb_put(b, "{\"canary\": %d, \"patient_id\": %lld, \"secret\": \"%s\", \"template\": ", id,
           (long long)patient_id, c->secret);
    sb_json_string(b, t, strlen(t));
    sb_put(b, ", \"prefix\": ");
    sb_json_string(b, t, pre);
    sb_put(b, ", \"insertions\": [");
    for (int i = 0; i < c->n_placed; i++)
        sb_put(b, "%s{\"line\": %lld, \"field\": \"%s\", \"start\": %zu, \"end\": %zu}",
               i ? ", " : "", (long long)c->placed[i].line, c->placed[i].field,
               c->placed[i].start, c->placed[i].end);
    sb_put(b, "]}\n");
}

/* ----------------------------------------------------------- insertion --- */

typedef struct {
    size_t pos;              /* in the clean text */
    int order;               /* ties keep draw order */
    const char *sentence;
    size_t span_start, span_end; /* the identifier inside the sentence */
    int kind;                /* et_phi_kind, or -1 for a canary */
    const char *variant;
    size_t placed_start;     /* where the identifier landed in the final text */
} insertion;

#define MAX_INSERTIONS 64

static int cmp_insertion(const void *a, const void *b) {
    const insertion *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->order - y->order;
}

/* Sentence boundaries of a note: line starts, and ". " before a capital or a
 * digit unless the period ends a title ("Dr. [**Name**]" is one sentence). */
static size_t boundaries(const synth_sb *t, size_t *out, size_t cap) {
    size_t n = 0;
    const char *s = t->buf;
    for (size_t i = 1; i < t->len && n < cap; i++) {
        int line_start = s[i - 1] == '\n' && s[i] != '\n';
        int after_period = i >= 2 && s[i - 2] == '.' && s[i - 1] == ' ' &&
                           ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9'));
        if (after_period) {
            size_t w = i - 2;
            while (w > 0 && ((s[w - 1] >= 'a' && s[w - 1] <= 'z') || (s[w - 1] >= 'A' && s[w - 1] <= 'Z'))) w--;
            size_t len = i - 2 - w;
            if (len <= 3 && w < i - 2 && s[w] >= 'A' && s[w] <= 'Z') after_period = 0; /* Dr. Mr. Ms. */
        }
        if (line_start || after_period) out[n++] = i;
    }
    return n;
}

/* final text = clean text with each sentence + " " spliced in at its boundary */
static void splice(synth_sb *out, const synth_sb *clean, insertion *ins, int n) {
    qsort(ins, (size_t)n, sizeof *ins, cmp_insertion);
    sb_reset(out);
    size_t from = 0;
    for (int i = 0; i < n; i++) {
        sb_putn(out, clean->buf + from, ins[i].pos - from);
        from = ins[i].pos;
        ins[i].placed_start = out->len;
        sb_putn(out, ins[i].sentence, strlen(ins[i].sentence));
        sb_putn(out, " ", 1);
    }
    sb_putn(out, clean->buf + from, clean->len - from);
}

/* ------------------------------------------------------------- driver --- */

static void group_json(synth_sb *b, const synth_patient *p) {
    sb_put(b, "{\"sex\": \"%s\", \"age_band\": \"%s\", \"race_ethnicity\": \"%s\", "
              "\"payer\": \"%s\"}",
           p->female ? "F" : "M", p->age_band, p->race_ethnicity, p->payer);
}

static void truth_line(synth_sb *b, int64_t line, const char *field, const insertion *in,
                       size_t shift) {
    size_t s = in->placed_start + in->span_start + shift, e = in->placed_start + in->span_end + shift;
    sb_put(b, "{\"line\": %lld, \"field\": \"%s\", \"kind\": \"%s\", \"variant\": \"%s\", "
              "\"start\": %zu, \"end\": %zu}\n",
           (long long)line, field, et_phi_kind_name(in->kind), in->variant, s, e);
}

typedef struct {
    const et_synth_options *o;
    out_file notes, truth, canaries;
    canary *cs;
    et_synth_stats st;
    synth_sb line, final_text, group, tline;
    synth_note note;
    int64_t line_no;
} synth_run;

static int write_patient(synth_run *w, int64_t pi, canary *c, et_error *err) {
    const et_synth_options *o = w->o;
    synth_rng pr, plant_rng, canary_rng;
    synth_rng_seed(&pr, o->seed, SYNTH_STREAM_PATIENT, (uint64_t)pi);
    synth_rng_seed(&plant_rng, o->seed, SYNTH_STREAM_PLANT, (uint64_t)pi);
    synth_rng_seed(&canary_rng, o->seed, SYNTH_STREAM_CANARY, 1 + (uint64_t)pi);
    synth_patient p;
    synth_patient_make(&p, pi + 1, &pr);
    sb_reset(&w->group);
    group_json(&w->group, &p);

    for (int ni = 0; ni < o->notes_per_patient; ni++) {
        synth_note_make(&w->note, &p, ni, o->notes_per_patient, &pr);
        const synth_sb *clean = &w->note.text;
        if (clean->oom) return et_fail(err, "out of memory composing a note");
        size_t bound[512];
        size_t nb = boundaries(clean, bound, 512);
        insertion ins[MAX_INSERTIONS];
        synth_plant plants[MAX_INSERTIONS];
        char canary_text[160];
        int n = 0;
        if (o->plant_phi && nb) {
            for (int k = 0; k < o->phi_per_note && n < MAX_INSERTIONS - 1; k++, n++) {
                synth_plant_make(&plants[n], (int)synth_rng_below(&plant_rng, ET_PHI_KINDS),
                                 &plant_rng);
                ins[n] = (insertion){bound[synth_rng_below(&plant_rng, (uint32_t)nb)], n,
                                     plants[n].sentence, plants[n].start, plants[n].end,
                                     plants[n].kind, plants[n].variant, 0};
            }
        }
        int has_canary = c && nb && canary_in_note(c, o->canary_repeats, ni);
        if (has_canary) {
            size_t s, e;
            canary_sentence(c, canary_text, sizeof canary_text, &s, &e);
            ins[n] = (insertion){bound[synth_rng_below(&canary_rng, (uint32_t)nb)], n,
                                 canary_text, s, e, -1, NULL, 0};
            n++;
        }
        splice(&w->final_text, clean, ins, n);

        /* the note */
        int64_t note_line = ++w->line_no;
        sb_reset(&w->line);
        sb_put(&w->line, "{\"patient_id\": %lld, \"note_type\": \"%s\", \"text\": ",
               (long long)p.id, w->note.type);
        sb_json_string(&w->line, w->final_text.buf, w->final_text.len);
        sb_put(&w->line, ", \"structured\": %s, \"group\": %s}\n", w->note.structured.buf,
               w->group.buf);
        if (out_write(&w->notes, &w->line, err)) return -1;
        w->st.notes++;

        /* the instruction pair built from it: prompt = head + note */
        int64_t pair_line = 0;
        size_t head = w->note.prompt_head.len;
        if (o->instructions) {
            pair_line = ++w->line_no;
            sb_reset(&w->line);
            sb_put(&w->line, "{\"patient_id\": %lld, \"task\": \"%s\", \"prompt\": ",
                   (long long)p.id, w->note.task);
            sb_reset(&w->tline);
            sb_putn(&w->tline, w->note.prompt_head.buf, head);
            sb_putn(&w->tline, w->final_text.buf, w->final_text.len);
            sb_json_string(&w->line, w->tline.buf, w->tline.len);
            sb_put(&w->line, ", \"response\": ");
            sb_json_string(&w->line, w->note.response.buf, w->note.response.len);
            sb_put(&w->line, ", \"group\": %s}\n", w->group.buf);
            if (out_write(&w->notes, &w->line, err)) return -1;
            w->st.instruction_pairs++;
        }

        for (int i = 0; i < n; i++) {
            if (ins[i].kind < 0) { /* the canary */
                size_t s = ins[i].placed_start + ins[i].span_start;
                c->placed[c->n_placed++] = (placement){note_line, "text", s, s + 10};
                if (pair_line) c->placed[c->n_placed++] = (placement){pair_line, "prompt", s + head, s + head + 10};
                w->st.canary_insertions++;
                continue;
            }
            w->st.planted[ins[i].kind]++;
            sb_reset(&w->tline);
            truth_line(&w->tline, note_line, "text", &ins[i], 0);
            if (pair_line) truth_line(&w->tline, pair_line, "prompt", &ins[i], head);
            if (out_write(&w->truth, &w->tline, err)) return -1;
        }
    }
    return 0;
}

static int check_options(et_synth_options *o, const char *out, const char *truth,
                         const char *canaries, et_error *err) {
    if (!o->notes_per_patient) o->notes_per_patient = 3;
    if (!o->phi_per_note) o->phi_per_note = 3;
    if (!o->canary_repeats) o->canary_repeats = 1;
    if (!out) return et_fail(err, "no output file given");
    if (o->patients < 1 || o->patients > ET_SYNTH_MAX_PATIENTS)
        return et_fail(err, "patients must be in 1..%d", ET_SYNTH_MAX_PATIENTS);
    if (o->notes_per_patient < 1 || o->notes_per_patient > ET_SYNTH_MAX_NOTES_PER_PATIENT)
        return et_fail(err, "notes per patient must be in 1..%d", ET_SYNTH_MAX_NOTES_PER_PATIENT);
    if (o->phi_per_note < 1 || o->phi_per_note > 32)
        return et_fail(err, "planted identifiers per note must be in 1..32");
    if (o->plant_phi && !truth)
        return et_fail(err, "planting PHI needs a truth file (--phi-truth FILE) for the benchmark");
    if (!o->plant_phi && truth) return et_fail(err, "a truth file is written only with --plant-phi");
    if (o->canaries < 0 || o->canaries > ET_SYNTH_MAX_CANARIES || o->canaries > o->patients)
        return et_fail(err, "canaries must be in 0..min(patients, %d)", ET_SYNTH_MAX_CANARIES);
    if (o->canaries && !canaries)
        return et_fail(err, "canaries need a list file (--canary-file FILE), kept apart from the notes");
    if (!o->canaries && canaries) return et_fail(err, "a canary file is written only with --canaries K");
    if (o->canary_repeats < 1 || o->canary_repeats > o->notes_per_patient)
        return et_fail(err, "canary repeats must be in 1..notes per patient (%d)", o->notes_per_patient);
    if ((truth && !strcmp(truth, out)) || (canaries && !strcmp(canaries, out)) ||
        (truth && canaries && !strcmp(truth, canaries)))
        return et_fail(err, "the notes, truth and canary files must be different paths");
    return 0;
}

int et_synth_write(const char *out_path, const char *truth_path, const char *canary_path,
                   const et_synth_options *opt, et_synth_stats *stats, et_error *err) {
    et_synth_options o = *opt;
    if (check_options(&o, out_path, truth_path, canary_path, err)) return -1;
    synth_run w;
    memset(&w, 0, sizeof w);
    w.o = &o;
    int rc = -1;
    if (o.canaries) {
        w.cs = calloc((size_t)o.canaries, sizeof *w.cs);
        if (!w.cs) {
            et_fail(err, "out of memory for canaries");
            goto done;
        }
        if (draw_canaries(w.cs, &o, err)) goto done;
    }
    if (out_open(&w.notes, out_path, o.force, err)) goto done;
    if (truth_path && out_open(&w.truth, truth_path, o.force, err)) goto done;
    if (canary_path && out_open(&w.canaries, canary_path, o.force, err)) goto done;

    int next_canary = 0;
    for (int64_t pi = 0; pi < o.patients; pi++) {
        canary *c = NULL;
        if (next_canary < o.canaries && w.cs[next_canary].patient_index == pi) c = &w.cs[next_canary++];
        if (write_patient(&w, pi, c, err)) goto done;
    }
    w.st.lines = w.line_no;
    for (int k = 0; k < o.canaries; k++) {
        sb_reset(&w.line);
        canary_line(&w.line, &w.cs[k], k, w.cs[k].patient_index + 1);
        if (out_write(&w.canaries, &w.line, err)) goto done;
    }
    /* all complete: only now do the files take their names */
    if (out_finish(&w.notes, err) || (truth_path && out_finish(&w.truth, err)) ||
        (canary_path && out_finish(&w.canaries, err)))
        goto done;
    if (rename(w.notes.tmp, out_path) ||
        (truth_path && rename(w.truth.tmp, truth_path)) ||
        (canary_path && rename(w.canaries.tmp, canary_path))) {
        et_fail(err, "cannot rename the finished output into place: %s", strerror(errno));
        goto done;
    }
    free(w.notes.tmp), free(w.truth.tmp), free(w.canaries.tmp);
    memset(&w.notes, 0, sizeof w.notes), memset(&w.truth, 0, sizeof w.truth);
    memset(&w.canaries, 0, sizeof w.canaries);
    if (stats) *stats = w.st;
    rc = 0;
done:
    out_discard(&w.notes);
    out_discard(&w.truth);
    out_discard(&w.canaries);
    for (int k = 0; w.cs && k < o.canaries; k++) free(w.cs[k].notes), free(w.cs[k].placed);
    free(w.cs);
    sb_free(&w.line);
    sb_free(&w.final_text);
    sb_free(&w.group);
    sb_free(&w.tline);
    synth_note_free(&w.note);
    return rc;
}
