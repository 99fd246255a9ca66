/* HF tokenizer.json: load, encode, decode — the same ids HF `tokenizers` gives.
 *
 * Supported (docs/tokenizer.md has the details and the reasons):
 *   model          BPE (merges as "a b" strings or as pairs; byte_fallback, unk_token,
 *                  fuse_unk, ignore_merges, continuing_subword_prefix, end_of_word_suffix)
 *   normalizer     Sequence, NFC, Prepend, Replace (string pattern)
 *   pre_tokenizer  Sequence, ByteLevel, Metaspace, Split (string pattern, or the regex of
 *                  Llama 3, Qwen2 or GPT-2: hand-written splitters, tested equal to HF)
 *   post_processor TemplateProcessing, ByteLevel, Sequence, BertProcessing, RobertaProcessing
 *   decoder        Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip
 *   added_tokens   matched before anything else (never split), with single_word, lstrip,
 *                  rstrip and normalized as HF applies them
 * Anything else is refused at load with a message naming the component and its type.
 * truncation and padding in the file are ignored (ids are those of HF with truncation and
 * padding off, which is how transformers calls it unless asked).
 *
 * Text must be valid UTF-8: encode refuses anything else with the byte offset of the first
 * bad sequence (HF cannot even receive such text from Python).
 *
 * A loaded tokenizer is read-only: encode and decode may run from many threads at once. */
#ifndef EHRTUNE_TOKENIZER_H
#define EHRTUNE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"

typedef struct et_tokenizer et_tokenizer;

/* Flags of et_tokenizer_encode. */
enum {
    /* Run the post-processor: add BOS/EOS as the file's template says (HF
     * add_special_tokens=True). */
    ET_TOK_ADD_SPECIAL = 1,
    /* Treat special-token text in the input as plain text (HF encode_special_tokens /
     * transformers split_special_tokens): a note that contains "<|eot_id|>" then cannot
     * inject a control token. Non-special added tokens still match. */
    ET_TOK_SPLIT_SPECIAL = 2,
    /* The text continues an input right after a special token (a chat template's
     * control token): HF encodes such a stretch as a later segment of the whole input,
     * so a Metaspace pre-tokenizer with prepend_scheme "first" adds no leading ▁. */
    ET_TOK_CONTINUATION = 4,
};

/* Reads tokenizer.json at path. Every field is checked; errors name the file, the JSON
 * path (e.g. "model.merges[17]") and what was expected. */
int et_tokenizer_load(et_tokenizer **t, const char *path, et_error *err);

/* Same from JSON text in memory; `name` is used in error messages. */
int et_tokenizer_load_json(et_tokenizer **t, const char *json, size_t len, const char *name,
                           et_error *err);

void et_tokenizer_free(et_tokenizer *t);

/* Encodes text[0..len) (UTF-8). On success *ids is a malloc'd array of *n ids (free()
 * it; non-NULL even when *n == 0). flags: ET_TOK_* (0 = HF add_special_tokens=False). */
int et_tokenizer_encode(const et_tokenizer *t, const char *text, size_t len, int flags,
                        int32_t **ids, size_t *n, et_error *err);

/* Decodes ids into a malloc'd NUL-terminated UTF-8 string (*len bytes, without the NUL),
 * as HF decode(ids, skip_special_tokens). An id outside [0, vocab_size) is an error
 * (naming its position); an id inside that range that names no token is skipped, as HF
 * does. */
int et_tokenizer_decode(const et_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        char **text, size_t *len, et_error *err);

/* One more than the largest id of the model vocabulary and the added tokens. */
int32_t et_tokenizer_vocab_size(const et_tokenizer *t);

/* Id of the token whose text is exactly `token` (added tokens first, then the model
 * vocabulary, as HF token_to_id), or -1. */
int32_t et_tokenizer_token_id(const et_tokenizer *t, const char *token);

/* Text of token `id` as HF's id_to_token gives it (model vocabulary entry in the model's
 * own form, e.g. "Ġthe"; an added token's content, normalized when the token is
 * `normalized`), with its byte length in *len; NULL when id names no token. */
const char *et_tokenizer_token_text(const et_tokenizer *t, int32_t id, size_t *len);

#endif
