#!/usr/bin/env bash
# ehrtune synth + phi-scan through the CLI: byte-identical synth output per seed;
# clean notes give no finding (false positives <= 1% of notes); the PHI guard's
# benchmark (recall >= 0.99 per kind on planted identifiers, docs/phi.md); the
# canary list; phi-scan never prints matched text; bad input refused with exit 2.
# usage: bash synth_phi.sh <ehrtune-binary> <source-dir>
set -u
BIN=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

if ! command -v python3 >/dev/null; then
    echo "python3 not found: cannot parse the JSON output" >&2
    exit 77
fi

cd "$TMP"

# --- determinism: every output byte-identical across runs --------------------
for run in 1 2; do
    "$BIN" synth --patients 60 --seed 4 -o n$run.jsonl --instructions --plant-phi \
        --phi-truth t$run.jsonl --canaries 4 --canary-file c$run.jsonl --canary-repeats 2 \
        >/dev/null || fail "synth run $run exited $?"
done
for f in n t c; do cmp -s ${f}1.jsonl ${f}2.jsonl || fail "$f: two runs with one seed differ"; done
"$BIN" synth --patients 60 --seed 5 -o other.jsonl >/dev/null || fail "synth seed 5"
"$BIN" synth --patients 60 --seed 4 -o same-seed.jsonl >/dev/null || fail "synth seed 4"
[ -s other.jsonl ] && [ -s same-seed.jsonl ] || fail "synth wrote nothing"
cmp -s other.jsonl same-seed.jsonl && fail "seeds 4 and 5 gave the same notes"

# --- clean notes: false-positive rate ----------------------------------------
"$BIN" synth --patients 300 --seed 1 -o clean.jsonl --instructions >/dev/null || fail "synth clean"
"$BIN" phi-scan clean.jsonl >scan.txt; rc=$?
[ $rc -eq 0 ] || fail "phi-scan on clean notes exited $rc (want 0)"
"$BIN" phi-scan clean.jsonl --json >clean.json
python3 - clean.json <<'EOF' || fail "clean notes: false-positive rate above 1% of notes"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["scanned"] is True and s["allowed"] is False
assert s["lines_scanned"] == 1800, s["lines_scanned"]
rate = s["lines_with_findings"] / s["lines_scanned"]
print(f"clean notes: {s['lines_with_findings']} of {s['lines_scanned']} lines with findings ({100*rate:.2f}%)")
assert rate <= 0.01
EOF

# --- planted identifiers: the benchmark --------------------------------------
"$BIN" synth --patients 300 --seed 1 -o planted.jsonl --instructions --plant-phi \
    --phi-truth truth.jsonl >/dev/null || fail "synth --plant-phi"
"$BIN" phi-scan planted.jsonl >planted.txt; rc=$?
[ $rc -eq 1 ] || fail "phi-scan with findings exited $rc (want 1)"
"$BIN" phi-scan planted.jsonl --json >planted.json; rc=$?
[ $rc -eq 1 ] || fail "phi-scan --json with findings exited $rc (want 1)"
"$BIN" phi-scan planted.jsonl --truth truth.jsonl --json >bench.json || fail "benchmark mode failed"
"$BIN" phi-scan planted.jsonl --truth truth.jsonl >bench.txt || fail "benchmark table failed"
python3 - bench.json <<'EOF' || fail "benchmark: recall below 0.99 for some kind"
import json, sys
b = json.load(open(sys.argv[1]))
kinds = ["ssn", "phone", "fax", "email", "url", "ip", "mrn", "street_address", "zip", "date",
         "age_over_89", "name_after_title"]
assert list(b["kinds"]) == kinds, list(b["kinds"])
assert b["planted_total"] == 5400, b["planted_total"]
bad = []
for k in kinds:
    r = b["kinds"][k]
    assert r["planted"] >= 100, (k, r)
    if r["found"] / r["planted"] < 0.99: bad.append((k, r))
    print(f"{k:18s} planted {r['planted']:4d} found {r['found']:4d} recall {r['recall']:.4f}")
assert not bad, bad
variants = {(v["kind"], v["variant"]) for v in b["variants"]}
assert len(variants) >= 40, len(variants)  # several surface forms per kind
EOF

# never the matched text: no planted identifier appears in any phi-scan output
python3 - planted.jsonl truth.jsonl scan.txt planted.txt planted.json bench.txt bench.json <<'EOF' \
    || fail "phi-scan printed matched text"
import json, sys
notes = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
values = set()
for l in open(sys.argv[2]):
    t = json.loads(l)  # offsets are bytes of the UTF-8 text (fullwidth digits, no-break spaces)
    values.add(notes[t["line"] - 1][t["field"]].encode()[t["start"]:t["end"]].decode())
out = "".join(open(p).read() for p in sys.argv[3:])
leaked = [v for v in values if v in out]
assert len(values) > 1000
assert not leaked, leaked[:3]
EOF

# --- canaries ------------------------------------------------------------------
python3 - n1.jsonl c1.jsonl <<'EOF' || fail "canary list does not match the notes"
import json, sys
notes = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
can = [json.loads(l) for l in open(sys.argv[2])]
assert len(can) == 4
assert len({c["patient_id"] for c in can}) == 4
for c in can:
    assert len(c["secret"]) == 10 and c["secret"].isdigit()
    assert len(c["insertions"]) == 4  # 2 notes, each also in its instruction prompt
    for p in c["insertions"]:
        o = notes[p["line"] - 1]
        assert o["patient_id"] == c["patient_id"]
        b = o[p["field"]].encode()  # offsets are bytes of the UTF-8 text
        assert b[p["start"]:p["end"]].decode() == c["secret"]
        assert b[:p["start"]].decode().endswith(c["prefix"])
EOF

# --- bad input -------------------------------------------------------------------
expect_refusal() { # expect_refusal WANT_RC WHAT CMD...
    local want=$1 what=$2; shift 2
    "$@" >out.txt 2>err.txt; local rc=$?
    [ $rc -eq "$want" ] || fail "$what: exit $rc (want $want)"
    [ -s out.txt ] && fail "$what: printed on stdout"
    grep -q '^ehrtune: ' err.txt || fail "$what: no 'ehrtune:' message"
}
expect_refusal 2 "phi-scan missing file" "$BIN" phi-scan nonexistent.jsonl
expect_refusal 2 "phi-scan unknown option" "$BIN" phi-scan clean.jsonl --nope
expect_refusal 2 "phi-scan no file" "$BIN" phi-scan
printf '{"text": "ok"}\n{"text": "Dr. Zyxwvut" broken\n' >bad.jsonl
expect_refusal 2 "phi-scan bad JSON" "$BIN" phi-scan bad.jsonl
grep -q 'line 2' err.txt || fail "bad JSON: message does not name line 2"
grep -q 'Zyxwvut' err.txt && fail "bad JSON: message quotes the text"
expect_refusal 2 "benchmark with a longer file's truth" "$BIN" phi-scan n1.jsonl --truth truth.jsonl
"$BIN" synth --patients 300 --seed 1 -o plain.jsonl >/dev/null  # no prompt fields
expect_refusal 2 "benchmark with a foreign truth file" "$BIN" phi-scan plain.jsonl --truth truth.jsonl
# truth numbers are integers in range: 1e300 cast to size_t was undefined behaviour
for bad in '"start": 1e300, "end": 1e301' '"start": 2.5, "end": 7' '"start": -1, "end": 7'; do
    printf '{"line": 1, "field": "text", "kind": "phone", %s}\n' "$bad" > badtruth.jsonl
    expect_refusal 2 "truth with $bad" "$BIN" phi-scan planted.jsonl --truth badtruth.jsonl
    grep -q 'badtruth.jsonl: line 1: expected' err.txt || fail "truth with $bad: message"
done
printf '{"line": 1e300, "field": "text", "kind": "phone", "start": 1, "end": 7}\n' > badtruth.jsonl
expect_refusal 2 "truth with line 1e300" "$BIN" phi-scan planted.jsonl --truth badtruth.jsonl
expect_refusal 2 "synth without -o" "$BIN" synth --patients 3
expect_refusal 2 "synth --plant-phi without a truth file" "$BIN" synth --patients 3 -o x.jsonl --plant-phi
expect_refusal 2 "synth --canaries without a list file" "$BIN" synth --patients 3 -o x.jsonl --canaries 1
expect_refusal 2 "synth bad --patients" "$BIN" synth --patients 0 -o x.jsonl
[ -e x.jsonl ] && fail "a refused synth left x.jsonl"
cp clean.jsonl keep.jsonl
expect_refusal 1 "synth over an existing file" "$BIN" synth --patients 3 -o clean.jsonl
cmp -s clean.jsonl keep.jsonl || fail "a refused synth changed the existing file"
ls | grep -q '\.tmp\.' && fail "a temporary file was left behind"
"$BIN" synth --help >/dev/null || fail "synth --help"
"$BIN" phi-scan --help >/dev/null || fail "phi-scan --help"

[ $FAILS -eq 0 ] || { echo "$FAILS check(s) failed" >&2; exit 1; }
echo "synth_phi: all checks passed"
