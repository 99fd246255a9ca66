/* PHI guard: a pattern scanner for the HIPAA Safe Harbor identifiers that
 * patterns can catch (research/phi-and-patient-dp.md §1, §3). It is a safety net
 * over notes that are already de-identified, not a de-identifier: names without a
 * title, cities, hospitals and free-text locations are beyond it (docs/phi.md).
 *
 * Matchers are hand-written (no regex library) so the rules stay explicit and
 * testable one by one. Text is UTF-8, read through a normalised view: Unicode
 * spaces, dashes and minus signs, and fullwidth digits count as their ASCII forms;
 * beyond those only ASCII bytes take part in a pattern, any other byte separates
 * words. De-identification placeholders
 * ("[**Medical Record Number 4567**]") are skipped whole.
 *
 * Nothing here prints. Findings carry byte offsets for tests and benchmarks; the
 * CLI prints only kinds, counts and line numbers, never the matched text. */
#ifndef EHRTUNE_PHI_SCAN_H
#define EHRTUNE_PHI_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "data/error.h"

typedef enum {
    ET_PHI_SSN,              /* ddd-dd-dddd, ddd dd dddd; 9 bare digits after an SSN cue */
    ET_PHI_PHONE,            /* NANP shapes: (617) 555-0142, 617.555.0142, +1 617 555 0142 */
    ET_PHI_FAX,              /* a phone shape whose nearest cue word is "fax" */
    ET_PHI_EMAIL,
    ET_PHI_URL,              /* scheme://..., www...., host.tld with a known TLD */
    ET_PHI_IP,               /* IPv4 dotted quad (octets <= 255), IPv6 (inet_pton) */
    ET_PHI_MRN,              /* id after MRN/account/... cues; any bare run of >= 7 digits */
    ET_PHI_STREET_ADDRESS,   /* number + capitalised words + street suffix; PO Box */
    ET_PHI_ZIP,              /* 5(+4) digits after a state or a "ZIP" cue */
    ET_PHI_DATE,             /* month+day (with or without year), month+year */
    ET_PHI_AGE_OVER_89,      /* 90..119 with an age word; "nonagenarian" */
    ET_PHI_NAME_AFTER_TITLE, /* Dr./Mr./Mrs./Ms./Miss/Mx./Prof. + capitalised word */
    ET_PHI_KINDS
} et_phi_kind;

/* "ssn", "phone", "fax", "email", "url", "ip", "mrn", "street_address", "zip",
 * "date", "age_over_89", "name_after_title"; NULL when out of range. */
const char *et_phi_kind_name(int kind);
/* The kind with that name, or -1. */
int et_phi_kind_from_name(const char *name);

typedef struct {
    int kind;     /* et_phi_kind */
    size_t start; /* byte offsets into the scanned text as given (not the normalised */
    size_t end;   /* view): [start, end), whole UTF-8 characters */
} et_phi_finding;

/* Scans text[0..len). Adds one to counts[kind] per finding (counts may be NULL),
 * stores the first `cap` findings in `out` (may be NULL when cap is 0), in text
 * order, non-overlapping, and returns the total number of findings. Time is linear
 * in len; memory is fixed (a window of the normalised view on the stack, about
 * 24 KiB), whatever len. */
size_t et_phi_scan_text(const char *text, size_t len, int64_t counts[ET_PHI_KINDS],
                        et_phi_finding *out, size_t cap);

/* As et_phi_scan_text, for a text whose first structured_len bytes are the rendered
 * "structured" block ("Labs: Hiv viral load 1250000; ..."): a bare run of digits
 * starting there is a value whose unit the rendering does not write, and is not
 * flagged; the cue rules still apply there ("Mrn 1234567"). 0: no such block. */
size_t et_phi_scan_text_in(const char *text, size_t len, size_t structured_len,
                           int64_t counts[ET_PHI_KINDS], et_phi_finding *out, size_t cap);

/* Every finding of et_phi_scan_text_in in one pass: a malloc'd array (the caller
 * frees it) of *n findings, grown as they come, so memory is proportional to the
 * number of findings. NULL when there are none (*n == 0) or when memory ran out
 * (*oom set, *n still the count). */
et_phi_finding *et_phi_scan_text_all(const char *text, size_t len, size_t structured_len,
                                     size_t *n, int *oom);

/* ------------------------------------------------------- JSONL records --- */

/* Every string of a JSONL record, field by field: every string value at any depth
 * (text, prompt, response, messages[].content, group labels, strings inside
 * structured, unknown keys too) and the keys of nested objects (a lab name becomes
 * text when structured fields are serialised), except the top-level "patient_id"
 * (it never reaches the tokens: docs/corpus.md). Numbers and booleans are not text.
 * The scan itself reads these strings as et_phi_record_texts joins them.
 *
 * fn is called once per string with its path ("text", "messages[1].content",
 * "structured.medications[0]", "structured.labs{}" for a key) and its bytes. */
typedef void (*et_phi_field_fn)(void *ctx, const char *path, const char *text, size_t len);
void et_phi_walk_record(const cJSON *record, et_phi_field_fn fn, void *ctx);

/* One field's place in a text that et_phi_record_texts hands on. */
typedef struct {
    const char *path;     /* as et_phi_walk_record names it ("text", "prompt", ...), or
                           * "structured" for the rendered block */
    size_t offset, len;   /* its bytes within the text */
} et_phi_part;

typedef void (*et_phi_text_fn)(void *ctx, const char *text, size_t len,
                               const et_phi_part *parts, int n_parts);

/* The texts of a record as ingest tokenizes them, which et_phi_scan_record scans.
 * The document's own text is one string, as data/render.c joins it (no separator):
 *   "structured" rendered (et_render_structured) + "text";
 *   "structured" rendered + "prompt" + "response";
 *   "messages": each content alone, the first user's after the rendered block.
 * Finding offsets in such a text run across the joined fields: parts[] says which
 * field each byte range came from (a finding may span two). Every other string
 * (group labels, roles, unknown keys, the keys of nested objects) is a text of one
 * part, as et_phi_walk_record finds it; "patient_id" is not scanned. A "structured"
 * that does not render is walked field by field. */
void et_phi_record_texts(const cJSON *record, et_phi_text_fn fn, void *ctx);

/* Scans a text of et_phi_record_texts as et_phi_scan_text does, offsets in the joined
 * text. A part whose edge is not a line break is also scanned alone, and what it
 * shows that no finding of the joined text overlaps is counted too: joining can hide
 * as well as reveal ("Dr. Smith" at the start of a response glued to the prompt's
 * last letter). */
size_t et_phi_scan_parts(const char *text, size_t len, const et_phi_part *parts, int n_parts,
                         int64_t counts[ET_PHI_KINDS], et_phi_finding *out, size_t cap);

/* Lines with findings kept (in order) for the report; counts are never capped. */
#define ET_PHI_MAX_LINES 1000

typedef struct {
    int64_t lines_scanned;  /* non-blank JSONL lines */
    int64_t fields_scanned; /* strings scanned (a joined text counts each of its fields) */
    int64_t counts[ET_PHI_KINDS];
    int64_t total;          /* sum of counts */
    int64_t lines_with_findings;
    int n_lines;                            /* stored entries below, <= ET_PHI_MAX_LINES */
    int64_t lines[ET_PHI_MAX_LINES];        /* 1-based line numbers with findings */
    uint16_t line_kinds[ET_PHI_MAX_LINES];  /* bit k: kind k found on that line */
} et_phi_report;

void et_phi_report_init(et_phi_report *r);

/* Scans one parsed record found at 1-based line `line_no`; returns its finding
 * count. The ingest path uses this on the object it has already parsed. It scans
 * the texts of et_phi_record_texts: the document as it is tokenized ("structured"
 * rendered, prompt and response joined), so identifiers that only the joined text
 * holds are found. */
int64_t et_phi_scan_record(et_phi_report *r, const cJSON *record, int64_t line_no);

/* Whether a raw JSON line holds the escape \u0000. cJSON ends a string at NUL,
 * so whatever follows it would be invisible to the scan (and to the tokenizer):
 * such lines are refused rather than half scanned. */
int et_phi_json_has_nul_escape(const char *line, size_t len);

/* Scans a whole JSONL file (blank lines skipped, a UTF-8 BOM on line 1 ignored).
 * Fails, naming the file and line, on an unreadable file, a line that is not a
 * JSON object or a line with \u0000; the report then holds the lines before it. */
int et_phi_scan_jsonl(const char *path, et_phi_report *r, et_error *err);

/* The summary stored as the corpus attribute `phi_scan` (malloc'd, one line):
 *   {"scanned": true, "scanner": "ehrtune-phi/1", "lines_scanned": N,
 *    "fields_scanned": F, "findings": {"ssn": 0, ... every kind ...},
 *    "total_findings": T, "lines_with_findings": L, "first_lines": [<= 20 line numbers],
 *    "allowed": A}
 * "allowed" is whether the caller let findings through (--allow-phi-findings);
 * a clean scan writes false. With lines_by_kind != 0 the object also holds
 * "lines_by_kind": {"phone": [<= 20 line numbers], ...} for kinds with findings.
 * Holds no text from the scanned file. NULL only when out of memory. */
char *et_phi_report_json(const et_phi_report *r, int allowed, int lines_by_kind);

#endif
