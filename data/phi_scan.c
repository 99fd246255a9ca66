/* PHI guard matchers (data/phi_scan.h). One function per identifier shape; each
 * takes the text and a start offset and returns the end of its match or 0.
 *
 * The scan walks the text once. At every word start it tries the matchers in a
 * fixed priority order (contact forms first, then cue-led ids, dates, ages,
 * addresses, names, bare digit runs); the first that matches records a finding
 * and the walk resumes after it, so findings never overlap. A well-formed
 * de-identification placeholder ("[**Medical Record Number 4567**]") is stepped over
 * whole: it is what a de-identifier left, not an identifier.
 *
 * The matchers read a normalised view of the text: Unicode spaces, dashes and
 * fullwidth digits become their ASCII forms, so
 * "617<NBSP>555<NBSP>0142" or "６１７-５５５-０１４２" cannot slip past; findings are
 * mapped back to byte offsets of the original text. The view is built window by
 * window (ET_PHI_WINDOW bytes on the stack, nothing allocated): every matcher reads
 * at most BACK bytes before and AHEAD bytes after where it starts, so windows that
 * overlap by that much give the findings one piece would, in time linear in the
 * text.
 *
 * Precision rules come from what clinical notes are full of (research note §3 and
 * Philter's "safe" filters): ratios (BP 140/90, strength 5/5, murmur 2/6), doses
 * and lab values with units, times (08:00), ICD-10 codes (E11.9), spine levels
 * (L4-5), ages <= 89, MS/MR/DR/ST/CT abbreviations and "Dr." before a placeholder. */
#include "data/phi_scan.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[ET_PHI_KINDS] = {
    "ssn", "phone", "fax", "email", "url", "ip", "mrn", "street_address", "zip", "date",
    "age_over_89", "name_after_title",
};

const char *et_phi_kind_name(int kind) {
    return kind >= 0 && kind < ET_PHI_KINDS ? KIND_NAMES[kind] : NULL;
}

int et_phi_kind_from_name(const char *name) {
    for (int k = 0; name && k < ET_PHI_KINDS; k++)
        if (!strcmp(name, KIND_NAMES[k])) return k;
    return -1;
}

/* ------------------------------------------------------------- bounds --- */

/* Longest run of digits, spaces or letters one primitive reads: longer runs are cut
 * there (a 100-digit run is flagged as its first RUN_MAX digits, 100 spaces between a
 * cue and its id break the pair). This bounds how far any matcher reads. */
#define RUN_MAX 64
/* Longest street-name or name word. */
#define WORD_MAX 32
/* Longest URL tail taken in one finding (a longer URL is flagged in pieces). */
#define URL_MAX 512
/* Farthest any matcher reads before (BACK) and after (AHEAD) the byte it starts at,
 * in bytes of the view it reads (below). The worst chains: a cue 2 words back (~160
 * bytes); a street of 5 words with a unit (~800), a host with its URL tail (~770). */
#define BACK 256
#define AHEAD 1024
/* Bytes of view per window. Tests build the scanner with a small one to check that
 * windows change nothing. */
#ifndef ET_PHI_WINDOW
#define ET_PHI_WINDOW 8192
#endif
/* A placeholder "[** ... **]" is at most this long, on one line. */
#define PLACEHOLDER_MAX 128

#define NO_FINDING ((size_t)-1)

/* ------------------------------------------------------ ASCII classes --- */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(int c) { return c >= 'a' && c <= 'z'; }
static int is_alpha(int c) { return is_upper(c) || is_lower(c); }
static int is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int to_lower(int c) { return is_upper(c) ? c + 32 : c; }

typedef struct {
    const unsigned char *s;
    size_t n;
    size_t after; /* just past the previous finding, NO_FINDING when there is none */
    size_t bare_from; /* bare digit runs starting before this are not flagged */
} text;

static int at(const text *t, size_t i) { return i < t->n ? t->s[i] : 0; }

static size_t digits_at(const text *t, size_t i) {
    size_t j = i;
    while (j < t->n && j - i < RUN_MAX && is_digit(t->s[j])) j++;
    return j - i;
}

static long number_at(const text *t, size_t i, size_t len) {
    long v = 0;
    for (size_t k = 0; k < len; k++) v = v * 10 + (t->s[i + k] - '0');
    return v;
}

static size_t skip_spaces(const text *t, size_t i) {
    size_t j = i;
    while (j < t->n && j - i < RUN_MAX && (t->s[j] == ' ' || t->s[j] == '\t')) j++;
    return j;
}

/* Letters from i (at most RUN_MAX); returns the end. */
static size_t letters_end(const text *t, size_t i) {
    size_t j = i;
    while (j < t->n && j - i < RUN_MAX && is_alpha(t->s[j])) j++;
    return j;
}

static int is_list_sep(int c) { return c == '.' || c == ',' || c == '/' || c == '-' || c == ':'; }

/* A number may start at i: not glued to a letter/digit, and not the tail of a
 * decimal, ratio or range ("0.9", "140/90", "L4-5", "1,000") -- unless the
 * separator directly follows a finding: then this number is the next item of a list
 * or range of identifiers ("03/04/2021-03/10/2021", "617-555-0142/617-555-0143"). */
static int number_starts(const text *t, size_t i) {
    if (i == 0) return 1;
    int p = t->s[i - 1];
    if (is_alnum(p)) return 0;
    if (t->after == i - 1) return 1;
    if (is_list_sep(p) && i >= 2 && is_digit(t->s[i - 2])) return 0;
    return 1;
}

/* A number may end at j: not glued to a letter/digit and not continued as a
 * decimal, ratio or range. */
static int number_ends(const text *t, size_t j) {
    int c = at(t, j);
    if (is_alnum(c)) return 0;
    if (is_list_sep(c) && is_digit(at(t, j + 1))) return 0;
    return 1;
}

/* A complete shape (a full date, a 10-digit phone, an IPv4 address, an SSN) may also
 * end before a list or range separator and another number: "03/04/2021-03/10/2021",
 * "1/2/2021,1/3/2021", "10.0.0.1:8080". Only '.' + digit continues it (a 5th octet,
 * a decimal). */
static int shape_ends(const text *t, size_t j) {
    int c = at(t, j);
    if (is_alnum(c)) return 0;
    return !(c == '.' && is_digit(at(t, j + 1)));
}

static int word_ends(const text *t, size_t j) { return !is_alnum(at(t, j)); }

/* Case-insensitive literal at i; returns its length or 0. */
static size_t lit_ci(const text *t, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= t->n || to_lower(t->s[i + k]) != to_lower((unsigned char)lit[k])) return 0;
    return k;
}

/* Case-sensitive literal at i. */
static size_t lit_cs(const text *t, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= t->n || t->s[i + k] != (unsigned char)lit[k]) return 0;
    return k;
}

/* A whole word (case-insensitive) from the list at i; returns its length or 0. */
static size_t word_in(const text *t, size_t i, const char *const *list) {
    for (; *list; list++) {
        size_t k = lit_ci(t, i, *list);
        if (k && word_ends(t, i + k)) return k;
    }
    return 0;
}

/* Whether the whole word [i, e) is in the list (lower-case words; the text in any
 * case). */
static int whole_word_in(const text *t, size_t i, size_t e, const char *const *list) {
    const int first = to_lower(at(t, i));
    for (; *list; list++)
        if ((*list)[0] == first && strlen(*list) == e - i && lit_ci(t, i, *list)) return 1;
    return 0;
}

/* The alphabetic word ending just before `end` (skipping separators in `skip`, at
 * most RUN_MAX of them), lower-cased into buf; returns its start offset or
 * (size_t)-1 (none, or a word of cap letters or more). */
static size_t prev_word(const text *t, size_t end, const char *skip, char *buf, size_t cap) {
    size_t j = end;
    while (j > 0 && end - j < RUN_MAX && t->s[j - 1] != '\n' && strchr(skip, t->s[j - 1])) j--;
    size_t e = j;
    while (j > 0 && e - j < cap && is_alpha(t->s[j - 1])) j--;
    if (j == e || e - j >= cap) return (size_t)-1;
    for (size_t k = j; k < e; k++) buf[k - j] = (char)to_lower(t->s[k]);
    buf[e - j] = 0;
    return j;
}

/* The end of cue c at word [j, e) (before i), or 0. A cue ending in '*' matches as a
 * prefix ("fax*" matches "faxed"); one ending in '#' only before ':' or '#' (after
 * an optional '.'): "Ph: 617 ..." but never "pH 7.35"; one with a space is a phrase
 * ("contact number"); others must be whole words. */
static size_t cue_end(const text *t, size_t j, size_t e, size_t i, const char *c) {
    size_t len = strlen(c);
    const int prefix = c[len - 1] == '*', marked = c[len - 1] == '#';
    if (strchr(c, ' ')) {
        size_t k = lit_ci(t, j, c);
        return k && j + k <= i && word_ends(t, j + k) ? j + k : 0;
    }
    len -= prefix || marked;
    if (e - j < len || (!prefix && e - j != len)) return 0;
    for (size_t k = 0; k < len; k++)
        if (to_lower(t->s[j + k]) != (unsigned char)c[k]) return 0;
    if (!marked) return e;
    size_t m = e + (at(t, e) == '.');
    return m < i && (at(t, m) == ':' || at(t, m) == '#') ? e : 0;
}

/* Cue words in the `window` bytes before i, on the same line (cue_end's forms).
 * Returns the offset just past the last cue found (0 = none). */
static size_t last_cue_before(const text *t, size_t i, size_t window, const char *const *cues) {
    size_t lo = i > window ? i - window : 0, best = 0;
    for (size_t j = i; j > lo; j--)
        if (t->s[j - 1] == '\n') {
            lo = j;
            break;
        }
    for (size_t j = lo; j < i; j++) {
        if (!is_alpha(t->s[j]) || (j > 0 && is_alpha(t->s[j - 1]))) continue;
        size_t e = j;
        while (e < i && is_alpha(t->s[e])) e++;
        for (const char *const *c = cues; *c; c++) {
            size_t ce = cue_end(t, j, e, i, *c);
            if (ce > best) best = ce;
        }
        j = e;
    }
    return best;
}

/* ------------------------------------------------------ contact forms --- */

static int is_email_local(int c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* host labels [A-Za-z0-9-]{1,63} joined by dots, 2 to 16 of them (DNS allows 63-byte
 * labels; real hosts have a handful), 253 bytes at most; returns the end, the start of
 * the last label in *tld. The caps keep "1-1-1-..." or "a.a.a...." cheap to reject. */
static size_t host_at(const text *t, size_t i, size_t *tld) {
    size_t j = i, labels = 0, last = i;
    for (;;) {
        size_t s = j;
        while (j < t->n && j - i < 253 && j - s < 63 && (is_alnum(t->s[j]) || t->s[j] == '-')) j++;
        if (j == s || is_alnum(at(t, j)) || at(t, j) == '-') return 0;
        last = s;
        labels++;
        if (labels < 16 && j - i < 253 && at(t, j) == '.' && is_alnum(at(t, j + 1))) j++;
        else break;
    }
    if (labels < 2) return 0;
    *tld = last;
    return j;
}

static size_t match_email(const text *t, size_t i) {
    if (!is_alnum(at(t, i))) return 0;
    /* no '@' within a local part's length: no address (cheap, and most words) */
    size_t span = t->n - i < 66 ? t->n - i : 66;
    if (!memchr(t->s + i, '@', span)) return 0;
    size_t j = i;
    while (j < t->n && j - i <= 64 && is_email_local(t->s[j])) j++;
    if (at(t, j) != '@' || j == i) return 0;
    size_t tld, e = host_at(t, j + 1, &tld);
    if (!e || e - tld < 2) return 0;
    for (size_t k = tld; k < e; k++)
        if (!is_alpha(t->s[k])) return 0;
    return e;
}

/* Top-level domains a bare host must end with. Short on purpose: "e.g", "q.d",
 * "b.i.d" must never look like hosts. */
static const char *const BARE_TLDS[] = {"com", "org", "net", "edu", "gov", "mil", "io",
                                        "info", "biz", "us", "health", NULL};

static size_t url_tail(const text *t, size_t j) {
    size_t start = j;
    while (j < t->n && j - start < URL_MAX && t->s[j] > ' ' && t->s[j] < 0x7f &&
           !strchr("<>\"'`", t->s[j]))
        j++;
    while (j > start && strchr(".,;:!?)]}", t->s[j - 1])) j--;
    return j;
}

static size_t match_url(const text *t, size_t i) {
    static const char *const schemes[] = {"https://", "http://", "ftp://", "www.", NULL};
    for (const char *const *s = schemes; *s; s++) {
        size_t k = lit_ci(t, i, *s);
        if (k && is_alnum(at(t, i + k))) return url_tail(t, i + k);
    }
    size_t tld, e = host_at(t, i, &tld);
    if (!e || at(t, e) == '@' || at(t, e) == '-') return 0;
    /* one case throughout the TLD: "seen.Net fluid" is a missing space, not a host */
    int up = 0, low = 0;
    for (size_t k = tld; k < e; k++) up |= is_upper(t->s[k]), low |= is_lower(t->s[k]);
    if (up && low) return 0;
    char buf[8];
    if (e - tld >= sizeof buf) return 0;
    for (size_t k = tld; k < e; k++) buf[k - tld] = (char)to_lower(t->s[k]);
    buf[e - tld] = 0;
    int known = 0;
    for (const char *const *d = BARE_TLDS; *d && !known; d++) known = !strcmp(buf, *d);
    if (!known) return 0;
    return at(t, e) == '/' ? url_tail(t, e) : e;
}

static size_t match_ipv4(const text *t, size_t i) {
    size_t j = i;
    for (int octet = 0; octet < 4; octet++) {
        if (octet && at(t, j++) != '.') return 0;
        size_t d = digits_at(t, j);
        if (d == 0 || d > 3 || number_at(t, j, d) > 255) return 0;
        j += d;
    }
    if (at(t, j) == '/' && digits_at(t, j + 1) >= 1 && digits_at(t, j + 1) <= 2 &&
        number_at(t, j + 1, digits_at(t, j + 1)) <= 32)
        j += 1 + digits_at(t, j + 1);
    return shape_ends(t, j) ? j : 0;
}

/* IPv6: gather a hex/colon run and let inet_pton judge it (a single pattern for
 * all compressed forms is fragile). Times such as 08:00:00 fail inet_pton. A run
 * with no digit and a single group ("Dad::", "Feed::") is a word before a double
 * colon, not an address. */
static size_t match_ipv6(const text *t, size_t i) {
    if (!is_hex(at(t, i)) && at(t, i) != ':') return 0;
    /* a group has at most 4 hex digits: the first ':' comes within 5 bytes */
    size_t span = t->n - i < 5 ? t->n - i : 5;
    if (!memchr(t->s + i, ':', span)) return 0;
    size_t j = i, colons = 0, hexes = 0, digits = 0, groups = 0;
    while (j < t->n && j - i < 45 && (is_hex(t->s[j]) || t->s[j] == ':' || t->s[j] == '.')) {
        colons += t->s[j] == ':';
        hexes += is_hex(t->s[j]);
        digits += is_digit(t->s[j]);
        groups += is_hex(t->s[j]) && (j == i || !is_hex(t->s[j - 1]));
        j++;
    }
    while (j > i && t->s[j - 1] == '.') j--;
    if (j > i + 1 && t->s[j - 1] == ':' && t->s[j - 2] != ':') j--; /* "... fe80::1:" */
    if (colons < 2 || hexes < 3 || is_alnum(at(t, j))) return 0;
    if (!digits && groups < 2) return 0;
    char buf[64];
    memcpy(buf, t->s + i, j - i);
    buf[j - i] = 0;
    unsigned char addr[16];
    return inet_pton(AF_INET6, buf, addr) == 1 ? j : 0;
}

/* ---------------------------------------------------------------- SSN --- */

static const char *const SSN_CUES[] = {"ssn", "ssns", "social", "security", "ss", "soc", NULL};

static int is_sep(int c) { return c == '-' || c == ' ' || c == '.'; }

static size_t match_ssn(const text *t, size_t i) {
    if (digits_at(t, i) == 3 && is_sep(at(t, i + 3)) && digits_at(t, i + 4) == 2 &&
        is_sep(at(t, i + 6)) && digits_at(t, i + 7) == 4 && shape_ends(t, i + 11))
        return i + 11;
    /* 9 bare digits: only with a cue ("SSN", "social security", "SS#") nearby */
    if (digits_at(t, i) == 9 && shape_ends(t, i + 9) && last_cue_before(t, i, 32, SSN_CUES))
        return i + 9;
    return 0;
}

/* -------------------------------------------------------- phone / fax --- */

static const char *const FAX_CUES[] = {"fax*", "facsimile", "telefax", NULL};
/* Whole words only: "cell*" took "cells" and "cellulitis", "contact*" "contact
 * precautions", a bare "ph" the pH ("ph#" wants "Ph:" or "Ph#"). Words that name a
 * phone or ask for a call ("Call 555 123 4567") ... */
static const char *const PHONE_CUES[] = {
    "phone", "phones", "telephone", "tel", "cellphone", "cell phone", "mobile", "call",
    "callback", "ph#", "contact number", "contact phone", "contact no", "contact#", NULL};
/* ... and words that are as often something else (a cell count, a page of a chart,
 * "called" for a consult): they vouch only for a valid NANP shape. */
static const char *const WEAK_PHONE_CUES[] = {"cell", "calls", "called", "calling", "pager",
                                              "page", "paged", "reached", "phoned", NULL};

static int is_phone_sep(int c) { return c == '-' || c == '.' || c == ' '; }

static size_t phone_extension(const text *t, size_t j) {
    size_t k = skip_spaces(t, j), m;
    if ((m = lit_ci(t, k, "extension")) || (m = lit_ci(t, k, "ext.")) ||
        (m = lit_ci(t, k, "ext")) || (m = lit_ci(t, k, "x"))) {
        size_t d0 = skip_spaces(t, k + m), d = digits_at(t, d0);
        if (d >= 1 && d <= 5 && number_ends(t, d0 + d)) return d0 + d;
    }
    return j;
}

/* How much cue a phone shape needs (0: none). */
enum { ANY_CUE = 1, STRONG_CUE = 2 };

/* NANP shapes with separators; bare 10 digits and 7-digit local numbers only
 * after a phone or fax cue. Sets *cue_needed when the shape alone is too weak:
 * ANY_CUE, or STRONG_CUE (a fax cue or one of PHONE_CUES, not WEAK_PHONE_CUES). */
static size_t phone_shape(const text *t, size_t i, int *cue_needed) {
    size_t j = i;
    int plus1 = 0;
    *cue_needed = 0;
    if (at(t, j) == '+' && at(t, j + 1) == '1') {
        j += 2;
        plus1 = 1;
        if (is_phone_sep(at(t, j))) j++;
    } else if (at(t, j) == '1' && is_phone_sep(at(t, j + 1)) &&
               (digits_at(t, j + 2) == 3 || at(t, j + 2) == '(')) {
        j += 2;
    }
    size_t area;
    int spaces_only = 1;
    if (at(t, j) == '(') {
        if (digits_at(t, j + 1) != 3 || at(t, j + 4) != ')') return 0;
        area = j + 1;
        j += 5;
        if (at(t, j) == ' ' || at(t, j) == '-' || at(t, j) == '.') j++;
        spaces_only = 0;
    } else {
        size_t d = digits_at(t, j);
        if (d == 10 && shape_ends(t, j + 10) && j == i) { /* bare: needs a cue */
            *cue_needed = ANY_CUE;
            return phone_extension(t, j + 10);
        }
        if (d == 3 && at(t, j + 3) == '-' && digits_at(t, j + 4) == 4 &&
            number_ends(t, j + 8) && j == i) { /* local 555-0142: needs a cue */
            *cue_needed = ANY_CUE;
            return phone_extension(t, j + 8);
        }
        if (d != 3 || !is_phone_sep(at(t, j + 3))) return 0;
        area = j;
        spaces_only &= at(t, j + 3) == ' ';
        j += 4;
    }
    if (digits_at(t, j) != 3 || !is_phone_sep(at(t, j + 3)) || digits_at(t, j + 4) != 4)
        return 0;
    spaces_only &= at(t, j + 3) == ' ';
    size_t exch = j;
    j += 8;
    if (!shape_ends(t, j)) return 0;
    /* "120 100 1234"-like runs of spaced numbers: alone, trust only a valid NANP
     * number; after "+1" or a word that names a phone any digits count ("+1 555 123
     * 4567", "Tel 555 123 4567"), not after "cell" ("cell count 110 120 1300") */
    if (spaces_only && !plus1 && (t->s[area] < '2' || t->s[exch] < '2')) *cue_needed = STRONG_CUE;
    return phone_extension(t, j);
}

static size_t match_phone(const text *t, size_t i, int *kind) {
    int cue_needed;
    size_t e = phone_shape(t, i, &cue_needed);
    if (!e) return 0;
    size_t fax = last_cue_before(t, i, 40, FAX_CUES);
    size_t phone = last_cue_before(t, i, 40, PHONE_CUES);
    if (cue_needed == STRONG_CUE && !fax && !phone) return 0;
    size_t weak = last_cue_before(t, i, 40, WEAK_PHONE_CUES);
    if (weak > phone) phone = weak;
    if (cue_needed && !fax && !phone) return 0;
    *kind = fax > phone ? ET_PHI_FAX : ET_PHI_PHONE;
    return e;
}

/* -------------------------------------------------------------- dates --- */

static int unit_follows(const text *t, size_t j);

static const char *const MONTHS[] = {"january", "february", "march",    "april",
                                     "may",     "june",     "july",     "august",
                                     "september", "october", "november", "december",
                                     "sept", "jan", "feb", "mar", "apr", "jun", "jul",
                                     "aug", "sep", "oct", "nov", "dec", NULL};

/* Month word at i: returns its length (a trailing '.' included) and how it is
 * written: 1 Capitalised ("Mar"), 2 all caps ("MAR"), 3 lower case. */
static size_t month_at(const text *t, size_t i, int *style) {
    size_t k = word_in(t, i, MONTHS);
    if (!k) return 0;
    int caps = 1, lower = 1;
    for (size_t m = 1; m < k; m++) caps &= is_upper(t->s[i + m]), lower &= is_lower(t->s[i + m]);
    *style = !is_upper(t->s[i]) ? 3 : caps && k > 1 ? 2 : lower ? 1 : 3;
    if (at(t, i + k) == '.') k++;
    return k;
}

/* A plausible year of an individual's date: 4 digits 1900..2099. */
static int year4_at(const text *t, size_t i) {
    if (digits_at(t, i) != 4) return 0;
    long y = number_at(t, i, 4);
    return y >= 1900 && y <= 2099 && shape_ends(t, i + 4);
}

/* day 1..31 with an optional ordinal suffix; returns its end or 0. With end_checked
 * the number must also end there (not "4-5", "4.5"). */
static size_t day_at(const text *t, size_t i, int end_checked) {
    size_t d = digits_at(t, i);
    if (d < 1 || d > 2) return 0;
    long v = number_at(t, i, d);
    if (v < 1 || v > 31) return 0;
    size_t j = i + d;
    static const char *const ords[] = {"st", "nd", "rd", "th", NULL};
    size_t k = word_in(t, j, ords);
    j += k;
    if (is_alnum(at(t, j))) return 0;
    return !end_checked || number_ends(t, j) ? j : 0;
}

/* A day or a range of days ("4", "4-5", "4th-5th"); returns the end or 0. */
static size_t days_at(const text *t, size_t i) {
    size_t d = day_at(t, i, 0);
    if (!d) return 0;
    if (at(t, d) == '-') {
        size_t d2 = day_at(t, d + 1, 1);
        if (d2) return d2;
    }
    return number_ends(t, d) ? d : 0;
}

/* ", 2019" / " 2019" / "-2019" after a day; returns the end or j unchanged */
static size_t year_after(const text *t, size_t j) {
    size_t k = j;
    if (at(t, k) == ',') k++;
    if (at(t, k) == '-' && k == j) k++;
    else k = skip_spaces(t, k);
    return k > j && year4_at(t, k) ? k + 4 : j;
}

/* Words that count times and doses: after "May 2-3" they make "May" the verb. */
static const char *const COUNTED[] = {
    "times", "time", "x", "weeks", "week", "wks", "wk", "days", "day", "d", "hours", "hour",
    "hrs", "hr", "h", "minutes", "minute", "mins", "min", "seconds", "second", "secs",
    "sec", "months", "month", "mos", "mo", "years", "year", "yrs", "yr", "tabs", "tab",
    "tablets", "tablet", "puffs", "puff", "doses", "dose", "drops", "drop", "caps",
    "capsules", "pills", "sprays", "sets", "episodes", "cycles", NULL};

/* Month word first: "March 14, 2019", "Mar 14", "Mar. 3rd", "March 2019", "March
 * 4-5, 2021". A day alone needs the month Capitalised ("MAR 2" is the medication
 * record, "may 2" a verb) and no unit after it ("May 5 mg"); lower case or all caps
 * need a year. */
static size_t date_month_first(const text *t, size_t i) {
    int style;
    size_t k = month_at(t, i, &style);
    if (!k) return 0;
    size_t j = i + k, s = skip_spaces(t, j);
    if (s == j && at(t, j) == '-') s = j + 1;
    if (s == j) return 0;
    if (year4_at(t, s)) return s + 4; /* month + year */
    size_t d = days_at(t, s);
    if (!d) return 0;
    size_t y = year_after(t, d);
    if (y > d) return y;
    /* "May 5 mg" is a dose, "May 2-3 times daily" or "May 1-2 weeks" a verb and a count */
    return style == 1 && !unit_follows(t, d) && !word_in(t, skip_spaces(t, d), COUNTED) ? d : 0;
}

static const char *const DATE_CUES[] = {
    "on", "since", "from", "until", "till", "through", "thru", "dated", "date", "dos", "dob",
    "born", "admitted", "admission", "discharged", "discharge", "seen", "started",
    "starting", "before", "after", "by", NULL};

/* The time of an ISO date-time at j ('T'): hh:mm, optional :ss and .fraction, then
 * optional Z or an offset +hh, +hh:mm, -hhmm. Returns the end, or 0 when malformed. */
static size_t iso_time(const text *t, size_t j) {
    j++; /* 'T' */
    if (digits_at(t, j) != 2 || number_at(t, j, 2) > 23 || at(t, j + 2) != ':' ||
        digits_at(t, j + 3) != 2 || number_at(t, j + 3, 2) > 59)
        return 0;
    j += 5;
    if (at(t, j) == ':' && digits_at(t, j + 1) == 2 && number_at(t, j + 1, 2) <= 60) {
        j += 3;
        if ((at(t, j) == '.' || at(t, j) == ',') && digits_at(t, j + 1) >= 1)
            j += 1 + digits_at(t, j + 1);
    }
    if (at(t, j) == 'Z') {
        j++;
    } else if (at(t, j) == '+' || at(t, j) == '-') {
        size_t d = digits_at(t, j + 1);
        if (d == 4) j += 5;
        else if (d == 2 && at(t, j + 3) == ':' && digits_at(t, j + 4) == 2) j += 6;
        else if (d == 2) j += 3;
        else return 0;
    }
    return shape_ends(t, j) ? j : 0;
}

/* "-18" after a 2-digit year: a bare 1-2 digit number closing a range. A date
 * never ends so ("03/04/2021-03/10/2021" ends in a date); pressures and settings do
 * ("PA 25/10/15-18", "PS 12/8/30-35%"). */
static int range_tail(const text *t, size_t j) {
    size_t d = digits_at(t, j + 1);
    return at(t, j) == '-' && d >= 1 && d <= 2 && number_ends(t, j + 1 + d);
}

static size_t date_numeric(const text *t, size_t i) {
    size_t a = digits_at(t, i);
    if (a == 0 || a > 4) return 0;
    int sep = at(t, i + a);
    if (sep != '/' && sep != '-' && sep != '.') return 0;
    size_t b0 = i + a + 1, b = digits_at(t, b0);
    if (a == 4) { /* ISO yyyy-mm-dd (or yyyy/mm/dd) */
        long y = number_at(t, i, 4);
        if (y < 1900 || y > 2099 || b < 1 || b > 2 || at(t, b0 + b) != sep) return 0;
        long m = number_at(t, b0, b);
        size_t c0 = b0 + b + 1, c = digits_at(t, c0);
        if (m < 1 || m > 12 || c < 1 || c > 2) return 0;
        long d = number_at(t, c0, c);
        if (d < 1 || d > 31) return 0;
        size_t e = c0 + c;
        if (at(t, e) == 'T' && is_digit(at(t, e + 1))) { /* ISO date-time */
            size_t te = iso_time(t, e);
            return te ? te : e; /* a malformed time still leaves the date */
        }
        return shape_ends(t, e) ? e : 0;
    }
    if (a > 2 || b == 0) return 0;
    long x = number_at(t, i, a);
    if (b == 4 && sep != '.' && x >= 1 && x <= 12 && year4_at(t, b0)) return b0 + 4; /* 3/2019 */
    if (b > 2) return 0;
    long y = number_at(t, b0, b);
    /* month/day or day/month: both in 1..31, one of them a month */
    if (x < 1 || y < 1 || x > 31 || y > 31 || (x > 12 && y > 12)) return 0;
    size_t e = b0 + b;
    if (at(t, e) == sep) {
        size_t c = digits_at(t, e + 1), y = e + 1 + c;
        if (c == 2 && sep != '.' && range_tail(t, y)) return 0;
        if ((c == 4 || (c == 2 && sep != '.')) && shape_ends(t, y)) return y;
        return 0;
    }
    /* no year: "3/14" is a date only with '/' after a date cue ("on 3/14"); bare it
     * is a ratio as often (strength 4/5, murmur 2/6, pain 7/10) */
    if (sep != '/' || x > 12 || !number_ends(t, e)) return 0;
    char w[16];
    if (prev_word(t, i, " \t:", w, sizeof w) == (size_t)-1) return 0;
    for (const char *const *c = DATE_CUES; *c; c++)
        if (!strcmp(w, *c)) return e;
    return 0;
}

/* Day first: "14 Mar 2019", "14-MAR-2019", "3rd of January", "14 March". */
static size_t date_day_first(const text *t, size_t i) {
    size_t d = day_at(t, i, 1);
    if (!d) return 0;
    size_t j = d, k;
    if (at(t, j) == '-') j++;
    else {
        j = skip_spaces(t, j);
        if ((k = lit_ci(t, j, "of ")) != 0) j = skip_spaces(t, j + k);
    }
    if (j == d) return 0;
    int style;
    size_t m = month_at(t, j, &style);
    if (!m) return 0;
    size_t e = j + m, y = e;
    if (at(t, e) == '-' && year4_at(t, e + 1)) y = e + 5;
    else if (at(t, e) == '-' && digits_at(t, e + 1) == 2 && number_ends(t, e + 3)) y = e + 3;
    else y = year_after(t, e);
    if (y > e) return y;
    return style == 1 ? e : 0;
}

/* --------------------------------------------------------------- ages --- */

static int is_age_over_89(long v) { return v >= 90 && v <= 119; }

/* "90+", "90 or older": Safe Harbor's own aggregate, allowed */
static int aggregate_follows(const text *t, size_t j) {
    if (at(t, j) == '+') return 1;
    size_t k = skip_spaces(t, j);
    return lit_ci(t, k, "or older") || lit_ci(t, k, "or over") || lit_ci(t, k, "and older") ||
           lit_ci(t, k, "and over") || lit_ci(t, k, "or above");
}

static size_t age_word_after(const text *t, size_t j) {
    size_t k = j;
    while (k < t->n && (t->s[k] == ' ' || t->s[k] == '-') && k - j < 3) k++;
    size_t m;
    if ((m = lit_ci(t, k, "y/o")) || (m = lit_ci(t, k, "y.o.")) || (m = lit_ci(t, k, "y.o")))
        return k + m;
    if ((m = lit_ci(t, k, "yo")) && !is_alpha(at(t, k + 2))) return k + m;
    static const char *const units[] = {"years", "year", "yrs", "yr", NULL};
    if (!(m = word_in(t, k, units))) return 0;
    size_t e = k + m, o = e;
    while (o < t->n && (t->s[o] == ' ' || t->s[o] == '-') && o - e < 3) o++;
    if ((m = lit_ci(t, o, "old")) && !is_alpha(at(t, o + 3))) return o + m;
    if ((m = lit_ci(t, o, "of age")) && !is_alpha(at(t, o + 6))) return o + m;
    return 0;
}

static size_t age_from_number(const text *t, size_t i) {
    size_t d = digits_at(t, i);
    if ((d != 2 && d != 3) || !is_age_over_89(number_at(t, i, d))) return 0;
    return age_word_after(t, i + d);
}

/* Up to 3 lower-case words then ':' after an age cue: the structured keys "age_years",
 * "age_at_admission" render as "Age years: 95", "Age at admission: 93". Returns the
 * offset of the ':' or j unchanged. */
static size_t age_key_words(const text *t, size_t j) {
    size_t k = j;
    for (int words = 0; words < 3; words++) {
        if (at(t, k) != ' ' || !is_lower(at(t, k + 1))) return j;
        size_t e = letters_end(t, k + 1);
        if (e - k > 20) return j;
        k = e;
        if (at(t, k) == ':') return k;
    }
    return j;
}

static size_t age_from_word(const text *t, size_t i) {
    static const char *const words[] = {"nonagenarian", "nonagenarians", "centenarian",
                                        "centenarians", "supercentenarian", NULL};
    size_t k = word_in(t, i, words);
    if (k) return i + k;
    static const char *const cues[] = {"aged", "age", NULL};
    if (!(k = word_in(t, i, cues))) return 0;
    size_t j = age_key_words(t, i + k), j0 = j;
    while (j < t->n && (t->s[j] == ' ' || t->s[j] == ':' || t->s[j] == '=') && j - j0 < 8) j++;
    size_t o = lit_ci(t, j, "of ");
    if (o) j = skip_spaces(t, j + o);
    size_t d = digits_at(t, j);
    if ((d != 2 && d != 3) || !is_age_over_89(number_at(t, j, d)) || !number_ends(t, j + d) ||
        aggregate_follows(t, j + d))
        return 0;
    return j + d;
}

/* ----------------------------------------------------- MRN-like ids --- */

/* Words that introduce an identifier: record, account and plan numbers, and the
 * other numbered identifiers of Safe Harbor (licences, vehicles, devices). */
static const char *const ID_CUES[] = {
    "mrn", "mrns", "medical record", "med rec", "record", "acct", "account", "encounter",
    "csn", "fin", "visit", "accession", "specimen", "member", "policy", "subscriber",
    "beneficiary", "mbi", "claim", "patient id", "pt id", "id", "case", "license", "licence",
    "lic", "npi", "dea", "vin", "plate", "serial", "s/n", "sn", NULL};
/* Cues that are as often plain words ("last visit 2019", "ID 2020 guidelines", "patient
 * record 2019 review"): a bare year after them is a year, which Safe Harbor allows. */
static const char *const WEAK_ID_CUES[] = {"visit", "case", "record", "id", "specimen", NULL};
static const char *const ID_FILLERS[] = {"number", "num", "nbr", "no", "id", "is", "#", NULL};

/* Units that make a digit run a quantity, not an identifier (Philter's units_safe). */
static const char *const UNITS[] = {
    "mg", "mcg", "g", "gm", "kg", "ng", "pg", "ug", "lb", "lbs", "oz", "ml", "l", "dl", "ul",
    "mcl", "cc", "units", "unit", "u", "iu", "miu", "meq", "mmol", "umol", "nmol", "pmol",
    "mosm", "copies", "cells", "cfu", "k", "x", "cm", "mm", "mmhg", "cmh2o", "kpa", "ms",
    "sec", "secs", "min", "mins", "hr", "hrs", "kcal", "cal", "bpm", "tabs", "tablets",
    "caps", "capsules", "puffs", "drops", "vials", NULL};
/* Counting units that are units only before a "/" and a volume: "c/mL", "cp/mL". Alone
 * they are words ("c/o" is "complains of"). */
static const char *const PER_UNITS[] = {"c", "cp", "cps", NULL};
static const char *const PER_VOLUMES[] = {"ml", "l", "dl", "ul", "mcl", "cc", "hpf", "lpf",
                                          "mm3", NULL};

/* A unit word after j ("25000 units", "1250000 c/mL"); '/' and '%' alone are not words. */
static int unit_word_follows(const text *t, size_t j) {
    size_t k = skip_spaces(t, j), u;
    if (word_in(t, k, UNITS)) return 1;
    return (u = word_in(t, k, PER_UNITS)) && at(t, k + u) == '/' &&
           word_in(t, k + u + 1, PER_VOLUMES);
}

static int unit_follows(const text *t, size_t j) {
    size_t k = skip_spaces(t, j);
    if (at(t, k) == '/' || at(t, k) == '%') return 1;
    return unit_word_follows(t, j);
}

/* An identifier token: [A-Za-z0-9-]{4,20} with at least 4 digits. After a weak cue a
 * bare year 1900..2099 is not one. */
static size_t id_token(const text *t, size_t i, int weak_cue) {
    if (!is_alnum(at(t, i))) return 0;
    size_t j = i, digits = 0;
    while (j < t->n && j - i < 21 && (is_alnum(t->s[j]) || t->s[j] == '-')) digits += is_digit(t->s[j++]);
    while (j > i && t->s[j - 1] == '-') j--;
    if (j - i < 4 || j - i > 20 || digits < 4 || is_alnum(at(t, j))) return 0;
    if (unit_follows(t, j)) return 0;
    if (weak_cue && j - i == 4 && digits == 4 && number_at(t, i, 4) >= 1900 &&
        number_at(t, i, 4) <= 2099)
        return 0;
    return j;
}

/* The ID cue at i: its length (0: none); *weak tells a weak cue. */
static size_t id_cue_at(const text *t, size_t i, int *weak) {
    *weak = 0;
    for (const char *const *c = ID_CUES; *c; c++) {
        size_t k = lit_ci(t, i, *c);
        if (!k || !word_ends(t, i + k)) continue;
        for (const char *const *w = WEAK_ID_CUES; *w; w++) *weak |= !strcmp(*c, *w);
        return k;
    }
    return 0;
}

static size_t match_id_after_cue(const text *t, size_t i) {
    size_t k = 0;
    int weak = 0;
    if (lit_ci(t, i, "mrn") && is_digit(at(t, i + 3))) /* glued: "MRN12345678" */
        return id_token(t, i + 3, 0);
    if ((k = lit_ci(t, i, "mr#")) || (k = lit_ci(t, i, "mr #"))) {
    } else if (!(k = id_cue_at(t, i, &weak))) {
        return 0;
    }
    size_t j = i + k;
    for (int filler = 0; filler < 4; filler++) {
        size_t before = j;
        while (j < t->n && (t->s[j] == ' ' || t->s[j] == ':' || t->s[j] == '#' ||
                            t->s[j] == '=' || t->s[j] == '.') && j - before < 4)
            j++;
        size_t f = word_in(t, j, ID_FILLERS);
        if (f) j += f;
        if (j == before) break;
    }
    if (j == i + k) return 0; /* the cue must be separated from the id */
    return id_token(t, j, weak);
}

/* Any bare run of >= 7 digits that is not a quantity. A run of RUN_MAX digits or
 * more is flagged as its first RUN_MAX. */
static size_t match_digit_run(const text *t, size_t i) {
    size_t d = digits_at(t, i);
    if (d == RUN_MAX) return i + d;
    if (d < 7 || !number_ends(t, i + d) || unit_follows(t, i + d)) return 0;
    return i + d;
}

/* ------------------------------------------------------ ZIP codes --- */

static const char *const STATE_ABBR[] = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
    "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VT", "VA", "WA", "WV", "WI", "WY", "PR", NULL};
/* State abbreviations that stand before numbers in notes as clinical ones: SC
 * subcutaneous, PR per rectum, IN intranasal, ID intradermal, OR operating room, MS
 * morphine sulfate, PA posteroanterior / physician assistant, CO cardiac output, LA
 * left atrium, CT scan, MI myocardial infarction, VT ventricular tachycardia, ME
 * medical examiner, MD, DE, OK, UT, VA, DC. A ZIP after one of these needs address
 * context: the city's comma ("Columbia, SC 29201") or the +4 part ("SC 29201-1234").
 * (NC, TX, OH, IL, GA also abbreviate clinical words, but not before a 5-digit number
 * without a unit word, which match_zip checks after any bare abbreviation.) */
static const char *const CLINICAL_STATES[] = {
    "CO", "CT", "DC", "DE", "ID", "IN", "LA", "MD", "ME", "MI", "MS", "OK", "OR", "PA", "PR",
    "SC", "UT", "VA", "VT", NULL};
/* Last word of every state name (and DC, PR), lower case. */
static const char *const STATE_WORDS[] = {
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut",
    "delaware", "florida", "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa",
    "kansas", "kentucky", "louisiana", "maine", "maryland", "massachusetts", "michigan",
    "minnesota", "mississippi", "missouri", "montana", "nebraska", "nevada", "hampshire",
    "jersey", "mexico", "york", "carolina", "dakota", "ohio", "oklahoma", "oregon",
    "pennsylvania", "island", "tennessee", "texas", "utah", "vermont", "virginia",
    "washington", "wisconsin", "wyoming", "columbia", "rico", NULL};

static int in_list2(const unsigned char *s, const char *const *list) {
    for (; *list; list++)
        if (!strncmp((const char *)s, *list, 2)) return 1;
    return 0;
}

/* Whether a comma (after spaces) comes just before offset ws. */
static int comma_before(const text *t, size_t ws) {
    size_t k = ws;
    while (k > 0 && ws - k < RUN_MAX && (t->s[k - 1] == ' ' || t->s[k - 1] == '\t')) k--;
    return k > 0 && t->s[k - 1] == ',';
}

/* What precedes a 5-digit number at i: 0 nothing of an address; 1 a ZIP cue, a state
 * name or a state abbreviation after a city's comma; 2 a state abbreviation that is
 * also a clinical one (the caller asks for more); 3 any other state abbreviation.
 * After 1 the number is a ZIP whatever follows ("02114 / USA", "zip code 02114 cc:");
 * after a bare abbreviation a unit word makes it a quantity ("TX 20000 units"). */
static int zip_context(const text *t, size_t i) {
    char w[16];
    size_t ws = prev_word(t, i, " \t,:#", w, sizeof w);
    if (ws == (size_t)-1) return 0;
    if (strlen(w) == 2 && is_upper(t->s[ws]) && is_upper(t->s[ws + 1]) &&
        in_list2(t->s + ws, STATE_ABBR))
        return comma_before(t, ws) ? 1 : in_list2(t->s + ws, CLINICAL_STATES) ? 2 : 3;
    if (is_upper(t->s[ws]))
        for (const char *const *s = STATE_WORDS; *s; s++)
            if (!strcmp(w, *s)) return 1;
    if (!strcmp(w, "zip") || !strcmp(w, "zipcode") || !strcmp(w, "postal")) return 1;
    if (!strcmp(w, "code")) {
        char w2[16];
        if (prev_word(t, ws, " \t", w2, sizeof w2) != (size_t)-1 &&
            (!strcmp(w2, "zip") || !strcmp(w2, "postal")))
            return 1;
    }
    return 0;
}

static size_t match_zip(const text *t, size_t i) {
    if (digits_at(t, i) != 5) return 0;
    size_t e = i + 5;
    int plus4 = at(t, e) == '-' && digits_at(t, e + 1) == 4;
    if (plus4) e += 5;
    if (!number_ends(t, e)) return 0;
    int ctx = zip_context(t, i);
    if (ctx == 1) return e;
    if (ctx == 0 || unit_word_follows(t, e)) return 0; /* "SC 10000 units", "TX 20000 units" */
    return ctx == 3 || plus4 ? e : 0;
}

/* ----------------------------------------------------- street addresses --- */

/* USPS suffixes minus the ones that collide with clinical words (Philter's cut:
 * point, center, fall, field, key, ...); abbreviations count in Capitalised form
 * only ("St", never "ST" segment; "Ct", never "CT" scan). */
static const char *const SUFFIXES[] = {
    "Street", "St", "Avenue", "Ave", "Av", "Road", "Rd", "Boulevard", "Blvd", "Drive", "Dr",
    "Lane", "Ln", "Court", "Ct", "Place", "Pl", "Terrace", "Ter", "Way", "Parkway", "Pkwy",
    "Highway", "Hwy", "Circle", "Cir", "Square", "Sq", "Trail", "Trl", "Alley", "Plaza",
    "Crescent", "Expressway", "Expy", "Turnpike", "Tpke", NULL};
static const char *const DIRECTIONS[] = {"North", "South", "East", "West", "NE", "NW", "SE",
                                         "SW", "N", "S", "E", "W", NULL};
static const char *const UNIT_WORDS[] = {"apartment", "apt", "suite", "ste", "unit", "rm",
                                         "room", "fl", "floor", "#", NULL};
/* Capitalised words that count things, never a street's name: after "2 Units" a "Dr."
 * is the doctor ("Given 2 Units Dr. Jones"), after "1 Gram" a "St" is no street. */
static const char *const QUANTITY_WORDS[] = {
    "unit", "units", "tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule", "capsules",
    "dose", "doses", "puff", "puffs", "gram", "grams", "mg", "liter", "liters", "vial",
    "vials", "bag", "bags", "drop", "drops", "pill", "pills", "times", "hours", "days",
    "weeks", "months", "years", "minutes", "patients", "mcg", "ml", NULL};

static size_t suffix_at(const text *t, size_t i) {
    if (!is_upper(at(t, i))) return 0; /* every form starts with a capital */
    for (const char *const *s = SUFFIXES; *s; s++) {
        size_t k = lit_cs(t, i, *s);
        if (!k) {
            /* full words may be all caps ("MAIN STREET") */
            size_t len = strlen(*s), m = 0;
            if (len < 4) continue;
            while (m < len && at(t, i + m) == (unsigned char)(*s)[m] - (m ? 32 : 0)) m++;
            if (m == len) k = len;
        }
        if (k && !is_alnum(at(t, i + k))) return k + (at(t, i + k) == '.');
    }
    return 0;
}

/* A street-name word: Capitalised ("Oak", "O'Brien", "MAIN") or an ordinal ("5th");
 * not a quantity word. */
static size_t street_word(const text *t, size_t i) {
    size_t j = i;
    if (is_upper(at(t, j))) {
        j++;
        while (j < t->n && j - i < WORD_MAX &&
               (is_alpha(t->s[j]) || (t->s[j] == '\'' && is_alpha(at(t, j + 1)))))
            j++;
        return whole_word_in(t, i, j, QUANTITY_WORDS) ? 0 : j;
    }
    size_t d = digits_at(t, i);
    if (d >= 1 && d <= 3) {
        static const char *const ords[] = {"st", "nd", "rd", "th", NULL};
        size_t k = word_in(t, i + d, ords);
        if (k) return i + d + k;
    }
    return 0;
}

static size_t address_unit(const text *t, size_t j) {
    size_t k = j;
    if (at(t, k) == ',') k++;
    k = skip_spaces(t, k);
    size_t u = lit_ci(t, k, "#");
    if (!u) {
        u = word_in(t, k, UNIT_WORDS);
        if (u && at(t, k + u) == '.') u++;
    }
    if (!u) return j;
    size_t v = skip_spaces(t, k + u);
    if (at(t, v) == '#') v++;
    size_t e = v;
    while (e < t->n && is_alnum(t->s[e]) && e - v < 6) e++;
    return e > v && !is_alnum(at(t, e)) && (is_digit(t->s[v]) || e - v == 1) ? e : j;
}

static size_t match_street(const text *t, size_t i) {
    size_t d = digits_at(t, i);
    if (d < 1 || d > 6) return 0;
    size_t j = i + d;
    if (is_upper(at(t, j)) && !is_alnum(at(t, j + 1))) j++; /* 12B Elm St */
    if (at(t, j) != ' ') return 0;
    j = skip_spaces(t, j);
    /* a direction: capitalised ("North"), or N/S/E/W/NE/.. in capitals */
    size_t k = word_in(t, j, DIRECTIONS);
    if (k && (!is_upper(t->s[j]) || (k == 2 && !is_upper(t->s[j + 1])))) k = 0;
    int words = 0;
    if (k) {
        j += k + (at(t, j + k) == '.');
        if (at(t, j) != ' ') return 0;
        j = skip_spaces(t, j);
        words = 1; /* "12 N St" names a street too */
    }
    for (; words < 5; words++) {
        size_t s = suffix_at(t, j);
        if (s && words > 0) return address_unit(t, j + s);
        size_t w = street_word(t, j);
        if (!w || at(t, w) != ' ') return 0;
        j = skip_spaces(t, w);
    }
    return 0;
}

static size_t match_po_box(const text *t, size_t i) {
    static const char *const forms[] = {"p.o. box", "p. o. box", "po box", "p o box",
                                        "post office box", NULL};
    for (const char *const *f = forms; *f; f++) {
        size_t k = lit_ci(t, i, *f);
        if (!k) continue;
        size_t j = skip_spaces(t, i + k), dd = digits_at(t, j);
        if (dd >= 1 && dd <= 6 && number_ends(t, j + dd)) return j + dd;
    }
    return 0;
}

/* --------------------------------------------------- names after titles --- */

static const char *const TITLES[] = {"Dr", "Drs", "Mr", "Mrs", "Ms", "Mx", "Miss", "Prof", NULL};
/* Capitalised words that follow a title without being a name. */
static const char *const NOT_NAMES[] = {
    "the", "a", "an", "and", "or", "on", "in", "at", "of", "to", "for", "with", "was", "is",
    "has", "had", "will", "would", "said", "notified", "aware", "team", "service", "office",
    "patient", "pt", "attending", "resident", "fellow", "covering", "note", "not", "name",
    "unknown", "x", "xx", "xxx", "redacted",
    /* sentence starts that are nobody's surname ("Spoke to Dr. Today.", "Mr. This") */
    "this", "that", "these", "those", "there", "here", "which", "what", "when", "where",
    "why", "yes", "none", "they", "their", "them", "our", "my", "your", "also", "then",
    "today", "tonight", "tomorrow", "yesterday", "now", "later", "please", "ok", "okay",
    NULL};
/* Words that start sentences (pronouns, auxiliaries, the verbs of notes). A
 * sentence may end with "Dr." ("Discussed with Dr. He agreed", "Paged Dr. Called
 * back"), but He, Her, Do, So and Can are surnames too ("Mr. He", "Dr. So
 * recommends"): these words are not names only after "Dr"/"Dr." and before a lower
 * case word, where a new sentence is the likelier reading. */
static const char *const SENTENCE_STARTS[] = {
    /* pronouns and determiners */
    "he", "she", "it", "i", "we", "you", "his", "her", "hers", "him", "its", "who", "how",
    "all", "no",
    /* auxiliaries and conjunctions */
    "am", "are", "be", "been", "being", "can", "could", "did", "do", "does", "might",
    "must", "shall", "should", "were", "but", "if", "so", "as", "by", "from", "per", "re",
    "via",
    /* the verbs that follow a clinician in notes */
    "called", "calls", "agreed", "agrees", "recommended", "recommends", "states", "stated",
    "reports", "reported", "saw", "sees", "seen", "spoke", "discussed", "paged",
    "contacted", "informed", "updated", "answered", "returned", "evaluated", "examined",
    "ordered", "orders", "performed", "requested", "reviewed", "signed", "wrote",
    "consulted", "feels", "felt", "thinks", "believes", "suggests", "suggested", "plans",
    "planned", "visit", "appointment", "appt", NULL};

static int is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Whether the word [i, e) after "Dr"/"Dr." opens a new sentence: one of
 * SENTENCE_STARTS followed by a lower-case word ("Dr. He agreed"). */
static int sentence_after_dr(const text *t, size_t i, size_t e) {
    size_t k = skip_spaces(t, e);
    return k > e && is_lower(at(t, k)) && whole_word_in(t, i, e, SENTENCE_STARTS);
}

static size_t name_token(const text *t, size_t i, int after_dr) {
    size_t j = i;
    if (at(t, j) >= 0xC0) { /* a UTF-8 lead byte: trust it as a capital (Émile, Łukasz) */
        j++;
        while (j < t->n && j - i < 4 && at(t, j) >= 0x80 && at(t, j) < 0xC0) j++;
    } else if (is_upper(at(t, j))) {
        j++;
    } else {
        return 0;
    }
    size_t body = j;
    while (j < t->n && j - i < WORD_MAX &&
           (is_alpha(t->s[j]) || t->s[j] >= 0x80 ||
            ((t->s[j] == '\'' || t->s[j] == '-') && is_alpha(at(t, j + 1)))))
        j++;
    /* a word cut at WORD_MAX ends on a whole character (phi_scan.h) */
    while (j > body && is_continuation(at(t, j))) j--;
    if (j == body) return 0;
    if (whole_word_in(t, i, j, NOT_NAMES)) return 0;
    if (after_dr && sentence_after_dr(t, i, j)) return 0;
    return j;
}

static size_t match_name(const text *t, size_t i) {
    size_t k = 0;
    for (const char *const *ti = TITLES; *ti && !k; ti++) {
        k = lit_cs(t, i, *ti);
        if (k && is_alpha(at(t, i + k))) k = 0;
    }
    if (!k) return 0;
    const int after_dr = k == 2 && t->s[i + 1] == 'r' && t->s[i] == 'D';
    size_t j = i + k;
    int dot = at(t, j) == '.';
    j += dot;
    size_t s = skip_spaces(t, j);
    if (s == j && !dot) return 0;
    if (s - j > 2) return 0;
    /* an initial first: "Dr. J. Smith" */
    if (is_upper(at(t, s)) && at(t, s + 1) == '.' && at(t, s + 2) == ' ') {
        return name_token(t, skip_spaces(t, s + 2), 0);
    }
    return name_token(t, s, after_dr);
}

/* ------------------------------------------------------- placeholders --- */

/* The end of a de-identification placeholder at i: "[**" ... "**]" on one line,
 * PLACEHOLDER_MAX bytes at most (MIMIC's "[**Medical Record Number 4567**]",
 * "[**2101-3-4**]"); 0 when there is none, or it is not closed (then the text is
 * scanned as any other). */
static size_t placeholder_end(const text *t, size_t i) {
    if (!lit_cs(t, i, "[**")) return 0;
    for (size_t j = i + 3; j + 3 <= t->n && j + 3 - i <= PLACEHOLDER_MAX; j++) {
        if (t->s[j] == '\n') return 0;
        if (t->s[j] == '*' && t->s[j + 1] == '*' && t->s[j + 2] == ']') return j + 3;
    }
    return 0;
}

/* ---------------------------------------------------------- the walk --- */

static size_t match_at(const text *t, size_t i, int *kind) {
    int c = t->s[i];
    size_t e;
    if (is_alnum(c)) {
        if ((e = match_email(t, i))) return *kind = ET_PHI_EMAIL, e;
        if ((e = match_url(t, i))) return *kind = ET_PHI_URL, e;
    }
    if (is_digit(c) && number_starts(t, i)) {
        if ((e = match_ipv4(t, i))) return *kind = ET_PHI_IP, e;
    }
    if ((e = match_ipv6(t, i))) return *kind = ET_PHI_IP, e;
    if (is_alpha(c)) {
        if ((e = match_id_after_cue(t, i))) return *kind = ET_PHI_MRN, e;
        if ((e = age_from_word(t, i))) return *kind = ET_PHI_AGE_OVER_89, e;
        if ((e = date_month_first(t, i))) return *kind = ET_PHI_DATE, e;
        if ((e = match_po_box(t, i))) return *kind = ET_PHI_STREET_ADDRESS, e;
        if ((e = match_name(t, i))) return *kind = ET_PHI_NAME_AFTER_TITLE, e;
        return 0;
    }
    if (c == '(' || c == '+') {
        if ((e = match_phone(t, i, kind))) return e;
        return 0;
    }
    if (!is_digit(c) || !number_starts(t, i)) return 0;
    if ((e = match_ssn(t, i))) return *kind = ET_PHI_SSN, e;
    if ((e = match_phone(t, i, kind))) return e;
    if ((e = date_numeric(t, i))) return *kind = ET_PHI_DATE, e;
    if ((e = date_day_first(t, i))) return *kind = ET_PHI_DATE, e;
    if ((e = age_from_number(t, i))) return *kind = ET_PHI_AGE_OVER_89, e;
    if ((e = match_zip(t, i))) return *kind = ET_PHI_ZIP, e;
    if ((e = match_street(t, i))) return *kind = ET_PHI_STREET_ADDRESS, e;
    if (i >= t->bare_from && (e = match_digit_run(t, i))) return *kind = ET_PHI_MRN, e;
    return 0;
}

/* ------------------------------------------------------ normalisation --- */

/* The character at s (n bytes left) if the matchers read it as ASCII: returns its
 * byte length and sets *c to the ASCII byte; returns 0 when s starts no such
 * character (its bytes are read as they are, and take part in no pattern).
 *   spaces -> ' ':   U+00A0, U+2000..200A, U+202F, U+205F, U+3000
 *   dashes -> '-':   U+2010..2015, U+2212, U+FE63, U+FF0D
 *   digits:          U+FF10..FF19 (fullwidth)
 * Every character folds to exactly one byte, so BACK_BYTES of text always hold BACK
 * bytes of view. */
static size_t fold_char(const unsigned char *s, size_t n, int *c) {
    if (n >= 2 && s[0] == 0xC2 && s[1] == 0xA0) return *c = ' ', 2;
    if (n < 3) return 0;
    const unsigned b1 = s[1], b2 = s[2];
    if (s[0] == 0xE2 && b1 == 0x80) {
        if (b2 >= 0x80 && b2 <= 0x8A) return *c = ' ', 3;
        if (b2 >= 0x90 && b2 <= 0x95) return *c = '-', 3;
        if (b2 == 0xAF) return *c = ' ', 3;
        return 0;
    }
    if (s[0] == 0xE2 && b1 == 0x81 && b2 == 0x9F) return *c = ' ', 3;
    if (s[0] == 0xE2 && b1 == 0x88 && b2 == 0x92) return *c = '-', 3;
    if (s[0] == 0xE3 && b1 == 0x80 && b2 == 0x80) return *c = ' ', 3;
    if (s[0] == 0xEF && b1 == 0xB9 && b2 == 0xA3) return *c = '-', 3;
    if (s[0] == 0xEF && b1 == 0xBC && b2 == 0x8D) return *c = '-', 3;
    if (s[0] == 0xEF && b1 == 0xBC && b2 >= 0x90 && b2 <= 0x99) return *c = '0' + (int)(b2 - 0x90), 3;
    return 0;
}

/* Lookback taken in original bytes: a folded character is at most 3 bytes, so this
 * holds BACK bytes of view. */
#define BACK_BYTES (3 * BACK)

_Static_assert(ET_PHI_WINDOW > BACK_BYTES + AHEAD + 16 && 3 * ET_PHI_WINDOW <= 65535,
               "a window holds both reaches and some progress; map entries are 16-bit");

/* One window of text as the matchers read it. map[v]: offset, within the window, of
 * the original character that view byte v stands for (mapped NULL: the view is the
 * original text itself). */
typedef struct {
    const unsigned char *orig; /* the window's first original byte */
    size_t orig_len;           /* original bytes the view covers */
    text t;
    const uint16_t *mapped;
    unsigned char buf[ET_PHI_WINDOW];
    uint16_t map[ET_PHI_WINDOW];
} view;

static int needs_folding(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int c;
        if (s[i] >= 0xC2 && fold_char(s + i, n - i, &c)) return 1;
    }
    return 0;
}

/* Builds the view of s (n bytes to the end of the text): at most ET_PHI_WINDOW view
 * bytes, whole characters only. Returns whether it reaches the end of the text. */
static int view_build(view *v, const unsigned char *s, size_t n) {
    size_t span = n < ET_PHI_WINDOW ? n : ET_PHI_WINDOW;
    v->orig = s;
    v->t.after = NO_FINDING;
    /* a character that starts inside the span and ends past it is folded too */
    if (!needs_folding(s, n < span + 2 ? n : span + 2)) {
        v->t.s = s;
        v->t.n = v->orig_len = span;
        v->mapped = NULL;
        return span == n;
    }
    size_t o = 0, i = 0;
    while (i < n && o < ET_PHI_WINDOW) {
        int c;
        size_t k = s[i] >= 0xC2 ? fold_char(s + i, n - i, &c) : 0;
        if (!k) c = s[i], k = 1;
        v->buf[o] = (unsigned char)c;
        v->map[o++] = (uint16_t)i;
        i += k;
    }
    v->t.s = v->buf;
    v->t.n = o;
    v->orig_len = i;
    v->mapped = v->map;
    return i == n;
}

/* The view index of the first character at or after window offset x. */
static size_t view_index(const view *v, size_t x) {
    if (!v->mapped) return x;
    size_t lo = 0, hi = v->t.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->mapped[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Window offset where view byte i starts (the window's end past the last). */
static size_t orig_start(const view *v, size_t i) {
    if (!v->mapped) return i;
    return i < v->t.n ? v->mapped[i] : v->orig_len;
}

/* Window offset where the character of view byte e - 1 ends: a folded character
 * spans 2 (U+00A0) or 3 original bytes, a byte read as it is 1. */
static size_t orig_end(const view *v, size_t e) {
    if (!v->mapped) return e;
    size_t o = v->mapped[e - 1];
    return o + (v->orig[o] == v->t.s[e - 1] ? 1 : v->orig[o] == 0xC2 ? 2 : 3);
}

typedef struct {
    int64_t *counts;
    et_phi_finding *out;
    size_t cap, found;
    size_t last_end;  /* text offset just past the last finding, or NO_FINDING */
    size_t bare_from; /* text offset where the bare digit-run rule starts */
    int grow;         /* out is malloc'd and grows (et_phi_scan_text_all) */
    int oom;          /* growing failed: findings past cap were lost */
} sink;

/* Stores finding f, growing out when the sink may: one pass fills an array of any
 * size, where a count first and a fill after would scan the text twice. */
static void sink_put(sink *k, et_phi_finding f) {
    if (k->counts) k->counts[f.kind]++;
    if (k->found == k->cap && k->grow && !k->oom) {
        size_t cap = k->cap ? 2 * k->cap : 16;
        et_phi_finding *out = realloc(k->out, cap * sizeof *out);
        if (out) k->out = out, k->cap = cap;
        else k->oom = 1;
    }
    if (k->found < k->cap) k->out[k->found] = f;
    k->found++;
}

/* Walks the view from view byte i while before vstop; records findings at text
 * offsets (base: the window's offset in the text). Returns the window offset where
 * the walk stopped. */
static size_t walk_view(view *v, size_t base, size_t i, size_t vstop, sink *k) {
    text *t = &v->t;
    if (k->last_end != NO_FINDING && k->last_end >= base)
        t->after = view_index(v, k->last_end - base);
    t->bare_from = k->bare_from > base ? view_index(v, k->bare_from - base) : 0;
    while (i < vstop) {
        int c = t->s[i];
        size_t e;
        if (c == '[' && (e = placeholder_end(t, i))) { /* already de-identified */
            i = e;
            continue;
        }
        /* matchers start at word starts only */
        if (c <= ' ' || c >= 0x80 || (i > 0 && is_alnum(t->s[i - 1]) && is_alnum(c))) {
            i++;
            continue;
        }
        int kind = -1;
        e = match_at(t, i, &kind);
        if (!e || e <= i) {
            i++;
            continue;
        }
        sink_put(k, (et_phi_finding){kind, base + orig_start(v, i), base + orig_end(v, e)});
        k->last_end = base + orig_end(v, e);
        t->after = e;
        i = e;
    }
    return orig_start(v, i);
}

/* The walk over every window (above) into sink k. */
static void scan_into(const char *str, size_t len, sink *k) {
    const unsigned char *s = (const unsigned char *)str;
    view v;
    /* Each window starts BACK_BYTES before the walk's position (on a character
     * boundary) and the walk stops AHEAD view bytes before its end, unless it holds the
     * end of the text: every matcher reads what it would in the whole text. */
    for (size_t pos = 0; pos < len;) {
        size_t ws = pos > BACK_BYTES ? pos - BACK_BYTES : 0;
        while (ws > 0 && is_continuation(s[ws]) && pos - ws < BACK_BYTES + 3) ws--;
        int last = view_build(&v, s + ws, len - ws);
        size_t vstop = last ? v.t.n : v.t.n - AHEAD;
        pos = ws + walk_view(&v, ws, view_index(&v, pos - ws), vstop, k);
    }
}

size_t et_phi_scan_text_in(const char *str, size_t len, size_t structured_len,
                           int64_t counts[ET_PHI_KINDS], et_phi_finding *out, size_t cap) {
    sink k = {counts, out, cap, 0, NO_FINDING, structured_len, 0, 0};
    scan_into(str, len, &k);
    return k.found;
}

size_t et_phi_scan_text(const char *str, size_t len, int64_t counts[ET_PHI_KINDS],
                        et_phi_finding *out, size_t cap) {
    return et_phi_scan_text_in(str, len, 0, counts, out, cap);
}

et_phi_finding *et_phi_scan_text_all(const char *str, size_t len, size_t structured_len,
                                     size_t *n, int *oom) {
    sink k = {NULL, NULL, 0, 0, NO_FINDING, structured_len, 1, 0};
    scan_into(str, len, &k);
    *n = k.found;
    *oom = k.oom;
    if (k.oom || !k.found) {
        free(k.out);
        return NULL;
    }
    return k.out;
}
