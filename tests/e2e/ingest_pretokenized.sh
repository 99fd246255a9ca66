#!/usr/bin/env bash
# ehrtune ingest --pretokenized: a good run, then bad inputs that must fail with
# one clear message (file:line), a non-zero exit and no output file.
# Usage: bash ingest_pretokenized.sh <ehrtune-binary> <source-dir>
set -u
BIN=$1
DIR=$(mktemp -d /tmp/et_e2e_ingest_XXXXXX)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# expect_error NAME EXPECTED_RC NEEDLE -- ARGS...: runs ehrtune, checks the exit
# code, that stderr holds NEEDLE, and that NAME.h5 (and no temp file) exists.
expect_error() {
  local name=$1 want_rc=$2 needle=$3
  shift 4
  "$BIN" "$@" >"$name.out" 2>"$name.err"
  local rc=$?
  [ "$rc" = "$want_rc" ] || fail "$name: exit $rc, expected $want_rc ($(cat "$name.err"))"
  grep -qF -- "$needle" "$name.err" || fail "$name: stderr lacks '$needle': $(cat "$name.err")"
  grep -q '^ehrtune: ' "$name.err" || fail "$name: message not prefixed 'ehrtune: '"
  [ ! -e "$name.h5" ] || fail "$name: output file left behind"
  ! ls "$name".h5.tmp-* >/dev/null 2>&1 || fail "$name: temp file left behind"
}

cat >good.jsonl <<'J'
{"patient_id": 1, "tokens": [1, 2, 3], "group": {"sex": "F"}}
{"patient_id": "MRN-7", "tokens": [4, 5], "loss_mask": [0, 1]}

{"patient_id": 1, "tokens": [6]}
J

"$BIN" ingest --help >help.out 2>&1 || fail "--help exited non-zero"
grep -q -- "--pretokenized" help.out || fail "--help does not mention --pretokenized"

"$BIN" ingest --pretokenized good.jsonl -o good.h5 --vocab-size 8 --val-frac 0.2 >good.out 2>good.err
rc=$?
[ $rc = 0 ] || fail "good input: exit $rc: $(cat good.err)"
grep -qF "ingested 3 documents, 6 tokens, 2 patients" good.out || fail "summary: $(cat good.out)"
grep -qF -- "-> good.h5" good.out || fail "summary lacks the output path: $(cat good.out)"
[ "$(wc -l <good.out)" = 1 ] || fail "summary is not one line"
[ "$(head -c 4 good.h5 | od -An -tx1 | tr -d ' \n')" = "89484446" ] || fail "good.h5 is not HDF5"
[ "$(stat -c %a good.h5)" = 600 ] || fail "good.h5 mode $(stat -c %a good.h5), expected 600"
! ls good.h5.tmp-* >/dev/null 2>&1 || fail "temp file left after success"

# An existing output is refused and left intact; --force replaces it.
before=$(sha256sum good.h5)
"$BIN" ingest --pretokenized good.jsonl -o good.h5 >again.out 2>again.err
[ $? = 1 ] || fail "existing output: expected exit 1"
grep -qF "already exists" again.err || fail "existing output: $(cat again.err)"
[ "$(sha256sum good.h5)" = "$before" ] || fail "existing output was modified"
"$BIN" ingest --pretokenized good.jsonl -o good.h5 --force >force.out 2>force.err ||
  fail "--force: $(cat force.err)"

# Token values never appear in messages (they derive from patient data).
printf '{"patient_id": 1, "tokens": [1, 2]}\n{"patient_id": 2, "tokens": [1, 4242,\n' >malformed.jsonl
expect_error malformed 1 "malformed.jsonl:2: malformed JSON" -- ingest --pretokenized malformed.jsonl -o malformed.h5
grep -q 4242 malformed.err && fail "malformed: message echoes token content"

printf '{"tokens": [1, 2]}\n' >nopid.jsonl
expect_error nopid 1 'nopid.jsonl:1: missing "patient_id"' -- ingest --pretokenized nopid.jsonl -o nopid.h5

printf '{"patient_id": 3, "tokens": [1]}\n{"patient_id": 3, "text": "x"}\n' >notokens.jsonl
expect_error notokens 1 'notokens.jsonl:2: missing "tokens"' -- ingest --pretokenized notokens.jsonl -o notokens.h5

printf '{"patient_id": 3, "tokens": [1, 2, 3], "loss_mask": [1, 0]}\n' >masklen.jsonl
expect_error masklen 1 'masklen.jsonl:1: "loss_mask" has 2 values but "tokens" has 3' -- ingest --pretokenized masklen.jsonl -o masklen.h5

printf '{"patient_id": 3, "tokens": [5, -7123]}\n' >negative.jsonl
expect_error negative 1 "negative.jsonl:1: tokens[1] is negative" -- ingest --pretokenized negative.jsonl -o negative.h5
grep -q 7123 negative.err && fail "negative: message echoes token content"

printf '{"patient_id": 3, "tokens": [5]}\n{"patient_id": 4, "tokens": [1, 2, 8]}\n' >vocab.jsonl
expect_error vocab 1 "vocab.jsonl:2: tokens[2] is >= --vocab-size 8" -- ingest --pretokenized vocab.jsonl -o vocab.h5 --vocab-size 8

: >empty.jsonl
expect_error empty 1 "empty.jsonl: no documents" -- ingest --pretokenized empty.jsonl -o empty.h5

expect_error text 2 "text input needs --tokenizer tokenizer.json" -- ingest good.jsonl -o text.h5
expect_error absent 1 "absent.jsonl: cannot open" -- ingest --pretokenized absent.jsonl -o absent.h5
expect_error fracs 2 "above 1" -- ingest --pretokenized good.jsonl -o fracs.h5 --val-frac 0.7 --test-frac 0.6

if [ $FAILS -ne 0 ]; then
  echo "$FAILS check(s) failed"
  exit 1
fi
echo "ingest_pretokenized: all checks passed"
