#!/usr/bin/env python3
"""Writes tests/fixtures/corpus_hdf5plugin.h5: a corpus (schema v1) written by
h5py + hdf5plugin.Zstd, i.e. by the reference zstd filter (id 32015), so the C
reader's test (tests/unit/test_corpus.c, test_reads_hdf5plugin_fixture) proves we
decode chunks the standard plugin encodes. Contents follow simple formulas the C
test recomputes:

  tokens[i] = (i * 7919) % 1000,   loss_mask[i] = (i % 3 != 0)
  doc_offsets = [0, 10, 47, 100],  patient_ids = [11, -4, 2**62 + 5]
  split = [0, 1, 2],               groups/sex = [1, -1, 0] labels ["F", "M"]
  structured [3, 2] = [[0.5, nan], [1.5, 2.5], [nan, -1]] names ["age", "bmi"]

Run with the cross-check venv:  /opt/xc/bin/python tests/crosscheck/make_hdf5plugin_fixture.py
"""
import os
import sys

import h5py
import hdf5plugin
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "corpus_hdf5plugin.h5")
n = 100
tokens = np.array([(i * 7919) % 1000 for i in range(n)], dtype=np.int32)
mask = np.array([i % 3 != 0 for i in range(n)], dtype=np.uint8)
zstd = hdf5plugin.Zstd(clevel=5)

with h5py.File(out, "w") as f:
    # Small chunks: several zstd frames per dataset, the last one partial.
    f.create_dataset("tokens", data=tokens, chunks=(16,), **zstd)
    f.create_dataset("loss_mask", data=mask, chunks=(16,), **zstd)
    f.create_dataset("doc_offsets", data=np.array([0, 10, 47, 100], dtype=np.int64), chunks=(2,), **zstd)
    f.create_dataset("patient_ids", data=np.array([11, -4, 2**62 + 5], dtype=np.int64))
    f.create_dataset("split", data=np.array([0, 1, 2], dtype=np.uint8))
    g = f.create_group("groups")
    sex = g.create_dataset("sex", data=np.array([1, -1, 0], dtype=np.int16))
    sex.attrs["labels"] = ["F", "M"]  # h5py: variable-length UTF-8 strings
    s = f.create_dataset("structured", data=np.array(
        [[0.5, np.nan], [1.5, 2.5], [np.nan, -1.0]], dtype=np.float32))
    s.attrs["names"] = ["age", "bmi"]
    f.attrs["format"] = "ehrtune-corpus"
    f.attrs["version"] = 1
    f.attrs["tokenizer_sha256"] = ""
    f.attrs["vocab_size"] = 1000
    f.attrs["source_sha256"] = "0" * 64
    f.attrs["phi_scan"] = '{"scanned": false, "reason": "fixture"}'
    # A fixed-length (bytes) string, the other way h5py stores text attributes.
    f.attrs["created"] = np.bytes_(b"2025-01-01T00:00:00Z")
print("wrote", out)
