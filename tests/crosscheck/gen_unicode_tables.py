#!/usr/bin/env python3
"""Writes data/unicode_tables.c: the Unicode facts the tokenizer needs, as HF `tokenizers`
itself sees them (not as some Unicode version says they should be).

Run:  /opt/xc/bin/python tests/crosscheck/gen_unicode_tables.py [--out data/unicode_tables.c]

Why probe HF instead of reading the UCD: parity is with what `tokenizers` does, and its
parts disagree with each other and with Python about the Unicode version. The pre-tokenizer
regexes run on Oniguruma (newer tables than Python 3.11's 14.0: 9272 more letters), the NFC
normalizer uses the `unicode-normalization-alignments` crate (older tables: e.g. U+07FD,
added in Unicode 11, has combining class 0 there), and added-token `single_word` uses the
Rust `regex` crate's `\\w`. So every table below is measured on the installed `tokenizers`,
code point by code point, over all of U+0000..U+10FFFF except the surrogates:

  L, N, WS   which code points Oniguruma's \\p{L}, \\p{N}, \\s match (Split pre-tokenizer)
  WORD       Rust regex \\w (AddedToken.single_word), probed through single_word matching
  ccc        canonical combining class: Python's value where HF treats the mark as a
             non-starter (probed by canonical reordering), else 0
  decomp     canonical decomposition, one level (Python's mapping, kept only where HF's NFD
             decomposes the code point; the full expansion is checked equal to HF's NFD)
  comp       primary composites: pairs (a, b) with HF NFC(a b) == the composite
  NFC_UNSTABLE  NFC may change a text containing it: HF NFC changes it alone, or ccc != 0,
             or it is the second half of a composition (quick-check "No" or "Maybe")

The (?i:...) contraction letters are checked too: only ASCII case pairs plus U+017F (long s,
case-folds to s) match; the C splitter hard-codes that and this script fails if it changes.
Hangul syllables are algorithmic (not in the tables); the C code computes them.
"""
import argparse
import os
import sys
import unicodedata

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, models
from tokenizers import normalizers as nm
from tokenizers import pre_tokenizers as pt

SBASE, LBASE, VBASE, TBASE = 0xAC00, 0x1100, 0x1161, 0x11A7
LCOUNT, VCOUNT, TCOUNT = 19, 21, 28
SCOUNT = LCOUNT * VCOUNT * TCOUNT

ALL = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def is_hangul_syllable(c):
    return SBASE <= c < SBASE + SCOUNT


def onig_matches(pattern):
    """Code points the Oniguruma regex `pattern` matches, one character at a time."""
    split = pt.Split(Regex(pattern), behavior="removed")
    text = "".join(map(chr, ALL))
    covered = bytearray(len(text))
    for _, (a, b) in split.pre_tokenize_str(text):
        covered[a:b] = b"\x01" * (b - a)
    return {ALL[i] for i in range(len(text)) if not covered[i]}


def rust_word_chars():
    """Code points Rust's regex \\w matches: a single_word added token right after the code
    point is only matched when the code point is not a word character."""
    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.add_tokens([AddedToken("@@", single_word=True)])
    aid = tok.token_to_id("@@")
    encs = tok.encode_batch([chr(c) + "@@" for c in ALL], add_special_tokens=False)
    return {c for c, e in zip(ALL, encs) if aid not in e.ids}


def hf_map(normalizer, strings):
    """normalizer applied to each string separately (joined with U+0001, a starter that
    never composes, and split again)."""
    assert not any("\x01" in s for s in strings)
    out = normalizer.normalize_str("".join("\x01" + s for s in strings)).split("\x01")[1:]
    assert len(out) == len(strings)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "data", "unicode_tables.c"))
    args = ap.parse_args()

    L, N, WS = onig_matches(r"\p{L}"), onig_matches(r"\p{N}"), onig_matches(r"\s")
    WORD = rust_word_chars()
    for letter in "strevmld":
        got = onig_matches("(?i:%s)" % letter)
        want = {ord(letter), ord(letter.upper())} | ({0x17F} if letter == "s" else set())
        if got != want:
            sys.exit("(?i:%s) matches %s: the C contraction matcher must be updated" % (letter, sorted(map(hex, got))))

    # --- normalization data -------------------------------------------------------
    cps = [c for c in ALL if c != 1]
    nfd = dict(zip(cps, hf_map(nm.NFD(), [chr(c) for c in cps])))
    nfc = dict(zip(cps, hf_map(nm.NFC(), [chr(c) for c in cps])))
    nfd[1] = nfc[1] = "\x01"

    decomp = {}
    for c in ALL:
        if nfd[c] == chr(c) or is_hangul_syllable(c):
            continue
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<"):
            sys.exit("U+%04X: HF decomposes it but Python has no canonical mapping" % c)
        decomp[c] = [int(x, 16) for x in d.split()]

    def full(c):
        return "".join(full(x) for x in decomp[c]) if c in decomp else chr(c)

    # ccc: Python's value where HF reorders the mark; probe with U+0301 (230) before and
    # U+0334 (1) after: a mark with 0 < ccc < 230 moves before U+0301, one with ccc > 1
    # moves after U+0334.
    cand = [c for c in ALL if unicodedata.combining(chr(c)) and c not in decomp and c != 1]
    a = hf_map(nm.NFD(), ["\u0301" + chr(c) for c in cand])
    b = hf_map(nm.NFD(), [chr(c) + "\u0334" for c in cand])
    ccc = {}
    for c, ra, rb in zip(cand, a, b):
        moved = ra == chr(c) + "\u0301" or rb == "\u0334" + chr(c)
        if moved:
            ccc[c] = unicodedata.combining(chr(c))
    # Every ccc is caught by one probe: 230 moves after U+0334, 1 moves before U+0301.
    # Check the tables reproduce HF's NFD of every code point (decompose fully, then
    # stable-sort each run of non-starters by ccc).
    def nfd_model(c):
        seq = [ord(x) for x in full(c)] if not is_hangul_syllable(c) else hangul(c)
        i = 0
        while i < len(seq):
            if ccc.get(seq[i], 0) == 0:
                i += 1
                continue
            j = i
            while j < len(seq) and ccc.get(seq[j], 0) != 0:
                j += 1
            seq[i:j] = sorted(seq[i:j], key=lambda x: ccc[x])
            i = j
        return "".join(map(chr, seq))

    def hangul(c):
        s_ = c - SBASE
        out = [LBASE + s_ // (VCOUNT * TCOUNT), VBASE + (s_ % (VCOUNT * TCOUNT)) // TCOUNT]
        if s_ % TCOUNT:
            out.append(TBASE + s_ % TCOUNT)
        return out

    for c in ALL:
        if nfd_model(c) != nfd[c]:
            sys.exit("U+%04X: decomposition tables do not reproduce HF NFD" % c)

    comp = {}
    for c, d in decomp.items():
        if len(d) == 2 and hf_map(nm.NFC(), [chr(d[0]) + chr(d[1])])[0] == chr(c):
            comp[(d[0], d[1])] = c
    seconds = {b_ for (_, b_) in comp} | set(range(VBASE, VBASE + VCOUNT)) | set(range(TBASE + 1, TBASE + TCOUNT))

    unstable = {c for c in ALL if nfc[c] != chr(c) or c in ccc or c in seconds}

    # --- class runs ---------------------------------------------------------------
    bits = {}
    for name, bit, s in (("L", 1, L), ("N", 2, N), ("WS", 4, WS), ("WORD", 8, WORD), ("NFC_UNSTABLE", 16, unstable)):
        for c in s:
            bits[c] = bits.get(c, 0) | bit
    runs = []
    prev = None
    for c in range(0x110000):
        v = bits.get(c, 0)
        if v != prev:
            runs.append((c, v))
            prev = v
    ccc_runs = []
    prev = None
    for c in range(0x110000):
        v = ccc.get(c, 0)
        if v != prev:
            ccc_runs.append((c, v))
            prev = v

    dkeys = sorted(decomp)
    pool, offs = [], []
    for c in dkeys:
        offs.append(len(pool))
        pool.extend(decomp[c])
    ckeys = sorted(comp)

    def rows(items, per, fmt):
        items = list(items)
        return "\n".join("    " + " ".join(fmt(x) + "," for x in items[i:i + per]) for i in range(0, len(items), per))

    with open(args.out, "w") as f:
        f.write("/* GENERATED by tests/crosscheck/gen_unicode_tables.py from HF tokenizers %s\n"
                " * (Python %s, unicodedata %s): do not edit, re-run the script.\n"
                " * The tables are what tokenizers does, probed code point by code point;\n"
                " * data/unicode.h says what each one means. */\n"
                % (tokenizers.__version__, sys.version.split()[0], unicodedata.unidata_version))
        f.write('#include "data/unicode.h"\n\n')
        f.write("const uint8_t et_uni_ascii_bits[128] = {\n%s\n};\n\n" % rows((bits.get(c, 0) for c in range(128)), 16, str))
        f.write("/* %d runs: class bits (ET_UNI_*) from each start code point to the next. */\n" % len(runs))
        f.write("const uint32_t et_uni_class_start[] = {\n%s\n};\n" % rows((r[0] for r in runs), 10, lambda x: "0x%X" % x))
        f.write("const uint8_t et_uni_class_bits[] = {\n%s\n};\n" % rows((r[1] for r in runs), 20, str))
        f.write("const size_t et_uni_class_runs = %d;\n\n" % len(runs))
        f.write("/* %d runs of canonical combining class. */\n" % len(ccc_runs))
        f.write("const uint32_t et_uni_ccc_start[] = {\n%s\n};\n" % rows((r[0] for r in ccc_runs), 10, lambda x: "0x%X" % x))
        f.write("const uint8_t et_uni_ccc_value[] = {\n%s\n};\n" % rows((r[1] for r in ccc_runs), 20, str))
        f.write("const size_t et_uni_ccc_runs = %d;\n\n" % len(ccc_runs))
        f.write("/* %d one-level canonical decompositions (Hangul excluded): code point, offset\n"
                " * into the pool, length. */\n" % len(dkeys))
        f.write("const uint32_t et_uni_decomp_cp[] = {\n%s\n};\n" % rows(dkeys, 10, lambda x: "0x%X" % x))
        f.write("const uint16_t et_uni_decomp_off[] = {\n%s\n};\n" % rows(offs, 14, str))
        f.write("const uint8_t et_uni_decomp_len[] = {\n%s\n};\n" % rows((len(decomp[c]) for c in dkeys), 24, str))
        f.write("const uint32_t et_uni_decomp_pool[] = {\n%s\n};\n" % rows(pool, 10, lambda x: "0x%X" % x))
        f.write("const size_t et_uni_decomp_count = %d;\n\n" % len(dkeys))
        f.write("/* %d primary composites: key (first << 21 | second), sorted, and the composite. */\n" % len(ckeys))
        f.write("const uint64_t et_uni_comp_key[] = {\n%s\n};\n" % rows(((x << 21) | y for x, y in ckeys), 6, lambda x: "0x%XULL" % x))
        f.write("const uint32_t et_uni_comp_value[] = {\n%s\n};\n" % rows((comp[k] for k in ckeys), 10, lambda x: "0x%X" % x))
        f.write("const size_t et_uni_comp_count = %d;\n" % len(ckeys))
    print("wrote %s: %d class runs, %d ccc runs, %d decompositions, %d compositions; "
          "L %d N %d WS %d WORD %d unstable %d"
          % (args.out, len(runs), len(ccc_runs), len(dkeys), len(ckeys), len(L), len(N), len(WS), len(WORD), len(unstable)))


if __name__ == "__main__":
    main()
