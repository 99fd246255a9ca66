/* Planted identifiers for the PHI guard's benchmark (data/synth_parts.h).
 *
 * Each plant is one sentence holding one identifier in one of several surface
 * variants, so recall is measured per kind over the forms notes really use. The
 * values are fictional and chosen from reserved ranges where one exists:
 * phones 555-01xx, SSNs in the never-issued 9xx area with groups no ITIN uses,
 * e-mail and URL hosts under example.com/.org/.net, IPs in private or
 * documentation blocks (RFC 1918, RFC 5737, 2001:db8::/32). */
#include <stdio.h>
#include <string.h>

#include "data/phi_scan.h"
#include "data/synth_parts.h"

static const char *const SURNAMES[] = {
    "Smith", "Alvarez", "O'Brien", "Nguyen", "Patel", "Kowalski", "Johnson", "Garcia",
    "McDonald", "Okafor", "Schmidt", "Rossi", "Haddad", "Kim", "Brown", "Williams-Hart",
    "Cohen", "Silva", "Murphy", "Tanaka", "Novak", "Fitzgerald", "Jackson", "Lopez", "Chen",
    "Singh", "Dubois", "Ivanova", "Mensah", "Larsen"};
static const char *const FIRST_NAMES[] = {"john", "maria", "wei", "fatima", "james",
                                          "olga", "luis", "aisha", "peter", "mei"};
static const char *const STREETS[] = {
    "Main", "Oak", "Maple", "Elm", "Cedar", "Washington", "Lincoln", "Park", "Lake", "Hill",
    "Pine", "Highland", "Franklin", "Chestnut", "Walnut", "Sunset", "Riverside", "Jefferson",
    "Madison", "Prospect"};
static const char *const STATES[] = {"MA", "NY", "CA", "TX", "OH", "IL", "WA", "GA", "NC", "MN"};
static const char *const STATE_NAMES[] = {"Ohio", "Texas", "Oregon", "Vermont", "Georgia",
                                          "Maine", "Nevada", "Iowa"};
static const char *const MONTHS[] = {"January", "February", "March",     "April",
                                     "May",     "June",     "July",      "August",
                                     "September", "October", "November", "December"};
static const char *const MON[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const MON_CAPS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};

/* Sentence templates: "%s" is where the identifier goes (exactly once). Each
 * template carries the cue its kind needs, the way notes write it. */
static const char *const T_SSN[] = {"SSN %s on file.", "Social Security number %s verified "
                                    "at registration.", "Pt's SSN: %s."};
static const char *const T_PHONE[] = {"Daughter can be reached at %s.", "Call %s with results.",
                                      "Home phone %s.", "Pt's cell: %s, okay to leave a message."};
static const char *const T_FAX[] = {"Fax: %s.", "Please fax records to %s.",
                                    "Outside records faxed from %s."};
static const char *const T_EMAIL[] = {"Pt requests results by email to %s.",
                                      "Daughter's email is %s.", "Portal messages go to %s."};
static const char *const T_URL[] = {"Family updates posted at %s.", "See %s for the shared "
                                    "care plan.", "Pt uploads glucose logs to %s daily."};
static const char *const T_IP[] = {"Telehealth session from IP %s dropped twice.",
                                   "Home monitor uploads from %s.", "Remote access logged from %s."};
static const char *const T_MRN[] = {"Labels printed with %s.", "Outside films filed under %s.",
                                    "Registration confirmed %s."};
static const char *const T_ADDRESS[] = {"Lives at %s with spouse.", "Discharged home to %s; 2 "
                                        "steps to enter.", "Mail correspondence to %s only."};
static const char *const T_ZIP[] = {"Mailing address updated to %s.", "Pharmacy on file is in "
                                    "%s.", "Moved here from %s last year."};
static const char *const T_DATE[] = {"Last colonoscopy on %s was normal.", "Seen in clinic on "
                                     "%s for the same complaint.", "Prior echo dated %s showed "
                                     "a normal EF.", "Symptoms since %s per pt."};
static const char *const T_NAME[] = {"Case discussed with %s from cardiology.",
                                     "Spoke with %s, who agrees with the plan.",
                                     "%s was updated at bedside."};

/* value text and the identifier's span inside it */
typedef struct {
    char text[96];
    size_t start, end;
    const char *variant;
} value;

static void set_value(value *v, const char *variant, const char *prefix, const char *core) {
    snprintf(v->text, sizeof v->text, "%s%s", prefix, core);
    v->start = strlen(prefix);
    v->end = strlen(v->text);
    v->variant = variant;
}

static void lower_letters(char *out, size_t cap, const char *s) {
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
            out[k++] = (char)(*s | 0x20);
    out[k] = 0;
}

/* s with its ASCII digits as fullwidth ones (U+FF10-FF19, 3 bytes each in UTF-8), as
 * East Asian input methods type them; the guard reads them as digits. */
static void fullwidth_digits(char *out, size_t cap, const char *s) {
    size_t k = 0;
    for (; *s && k + 4 < cap; s++) {
        if (*s >= '0' && *s <= '9') {
            out[k++] = (char)0xEF, out[k++] = (char)0xBC, out[k++] = (char)(0x90 + (*s - '0'));
        } else {
            out[k++] = *s;
        }
    }
    out[k] = 0;
}

static int area_code(synth_rng *r) { return synth_rng_range(r, 2, 9) * 100 + synth_rng_range(r, 1, 89); }

static void phone_value(value *v, synth_rng *r, int fax) {
    int a = area_code(r), line = synth_rng_range(r, 100, 199);
    char c[48];
    int variant = (int)synth_rng_below(r, fax ? 3 : 7);
    switch (variant) {
    case 0: snprintf(c, sizeof c, "(%03d) 555-%04d", a, line), set_value(v, "paren", "", c); break;
    case 6: /* a no-break space (U+00A0) after the area code, as word processors paste it */
        snprintf(c, sizeof c, "(%03d)\xC2\xA0" "555-%04d", a, line), set_value(v, "paren_nbsp", "", c);
        break;
    case 1: snprintf(c, sizeof c, "%03d-555-%04d", a, line), set_value(v, "dashed", "", c); break;
    case 2: snprintf(c, sizeof c, "%03d.555.%04d", a, line), set_value(v, "dotted", "", c); break;
    case 3: snprintf(c, sizeof c, "+1 %03d 555 %04d", a, line), set_value(v, "intl", "", c); break;
    case 4:
        snprintf(c, sizeof c, "%03d-555-%04d x%d", a, line, synth_rng_range(r, 2, 4999));
        set_value(v, "extension", "", c);
        break;
    default: snprintf(c, sizeof c, "555-%04d", line), set_value(v, "local", "", c); break;
    }
}

static void make_value(value *v, int kind, synth_rng *r) {
    char c[80], d[80];
    const char *sur = SYNTH_PICK(r, SURNAMES);
    switch (kind) {
    case ET_PHI_SSN: {
        int a = synth_rng_range(r, 900, 999), g = synth_rng_range(r, 1, 49),
            s = synth_rng_range(r, 1, 9999);
        switch (synth_rng_below(r, 4)) {
        case 0: snprintf(c, sizeof c, "%03d-%02d-%04d", a, g, s), set_value(v, "dashed", "", c); break;
        case 1: snprintf(c, sizeof c, "%03d %02d %04d", a, g, s), set_value(v, "spaced", "", c); break;
        case 2:
            snprintf(d, sizeof d, "%03d-%02d-%04d", a, g, s), fullwidth_digits(c, sizeof c, d);
            set_value(v, "fullwidth_digits", "", c);
            break;
        default: snprintf(c, sizeof c, "%03d%02d%04d", a, g, s), set_value(v, "bare_with_cue", "", c); break;
        }
        return;
    }
    case ET_PHI_PHONE: phone_value(v, r, 0); return;
    case ET_PHI_FAX: phone_value(v, r, 1); return;
    case ET_PHI_EMAIL: {
        const char *first = SYNTH_PICK(r, FIRST_NAMES);
        lower_letters(d, sizeof d, sur);
        switch (synth_rng_below(r, 3)) {
        case 0: snprintf(c, sizeof c, "%s.%s@example.com", first, d), set_value(v, "first.last", "", c); break;
        case 1:
            snprintf(c, sizeof c, "%c%s%d@example.org", first[0], d, synth_rng_range(r, 1, 99));
            set_value(v, "initial_digits", "", c);
            break;
        default: snprintf(c, sizeof c, "%s+%s@mail.example.net", d, first), set_value(v, "plus_tag", "", c); break;
        }
        return;
    }
    case ET_PHI_URL: {
        const char *first = SYNTH_PICK(r, FIRST_NAMES);
        lower_letters(d, sizeof d, sur);
        switch (synth_rng_below(r, 4)) {
        case 0:
            snprintf(c, sizeof c, "https://mychart.example.org/patient/%d", synth_rng_range(r, 1000, 99999));
            set_value(v, "https", "", c);
            break;
        case 1: snprintf(c, sizeof c, "www.example.com/%s-%s", first, d), set_value(v, "www", "", c); break;
        case 2:
            snprintf(c, sizeof c, "http://portal.example.net/records?id=%d", synth_rng_range(r, 100, 9999));
            set_value(v, "http_query", "", c);
            break;
        default: snprintf(c, sizeof c, "example.org/u/%s%d", d, synth_rng_range(r, 1, 99)), set_value(v, "bare_host", "", c); break;
        }
        return;
    }
    case ET_PHI_IP:
        switch (synth_rng_below(r, 4)) {
        case 3: /* with a port: the address is the identifier, the port goes with it */
            snprintf(c, sizeof c, "10.%d.%d.%d:%d", synth_rng_range(r, 0, 255), synth_rng_range(r, 0, 255),
                     synth_rng_range(r, 1, 254), synth_rng_range(r, 1024, 65535));
            set_value(v, "ipv4_port", "", c);
            break;
        case 0:
            if (synth_rng_chance(r, 50))
                snprintf(c, sizeof c, "10.%d.%d.%d", synth_rng_range(r, 0, 255), synth_rng_range(r, 0, 255), synth_rng_range(r, 1, 254));
            else
                snprintf(c, sizeof c, "192.168.%d.%d", synth_rng_range(r, 0, 255), synth_rng_range(r, 1, 254));
            set_value(v, "ipv4_private", "", c);
            break;
        case 1:
            snprintf(c, sizeof c, "%s.%d", synth_rng_chance(r, 50) ? "203.0.113" : "198.51.100", synth_rng_range(r, 1, 254));
            set_value(v, "ipv4_documentation", "", c);
            break;
        default:
            snprintf(c, sizeof c, "2001:db8:%x:%x::%x", synth_rng_range(r, 1, 0xffff), synth_rng_range(r, 0, 0xffff), synth_rng_range(r, 1, 0xffff));
            set_value(v, "ipv6", "", c);
            break;
        }
        return;
    case ET_PHI_MRN: {
        int n7 = synth_rng_range(r, 1000000, 9999999);
        switch (synth_rng_below(r, 7)) {
        case 0: snprintf(c, sizeof c, "%08d", synth_rng_range(r, 1000000, 99999999)), set_value(v, "mrn_colon", "MRN: ", c); break;
        case 1: snprintf(c, sizeof c, "00%05d", synth_rng_range(r, 10000, 99999)), set_value(v, "mrn_space", "MRN ", c); break;
        case 2: snprintf(c, sizeof c, "%07d", n7), set_value(v, "mr_hash", "MR# ", c); break;
        case 3: snprintf(c, sizeof c, "A%07d", n7), set_value(v, "account", "Acct #", c); break;
        case 4: snprintf(c, sizeof c, "%07d", n7), set_value(v, "medical_record_number", "medical record number ", c); break;
        case 5: snprintf(c, sizeof c, "W%09d", synth_rng_range(r, 100000000, 999999999)), set_value(v, "member_id", "Member ID: ", c); break;
        default: snprintf(c, sizeof c, "%08d", synth_rng_range(r, 10000000, 99999999)), set_value(v, "bare_run", "", c); break;
        }
        return;
    }
    case ET_PHI_STREET_ADDRESS: {
        int num = synth_rng_range(r, 1, 9999);
        const char *st = SYNTH_PICK(r, STREETS);
        switch (synth_rng_below(r, 6)) {
        case 0: snprintf(c, sizeof c, "%d %s Street", num, st), set_value(v, "street", "", c); break;
        case 1: snprintf(c, sizeof c, "%d %s Ave.", num, st), set_value(v, "ave_abbrev", "", c); break;
        case 2: snprintf(c, sizeof c, "%d N %s Rd", num, st), set_value(v, "direction_rd", "", c); break;
        case 3:
            snprintf(c, sizeof c, "%d %s Blvd Apt %d", num, st, synth_rng_range(r, 1, 40));
            set_value(v, "blvd_apt", "", c);
            break;
        case 4: snprintf(c, sizeof c, "P.O. Box %d", synth_rng_range(r, 10, 9999)), set_value(v, "po_box", "", c); break;
        default: {
            int o = synth_rng_range(r, 1, 12);
            const char *suf = o == 1 ? "st" : o == 2 ? "nd" : o == 3 ? "rd" : "th";
            snprintf(c, sizeof c, "%d %d%s Avenue", num, o, suf);
            set_value(v, "ordinal_avenue", "", c);
            break;
        }
        }
        return;
    }
    case ET_PHI_ZIP: {
        int zip = synth_rng_range(r, 1001, 99950);
        snprintf(c, sizeof c, "%05d", zip);
        switch (synth_rng_below(r, 4)) {
        case 0: snprintf(d, sizeof d, "%s ", SYNTH_PICK(r, STATES)), set_value(v, "state_abbrev", d, c); break;
        case 1: set_value(v, "zip_cue", "ZIP ", c); break;
        case 2: {
            char c4[16];
            snprintf(c4, sizeof c4, "%05d-%04d", zip, synth_rng_range(r, 1, 9999));
            set_value(v, "zip_plus4", "zip code ", c4);
            break;
        }
        default: snprintf(d, sizeof d, "%s ", SYNTH_PICK(r, STATE_NAMES)), set_value(v, "state_name", d, c); break;
        }
        return;
    }
    case ET_PHI_DATE: {
        int y = synth_rng_range(r, 1975, 2023), m = synth_rng_range(r, 1, 12), dd = synth_rng_range(r, 1, 25);
        switch (synth_rng_below(r, 13)) {
        case 9: { /* ISO date-time, UTC or with an offset */
            int hh = synth_rng_range(r, 0, 23), mi = synth_rng_range(r, 0, 59);
            if (synth_rng_chance(r, 50))
                snprintf(c, sizeof c, "%04d-%02d-%02dT%02d:%02dZ", y, m, dd, hh, mi);
            else
                snprintf(c, sizeof c, "%04d-%02d-%02dT%02d:%02d:%02d-0%d:00", y, m, dd, hh, mi,
                         synth_rng_range(r, 0, 59), synth_rng_range(r, 4, 8));
            set_value(v, "iso date-time", "", c);
            break;
        }
        case 10: /* a range: both ends are dates; the span covers the two */
            snprintf(c, sizeof c, "%02d/%02d/%04d-%02d/%02d/%04d", m, dd, y, m, dd + synth_rng_range(r, 1, 3), y);
            set_value(v, "mm/dd/yyyy range", "", c);
            break;
        case 11:
            snprintf(c, sizeof c, "%s %d-%d, %04d", MONTHS[m - 1], dd, dd + synth_rng_range(r, 1, 3), y);
            set_value(v, "month d-d, yyyy", "", c);
            break;
        case 12: /* en dashes (U+2013), as a word processor's autocorrect leaves them */
            snprintf(c, sizeof c, "%04d\xE2\x80\x93%02d\xE2\x80\x93%02d", y, m, dd);
            set_value(v, "iso en-dash", "", c);
            break;
        case 0: snprintf(c, sizeof c, "%02d/%02d/%04d", m, dd, y), set_value(v, "mm/dd/yyyy", "", c); break;
        case 1: snprintf(c, sizeof c, "%d/%d/%02d", m, dd, y % 100), set_value(v, "m/d/yy", "", c); break;
        case 2: snprintf(c, sizeof c, "%s %d, %04d", MONTHS[m - 1], dd, y), set_value(v, "month d, yyyy", "", c); break;
        case 3: snprintf(c, sizeof c, "%04d-%02d-%02d", y, m, dd), set_value(v, "iso", "", c); break;
        case 4: snprintf(c, sizeof c, "%d %s %04d", dd, MON[m - 1], y), set_value(v, "d mon yyyy", "", c); break;
        case 5: snprintf(c, sizeof c, "%02d-%s-%04d", dd, MON_CAPS[m - 1], y), set_value(v, "dd-MON-yyyy", "", c); break;
        case 6: snprintf(c, sizeof c, "%s %d", MON[m - 1], dd), set_value(v, "mon d", "", c); break;
        case 7: snprintf(c, sizeof c, "%d/%d", m, dd), set_value(v, "m/d after cue", "", c); break;
        default: snprintf(c, sizeof c, "%s %04d", MONTHS[m - 1], y), set_value(v, "month yyyy", "", c); break;
        }
        return;
    }
    case ET_PHI_NAME_AFTER_TITLE:
        switch (synth_rng_below(r, 7)) {
        case 0: snprintf(c, sizeof c, "Dr. %s", sur), set_value(v, "dr.", "", c); break;
        case 1: snprintf(c, sizeof c, "Dr %s", sur), set_value(v, "dr", "", c); break;
        case 2: snprintf(c, sizeof c, "Dr. %c. %s", 'A' + (int)synth_rng_below(r, 26), sur), set_value(v, "dr. initial", "", c); break;
        case 3: snprintf(c, sizeof c, "Mrs. %s", sur), set_value(v, "mrs.", "", c); break;
        case 4: snprintf(c, sizeof c, "Mr. %s", sur), set_value(v, "mr.", "", c); break;
        case 5: snprintf(c, sizeof c, "Ms. %s", sur), set_value(v, "ms.", "", c); break;
        default: snprintf(c, sizeof c, "Miss %s", sur), set_value(v, "miss", "", c); break;
        }
        return;
    }
}

/* Ages above 89 come with their own sentence: the number and the age word
 * together make the identifier. */
static const struct {
    const char *variant, *format, *sentence;
} AGES[] = {
    {"n-year-old", "%d-year-old", "Her %s mother lives with her."},
    {"age n", "age %d", "Spouse, %s, is the primary caregiver."},
    {"n yo", "%d yo", "Hx obtained from the pt's %s father."},
    {"n y/o", "%d y/o", "Roommate is a %s F who helps with meds."},
    {"aged n", "aged %d", "Lives with an aunt %s."},
    {"n years old", "%d years old", "Pt's mother is %s and in good health."},
};

static void compose(synth_plant *p, const char *tmpl, const value *v) {
    const char *hole = strstr(tmpl, "%s");
    size_t pre = (size_t)(hole - tmpl);
    snprintf(p->sentence, sizeof p->sentence, "%.*s%s%s", (int)pre, tmpl, v->text, hole + 2);
    p->start = pre + v->start;
    p->end = pre + v->end;
    p->variant = v->variant;
}

void synth_plant_make(synth_plant *p, int kind, synth_rng *r) {
    value v;
    p->kind = kind;
    if (kind == ET_PHI_AGE_OVER_89) {
        int i = (int)synth_rng_below(r, (uint32_t)(sizeof AGES / sizeof AGES[0]));
        char c[32];
        snprintf(c, sizeof c, AGES[i].format, synth_rng_range(r, 90, 105));
        set_value(&v, AGES[i].variant, "", c);
        compose(p, AGES[i].sentence, &v);
        return;
    }
    make_value(&v, kind, r);
    const char *tmpl;
    switch (kind) {
    case ET_PHI_SSN: tmpl = SYNTH_PICK(r, T_SSN); break;
    case ET_PHI_PHONE: tmpl = SYNTH_PICK(r, T_PHONE); break;
    case ET_PHI_FAX: tmpl = SYNTH_PICK(r, T_FAX); break;
    case ET_PHI_EMAIL: tmpl = SYNTH_PICK(r, T_EMAIL); break;
    case ET_PHI_URL: tmpl = SYNTH_PICK(r, T_URL); break;
    case ET_PHI_IP: tmpl = SYNTH_PICK(r, T_IP); break;
    case ET_PHI_MRN: tmpl = SYNTH_PICK(r, T_MRN); break;
    case ET_PHI_STREET_ADDRESS: tmpl = SYNTH_PICK(r, T_ADDRESS); break;
    case ET_PHI_ZIP: tmpl = SYNTH_PICK(r, T_ZIP); break;
    case ET_PHI_DATE: tmpl = SYNTH_PICK(r, T_DATE); break;
    default: tmpl = SYNTH_PICK(r, T_NAME); break;
    }
    compose(p, tmpl, &v);
}
