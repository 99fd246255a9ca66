#!/usr/bin/env python3
"""Chat-template and prompt/response fixtures: the token ids and loss masks HF gives for
records that `ehrtune ingest` renders (data/render.c). The C test (tests/unit/
test_render.c) renders the same records and must match ids and masks exactly.

Run:  /opt/xc/bin/python tests/crosscheck/make_chat_fixtures.py [--out tests/fixtures/tokenizers/chat_render.json]

References:
  messages  tokenizer.apply_chat_template(messages, chat_template=T) with T the model's
            official template (Meta-Llama-3-8B-Instruct, Llama-2-7b-chat-hf and
            Qwen2-7B-Instruct tokenizer_config.json "chat_template", written out below);
            the mask from return_assistant_tokens_mask with the same template wrapped
            in {% generation %} around what is learned (an assistant's content and its
            end-of-turn token); the wrapped template must render the same text.
  prompt/response  TRL's SFT convention: ids of prompt + response encoded together, the
            tokens past the longest prefix they share with the prompt's own ids are
            targets; the document's BOS in front (the first id the tokenizer's
            post-processor adds, as data/render.c finds it) and its EOS at the end (a
            target), once each.
Content never holds special-token text here: HF's templates would parse it into control
tokens, which ehrtune deliberately does not (docs/ingest.md).
"""
import argparse
import json
import os

import tokenizers
import transformers
from transformers import PreTrainedTokenizerFast

FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures", "tokenizers")

LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
          "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
          "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
          "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}")
LLAMA3_GEN = ("{% for message in messages %}{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
              "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
              "{% if message['role'] == 'assistant' %}{% generation %}"
              "{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
              "{% else %}{{ message['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor %}")
LLAMA2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
          "{% set system_message = messages[0]['content'] %}{% else %}"
          "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
          "{% for message in loop_messages %}"
          "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
          "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
          "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
          "{% else %}{% set content = message['content'] %}{% endif %}"
          "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
          "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
          "{% endif %}{% endfor %}")
LLAMA2_GEN = LLAMA2.replace("{{ ' '  + content.strip() + ' ' + eos_token }}",
                            "{% generation %}{{ ' '  + content.strip() + ' ' + eos_token }}"
                            "{% endgeneration %}")
QWEN2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
         "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
         "{% endfor %}")
QWEN2_GEN = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
             "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
             "{{ '<|im_start|>' + message['role'] + '\n' }}{% if message['role'] == 'assistant' %}"
             "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
             "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\n' }}{% endfor %}")

# template name -> (official, wrapped, bos, eos) ; tokenizer fixtures using it
TEMPLATES = {
    "llama3": (LLAMA3, LLAMA3_GEN, "<|begin_of_text|>", "<|eot_id|>", ["llama3-bytelevel"]),
    "llama2": (LLAMA2, LLAMA2_GEN, "<s>", "</s>", ["llama2-sentencepiece", "mistral-metaspace"]),
    "chatml": (QWEN2, QWEN2_GEN, None, "<|im_end|>", ["qwen2-bytelevel"]),
}

NBSP, FS = "\u00a0", "\u001c"
CONVERSATIONS = [
    [{"role": "user", "content": "Summarize the note."},
     {"role": "assistant", "content": "Patient stable."}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "List the problems:\nHTN, DM2."},
     {"role": "assistant", "content": "1. Hypertension (I10)\n2. Type 2 diabetes (E11.9)"}],
    [{"role": "system", "content": "You are a clinical summarizer."},
     {"role": "user", "content": "  BP 140/90 mmHg, HR 88.  "},
     {"role": "assistant", "content": "Elevated blood pressure.\n"},
     {"role": "user", "content": "And the heart rate?"},
     {"role": "assistant", "content": "  Normal. "}],
    [{"role": "system", "content": "Answer in one line."},
     {"role": "user", "content": NBSP + "Summarize the note." + NBSP},
     {"role": "assistant", "content": "Summarize" + FS}],
    [{"role": "system", "content": "Plain."},
     {"role": "user", "content": "\nSummarize\n\n"},
     {"role": "assistant", "content": "\nStable overnight.\n"}],
    [{"role": "system", "content": "x"},
     {"role": "user", "content": "Dose?"},
     {"role": "assistant", "content": "Metformin 500 mg BID."},
     {"role": "user", "content": "Thanks."}],
]

PROMPT_RESPONSE = [
    ("Summarize the note:\n", "Patient stable."),
    ("Summarize the note:", " Patient stable."),
    ("BP 140/9", "0 mmHg"),
    ("Problems? ", "HTN; DM2."),
]


def load(fix, bos=None, eos=None):
    kw = {}
    if bos:
        kw["bos_token"] = bos
    if eos:
        kw["eos_token"] = eos
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(FIX, fix, "tokenizer.json"), **kw)


def chat_case(template, fix, messages):
    official, wrapped, bos, eos, _ = TEMPLATES[template]
    tok = load(fix, bos, eos)
    text = tok.apply_chat_template(messages, chat_template=official, tokenize=False)
    assert tok.apply_chat_template(messages, chat_template=wrapped, tokenize=False) == text
    out = tok.apply_chat_template(messages, chat_template=wrapped, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    ids = list(out["input_ids"])
    assert ids == list(tok.apply_chat_template(messages, chat_template=official, tokenize=True,
                                               return_dict=True)["input_ids"])
    return {"tokenizer": fix, "template": template, "record": {"messages": messages},
            "text": text, "ids": ids, "mask": [int(m) for m in out["assistant_masks"]]}


def document_eos(tok):
    # data/render.c's choice: the first of these the tokenizer has
    vocab = tok.get_vocab()
    for t in ("<|end_of_text|>", "</s>", "<|endoftext|>", "<|im_end|>"):
        if t in vocab:
            return vocab[t]
    return None


def prompt_response_case(fix, prompt, response):
    tok = load(fix)
    full = tok(prompt + response, add_special_tokens=False)["input_ids"]
    pre = tok(prompt, add_special_tokens=False)["input_ids"]
    k = 0
    while k < len(full) and k < len(pre) and full[k] == pre[k]:
        k += 1
    ids, mask = list(full), [0] * k + [1] * (len(full) - k)
    specials = tok("", add_special_tokens=True)["input_ids"]
    if specials and specials[0] != document_eos(tok):  # a BOS, not only an appended EOS
        ids, mask = [specials[0]] + ids, [0] + mask
    eos = document_eos(tok)
    if eos is not None:
        ids.append(eos)
        mask.append(1)
    return {"tokenizer": fix, "template": "none", "record": {"prompt": prompt, "response": response},
            "ids": ids, "mask": mask}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(FIX, "chat_render.json"))
    a = ap.parse_args()
    cases = []
    for name, (_, _, _, _, fixes) in TEMPLATES.items():
        for fix in fixes:
            for conv in CONVERSATIONS:
                if name == "chatml" and conv[0]["role"] != "system":
                    continue  # Qwen2's default system prompt is not added (docs/ingest.md)
                cases.append(chat_case(name, fix, conv))
    for fix in ("llama3-bytelevel", "llama2-sentencepiece", "mistral-metaspace", "qwen2-bytelevel"):
        for p, r in PROMPT_RESPONSE:
            cases.append(prompt_response_case(fix, p, r))
    doc = {"transformers_version": transformers.__version__,
           "tokenizers_version": tokenizers.__version__, "cases": cases}
    with open(a.out, "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {a.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
