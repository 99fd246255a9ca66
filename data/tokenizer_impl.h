/* Internals of the tokenizer, shared by data/tokenizer*.c only (not a public header).
 *
 * The loaded form mirrors tokenizer.json after flattening: each Sequence becomes a plain
 * array of steps, since HF applies a Sequence's members one after the other. */
#ifndef EHRTUNE_TOKENIZER_IMPL_H
#define EHRTUNE_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"
#include "data/tokenizer.h"

/* ----------------------------------------------------------- byte buffer --- */

typedef struct {
    char *p;
    size_t len, cap;
} tok_buf;

int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_add(tok_buf *b, const void *p, size_t n);

/* --------------------------------------------- string -> id hash (vocab) --- */

/* Open addressing over (offset, length) keys stored in one arena. */
typedef struct {
    char *arena;
    size_t arena_len, arena_cap;
    int32_t *slot_id; /* -1 empty */
    uint32_t *slot_off, *slot_len;
    uint32_t *slot_hash;
    size_t mask; /* capacity - 1 */
    size_t count;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Inserts key -> id; returns 1 if the key was already present (nothing changed), 0 if
 * inserted, -1 when out of memory. */
int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t id);
/* Returns the id, or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);
uint32_t tok_hash(const char *key, size_t len);

/* ------------------------------------------------------------------- BPE --- */

typedef struct {
    uint64_t key; /* (uint64_t)left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t new_id;
} tok_merge;

typedef struct {
    tok_strmap vocab;
    int32_t n_ids;      /* max id + 1 */
    uint32_t *id_off;   /* per id: offset of its text in vocab.arena; UINT32_MAX = no token */
    uint32_t *id_len;
    tok_merge *merges;
    size_t merge_mask;
    char *unk_token;    /* NULL: none */
    int32_t unk_id;     /* -1 when unk_token is absent from the vocab (HF errors on use) */
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix (NULL: none) */
    size_t prefix_len, suffix_len;
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_token[256]; /* id of "<0xXX>", -1 when absent */
    int32_t char_id[0x800];  /* id of the one-character token U+0000..U+07FF, -1 if none */
    /* (last character of a, first character of b) of every merge (a, b), as
     * (uint64_t)last << 21 | first; UINT64_MAX = empty. Two adjacent characters that
     * are their own tokens and form no such pair can never end up in one token, so a
     * long word is cut there and each piece merged alone (see tok_bpe_word). */
    uint64_t *joins;
    size_t join_mask;
} tok_bpe;

int tok_bpe_add_join(tok_bpe *b, uint32_t last, uint32_t first);

int tok_bpe_lookup_merge(const tok_bpe *b, int32_t left, int32_t right, uint32_t *rank, int32_t *new_id);

/* Scratch space of one encode call (the tokenizer itself stays read-only). */
typedef struct {
    int32_t *sym_id;      /* the word's initial symbols */
    uint32_t *sym_cp;     /* their character when it is its own token, else UINT32_MAX */
    uint32_t *pair_rank;  /* merge_small's pair table */
    int32_t *pair_new;
    size_t sym_cap;
    struct tok_symbol *sym; /* merge_heap's linked symbols */
    size_t link_cap;
    struct tok_heap_item *heap;
    size_t heap_cap;
    tok_buf mapped;     /* ByteLevel-mapped word */
    tok_buf piece;      /* one BPE character with prefix/suffix */
    tok_buf norm;       /* normalized piece */
    tok_buf norm2;
    tok_buf *level;     /* per pre-tokenizer step: its rewritten piece */
    struct tok_span_vec *spans; /* per pre-tokenizer step: its splits */
    int32_t *out;
    size_t out_n, out_cap;
} tok_scratch;

/* Appends the ids of one pre-token (`word`, in the model's alphabet) to s->out. */
int tok_bpe_word(const tok_bpe *b, tok_scratch *s, const char *word, size_t len, et_error *err);

/* ------------------------------------------------------------ components --- */

typedef enum { NORM_PREPEND, NORM_REPLACE, NORM_NFC } tok_norm_kind;

typedef struct {
    tok_norm_kind kind;
    char *a, *b; /* Prepend: a = prepend; Replace: a = pattern, b = content */
    size_t a_len, b_len;
} tok_norm;

/* The Split regexes we implement by hand (data/tokenizer_pretok.c). */
typedef enum { SPLIT_LITERAL, SPLIT_LLAMA3, SPLIT_QWEN2, SPLIT_GPT2 } tok_split_pattern;

typedef enum { BEH_REMOVED, BEH_ISOLATED, BEH_MERGED_PREV, BEH_MERGED_NEXT, BEH_CONTIGUOUS } tok_behavior;

typedef enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE } tok_pre_kind;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } tok_prepend_scheme;

typedef struct {
    tok_pre_kind kind;
    /* Split */
    tok_split_pattern pattern;
    char *literal;
    size_t literal_len;
    tok_behavior behavior;
    int invert;
    /* ByteLevel */
    int add_prefix_space, use_regex;
    /* Metaspace */
    char repl[5];
    size_t repl_len;
    tok_prepend_scheme prepend_scheme;
    int split;
} tok_pre;

typedef enum { DEC_BYTELEVEL, DEC_METASPACE, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP } tok_dec_kind;

typedef struct {
    tok_dec_kind kind;
    char *a, *b; /* Replace: pattern, content */
    size_t a_len, b_len;
    uint32_t cp; /* Metaspace replacement, Strip content */
    tok_prepend_scheme prepend_scheme;
    size_t start, stop; /* Strip */
} tok_dec;

/* One post-processor applied to a single sequence: the output is `items` in order, where
 * an item is either the ids of a special token or the sequence itself (n_ids < 0). */
typedef struct {
    int32_t *ids;
    int n_ids; /* -1: the sequence */
} tok_post_item;

typedef struct {
    tok_post_item *items;
    size_t n_items;
} tok_post;

typedef struct {
    char *content;
    size_t len;
    /* What HF's id_to_token (and so decode) gives for the id: the content, normalized
     * when the token is `normalized` (Llama 2's legacy "hi" -> "▁hi"). */
    char *text;
    size_t text_len;
    int32_t id;
    uint8_t single_word, lstrip, rstrip, normalized, special;
} tok_added;

/* Byte trie over added-token contents, for leftmost-longest matching. */
typedef struct {
    int32_t first_child, next_sibling;
    int32_t token; /* index into added[], -1 if no token ends here */
    unsigned char byte;
} tok_trie_node;

typedef struct {
    tok_trie_node *nodes;
    size_t n_nodes, cap;
    uint8_t first_byte[256]; /* 1 if some token starts with that byte */
    /* patterns as matched: contents, normalized for the normalized trie */
    char **pattern;
    size_t *pattern_len;
    size_t n_patterns;
} tok_trie;

struct et_tokenizer {
    char *name;
    tok_bpe bpe;
    tok_added *added;
    size_t n_added;
    tok_trie raw_trie, norm_trie; /* non-normalized / normalized added tokens */
    tok_norm *norm;
    size_t n_norm;
    tok_pre *pre;
    size_t n_pre;
    int bytelevel; /* the last pre-tokenizer is ByteLevel: the model sees mapped bytes */
    tok_post *post;
    size_t n_post;
    tok_dec *dec;
    size_t n_dec;
    int32_t vocab_size;
    int32_t *added_of_id; /* per id: index into added[] or -1 */
    char bl_utf8[256][2]; /* ByteLevel: UTF-8 of each byte's character (1 or 2 bytes) */
    uint8_t bl_len[256];
    uint8_t *special_id;  /* per id: 1 when HF counts it special (skipped by decode) */
};

/* ByteLevel's byte <-> character map (GPT-2 bytes_to_unicode). */
uint32_t tok_byte_to_cp(unsigned char b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not in the map */

/* Splitters (data/tokenizer_pretok.c). Each appends (start, end, is_match) spans covering
 * s[0..n) exactly, as HF's Pattern::find_matches does. */
typedef struct {
    uint32_t start, end;
    uint8_t match;
} tok_span;

typedef struct tok_span_vec {
    tok_span *v;
    size_t n, cap;
} tok_span_vec;

int tok_find_matches(const tok_pre *p, const char *s, size_t n, tok_span_vec *out);

/* Normalizers applied to one piece: *out points at s itself when nothing changed, else
 * into a or b. */
int tok_normalize(const et_tokenizer *t, const char *s, size_t n, tok_buf *a, tok_buf *b,
                  const char **out, size_t *out_n);

#endif
