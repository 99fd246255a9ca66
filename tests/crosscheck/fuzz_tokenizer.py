#!/usr/bin/env python3
"""Differential test of the C tokenizer (data/tokenizer*.c) against HF `tokenizers`.

Run:  /opt/xc/bin/python tests/crosscheck/fuzz_tokenizer.py [--texts 20000] [--exhaustive] [--seed 1]

Builds the C tokenizer as a shared library (cc, into a temp folder; needs libcjson-dev) and
calls it through ctypes. For every tokenizer below it encodes the same texts with both
implementations (add_special_tokens off and on, encode_special_tokens on) and decodes
the ids with both (skip_special_tokens off and on); any difference is printed and makes
the exit status 1.

Tokenizers:
  * every tests/fixtures/tokenizers/*/tokenizer.json;
  * probes that expose one component on its own:
      split-llama3 / split-qwen2 / split-gpt2 / bytelevel-regex — the pre-tokenizer regex
        followed by a BPE whose only token is a fused [UNK]: one id per pre-token, so the
        NUMBER of pieces is compared exactly (the fixtures' real vocabularies compare the
        pieces' content);
      nfc / metaspace-first — an NFC normalizer (resp. Metaspace pre-tokenizer) before a
        BPE made only of the 256 <0xXX> byte tokens: the ids ARE the normalized bytes;
      sp-converted — the llama2-sentencepiece vocabulary with merges made the way
        transformers converts a SentencePiece model (every split of every piece into two
        pieces, ordered by the piece's id), so several merges give the same token: the case
        where HF's queue can hold entries that are no longer current.
Texts: random strings from the troublemaker alphabet of make_tokenizer_fixtures.py (1 to
120 pieces) and every string of up to 3 characters over a 24-character alphabet. With
--exhaustive the probes (not the fixtures) also get every code point alone and in the
contexts "a_", " _", "_\\u0301" (4.4 M texts; about 10 minutes on one core).
"""
import argparse
import ctypes
import glob
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import make_tokenizer_fixtures as fx  # noqa: E402


class Err(ctypes.Structure):
    _fields_ = [("msg", ctypes.c_char * 1024)]


def build_library(tmp):
    srcs = sorted(glob.glob(os.path.join(ROOT, "data", "tokenizer*.c")) + glob.glob(os.path.join(ROOT, "data", "unicode*.c")))
    srcs.append(os.path.join(ROOT, "data", "error.c"))
    out = os.path.join(tmp, "libettok.so")
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, "-std=c11", "-O2", "-shared", "-fPIC", "-D_GNU_SOURCE", "-I", ROOT, "-o", out] + srcs + ["-lcjson"])
    return out


class CTokenizer:
    def __init__(self, lib, path):
        self.lib, self.t = lib, ctypes.c_void_p()
        e = Err()
        if lib.et_tokenizer_load(ctypes.byref(self.t), path.encode(), ctypes.byref(e)):
            raise RuntimeError(e.msg.decode())

    def encode(self, text, flags):
        b = text.encode("utf-8")
        ids, n, e = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_size_t(), Err()
        if self.lib.et_tokenizer_encode(self.t, b, len(b), flags, ctypes.byref(ids), ctypes.byref(n), ctypes.byref(e)):
            return "error: " + e.msg.decode()
        out = ids[:n.value]
        self.lib.free(ids)
        return out

    def decode(self, ids, skip):
        arr = (ctypes.c_int32 * max(1, len(ids)))(*ids)
        p, n, e = ctypes.c_void_p(), ctypes.c_size_t(), Err()
        if self.lib.et_tokenizer_decode(self.t, arr, len(ids), int(skip), ctypes.byref(p), ctypes.byref(n), ctypes.byref(e)):
            return "error: " + e.msg.decode()
        s = ctypes.string_at(p, n.value).decode("utf-8")
        self.lib.free(p)
        return s


def load_lib(path):
    lib = ctypes.CDLL(path)
    P = ctypes.POINTER
    lib.et_tokenizer_load.argtypes = [P(ctypes.c_void_p), ctypes.c_char_p, P(Err)]
    lib.et_tokenizer_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
                                        P(P(ctypes.c_int32)), P(ctypes.c_size_t), P(Err)]
    lib.et_tokenizer_decode.argtypes = [ctypes.c_void_p, P(ctypes.c_int32), ctypes.c_size_t, ctypes.c_int,
                                        P(ctypes.c_void_p), P(ctypes.c_size_t), P(Err)]
    lib.free = ctypes.CDLL("libc.so.6").free
    lib.free.argtypes = [ctypes.c_void_p]
    return lib


def probe_json(normalizer, pre_tokenizer, byte_vocab):
    if byte_vocab:
        vocab = {"<0x%02X>" % b: b for b in range(256)}
        model = {"type": "BPE", "vocab": vocab, "merges": [], "byte_fallback": True}
    else:
        model = {"type": "BPE", "vocab": {"[UNK]": 0}, "merges": [], "unk_token": "[UNK]", "fuse_unk": True}
    return {"version": "1.0", "added_tokens": [], "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
            "post_processor": None, "decoder": None, "model": model}


def probes(tmp):
    def split(regex):
        return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}
    cases = {
        "split-llama3": probe_json(None, split(fx.LLAMA3_RE), False),
        "split-qwen2": probe_json(None, split(fx.QWEN2_RE), False),
        "split-gpt2": probe_json(None, split(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"), False),
        "bytelevel-regex": probe_json(None, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                             "use_regex": True}, False),
        "nfc": probe_json({"type": "NFC"}, None, True),
        "metaspace-first": probe_json(None, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                                             "split": True}, True),
    }
    with open(os.path.join(ROOT, "tests", "fixtures", "tokenizers", "llama2-sentencepiece", "tokenizer.json"),
              encoding="utf-8") as f:
        sp = json.load(f)
    vocab = sp["model"]["vocab"]
    merges = []
    for piece, pid in sorted(vocab.items(), key=lambda kv: kv[1]):
        splits = [(vocab[piece[:k]], vocab[piece[k:]], piece[:k], piece[k:]) for k in range(1, len(piece))
                  if piece[:k] in vocab and piece[k:] in vocab]
        merges.extend([a, b] for _, _, a, b in sorted(splits))
    sp["model"]["merges"] = merges
    cases["sp-converted"] = sp
    paths = {}
    for name, j in cases.items():
        p = os.path.join(tmp, name + ".json")
        with open(p, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False)
        paths[name] = p
    return paths


def texts(args):
    rng = random.Random(args.seed)
    out = []
    for _ in range(args.texts):
        parts = [rng.choice(rng.choice(fx.POOLS)) for _ in range(rng.randint(1, 120))]
        out.append("".join(parts))
    # long words, so byte-level models also take the queue path of the merge (> 24 symbols)
    letters = "abcdefghijklmnopqrstuvwxyz" * 2 + "éü患"
    for _ in range(max(1, args.texts // 20)):
        out.append("".join(rng.choice(letters) for _ in range(rng.randint(20, 300))))
        out.append(rng.choice(["=", "-", ".", "*", "1", " ", "\n"]) * rng.randint(20, 300))
    alphabet = list("aZ1٣ '\n\r\t.-sS") + ["ſ", "\u00a0", "\u0085", "\u3000", "é", "\u0301", "患", "🤒", "<", "▁"]
    for n in range(1, 4):
        out.extend("".join(p) for p in itertools.product(alphabet, repeat=n))
    return out


def every_code_point():
    cps = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    return [ctx.replace("_", c) for ctx in ("_", "a_", " _", "_\u0301") for c in cps]


def compare(name, path, lib, corpus, limit=5, flag_set=(0, 1, 2)):
    ref = Tokenizer.from_file(path)
    ct = CTokenizer(lib, path)
    bad = 0
    for flags in flag_set:
        ref.encode_special_tokens = flags == 2
        encs = ref.encode_batch(corpus, add_special_tokens=flags == 1)
        for text, enc in zip(corpus, encs):
            got = ct.encode(text, flags)
            if got != enc.ids:
                bad += 1
                if bad <= limit:
                    print("  %s flags=%d text=%r\n    C : %s\n    HF: %s" % (name, flags, text, got, enc.ids))
            if flags != 2 and len(text) < 400:
                for skip in (False, True):
                    want, have = ref.decode(enc.ids, skip_special_tokens=skip), ct.decode(enc.ids, skip)
                    if want != have:
                        bad += 1
                        if bad <= limit:
                            print("  %s decode skip=%s ids=%s\n    C : %r\n    HF: %r" % (name, skip, enc.ids, have, want))
    ref.encode_special_tokens = False
    print("%-22s %8d texts x %d encodings (+ decodes): %d differences" % (name, len(corpus), len(flag_set), bad))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=20000, help="random texts per tokenizer (default 20000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exhaustive", action="store_true", help="also every code point in 7 contexts (slow)")
    args = ap.parse_args()
    corpus = texts(args)
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        lib = load_lib(build_library(tmp))
        targets = {os.path.basename(os.path.dirname(p)): p
                   for p in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "tokenizers", "*", "tokenizer.json")))}
        probe_paths = probes(tmp)
        targets.update(probe_paths)
        for name, path in targets.items():
            total += compare(name, path, lib, corpus)
        if args.exhaustive:
            every = every_code_point()
            for name, path in probe_paths.items():
                total += compare(name + " (every cp)", path, lib, every, flag_set=(0,))
    print("total differences: %d" % total)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
