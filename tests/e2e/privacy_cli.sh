#!/usr/bin/env bash
# ehrtune privacy: the exact CLI form scripts rely on, checked against Opacus's own
# test values (research/dp.md §2.1), and every bad input refused with a message,
# a non-zero exit and nothing on stdout.
# usage: bash privacy_cli.sh <ehrtune-binary> <source-dir>
set -u
BIN=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILS=0

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# run NAME ARGS...: stdout -> $TMP/out, stderr -> $TMP/err, exit code -> $RC
run() { "$BIN" privacy "$@" >"$TMP/out" 2>"$TMP/err"; RC=$?; }

# json_field KEY: the value of KEY in the one JSON object in $TMP/out ("" if absent);
# also checks the output is exactly one JSON object.
json_field() {
    python3 - "$TMP/out" "$1" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
obj = json.loads(text)
assert isinstance(obj, dict) and text.count("\n") == 1, "not one JSON object on one line"
v = obj.get(sys.argv[2], "")
print(v if not isinstance(v, float) else repr(v))
EOF
}

json_keys() {
    python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))))' "$TMP/out"
}

# close A B REL: |A-B| <= REL*|B|
close() { python3 -c 'import sys; a,b,r=map(float,sys.argv[1:]); sys.exit(0 if abs(a-b)<=r*abs(b) else 1)' "$1" "$2" "$3"; }

if ! command -v python3 >/dev/null; then
    echo "python3 not found: cannot parse the JSON output" >&2
    exit 77
fi

# --- help ---
run --help
[ $RC -eq 0 ] && grep -q -- "--target-epsilon" "$TMP/out" && grep -q -- "--noise-multiplier" "$TMP/out" \
    || fail "privacy --help"
"$BIN" --help | grep -q "privacy" || fail "ehrtune --help does not list privacy"

# --- epsilon, RDP (opacus tests/accountants_test.py: 7.32911117143 at α 3.9) ---
run epsilon --sample-rate 0.04 --noise-multiplier 1.5 --steps 2250 --delta 1e-5 --accountant rdp
[ $RC -eq 0 ] && [ "$(cat "$TMP/out")" = "7.329111" ] || fail "rdp epsilon text: '$(cat "$TMP/out")' rc=$RC"

run epsilon --sample-rate 0.04 --noise-multiplier 1.5 --steps 2250 --delta 1e-5 --accountant rdp --json
[ $RC -eq 0 ] || fail "rdp epsilon --json rc=$RC: $(cat "$TMP/err")"
[ "$(json_keys)" = "epsilon,accountant,order" ] || fail "rdp json keys: $(json_keys)"
close "$(json_field epsilon)" 7.32911117143 1e-6 || fail "rdp json epsilon $(json_field epsilon)"
[ "$(json_field accountant)" = "rdp" ] || fail "rdp json accountant"
close "$(json_field order)" 3.9 1e-12 || fail "rdp json order $(json_field order)"

# --- epsilon, PRV is the default (opacus: 6.777395712150674, steps 2249) ---
run epsilon --sample-rate=0.04 --noise-multiplier=1.5 --steps=2249 --delta=1e-5 --json
[ $RC -eq 0 ] || fail "prv epsilon rc=$RC: $(cat "$TMP/err")"
[ "$(json_keys)" = "epsilon,accountant" ] || fail "prv json keys: $(json_keys)"
[ "$(json_field accountant)" = "prv" ] || fail "default accountant is not prv"
close "$(json_field epsilon)" 6.777395712150674 1e-4 || fail "prv json epsilon $(json_field epsilon)"

# --- --epochs: steps = int(epochs / q), stated ---
run epsilon --sample-rate 0.04 --noise-multiplier 1.5 --epochs 90 --delta 1e-5 --accountant rdp --json
[ $RC -eq 0 ] && [ "$(json_field steps)" = "2250" ] || fail "epochs json steps '$(json_field steps)'"
close "$(json_field epsilon)" 7.32911117143 1e-6 || fail "epochs json epsilon"
run epsilon --sample-rate 0.04 --noise-multiplier 1.5 --epochs 90 --delta 1e-5 --accountant rdp
[ $RC -eq 0 ] && [ "$(cat "$TMP/out")" = "7.329111" ] || fail "epochs text stdout '$(cat "$TMP/out")'"
grep -q "2250 steps" "$TMP/err" || fail "epochs text does not state the steps"

# --- sigma (opacus get_noise_multiplier: rdp epochs=90 1.416015625; prv steps=2000 1.29150390625) ---
run sigma --target-epsilon 8 --sample-rate 0.04 --epochs 90 --delta 1e-5 --accountant rdp
[ $RC -eq 0 ] && [ "$(cat "$TMP/out")" = "1.416015625" ] || fail "rdp sigma '$(cat "$TMP/out")'"
run sigma --target-epsilon 8 --sample-rate 0.04 --steps 2000 --delta 1e-5 --json
[ $RC -eq 0 ] || fail "prv sigma rc=$RC: $(cat "$TMP/err")"
[ "$(json_keys)" = "noise_multiplier,epsilon,accountant" ] || fail "sigma json keys: $(json_keys)"
close "$(json_field noise_multiplier)" 1.29150390625 1e-12 || fail "prv sigma $(json_field noise_multiplier)"
python3 -c 'import sys; e=float(sys.argv[1]); sys.exit(0 if 7.99 <= e <= 8 else 1)' "$(json_field epsilon)" \
    || fail "sigma json epsilon $(json_field epsilon) not in [7.99, 8]"
[ "$(json_field accountant)" = "prv" ] || fail "sigma json accountant"

# --- bad input: non-zero exit, a message naming the problem, nothing on stdout ---
expect_error() { # PATTERN ARGS...
    local pattern=$1
    shift
    run "$@"
    if [ $RC -eq 0 ] || [ -s "$TMP/out" ] || ! grep -q -- "$pattern" "$TMP/err"; then
        fail "expected error '$pattern' for: $* (rc=$RC, out='$(cat "$TMP/out")', err='$(cat "$TMP/err")')"
    fi
}
E="epsilon --noise-multiplier 1.5 --steps 100 --delta 1e-5"
expect_error "sample-rate must be in (0, 1]" $E --sample-rate 0
expect_error "sample-rate must be in (0, 1]" $E --sample-rate 1.5
expect_error "sample-rate must be in (0, 1]" $E --sample-rate -0.1
expect_error "noise-multiplier must be > 0" epsilon --sample-rate 0.1 --noise-multiplier 0 --steps 10 --delta 1e-5
expect_error "noise-multiplier must be > 0" epsilon --sample-rate 0.1 --noise-multiplier -2 --steps 10 --delta 1e-5
expect_error "delta must be in (0, 1)" epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 0
expect_error "delta must be in (0, 1)" epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 1
expect_error "delta must be in (0, 1)" sigma --target-epsilon 1 --sample-rate 0.1 --steps 10 --delta 2
expect_error "not reachable" sigma --target-epsilon 0.001 --sample-rate 0.5 --steps 10000 --delta 1e-5 --accountant rdp
expect_error "target-epsilon must be > 0" sigma --target-epsilon 0 --sample-rate 0.1 --steps 10 --delta 1e-5
expect_error "expects a finite number" epsilon --sample-rate abc --noise-multiplier 1 --steps 10 --delta 1e-5
expect_error "steps must be an integer" epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 2.5 --delta 1e-5
expect_error "not both" epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --epochs 1 --delta 1e-5
expect_error "is required" epsilon --sample-rate 0.1 --noise-multiplier 1 --delta 1e-5
expect_error "unknown accountant" epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 1e-5 --accountant gdp
expect_error "unknown argument" epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 1e-5 --bogus
expect_error "unknown action" calibrate
# --phases: one phase is the single-phase form; two compose; clashes and bad phases refused
run epsilon --phases '[[1.5, 0.04, 2250]]' --delta 1e-5 --accountant rdp
[ $RC -eq 0 ] && [ "$(cat "$TMP/out")" = "7.329111" ] || fail "--phases one phase: '$(cat "$TMP/out")' rc=$RC"
run epsilon --phases '[[1.5, 0.04, 1000], [1.5, 0.04, 1250]]' --delta 1e-5 --accountant rdp
[ $RC -eq 0 ] && [ "$(cat "$TMP/out")" = "7.329111" ] || fail "--phases split in two: '$(cat "$TMP/out")' rc=$RC"
run epsilon --phases '[[1.5, 0.04, 1000], [0.9, 0.02, 500]]' --delta 1e-5 --json
[ $RC -eq 0 ] && [ "$(json_field phases)" = 2 ] || fail "--phases two phases: rc=$RC $(cat "$TMP/err")"
expect_error "drop --sample-rate" epsilon --phases '[[1.5, 0.04, 10]]' --sample-rate 0.1 --delta 1e-5
expect_error "phase 1 is not" epsilon --phases '[[1.5, 0.04, 10], [1.5, 0.04, 2.5]]' --delta 1e-5
expect_error "non-empty JSON array" epsilon --phases '[]' --delta 1e-5
expect_error "phase 0: sample rate" epsilon --phases '[[1.5, 2, 10]]' --delta 1e-5
expect_error "drop --delta" epsilon --manifest m.json --delta 1e-5
expect_error "cannot open" epsilon --manifest "$TMP/nope.json"
echo '{"privacy": {"enabled": false, "statement": "No guarantee"}}' > "$TMP/nodp.json"
expect_error "trained without DP-SGD" epsilon --manifest "$TMP/nodp.json"
# a σ whose square underflows gave ε = -0.995 (prv) and 40.02 (rdp) with rc 0: refused
expect_error "too small for any privacy guarantee" epsilon --sample-rate 0.01 --noise-multiplier 1e-160 --steps 100 --delta 1e-5
expect_error "too small for any privacy guarantee" epsilon --sample-rate 0.01 --noise-multiplier 1e-155 --steps 100 --delta 1e-5 --accountant rdp
# an ε that overflows is no bound: refused, never "inf" with rc 0
expect_error "no finite epsilon" epsilon --sample-rate 1 --noise-multiplier 1e-153 --steps 100000000 --delta 1e-5 --accountant rdp

if [ $FAILS -ne 0 ]; then
    echo "$FAILS check(s) failed" >&2
    exit 1
fi
echo "privacy CLI: all checks passed"
