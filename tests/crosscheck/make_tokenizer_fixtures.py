#!/usr/bin/env python3
"""Tokenizer fixtures: small tokenizers trained with HF `tokenizers` in each family's
configuration, and the ids HF gives for hard texts. The C tests only read them.

Run:  /opt/xc/bin/python tests/crosscheck/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizers]

Writes <out>/<family>/tokenizer.json and <out>/<family>/expected.json for

  llama3-bytelevel      Llama 3: Split(Meta's regex) + ByteLevel, ignore_merges, BOS by template
  demo-bytelevel        the same, 3000 tokens: the demo's tokenizer
  qwen2-bytelevel       Qwen2: NFC, Split(Qwen2 regex) + ByteLevel, ByteLevel post-processor
  llama2-sentencepiece  Llama 2 (legacy form): Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer,
                        byte_fallback, <0xXX> tokens, merges stored as "a b" strings
  mistral-metaspace     the same model, non-legacy form: Metaspace(prepend_scheme first,
                        split false); BOS + EOS template; Metaspace decoder
  gpt2-roberta          GPT-2 ByteLevel(use_regex, add_prefix_space) + RobertaProcessing;
                        <mask> with lstrip, a non-special normalized single_word token
  edge-bpe              BPE options the others do not use: continuing_subword_prefix,
                        end_of_word_suffix, unk without fuse, literal Split patterns with
                        every behavior and invert, NFC + Replace normalizers, no decoder

expected.json: {"family", "tokenizers_version", "vocab_size", "cases": [...]}; a case has
"name", "text", "ids" (add_special_tokens=False),
"ids_special" (True), "ids_split_special" (encode_special_tokens=True, add_special False),
"decoded" (decode(ids, skip_special_tokens=False)), "decoded_special" (decode(ids_special,
False)), "decoded_special_skip" (decode(ids_special, True)).

Cases: "hard" (tests/fixtures/tokenizers/hard.txt), short edge cases, and 100 random texts
per family drawn from an alphabet of troublemakers (seeded). Each tokenizer.json is
reloaded with Tokenizer.from_file before any id is recorded, so the references are those
of the committed file.
"""
import argparse
import json
import os
import random
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
                   "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]

# ------------------------------------------------------------------ synthetic notes ---

CONDITIONS = ["hypertension", "type 2 diabetes mellitus", "CKD stage 3a", "COPD exacerbation", "CHF (HFrEF)",
              "atrial fibrillation", "community-acquired pneumonia", "UTI", "sepsis", "DVT", "asthma",
              "hyperlipidemia", "GERD", "osteoarthritis", "major depressive disorder", "anemia", "AKI",
              "cellulitis", "migraine", "hypothyroidism", "NSTEMI", "pancreatitis", "COVID-19"]
MEDS = [("metoprolol", "25 mg", "PO BID"), ("lisinopril", "10 mg", "PO daily"), ("metformin", "500 mg", "PO BID"),
        ("atorvastatin", "40 mg", "PO qhs"), ("apixaban", "5 mg", "PO BID"), ("furosemide", "40 mg", "IV q12h"),
        ("insulin glargine", "20 units", "SC qhs"), ("ceftriaxone", "1 g", "IV q24h"), ("albuterol", "2 puffs", "INH q4h PRN"),
        ("acetaminophen", "650 mg", "PO q6h PRN"), ("ASA", "81 mg", "PO qd"), ("levothyroxine", "75 mcg", "PO qAM"),
        ("pantoprazole", "40 mg", "PO daily"), ("heparin", "5000 units", "SC q8h"), ("vancomycin", "1.25 g", "IV q12h")]
ABBREV = ["pt", "hx", "h/o", "c/o", "s/p", "r/o", "w/u", "f/u", "SOB", "CP", "N/V", "BID", "TID", "PRN", "NPO",
          "WNL", "NAD", "RRR", "CTAB", "A&O x3", "ROS", "PMH", "PSH", "HPI", "ED", "ICU", "d/c'd", "pt's"]
NAMES = ["Smith", "García", "Müller", "O'Neil", "Nguyễn", "Zoë", "José", "Łukasz", "Dvořák", "Søren", "Jean-Luc"]
SECTIONS = ["HPI", "PMH", "Medications", "Allergies", "Vitals", "Exam", "Labs", "Assessment", "Plan"]
# Narrative sentences, so the tokenizers have a few thousand merges to learn.
SUBJECTS = ["The patient", "She", "He", "Patient", "The daughter", "Nursing staff", "Cardiology", "The resident",
            "Physical therapy", "Pharmacy", "The attending", "Family", "Wife", "Husband", "The team", "Social work"]
VERBS = ["reports", "denies", "describes", "was noted to have", "complains of", "endorses", "developed",
         "was started on", "tolerated", "was evaluated for", "recommends", "discussed", "requested", "reviewed",
         "was counseled regarding", "will follow up on", "expressed concern about", "was transferred for"]
OBJECTS = ["intermittent chest pressure radiating to the left arm", "worsening dyspnea on exertion",
           "productive cough with yellow sputum", "bilateral lower extremity edema", "orthopnea and PND",
           "generalized weakness and fatigue", "nausea without vomiting", "poor oral intake", "episodic palpitations",
           "a fall at home without head strike", "new onset confusion", "burning on urination", "abdominal pain",
           "right upper quadrant tenderness", "low back pain", "a pruritic rash", "blurred vision", "headache",
           "medication adherence", "the discharge plan", "goals of care", "smoking cessation", "dietary changes",
           "home oxygen requirements", "insulin teaching", "anticoagulation risks and benefits", "echocardiogram results",
           "CT chest with contrast", "renal ultrasound", "blood cultures", "urinalysis", "chest x-ray findings",
           "ECG showing sinus tachycardia", "troponin trend", "lactate clearance", "electrolyte replacement",
           "wound care instructions", "outpatient rehabilitation", "skilled nursing facility placement"]
MODIFIERS = ["since yesterday", "for the past three days", "over several weeks", "this morning", "overnight",
             "after dinner", "despite treatment", "with some improvement", "without relief", "at rest",
             "on exertion", "per family", "as previously documented", "which is chronic", "that resolved spontaneously",
             "and is otherwise asymptomatic", "in the setting of missed doses", "following the procedure"]


ROOTS = ["cardi", "nephr", "hepat", "gastr", "pneum", "oste", "arthr", "derm", "neur", "enter", "col", "cyst",
         "encephal", "mening", "my", "angi", "phleb", "thromb", "lymph", "splen", "pancreat", "cholecyst", "append",
         "laryng", "pharyng", "rhin", "ot", "ophthalm", "hyster", "mast", "prostat", "thyroid", "aden", "cyt", "hem",
         "lip", "glyc", "bronch", "trache", "esophag", "duoden", "ile", "sigmoid", "proct", "ur", "ureter", "pyel",
         "glomerul", "vas", "aort", "ather", "bili", "chondr", "fasci", "ten", "synov", "spondyl", "crani", "myel"]
SUFFIXES = ["itis", "ectomy", "otomy", "ostomy", "oplasty", "ology", "opathy", "algia", "emia", "oma", "osis",
            "oscopy", "omegaly", "ogram", "orrhaphy", "ocele", "olysis", "ostasis"]


def term(rng):
    return rng.choice(ROOTS) + rng.choice(SUFFIXES)


def narrative(rng):
    if rng.random() < 0.4:
        return "%s %s %s, s/p %s in 20%02d." % (rng.choice(SUBJECTS), rng.choice(VERBS), term(rng), term(rng),
                                               rng.randint(0, 25))
    return "%s %s %s %s." % (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(MODIFIERS))


EXTRAS = ["Interpreter used (日本語).", "Family speaks 한국어.", "Pt says \"I'm fine\" 🙂.", "Temp 38.2°C.",
          "Na⁺ 134, K⁺ 3.2.", "Given ½ tab.", "Pain 7/10 → 3/10.", "≥ 2 episodes/day."]


def synthetic_note(rng):
    age = rng.randint(18, 95)
    sex = rng.choice(["M", "F"])
    cond = rng.sample(CONDITIONS, 3)
    lines = ["%s: %d yo %s w/ %s, %s, presenting with %s." % (rng.choice(SECTIONS[:1]), age, sex, cond[0], cond[1],
                                                            rng.choice(["SOB", "CP", "fever", "cough", "N/V", "dizziness"]))]
    lines.append("Seen by Dr. %s on %d/%d/20%02d." % (rng.choice(NAMES), rng.randint(1, 12), rng.randint(1, 28), rng.randint(10, 25)))
    lines.append("Vitals: BP %d/%dmmHg, HR %d bpm, RR %d, T %.1f°C, SpO2 %d%% on %s." % (
        rng.randint(90, 190), rng.randint(50, 110), rng.randint(45, 140), rng.randint(10, 32), rng.uniform(35.5, 40.2),
        rng.randint(84, 100), rng.choice(["RA", "2L NC", "4L NC", "BiPAP"])))
    lines.append("Labs: Na %d mEq/L, K %.1f, Cr %.2f mg/dL, WBC %.1f x10^9/L, Hgb %.1f g/dL, HbA1c %.1f%%." % (
        rng.randint(125, 150), rng.uniform(2.8, 6.0), rng.uniform(0.5, 4.0), rng.uniform(2, 25), rng.uniform(6, 17),
        rng.uniform(4.5, 12)))
    lines.extend(narrative(rng) for _ in range(rng.randint(1, 4)))
    lines.append("Meds:")
    for name, dose, freq in rng.sample(MEDS, rng.randint(2, 6)):
        lines.append("- %s %s %s" % (name, dose, freq))
    lines.append("Assessment/Plan: %s; %s. %s %s." % (cond[2], " ".join(rng.sample(ABBREV, 4)),
                                                      rng.choice(["Continue", "Start", "Hold", "Titrate"]),
                                                      rng.choice(MEDS)[0]))
    if rng.random() < 0.3:
        lines.append(rng.choice(EXTRAS))
    sep = rng.choice(["\n", "\n", "\n\n", "\r\n"])
    return sep.join(lines) + "\n"


def synthetic_notes(n, seed):
    rng = random.Random(seed)
    return [synthetic_note(rng) for _ in range(n)]

# --------------------------------------------------------------------- hard texts ---

HARD_TEXT = (
    "HPI: Pt's BP 140/90mmHg, HR 88bpm, T 37.8°C, SpO2 97% on RA. Wt 72.5kg; BMI 24.1 kg/m².\n"
    "Meds: metoprolol 25mg PO BID, ASA 81 mg qd, lisinopril 10 mg/day — d/c'd 2023-04-01 @ 08:30.\n"
    "Labs: Na 138 mEq/L, K+ 4.1, Cr 1.02 mg/dL, eGFR >60, WBC 11.2×10⁹/L, HbA1c 6.5%, pH 7.35–7.45.\n"
    "He didn't/DIDN'T want it; she'll, we're, they've, I'm, it'd, you'LL, 'S, 'ſ, O'Neil's, rock'n'roll.\n"
    "Assessment:\tHTN, T2DM, CKD stage 3a.\t\tPlan: f/u 2 wks.\n"
    "Multiple   spaces   and trailing spaces   \n\n\r\n\r\n   \n"
    "Accented: café, naïve, Müller, São Paulo, Ærø, Dvořák, Zoë; decomposed: cafe\u0301, Zoe\u0308, "
    "A\u030a vs \u00c5 vs \u212b, e\u0301\u0327 q\u0323\u0307, ﬁle.\n"
    "CJK: 患者は発熱と咳を訴えた。血圧は１４０／９０。한국어: 환자는 두통을 호소했다 (\u1100\u1161\u11a8).\n"
    "Emoji: 🤒😷👩🏽‍⚕️❤️ 🇺🇸 ✅ 🧪💉\n"
    "Scripts: Привет, Γειά σου, مرحبا ١٢٣٤, שלום, हिन्दी १२३, ไทย, ქართული.\n"
    "Numbers: 1234567 12,345.678 3.14159 -0.5 1e-6 ½ ² ³ Ⅻ ① 0x1F 007.\n"
    "Lookalikes: <|begin_of_text|><|eot_id|> <|eot_id|x <|start_header_id|>user<|end_header_id|>\n"
    "<s> </s> <unk> <|im_start|>assistant<|im_end|> <|endoftext|> <0x41> <mask>  <mask> [PHI] x[PHI] [UNK] <pad>\n"
    "Whitespace: nbsp\u00a0here, nel\u0085there, ideo\u3000space, line\u2028sep, para\u2029sep, "
    "zw\u200bsp, tab\tend, vt\x0bff\x0c, em\u2003space, nnbsp\u202f, fs\x1cgs\x1d, bom\ufeff, shy\u00ad.\n"
    "Control: \x01\x7f\x1b[0m ▁already▁marked ##sub</w> a-b-c a/b/c 1.2.3 x,,y\n"
    "    indented line\n"
    "  ends with spaces and newlines  \n\n"
)

EDGE_CASES = [
    ("empty", ""), ("space", " "), ("spaces", "   "), ("newline", "\n"), ("crlf", "\r\n"), ("tab_word", "\t\tx"),
    ("lead_spaces", "   x"), ("trail_spaces", "x   "), ("space_word", " hello"), ("word", "hello"),
    ("contraction", "'s"), ("contraction_upper", "'S"), ("long_s", "'ſ"), ("contraction_re", "'re'RE're"),
    ("digits", "1234567890"), ("eot", "<|eot_id|>"), ("eot_twice", "<|eot_id|><|eot_id|>"),
    ("eot_inside", "a<|eot_id|>b"), ("bos_space", "<s> hi"), ("metaspace_char", "▁hello ▁"),
    ("byte_token_text", "<0x0A>"), ("long_word", "pneumonoultramicroscopicsilicovolcanoconiosis"),
    ("emoji", "🤒"), ("combining_first", "\u0301\u0301a"), ("jamo", "\u1100\u1161\u11a8"),
    ("reorder", "e\u0301\u0327"), ("nul", "a\x00b"), ("mask_spaces", "x   <mask>   y"), ("phi_word", "[PHI]x [PHI] y[PHI]"),
    ("only_specials", "<s></s><unk>"), ("im_tokens", "<|im_start|>user\nhi<|im_end|>\n"),
]

POOLS = [
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), list("0123456789"), [" "] * 3, ["  ", "\t", "\n", "\r\n", "\r"],
    ["'", "'s", "'S", "'t", "'re", "'Ve", "'ll", "'LL", "'d", "'m", "'ſ", "ſ"], list(".,;:!?-/()[]{}<>|@#$%^&*_+=~`\"\\"),
    ["é", "ñ", "ü", "Å", "ø", "ß", "ﬁ", "e\u0301", "\u0301", "\u0327", "\u0308", "\u0323", "\u0345", "\u05b0"],
    ["患", "者", "発", "熱", "。", "１", "２", "한", "국", "\u1100", "\u1161", "\u11a8"],
    ["🤒", "😷", "👩🏽‍⚕️", "❤️", "🇺🇸", "\u200d", "\ufe0f"],
    ["٣", "४", "²", "½", "Ⅻ", "①", "１"],
    ["\u00a0", "\u0085", "\u3000", "\u2028", "\u2029", "\u200b", "\u2003", "\u202f", "\x0b", "\x0c", "\x1c", "\ufeff", "\u00ad"],
    ["<|eot_id|>", "<|begin_of_text|>", "<s>", "</s>", "<unk>", "<mask>", "[PHI]", "<|im_end|>", "<|endoftext|>", "<0x41>", "▁", "##", "</w>"],
    ["-", "/", ".", ","],
]


def random_text(rng):
    parts = []
    for _ in range(rng.randint(1, 40)):
        pool = rng.choice(POOLS)
        parts.append(rng.choice(pool))
    return "".join(parts)

# ---------------------------------------------------------------------- training ---


def trained_vocab_merges(tok, texts, trainer):
    tok.train_from_iterator(texts, trainer)
    m = json.loads(tok.to_str())["model"]
    return m["vocab"], [tuple(x) if isinstance(x, list) else tuple(x.split(" ")) for x in m["merges"]]


def bytelevel_tokenizer(texts, vocab_size, regex, ignore_merges, min_frequency=2):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    vocab, merges = trained_vocab_merges(tok, texts, trainer)
    out = Tokenizer(models.BPE(vocab, merges, ignore_merges=ignore_merges))
    out.pre_tokenizer = tok.pre_tokenizer
    out.decoder = decoders.ByteLevel()
    return out


def make_llama3(texts, vocab_size, min_frequency=2):
    tok = bytelevel_tokenizer(texts, vocab_size, LLAMA3_RE, ignore_merges=True, min_frequency=min_frequency)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok


def make_qwen2(texts):
    tok = bytelevel_tokenizer(texts, 2000, QWEN2_RE, ignore_merges=False)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def sentencepiece_model(texts, vocab_size=1500):
    """Vocab as Llama 2 lays it out: <unk> <s> </s>, the 256 <0xXX> byte tokens, then the
    merged tokens; the alphabet is limited so rare characters fall back to bytes."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, limit_alphabet=80)
    vocab, merges = trained_vocab_merges(tok, texts, trainer)
    out = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        out["<0x%02X>" % b] = 3 + b
    for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
        if t not in out:
            out[t] = len(out)
    return out, merges


def with_specials(tok, names):
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in names])
    return tok


def make_llama2(vocab, merges):
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    with_specials(tok, ["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def make_mistral(vocab, merges):
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first"),
                                     decoders.Fuse()])
    with_specials(tok, ["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B </s>",
                                                       special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


def make_gpt2_roberta(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    vocab, merges = trained_vocab_merges(tok, texts, trainer)
    out = Tokenizer(models.BPE(vocab, merges))
    out.pre_tokenizer = tok.pre_tokenizer
    out.decoder = decoders.ByteLevel()
    out.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<s>", "<pad>", "</s>", "<unk>"]])
    out.add_special_tokens([AddedToken("<mask>", special=True, normalized=False, lstrip=True)])
    out.add_tokens([AddedToken("[PHI]", special=False, normalized=True, single_word=True, rstrip=True)])
    out.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=True)
    return out


def make_edge(texts):
    norm = normalizers.Sequence([normalizers.NFC(), normalizers.Replace("\t", " ")])
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="removed"),
        pre_tokenizers.Split("-", behavior="merged_with_next"),
        pre_tokenizers.Split("/", behavior="merged_with_previous"),
        pre_tokenizers.Split(".", behavior="contiguous"),
        pre_tokenizers.Split(",", behavior="merged_with_previous", invert=True)])
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer, tok.pre_tokenizer = norm, pre
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, show_progress=False, limit_alphabet=75,
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>", special_tokens=["[UNK]"])
    vocab, merges = trained_vocab_merges(tok, texts, trainer)
    out = Tokenizer(models.BPE(vocab, merges, unk_token="[UNK]", fuse_unk=False, continuing_subword_prefix="##",
                               end_of_word_suffix="</w>"))
    out.normalizer, out.pre_tokenizer = norm, pre
    out.add_special_tokens([AddedToken("[UNK]", special=True, normalized=False)])
    out.add_tokens([AddedToken("[PHI]", special=False, normalized=True, single_word=True),
                    AddedToken("<mask>", special=False, normalized=False, lstrip=True, rstrip=True)])
    return out

# ---------------------------------------------------------------------- recording ---


def legacy_merges(path):
    """Rewrites the merges of a tokenizer.json as "a b" strings (the form older files and
    the Llama 2 release use). Only valid when no token holds a space."""
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    ms = j["model"]["merges"]
    assert all(" " not in a and " " not in b for a, b in ms)
    j["model"]["merges"] = ["%s %s" % (a, b) for a, b in ms]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
        f.write("\n")


def record(tok, name, text):
    tok.encode_special_tokens = False
    ids = tok.encode(text, add_special_tokens=False).ids
    ids_special = tok.encode(text, add_special_tokens=True).ids
    tok.encode_special_tokens = True
    ids_split = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = False
    case = {"name": name}
    strings = dict(text=text, decoded=tok.decode(ids, skip_special_tokens=False),
                   decoded_special=tok.decode(ids_special, skip_special_tokens=False),
                   decoded_special_skip=tok.decode(ids_special, skip_special_tokens=True))
    case.update(ids=ids, ids_special=ids_special, ids_split_special=ids_split)
    for key, s in strings.items():  # C JSON readers stop at U+0000: such strings go as hex
        if "\x00" in s:
            case[key + "_hex"] = s.encode("utf-8").hex()
        else:
            case[key] = s
    return case


def write_family(out_dir, family, tok, legacy=False, n_random=100, seed=0):
    d = os.path.join(out_dir, family)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    tok.save(path, pretty=True)
    if legacy:
        legacy_merges(path)
    ref = Tokenizer.from_file(path)
    assert ref.to_str() == Tokenizer.from_str(open(path, encoding="utf-8").read()).to_str()
    rng = random.Random(1000 + seed)
    cases = [record(ref, "hard", HARD_TEXT)] + [record(ref, n, t) for n, t in EDGE_CASES]
    cases += [record(ref, "random_%03d" % i, random_text(rng)) for i in range(n_random)]
    exp = {"family": family, "tokenizers_version": tokenizers.__version__,
           "vocab_size": max(ref.get_vocab(with_added_tokens=True).values()) + 1, "cases": cases}
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(exp, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(path)
    assert size < 500_000, (family, size)
    print("%-22s vocab %5d  tokenizer.json %6.1f KB  hard text %4d ids" % (
        family, exp["vocab_size"], size / 1024, len(cases[0]["ids"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tokenizers"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "hard.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(HARD_TEXT)

    texts = synthetic_notes(3000, seed=1)
    write_family(out, "llama3-bytelevel", make_llama3(texts, 1500), seed=1)
    write_family(out, "demo-bytelevel", make_llama3(texts, 3000, min_frequency=1), seed=2)
    write_family(out, "qwen2-bytelevel", make_qwen2(texts), seed=3)
    vocab, merges = sentencepiece_model(texts)
    write_family(out, "llama2-sentencepiece", make_llama2(vocab, merges), legacy=True, seed=4)
    write_family(out, "mistral-metaspace", make_mistral(vocab, merges), seed=5)
    write_family(out, "gpt2-roberta", make_gpt2_roberta(texts), seed=6)
    write_family(out, "edge-bpe", make_edge(texts), seed=7)


if __name__ == "__main__":
    sys.exit(main())
