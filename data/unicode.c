/* UTF-8 and NFC for the tokenizer (data/unicode.h). The NFC algorithm is the one of the
 * Rust `unicode-normalization` crates HF uses: full canonical decomposition, a stable sort
 * of each run of non-starters by combining class, then recomposition with the
 * "blocked" rule; Hangul syllables are computed, not tabled. */
#include "data/unicode.h"

#include <stdlib.h>
#include <string.h>

/* Index of the run holding cp in a sorted table of run starts (starts[0] == 0). */
static size_t run_of(const uint32_t *starts, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n; /* starts[lo] <= cp < starts[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (starts[mid] <= cp) lo = mid;
        else hi = mid;
    }
    return lo;
}

unsigned et_uni_class_slow(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    return et_uni_class_bits[run_of(et_uni_class_start, et_uni_class_runs, cp)];
}

unsigned et_uni_ccc(uint32_t cp) {
    if (cp < 0x300 || cp > 0x10FFFF) return 0;
    return et_uni_ccc_value[run_of(et_uni_ccc_start, et_uni_ccc_runs, cp)];
}

/* ----------------------------------------------------------------- UTF-8 --- */

/* Length of the longest prefix of s[0..n) that starts a valid UTF-8 sequence (1..4), and
 * whether it is complete. The valid second-byte ranges are what exclude overlongs,
 * surrogates and code points above U+10FFFF. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n, int *complete) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    *complete = 0;
    if (c < 0x80) {
        *complete = 1;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 1; /* 0x80..0xC1, 0xF5..0xFF never start a sequence */
    }
    size_t k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) k++;
    else return 1;
    while (k < need && k < n && (s[k] & 0xC0) == 0x80) k++;
    *complete = k == need;
    return k;
}

int et_utf8_validate(const char *text, size_t n, size_t *bad_offset) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs 8 bytes at a time: clinical text is mostly ASCII. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int complete;
        size_t k = utf8_valid_prefix(s + i, n - i, &complete);
        if (!complete) {
            if (bad_offset) *bad_offset = i;
            return -1;
        }
        i += k;
    }
    return 0;
}

size_t et_utf8_put(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *p = realloc(*buf, c);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

int et_utf8_append_lossy(char **buf, size_t *len, size_t *cap, const unsigned char *s, size_t n) {
    /* Worst case: every byte becomes U+FFFD (3 bytes). */
    if (reserve(buf, cap, *len + 3 * n + 1)) return -1;
    char *o = *buf;
    size_t i = 0, w = *len;
    while (i < n) {
        int complete;
        size_t k = utf8_valid_prefix(s + i, n - i, &complete);
        if (complete) {
            memcpy(o + w, s + i, k);
            w += k;
        } else {
            memcpy(o + w, "\xEF\xBF\xBD", 3);
            w += 3;
        }
        i += k;
    }
    *len = w;
    return 0;
}

/* ------------------------------------------------------------------- NFC --- */

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

int et_nfc_needed(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0xCC) { /* below U+0300 nothing is NFC-unstable */
            i += s[i] < 0x80 ? 1 : 2;
            continue;
        }
        if (et_uni_class(et_utf8_next(s, &i)) & ET_UNI_NFC_UNSTABLE) return 1;
    }
    return 0;
}

static int find_decomposition(uint32_t cp, size_t *at) {
    size_t lo = 0, hi = et_uni_decomp_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (et_uni_decomp_cp[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < et_uni_decomp_count && et_uni_decomp_cp[lo] == cp) {
        *at = lo;
        return 1;
    }
    return 0;
}

typedef struct {
    uint32_t *v;
    size_t n, cap;
} cp_vec;

static int push_cp(cp_vec *a, uint32_t cp) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 256;
        uint32_t *p = realloc(a->v, c * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = cp;
    return 0;
}

static int decompose(cp_vec *out, uint32_t cp) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        if (push_cp(out, LBASE + s / NCOUNT) || push_cp(out, VBASE + s % NCOUNT / TCOUNT)) return -1;
        return s % TCOUNT ? push_cp(out, TBASE + s % TCOUNT) : 0;
    }
    size_t at;
    if (cp < 0xC0 || !find_decomposition(cp, &at)) return push_cp(out, cp);
    for (size_t k = 0; k < et_uni_decomp_len[at]; k++)
        if (decompose(out, et_uni_decomp_pool[et_uni_decomp_off[at] + k])) return -1;
    return 0;
}

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    uint64_t key = (uint64_t)a << 21 | b;
    size_t lo = 0, hi = et_uni_comp_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (et_uni_comp_key[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < et_uni_comp_count && et_uni_comp_key[lo] == key ? et_uni_comp_value[lo] : 0;
}

int et_nfc_append(char **buf, size_t *len, size_t *cap, const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    cp_vec d = {0};
    uint32_t *sorted = NULL; /* counting sort's buffer, for long runs of marks */
    int rc = -1;
    for (size_t i = 0; i < n;)
        if (decompose(&d, et_utf8_next(s, &i))) goto done;

    /* Canonical order: each run of non-starters stably sorted by ccc. Short runs (all
     * real text) by insertion; long ones by counting sort, since a note of nothing but
     * alternating marks would make insertion quadratic (minutes for a megabyte). */
    for (size_t i = 0; i < d.n;) {
        if (et_uni_ccc(d.v[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < d.n && et_uni_ccc(d.v[j]) != 0) j++;
        if (j - i <= 32) {
            for (size_t a = i + 1; a < j; a++) {
                uint32_t x = d.v[a];
                unsigned cx = et_uni_ccc(x);
                size_t b = a;
                while (b > i && et_uni_ccc(d.v[b - 1]) > cx) {
                    d.v[b] = d.v[b - 1];
                    b--;
                }
                d.v[b] = x;
            }
        } else {
            size_t start[257] = {0};
            for (size_t a = i; a < j; a++) start[et_uni_ccc(d.v[a]) + 1]++;
            for (int c = 1; c <= 256; c++) start[c] += start[c - 1];
            uint32_t *grown = realloc(sorted, (j - i) * sizeof *sorted);
            if (!grown) goto done;
            sorted = grown;
            for (size_t a = i; a < j; a++) sorted[start[et_uni_ccc(d.v[a])]++] = d.v[a];
            memcpy(d.v + i, sorted, (j - i) * sizeof *sorted);
        }
        i = j;
    }

    /* Recompose in place. `starter` is the index of the last starter that can still take
     * marks; last_ccc the class of the last mark kept after it (-1: none yet, so the next
     * character is adjacent to the starter). */
    size_t w = 0;
    long starter = -1;
    int last_ccc = -1;
    for (size_t r = 0; r < d.n; r++) {
        uint32_t c = d.v[r];
        int cc = (int)et_uni_ccc(c);
        if (starter < 0) {
            d.v[w++] = c;
            if (cc == 0) starter = (long)w - 1, last_ccc = -1;
            continue;
        }
        if (last_ccc >= 0 && last_ccc >= cc) { /* blocked */
            d.v[w++] = c;
            if (cc == 0) starter = (long)w - 1, last_ccc = -1;
            else last_ccc = cc;
            continue;
        }
        uint32_t comp = compose(d.v[starter], c);
        if (comp) {
            d.v[starter] = comp;
            continue;
        }
        d.v[w++] = c;
        if (cc == 0 && last_ccc < 0) starter = (long)w - 1;
        else last_ccc = cc;
    }

    if (reserve(buf, cap, *len + 4 * w + 1)) goto done;
    for (size_t k = 0; k < w; k++) *len += et_utf8_put(*buf + *len, d.v[k]);
    rc = 0;
done:
    free(sorted);
    free(d.v);
    return rc;
}
