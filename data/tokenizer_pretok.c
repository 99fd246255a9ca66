/* Pre-tokenizer splitting: the ByteLevel byte map, literal Split patterns, and
 * hand-written matchers for the three Split regexes that byte-level BPE models use:
 *
 *   LLAMA3 (Meta's tiktoken pattern; also GPT-4's cl100k):
 *     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   QWEN2: the same with \p{N} instead of \p{N}{1,3}
 *   GPT2 (also ByteLevel's own regex, use_regex: true):
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * Why by hand: HF runs these on Oniguruma, a backtracking engine. Matching them with
 * another engine (PCRE2) would differ where the engines' Unicode tables differ (PCRE2's \s
 * lacks U+0085, for one), and a dedicated matcher is several times faster. Each function
 * below is the pattern's alternatives in order, with the backtracking worked out by hand
 * (the comments give the reasoning); the classes come from tables probed on HF itself
 * (data/unicode.h). Every alternative set covers any character, so a match always starts
 * where the previous one ended, and no alternative can match the empty string.
 * tests/crosscheck/fuzz_tokenizer.py compares these against HF on random text. */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"
#include "data/unicode.h"

/* ------------------------------------------------------- ByteLevel map --- */

/* Bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF map to themselves; the 68 others, in byte order,
 * to U+0100 + n. */
static int maps_to_itself(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

uint32_t tok_byte_to_cp(unsigned char b) {
    if (maps_to_itself(b)) return b;
    uint32_t n = 0;
    for (unsigned x = 0; x < b; x++) n += !maps_to_itself(x);
    return 0x100 + n;
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return maps_to_itself(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    uint32_t n = 0;
    for (unsigned x = 0; x < 256; x++)
        if (!maps_to_itself(x) && n++ == cp - 0x100) return (int)x;
    return -1;
}

/* ------------------------------------------------------------ matchers --- */

#define L ET_UNI_L
#define N ET_UNI_N
#define WS ET_UNI_WS

static inline unsigned class_at(const unsigned char *s, size_t *i) {
    return et_uni_class(et_utf8_next(s, i));
}

/* End of the run of characters having (mask) bits, starting at i. */
static size_t run_with(const unsigned char *s, size_t n, size_t i, unsigned mask) {
    while (i < n) {
        size_t t = i;
        if (!(class_at(s, &t) & mask)) break;
        i = t;
    }
    return i;
}

/* End of the run of [^\s\p{L}\p{N}] characters starting at i. */
static size_t run_other(const unsigned char *s, size_t n, size_t i) {
    while (i < n) {
        size_t t = i;
        if (class_at(s, &t) & (L | N | WS)) break;
        i = t;
    }
    return i;
}

/* 's|'t|'re|'ve|'m|'ll|'d after an apostrophe that ends at j; 0 when none matches. Under
 * (?i:) Oniguruma also folds U+017F LONG S to s (gen_unicode_tables.py checks nothing
 * else folds to these letters). */
static uint32_t fold(uint32_t c, int casei) {
    if (!casei) return c;
    if (c >= 'A' && c <= 'Z') return c + 32;
    return c == 0x17F ? 's' : c;
}

static size_t contraction(const unsigned char *s, size_t n, size_t j, int casei) {
    if (j >= n) return 0;
    size_t t = j;
    uint32_t a = fold(et_utf8_next(s, &t), casei);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return t;
    if ((a == 'r' || a == 'v' || a == 'l') && t < n) {
        size_t u = t;
        uint32_t b = fold(et_utf8_next(s, &u), casei);
        if (b == (a == 'l' ? 'l' : 'e')) return u;
    }
    return 0;
}

/* A run of whitespace from i (its first character is whitespace), as the tail
 * alternatives see it. With newlines (LLAMA3/QWEN2 \s*[\r\n]+): \s* first takes the whole
 * run, then backs off until [\r\n]+ can match, so the match ends just after the run's
 * last \r or \n. Otherwise \s+(?!\S): at the end of the text the whole run; before a
 * non-space, \s+ gives back one character so the lookahead sees whitespace — possible
 * only when the run has two or more characters; a single one falls to \s+. */
static size_t whitespace_tail(const unsigned char *s, size_t n, size_t i, int newline_rule) {
    size_t e = i, last_start = i, count = 0, after_nl = 0;
    while (e < n) {
        size_t t = e;
        if (!(class_at(s, &t) & WS)) break;
        if (s[e] == '\r' || s[e] == '\n') after_nl = t;
        last_start = e;
        count++;
        e = t;
    }
    if (newline_rule && after_nl) return after_nl;
    if (e == n || count < 2) return e;
    return last_start;
}

static size_t match_llama3(const unsigned char *s, size_t n, size_t i, int max_digits) {
    size_t j = i;
    uint32_t c0 = et_utf8_next(s, &j);
    unsigned k0 = et_uni_class(c0);
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (c0 == '\'') {
        size_t e = contraction(s, n, j, 1);
        if (e) return e;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ : a letter run, or one non-letter/digit/CR/LF before one */
    if (k0 & L) return run_with(s, n, j, L);
    if (c0 != '\r' && c0 != '\n' && !(k0 & N) && j < n) {
        size_t t = j;
        if (class_at(s, &t) & L) return run_with(s, n, t, L);
    }
    /* \p{N}{1,3} (QWEN2: \p{N}) */
    if (k0 & N) {
        size_t e = j;
        for (int d = 1; d < max_digits && e < n; d++) {
            size_t t = e;
            if (!(class_at(s, &t) & N)) break;
            e = t;
        }
        return e;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t other = n + 1;
    if (!(k0 & (L | N | WS))) {
        other = i;
    } else if (c0 == ' ' && j < n) {
        size_t t = j;
        if (!(class_at(s, &t) & (L | N | WS))) other = j;
    }
    if (other <= n) {
        size_t e = run_other(s, n, other);
        while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
        return e;
    }
    /* \s*[\r\n]+|\s+(?!\S)|\s+ : c0 is whitespace here */
    return whitespace_tail(s, n, i, 1);
}

static size_t match_gpt2(const unsigned char *s, size_t n, size_t i) {
    size_t j = i;
    uint32_t c0 = et_utf8_next(s, &j);
    unsigned k0 = et_uni_class(c0);
    if (c0 == '\'') {
        size_t e = contraction(s, n, j, 0);
        if (e) return e;
    }
    /*  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+ : a space joins the run that follows it */
    size_t start = i;
    unsigned k = k0;
    if (c0 == ' ' && j < n) {
        size_t t = j;
        unsigned k1 = class_at(s, &t);
        if (!(k1 & WS)) start = j, k = k1;
    }
    if (!(k & WS) || start != i) {
        size_t t = start;
        class_at(s, &t);
        if (k & L) return run_with(s, n, t, L);
        if (k & N) return run_with(s, n, t, N);
        return run_other(s, n, t);
    }
    return whitespace_tail(s, n, i, 0);
}

/* ------------------------------------------------------- find_matches --- */

static int push_span(tok_span_vec *v, size_t a, size_t b, int match) {
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 64;
        tok_span *p = realloc(v->v, c * sizeof *p);
        if (!p) return -1;
        v->v = p;
        v->cap = c;
    }
    v->v[v->n++] = (tok_span){(uint32_t)a, (uint32_t)b, (uint8_t)match};
    return 0;
}

int tok_find_matches(const tok_pre *p, const char *text, size_t n, tok_span_vec *out) {
    const unsigned char *s = (const unsigned char *)text;
    out->n = 0;
    if (p->pattern == SPLIT_LITERAL) {
        size_t prev = 0, i = 0, m = p->literal_len;
        while (i + m <= n) {
            const char *hit = memmem(text + i, n - i, p->literal, m);
            if (!hit) break;
            size_t a = (size_t)(hit - text);
            if (a > prev && push_span(out, prev, a, 0)) return -1;
            if (push_span(out, a, a + m, 1)) return -1;
            prev = i = a + m;
        }
        if (prev < n && push_span(out, prev, n, 0)) return -1;
    } else {
        for (size_t i = 0; i < n;) {
            size_t e = p->pattern == SPLIT_GPT2 ? match_gpt2(s, n, i)
                                                : match_llama3(s, n, i, p->pattern == SPLIT_LLAMA3 ? 3 : 1);
            if (push_span(out, i, e, 1)) return -1;
            i = e;
        }
    }
    if (p->invert)
        for (size_t k = 0; k < out->n; k++) out->v[k].match = !out->v[k].match;
    return 0;
}
