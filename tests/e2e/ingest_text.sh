#!/usr/bin/env bash
# Text ingestion: notes, prompt/response and chat records become the right tokens and
# loss masks (checked by decoding them back with `ehrtune detokenize`), structured
# fields are serialised before the note, PHI findings stop the ingest unless allowed,
# and bad records fail with file:line and no output.
set -euo pipefail
bin=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
tok=$src/tests/fixtures/tokenizers/demo-bytelevel/tokenizer.json

cat > notes.jsonl <<'J'
{"patient_id": "P1", "text": "Pt stable overnight. BP 140/90 mmHg.", "group": {"sex": "F"}}
{"patient_id": "P1", "prompt": "List the problems.", "response": "1. Hypertension (I10)", "structured": {"vitals": {"HR": 88}, "diagnoses": ["I10"]}}
{"patient_id": 7, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarize."}, {"role": "assistant", "content": "Stable. <|eot_id|>"}]}
J
"$bin" ingest notes.jsonl --tokenizer "$tok" --chat-template llama3 -o c.h5 > out.log
grep -q "ingested 3 documents" out.log
test "$(stat -c %a c.h5)" = 600

# Decode what the corpus holds, document by document, through the tokenizer CLI.
# A Python with h5py + hdf5plugin: $EHRTUNE_PYTHON (CI makes one), the crosscheck one,
# else python3; without any, the CLI checks below still run and the test then reports
# skipped (77), not passed: its main check did not run.
decoded=0
for py in ${EHRTUNE_PYTHON:-} /opt/xc/bin/python python3; do
  [ -x "$(command -v "$py" 2>/dev/null)" ] && "$py" -c "import h5py, hdf5plugin" 2>/dev/null && break
  py=
done
if [ -n "$py" ]; then
  decoded=1
  "$py" - c.h5 "$bin" "$tok" <<'PY'
import h5py, hdf5plugin, json, subprocess, sys
f = h5py.File(sys.argv[1]); off = f["doc_offsets"][:]; toks = f["tokens"][:]; mask = f["loss_mask"][:]
def dec(ids):
    return subprocess.run([sys.argv[2], "detokenize", "--tokenizer", sys.argv[3]], input=" ".join(map(str, ids)),
                          capture_output=True, text=True, check=True).stdout
docs = [(toks[off[i]:off[i+1]].tolist(), mask[off[i]:off[i+1]].tolist()) for i in range(3)]
text0 = dec(docs[0][0])
assert text0.startswith("<|begin_of_text|>Pt stable overnight. BP 140/90 mmHg.") and text0.endswith("<|end_of_text|>"), text0
ids, m = docs[1]
prompt = dec([i for i, k in zip(ids, m) if not k]); resp = dec([i for i, k in zip(ids, m) if k])
assert prompt == "<|begin_of_text|>Structured data:\nVitals: HR 88.\nDiagnoses (ICD-10): I10.\n\nList the problems.", repr(prompt)
assert resp == "1. Hypertension (I10)<|end_of_text|>", repr(resp)
ids, m = docs[2]
full = dec(ids); learned = dec([i for i, k in zip(ids, m) if k])
assert full == ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nSummarize.<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\nStable. <|eot_id|><|eot_id|>"), repr(full)
assert learned == "Stable. <|eot_id|><|eot_id|>", repr(learned)
# The "<|eot_id|>" typed inside the content is plain text, not the control token.
assert sum(1 for i in ids if dec([i]) == "<|eot_id|>") == 3, "content must not inject control tokens"
phi = json.loads(f.attrs["phi_scan"]); assert phi["scanned"] and phi["total_findings"] == 0, phi
assert list(f["groups"].keys()) == ["sex"]
print("decoded ok")
PY
else
  echo "note: h5py unavailable; token-level checks skipped, CLI checks below still run"
fi

expect_fail() { local pat=$1 out=$2; shift 2
  if "$bin" "$@" > o.log 2> e.log; then echo "accepted: $*"; exit 1; fi
  grep -q -- "$pat" e.log || { echo "message lacks '$pat':"; cat e.log; exit 1; }
  test ! -e "$out" || { echo "$out written"; exit 1; }
  ! ls "$out".tmp* > /dev/null 2>&1 || { echo "temp file left"; exit 1; }; }

# PHI: refused by default (counts and line numbers, never the text), stored when allowed.
printf '{"patient_id": 1, "text": "Seen by Dr. Alvarez, call 617-555-0142."}\n' > phi.jsonl
expect_fail "PHI scan found 2" phi.h5 ingest phi.jsonl --tokenizer "$tok" -o phi.h5
if grep -q "Alvarez\|555-0142" e.log; then echo "PHI printed"; exit 1; fi
# ... with its counts by kind, as docs/phi.md says (found 2026-11-27: the total only)
grep -q "by kind: phone 1, name_after_title 1" e.log || { echo "no counts by kind:"; cat e.log; exit 1; }
# The scan reads prompt + response as tokenized, one text: a cue at the prompt's end and
# the number at the response's start are one finding (found 2026-11-27: each alone passed).
printf '{"patient_id": 1, "prompt": "Registration. Patient MRN:", "response": " 123456. Seen today."}\n' > split.jsonl
expect_fail "by kind: mrn 1" split.h5 ingest split.jsonl --tokenizer "$tok" -o split.h5
# Group keys come from records and may be PHI: errors name the entry, never the key.
printf '{"patient_id": 1, "text": "hello", "group": {"sex": "F", "Jane Doe 617-555-0142": 5}}\n' > gkey.jsonl
expect_fail 'gkey.jsonl:1: "group" entry 1 (0-based) must be a string label or null' gkey.h5 \
    ingest gkey.jsonl --tokenizer "$tok" -o gkey.h5
if grep -q "Jane\|555" e.log; then echo "group key printed"; cat e.log; exit 1; fi
printf '{"patient_id": 1, "text": "hello", "group": {"Jane_Doe_6175550142": "a", "Jane_Doe_6175550142": "b"}}\n' > gdup.jsonl
expect_fail "group entries 0 and 1 have the same name" gdup.h5 ingest gdup.jsonl --tokenizer "$tok" -o gdup.h5
if grep -q "Jane\|555" e.log; then echo "group key printed"; cat e.log; exit 1; fi
printf '{"patient_id": 1, "text": "hello", "group": {"Jane Doe": "a"}}\n' > gname.jsonl
expect_fail "the name of group entry 0 is not" gname.h5 ingest gname.jsonl --tokenizer "$tok" -o gname.h5
if grep -q "Jane" e.log; then echo "group key printed"; cat e.log; exit 1; fi
"$bin" ingest phi.jsonl --tokenizer "$tok" -o phi.h5 --allow-phi-findings > /dev/null
# Bad records: each names the file and line, writes nothing.
printf '{"patient_id": 1, "text": "ok"}\n{"patient_id": 2}\n' > notext.jsonl
expect_fail "notext.jsonl:2: missing the text" notext.h5 ingest notext.jsonl --tokenizer "$tok" -o notext.h5
printf '{"patient_id": 1, "text": "ok"}\n{"text": "no id"}\n' > noid.jsonl
expect_fail "noid.jsonl:2: missing \"patient_id\"" noid.h5 ingest noid.jsonl --tokenizer "$tok" -o noid.h5
printf '{"patient_id": 1, "text": "bad \xff byte"}\n' > utf8.jsonl
expect_fail "utf8.jsonl:1" utf8.h5 ingest utf8.jsonl --tokenizer "$tok" -o utf8.h5
grep -q "UTF-8" e.log
printf '{"patient_id": 1, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n' > chat.jsonl
expect_fail "needs a chat template" chat.h5 ingest chat.jsonl --tokenizer "$tok" -o chat.h5
expect_fail "needs the token <|im_start|>" chat.h5 ingest chat.jsonl --tokenizer "$tok" --chat-template chatml -o chat.h5
before=$(sha256sum c.h5)
if "$bin" ingest notes.jsonl --tokenizer "$tok" -o c.h5 --chat-template llama3 2> e.log; then
  echo "overwrote an existing corpus"; exit 1; fi
grep -q "already exists" e.log
test "$(sha256sum c.h5)" = "$before"
if [ "$decoded" = 0 ]; then
  echo "skipped: no Python with h5py + hdf5plugin, so the token-level checks did not run (CLI checks passed)"
  exit 77
fi
echo "ingest text ok"
