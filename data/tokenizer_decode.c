/* Decoding: HF Tokenizer::decode. Ids become token texts (added-token content first,
 * then the model vocabulary; special tokens dropped when asked), the decoders rewrite the
 * list of texts one after the other (HF decode_chain), and the result is their
 * concatenation — joined with spaces when the file has no decoder. */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"
#include "data/unicode.h"

/* A list of strings kept in one buffer. */
typedef struct {
    tok_buf text;
    size_t *off, *len;
    size_t n, cap;
} strlist;

static int list_begin(strlist *l) { /* starts a new entry at the end of the text */
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        size_t *o = realloc(l->off, c * sizeof *o);
        if (!o) return -1;
        l->off = o;
        size_t *n = realloc(l->len, c * sizeof *n);
        if (!n) return -1;
        l->len = n;
        l->cap = c;
    }
    l->off[l->n] = l->text.len;
    l->len[l->n] = 0;
    l->n++;
    return 0;
}

static int list_append(strlist *l, const void *p, size_t n) { /* to the last entry */
    if (tok_buf_add(&l->text, p, n)) return -1;
    l->len[l->n - 1] += n;
    return 0;
}

static void list_free(strlist *l) {
    free(l->text.p);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

static int append_cp(strlist *l, uint32_t cp) {
    char u[4];
    return list_append(l, u, et_utf8_put(u, cp));
}

/* Rust u8::from_str_radix(s, 16) on two bytes: an optional '+' then hex digits. */
static int parse_hex_byte(const char *s, unsigned *out) {
    unsigned v = 0;
    size_t i = s[0] == '+' ? 1 : 0;
    for (; i < 2; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16) return 0;
        v = v * 16 + d;
    }
    if (s[0] == '+' && s[1] == '+') return 0;
    *out = v;
    return 1;
}

static int flush_bytes(strlist *out, const unsigned char *bytes, size_t n) {
    if (!n) return 0;
    if (et_utf8_validate((const char *)bytes, n, NULL) == 0) return list_begin(out) || list_append(out, bytes, n);
    for (size_t k = 0; k < n; k++) /* HF: one U+FFFD per byte when they are not UTF-8 */
        if (list_begin(out) || list_append(out, "\xEF\xBF\xBD", 3)) return -1;
    return 0;
}

static int apply_decoder(const tok_dec *d, const strlist *in, strlist *out) {
    const char *base = in->text.p;
    switch (d->kind) {
    case DEC_BYTELEVEL: {
        /* Each token maps back to bytes when every character is in the byte map, else it
         * stays as its UTF-8; all of it becomes one string, invalid UTF-8 replaced. */
        tok_buf bytes = {0};
        int rc = 0;
        for (size_t k = 0; k < in->n && !rc; k++) {
            const unsigned char *s = (const unsigned char *)base + in->off[k];
            size_t n = in->len[k], i = 0, start = bytes.len;
            int mapped = 1;
            while (i < n && mapped) {
                int b = tok_cp_to_byte(et_utf8_next(s, &i));
                if (b < 0) mapped = 0;
                else rc = rc || tok_buf_add(&bytes, &(unsigned char){(unsigned char)b}, 1);
            }
            if (!mapped) {
                bytes.len = start;
                rc = rc || tok_buf_add(&bytes, s, n);
            }
        }
        size_t len = 0, cap = 0;
        char *text = NULL;
        rc = rc || list_begin(out) ||
             et_utf8_append_lossy(&text, &len, &cap, (const unsigned char *)(bytes.p ? bytes.p : ""), bytes.len) ||
             list_append(out, text ? text : "", len);
        free(text);
        free(bytes.p);
        return rc ? -1 : 0;
    }
    case DEC_METASPACE:
        for (size_t k = 0; k < in->n; k++) {
            const unsigned char *s = (const unsigned char *)base + in->off[k];
            if (list_begin(out)) return -1;
            for (size_t i = 0; i < in->len[k];) {
                uint32_t cp = et_utf8_next(s, &i);
                if (cp != d->cp) {
                    if (append_cp(out, cp)) return -1;
                } else if (!(k == 0 && d->prepend_scheme != PREPEND_NEVER)) {
                    if (list_append(out, " ", 1)) return -1;
                }
            }
        }
        return 0;
    case DEC_REPLACE:
        for (size_t k = 0; k < in->n; k++) {
            const char *s = base + in->off[k];
            size_t n = in->len[k], i = 0;
            if (list_begin(out)) return -1;
            while (i < n) {
                const char *hit = memmem(s + i, n - i, d->a, d->a_len);
                size_t e = hit ? (size_t)(hit - s) : n;
                if (list_append(out, s + i, e - i)) return -1;
                if (hit && list_append(out, d->b, d->b_len)) return -1;
                i = hit ? e + d->a_len : n;
            }
        }
        return 0;
    case DEC_BYTEFALLBACK: {
        tok_buf pending = {0};
        int rc = 0;
        for (size_t k = 0; k < in->n && !rc; k++) {
            const char *s = base + in->off[k];
            size_t n = in->len[k];
            unsigned v;
            if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && parse_hex_byte(s + 3, &v)) {
                rc = tok_buf_add(&pending, &(unsigned char){(unsigned char)v}, 1);
                continue;
            }
            rc = flush_bytes(out, (const unsigned char *)pending.p, pending.len) || list_begin(out) ||
                 list_append(out, s, n);
            pending.len = 0;
        }
        rc = rc || flush_bytes(out, (const unsigned char *)pending.p, pending.len);
        free(pending.p);
        return rc ? -1 : 0;
    }
    case DEC_FUSE:
        if (list_begin(out)) return -1;
        for (size_t k = 0; k < in->n; k++)
            if (list_append(out, base + in->off[k], in->len[k])) return -1;
        return 0;
    case DEC_STRIP:
        for (size_t k = 0; k < in->n; k++) {
            const unsigned char *s = (const unsigned char *)base + in->off[k];
            size_t n = in->len[k], a = 0, b = n;
            for (size_t c = 0; c < d->start && a < n; c++) { /* leading content chars */
                size_t t = a;
                if (et_utf8_next(s, &t) != d->cp) break;
                a = t;
            }
            for (size_t c = 0; c < d->stop && b > a; c++) { /* trailing */
                size_t q = b - 1;
                while (q > a && (s[q] & 0xC0) == 0x80) q--;
                size_t t = q;
                if (et_utf8_next(s, &t) != d->cp) break;
                b = q;
            }
            if (list_begin(out) || list_append(out, s + a, b - a)) return -1;
        }
        return 0;
    }
    return -1;
}

int et_tokenizer_decode(const et_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                        size_t *len, et_error *err) {
    *text = NULL;
    *len = 0;
    strlist cur = {0}, next = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size) {
            list_free(&cur);
            return et_fail(err, "decode: the id at position %zu is outside the vocabulary [0, %d)", i,
                           (int)t->vocab_size);
        }
        if (skip_special && t->special_id[id]) continue;
        size_t tl;
        const char *tt = et_tokenizer_token_text(t, id, &tl);
        if (!tt) continue; /* a hole in the id space: HF skips it */
        if (list_begin(&cur) || list_append(&cur, tt, tl)) goto oom;
    }
    for (size_t k = 0; k < t->n_dec; k++) {
        if (apply_decoder(&t->dec[k], &cur, &next)) goto oom;
        list_free(&cur);
        cur = next;
        memset(&next, 0, sizeof next);
    }
    tok_buf out = {0};
    if (tok_buf_add(&out, "", 0)) goto oom;
    for (size_t k = 0; k < cur.n; k++) {
        if (t->n_dec == 0 && k > 0 && tok_buf_add(&out, " ", 1)) goto oom_out;
        if (tok_buf_add(&out, cur.text.p + cur.off[k], cur.len[k])) goto oom_out;
    }
    list_free(&cur);
    *text = out.p;
    *len = out.len;
    return 0;
oom_out:
    free(out.p);
oom:
    list_free(&cur);
    list_free(&next);
    return et_fail(err, "decode: out of memory");
}
