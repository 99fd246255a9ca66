#!/usr/bin/env bash
# What a user can get wrong on the command line ends with one clear message, a
# non-zero exit, and no output that looks complete. Also smoke-tests inspect/bench.
set -euo pipefail
bin=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
fix=$src/tests/fixtures/llama_gqa_llama3

expect_fail() { # expect_fail PATTERN CMD...: must exit non-zero, stderr must match
  local pat=$1; shift
  if "$@" > out.log 2> err.log; then echo "expected failure: $*"; exit 1; fi
  grep -q -- "$pat" err.log || { echo "message for '$*' lacks '$pat':"; cat err.log; exit 1; }
  test "$(wc -l < err.log)" -le 2 || { echo "more than one message:"; cat err.log; exit 1; }
}

# forward: token id >= vocab (97), ragged rows, missing files.
echo '{"input_ids": [[1, 2, 500]]}' > bad_ids.json
expect_fail "vocabulary size 97" "$bin" forward --model "$fix/model" --tokens bad_ids.json -o o.safetensors
test ! -e o.safetensors
echo '{"input_ids": [[1, 2, 3.7]]}' > frac_ids.json
expect_fail "input_ids\[0\]\[2\]" "$bin" forward --model "$fix/model" --tokens frac_ids.json -o o.safetensors
test ! -e o.safetensors
echo '{"input_ids": [[1, 2, 3], [1, 2]]}' > ragged.json
expect_fail "row 1" "$bin" forward --model "$fix/model" --tokens ragged.json -o o.safetensors
expect_fail "config.json" "$bin" forward --model nowhere --tokens ragged.json -o o.safetensors
test ! -e o.safetensors
# forward with a LoRA variant that keeps plain LoRA's tensors but computes otherwise
# (aLoRA): refused, not run as plain LoRA.
cp -r "$fix/adapter" alora
python3 - alora/adapter_config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["alora_invocation_tokens"] = [5, 6]
json.dump(c, open(sys.argv[1], "w"))
PY
echo '{"input_ids": [[1, 2, 3, 4]]}' > ok4.json
expect_fail "alora_invocation_tokens" "$bin" forward --model "$fix/model" --adapter alora --tokens ok4.json -o al.safetensors
test ! -e al.safetensors
# an initialisation that rewrites the base weights (PiSSA, OLoRA, CorDA, LoftQ, LoRA-GA):
# PEFT recomputes W_res on load, so applying it to the plain base is wrong: refused.
for init in pissa pissa_niter_4 olora corda loftq lora_ga; do
    rm -rf base_mut && cp -r "$fix/adapter" base_mut
    python3 - base_mut/adapter_config.json "$init" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["init_lora_weights"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
PY
    expect_fail "init_lora_weights" "$bin" forward --model "$fix/model" --adapter base_mut --tokens ok4.json -o bm.safetensors
    test ! -e bm.safetensors
done
# ...while the initialisations that leave the base alone load as plain LoRA
for init in gaussian eva orthogonal; do
    rm -rf base_ok && cp -r "$fix/adapter" base_ok
    python3 - base_ok/adapter_config.json "$init" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["init_lora_weights"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
PY
    "$bin" forward --model "$fix/model" --adapter base_ok --tokens ok4.json -o bo.safetensors > /dev/null
    test -s bo.safetensors && rm -f bo.safetensors
done
# forward without an adapter still gives logits and loss.
echo '{"input_ids": [[1, 2, 3, 4]]}' > ok.json
"$bin" forward --model "$fix/model" --tokens ok.json -o ok.safetensors > /dev/null
test -s ok.safetensors

# train: unknown key with file:line and a suggestion.
cat > typo.yaml <<'Y'
model:
  path: m
lora:
  rank: 8
data:
  train: c.h5
Y
expect_fail "typo.yaml:4: unknown key 'lora.rank' — did you mean 'lora.r'?" "$bin" train typo.yaml
# train: a corpus tokenized for a bigger vocabulary than the model's.
cp -r "$fix/model" model
printf '{"patient_id": 1, "tokens": [1, 2, 3, 4, 5, 6, 7, 8, 9, 150]}\n' > big.jsonl
"$bin" ingest --pretokenized big.jsonl -o big.h5 > /dev/null
cat > r.yaml <<'Y'
model: {path: model}
data: {train: big.h5, seq_len: 8}
optim: {steps: 2}
run: {out: run, device: cpu, micro_batch: 1}
Y
expect_fail "vocab" "$bin" train r.yaml
test ! -e run/adapter
# train: more steps than the schedule's int counts, refused before any step
printf '{"patient_id": 1, "tokens": [1, 2, 3, 4, 5, 6]}\n' > ok.jsonl
"$bin" ingest --pretokenized ok.jsonl -o ok.h5 > /dev/null
expect_fail "at most 2147483647 are supported" "$bin" train r.yaml data.train=ok.h5 optim.steps=3000000000 run.out=run4
test ! -e run4/adapter
# train: not an HDF5 corpus.
echo "not hdf5" > fake.h5
expect_fail "fake.h5" "$bin" train r.yaml data.train=fake.h5 run.out=run2
# train: a bad override value.
expect_fail "lora.r" "$bin" train r.yaml lora.r=0
# train: QLoRA / DP not yet available are refused before any work.
expect_fail "nf4" "$bin" train r.yaml model.quantize=nf4 run.out=run3
test ! -e run3

# inspect --plan: every buffer and a total; bench: one JSON line for a tiny shape.
"$bin" inspect --plan r.yaml > plan.txt
grep -q "^total" plan.txt
grep -q "acts.logits" plan.txt
"$bin" bench --hidden 32 --layers 1 --heads 2 --kv-heads 1 --ffn 48 --vocab 64 --seq 16 \
  --batch 2 --rank 2 --warmup 1 --steps 2 > bench.json
grep -q '"tokens_per_s":' bench.json
# bench: numbers are whole numbers in range, or a usage error (exit 2), not atoi's guess
for bad in "--steps 2abc" "--rank 0" "--warmup -5" "--batch x"; do
  # shellcheck disable=SC2086
  if "$bin" bench --hidden 32 --layers 1 --heads 2 --kv-heads 1 --ffn 48 --vocab 64 --seq 16 $bad \
      > out.log 2> err.log; then echo "bench accepted $bad"; exit 1; else rc=$?; fi
  test "$rc" = 2 || { echo "bench $bad: exit $rc, expected 2"; exit 1; }
  grep -q "wants a whole number" err.log || { cat err.log; exit 1; }
done
# train: a value given to --init-adapter may hold '=' (it is not a recipe override)
if "$bin" train r.yaml --init-adapter no=such/dir > out.log 2> err.log; then echo "train ran"; exit 1; fi
if grep -q "override 'no=such/dir'" err.log; then echo "--init-adapter's value read as an override"; exit 1; fi
echo "cli errors ok"
