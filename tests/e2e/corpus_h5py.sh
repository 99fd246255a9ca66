#!/usr/bin/env bash
# Interop: a corpus written by `ehrtune ingest` opens in h5py + hdf5plugin (the
# reference zstd filter) with exactly the JSONL's content. Needs a Python with
# h5py and hdf5plugin: $EHRTUNE_PYTHON if set, else python3 (e.g.
# EHRTUNE_PYTHON=/opt/xc/bin/python). Without one the test is SKIPPED (exit 77).
# (The other direction, a file written by hdf5plugin read by our C reader, is
# test_corpus's reads_hdf5plugin_fixture.)
# Usage: bash corpus_h5py.sh <ehrtune-binary> <source-dir>
set -u
BIN=$1
SRC=$2
PY=${EHRTUNE_PYTHON:-python3}
if ! "$PY" -c "import h5py, hdf5plugin" >/dev/null 2>&1; then
  echo "SKIPPED: '$PY' cannot import h5py and hdf5plugin (set EHRTUNE_PYTHON to a Python that can, e.g. /opt/xc/bin/python)"
  exit 77
fi
DIR=$(mktemp -d /tmp/et_e2e_h5py_XXXXXX)
trap 'rm -rf "$DIR"' EXIT

# Enough documents to span several 65536-token chunks, string and integer ids,
# masks, groups, a late-appearing group.
"$PY" - "$DIR/in.jsonl" <<'PYEOF'
import json, random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for d in range(400):
        n = r.randint(1, 900)
        doc = {"patient_id": f"MRN-{d // 3}" if d % 2 else d // 3,
               "tokens": [r.randrange(32000) for _ in range(n)]}
        if d % 4 == 1:
            doc["loss_mask"] = [int(i >= n // 2) for i in range(n)]
        if d % 5:
            doc["group"] = {"sex": r.choice(["F", "M", None])}
        if d > 200:
            doc["group"] = dict(doc.get("group", {}), age_band=r.choice(["18-39", "40-64", "65+"]))
        f.write(json.dumps(doc) + "\n")
PYEOF

"$BIN" ingest --pretokenized "$DIR/in.jsonl" -o "$DIR/corpus.h5" --vocab-size 32000 \
  --val-frac 0.1 --test-frac 0.2 --split-seed 11 || { echo "FAIL: ingest"; exit 1; }
"$PY" "$SRC/tests/crosscheck/read_corpus_h5py.py" "$DIR/corpus.h5" "$DIR/in.jsonl" \
  --vocab-size 32000 --val-frac 0.1 --test-frac 0.2 --split-seed 11 || { echo "FAIL: h5py cross-check"; exit 1; }
