/* PHI guard matchers (data/phi_scan.h): every kind on its surface variants, with
 * the exact span checked, and the clinical look-alikes that must stay clean
 * (ratios, doses, lab values, times, ICD-10 codes, ages <= 89, "Dr." before a
 * placeholder). Then the JSONL walk (which strings are scanned, line numbers)
 * and the JSON summary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "data/phi_scan.h"

#define MAXF 16

/* `text` holds exactly one finding: of `kind`, spanning exactly `want`. */
static void one(const char *text, int kind, const char *want) {
    et_phi_finding f[MAXF];
    int64_t counts[ET_PHI_KINDS] = {0};
    size_t n = et_phi_scan_text(text, strlen(text), counts, f, MAXF);
    if (n != 1 || f[0].kind != kind) {
        fprintf(stderr, "text: %s\nwant one %s, got %zu finding(s):", text,
                et_phi_kind_name(kind), n);
        for (size_t i = 0; i < n && i < MAXF; i++)
            fprintf(stderr, " %s[%.*s]", et_phi_kind_name(f[i].kind),
                    (int)(f[i].end - f[i].start), text + f[i].start);
        fprintf(stderr, "\n");
        fail();
    }
    const char *at = strstr(text, want);
    assert_non_null(at);
    if (f[0].start != (size_t)(at - text) || f[0].end != f[0].start + strlen(want)) {
        fprintf(stderr, "text: %s\nwant span [%s], got [%.*s]\n", text, want,
                (int)(f[0].end - f[0].start), text + f[0].start);
        fail();
    }
    assert_int_equal(counts[kind], 1);
}

static void clean(const char *text) {
    et_phi_finding f[MAXF];
    size_t n = et_phi_scan_text(text, strlen(text), NULL, f, MAXF);
    if (n) {
        fprintf(stderr, "text: %s\nwant no finding, got:", text);
        for (size_t i = 0; i < n && i < MAXF; i++)
            fprintf(stderr, " %s[%.*s]", et_phi_kind_name(f[i].kind),
                    (int)(f[i].end - f[i].start), text + f[i].start);
        fprintf(stderr, "\n");
        fail();
    }
}

/* `text` holds exactly n findings, of kinds[i] spanning exactly spans[i] (found in
 * order, each after the previous). */
static void several(const char *text, size_t n, const int *kinds, const char *const *spans) {
    et_phi_finding f[MAXF];
    size_t got = et_phi_scan_text(text, strlen(text), NULL, f, MAXF);
    int ok = got == n;
    const char *from = text;
    for (size_t i = 0; ok && i < n; i++) {
        const char *at = strstr(from, spans[i]);
        ok = at && f[i].kind == kinds[i] && f[i].start == (size_t)(at - text) &&
             f[i].end == f[i].start + strlen(spans[i]);
        if (at) from = at + strlen(spans[i]);
    }
    if (!ok) {
        fprintf(stderr, "text: %s\nwant %zu finding(s), got %zu:", text, n, got);
        for (size_t i = 0; i < got && i < MAXF; i++)
            fprintf(stderr, " %s[%.*s]", et_phi_kind_name(f[i].kind),
                    (int)(f[i].end - f[i].start), text + f[i].start);
        fprintf(stderr, "\n");
        fail();
    }
}

static void kind_names(void **state) {
    (void)state;
    const char *names[] = {"ssn", "phone", "fax", "email", "url", "ip", "mrn", "street_address",
                           "zip", "date", "age_over_89", "name_after_title"};
    assert_int_equal(sizeof names / sizeof names[0], ET_PHI_KINDS);
    for (int k = 0; k < ET_PHI_KINDS; k++) {
        assert_string_equal(et_phi_kind_name(k), names[k]);
        assert_int_equal(et_phi_kind_from_name(names[k]), k);
    }
    assert_null(et_phi_kind_name(ET_PHI_KINDS));
    assert_null(et_phi_kind_name(-1));
    assert_int_equal(et_phi_kind_from_name("name"), -1);
}

static void ssn(void **state) {
    (void)state;
    one("SSN 123-45-6789 on file.", ET_PHI_SSN, "123-45-6789");
    one("ss no. 123 45 6789", ET_PHI_SSN, "123 45 6789");
    one("Social security number 123456789 verified.", ET_PHI_SSN, "123456789");
    /* an invalid-looking SSN is still an identifier-shaped leak (research §3) */
    one("SS# 000-00-0000 given", ET_PHI_SSN, "000-00-0000");
    /* 9 bare digits without a cue are an MRN-like run, not an SSN */
    one("ref 123456789 noted", ET_PHI_MRN, "123456789");
}

static void phone_and_fax(void **state) {
    (void)state;
    one("Daughter: (617) 555-0142.", ET_PHI_PHONE, "(617) 555-0142");
    one("call 617-555-0142 with results", ET_PHI_PHONE, "617-555-0142");
    one("cell 617.555.0142", ET_PHI_PHONE, "617.555.0142");
    one("reach her at +1 617 555 0142 today", ET_PHI_PHONE, "+1 617 555 0142");
    one("reach her at 1-617-555-0142", ET_PHI_PHONE, "1-617-555-0142");
    one("office 617-555-0142 x204.", ET_PHI_PHONE, "617-555-0142 x204");
    one("page 555-0142 if febrile", ET_PHI_PHONE, "555-0142");
    one("phone 6175550142.", ET_PHI_PHONE, "6175550142");
    one("Fax: (617) 555-0199", ET_PHI_FAX, "(617) 555-0199");
    one("Records faxed to 617-555-0199.", ET_PHI_FAX, "617-555-0199");
    /* the nearest cue decides */
    const char *both = "Phone 617-555-0142, fax 617-555-0143.";
    et_phi_finding f[4];
    assert_int_equal(et_phi_scan_text(both, strlen(both), NULL, f, 4), 2);
    assert_int_equal(f[0].kind, ET_PHI_PHONE);
    assert_int_equal(f[1].kind, ET_PHI_FAX);
}

static void email_url_ip(void **state) {
    (void)state;
    one("send to john.smith42@gmail.com please", ET_PHI_EMAIL, "john.smith42@gmail.com");
    one("(jdoe+tag@mail.example-health.org)", ET_PHI_EMAIL, "jdoe+tag@mail.example-health.org");
    one("see https://mychart.example.org/patient/48213.", ET_PHI_URL,
        "https://mychart.example.org/patient/48213");
    one("posted at www.caringbridge.org/visit/jsmith, daily", ET_PHI_URL,
        "www.caringbridge.org/visit/jsmith");
    one("http://portal.example.com/r?id=4421", ET_PHI_URL, "http://portal.example.com/r?id=4421");
    one("her page facebook.com/jane.doe was", ET_PHI_URL, "facebook.com/jane.doe");
    one("from IP 192.168.14.27 dropped", ET_PHI_IP, "192.168.14.27");
    one("host 10.0.3.141/24.", ET_PHI_IP, "10.0.3.141/24");
    one("addr fe80::1ff:fe23:4567:890a now", ET_PHI_IP, "fe80::1ff:fe23:4567:890a");
    one("addr 2001:db8:0:0:1:0:0:1.", ET_PHI_IP, "2001:db8:0:0:1:0:0:1");
}

static void mrn(void **state) {
    (void)state;
    one("MRN: 12345678", ET_PHI_MRN, "MRN: 12345678");
    one("MRN 0012345 confirmed", ET_PHI_MRN, "MRN 0012345");
    one("MR# 4402817", ET_PHI_MRN, "MR# 4402817");
    one("Acct #A0982231.", ET_PHI_MRN, "Acct #A0982231");
    one("Medical record number 7781204.", ET_PHI_MRN, "Medical record number 7781204");
    one("Member ID: W123456789", ET_PHI_MRN, "Member ID: W123456789");
    one("chart 48213977 reviewed", ET_PHI_MRN, "48213977");
    one("MRN12345678.", ET_PHI_MRN, "MRN12345678");
    one("VIN 1HGCM82633A004352 on the police report", ET_PHI_MRN, "VIN 1HGCM82633A004352");
    one("pump serial # PX-20417", ET_PHI_MRN, "serial # PX-20417");
    one("license MA-1234567", ET_PHI_MRN, "license MA-1234567");
}

static void addresses_and_zip(void **state) {
    (void)state;
    one("Lives at 123 Main Street with wife.", ET_PHI_STREET_ADDRESS, "123 Main Street");
    one("home: 45 Oak Ave. Second floor", ET_PHI_STREET_ADDRESS, "45 Oak Ave.");
    one("at 7 N Maple Rd, no stairs", ET_PHI_STREET_ADDRESS, "7 N Maple Rd");
    one("at 1600 Elm Blvd Apt 4 alone", ET_PHI_STREET_ADDRESS, "1600 Elm Blvd Apt 4");
    one("at 12 Martin Luther King Jr Blvd", ET_PHI_STREET_ADDRESS, "12 Martin Luther King Jr Blvd");
    one("at 221 5th Avenue", ET_PHI_STREET_ADDRESS, "221 5th Avenue");
    one("mail to P.O. Box 1234 only", ET_PHI_STREET_ADDRESS, "P.O. Box 1234");
    one("at 88 OCEAN DRIVE", ET_PHI_STREET_ADDRESS, "88 OCEAN DRIVE");
    one("moved, MA 02115.", ET_PHI_ZIP, "02115");
    one("ZIP 02115", ET_PHI_ZIP, "02115");
    one("zip code 02115-1234.", ET_PHI_ZIP, "02115-1234");
    one("from Ohio 44113", ET_PHI_ZIP, "44113");
}

static void dates(void **state) {
    (void)state;
    one("seen 03/14/2019.", ET_PHI_DATE, "03/14/2019");
    one("seen 3/14/19, ", ET_PHI_DATE, "3/14/19");
    one("colonoscopy 14/03/2019", ET_PHI_DATE, "14/03/2019");
    one("echo March 14, 2019 showed", ET_PHI_DATE, "March 14, 2019");
    one("echo 2019-03-14 showed", ET_PHI_DATE, "2019-03-14");
    one("echo 2019-03-14T08:30:00 showed", ET_PHI_DATE, "2019-03-14T08:30:00");
    one("collected 14 Mar 2019", ET_PHI_DATE, "14 Mar 2019");
    one("collected 14-MAR-2019 0800", ET_PHI_DATE, "14-MAR-2019");
    one("since Mar 14 pt has", ET_PHI_DATE, "Mar 14");
    one("on the 3rd of January", ET_PHI_DATE, "3rd of January");
    one("since Sept. 3rd she", ET_PHI_DATE, "Sept. 3rd");
    one("admitted on 3/14 with", ET_PHI_DATE, "3/14");
    one("last in March 2019.", ET_PHI_DATE, "March 2019");
    one("last 3/2019.", ET_PHI_DATE, "3/2019");
    one("MAR 14 2019 noted", ET_PHI_DATE, "MAR 14 2019");
}

static void ages(void **state) {
    (void)state;
    one("A 93-year-old woman", ET_PHI_AGE_OVER_89, "93-year-old");
    one("Pt is age 91.", ET_PHI_AGE_OVER_89, "age 91");
    one("92 yo M with", ET_PHI_AGE_OVER_89, "92 yo");
    one("95 y/o F", ET_PHI_AGE_OVER_89, "95 y/o");
    one("aged 97,", ET_PHI_AGE_OVER_89, "aged 97");
    one("her 101-year-old mother", ET_PHI_AGE_OVER_89, "101-year-old");
    one("is 90 years old", ET_PHI_AGE_OVER_89, "90 years old");
    one("Age: 94", ET_PHI_AGE_OVER_89, "Age: 94");
    one("a nonagenarian with", ET_PHI_AGE_OVER_89, "nonagenarian");
}

static void names(void **state) {
    (void)state;
    one("Discussed with Dr. Smith.", ET_PHI_NAME_AFTER_TITLE, "Dr. Smith");
    one("Mrs. Alvarez at bedside", ET_PHI_NAME_AFTER_TITLE, "Mrs. Alvarez");
    one("Mr. O'Brien reports", ET_PHI_NAME_AFTER_TITLE, "Mr. O'Brien");
    one("per Ms. Nguyen-Tran", ET_PHI_NAME_AFTER_TITLE, "Ms. Nguyen-Tran");
    one("per Dr Patel", ET_PHI_NAME_AFTER_TITLE, "Dr Patel");
    one("per Dr. J. Smith", ET_PHI_NAME_AFTER_TITLE, "Dr. J. Smith");
    one("Miss Kowalski", ET_PHI_NAME_AFTER_TITLE, "Miss Kowalski");
    one("per Prof. \xc3\x89mile today", ET_PHI_NAME_AFTER_TITLE, "Prof. \xc3\x89mile");
}

/* The things de-identified clinical notes are full of. */
static void clinical_look_alikes_stay_clean(void **state) {
    (void)state;
    clean("BP 140/90 mmHg, HR 88 bpm, RR 16, T 37.2 C, SpO2 96% on 2 L NC.");
    clean("BP 95/60, MAP 72. Wt 82.4 kg. I/O 1200/850 mL.");
    clean("Metformin 500 mg PO BID; lisinopril 10 mg daily; heparin 5000 units SC q8h.");
    clean("Vancomycin 1250 mg IV q12h, trough 15.2 mcg/mL at 08:00; next dose 20:00.");
    clean("Na 138 mmol/L, K 4.1 mmol/L, Cr 1.2 mg/dL, BUN 18 mg/dL, Glu 182 mg/dL.");
    clean("WBC 11.2 x10^9/L, Hgb 10.9 g/dL, Plt 245 x10^9/L, INR 1.1, HbA1c 8.4%.");
    clean("HIV viral load 1250000 copies/mL; HCV RNA <15 IU/mL.");
    clean("Dx: E11.9, I10, I50.22, N17.9, J18.9 (ICD-10).");
    clean("Hospital day 3. POD#2 s/p lap chole. Follow up in 1-2 weeks, 7-10 days.");
    clean("Strength 5/5 in BUE, 4/5 LLE. 2/6 systolic murmur. Pain 7/10. A&Ox3.");
    clean("A 67-year-old woman; 85 yo M; age 45; aged 89; 89 y/o.");
    clean("An elderly man (age 90+) and a woman aged 90 or older.");
    clean("Seen by the attending, Dr. [**Name**]. Mr. [**Name**] agrees. Dr. was notified.");
    clean("MS Contin 15 mg q12h. MR moderate. DR on fundoscopy. ST depression in V4-V6.");
    clean("Head CT negative. 2 Head CT scans. CXR: no acute process. L4-L5 disc bulge.");
    clean("Given at 0800 and 2200. q4-6h PRN. x2 days. EF 35-40%. NYHA class II.");
    clean("ANA titer 1:160. FEV1/FVC 0.68. QTc 456 ms. Troponin <0.01 ng/mL.");
    clean("Pt may 2 tabs... e.g. i.e. q.d. b.i.d. p.o. a.m. n.p.o.");
    clean("Telemetry: NSR 70s. ID consult following. Visit 2 of 6. Case discussed.");
    clean("Lactate 2.1 -> 1.4. pH 7.32/pCO2 48/pO2 72. Ca 8.9, Mg 1.8, Phos 3.2.");
    clean("Lives at home with spouse; 2 flights of stairs; ambulates 150 ft with walker.");
    clean("CO2 24. MAR reviewed. Plan as per MAR 2. dec 2 doses.");
    clean("Time 12:30:45, 08:00:00. Ratio 1:1. Version 1.2.3.");
    clean("Tmax 101.2F. Temp 99 F. 93% on RA. HR 92. Plt 95.");
}


/* A complete date, phone or address directly followed by a list or range separator
 * and the next one was missed, both of them (found 2026-11-27). */
static void lists_and_ranges_of_identifiers(void **state) {
    (void)state;
    several("Admitted 03/04/2021-03/10/2021 for pneumonia.", 2, (int[]){ET_PHI_DATE, ET_PHI_DATE},
            (const char *[]){"03/04/2021", "03/10/2021"});
    several("Stay 2021-03-04/2021-03-10.", 2, (int[]){ET_PHI_DATE, ET_PHI_DATE},
            (const char *[]){"2021-03-04", "2021-03-10"});
    several("Visits 1/2/2021,1/3/2021.", 2, (int[]){ET_PHI_DATE, ET_PHI_DATE},
            (const char *[]){"1/2/2021", "1/3/2021"});
    several("Phones 617-555-0142/617-555-0143.", 2, (int[]){ET_PHI_PHONE, ET_PHI_PHONE},
            (const char *[]){"617-555-0142", "617-555-0143"});
    several("SSNs 123-45-6789,987-65-4321", 2, (int[]){ET_PHI_SSN, ET_PHI_SSN},
            (const char *[]){"123-45-6789", "987-65-4321"});
    one("Portal at 10.0.0.1:8080 only.", ET_PHI_IP, "10.0.0.1");
    one("Seen March 4-5, 2021.", ET_PHI_DATE, "March 4-5, 2021");
    one("Seen March 4th-5th.", ET_PHI_DATE, "March 4th-5th");
    one("last in March 2019-2020", ET_PHI_DATE, "March 2019");
    /* ranges and ratios of clinical numbers stay what they are */
    clean("BP 120/80-130/85, HR 80-90, 1-2 tabs q4-6h, ratio 1:2:3, Na 135-145.");
    clean("pH 7.35-7.45, Plt 150-400, L4-5/L5-S1, EF 55-60%, GCS 15, APGAR 9/9.");
    clean("Version 1.2.3.4.5 installed. 1.2.3.4.5.6 too. Grade 3/4-4/4 murmur.");
    clean("Dose 1/2-1 tab. Score 12/15-14/15. Titer 1:160-1:320.");
}

/* ISO date-times with Z, a fraction or a negative offset were missed whole, and a
 * malformed time hid the date (found 2026-11-27). */
static void iso_date_times(void **state) {
    (void)state;
    one("Collected 2021-03-04T10:30:00Z.", ET_PHI_DATE, "2021-03-04T10:30:00Z");
    one("Collected 2021-03-04T10:30:00.123Z.", ET_PHI_DATE, "2021-03-04T10:30:00.123Z");
    one("Collected 2021-03-04T10:30:00-05:00.", ET_PHI_DATE, "2021-03-04T10:30:00-05:00");
    one("Collected 2021-03-04T10:30:00+0530 ok", ET_PHI_DATE, "2021-03-04T10:30:00+0530");
    one("Collected 2021-03-04T10:30+01 ok", ET_PHI_DATE, "2021-03-04T10:30+01");
    one("Collected 2021-03-04T10:30:00,5Z ok", ET_PHI_DATE, "2021-03-04T10:30:00,5Z");
    /* a malformed time leaves the date */
    one("Collected 2021-03-04T1030xyz ok", ET_PHI_DATE, "2021-03-04");
    one("Collected 2021-03-04T99:99:99 ok", ET_PHI_DATE, "2021-03-04");
    one("Collected 2021-03-04T10:30:00Q ok", ET_PHI_DATE, "2021-03-04");
}

/* Unicode spaces, dashes and fullwidth digits inside an identifier defeated every
 * matcher (found 2026-11-27); findings give offsets into the original bytes. */
static void unicode_spaces_dashes_and_digits(void **state) {
    (void)state;
    one("Call 617\xc2\xa0" "555\xc2\xa0" "0142.", ET_PHI_PHONE, "617\xc2\xa0" "555\xc2\xa0" "0142");
    one("Seen March\xc2\xa0" "4,\xe2\x80\x89" "2021.", ET_PHI_DATE,
        "March\xc2\xa0" "4,\xe2\x80\x89" "2021");
    one("MRN:\xe3\x80\x80" "123456", ET_PHI_MRN, "MRN:\xe3\x80\x80" "123456");
    one("Age:\xe2\x80\xaf" "92", ET_PHI_AGE_OVER_89, "Age:\xe2\x80\xaf" "92");
    one("SSN 123\xe2\x81\x9f" "45\xe2\x80\x80" "6789", ET_PHI_SSN,
        "123\xe2\x81\x9f" "45\xe2\x80\x80" "6789");
    one("Boston,\xc2\xa0MA\xc2\xa0" "02115", ET_PHI_ZIP, "02115");
    one("Call 617\xe2\x80\x91" "555\xe2\x80\x91" "0142", ET_PHI_PHONE,
        "617\xe2\x80\x91" "555\xe2\x80\x91" "0142");
    one("SSN 123\xe2\x80\x90" "45\xe2\x88\x92" "6789", ET_PHI_SSN,
        "123\xe2\x80\x90" "45\xe2\x88\x92" "6789");
    one("SSN 123\xef\xb9\xa3" "45\xef\xbc\x8d" "6789", ET_PHI_SSN,
        "123\xef\xb9\xa3" "45\xef\xbc\x8d" "6789");
    one("Call \xef\xbc\x96\xef\xbc\x91\xef\xbc\x97-\xef\xbc\x95\xef\xbc\x95\xef\xbc\x95-"
        "\xef\xbc\x90\xef\xbc\x91\xef\xbc\x94\xef\xbc\x92 now",
        ET_PHI_PHONE,
        "\xef\xbc\x96\xef\xbc\x91\xef\xbc\x97-\xef\xbc\x95\xef\xbc\x95\xef\xbc\x95-"
        "\xef\xbc\x90\xef\xbc\x91\xef\xbc\x94\xef\xbc\x92");
    one("Dr.\xc2\xa0Smith agreed", ET_PHI_NAME_AFTER_TITLE, "Dr.\xc2\xa0Smith");
    /* a finding after folded characters: offsets stay those of the original text */
    one("\xe2\x80\x83\xe2\x80\x83\xef\xbc\x91 then call 617-555-0142", ET_PHI_PHONE, "617-555-0142");
    /* other non-ASCII text stays a separator; clinical text with NBSPs stays clean */
    clean("BP\xc2\xa0" "140/90\xc2\xa0mmHg, heparin 5000\xc2\xa0units SC, 1\xe2\x80\x93" "2 tabs.");
    clean("Na\xe2\x80\x82" "138, pain 7/10, \xef\xbc\x95/\xef\xbc\x95 strength.");
}

/* A long text is scanned in windows: identifiers at every offset, folded characters
 * across window edges, and a lookback across an edge give what one piece gives. */
static void long_texts_scan_in_windows(void **state) {
    (void)state;
    static const char *const unit[] = {
        "Pt seen; call 617-555-0142 today. ", "MRN:\xc2\xa0" "1234567 noted. ",
        "BP 120/80 mmHg, heparin 5000 units SC. ", "\xe2\x80\x83\xe2\x80\x83 ",
        "[**Medical Record Number 4567**] ", "Dr. Smith agreed. ", "x ", "  \n"};
    static const int kinds[] = {ET_PHI_PHONE, ET_PHI_MRN, -1, -1, -1, ET_PHI_NAME_AFTER_TITLE, -1, -1};
    const size_t n_units = sizeof unit / sizeof unit[0];
    size_t cap = 3u << 20, len = 0, want = 0, n_seen = 0;
    char *s = malloc(cap);
    int64_t want_counts[ET_PHI_KINDS] = {0};
    uint64_t x = 88172645463325252ull;
    while (len + 64 < cap) { /* a fixed pseudo-random mix of the units */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t u = (size_t)(x % n_units);
        memcpy(s + len, unit[u], strlen(unit[u]));
        len += strlen(unit[u]);
        if (kinds[u] >= 0) want++, want_counts[kinds[u]]++;
    }
    et_phi_finding *f = malloc(want * sizeof *f + 1);
    int64_t counts[ET_PHI_KINDS] = {0};
    size_t got = et_phi_scan_text(s, len, counts, f, want);
    assert_int_equal(got, want);
    for (int k = 0; k < ET_PHI_KINDS; k++) assert_int_equal(counts[k], want_counts[k]);
    for (size_t i = 0; i < got; i++) { /* each span is one of the planted identifiers */
        const char *at = s + f[i].start;
        size_t n = f[i].end - f[i].start;
        int ok = (n == 12 && !memcmp(at, "617-555-0142", 12)) ||
                 (n == 13 && !memcmp(at, "MRN:\xc2\xa0" "1234567", 13)) ||
                 (n == 9 && !memcmp(at, "Dr. Smith", 9));
        if (!ok) fail_msg("finding %zu at %zu: unexpected span", i, f[i].start);
        n_seen++;
    }
    assert_int_equal(n_seen, want);
    free(f);
    /* a run longer than a window: one finding, not one per window */
    memset(s, '7', 100000);
    assert_int_equal(et_phi_scan_text(s, 100000, NULL, NULL, 0), 1);
    /* a cue at the end of one window's walk and its id past it */
    memset(s, ' ', 20000);
    for (size_t at = 7000; at < 9000; at += 37) {
        memset(s, ' ', 20000);
        memcpy(s + at, "MRN: 12345678", 13);
        et_phi_finding g;
        assert_int_equal(et_phi_scan_text(s, 20000, NULL, &g, 1), 1);
        assert_int_equal(g.start, at);
        assert_int_equal(g.end, at + 13);
    }
    free(s);
}

/* MIMIC-style placeholders are what a de-identifier left: not findings (found
 * 2026-11-27: "[**Medical Record Number 4567**]" was flagged as an MRN). */
static void placeholders_are_opaque(void **state) {
    (void)state;
    clean("MR#: [**Medical Record Number 4567**]");
    clean("ICD serial [**Serial Number 4567**] checked");
    clean("Mail to [**PO BOX 1234**].");
    clean("[**Location (un) 86**], [**State/Zipcode 12345**]");
    clean("[**2101-3-4**] [**2198-10-21**] 10:30 AM; [**Known lastname 123**] is a 67 yo");
    clean("[**Telephone/Fax (1) 1234**], [**Age over 90 **], [**Street Address(2) 1234**]");
    clean("Dr. [**Last Name (STitle) 1234**] and Dr. [**Name**] were notified.");
    /* text around a placeholder is scanned as ever */
    several("[**Hospital1 18**] call 617-555-0142, then [**Name**] MRN 1234567", 2,
            (int[]){ET_PHI_PHONE, ET_PHI_MRN}, (const char *[]){"617-555-0142", "MRN 1234567"});
    /* not a placeholder: unclosed, closed on another line, or longer than 128 bytes */
    one("[**Medical Record Number 4567 and more", ET_PHI_MRN, "Medical Record Number 4567");
    one("[**Medical Record Number 4567\n**]", ET_PHI_MRN, "Medical Record Number 4567");
    char longer[256];
    memset(longer, 0, sizeof longer);
    memcpy(longer, "[**", 3);
    memset(longer + 3, 'a', 130);
    memcpy(longer + 133, " MRN 1234567 **]", 16);
    one(longer, ET_PHI_MRN, "MRN 1234567");
}

/* A 5-digit dose after a state-like clinical abbreviation is no ZIP (found
 * 2026-11-27: "Heparin SC 10000 units" was one). */
static void zip_needs_address_context(void **state) {
    (void)state;
    clean("Heparin SC 10000 units q12h. Acetaminophen PR 12500 mg total.");
    clean("CT 12345 slices reviewed. MS 15000 per protocol. Plan per PA 12345.");
    clean("Boston MA 02115 units"); /* a unit after a bare abbreviation: a quantity */
    one("Columbia, SC 29201", ET_PHI_ZIP, "29201");
    one("Greenville SC 29601-1234", ET_PHI_ZIP, "29601-1234");
    one("Boston MA 02115", ET_PHI_ZIP, "02115");
    one("Raleigh NC 27601", ET_PHI_ZIP, "27601");
    one("Hartford, CT 06103.", ET_PHI_ZIP, "06103");
}

/* Quantities after ID cue words are not ids, nor is a year after a weak cue (found
 * 2026-11-27). */
static void quantities_and_years_after_id_cues(void **state) {
    (void)state;
    clean("Urine specimen 1500 cc sent. Specimen: 2000 cc straw-colored fluid.");
    clean("HIV RNA 1250000 c/mL. HIV VL 1250000 cp/mL. HCV 2500000 IU/mL.");
    clean("Last visit 2019 she was well. ID 2020 guidelines. patient record 2019 review.");
    clean("Case 2021 reviewed; specimen 1999 archive; 1500 mL out; 12500 kcal; 1200 ms.");
    clean("Specimen 3000 mm; 12000 cm H2O? no: 5000 mmHg; 4000 hrs; 20000 copies.");
    one("MRN: 2019", ET_PHI_MRN, "MRN: 2019"); /* a strong cue: any id */
    one("Case 12345 was reviewed", ET_PHI_MRN, "Case 12345");
    one("visit 20190 noted", ET_PHI_MRN, "visit 20190");
    one("MRN 1234567 c/o chest pain", ET_PHI_MRN, "MRN 1234567"); /* c/o: complains of */
    one("ref 1250000 c/o pain", ET_PHI_MRN, "1250000");
}

/* "Dad::", "Dr. He", "2 Units Dr. Jones" (found 2026-11-27). */
static void small_false_positives(void **state) {
    (void)state;
    clean("Dad:: called back. Add:: note. Feed:: ok. Bed:: 2.");
    clean("Discussed with Dr. He agreed. Paged Dr. Called back. Dr. She will see.");
    clean("Spoke to Dr. Today. Per Dr. Also. Mr. This was.");
    one("Given 2 Units Dr. Jones", ET_PHI_NAME_AFTER_TITLE, "Dr. Jones");
    clean("He was given 1 Gram St");
    one("lives at 45 Oak Dr. alone", ET_PHI_STREET_ADDRESS, "45 Oak Dr.");
    one("addr dead::beef ok", ET_PHI_IP, "dead::beef");
    one("addr ::ffff:192.0.2.1 ok", ET_PHI_IP, "::ffff:192.0.2.1");
}

/* "+1" makes any spaced 10 digits a phone; a phone cue does too. Keys such as
 * "age_years" render as "Age years: 95". */
static void explicit_country_code_and_age_keys(void **state) {
    (void)state;
    one("Call +1 555 123 4567 today.", ET_PHI_PHONE, "+1 555 123 4567");
    one("Call 555 123 4567 today.", ET_PHI_PHONE, "555 123 4567");
    clean("Values 120 100 1234 and 555 123 4567 noted.");
    one("Age years: 95.", ET_PHI_AGE_OVER_89, "Age years: 95");
    one("Age at admission: 93.", ET_PHI_AGE_OVER_89, "Age at admission: 93");
    clean("Age at admission: 63. Age years: 89.");
}

/* After a ZIP cue, a state name or a city's comma a ZIP stays a ZIP whatever follows
 * it: any '/' after the number once made it a ratio (found 2026-11-27). */
static void zip_before_slash_percent_or_unit_word(void **state) {
    (void)state;
    one("Address: Boston, MA 02114 / USA", ET_PHI_ZIP, "02114");
    one("ZIP 02114 / 02115", ET_PHI_ZIP, "02114");
    one("Boston MA 02114-1234 / USA", ET_PHI_ZIP, "02114-1234");
    one("zip code 02114 cc: PCP", ET_PHI_ZIP, "02114");
    one("Houston, TX 77030 / Tel on file", ET_PHI_ZIP, "77030");
    one("Austin, Texas 78701 units", ET_PHI_ZIP, "78701");
    one("Boston, MA 02115 units", ET_PHI_ZIP, "02115");
    clean("Heparin SC 10000 units. Acetaminophen PR 12500 mg. CT 12345 slices. MS 15000.");
    clean("Heparin SC 10000 / 12 h. Insulin SC 10000-2000 units.");
}

/* He, Her, Do, So, Can are surnames: a sentence-start word is read as a new sentence
 * only after "Dr" and before a lower-case word (found 2026-11-27). */
static void surnames_that_are_sentence_words(void **state) {
    (void)state;
    one("Mr. He is feeling better.", ET_PHI_NAME_AFTER_TITLE, "Mr. He");
    one("Seen with Ms. Her (daughter).", ET_PHI_NAME_AFTER_TITLE, "Ms. Her");
    one("Mr. Can declined.", ET_PHI_NAME_AFTER_TITLE, "Mr. Can");
    one("Discussed with Dr. He", ET_PHI_NAME_AFTER_TITLE, "Dr. He");
    one("Discussed with Dr. He.", ET_PHI_NAME_AFTER_TITLE, "Dr. He");
    one("Dr. So Min-jun saw her", ET_PHI_NAME_AFTER_TITLE, "Dr. So");
    one("Dr. Do, cardiology", ET_PHI_NAME_AFTER_TITLE, "Dr. Do");
    clean("Discussed with Dr. He agreed. Paged Dr. Called back. Dr. She will see.");
    clean("Dr. So recommends CT."); /* unflagged: docs/phi.md Limits */
}

/* "May 2-3 times daily" is a verb and a count, not a date (found 2026-11-27). */
static void month_word_before_a_count(void **state) {
    (void)state;
    clean("May 2-3 times daily as needed for itching.");
    clean("May 1-2 weeks off work. May 5-10 minutes of rest. May 2 x daily. May 3 days.");
    clean("May 4 hrs between doses. May 1-2 tabs q6h. May 2 puffs.");
    one("Seen May 2-3 for follow-up", ET_PHI_DATE, "May 2-3");
    one("Seen May 14 in clinic", ET_PHI_DATE, "May 14");
}

/* A pressure or setting ratio with a range after it is no date (found 2026-11-27). */
static void ratios_before_a_range(void **state) {
    (void)state;
    clean("PA 25/10/15-18 mmHg on swan.");
    clean("PS 12/8/30-35% tolerated. CVP 12/10/14-16 over the shift.");
    one("PA 25/10/18 mmHg", ET_PHI_DATE, "25/10/18");
    several("Admitted 03/04/2021-03/10/2021 for pneumonia.", 2, (int[]){ET_PHI_DATE, ET_PHI_DATE},
            (const char *const[]){"03/04/2021", "03/10/2021"});
    several("Admitted 3/4/21-3/10/21.", 2, (int[]){ET_PHI_DATE, ET_PHI_DATE},
            (const char *const[]){"3/4/21", "3/10/21"});
}

/* Phone cues are whole words; "cell" (a cell count) vouches only for a valid NANP
 * number (found 2026-11-27). */
static void phone_cues_are_whole_words(void **state) {
    (void)state;
    clean("Cellulitis improving; I/O 100 150 1200 by shift.");
    clean("CSF cell count 110 120 1300 in tubes 1-3.");
    clean("Contact precautions. Q 100 110 1200.");
    clean("pH 735 150 1450");
    one("cell 617 555 0142", ET_PHI_PHONE, "617 555 0142");
    one("Tel 555 123 4567", ET_PHI_PHONE, "555 123 4567");
    one("Ph: 555 123 4567", ET_PHI_PHONE, "555 123 4567");
    one("contact number 555 123 4567", ET_PHI_PHONE, "555 123 4567");
    one("cell phone 555 123 4567", ET_PHI_PHONE, "555 123 4567");
    one("Mobile: 555 123 4567", ET_PHI_PHONE, "555 123 4567");
    one("Cells +1 555 123 4567", ET_PHI_PHONE, "+1 555 123 4567");
    one("cell 6175550142", ET_PHI_PHONE, "6175550142");
}

/* Every finding starts and ends on a character boundary, whatever the text (the
 * name cut at WORD_MAX once ended after a lead byte: found 2026-11-27). */
static void findings_are_whole_characters(void **state) {
    (void)state;
    const char *texts[] = {
        "Dr. A\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
        "Mr. \xc5\x81\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac end",
        "Ms. B\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
        "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80 x",
        "T\xc3\xa9l\xc2\xa0" "617\xe2\x80\x91" "555\xe2\x80\x91" "0142; Dr. \xc3\x89mile "
        "\xef\xbc\x96\xef\xbc\x91\xef\xbc\x97-555-0142 le 14 mars; MRN\xc2\xa0" "1234567\xc3\xa9",
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        const char *s = texts[t];
        size_t len = strlen(s);
        et_phi_finding f[MAXF];
        size_t n = et_phi_scan_text(s, len, NULL, f, MAXF);
        assert_true(n > 0);
        for (size_t i = 0; i < n && i < MAXF; i++) {
            assert_true(f[i].start < f[i].end && f[i].end <= len);
            if ((s[f[i].start] & 0xC0) == 0x80 || (f[i].end < len && (s[f[i].end] & 0xC0) == 0x80))
                fail_msg("text %zu: finding %zu [%zu, %zu) cuts a character", t, i, f[i].start,
                         f[i].end);
        }
    }
    char buf[64];
    snprintf(buf, sizeof buf, "Dr. A%s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    et_phi_finding f[2];
    assert_int_equal(et_phi_scan_text(buf, strlen(buf), NULL, f, 2), 1);
    assert_int_equal(f[0].end, 35); /* "Dr. A" and 15 whole characters of 2 bytes */
}

/* ----------------------------------------------------------- JSONL --- */

typedef struct {
    char paths[32][64];
    int n;
} seen_paths;

static void collect(void *ctx, const char *path, const char *text, size_t len) {
    (void)text;
    (void)len;
    seen_paths *s = ctx;
    if (s->n < 32) snprintf(s->paths[s->n++], 64, "%s", path);
}

static void walk_covers_every_string(void **state) {
    (void)state;
    const char *json =
        "{\"patient_id\": \"MRN 12345678\", \"text\": \"t\", \"prompt\": \"p\", "
        "\"response\": \"r\", \"messages\": [{\"role\": \"user\", \"content\": \"c\"}], "
        "\"structured\": {\"vitals\": {\"hr\": 80}, \"medications\": [\"m0\", \"m1\"]}, "
        "\"group\": {\"sex\": \"F\"}, \"n\": 3, \"b\": true}";
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    seen_paths s = {.n = 0};
    et_phi_walk_record(o, collect, &s);
    const char *want[] = {"text", "prompt", "response", "messages[0]{}", "messages[0].role",
                          "messages[0]{}", "messages[0].content", "structured{}",
                          "structured.vitals{}", "structured{}", "structured.medications[0]",
                          "structured.medications[1]", "group{}", "group.sex"};
    assert_int_equal(s.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < s.n; i++) assert_string_equal(s.paths[i], want[i]);

    /* patient_id is not scanned; the rest is */
    et_phi_report r;
    et_phi_report_init(&r);
    assert_int_equal(et_phi_scan_record(&r, o, 1), 0);
    cJSON_Delete(o);
}

/* "structured" is scanned as the text ingest renders from it (found 2026-11-26: numbers
 * and key/value pairs were scanned apart, so "age": 95 or {"Dr": "Smith"} passed). */
static void structured_is_scanned_as_rendered(void **state) {
    (void)state;
    static const struct {
        const char *json;
        int kind;
    } cases[] = {
        {"{\"patient_id\": 1, \"text\": \"Routine visit.\", \"structured\": {\"age\": 95}}",
         ET_PHI_AGE_OVER_89},
        {"{\"patient_id\": 1, \"text\": \"ok\", \"structured\": {\"vitals\": {\"age\": 101}}}",
         ET_PHI_AGE_OVER_89},
        {"{\"patient_id\": 1, \"text\": \"ok\", \"structured\": {\"labs\": {\"Dr\": \"Smith\"}}}",
         ET_PHI_NAME_AFTER_TITLE},
        {"{\"patient_id\": 1, \"text\": \"ok\", \"structured\": {\"ssn\": {\"123-45\": \"6789\"}}}",
         ET_PHI_SSN},
        {"{\"patient_id\": 1, \"text\": \"ok\", \"structured\": {\"visit\": {\"March\": \"15, 2023\"}}}",
         ET_PHI_DATE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *o = cJSON_Parse(cases[i].json);
        assert_non_null(o);
        et_phi_report r;
        et_phi_report_init(&r);
        if (et_phi_scan_record(&r, o, 1) < 1 || r.counts[cases[i].kind] < 1)
            fail_msg("case %zu: no %s finding", i, et_phi_kind_name(cases[i].kind));
        cJSON_Delete(o);
    }
    /* a string inside "structured" is counted once, not once raw and once rendered */
    cJSON *o = cJSON_Parse("{\"patient_id\": 1, \"structured\": {\"medications\": [\"call 617-555-0142\"]}}");
    et_phi_report r;
    et_phi_report_init(&r);
    assert_int_equal(et_phi_scan_record(&r, o, 1), 1);
    cJSON_Delete(o);
}


static int64_t record_findings(const char *json, int kind) {
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    et_phi_report r;
    et_phi_report_init(&r);
    int64_t total = et_phi_scan_record(&r, o, 1);
    cJSON_Delete(o);
    return kind < 0 ? total : (total == r.counts[kind] ? total : -1);
}

/* The rendered "structured" block is "Key value; key value": a lab of 1,000,000 or more
 * there has lost its unit, not gained an MRN; cues still count (found 2026-11-27). */
static void structured_numbers_are_values(void **state) {
    (void)state;
    assert_int_equal(record_findings("{\"patient_id\": 1, \"text\": \"Stable.\", \"structured\": "
                                     "{\"labs\": {\"hiv_viral_load\": 1250000}}}", -1), 0);
    assert_int_equal(record_findings("{\"patient_id\": 1, \"prompt\": \"Stable.\", \"response\": \"ok\", "
                                     "\"structured\": {\"labs\": {\"hcv_rna\": 2450000}}}", -1), 0);
    assert_int_equal(record_findings("{\"patient_id\": 1, \"messages\": [{\"role\": \"user\", "
                                     "\"content\": \"hi\"}], \"structured\": {\"vl\": 2450000}}", -1), 0);
    assert_int_equal(record_findings("{\"patient_id\": 1, \"text\": \"Stable.\", \"structured\": "
                                     "{\"mrn\": 1234567}}", ET_PHI_MRN), 1);
    assert_int_equal(record_findings("{\"patient_id\": 1, \"text\": \"ref 1250000 noted\", "
                                     "\"structured\": {\"vl\": 2450000}}", ET_PHI_MRN), 1);
    assert_int_equal(record_findings("{\"patient_id\": 1, \"text\": \"Stable.\", \"structured\": "
                                     "{\"note\": \"MRN 7654321\"}}", ET_PHI_MRN), 1);
    /* the core scanner: only the leading block is exempt */
    const char *t = "Vl 2450000\n\nref 1250000";
    et_phi_finding f[2];
    assert_int_equal(et_phi_scan_text_in(t, strlen(t), 12, NULL, f, 2), 1);
    assert_int_equal(f[0].start, 16);
    assert_int_equal(et_phi_scan_text(t, strlen(t), NULL, f, 2), 2);
}

/* et_phi_scan_text_all fills a growing array in one pass: the same findings as a
 * counted scan, however many. */
static void all_findings_grow_in_one_pass(void **state) {
    (void)state;
    size_t len = 0, cap = 40 * 1000;
    char *buf = malloc(cap + 1);
    while (len + 40 < cap) len += (size_t)sprintf(buf + len, "Dr. Smith %zu, ", len % 7);
    size_t want = et_phi_scan_text(buf, len, NULL, NULL, 0), n = 0;
    int oom = 0;
    et_phi_finding *all = et_phi_scan_text_all(buf, len, 0, &n, &oom);
    assert_int_equal(oom, 0);
    assert_true(want > 1000);
    assert_int_equal(n, want);
    et_phi_finding *f = malloc(want * sizeof *f);
    et_phi_scan_text(buf, len, NULL, f, want);
    for (size_t i = 0; i < want; i++)
        assert_true(all[i].kind == f[i].kind && all[i].start == f[i].start && all[i].end == f[i].end);
    assert_null(et_phi_scan_text_all("nothing", 7, 0, &n, &oom));
    assert_int_equal(n, 0);
    free(f);
    free(all);
    free(buf);
}

typedef struct {
    char paths[8][48];
    size_t offsets[8], lens[8];
    int n_parts, n_texts;
    et_phi_finding f[8];
    size_t n_found;
} joined_seen;

/* keeps the last multi-part text and its findings */
static void keep_joined(void *ctx, const char *text, size_t len, const et_phi_part *parts,
                        int n_parts) {
    joined_seen *js = ctx;
    js->n_texts++;
    if (n_parts < 2) return;
    js->n_parts = n_parts;
    for (int i = 0; i < n_parts && i < 8; i++) {
        snprintf(js->paths[i], sizeof js->paths[i], "%s", parts[i].path);
        js->offsets[i] = parts[i].offset;
        js->lens[i] = parts[i].len;
    }
    js->n_found = et_phi_scan_parts(text, len, parts, n_parts, NULL, js->f, 8);
}

/* Prompt and response are tokenized as one stretch: "MRN:" at the end of the prompt
 * and " 123456" at the start of the response were never flagged (found 2026-11-27). */
static void prompt_and_response_are_scanned_joined(void **state) {
    (void)state;
    assert_int_equal(record_findings("{\"patient_id\":1,\"prompt\":\"Registration. Patient MRN:\","
                                     "\"response\":\" 123456. Seen today.\"}", ET_PHI_MRN), 1);
    assert_int_equal(record_findings("{\"patient_id\":2,\"prompt\":\"Attending: Dr.\","
                                     "\"response\":\" Smith\"}", ET_PHI_NAME_AFTER_TITLE), 1);
    assert_int_equal(record_findings("{\"patient_id\":3,\"prompt\":\"Patient is a 93\","
                                     "\"response\":\" year old woman\"}", ET_PHI_AGE_OVER_89), 1);
    assert_int_equal(record_findings("{\"patient_id\":4,\"prompt\":\"Call 617-555-\","
                                     "\"response\":\"0142 for results\"}", ET_PHI_PHONE), 1);
    /* joining must not hide what a field alone shows: "Dr." glued to the prompt's end */
    assert_int_equal(record_findings("{\"patient_id\":5,\"prompt\":\"ask\","
                                     "\"response\":\"Dr. Smith agreed\"}", ET_PHI_NAME_AFTER_TITLE), 1);
    /* one finding, counted once, when both views show it */
    assert_int_equal(record_findings("{\"patient_id\":6,\"prompt\":\"x \","
                                     "\"response\":\"Dr. Smith agreed\"}", ET_PHI_NAME_AFTER_TITLE), 1);
    /* clean prompt/response pairs stay clean */
    assert_int_equal(record_findings("{\"patient_id\":7,\"prompt\":\"BP 120/\","
                                     "\"response\":\"80 mmHg. Heparin 5000 units.\"}", -1), 0);

    /* offsets run across the joined fields; parts say where each field sits */
    const char *json = "{\"patient_id\":1,\"structured\":{\"hr\":88},\"prompt\":\"Patient MRN:\","
                       "\"response\":\" 123456.\"}";
    cJSON *o = cJSON_Parse(json);
    joined_seen js = {.n_parts = 0};
    et_phi_record_texts(o, keep_joined, &js);
    assert_int_equal(js.n_parts, 3);
    assert_string_equal(js.paths[0], "structured");
    assert_string_equal(js.paths[1], "prompt");
    assert_string_equal(js.paths[2], "response");
    const size_t block = strlen("Structured data:\nHr: 88.\n\n");
    assert_int_equal(js.offsets[0], 0);
    assert_int_equal(js.lens[0], block);
    assert_int_equal(js.offsets[1], block);
    assert_int_equal(js.offsets[2], block + strlen("Patient MRN:"));
    assert_int_equal(js.n_found, 1);
    assert_int_equal(js.f[0].start, block + strlen("Patient "));
    assert_int_equal(js.f[0].end, block + strlen("Patient MRN: 123456"));
    cJSON_Delete(o);
}

/* The structured block goes where data/render.c puts it: before the text, or the
 * first user message; strings outside the document are scanned alone. */
static void record_texts_follow_the_rendering(void **state) {
    (void)state;
    const char *json =
        "{\"patient_id\": 1, \"structured\": {\"note\": \"MRN\"}, \"messages\": ["
        "{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
        "\"x\"}, {\"role\": \"user\", \"content\": \"y\"}], \"group\": {\"sex\": \"F\"}}";
    cJSON *o = cJSON_Parse(json);
    joined_seen js = {.n_parts = 0};
    et_phi_record_texts(o, keep_joined, &js);
    assert_int_equal(js.n_parts, 2);
    assert_string_equal(js.paths[0], "structured");
    assert_string_equal(js.paths[1], "messages[1].content");
    et_phi_report r;
    et_phi_report_init(&r);
    assert_int_equal(et_phi_scan_record(&r, o, 1), 0);
    /* structured + content + 2 other contents + 6 keys + 3 roles + group key + label */
    assert_int_equal(r.fields_scanned, 1 + 1 + 2 + 6 + 3 + 1 + 1);
    cJSON_Delete(o);
    /* the block ends with a blank line, as tokenized: nothing runs from it into the note */
    assert_int_equal(record_findings("{\"patient_id\": 1, \"structured\": {\"note\": \"seen by "
                                     "Dr\"}, \"text\": \"Smith today\"}", -1), 0);
    /* numbers are rendered exactly: an MRN stored as a number is found */
    assert_int_equal(record_findings("{\"patient_id\": 1, \"text\": \"ok\", \"structured\": "
                                     "{\"mrn\": 1234567}}", ET_PHI_MRN), 1);
    assert_int_equal(record_findings("{\"patient_id\": 1, \"text\": \"ok\", \"structured\": "
                                     "{\"age_years\": 95}}", ET_PHI_AGE_OVER_89), 1);
}

static char *write_tmp(const char *content) {
    char *path = strdup("/tmp/test_phi_scan_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void file_scan_counts_and_lines(void **state) {
    (void)state;
    char *path = write_tmp(
        "\xEF\xBB\xBF{\"patient_id\": 1, \"text\": \"BP 140/90. Clean note.\"}\n"
        "\n"
        "{\"patient_id\": 1, \"text\": \"call 617-555-0142 or 617-555-0143\"}\n"
        "{\"patient_id\": 2, \"prompt\": \"x\", \"response\": \"Dr. Smith, 93 yo\"}\n"
        "{\"patient_id\": 3, \"structured\": {\"diagnoses\": [\"E11.9\"], \"labs\": "
        "{\"MRN 1234567\": 1}}}\n");
    et_phi_report r;
    et_phi_report_init(&r);
    et_error err = {{0}};
    assert_int_equal(et_phi_scan_jsonl(path, &r, &err), 0);
    assert_int_equal(r.lines_scanned, 4);
    assert_int_equal(r.counts[ET_PHI_PHONE], 2);
    assert_int_equal(r.counts[ET_PHI_NAME_AFTER_TITLE], 1);
    assert_int_equal(r.counts[ET_PHI_AGE_OVER_89], 1);
    assert_int_equal(r.counts[ET_PHI_MRN], 1); /* found in a key */
    assert_int_equal(r.total, 5);
    assert_int_equal(r.lines_with_findings, 3);
    assert_int_equal(r.n_lines, 3);
    assert_int_equal(r.lines[0], 3);
    assert_int_equal(r.lines[1], 4);
    assert_int_equal(r.lines[2], 5);
    assert_int_equal(r.line_kinds[0], 1u << ET_PHI_PHONE);
    assert_int_equal(r.line_kinds[1], (1u << ET_PHI_NAME_AFTER_TITLE) | (1u << ET_PHI_AGE_OVER_89));

    char *js = et_phi_report_json(&r, 0, 1);
    assert_non_null(js);
    cJSON *o = cJSON_Parse(js);
    assert_non_null(o);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "scanned")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "allowed")));
    cJSON *fnd = cJSON_GetObjectItem(o, "findings");
    assert_int_equal(cJSON_GetArraySize(fnd), ET_PHI_KINDS);
    assert_int_equal(cJSON_GetObjectItem(fnd, "phone")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(fnd, "ssn")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(o, "total_findings")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItem(o, "lines_with_findings")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(o, "lines_scanned")->valueint, 4);
    cJSON *fl = cJSON_GetObjectItem(o, "first_lines");
    assert_int_equal(cJSON_GetArraySize(fl), 3);
    assert_int_equal(cJSON_GetArrayItem(fl, 2)->valueint, 5);
    cJSON *byk = cJSON_GetObjectItem(o, "lines_by_kind");
    assert_int_equal(cJSON_GetArraySize(byk), 4);
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(byk, "age_over_89"), 0)->valueint, 4);
    /* nothing of the scanned text leaks into the summary */
    assert_null(strstr(js, "555"));
    assert_null(strstr(js, "Smith"));
    assert_null(strstr(js, "1234567"));
    cJSON_Delete(o);
    free(js);

    js = et_phi_report_json(&r, 1, 0);
    o = cJSON_Parse(js);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "allowed")));
    assert_null(cJSON_GetObjectItem(o, "lines_by_kind"));
    cJSON_Delete(o);
    free(js);
    unlink(path);
    free(path);
}

static void file_scan_errors_name_the_line(void **state) {
    (void)state;
    et_error err = {{0}};
    et_phi_report r;
    char *path = write_tmp("{\"text\": \"ok\"}\n{\"text\": \"Dr. Smith\" oops}\n");
    et_phi_report_init(&r);
    assert_int_not_equal(et_phi_scan_jsonl(path, &r, &err), 0);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_null(strstr(err.msg, "Smith")); /* never the text */
    unlink(path);
    free(path);

    path = write_tmp("[1, 2]\n");
    et_phi_report_init(&r);
    assert_int_not_equal(et_phi_scan_jsonl(path, &r, &err), 0);
    assert_non_null(strstr(err.msg, "line 1: not a JSON object"));
    unlink(path);
    free(path);

    path = write_tmp("{\"text\": \"a\"} {\"text\": \"b\"}\n");
    et_phi_report_init(&r);
    assert_int_not_equal(et_phi_scan_jsonl(path, &r, &err), 0);
    assert_non_null(strstr(err.msg, "text after the JSON object"));
    unlink(path);
    free(path);

    /* NUL would end the string for cJSON and hide what follows */
    path = write_tmp("{\"text\": \"a\\u0000 Dr. Smith\"}\n");
    et_phi_report_init(&r);
    assert_int_not_equal(et_phi_scan_jsonl(path, &r, &err), 0);
    assert_non_null(strstr(err.msg, "line 1"));
    assert_non_null(strstr(err.msg, "\\u0000"));
    unlink(path);
    free(path);
    /* and a raw NUL byte the same (found 2026-11-26: only the escape was refused) */
    {
        static const char raw[] = "{\"text\": \"ok\0 SSN 123-45-6789\"}\n";
        char *p2 = strdup("/tmp/test_phi_scan_XXXXXX");
        int fd = mkstemp(p2);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, raw, sizeof raw - 1), (ssize_t)(sizeof raw - 1));
        close(fd);
        et_phi_report_init(&r);
        assert_int_not_equal(et_phi_scan_jsonl(p2, &r, &err), 0);
        assert_non_null(strstr(err.msg, "line 1: contains a NUL byte"));
        unlink(p2);
        free(p2);
    }
    const char *escaped_backslash = "{\"text\": \"a\\\\u0000\"}"; /* backslash, then "u0000" */
    assert_int_equal(et_phi_json_has_nul_escape(escaped_backslash, strlen(escaped_backslash)), 0);
    const char *nul = "{\"text\": \"\\u0000\"}";
    assert_int_equal(et_phi_json_has_nul_escape(nul, strlen(nul)), 1);

    et_phi_report_init(&r);
    assert_int_not_equal(et_phi_scan_jsonl("/nonexistent/x.jsonl", &r, &err), 0);
    assert_non_null(strstr(err.msg, "cannot open"));
}

static void line_list_is_capped_counts_are_not(void **state) {
    (void)state;
    size_t n = ET_PHI_MAX_LINES + 50;
    size_t cap = n * 40 + 1;
    char *content = malloc(cap), *p = content;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "{\"text\": \"SSN 123-45-6789\"}\n");
    char *path = write_tmp(content);
    et_phi_report r;
    et_phi_report_init(&r);
    assert_int_equal(et_phi_scan_jsonl(path, &r, NULL), 0);
    assert_int_equal(r.counts[ET_PHI_SSN], (int64_t)n);
    assert_int_equal(r.lines_with_findings, (int64_t)n);
    assert_int_equal(r.n_lines, ET_PHI_MAX_LINES);
    assert_int_equal(r.lines[ET_PHI_MAX_LINES - 1], ET_PHI_MAX_LINES);
    char *js = et_phi_report_json(&r, 0, 1);
    cJSON *o = cJSON_Parse(js);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "first_lines")), 20);
    cJSON_Delete(o);
    free(js);
    unlink(path);
    free(path);
    free(content);
}

/* ---------------------------------------------- windows change nothing --- */

/* The scanner once more, built with the smallest window it allows: scanned in windows
 * of 1,816 bytes instead of 8 KiB, texts must give the same findings. */
#define ET_PHI_WINDOW 1816
#define et_phi_scan_text small_window_scan_text
#define et_phi_kind_name small_window_kind_name
#define et_phi_kind_from_name small_window_kind_from_name
#define et_phi_scan_text_in small_window_scan_text_in
#define et_phi_scan_text_all small_window_scan_text_all
#include "data/phi_scan.c"
#undef et_phi_scan_text
#undef et_phi_kind_name
#undef et_phi_kind_from_name
#undef et_phi_scan_text_in
#undef et_phi_scan_text_all

static void windows_change_nothing(void **state) {
    (void)state;
    static const char *const piece[] = {
        "call 617-555-0142 ", "MRN: 1234567 ", "03/04/2021-03/10/2021 ", "[**Name 12**] ",
        "617\xc2\xa0" "555\xc2\xa0" "0142 ", "\xef\xbc\x96\xef\xbc\x91\xef\xbc\x97-555-0142 ",
        "Boston, MA 02115 ", "age 93 ", "2021-03-04T10:30:00Z ", "Dr. Smith ", "SSN ",
        "123456789 ", "123 Main Street ", "fe80::1 ", "x@example.com ", "www.example.com/",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "                                                                        ",
        "1111111111111111111111111111111111111111111111111111111111111111111111111",
        "\xe2\x80\x83\xe2\x80\x83\xe2\x80\x83", "\xe3\x80\x80", "\n", ", ", "-", "/", "[**",
        "**]", "zip ", "Fax: ", "\xc3\x89mile ", "12 ", "March ", "4-5, 2021 ", "555-0142",
        "http://example.org/long/path/" /* and a long tail: URLs read far ahead */
        "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
        "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
        "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
        "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp",
        "Seen on 3/4 ", "ZIP 02115", "age:", "94", "visit 2019 "};
    const size_t n_pieces = sizeof piece / sizeof piece[0];
    enum { LEN = 40000, CAP = 4096 };
    char *buf = malloc(LEN + 64);
    et_phi_finding *a = malloc(CAP * sizeof *a), *b = malloc(CAP * sizeof *b);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 400; round++) {
        size_t len = 0, target = 1000 + (size_t)(round * 197) % (LEN - 1000);
        while (len < target) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const char *p = piece[x % n_pieces];
            size_t pl = strlen(p);
            if (len + pl > LEN) break;
            memcpy(buf + len, p, pl);
            len += pl;
        }
        size_t na = et_phi_scan_text(buf, len, NULL, a, CAP);
        size_t nb = small_window_scan_text(buf, len, NULL, b, CAP);
        assert_int_equal(na, nb);
        size_t m = na < CAP ? na : CAP;
        for (size_t i = 0; i < m; i++)
            if (a[i].kind != b[i].kind || a[i].start != b[i].start || a[i].end != b[i].end)
                fail_msg("round %d: finding %zu differs with small windows", round, i);
    }
    free(a);
    free(b);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kind_names),
        cmocka_unit_test(ssn),
        cmocka_unit_test(phone_and_fax),
        cmocka_unit_test(email_url_ip),
        cmocka_unit_test(mrn),
        cmocka_unit_test(addresses_and_zip),
        cmocka_unit_test(dates),
        cmocka_unit_test(ages),
        cmocka_unit_test(names),
        cmocka_unit_test(clinical_look_alikes_stay_clean),
        cmocka_unit_test(lists_and_ranges_of_identifiers),
        cmocka_unit_test(iso_date_times),
        cmocka_unit_test(unicode_spaces_dashes_and_digits),
        cmocka_unit_test(long_texts_scan_in_windows),
        cmocka_unit_test(placeholders_are_opaque),
        cmocka_unit_test(zip_needs_address_context),
        cmocka_unit_test(quantities_and_years_after_id_cues),
        cmocka_unit_test(small_false_positives),
        cmocka_unit_test(explicit_country_code_and_age_keys),
        cmocka_unit_test(zip_before_slash_percent_or_unit_word),
        cmocka_unit_test(surnames_that_are_sentence_words),
        cmocka_unit_test(month_word_before_a_count),
        cmocka_unit_test(ratios_before_a_range),
        cmocka_unit_test(phone_cues_are_whole_words),
        cmocka_unit_test(findings_are_whole_characters),
        cmocka_unit_test(windows_change_nothing),
        cmocka_unit_test(walk_covers_every_string),
        cmocka_unit_test(structured_is_scanned_as_rendered),
        cmocka_unit_test(structured_numbers_are_values),
        cmocka_unit_test(all_findings_grow_in_one_pass),
        cmocka_unit_test(prompt_and_response_are_scanned_joined),
        cmocka_unit_test(record_texts_follow_the_rendering),
        cmocka_unit_test(file_scan_counts_and_lines),
        cmocka_unit_test(file_scan_errors_name_the_line),
        cmocka_unit_test(line_list_is_capped_counts_are_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
