#!/usr/bin/env bash
# Options on the command line: a flag without its value, a number with spaces or
# nothing in it, an option given twice, a bare word among the overrides: one clear
# message and exit 2, nothing written. Then what must work: --accountant in any case,
# a demo --dir holding YAML's special characters, and the --stop-after hint, which
# must resume the very run it stopped.
set -euo pipefail
bin=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=2

expect_fail() { # expect_fail PATTERN CMD...: must exit 2 (usage), stderr must match
  local pat=$1 rc=0; shift
  "$@" > out.log 2> err.log || rc=$?
  test "$rc" = 2 || { echo "'$*': exit $rc, expected 2"; cat err.log; exit 1; }
  grep -q -- "$pat" err.log || { echo "message for '$*' lacks '$pat':"; cat err.log; exit 1; }
  test "$(wc -l < err.log)" -le 2 || { echo "more than one message:"; cat err.log; exit 1; }
}

# The demo: a model and corpus for what follows, in a folder whose name would change
# meaning as YAML ('#' starts a comment, ": " a mapping, '[' a list, '&' '!' '*' ...).
dir="$work/d #1 it's: [x] &a !b *c"
"$bin" demo --recipe "$src/recipes/tiny-cpu.yaml" --dir "$dir" \
  --tokenizer "$src/tests/fixtures/tokenizers/demo-bytelevel/tokenizer.json" > demo.log \
  2> demo.err || { echo "demo in '$dir' failed:"; cat demo.err; exit 1; }
grep -q "trained 100 steps" demo.log
test -s "$dir/model/config.json"
run=$(ls -d "$dir"/train-*)
test -s "$run/adapter/adapter_model.safetensors"
ln -s "$dir" d
cat > r.yaml <<'Y'
model: {path: d/model}
data: {train: d/corpus.h5, seq_len: 64}
lora: {r: 4, alpha: 8}
optim: {steps: 6, warmup_steps: 1}
run: {out: run, device: cpu, micro_batch: 4, checkpoint_every: 0}
Y

# 1. A value-taking flag as the last argument: "--x needs a value", not "unknown option".
expect_fail "ehrtune train: --init-adapter needs a value" "$bin" train r.yaml --init-adapter
expect_fail "ehrtune train: --stop-after needs a value" "$bin" train r.yaml --stop-after
expect_fail "ehrtune inspect: --config needs a value" "$bin" inspect --plan r.yaml --config
expect_fail "ehrtune demo: --dir needs a value" "$bin" demo --dir
# ...or followed by another option: "--init-adapter --resume" took --resume as the path
expect_fail "ehrtune train: --init-adapter needs a value (got the option '--resume')" "$bin" train r.yaml --init-adapter --resume
expect_fail "needs a value (got the option '--json')" "$bin" privacy epsilon --sample-rate --json
expect_fail "ehrtune demo: --recipe needs a value" "$bin" demo --recipe
expect_fail "ehrtune bench: --hidden needs a value" "$bin" bench --hidden
expect_fail "ehrtune bench: --dropout needs a value" "$bin" bench --dropout
expect_fail "ehrtune bench: --device needs a value" "$bin" bench --device
expect_fail "ehrtune forward: --tokens needs a value" "$bin" forward --model m --tokens
expect_fail "ehrtune export: -o needs a value" "$bin" export run --format peft -o
expect_fail "ehrtune: tokenize: --bench needs a value" "$bin" tokenize --tokenizer t --bench
expect_fail "ehrtune: detokenize: --tokenizer needs a value" "$bin" detokenize --tokenizer
test ! -e run

# 2. Numbers: no space before or after, not empty, finite, in range.
expect_fail "--stop-after" "$bin" train r.yaml --stop-after " 2"
expect_fail "--stop-after" "$bin" train r.yaml --stop-after "2 "
expect_fail "--stop-after" "$bin" train r.yaml --stop-after ""
test ! -e run
priv=(epsilon --sample-rate 0.01 --noise-multiplier 1 --delta 1e-5)
expect_fail "--steps" "$bin" privacy "${priv[@]}" --steps " 5"
expect_fail "--steps" "$bin" privacy "${priv[@]}" --steps ""
expect_fail "--sample-rate" "$bin" privacy epsilon --sample-rate " 0.01" --noise-multiplier 1 \
  --delta 1e-5 --steps 5
expect_fail "--patients" "$bin" synth --patients " 3" -o s.jsonl
expect_fail "--seed" "$bin" synth --patients 3 --seed " 5" -o s.jsonl
expect_fail "--seed" "$bin" synth --patients 3 --seed "" -o s.jsonl
expect_fail "--seed" "$bin" synth --patients 3 --seed "-1" -o s.jsonl
test ! -e s.jsonl
tiny=(--hidden 32 --layers 1 --heads 2 --kv-heads 1 --ffn 48 --vocab 64 --seq 16 --batch 2
      --rank 2 --warmup 1 --steps 2)
expect_fail "--dropout" "$bin" bench "${tiny[@]}" --dropout ""
expect_fail "--dropout" "$bin" bench "${tiny[@]}" --dropout " 0.1"
expect_fail "--dropout" "$bin" bench "${tiny[@]}" --dropout nan
expect_fail "--dropout" "$bin" bench "${tiny[@]}" --dropout 1
expect_fail "--bench" "$bin" tokenize --tokenizer t --bench " 3"
printf '{"patient_id": 1, "tokens": [1, 2, 3]}\n' > p.jsonl
expect_fail "--val-frac" "$bin" ingest --pretokenized p.jsonl -o p.h5 --val-frac ""
expect_fail "--split-seed" "$bin" ingest --pretokenized p.jsonl -o p.h5 --split-seed " 1"
expect_fail "--vocab-size" "$bin" ingest --pretokenized p.jsonl -o p.h5 --vocab-size "9 "
test ! -e p.h5
"$bin" privacy "${priv[@]}" --steps 5 > /dev/null # well-formed numbers still pass

# 3. An option given twice is refused, not silently the last one.
expect_fail "-o given twice" "$bin" export "$run" --format peft -o A -o B
test ! -e A && test ! -e B
expect_fail "--steps given twice" "$bin" privacy "${priv[@]}" --steps 100 --steps 5
expect_fail "--steps given twice" "$bin" privacy "${priv[@]}" --steps 100 --steps=5
expect_fail "--patients given twice" "$bin" synth --patients 3 --patients 4 -o s.jsonl
expect_fail "-o given twice" "$bin" synth --patients 3 -o s.jsonl --output t.jsonl
test ! -e s.jsonl && test ! -e t.jsonl
expect_fail "--stop-after given twice" "$bin" train r.yaml --stop-after 2 --stop-after 3
expect_fail "--hidden given twice" "$bin" bench "${tiny[@]}" --hidden 64
expect_fail "--model given twice" "$bin" forward --model a --model b --tokens t -o o
expect_fail "--dir given twice" "$bin" demo --dir a --dir b
expect_fail "-o given twice" "$bin" ingest --pretokenized p.jsonl -o p.h5 -o q.h5
expect_fail "--truth given twice" "$bin" phi-scan p.jsonl --truth a --truth b
test ! -e run && test ! -e p.h5

# 4. inspect: a bare word among the overrides is a second recipe, as in train; an
# option's value holding '=' is no override; real overrides still apply.
expect_fail "two recipes given" "$bin" inspect --plan r.yaml lora.r
expect_fail "two recipes given" "$bin" train r.yaml lora.r
"$bin" inspect --plan r.yaml lora.r=4 > plan.txt
grep -q "LoRA r=4" plan.txt
rc=0; "$bin" inspect --plan r.yaml --config a=b/config.json > out.log 2> err.log || rc=$?
test "$rc" = 1 || { echo "inspect --config a=b/...: exit $rc"; cat err.log; exit 1; }
grep -q "a=b/config.json: cannot open" err.log || { cat err.log; exit 1; }

# 5. --accountant takes the recipe's spellings, in any case.
for a in RDP Rdp PRV; do
  want=$("$bin" privacy "${priv[@]}" --steps 100 --accountant "${a,,}" --json)
  got=$("$bin" privacy "${priv[@]}" --steps 100 --accountant "$a" --json)
  test "$got" = "$want" || { echo "--accountant $a: '$got', expected '$want'"; exit 1; }
done
expect_fail "unknown accountant" "$bin" privacy "${priv[@]}" --steps 5 --accountant gdp

# 7. --stop-after's hint resumes the same run, overrides included: a run.out (with a
# space and a quote) and a rank the recipe does not say; it ends bit-identical to an
# uninterrupted run.
ovr=(lora.r=2 lora.alpha=4 optim.steps=6)
"$bin" train r.yaml "${ovr[@]}" "run.out=part it's" --stop-after 2 > part1.log
test ! -e "part it's/adapter"
hint=$(sed -n 's/.*continue with: //p' part1.log)
case $hint in
  "ehrtune train "*" --resume") ;;
  *) echo "no resume hint: $(cat part1.log)"; exit 1 ;;
esac
eval "set -- ${hint#ehrtune }"
"$bin" "$@" > part2.log 2> part2.err || { echo "the hint '$hint' failed:"; cat part2.err; exit 1; }
test ! -e run # the recipe's own run.out stays untouched
grep -q "trained 6 steps" part2.log
"$bin" train r.yaml "${ovr[@]}" run.out=whole > whole.log
cmp whole/adapter/adapter_model.safetensors "part it's/adapter/adapter_model.safetensors"
strip() { sed 's/"tokens_per_s":[0-9.]*,//' "$1"; }
diff <(strip whole/metrics.jsonl) <(strip "part it's/metrics.jsonl")

echo "cli options ok"
