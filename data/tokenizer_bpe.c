/* The BPE model of tokenizer.json: vocabulary and merge tables, and the encoding of one
 * pre-token. It follows HF tokenizers' models/bpe (merge_word + Word::merge_all) step for
 * step, because the ids must be the same, quirks included:
 *   - each character is looked up alone (with continuing_subword_prefix when not first,
 *     end_of_word_suffix when last); a miss becomes <0xXX> byte tokens when byte_fallback
 *     and every byte has one, else the unk token (fused with a preceding unk when
 *     fuse_unk), else nothing at all;
 *   - a pending unk is not flushed before byte-fallback tokens (so it lands after them);
 *   - merges are applied from a priority queue ordered by (rank, position), and a queued
 *     merge is discarded when the pair at its position no longer yields its token;
 *   - with ignore_merges, a pre-token that is itself in the vocabulary is one token. */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"
#include "data/unicode.h"

/* ------------------------------------------------------------- hash map --- */

uint32_t tok_hash(const char *k, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        k += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, k, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h ^ (h >> 32));
}

int tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = 64;
    while (cap < 2 * expected + 16) cap *= 2;
    m->slot_id = malloc(cap * sizeof *m->slot_id);
    m->slot_off = malloc(cap * sizeof *m->slot_off);
    m->slot_len = malloc(cap * sizeof *m->slot_len);
    m->slot_hash = malloc(cap * sizeof *m->slot_hash);
    if (!m->slot_id || !m->slot_off || !m->slot_len || !m->slot_hash) return -1;
    for (size_t i = 0; i < cap; i++) m->slot_id[i] = -1;
    m->mask = cap - 1;
    return 0;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->arena);
    free(m->slot_id);
    free(m->slot_off);
    free(m->slot_len);
    free(m->slot_hash);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find(const tok_strmap *m, const char *key, size_t len, uint32_t h) {
    size_t i = h & m->mask;
    for (;;) {
        if (m->slot_id[i] < 0) return i;
        if (m->slot_hash[i] == h && m->slot_len[i] == len && !memcmp(m->arena + m->slot_off[i], key, len))
            return i;
        i = (i + 1) & m->mask;
    }
}

static int strmap_grow(tok_strmap *m) {
    tok_strmap bigger;
    size_t cap = (m->mask + 1) * 2;
    bigger = *m;
    bigger.slot_id = malloc(cap * sizeof *bigger.slot_id);
    bigger.slot_off = malloc(cap * sizeof *bigger.slot_off);
    bigger.slot_len = malloc(cap * sizeof *bigger.slot_len);
    bigger.slot_hash = malloc(cap * sizeof *bigger.slot_hash);
    if (!bigger.slot_id || !bigger.slot_off || !bigger.slot_len || !bigger.slot_hash) {
        free(bigger.slot_id), free(bigger.slot_off), free(bigger.slot_len), free(bigger.slot_hash);
        return -1;
    }
    for (size_t i = 0; i < cap; i++) bigger.slot_id[i] = -1;
    bigger.mask = cap - 1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slot_id[i] < 0) continue;
        size_t j = m->slot_hash[i] & bigger.mask;
        while (bigger.slot_id[j] >= 0) j = (j + 1) & bigger.mask;
        bigger.slot_id[j] = m->slot_id[i];
        bigger.slot_off[j] = m->slot_off[i];
        bigger.slot_len[j] = m->slot_len[i];
        bigger.slot_hash[j] = m->slot_hash[i];
    }
    free(m->slot_id), free(m->slot_off), free(m->slot_len), free(m->slot_hash);
    *m = bigger;
    return 0;
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t id) {
    if (2 * (m->count + 1) > m->mask + 1 && strmap_grow(m)) return -1;
    uint32_t h = tok_hash(key, len);
    size_t i = strmap_find(m, key, len, h);
    if (m->slot_id[i] >= 0) return 1;
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t c = m->arena_cap ? m->arena_cap : 4096;
        while (c < m->arena_len + len + 1) c *= 2;
        char *p = realloc(m->arena, c);
        if (!p) return -1;
        m->arena = p;
        m->arena_cap = c;
    }
    if (m->arena_len + len + 1 > UINT32_MAX) return -1;
    memcpy(m->arena + m->arena_len, key, len);
    m->arena[m->arena_len + len] = '\0';
    m->slot_id[i] = id;
    m->slot_off[i] = (uint32_t)m->arena_len;
    m->slot_len[i] = (uint32_t)len;
    m->slot_hash[i] = h;
    m->arena_len += len + 1;
    m->count++;
    return 0;
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len) {
    if (!m->slot_id) return -1;
    size_t i = strmap_find(m, key, len, tok_hash(key, len));
    return m->slot_id[i];
}

/* ---------------------------------------------------------------- merges --- */

static inline size_t merge_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

int tok_bpe_lookup_merge(const tok_bpe *b, int32_t left, int32_t right, uint32_t *rank, int32_t *new_id) {
    if (!b->merges) return 0;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = merge_slot(key, b->merge_mask);; i = (i + 1) & b->merge_mask) {
        const tok_merge *m = &b->merges[i];
        if (m->key == UINT64_MAX) return 0;
        if (m->key == key) {
            *rank = m->rank;
            *new_id = m->new_id;
            return 1;
        }
    }
}

/* b->joins is sized at load (twice the merge count, a power of two), so it never fills. */
int tok_bpe_add_join(tok_bpe *b, uint32_t last, uint32_t first) {
    uint64_t key = (uint64_t)last << 21 | first;
    for (size_t i = merge_slot(key, b->join_mask);; i = (i + 1) & b->join_mask) {
        if (b->joins[i] == key) return 0;
        if (b->joins[i] == UINT64_MAX) {
            b->joins[i] = key;
            return 0;
        }
    }
}

static int can_join(const tok_bpe *b, uint32_t last, uint32_t first) {
    uint64_t key = (uint64_t)last << 21 | first;
    for (size_t i = merge_slot(key, b->join_mask);; i = (i + 1) & b->join_mask) {
        if (b->joins[i] == key) return 1;
        if (b->joins[i] == UINT64_MAX) return 0;
    }
}

/* ------------------------------------------------------------ encoding --- */

struct tok_symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t alive;
};

struct tok_heap_item {
    uint32_t rank, pos;
    int32_t new_id;
};

static inline int heap_less(const struct tok_heap_item *a, const struct tok_heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct tok_heap_item *h, size_t *n, struct tok_heap_item x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&x, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

static struct tok_heap_item heap_pop(struct tok_heap_item *h, size_t *n) {
    struct tok_heap_item top = h[0], x = h[--*n];
    size_t i = 0, count = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= count) break;
        if (c + 1 < count && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (count) h[i] = x;
    return top;
}

static int emit(tok_scratch *s, int32_t id) {
    if (s->out_n == s->out_cap) {
        size_t c = s->out_cap ? s->out_cap * 2 : 1024;
        int32_t *p = realloc(s->out, c * sizeof *p);
        if (!p) return -1;
        s->out = p;
        s->out_cap = c;
    }
    s->out[s->out_n++] = id;
    return 0;
}

/* HF Word::merge_all, literally: a priority queue of (rank, position) over the pairs; a
 * popped entry is used only if its symbol is alive, has a right neighbour, and the pair
 * there still yields the entry's token; each merge queues the two new pairs it forms.
 * Works on ids[0..n) in place and returns the new count. */
static size_t merge_heap(const tok_bpe *b, tok_scratch *s, int32_t *ids, size_t n, int *oom) {
    if (s->link_cap < n) {
        struct tok_symbol *p = realloc(s->sym, n * sizeof *p);
        if (!p) return *oom = 1, n;
        s->sym = p;
        s->link_cap = n;
    }
    if (s->heap_cap < 3 * n) { /* n - 1 pairs, then at most two per merge */
        struct tok_heap_item *p = realloc(s->heap, 3 * n * sizeof *p);
        if (!p) return *oom = 1, n;
        s->heap = p;
        s->heap_cap = 3 * n;
    }
    struct tok_symbol *y = s->sym;
    struct tok_heap_item *h = s->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) y[i] = (struct tok_symbol){ids[i], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, 1};
    for (size_t i = 0; i + 1 < n; i++) {
        struct tok_heap_item it = {0, (uint32_t)i, 0};
        if (tok_bpe_lookup_merge(b, y[i].id, y[i + 1].id, &it.rank, &it.new_id)) heap_push(h, &hn, it);
    }
    while (hn) {
        struct tok_heap_item top = heap_pop(h, &hn);
        struct tok_symbol *cur = &y[top.pos];
        if (!cur->alive || cur->next < 0) continue;
        struct tok_symbol right = y[cur->next];
        uint32_t rank;
        int32_t new_id;
        if (!tok_bpe_lookup_merge(b, cur->id, right.id, &rank, &new_id) || new_id != top.new_id) continue;
        y[cur->next].alive = 0;
        cur->id = top.new_id;
        cur->next = right.next;
        if (right.next >= 0) y[right.next].prev = (int32_t)top.pos;
        struct tok_heap_item it;
        if (cur->prev >= 0 && tok_bpe_lookup_merge(b, y[cur->prev].id, cur->id, &it.rank, &it.new_id)) {
            it.pos = (uint32_t)cur->prev;
            heap_push(h, &hn, it);
        }
        if (cur->next >= 0 && tok_bpe_lookup_merge(b, cur->id, y[cur->next].id, &it.rank, &it.new_id)) {
            it.pos = top.pos;
            heap_push(h, &hn, it);
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i].alive) ids[w++] = y[i].id;
    return w;
}

/* The same result for short words, without the queue: repeatedly merge the pair of
 * lowest (rank, position). Equal because a queued entry that is no longer current can
 * only pass HF's check when the pair at its position is the very pair it was queued for:
 * a symbol only grows to the right, and every token's text is the concatenation of its
 * parts, so "same resulting token at the same position" means "same two tokens". */
static size_t merge_small(const tok_bpe *b, tok_scratch *s, int32_t *ids, size_t n) {
    uint32_t *rank = s->pair_rank;
    int32_t *nid = s->pair_new;
    for (size_t i = 0; i + 1 < n; i++)
        if (!tok_bpe_lookup_merge(b, ids[i], ids[i + 1], &rank[i], &nid[i])) rank[i] = UINT32_MAX;
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == UINT32_MAX) break;
        ids[best] = nid[best];
        /* drop symbol best+1 and pair best+1 (the pair tables hold one entry more
         * than needed, harmlessly: capacity is at least n) */
        size_t tail = n - best - 2;
        memmove(ids + best + 1, ids + best + 2, tail * sizeof *ids);
        memmove(rank + best + 1, rank + best + 2, tail * sizeof *rank);
        memmove(nid + best + 1, nid + best + 2, tail * sizeof *nid);
        n--;
        if (best > 0 && !tok_bpe_lookup_merge(b, ids[best - 1], ids[best], &rank[best - 1], &nid[best - 1]))
            rank[best - 1] = UINT32_MAX;
        if (best + 1 < n && !tok_bpe_lookup_merge(b, ids[best], ids[best + 1], &rank[best], &nid[best]))
            rank[best] = UINT32_MAX;
    }
    return n;
}

#define SMALL_WORD 24 /* symbols; above this the queue wins */

static int merge_and_emit(const tok_bpe *b, tok_scratch *s, int32_t *ids, size_t n, et_error *err) {
    int oom = 0;
    if (n > 1) n = n <= SMALL_WORD ? merge_small(b, s, ids, n) : merge_heap(b, s, ids, n, &oom);
    if (oom) return et_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (emit(s, ids[i])) return et_fail(err, "out of memory");
    return 0;
}

static int32_t lookup_piece(const tok_bpe *b, tok_scratch *s, const char *word, size_t i, size_t e,
                            size_t len, const char **piece, size_t *piece_len) {
    size_t clen = e - i;
    if (!b->prefix && !b->suffix) {
        *piece = word + i;
        *piece_len = clen;
        if (clen <= 2) {
            size_t k = i;
            uint32_t cp = et_utf8_next((const unsigned char *)word, &k);
            return b->char_id[cp];
        }
        return tok_strmap_get(&b->vocab, word + i, clen);
    }
    /* With a prefix or suffix the looked-up text is built (HF: format!("{prefix}{s}")). */
    tok_buf *t = &s->piece;
    t->len = 0;
    if (i > 0 && b->prefix && tok_buf_add(t, b->prefix, b->prefix_len)) return -2;
    if (tok_buf_add(t, word + i, clen)) return -2;
    if (e == len && b->suffix && tok_buf_add(t, b->suffix, b->suffix_len)) return -2;
    *piece = t->p;
    *piece_len = t->len;
    return tok_strmap_get(&b->vocab, t->p, t->len);
}

static int add_symbol(tok_scratch *s, size_t *n, int32_t id, uint32_t cp) {
    if (*n == s->sym_cap) {
        size_t c = s->sym_cap ? s->sym_cap * 2 : 256;
        int32_t *a = realloc(s->sym_id, c * sizeof *a);
        if (a) s->sym_id = a;
        uint32_t *b = realloc(s->sym_cp, c * sizeof *b);
        if (b) s->sym_cp = b;
        uint32_t *r = realloc(s->pair_rank, c * sizeof *r);
        if (r) s->pair_rank = r;
        int32_t *w = realloc(s->pair_new, c * sizeof *w);
        if (w) s->pair_new = w;
        if (!a || !b || !r || !w) return -1;
        s->sym_cap = c;
    }
    s->sym_id[*n] = id;
    s->sym_cp[*n] = cp;
    (*n)++;
    return 0;
}

int tok_bpe_word(const tok_bpe *b, tok_scratch *s, const char *word, size_t len, et_error *err) {
    if (len == 0) return 0;
    if (b->ignore_merges) {
        int32_t id = tok_strmap_get(&b->vocab, word, len);
        if (id >= 0) return emit(s, id) ? et_fail(err, "out of memory") : 0;
    }

    /* HF merge_word: the initial symbols */
    size_t n = 0;
    int32_t unk = -1; /* pending unk id */
    for (size_t i = 0; i < len;) {
        size_t e = i + et_utf8_len((unsigned char)word[i]);
        const char *piece;
        size_t piece_len;
        int32_t id = lookup_piece(b, s, word, i, e, len, &piece, &piece_len);
        if (id == -2) return et_fail(err, "out of memory");
        if (id >= 0) {
            if (unk >= 0) {
                if (add_symbol(s, &n, unk, UINT32_MAX)) return et_fail(err, "out of memory");
                unk = -1;
            }
            size_t k = i;
            uint32_t cp = b->prefix || b->suffix ? UINT32_MAX : et_utf8_next((const unsigned char *)word, &k);
            if (add_symbol(s, &n, id, cp)) return et_fail(err, "out of memory");
            i = e;
            continue;
        }
        if (b->byte_fallback) {
            int all = 1;
            for (size_t k = 0; k < piece_len && all; k++) all = b->byte_token[(unsigned char)piece[k]] >= 0;
            if (all) {
                for (size_t k = 0; k < piece_len; k++)
                    if (add_symbol(s, &n, b->byte_token[(unsigned char)piece[k]], UINT32_MAX))
                        return et_fail(err, "out of memory");
                i = e;
                continue;
            }
        }
        if (b->unk_token) {
            if (b->unk_id < 0)
                return et_fail(err, "model.unk_token is not in model.vocab, and the text has a "
                                    "character the vocabulary lacks: fix the tokenizer file");
            if (!(unk >= 0 && b->fuse_unk)) {
                if (unk >= 0 && add_symbol(s, &n, unk, UINT32_MAX)) return et_fail(err, "out of memory");
                unk = b->unk_id;
            }
        }
        i = e;
    }
    if (unk >= 0 && add_symbol(s, &n, unk, UINT32_MAX)) return et_fail(err, "out of memory");

    /* Merge. A long word (a whole SentencePiece-style text has no pre-tokenizer to cut it)
     * is cut between two characters that are their own tokens and that no merge can
     * join; the pieces merge independently, so the result is the same and the work stays
     * linear. */
    size_t lo = 0;
    if (n > SMALL_WORD && b->joins) {
        for (size_t i = 1; i < n; i++) {
            if (s->sym_cp[i - 1] == UINT32_MAX || s->sym_cp[i] == UINT32_MAX) continue;
            if (can_join(b, s->sym_cp[i - 1], s->sym_cp[i])) continue;
            if (merge_and_emit(b, s, s->sym_id + lo, i - lo, err)) return -1;
            lo = i;
        }
    }
    return merge_and_emit(b, s, s->sym_id + lo, n - lo, err);
}
