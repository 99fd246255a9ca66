#!/usr/bin/env bash
# ehrtune tokenize / detokenize: the ids of the hard clinical text equal HF's (the
# committed fixtures), with and without --add-special; detokenize gives the text back
# byte for byte; --bench prints one JSON line; bad input fails with a message, a non-zero
# exit and nothing on stdout.
# usage: bash tokenize_cli.sh <ehrtune-binary> <source-dir>
set -u
BIN=$1
SRC=$2
FX=$SRC/tests/fixtures/tokenizers
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

if ! command -v python3 >/dev/null; then
    echo "python3 not found: cannot read the expected ids" >&2
    exit 77
fi

# expected FAMILY KEY: the ids of the "hard" case, space-separated, as the CLI prints them
expected() {
    python3 - "$FX/$1/expected.json" "$2" <<'EOF'
import json, sys
case = json.load(open(sys.argv[1], encoding="utf-8"))["cases"][0]
assert case["name"] == "hard"
print(" ".join(map(str, case[sys.argv[2]])))
EOF
}

for fam in llama3-bytelevel qwen2-bytelevel llama2-sentencepiece mistral-metaspace gpt2-roberta; do
    tok=$FX/$fam/tokenizer.json
    "$BIN" tokenize --tokenizer "$tok" <"$FX/hard.txt" >"$TMP/ids" 2>"$TMP/err" || fail "$fam: tokenize exit $?: $(cat "$TMP/err")"
    expected "$fam" ids >"$TMP/want"
    cmp -s "$TMP/ids" "$TMP/want" || fail "$fam: ids differ from HF"
    "$BIN" tokenize --tokenizer "$tok" --add-special <"$FX/hard.txt" >"$TMP/ids_s" || fail "$fam: --add-special"
    expected "$fam" ids_special >"$TMP/want_s"
    cmp -s "$TMP/ids_s" "$TMP/want_s" || fail "$fam: --add-special ids differ from HF"
    "$BIN" tokenize --tokenizer "$tok" --split-special <"$FX/hard.txt" >"$TMP/ids_x" || fail "$fam: --split-special"
    expected "$fam" ids_split_special >"$TMP/want_x"
    cmp -s "$TMP/ids_x" "$TMP/want_x" || fail "$fam: --split-special ids differ from HF"
done

# One line, single spaces, a final newline.
[ "$(wc -l <"$TMP/ids")" = 1 ] || fail "output is not one line"
grep -q '  \|^ \| $' "$TMP/ids" && fail "output has a double, leading or trailing space"

# Byte-exact round trip (byte-level BPE without a normalizer loses nothing).
tok=$FX/llama3-bytelevel/tokenizer.json
"$BIN" tokenize --tokenizer "$tok" <"$FX/hard.txt" | "$BIN" detokenize --tokenizer "$tok" >"$TMP/back" ||
    fail "tokenize | detokenize failed"
cmp -s "$TMP/back" "$FX/hard.txt" || fail "detokenize does not give the text back"
# --skip-special drops the BOS and the special-token text of the hard text, as HF does.
"$BIN" tokenize --tokenizer "$tok" --add-special <"$FX/hard.txt" | "$BIN" detokenize --tokenizer "$tok" --skip-special >"$TMP/back2"
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1], encoding="utf-8"))["cases"][0]["decoded_special_skip"])' \
    "$FX/llama3-bytelevel/expected.json" >"$TMP/want_skip"
cmp -s "$TMP/back2" "$TMP/want_skip" || fail "--skip-special differs from HF decode(skip_special_tokens=True)"

# Empty input: an empty line; with --add-special just the BOS.
printf '' | "$BIN" tokenize --tokenizer "$tok" >"$TMP/empty" || fail "empty input"
[ "$(cat "$TMP/empty")" = "" ] && [ "$(wc -c <"$TMP/empty")" = 1 ] || fail "empty input should print one empty line"
bos=$(python3 -c 'import json,sys; print([a["id"] for a in json.load(open(sys.argv[1]))["added_tokens"] if a["content"]=="<|begin_of_text|>"][0])' "$tok")
[ "$(printf '' | "$BIN" tokenize --tokenizer "$tok" --add-special)" = "$bos" ] || fail "empty input with --add-special should be the BOS"

# --bench: one JSON object with the token count of the text.
"$BIN" tokenize --tokenizer "$tok" <"$FX/hard.txt" >"$TMP/ids"
"$BIN" tokenize --tokenizer "$tok" --bench 3 <"$FX/hard.txt" >"$TMP/bench" || fail "--bench"
python3 - "$TMP/bench" "$TMP/ids" <<'EOF' || fail "--bench output"
import json, sys
b = json.loads(open(sys.argv[1]).read())
n = len(open(sys.argv[2]).read().split())
assert b["tokens"] == n and b["runs"] == 3 and b["tokens_per_s"] > 0, b
EOF

# Bad input: message on stderr, non-zero exit, nothing on stdout.
expect_fail() { # CODE PATTERN ARGS... (stdin from $INPUT)
    local code=$1 pat=$2
    shift 2
    "$BIN" "$@" <"$INPUT" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ "$rc" = "$code" ] || fail "$* : exit $rc, expected $code"
    [ -s "$TMP/out" ] && fail "$* : wrote to stdout on failure"
    grep -q -- "$pat" "$TMP/err" || fail "$* : stderr lacks '$pat': $(cat "$TMP/err")"
}
INPUT=$FX/hard.txt
expect_fail 2 "--tokenizer is required" tokenize
expect_fail 2 "unknown" tokenize --tokenizer "$tok" --frobnicate
expect_fail 2 "--bench wants" tokenize --tokenizer "$tok" --bench 0
expect_fail 1 "/nonexistent.json" tokenize --tokenizer /nonexistent.json
head -c 3000 "$tok" >"$TMP/cut.json"
expect_fail 1 "cut.json: not valid JSON" tokenize --tokenizer "$TMP/cut.json"
printf 'note \xff\xfe text' >"$TMP/bad_utf8"
INPUT=$TMP/bad_utf8
expect_fail 1 "byte offset 5" tokenize --tokenizer "$tok"
printf '1 2 x3' >"$TMP/bad_ids"
INPUT=$TMP/bad_ids
expect_fail 1 "item 2" detokenize --tokenizer "$tok"
printf '1 99999999' >"$TMP/big_id"
INPUT=$TMP/big_id
expect_fail 1 "position 1" detokenize --tokenizer "$tok"
INPUT=/dev/null
expect_fail 2 "--tokenizer is required" detokenize

"$BIN" tokenize --help | grep -q "usage: ehrtune tokenize" || fail "tokenize --help"
"$BIN" detokenize --help | grep -q "usage: ehrtune detokenize" || fail "detokenize --help"

[ "$FAILS" = 0 ] || exit 1
echo "tokenize CLI: all checks passed"
