/* PHI guard matchers (data/phi_scan.h). One function per identifier shape; each
 * takes the text and a start offset and returns the end of its match or 0.
 *
 * The scan walks the text once. At every word start it tries the matchers in a
 * fixed priority order (contact forms first, then cue-led ids, dates, ages,
 * addresses, names, bare digit runs); the first that matches records a finding
 * and the walk resumes after it, so findings never overlap.
 *
 * Precision rules come from what clinical notes are full of (research note §3 and
 * Philter's "safe" filters): ratios (BP 140/90, strength 5/5, murmur 2/6), doses
 * and lab values with units, times (08:00), ICD-10 codes (E11.9), spine levels
 * (L4-5), ages <= 89, MS/MR/DR/ST/CT abbreviations and "Dr." before a placeholder. */
#include "data/phi_scan.h"

#include <arpa/inet.h>
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
} text;

static int at(const text *t, size_t i) { return i < t->n ? t->s[i] : 0; }

static size_t digits_at(const text *t, size_t i) {
    size_t j = i;
    while (j < t->n && is_digit(t->s[j])) j++;
    return j - i;
}

static long number_at(const text *t, size_t i, size_t len) {
    long v = 0;
    for (size_t k = 0; k < len; k++) v = v * 10 + (t->s[i + k] - '0');
    return v;
}

static size_t skip_spaces(const text *t, size_t i) {
    while (i < t->n && (t->s[i] == ' ' || t->s[i] == '\t')) i++;
    return i;
}

/* A number may start at i: not glued to a letter/digit, and not the tail of a
 * decimal, ratio or range ("0.9", "140/90", "L4-5", "1,000"). */
static int number_starts(const text *t, size_t i) {
    if (i == 0) return 1;
    int p = t->s[i - 1];
    if (is_alnum(p)) return 0;
    if ((p == '.' || p == ',' || p == '/' || p == '-' || p == ':') && i >= 2 &&
        is_digit(t->s[i - 2]))
        return 0;
    return 1;
}

/* A number may end at j: not glued to a letter/digit and not continued as a
 * decimal, ratio or range. */
static int number_ends(const text *t, size_t j) {
    int c = at(t, j);
    if (is_alnum(c)) return 0;
    if ((c == '.' || c == ',' || c == '/' || c == '-' || c == ':') && is_digit(at(t, j + 1)))
        return 0;
    return 1;
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

/* The alphabetic word ending just before `end` (skipping separators in `skip`),
 * lower-cased into buf; returns its start offset or (size_t)-1. */
static size_t prev_word(const text *t, size_t end, const char *skip, char *buf, size_t cap) {
    size_t j = end;
    while (j > 0 && t->s[j - 1] != '\n' && strchr(skip, t->s[j - 1])) j--;
    size_t e = j;
    while (j > 0 && is_alpha(t->s[j - 1])) j--;
    if (j == e || e - j >= cap) return (size_t)-1;
    for (size_t k = j; k < e; k++) buf[k - j] = (char)to_lower(t->s[k]);
    buf[e - j] = 0;
    return j;
}

/* Cue words in the `window` bytes before i, on the same line. Returns the offset
 * just past the last cue found (0 = none). A cue ending in '*' matches as a
 * prefix ("fax*" matches "faxed"); others must be whole words. */
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
            size_t len = strlen(*c), prefix = (*c)[len - 1] == '*';
            if (prefix) len--;
            if (e - j < len || (!prefix && e - j != len)) continue;
            size_t k = 0;
            while (k < len && to_lower(t->s[j + k]) == (unsigned char)(*c)[k]) k++;
            if (k == len && e > best) best = e;
        }
        j = e;
    }
    return best;
}

/* ------------------------------------------------------ contact forms --- */

static int is_email_local(int c) { return is_alnum(c) || (c && strchr("._%+-", c)); }

/* host labels [A-Za-z0-9-]+ joined by dots, at least two; returns the end, the
 * start of the last label in *tld. */
static size_t host_at(const text *t, size_t i, size_t *tld) {
    size_t j = i, labels = 0, last = i;
    for (;;) {
        size_t s = j;
        while (j < t->n && j - i < 253 && (is_alnum(t->s[j]) || t->s[j] == '-')) j++;
        if (j == s) return 0;
        last = s;
        labels++;
        if (at(t, j) == '.' && is_alnum(at(t, j + 1))) j++;
        else break;
    }
    if (labels < 2) return 0;
    *tld = last;
    return j;
}

static size_t match_email(const text *t, size_t i) {
    if (!is_alnum(at(t, i))) return 0;
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
    while (j < t->n && t->s[j] > ' ' && t->s[j] < 0x7f && !strchr("<>\"'`", t->s[j])) j++;
    while (j > 0 && strchr(".,;:!?)]}", t->s[j - 1])) j--;
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
    return number_ends(t, j) ? j : 0;
}

/* IPv6: gather a hex/colon run and let inet_pton judge it (a single pattern for
 * all compressed forms is fragile). Times such as 08:00:00 fail inet_pton. */
static size_t match_ipv6(const text *t, size_t i) {
    if (!is_hex(at(t, i)) && at(t, i) != ':') return 0;
    size_t j = i, colons = 0, hexes = 0;
    while (j < t->n && j - i < 45 && (is_hex(t->s[j]) || t->s[j] == ':' || t->s[j] == '.')) {
        colons += t->s[j] == ':';
        hexes += is_hex(t->s[j]);
        j++;
    }
    while (j > i && t->s[j - 1] == '.') j--;
    if (j > i + 1 && t->s[j - 1] == ':' && t->s[j - 2] != ':') j--; /* "... fe80::1:" */
    if (colons < 2 || hexes < 3 || is_alnum(at(t, j))) return 0;
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
        is_sep(at(t, i + 6)) && digits_at(t, i + 7) == 4 && number_ends(t, i + 11))
        return i + 11;
    /* 9 bare digits: only with a cue ("SSN", "social security", "SS#") nearby */
    if (digits_at(t, i) == 9 && number_ends(t, i + 9) && last_cue_before(t, i, 32, SSN_CUES))
        return i + 9;
    return 0;
}

/* -------------------------------------------------------- phone / fax --- */

static const char *const FAX_CUES[] = {"fax*", "facsimile", "telefax", NULL};
static const char *const PHONE_CUES[] = {"phone*", "tel", "telephone", "call*", "cell*",
                                         "mobile", "pager", "page", "ph", "contact*",
                                         "reached", NULL};

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

/* NANP shapes with separators; bare 10 digits and 7-digit local numbers only
 * after a phone or fax cue. Sets *cue_needed when the shape alone is too weak. */
static size_t phone_shape(const text *t, size_t i, int *cue_needed) {
    size_t j = i;
    *cue_needed = 0;
    if (at(t, j) == '+' && at(t, j + 1) == '1') {
        j += 2;
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
        if (d == 10 && number_ends(t, j + 10) && j == i) { /* bare: needs a cue */
            *cue_needed = 1;
            return phone_extension(t, j + 10);
        }
        if (d == 3 && at(t, j + 3) == '-' && digits_at(t, j + 4) == 4 &&
            number_ends(t, j + 8) && j == i) { /* local 555-0142: needs a cue */
            *cue_needed = 1;
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
    if (!number_ends(t, j)) return 0;
    /* "120 100 1234"-like runs of spaced numbers: trust only a valid NANP number */
    if (spaces_only && (t->s[area] < '2' || t->s[exch] < '2')) return 0;
    return phone_extension(t, j);
}

static size_t match_phone(const text *t, size_t i, int *kind) {
    int cue_needed;
    size_t e = phone_shape(t, i, &cue_needed);
    if (!e) return 0;
    size_t fax = last_cue_before(t, i, 40, FAX_CUES);
    size_t phone = last_cue_before(t, i, 40, PHONE_CUES);
    if (cue_needed && !fax && !phone) return 0;
    *kind = fax > phone ? ET_PHI_FAX : ET_PHI_PHONE;
    return e;
}

/* -------------------------------------------------------------- dates --- */

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
    return y >= 1900 && y <= 2099 && number_ends(t, i + 4);
}

/* day 1..31 with an optional ordinal suffix; returns the end or 0 */
static size_t day_at(const text *t, size_t i) {
    size_t d = digits_at(t, i);
    if (d < 1 || d > 2) return 0;
    long v = number_at(t, i, d);
    if (v < 1 || v > 31) return 0;
    size_t j = i + d;
    static const char *const ords[] = {"st", "nd", "rd", "th", NULL};
    size_t k = word_in(t, j, ords);
    j += k;
    return number_ends(t, j) ? j : 0;
}

/* ", 2019" / " 2019" / "-2019" after a day; returns the end or j unchanged */
static size_t year_after(const text *t, size_t j) {
    size_t k = j;
    if (at(t, k) == ',') k++;
    if (at(t, k) == '-' && k == j) k++;
    else k = skip_spaces(t, k);
    return k > j && year4_at(t, k) ? k + 4 : j;
}

/* Month word first: "March 14, 2019", "Mar 14", "Mar. 3rd", "March 2019". A
 * day alone needs the month Capitalised ("MAR 2" is the medication record, "may
 * 2" a verb); lower case or all caps need a year. */
static size_t date_month_first(const text *t, size_t i) {
    int style;
    size_t k = month_at(t, i, &style);
    if (!k) return 0;
    size_t j = i + k, s = skip_spaces(t, j);
    if (s == j && at(t, j) == '-') s = j + 1;
    if (s == j) return 0;
    if (year4_at(t, s)) return s + 4; /* month + year */
    size_t d = day_at(t, s);
    if (!d) return 0;
    size_t y = year_after(t, d);
    if (y > d) return y;
    return style == 1 ? d : 0;
}

static const char *const DATE_CUES[] = {
    "on", "since", "from", "until", "till", "through", "thru", "dated", "date", "dos", "dob",
    "born", "admitted", "admission", "discharged", "discharge", "seen", "started",
    "starting", "before", "after", "by", NULL};

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
            e++;
            while (e < t->n && (is_digit(t->s[e]) || t->s[e] == ':')) e++;
        }
        return number_ends(t, e) ? e : 0;
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
        size_t c = digits_at(t, e + 1);
        if ((c == 4 || (c == 2 && sep != '.')) && number_ends(t, e + 1 + c)) return e + 1 + c;
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
    size_t d = day_at(t, i);
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

static size_t age_from_word(const text *t, size_t i) {
    static const char *const words[] = {"nonagenarian", "nonagenarians", "centenarian",
                                        "centenarians", "supercentenarian", NULL};
    size_t k = word_in(t, i, words);
    if (k) return i + k;
    static const char *const cues[] = {"aged", "age", NULL};
    if (!(k = word_in(t, i, cues))) return 0;
    size_t j = i + k;
    while (j < t->n && (t->s[j] == ' ' || t->s[j] == ':' || t->s[j] == '=') && j - i < 8) j++;
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
static const char *const ID_FILLERS[] = {"number", "num", "nbr", "no", "id", "is", "#", NULL};

/* Units that make a digit run a quantity, not an identifier (Philter's units_safe). */
static const char *const UNITS[] = {"mg", "mcg", "g", "kg", "ml", "l", "dl", "units", "unit",
                                    "u", "iu", "meq", "mmol", "copies", "cells", "cfu",
                                    "k", "x", "ng", "pg", "ug", NULL};

static int unit_follows(const text *t, size_t j) {
    size_t k = skip_spaces(t, j);
    if (at(t, k) == '/' || at(t, k) == '%') return 1;
    return word_in(t, k, UNITS) != 0;
}

/* An identifier token: [A-Za-z0-9-]{4,20} with at least 4 digits. */
static size_t id_token(const text *t, size_t i) {
    if (!is_alnum(at(t, i))) return 0;
    size_t j = i, digits = 0;
    while (j < t->n && j - i < 21 && (is_alnum(t->s[j]) || t->s[j] == '-')) digits += is_digit(t->s[j++]);
    while (j > i && t->s[j - 1] == '-') j--;
    if (j - i < 4 || j - i > 20 || digits < 4 || is_alnum(at(t, j))) return 0;
    if (unit_follows(t, j)) return 0;
    return j;
}

static size_t match_id_after_cue(const text *t, size_t i) {
    size_t k = 0;
    if (lit_ci(t, i, "mrn") && is_digit(at(t, i + 3))) /* glued: "MRN12345678" */
        return id_token(t, i + 3);
    if ((k = lit_ci(t, i, "mr#")) || (k = lit_ci(t, i, "mr #"))) {
    } else if (!(k = word_in(t, i, ID_CUES))) {
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
    size_t e = id_token(t, j);
    return e ? e : 0;
}

/* Any bare run of >= 7 digits that is not a quantity. */
static size_t match_digit_run(const text *t, size_t i) {
    size_t d = digits_at(t, i);
    if (d < 7 || !number_ends(t, i + d) || unit_follows(t, i + d)) return 0;
    return i + d;
}

/* ------------------------------------------------------ ZIP codes --- */

static const char *const STATE_ABBR[] = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
    "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VT", "VA", "WA", "WV", "WI", "WY", "PR", NULL};
/* Last word of every state name (and DC, PR), lower case. */
static const char *const STATE_WORDS[] = {
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut",
    "delaware", "florida", "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa",
    "kansas", "kentucky", "louisiana", "maine", "maryland", "massachusetts", "michigan",
    "minnesota", "mississippi", "missouri", "montana", "nebraska", "nevada", "hampshire",
    "jersey", "mexico", "york", "carolina", "dakota", "ohio", "oklahoma", "oregon",
    "pennsylvania", "island", "tennessee", "texas", "utah", "vermont", "virginia",
    "washington", "wisconsin", "wyoming", "columbia", "rico", NULL};

static int zip_context(const text *t, size_t i) {
    char w[16];
    size_t ws = prev_word(t, i, " \t,:#", w, sizeof w);
    if (ws == (size_t)-1) return 0;
    if (strlen(w) == 2 && is_upper(t->s[ws]) && is_upper(t->s[ws + 1]))
        for (const char *const *s = STATE_ABBR; *s; s++)
            if (!strncmp((const char *)t->s + ws, *s, 2)) return 1;
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
    if (at(t, e) == '-' && digits_at(t, e + 1) == 4) e += 5;
    if (!number_ends(t, e) || !zip_context(t, i)) return 0;
    return e;
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

static size_t suffix_at(const text *t, size_t i) {
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

/* A street-name word: Capitalised ("Oak", "O'Brien", "MAIN") or an ordinal ("5th"). */
static size_t street_word(const text *t, size_t i) {
    size_t j = i;
    if (is_upper(at(t, j))) {
        j++;
        while (j < t->n && (is_alpha(t->s[j]) || (t->s[j] == '\'' && is_alpha(at(t, j + 1))))) j++;
        return j;
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
    "unknown", "x", "xx", "xxx", "redacted", NULL};

static size_t name_token(const text *t, size_t i) {
    size_t j = i;
    if (at(t, j) >= 0xC0) { /* a UTF-8 lead byte: trust it as a capital (Émile, Łukasz) */
        j++;
        while (j < t->n && at(t, j) >= 0x80 && at(t, j) < 0xC0) j++;
    } else if (is_upper(at(t, j))) {
        j++;
    } else {
        return 0;
    }
    size_t body = j;
    while (j < t->n && (is_alpha(t->s[j]) || t->s[j] >= 0x80 ||
                        ((t->s[j] == '\'' || t->s[j] == '-') && is_alpha(at(t, j + 1)))))
        j++;
    if (j == body) return 0;
    for (const char *const *w = NOT_NAMES; *w; w++)
        if (strlen(*w) == j - i && lit_ci(t, i, *w)) return 0;
    return j;
}

static size_t match_name(const text *t, size_t i) {
    size_t k = 0;
    for (const char *const *ti = TITLES; *ti && !k; ti++) {
        k = lit_cs(t, i, *ti);
        if (k && is_alpha(at(t, i + k))) k = 0;
    }
    if (!k) return 0;
    size_t j = i + k;
    int dot = at(t, j) == '.';
    j += dot;
    size_t s = skip_spaces(t, j);
    if (s == j && !dot) return 0;
    if (s - j > 2) return 0;
    /* an initial first: "Dr. J. Smith" */
    if (is_upper(at(t, s)) && at(t, s + 1) == '.' && at(t, s + 2) == ' ') {
        size_t e = name_token(t, skip_spaces(t, s + 2));
        return e;
    }
    return name_token(t, s);
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
    if ((e = match_digit_run(t, i))) return *kind = ET_PHI_MRN, e;
    return 0;
}

size_t et_phi_scan_text(const char *s, size_t len, int64_t counts[ET_PHI_KINDS],
                        et_phi_finding *out, size_t cap) {
    text t = {(const unsigned char *)s, len};
    size_t found = 0;
    for (size_t i = 0; i < len;) {
        int c = t.s[i];
        /* matchers start at word starts only */
        if (c <= ' ' || c >= 0x80 || (i > 0 && is_alnum(t.s[i - 1]) && is_alnum(c))) {
            i++;
            continue;
        }
        int kind = -1;
        size_t e = match_at(&t, i, &kind);
        if (!e || e <= i) {
            i++;
            continue;
        }
        if (counts) counts[kind]++;
        if (found < cap) out[found] = (et_phi_finding){kind, i, e};
        found++;
        i = e;
    }
    return found;
}
