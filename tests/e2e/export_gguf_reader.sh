#!/usr/bin/env bash
# GGUF adapters read back by the `gguf` package (llama.cpp's gguf-py): each
# committed fixture run (Llama GQA, Mistral rsLoRA, Qwen2) is exported to GGUF in
# F32 and BF16 and compared tensor by tensor with its PEFT export
# (tests/crosscheck/check_gguf_adapter.py). Skipped (77) where no Python with numpy
# and gguf is found (/opt/xc/bin/python, else python3).
set -euo pipefail
bin=$1; src=$2
py=""
for cand in /opt/xc/bin/python python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import gguf, numpy" 2>/dev/null; then
    py=$cand; break
  fi
done
if [ -z "$py" ]; then echo "skipped: no Python with the gguf package"; exit 77; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
for c in llama:llama_gqa_llama3 mistral:mistral_window qwen2:qwen2_bias_tied; do
  name=${c%%:*}; model=tests/fixtures/${c#*:}/model
  for dt in f32 bf16; do
    out=$work/$name-$dt
    "$bin" export "tests/fixtures/export/$name/run" --base "$model" --format peft,gguf \
      --dtype "$dt" -o "$out" >/dev/null
    "$py" tests/crosscheck/check_gguf_adapter.py --gguf "$out/gguf/adapter.gguf" \
      --peft "$out/peft" --config "$model/config.json"
  done
done
