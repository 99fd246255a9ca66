#!/usr/bin/env bash
# The CUDA training path under the CPU emulation of CUDA (tests/gpu/emu/,
# docs/cuda.md): 20 steps of four tiny models on the CPU reference and on the
# emulated CUDA backend, plus 12 DP-SGD steps, every step's loss within 2e-2
# (tests/gpu/bench_train.c --parity, as tests/gpu/check.sh runs it on a GPU), with
# the default choice of attention kernels (every variant of ours has its own rows in
# e2e_cuda_emulated_parity); then tests/unit/test_cuda_timeline.c (the step
# profile's marks per op class). Checks the model's op list
# (trainer/model_cuda_pass.c), activation checkpointing and the DP path on every
# change, on machines without a GPU. Not a substitute for the GPU run.
# $1 = the ehrtune binary (its folder is the build folder), $2 = the source folder.
# Exit 77 (skipped) when g++ or python3, which the emulation needs, is missing.
set -u
build=$(cd "$(dirname "$1")" && pwd)
src=$2
for tool in g++ python3; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool is missing (the CUDA emulation needs it)"; exit 77; }
done
# cuDNN's attention is a stand-in here (tests/gpu/emu/mock/attention_cudnn.cu: our
# kernels behind cuDNN's interface). The default run has it available and refusing
# micro-batches of one sequence: the model must take it first, then leave it for our
# kernels at the partial batches train_parity.h makes every fifth step, and say so.
# The default run has the K-extended LoRA layout and LoRA dropout through masked
# copies and GEMMs (the defaults a card timed fastest). EMU_TRAIN_ALT=1
# (cuda_emulated_train_alt.sh): the same parity with the other paths, in its own folder
# (ctest may run both at once): packed LoRA rows (EHRTUNE_CUDA_LORA_KEXT=0), the fused
# LoRA-dropout kernels (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1), and a cuDNN that offers
# only a non-deterministic backward (the default must refuse it and say why). Then
# tiny benches: cuDNN asked for by name, unavailable (the fallback's note) and
# non-deterministic only (taken, and said); and a cuDNN older than 9.15.1, which the
# default must not put first.
alt=${EMU_TRAIN_ALT:-0}
out=$build/emu-train
label="default paths"
export EHRTUNE_EMU_CUDNN=1 EHRTUNE_EMU_CUDNN_REFUSE=1x64 # the cases' partial batches
unset EHRTUNE_CUDA_LORA_KEXT EHRTUNE_CUDA_LORA_DROPOUT_FUSED
if [ "$alt" = 1 ]; then
    out=$build/emu-train-alt label="packed LoRA rows, fused dropout kernels"
    export EHRTUNE_CUDA_LORA_KEXT=0 EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1 EHRTUNE_EMU_CUDNN=nondet
    unset EHRTUNE_EMU_CUDNN_REFUSE
fi
mkdir -p "$out"
cd "$src" || exit 1
srcs="trainer/model.c trainer/model_acts.c trainer/lora.c trainer/model_cuda.c
    trainer/model_cuda_plan.c trainer/model_cuda_attn.c trainer/model_cuda_pass.c
    trainer/bench_cuda.c trainer/model_cuda_dp.c trainer/dp.c trainer/dp_rng.c"
# shellcheck disable=SC2086
EMU_OBJ=$out/obj bash tests/gpu/emu/build.sh "$out/bench_train_emu" $srcs tests/gpu/bench_train.c -- \
    -DET_BENCH_STANDALONE -DEHRTUNE_HAVE_CUDA >"$out/build.log" 2>&1 ||
    { cat "$out/build.log"; echo "FAIL: the emulated training program did not build"; exit 1; }
cd "$out" || exit 1
rm -f "$out/parity.jsonl"
"$out/bench_train_emu" --parity --json "$out/parity.jsonl" >"$out/parity.txt" 2>&1
rc=$?
grep '"kind": "train_parity"' "$out/parity.jsonl" 2>/dev/null | cut -c1-200
[ $rc -eq 0 ] || { tail -30 "$out/parity.txt"; echo "FAIL: CPU and emulated CUDA training disagree ($label, rc=$rc)"; exit 1; }
rows() { grep '"kind": "train_parity"' "$out/parity.jsonl" | grep -c "$1"; }
# the paths asked for ran: five rows (four cases + DP), every case's k·r a multiple of 8
if [ "$alt" = 1 ]; then kext_want=false fused_want=true; else kext_want=true fused_want=false; fi
n=$(rows "\"lora_kext\": $kext_want, \"dropout_fused\": $fused_want")
[ "$n" -eq 5 ] || { echo "FAIL: $n of 5 rows ran lora_kext=$kext_want dropout_fused=$fused_want ($label)"; exit 1; }
if [ "$alt" = 1 ]; then # the step profile is checked by the default run
    n=$(rows 'chained dK/dV backward.*cuDNN failed its self-check: .*no deterministic algorithm')
    [ "$n" -ge 5 ] || { echo "FAIL: the default took a cuDNN without a deterministic backward, or said nothing ($n rows)"; exit 1; }
    tiny=(--bench --batch 2 --seq 64 --layers 1 --hidden 64 --heads 4 --kv-heads 2 --ffn 128
          --vocab 256 --warmup 1 --steps 1 --json "$out/tiny.jsonl")
    rm -f "$out/tiny.jsonl"
    EHRTUNE_EMU_CUDNN=0 EHRTUNE_CUDA_ATTENTION=cudnn "$out/bench_train_emu" "${tiny[@]}" >"$out/tiny.txt" 2>&1 &&
        EHRTUNE_CUDA_ATTENTION=cudnn "$out/bench_train_emu" "${tiny[@]}" >>"$out/tiny.txt" 2>&1 &&
        EHRTUNE_EMU_CUDNN=1 EHRTUNE_EMU_CUDNN_VERSION=91500 "$out/bench_train_emu" "${tiny[@]}" >>"$out/tiny.txt" 2>&1 ||
        { cat "$out/tiny.txt"; echo "FAIL: tiny bench with EHRTUNE_CUDA_ATTENTION=cudnn"; exit 1; }
    grep -q '"attention": "bf16 tensor-core kernel, chained dK/dV backward.*cudnn asked for, unavailable' "$out/tiny.jsonl" ||
        { cat "$out/tiny.jsonl"; echo "FAIL: cudnn asked for without cuDNN: no fallback note"; exit 1; }
    grep -q '"attention": "cuDNN fused flash attention, emulated cuDNN, backward not deterministic' "$out/tiny.jsonl" ||
        { cat "$out/tiny.jsonl"; echo "FAIL: cudnn asked for by name was not taken with its non-deterministic backward"; exit 1; }
    grep -q '"attention": "bf16 tensor-core kernel, chained dK/dV backward.*cuDNN not used: cuDNN 91500 predates 9.15.1' "$out/tiny.jsonl" ||
        { cat "$out/tiny.jsonl"; echo "FAIL: a cuDNN older than 9.15.1 led the default order"; exit 1; }
    echo "PASS"; exit 0
fi
n=$(rows '"attention": "cuDNN fused flash attention, emulated cuDNN, deterministic backward.*from a micro-batch of 1 on: chained dK/dV backward')
[ "$n" -ge 4 ] || { echo "FAIL: the model did not take cuDNN first and leave it at a refused batch size with a note ($n rows)"; exit 1; }
cd "$src" || exit 1
# shellcheck disable=SC2086
EMU_OBJ=$out/obj EMU_LIBS="-lcmocka -lcjson" bash tests/gpu/emu/build.sh "$out/timeline_emu" \
    tests/unit/test_cuda_timeline.c data/hf_config.c data/atomic_file.c $srcs -- \
    -DEHRTUNE_HAVE_CUDA >"$out/build_timeline.log" 2>&1 ||
    { cat "$out/build_timeline.log"; echo "FAIL: the emulated timeline test did not build"; exit 1; }
"$out/timeline_emu" >"$out/timeline.txt" 2>&1 || { cat "$out/timeline.txt"; echo "FAIL: step profile"; exit 1; }
grep -E "PASSED|FAILED" "$out/timeline.txt"
echo "PASS"
