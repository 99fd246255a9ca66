#!/usr/bin/env python3
"""Encode throughput, single-threaded: HF `tokenizers` against ehrtune's C tokenizer on the
same text and the same tokenizer.json, in the same run (docs/perf.md).

Run:  /opt/xc/bin/python tests/crosscheck/bench_tokenizer.py --ehrtune build/ehrtune [--mb 4] [--runs 5]

Text: synthetic clinical notes (make_tokenizer_fixtures.synthetic_notes, seed 7, a seed
the tokenizers were not trained on) joined into one text of about --mb megabytes.
Tokenizers: trained here with HF on 3000 other notes (seed 1) in the three family
configurations of make_tokenizer_fixtures.py, with a larger vocabulary (Llama-3 style
8000, Qwen2 style 8000, Llama-2 style 4000 + 259), plus the committed demo tokenizer.

Two measurements per tokenizer, each the median of --runs timed runs after one warm-up,
add_special_tokens off:
  whole text  HF Tokenizer.encode(text) vs `ehrtune tokenize --bench RUNS` (the C API
              called once on the whole text, from the CLI binary)
  per note    HF Tokenizer.encode(note) for each note vs et_tokenizer_encode per note,
              called through ctypes from a library this script compiles with -O2 (the
              ctypes call overhead counts against C)
HF runs single-threaded (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false; encode of one
sequence does not use threads anyway). The script checks both produce the same ids.
Prints one JSON line per measurement and a Markdown table.
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import fuzz_tokenizer as fz  # noqa: E402
import make_tokenizer_fixtures as fx  # noqa: E402


def median_time(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_tokenizers(tmp):
    train = fx.synthetic_notes(3000, seed=1)
    llama3 = fx.make_llama3(train, 8000)
    qwen2 = fx.make_qwen2(train)  # rebuilt below with a larger vocabulary
    qwen2_big = fx.bytelevel_tokenizer(train, 8000, fx.QWEN2_RE, ignore_merges=False)
    qwen2_big.normalizer, qwen2_big.pre_tokenizer, qwen2_big.post_processor = qwen2.normalizer, qwen2.pre_tokenizer, qwen2.post_processor
    fx.with_specials(qwen2_big, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    vocab, merges = fx.sentencepiece_model(train, vocab_size=4000)
    llama2 = fx.make_llama2(vocab, merges)
    out = {}
    for name, tok in (("llama3-style 8k", llama3), ("qwen2-style 8k", qwen2_big), ("llama2-style 4k", llama2)):
        p = os.path.join(tmp, name.split()[0] + ".json")
        tok.save(p)
        out[name] = p
    out["demo-bytelevel (fixture)"] = os.path.join(ROOT, "tests", "fixtures", "tokenizers", "demo-bytelevel", "tokenizer.json")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ehrtune", default=os.path.join(ROOT, "build", "ehrtune"), help="the ehrtune binary")
    ap.add_argument("--mb", type=float, default=4.0, help="size of the text in MB (default 4)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    notes = []
    size, k = 0, 0
    while size < args.mb * 1e6:
        batch = fx.synthetic_notes(500, seed=7000 + k)
        notes.extend(batch)
        size += sum(len(n.encode()) for n in batch)
        k += 1
    text = "".join(notes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "notes.txt")
        with open(text_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        lib = fz.load_lib(fz.build_library(tmp))
        for name, path in bench_tokenizers(tmp).items():
            hf = Tokenizer.from_file(path)
            ids = hf.encode(text, add_special_tokens=False).ids
            ct = fz.CTokenizer(lib, path)
            if ct.encode(text, 0) != ids:
                sys.exit("%s: C and HF ids differ on the benchmark text" % name)
            hf_whole = median_time(lambda: hf.encode(text, add_special_tokens=False), args.runs)
            with open(text_path, "rb") as f:
                r = subprocess.run([args.ehrtune, "tokenize", "--tokenizer", path, "--bench", str(args.runs)],
                                   stdin=f, capture_output=True, check=True)
            c = json.loads(r.stdout)
            assert c["tokens"] == len(ids), (c, len(ids))
            hf_notes = median_time(lambda: [hf.encode(n, add_special_tokens=False) for n in notes], args.runs)
            c_notes = median_time(lambda: [ct.encode(n, 0) for n in notes], args.runs)
            row = {"tokenizer": name, "bytes": len(text.encode()), "notes": len(notes), "tokens": len(ids),
                   "hf_whole_tokens_per_s": len(ids) / hf_whole, "c_whole_tokens_per_s": c["tokens_per_s"],
                   "hf_notes_tokens_per_s": len(ids) / hf_notes, "c_notes_tokens_per_s": len(ids) / c_notes}
            rows.append(row)
            print(json.dumps(row))
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print("\ntokenizers %s, Python %s, %s, %d CPUs, load average %.1f\n" % (
        tokenizers.__version__, platform.python_version(), cpu, os.cpu_count(), os.getloadavg()[0]))
    print("| tokenizer | tokens | whole text: HF | whole text: C | C/HF | per note: HF | per note: C | C/HF |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %.2f M/s | %.2f M/s | %.1fx | %.2f M/s | %.2f M/s | %.1fx |" % (
            r["tokenizer"], r["tokens"], r["hf_whole_tokens_per_s"] / 1e6, r["c_whole_tokens_per_s"] / 1e6,
            r["c_whole_tokens_per_s"] / r["hf_whole_tokens_per_s"], r["hf_notes_tokens_per_s"] / 1e6,
            r["c_notes_tokens_per_s"] / 1e6, r["c_notes_tokens_per_s"] / r["hf_notes_tokens_per_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
