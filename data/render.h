/* From one JSONL record to training tokens and a loss mask (the text ingest path).
 *
 * A record carries exactly one of:
 *   "text"                  a note: every token is a target;
 *   "prompt" + "response"   instruction pair: the prompt is masked from the loss;
 *   "messages"              [{"role": "system"|"user"|"assistant", "content": ...}, ...]
 *                           rendered with a chat template; only assistant turns (and
 *                           their end-of-turn token) are targets.
 * and optionally "structured": {"vitals": {..}, "labs": {..}, "diagnoses": [..],
 * "medications": [..], ...}, serialised into text by the template of
 * et_render_structured and placed before the note (or the prompt, or the first user
 * message): this is where structured and unstructured EHR data meet.
 *
 * Text is encoded with special-token matching OFF (ET_TOK_SPLIT_SPECIAL), so a note
 * that happens to contain "<|eot_id|>" or "</s>" cannot inject a control token; the
 * template's control tokens are inserted by id. Error messages name the field, never
 * its content. */
#ifndef EHRTUNE_RENDER_H
#define EHRTUNE_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "data/error.h"
#include "data/tokenizer.h"

typedef struct cJSON cJSON;

typedef enum {
    ET_CHAT_NONE = 0, /* records with "messages" are refused */
    ET_CHAT_LLAMA3,   /* <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    ET_CHAT_LLAMA2,   /* <s>[INST] <<SYS>>\n..\n<</SYS>>\n\nuser [/INST] assistant </s> */
    ET_CHAT_CHATML,   /* <|im_start|>role\n...<|im_end|>\n (Qwen2) */
} et_chat_template;

int et_chat_template_parse(const char *name, et_chat_template *out, et_error *err);
const char *et_chat_template_name(et_chat_template t);

typedef struct {
    const et_tokenizer *tok;
    et_chat_template chat;
    /* Control tokens, resolved once by et_renderer_init (-1 = the tokenizer lacks it). */
    int32_t bos, eos;              /* document start / end (EOS appended to every document) */
    int32_t ctl[4];                /* template tokens, by template */
} et_renderer;

/* Resolves the template's control tokens in the tokenizer; an error names any token
 * the template needs and the tokenizer lacks. eos_token: the document end token's text
 * (NULL = the first of <|end_of_text|>, </s>, <|endoftext|>, <|im_end|> that exists;
 * none = documents end without one). */
int et_renderer_init(et_renderer *r, const et_tokenizer *tok, et_chat_template chat,
                     const char *eos_token, et_error *err);

/* Token ids and loss mask of one document, grown as needed; reuse across records. */
typedef struct {
    int32_t *ids;
    uint8_t *mask;
    size_t n, cap;
} et_doc;

void et_doc_free(et_doc *d);

/* Renders `record` into d (replacing its content). */
int et_render_record(et_doc *d, const et_renderer *r, const cJSON *record, et_error *err);

/* The structured block as text (malloc'd), e.g.
 *   "Structured data:\nVitals: BP 140/90 mmHg; HR 88.\nLabs: sodium 138; ...\n
 *    Diagnoses (ICD-10): E11.9, I10.\nMedications: metformin 500 mg BID.\n\n"
 * Known sections first in that order (vitals, labs, diagnoses, medications), then any
 * other key as "Key: ...". Objects become "name value; ...", arrays "a, b", numbers
 * exactly: integers below 2^53 as integers ("1234567"), others in the fewest
 * significant digits (up to 17) that read back as the same double ("4.1", "0.1",
 * "1e+300"). */
int et_render_structured(char **out, const cJSON *structured, et_error *err);

#endif
