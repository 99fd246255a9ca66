#!/usr/bin/env bash
# ehrtune export end to end: a demo run exported to all three formats, then checked
# (layout, modes, manifest copy, the exported adapter computing exactly what the
# run's adapter computes, the merged model close to it in bf16, one-format layout,
# --force); then bad inputs, each of which must fail with one clear message and
# leave no output and no temporary folder; then --init-adapter from an adapter PEFT
# itself wrote in BF16.
set -u
bin=$1; src=$2
work=$(mktemp -d /tmp/et_e2e_export_XXXXXX); trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=2
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The demo with a shorter run (12 steps): the export needs a finished run, not a
# well-trained one.
sed -e 's/^  steps: [0-9]*/  steps: 12/' -e 's/^  warmup_steps: [0-9]*/  warmup_steps: 2/' \
  "$src/recipes/tiny-cpu.yaml" > tiny10.yaml
grep -q '^  steps: 12' tiny10.yaml && grep -q '^  warmup_steps: 2' tiny10.yaml \
  || { echo "recipes/tiny-cpu.yaml changed shape: cannot shorten the demo"; exit 1; }
"$bin" demo --recipe tiny10.yaml --dir demo \
  --tokenizer "$src/tests/fixtures/tokenizers/demo-bytelevel/tokenizer.json" > demo.log 2>&1 \
  || { cat demo.log; exit 1; }
run=$(ls -d demo/train-*)

# ---- all three formats -------------------------------------------------------
"$bin" export "$run" --format peft,merged --format gguf -o out > export.log 2>&1 \
  || { cat export.log; fail "export failed"; }
for f in export.json peft/adapter_config.json peft/adapter_model.safetensors peft/README.md \
         peft/manifest.json merged/config.json merged/model.safetensors merged/README.md \
         merged/manifest.json gguf/adapter.gguf gguf/README.md gguf/manifest.json; do
  [ -f "out/$f" ] || fail "missing out/$f"
done
for d in peft merged gguf; do
  cmp -s "$run/manifest.json" "out/$d/manifest.json" || fail "$d/manifest.json is not the run's"
  [ "$(stat -c %a out/$d)" = 700 ] || fail "out/$d is not 0700"
  grep -q "Not a medical device" "out/$d/README.md" || fail "$d card: no medical-device note"
  grep -q "No formal privacy guarantee" "out/$d/README.md" || fail "$d card: no privacy statement"
  grep -q "sha256" "out/$d/README.md" || fail "$d card: no digests"
done
[ "$(stat -c %a out/peft/adapter_model.safetensors)" = 600 ] || fail "adapter not 0600"
grep -q '"bfloat16"' out/merged/config.json || fail "merged config.json dtype not bfloat16"
if [ -f demo/model/tokenizer.json ]; then
  cmp -s demo/model/tokenizer.json out/merged/tokenizer.json || fail "tokenizer.json not copied"
fi
ls -a . | grep -qE '\.(tmp|old)-' && fail "temporary folder left behind"

# The exported adapter is the run's adapter: bit-identical forward outputs.
echo '{"input_ids": [[1, 17, 33, 250, 4, 99, 410, 7, 12, 300, 5, 6]]}' > t.json
"$bin" forward --model demo/model --adapter "$run/adapter" --tokens t.json -o a.st > a.log
"$bin" forward --model demo/model --adapter out/peft --tokens t.json -o b.st > b.log
cmp -s a.st b.st || fail "exported adapter computes differently from the run's adapter"
# The merged model (bf16) is close to base + adapter.
"$bin" forward --model out/merged --tokens t.json -o m.st > m.log || fail "merged model does not load"
# ... and the adapter's effect is in it: the merged loss is nearer the adapter's than
# the base model's by far (12 steps move the loss by ~0.06, bf16 merging by ~0.001; a
# merge that dropped the LoRA delta passed the old 2% check)
"$bin" forward --model demo/model --tokens t.json -o base.st > base.log || fail "base forward failed"
la=$(sed -n 's/^loss \([0-9.]*\).*/\1/p' a.log); lm=$(sed -n 's/^loss \([0-9.]*\).*/\1/p' m.log)
lb=$(sed -n 's/^loss \([0-9.]*\).*/\1/p' base.log)
awk -v a="$la" -v m="$lm" -v b="$lb" 'BEGIN { d = a - m; if (d < 0) d = -d; e = a - b; if (e < 0) e = -e;
  exit !(d < 0.02 * a && e > 0 && d < 0.25 * e) }' \
  || fail "merged loss $lm not close to adapter loss $la (base model: $lb)"

# One format: still a subfolder (one rule).
"$bin" export "$run" --format gguf -o one > /dev/null 2>&1 || fail "gguf-only export failed"
[ -f one/gguf/adapter.gguf ] && [ ! -e one/peft ] || fail "one-format layout wrong"

# --force replaces an earlier export.
before=$(stat -c %Y out/export.json)
sleep 1
"$bin" export "$run" --format peft -o out --force > /dev/null 2>&1 || fail "--force failed"
[ -f out/peft/adapter_model.safetensors ] && [ ! -e out/merged ] || fail "--force did not replace"
[ "$(stat -c %Y out/export.json)" != "$before" ] || fail "--force left the old export.json"

# ---- bad inputs --------------------------------------------------------------
# expect_error NAME RC NEEDLE ARGS...: exit code, message, no output, no temp folder.
expect_error() {
  local name=$1 want_rc=$2 needle=$3
  shift 3
  "$bin" "$@" > "$name.out" 2> "$name.err"
  local rc=$?
  [ "$rc" = "$want_rc" ] || fail "$name: exit $rc, expected $want_rc ($(cat "$name.err"))"
  grep -qF -- "$needle" "$name.err" || fail "$name: stderr lacks '$needle': $(cat "$name.err")"
  grep -q '^ehrtune export: ' "$name.err" || fail "$name: message not prefixed"
  [ "$(wc -l < "$name.err")" -le 3 ] || fail "$name: more than one message"
  ls -a . | grep -qE '\.(tmp|old)-' && fail "$name: temporary folder left behind"
}
no_output() { [ ! -e "$1" ] || fail "$1 was created"; }

recipe=$src/recipes/tiny-cpu.yaml
"$bin" train "$recipe" model.path=demo/model data.train=demo/corpus.h5 run.out=partial \
  --stop-after 2 > partial.log 2>&1 || fail "partial run failed"
expect_error unfinished 1 "has not finished" export partial --format peft -o x1
no_output x1
expect_error no_run 1 "no such run directory" export nowhere --format peft -o x2
no_output x2
expect_error bad_format 2 "unknown export format 'onnx'" export "$run" --format peft,onnx -o x3
no_output x3
expect_error no_format 2 "no --format" export "$run" -o x3b
# A base model of other shapes: the adapter does not fit it.
expect_error other_base 1 "different base model" \
  export "$run" --format merged --base "$src/tests/fixtures/qwen2_bias_tied/model" -o x4
no_output x4
# adapter_config.json naming a module a Llama model lacks.
cp -r "$run" badmod
sed -i 's/"q_proj"/"qkv_proj"/' badmod/adapter/adapter_config.json
expect_error bad_module 1 "qkv_proj" export badmod --format peft -o x5
no_output x5
# Same shapes, other weights: a size change is caught always, a same-size change with
# --verify-base (sha256 of every base file against the manifest).
cp -r demo/model m_grown && truncate -s +8 m_grown/model.safetensors
expect_error base_size 1 "not the base model" export "$run" --format peft --base m_grown -o x6
no_output x6
cp -r demo/model m_flip
printf '\x01' | dd of=m_flip/model.safetensors bs=1 seek=$(( $(stat -c %s m_flip/model.safetensors) - 3 )) conv=notrunc 2>/dev/null
expect_error base_sha 1 "sha256" export "$run" --format peft --base m_flip --verify-base -o x7
no_output x7
# Adapter weights changed after training: the manifest's digest no longer holds.
cp -r "$run" tampered
printf '\x01' | dd of=tampered/adapter/adapter_model.safetensors bs=1 \
  seek=$(( $(stat -c %s tampered/adapter/adapter_model.safetensors) - 2 )) conv=notrunc 2>/dev/null
expect_error adapter_sha 1 "changed after training" export tampered --format peft -o x8
no_output x8
# An existing folder: refused without --force; with --force only if it is an export.
expect_error exists 1 "already exists" export "$run" --format peft -o out
[ -f out/peft/adapter_model.safetensors ] || fail "existing export damaged"
mkdir keep && touch keep/precious
expect_error not_export 1 "not an ehrtune export" export "$run" --format peft -o keep --force
[ -f keep/precious ] || fail "a non-export folder was touched"

# ---- --init-adapter from a PEFT-written BF16 adapter ---------------------------
fx=$src/tests/fixtures
python_tokens='{"patient_id": 1, "tokens": [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77]}'
{ echo "$python_tokens"; echo '{"patient_id": 2, "tokens": [2, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50, 54, 58, 62, 66, 70, 74, 78, 82, 86, 90]}'; } > small.jsonl
"$bin" ingest --pretokenized small.jsonl -o small.h5 > /dev/null || fail "ingest failed"
# lr 1e-30: one AdamW step that cannot move any weight, so the saved adapter must be
# exactly the imported one (BF16 values widened to F32).
"$bin" train "$recipe" model.path="$fx/llama_gqa_llama3/model" data.train=small.h5 \
  data.seq_len=8 lora.r=4 lora.alpha=8 lora.targets=q_proj,v_proj optim.lr=1e-30 \
  optim.steps=1 optim.warmup_steps=0 run.micro_batch=2 run.out=init \
  --init-adapter "$fx/export/peft_bf16/llama_qv/adapter" > init.log 2>&1 \
  || { cat init.log; fail "--init-adapter with a PEFT bf16 adapter failed"; }
tok=$fx/llama_gqa_llama3/tokens.json
"$bin" forward --model "$fx/llama_gqa_llama3/model" --adapter init/adapter --tokens "$tok" -o i1.st > /dev/null
"$bin" forward --model "$fx/llama_gqa_llama3/model" --adapter "$fx/export/peft_bf16/llama_qv/adapter" \
  --tokens "$tok" -o i2.st > /dev/null
cmp -s i1.st i2.st || fail "--init-adapter did not start from the PEFT adapter's weights"
# ... and the run it produced exports.
"$bin" export init --format peft,gguf -o init_out > /dev/null 2>&1 || fail "exporting the init run failed"

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "export e2e ok"
