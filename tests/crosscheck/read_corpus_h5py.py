#!/usr/bin/env python3
"""Cross-check: open a corpus written by `ehrtune ingest --pretokenized` with
h5py + hdf5plugin (the reference zstd filter, id 32015) and check it against the
JSONL it came from, recomputing every rule of docs/corpus.md independently:
tokens, loss masks, document offsets, patient ids (integer / canonical decimal /
SHA-256 rule), per-patient splits (splitmix64 rule), groups, root attributes,
and that every chunk is one zstd frame that records its content size.

usage: read_corpus_h5py.py corpus.h5 in.jsonl [--val-frac F] [--test-frac F] [--split-seed S]
Exit 0 when everything matches; 1 with the first mismatch otherwise.
"""
import argparse
import hashlib
import json
import struct
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers filter 32015 with h5py's HDF5)
import numpy as np

MASK64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def patient_id(v):
    if isinstance(v, bool):
        raise ValueError("boolean patient_id")
    if isinstance(v, int):
        return v
    s = v
    body = s[1:] if s.startswith("-") else s
    canonical = 0 < len(body) <= 19 and body.isdigit() and body.isascii() and not (
        body[0] == "0" and (len(body) > 1 or s.startswith("-")))
    if canonical and -(1 << 62) < int(s) < (1 << 62):
        return int(s)
    h = int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big")
    return (h & ((1 << 62) - 1)) | (1 << 62)


def split_of(pid, seed, val_frac, test_frac):
    u = (splitmix64(splitmix64(seed) ^ (pid & MASK64)) >> 11) / 2.0**53
    return 2 if u < test_frac else 1 if u < test_frac + val_frac else 0


def check_zstd_chunks(ds):
    """Each chunk: a single zstd frame whose header records the content size
    (what one-shot ZSTD_compress writes and the reference decoder needs)."""
    plist = ds.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if filters != [32015]:
        raise AssertionError(f"{ds.name}: filters {filters}, expected [32015]")
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
        if mask != 0:
            raise AssertionError(f"{ds.name}: chunk {i} skipped the filter (mask {mask})")
        if struct.unpack("<I", raw[:4])[0] != 0xFD2FB528:
            raise AssertionError(f"{ds.name}: chunk {i} does not start with the zstd magic")
        fhd = raw[4]
        if (fhd >> 6) == 0 and not (fhd >> 5) & 1:
            raise AssertionError(f"{ds.name}: chunk {i} frame lacks the content size")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("jsonl")
    ap.add_argument("--val-frac", type=float, default=0.0)
    ap.add_argument("--test-frac", type=float, default=0.0)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--vocab-size", type=int, default=0)
    a = ap.parse_args()

    raw = open(a.jsonl, "rb").read()
    docs = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    tokens = np.array([t for d in docs for t in d["tokens"]], dtype=np.int32)
    mask = np.array([int(m) for d in docs for m in d.get("loss_mask", [1] * len(d["tokens"]))],
                    dtype=np.uint8)
    offsets = np.cumsum([0] + [len(d["tokens"]) for d in docs]).astype(np.int64)
    pids = np.array([patient_id(d["patient_id"]) for d in docs], dtype=np.int64)
    splits = np.array([split_of(int(p), a.split_seed, a.val_frac, a.test_frac) for p in pids],
                      dtype=np.uint8)

    with h5py.File(a.corpus, "r") as f:
        at = f.attrs
        assert at["format"] == "ehrtune-corpus", at["format"]
        assert int(at["version"]) == 1
        assert at["source_sha256"] == hashlib.sha256(raw).hexdigest(), "source_sha256"
        assert at["tokenizer_sha256"] == ""
        want_vocab = a.vocab_size if a.vocab_size else int(tokens.max()) + 1
        assert int(at["vocab_size"]) == want_vocab, (int(at["vocab_size"]), want_vocab)
        assert json.loads(at["phi_scan"]) == {"scanned": False, "reason": "pretokenized input"}
        assert at["created"].endswith("Z") and "T" in at["created"]
        for name in ("tokens", "loss_mask", "doc_offsets", "patient_ids", "split"):
            check_zstd_chunks(f[name])
        assert f["tokens"].dtype == np.int32 and f["loss_mask"].dtype == np.uint8
        assert f["doc_offsets"].dtype == np.int64 and f["patient_ids"].dtype == np.int64
        assert f["split"].dtype == np.uint8
        np.testing.assert_array_equal(f["tokens"][:], tokens, "tokens")
        np.testing.assert_array_equal(f["loss_mask"][:], mask, "loss_mask")
        np.testing.assert_array_equal(f["doc_offsets"][:], offsets, "doc_offsets")
        np.testing.assert_array_equal(f["patient_ids"][:], pids, "patient_ids")
        np.testing.assert_array_equal(f["split"][:], splits, "split")
        names = sorted({k for d in docs for k in d.get("group", {}) or {}})
        assert sorted(f["groups"].keys()) == names, (sorted(f["groups"].keys()), names)
        for g in names:
            ds = f["groups"][g]
            assert ds.dtype == np.int16
            labels = list(ds.attrs["labels"])
            codes = ds[:]
            for i, d in enumerate(docs):
                want = (d.get("group") or {}).get(g)
                got = None if codes[i] == -1 else labels[codes[i]]
                assert got == want, f"groups/{g}[{i}]"
        assert "structured" not in f
    print(f"read_corpus_h5py: ok ({len(docs)} documents, {len(tokens)} tokens)")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"read_corpus_h5py: MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
