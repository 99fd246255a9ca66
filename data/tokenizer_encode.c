/* Encoding: the pipeline of HF Tokenizer::encode for one sequence, in its order:
 *   1. added tokens that are not `normalized` are cut out of the raw text;
 *   2. each remaining piece is normalized on its own, then the `normalized` added tokens
 *      are cut out of it;
 *   3. each remaining piece goes through the pre-tokenizers, and each pre-token through
 *      the BPE model;
 *   4. with ET_TOK_ADD_SPECIAL, the post-processors add their special tokens.
 * Pieces are handled depth-first as they are found, so nothing but ids accumulates. */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"
#include "data/unicode.h"

int tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t c = b->cap ? b->cap : 256;
    while (c < b->len + extra) c *= 2;
    char *p = realloc(b->p, c);
    if (!p) return -1;
    b->p = p;
    b->cap = c;
    return 0;
}

int tok_buf_add(tok_buf *b, const void *p, size_t n) {
    if (tok_buf_reserve(b, n + 1)) return -1;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* -------------------------------------------------------- normalizers --- */

int tok_normalize(const et_tokenizer *t, const char *s, size_t n, tok_buf *a, tok_buf *b,
                  const char **out, size_t *out_n) {
    const char *cur = s;
    size_t len = n;
    for (size_t k = 0; k < t->n_norm; k++) {
        const tok_norm *m = &t->norm[k];
        tok_buf *dst = cur == a->p ? b : a; /* never write the buffer being read */
        dst->len = 0;
        switch (m->kind) {
        case NORM_PREPEND:
            if (len == 0) continue;
            if (tok_buf_add(dst, m->a, m->a_len) || tok_buf_add(dst, cur, len)) return -1;
            break;
        case NORM_REPLACE: {
            const char *hit = memmem(cur, len, m->a, m->a_len);
            if (!hit) continue;
            size_t i = 0;
            while (hit) {
                size_t at = (size_t)(hit - cur);
                if (tok_buf_add(dst, cur + i, at - i) || tok_buf_add(dst, m->b, m->b_len)) return -1;
                i = at + m->a_len;
                hit = i <= len ? memmem(cur + i, len - i, m->a, m->a_len) : NULL;
            }
            if (tok_buf_add(dst, cur + i, len - i)) return -1;
            break;
        }
        case NORM_NFC:
            if (!et_nfc_needed(cur, len)) continue;
            if (et_nfc_append(&dst->p, &dst->len, &dst->cap, cur, len) || tok_buf_reserve(dst, 1)) return -1;
            dst->p[dst->len] = '\0';
            break;
        }
        cur = dst->p;
        len = dst->len;
    }
    *out = cur;
    *out_n = len;
    return 0;
}

/* ------------------------------------------------------- added tokens --- */

typedef struct enc_ctx enc_ctx;
typedef int (*piece_fn)(enc_ctx *c, const char *s, size_t a, size_t b, int32_t token, int first);

struct enc_ctx {
    const et_tokenizer *t;
    tok_scratch s;
    int flags;
    et_error *err;
};

static int emit_id(enc_ctx *c, int32_t id) {
    tok_scratch *s = &c->s;
    if (s->out_n == s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap * 2 : 1024;
        int32_t *p = realloc(s->out, cap * sizeof *p);
        if (!p) return et_fail(c->err, "out of memory");
        s->out = p;
        s->out_cap = cap;
    }
    s->out[s->out_n++] = id;
    return 0;
}

/* Longest added token starting at s[i], or -1. */
static int trie_longest(const tok_trie *tr, const char *s, size_t n, size_t i, size_t *end) {
    int best = -1;
    int32_t node = 0;
    for (size_t k = i; k < n; k++) {
        int32_t ch = tr->nodes[node].first_child;
        while (ch >= 0 && tr->nodes[ch].byte != (unsigned char)s[k]) ch = tr->nodes[ch].next_sibling;
        if (ch < 0) break;
        node = ch;
        if (tr->nodes[node].token >= 0) {
            best = tr->nodes[node].token;
            *end = k + 1;
        }
    }
    return best;
}

static int is_word_before(const char *s, size_t at) {
    if (at == 0) return 0;
    size_t i = at - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return (et_uni_class(et_utf8_next((const unsigned char *)s, &i)) & ET_UNI_WORD) != 0;
}

static int is_word_at(const char *s, size_t n, size_t at) {
    if (at >= n) return 0;
    return (et_uni_class(et_utf8_next((const unsigned char *)s, &at)) & ET_UNI_WORD) != 0;
}

/* HF AddedVocabulary::find_matches, calling fn for each piece: (token id, or -1 for
 * text). The automaton search resumes at the end of each match, kept or not. */
static int split_added(enc_ctx *c, const tok_trie *tr, const char *s, size_t n, int first, piece_fn fn) {
    const et_tokenizer *t = c->t;
    size_t start_offset = 0, pos = 0;
    while (tr->n_patterns && pos < n) {
        size_t i = pos, end = 0;
        int k = -1;
        for (; i < n; i++)
            if (tr->first_byte[(unsigned char)s[i]] && (k = trie_longest(tr, s, n, i, &end)) >= 0) break;
        if (k < 0) break;
        pos = end;
        const tok_added *a = &t->added[k];
        if ((c->flags & ET_TOK_SPLIT_SPECIAL) && a->special) continue;
        if (a->single_word && (is_word_before(s, i) || is_word_at(s, n, end))) continue;
        size_t start = i, stop = end;
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t q = ns - 1;
                while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                size_t qq = q;
                if (!(et_uni_class(et_utf8_next((const unsigned char *)s, &qq)) & ET_UNI_WS)) break;
                ns = q;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                size_t q = stop;
                if (!(et_uni_class(et_utf8_next((const unsigned char *)s, &q)) & ET_UNI_WS)) break;
                stop = q;
            }
        }
        if (start_offset < start && fn(c, s, start_offset, start, -1, first)) return -1;
        if (fn(c, s, start, stop, a->id, first)) return -1;
        start_offset = stop;
    }
    if (start_offset < n && fn(c, s, start_offset, n, -1, first)) return -1;
    return 0;
}

/* ----------------------------------------------------- pre-tokenizers --- */

static int bpe_word(enc_ctx *c, const char *w, size_t n) {
    const et_tokenizer *t = c->t;
    if (!t->bytelevel) return tok_bpe_word(&t->bpe, &c->s, w, n, c->err);
    tok_buf *m = &c->s.mapped;
    m->len = 0;
    if (tok_buf_reserve(m, 2 * n + 1)) return et_fail(c->err, "out of memory");
    char *o = m->p;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)w[i];
        o[m->len] = t->bl_utf8[b][0];
        o[m->len + 1] = t->bl_utf8[b][1];
        m->len += t->bl_len[b];
    }
    return tok_bpe_word(&t->bpe, &c->s, m->p, m->len, c->err);
}

/* HF SplitDelimiterBehavior, applied in place to the spans of find_matches; afterwards
 * `match` means "keep". */
static void apply_behavior(tok_span_vec *v, tok_behavior beh) {
    size_t n = v->n, w = 0;
    tok_span *x = v->v;
    int prev = 0;
    switch (beh) {
    case BEH_ISOLATED:
        for (size_t k = 0; k < n; k++) x[k].match = 1;
        return;
    case BEH_REMOVED:
        for (size_t k = 0; k < n; k++) x[k].match = !x[k].match;
        return;
    case BEH_MERGED_PREV:
    case BEH_CONTIGUOUS:
        for (size_t k = 0; k < n; k++) {
            int m = x[k].match;
            int join = beh == BEH_MERGED_PREV ? (m && !prev) : (m == prev);
            if (join && w > 0) x[w - 1].end = x[k].end;
            else x[w++] = x[k];
            prev = m;
        }
        break;
    case BEH_MERGED_NEXT:
        w = n;
        for (size_t k = n; k-- > 0;) {
            int m = x[k].match;
            if (m && !prev && w < n) x[w].start = x[k].start;
            else x[--w] = x[k];
            prev = m;
        }
        memmove(x, x + w, (n - w) * sizeof *x);
        w = n - w;
        break;
    }
    v->n = w;
    for (size_t k = 0; k < w; k++) x[k].match = 1;
}

static int pretokenize(enc_ctx *c, size_t level, const char *s, size_t n, int first);

static int pretok_spans(enc_ctx *c, size_t level, const char *s, tok_span_vec *v, int first, int last_bytelevel) {
    for (size_t k = 0; k < v->n; k++) {
        tok_span sp = v->v[k];
        if (!sp.match || sp.end == sp.start) continue;
        int rc = last_bytelevel ? bpe_word(c, s + sp.start, sp.end - sp.start)
                                : pretokenize(c, level + 1, s + sp.start, sp.end - sp.start, first && sp.start == 0);
        if (rc) return -1;
    }
    return 0;
}

static int pretokenize(enc_ctx *c, size_t level, const char *s, size_t n, int first) {
    const et_tokenizer *t = c->t;
    if (n == 0) return 0;
    if (level == t->n_pre) return bpe_word(c, s, n);
    const tok_pre *p = &t->pre[level];
    tok_buf *buf = &c->s.level[level];
    tok_span_vec *v = &c->s.spans[level];
    switch (p->kind) {
    case PRE_SPLIT:
        if (tok_find_matches(p, s, n, v)) return et_fail(c->err, "out of memory");
        apply_behavior(v, p->behavior);
        return pretok_spans(c, level, s, v, first, 0);
    case PRE_METASPACE: {
        buf->len = 0;
        int starts = n >= p->repl_len && !memcmp(s, p->repl, p->repl_len);
        /* replace(' ', repl) first: a leading space becomes repl, so no prefix is added */
        starts = starts || s[0] == ' ';
        if (!starts && (p->prepend_scheme == PREPEND_ALWAYS || (p->prepend_scheme == PREPEND_FIRST && first)))
            if (tok_buf_add(buf, p->repl, p->repl_len)) return et_fail(c->err, "out of memory");
        for (size_t i = 0; i < n;) {
            const char *sp = memchr(s + i, ' ', n - i);
            size_t e = sp ? (size_t)(sp - s) : n;
            if (tok_buf_add(buf, s + i, e - i)) return et_fail(c->err, "out of memory");
            if (sp && tok_buf_add(buf, p->repl, p->repl_len)) return et_fail(c->err, "out of memory");
            i = sp ? e + 1 : n;
        }
        if (!p->split) return pretokenize(c, level + 1, buf->p, buf->len, first);
        tok_pre lit = {.kind = PRE_SPLIT, .pattern = SPLIT_LITERAL, .literal = (char *)p->repl, .literal_len = p->repl_len};
        if (tok_find_matches(&lit, buf->p, buf->len, v)) return et_fail(c->err, "out of memory");
        apply_behavior(v, BEH_MERGED_NEXT);
        return pretok_spans(c, level, buf->p, v, first, 0);
    }
    case PRE_BYTELEVEL: {
        /* Always the last step (checked at load): its pieces go to the model, mapped. */
        const char *x = s;
        size_t xn = n;
        if (p->add_prefix_space && s[0] != ' ') {
            buf->len = 0;
            if (tok_buf_add(buf, " ", 1) || tok_buf_add(buf, s, n)) return et_fail(c->err, "out of memory");
            x = buf->p;
            xn = buf->len;
        }
        if (!p->use_regex) return bpe_word(c, x, xn);
        tok_pre gpt2 = {.kind = PRE_SPLIT, .pattern = SPLIT_GPT2};
        if (tok_find_matches(&gpt2, x, xn, v)) return et_fail(c->err, "out of memory");
        return pretok_spans(c, level, x, v, first, 1);
    }
    }
    return et_fail(c->err, "internal error: unknown pre-tokenizer step");
}

/* ------------------------------------------------------------ pipeline --- */

static int on_normalized_piece(enc_ctx *c, const char *s, size_t a, size_t b, int32_t token, int first) {
    if (token >= 0) return emit_id(c, token);
    return pretokenize(c, 0, s + a, b - a, first && a == 0);
}

static int on_raw_piece(enc_ctx *c, const char *s, size_t a, size_t b, int32_t token, int first) {
    if (token >= 0) return emit_id(c, token);
    if (b == a) return 0;
    const char *norm;
    size_t nn;
    if (tok_normalize(c->t, s + a, b - a, &c->s.norm, &c->s.norm2, &norm, &nn))
        return et_fail(c->err, "out of memory");
    if (nn == 0) return 0;
    if (nn > UINT32_MAX - 16) /* spans are 32-bit */
        return et_fail(c->err, "encode: a piece of the text is over 4 GiB once normalized: split the text");
    return split_added(c, &c->t->norm_trie, norm, nn, first && a == 0, on_normalized_piece);
}

static void scratch_free(tok_scratch *s, size_t levels) {
    free(s->sym_id);
    free(s->sym_cp);
    free(s->pair_rank);
    free(s->pair_new);
    free(s->sym);
    free(s->heap);
    free(s->mapped.p);
    free(s->piece.p);
    free(s->norm.p);
    free(s->norm2.p);
    for (size_t k = 0; s->level && k < levels; k++) free(s->level[k].p);
    for (size_t k = 0; s->spans && k < levels; k++) free(s->spans[k].v);
    free(s->level);
    free(s->spans);
    free(s->out);
}

static int post_process(enc_ctx *c) {
    const et_tokenizer *t = c->t;
    for (size_t k = 0; k < t->n_post; k++) {
        const tok_post *p = &t->post[k];
        size_t total = 0;
        for (size_t i = 0; i < p->n_items; i++) total += p->items[i].n_ids < 0 ? c->s.out_n : (size_t)p->items[i].n_ids;
        int32_t *o = malloc((total ? total : 1) * sizeof *o);
        if (!o) return et_fail(c->err, "out of memory");
        size_t w = 0;
        for (size_t i = 0; i < p->n_items; i++) {
            const tok_post_item *it = &p->items[i];
            if (it->n_ids < 0) {
                if (c->s.out_n) memcpy(o + w, c->s.out, c->s.out_n * sizeof *o);
                w += c->s.out_n;
            } else {
                memcpy(o + w, it->ids, (size_t)it->n_ids * sizeof *o);
                w += (size_t)it->n_ids;
            }
        }
        free(c->s.out);
        c->s.out = o;
        c->s.out_cap = total ? total : 1;
        c->s.out_n = w;
    }
    return 0;
}

int et_tokenizer_encode(const et_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids,
                        size_t *n, et_error *err) {
    *ids = NULL;
    *n = 0;
    if (!text && len) return et_fail(err, "encode: NULL text");
    if (len > UINT32_MAX - 16)
        return et_fail(err, "encode: text of %zu bytes is too long (at most 4 GiB per call): split it", len);
    size_t bad;
    if (et_utf8_validate(text, len, &bad))
        return et_fail(err, "encode: the text is not valid UTF-8 at byte offset %zu: convert it to UTF-8 "
                            "(e.g. iconv) before tokenizing", bad);
    enc_ctx c = {.t = t, .flags = flags, .err = err};
    c.s.level = calloc(t->n_pre ? t->n_pre : 1, sizeof *c.s.level);
    c.s.spans = calloc(t->n_pre ? t->n_pre : 1, sizeof *c.s.spans);
    int rc = -1;
    if (!c.s.level || !c.s.spans) {
        et_fail(err, "out of memory");
        goto done;
    }
    if (split_added(&c, &t->raw_trie, text ? text : "", len, !(flags & ET_TOK_CONTINUATION),
                    on_raw_piece))
        goto done;
    if ((flags & ET_TOK_ADD_SPECIAL) && post_process(&c)) goto done;
    if (!c.s.out && !(c.s.out = malloc(sizeof *c.s.out))) {
        et_fail(err, "out of memory");
        goto done;
    }
    *ids = c.s.out;
    *n = c.s.out_n;
    c.s.out = NULL;
    rc = 0;
done:
    scratch_free(&c.s, t->n_pre);
    return rc;
}
