#!/usr/bin/env bash
# The one script for a lent GPU machine (docs/cuda.md). Usage, from anywhere:
#   bash tests/gpu/check.sh OUTDIR
# Steps, each under `timeout`, each recorded as OK / FAIL / SKIP / TIMEOUT, none
# stopping the later ones (the whole run stays under 8 minutes). Files named OUTDIR/x
# below are written to a work folder; OUTDIR itself gets at most five (the device tool
# returns 8): summary.txt, summary.json, steps.tsv, parity.txt and check.tgz (all the
# rest), refreshed after every step. The printed summary ends with the key results, so
# the last 12,000 characters of the output (all the tool returns) hold them:
#   1. inventory    -> OUTDIR/inventory.txt (GPU, toolchain, Python stack, system libs)
#   2. build        gpu_parity for sm_90 with nvcc + gcc only (no CMake, no BLAS,
#                   no HDF5...); falls back to a prebuilt .carry/gpu_parity
#                   (tests/gpu/prebuild.sh) if the build fails. Compiler resource
#                   report (registers, spills) -> OUTDIR/ptxas.txt
#   3. parity       every CUDA op vs the CPU reference + timed Llama-1B-sized rows
#                   -> OUTDIR/parity.txt, OUTDIR/parity.jsonl
#   4. hf_bench     HF transformers + PEFT LoRA steps on the same GPU
#                   -> OUTDIR/hf_bench.jsonl, OUTDIR/hf_bench.log; torch's SDPA
#                   kernels alone at the perf.attention shapes -> OUTDIR/sdpa_bench.jsonl
#   5. build_train  tests/gpu/bench_train (the CUDA training path: kernels + the
#                   trainer's model files, no CLI dependencies); falls back to a
#                   prebuilt .carry/bench_train
#   6. train_parity 20 AdamW steps of two tiny models on the CPU and on CUDA: every
#                   step's loss within 2e-2 -> OUTDIR/train_parity.{txt,jsonl}
#   7. cuda_bench   ehrtune's CUDA LoRA training at the HF bench's shape and batch
#                   sizes (+ activation checkpointing) -> OUTDIR/cuda_bench.{jsonl,log}
#   8. sanitizer    compute-sanitizer memcheck over the parity rows, if time is left
#   9. summary      a short table printed last (ehrtune beside HF+PEFT, the batch-4
#                   step by op class), and
#                   OUTDIR/summary.json
# Exit: 0 when parity, the HF benchmark, the training parity and the CUDA benchmark
# all succeeded, 77 when no GPU is visible, 1 otherwise. ET_CHECK_PREBUILT=1 skips
# the builds and uses .carry/gpu_parity and .carry/bench_train.
set -u

FINAL=${1:?usage: bash tests/gpu/check.sh OUTDIR}
mkdir -p "$FINAL" || exit 1
FINAL=$(cd "$FINAL" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
START=$(date +%s)
DEADLINE=$((START + 465)) # 7 min 45 s: everything, the summary included
# The device tool brings back at most 8 files from its $OUT: every step writes into a
# work folder, and pack() puts summary.json, summary.txt, steps.tsv, parity.txt and
# check.tgz (all of it, big logs cut to 4 MiB) into OUTDIR — after every step, so a
# run killed at the call's limit still returns what it had.
OUT=$(mktemp -d /tmp/ehrtune-check.XXXXXX)
STEPS="$OUT/steps.tsv"
: >"$STEPS"
BUILD=$(mktemp -d /tmp/ehrtune-gpu.XXXXXX)
export ROOT OUT BUILD FINAL
pack() {
    find "$OUT" -type f -size +4M -exec truncate -s 4M {} \; 2>/dev/null
    for f in summary.json summary.txt steps.tsv parity.txt; do
        [ -e "$OUT/$f" ] && cp "$OUT/$f" "$FINAL/$f"
    done
    tar czf "$FINAL/check.tgz.tmp" -C "$OUT" . 2>/dev/null && mv "$FINAL/check.tgz.tmp" "$FINAL/check.tgz"
}
trap 'exit 143' TERM INT
trap pack EXIT

# Runs a step under timeout (capped by the deadline) and records its outcome.
# usage: step NAME SECONDS FUNCTION
step() {
    local name=$1 limit=$2 fn=$3 t0 rc status left
    left=$((DEADLINE - $(date +%s) - 10))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
        printf '%s\tSKIP\t0\tno time left\n' "$name" >>"$STEPS"
        echo "== $name: SKIP (no time left)"
        return
    fi
    echo "== $name (limit ${limit}s)"
    t0=$(date +%s)
    timeout -k 5 "$limit" bash -c "$fn"
    rc=$?
    case $rc in
    0) status=OK ;;
    77) status=SKIP ;;
    124 | 137) status=TIMEOUT ;;
    *) status=FAIL ;;
    esac
    printf '%s\t%s\t%s\trc=%s\n' "$name" "$status" "$(($(date +%s) - t0))" "$rc" >>"$STEPS"
    echo "== $name: $status (rc=$rc, $(($(date +%s) - t0)) s)"
    pack
}

# ---------------------------------------------------------------- 1. inventory
inventory() {
    {
        echo "== date"; date -u
        echo "== uname"; uname -a
        echo "== repo"; (cd "$ROOT" && git rev-parse HEAD 2>/dev/null && git status --short 2>/dev/null | wc -l) || echo "(no git)"
        # the device tool's copy may carry a stale .git: prebuild.sh records the commit it built
        [ -f "$ROOT/.carry/source_commit" ] && echo "prebuilt from: $(cat "$ROOT/.carry/source_commit")"
        echo "== nvidia-smi"; timeout --foreground 20 nvidia-smi || echo "nvidia-smi: not available"
        echo "== nvidia-smi query"
        timeout --foreground 20 nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,driver_version,compute_cap --format=csv || true
        echo "== nvcc"; command -v nvcc && nvcc --version || echo "nvcc: not on PATH"; ls -d /usr/local/cuda* 2>/dev/null
        echo "== gcc"; gcc --version 2>&1 | head -1
        echo "== cmake"; cmake --version 2>&1 | head -1
        echo "== python"; command -v python3; python3 --version 2>&1
        timeout --foreground 60 python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available()); print("transformers", transformers.__version__); print("peft", peft.__version__)' 2>&1 | tail -5
        echo "== tools"; for t in compute-sanitizer ncu cuobjdump nvdisasm cuda-gdb; do printf '%s: ' "$t"; command -v "$t" || echo "-"; done
        echo "== system libraries (ldconfig)"
        ldconfig -p 2>/dev/null | grep -E "hdf5|openblas|yaml|cjson|cmocka|zstd|mpi|nccl|cudnn|cublas" || echo "(none of them)"
        echo "== headers"; for h in cblas.h hdf5.h hdf5/serial/hdf5.h yaml.h cjson/cJSON.h cmocka.h zstd.h mpi.h; do [ -e "/usr/include/$h" ] && echo "/usr/include/$h"; done
        echo "== pkg-config"; for p in hdf5 openblas yaml-0.1 libcjson cmocka libzstd ompi; do printf '%s: ' "$p"; pkg-config --modversion "$p" 2>/dev/null || echo "-"; done
        echo "== cpu/mem/disk"; nproc; free -g 2>/dev/null | head -2; df -h /tmp 2>/dev/null | tail -1
    } >"$OUT/inventory.txt" 2>&1
    echo "   $(grep -m1 -E 'NVIDIA|nvidia-smi: not' "$OUT/inventory.txt" || true)"
}
export -f inventory

# ------------------------------------------------------------------- 2. build
# The folder holding libcublasLt: the toolkit's, the system's, or (last resort)
# pip's CUDA wheels that torch uses. $1: the CUDA toolkit root, if known.
cublas_dir() {
    local d sp dirs=()
    [ -n "${1:-}" ] && dirs+=("$1/lib64" "$1/lib" "$1/targets/x86_64-linux/lib")
    dirs+=(/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu)
    for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
        for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && dirs+=("$d"); done
    done
    for d in "${dirs[@]}"; do
        ls "$d"/libcublasLt.so* >/dev/null 2>&1 && { echo "$d"; return 0; }
    done
    return 1
}
export -f cublas_dir

# The folder holding libcudnn.so.9 (cuDNN's fused attention, opened at run time): of
# the system's and pip's cuDNN wheel that torch uses, the newest (cudnnGetVersion via
# ctypes: no GPU needed) — the model prefers cuDNN only from 9.15.1 on, and torch's
# SDPA peer runs its own wheel's.
cudnn_lib_dir() {
    local d sp v best="" best_v=0 dirs=(/usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib64)
    for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
        [ -d "$sp/nvidia/cudnn/lib" ] && dirs+=("$sp/nvidia/cudnn/lib")
    done
    for d in "${dirs[@]}"; do
        [ -e "$d/libcudnn.so.9" ] || continue
        v=$(python3 -c 'import ctypes, sys; print(ctypes.CDLL(sys.argv[1]).cudnnGetVersion())' \
            "$d/libcudnn.so.9" 2>/dev/null) || v=1
        case "$v" in ''|*[!0-9]*) v=1 ;; esac
        [ "$v" -gt "$best_v" ] && best=$d best_v=$v
    done
    [ -n "$best" ] && { echo "$best"; return 0; }
    return 1
}
export -f cudnn_lib_dir
# cudnn.h for the build: the toolkit's, the system's, or pip's cuDNN wheel.
cudnn_header_dir() {
    local d sp dirs=("$@" /usr/include /usr/include/x86_64-linux-gnu /usr/local/cuda/include)
    for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
        dirs+=("$sp/nvidia/cudnn/include")
    done
    for d in "${dirs[@]}"; do
        [ -e "$d/cudnn.h" ] && [ -e "$d/cudnn_graph.h" ] && { echo "$d"; return 0; }
    done
    return 1
}
export -f cudnn_header_dir
if d=$(cudnn_lib_dir); then
    export EHRTUNE_CUDNN_LIB="$d/libcudnn.so.9" LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# Finds nvcc, the cuBLASLt library and header; compiles with nvcc (sm_90) and gcc.
build() {
    set -u
    if [ -n "${ET_CHECK_PREBUILT:-}" ]; then echo "   ET_CHECK_PREBUILT set: not building"; return 1; fi
    local nvcc cuda lib inc lt f pids=() fails=0
    nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null) || { echo "no nvcc"; return 1; }
    cuda=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
    lib=$(cublas_dir "$cuda") || { echo "no libcublasLt found"; return 1; }
    lt=$(ls "$lib"/libcublasLt.so* | head -1)
    for d in "$cuda/include" "$cuda/targets/x86_64-linux/include" /usr/local/cuda/include /usr/include \
        $(dirname "$lib")/include; do
        [ -e "$d/cublasLt.h" ] && { inc=$d; break; }
    done
    [ -n "${inc:-}" ] || { echo "no cublasLt.h found"; return 1; }
    echo "   nvcc $nvcc; cuBLASLt $lt; header $inc/cublasLt.h"
    echo "$lib" >"$BUILD/cublas_lib_dir"
    local NVFLAGS="-gencode=arch=compute_90,code=sm_90 -O3 --use_fast_math -lineinfo -std=c++17 -Xptxas -v -I$ROOT -I$inc"
    # cuDNN's attention: with the frontend headers (carried by prebuild.sh, or `make
    # deps`'s) and cudnn.h; otherwise compiled out (its parity rows then say SKIP)
    local fe cudnn_inc cudnn_flags=""
    for fe in "$ROOT/.carry/cudnn_frontend/include" "$ROOT/build/deps/cudnn_frontend/include"; do
        [ -e "$fe/cudnn_frontend.h" ] && break
    done
    # the chosen library's own headers first (a wheel's lib/ has include/ beside it)
    local lib_inc=""
    [ -n "${EHRTUNE_CUDNN_LIB:-}" ] && lib_inc=$(dirname "$(dirname "$EHRTUNE_CUDNN_LIB")")/include
    if [ -e "$fe/cudnn_frontend.h" ] &&
        cudnn_inc=$(cudnn_header_dir ${lib_inc:+"$lib_inc"} "$inc" "$cuda/include"); then
        cudnn_flags="-DETC_HAVE_CUDNN_FRONTEND -I$fe -I$cudnn_inc -diag-suppress=128,2810"
        echo "   cuDNN attention: frontend $fe, cudnn.h in $cudnn_inc, library ${EHRTUNE_CUDNN_LIB:-not found}"
    else
        echo "   cuDNN attention compiled out (frontend headers: ${fe:-none}; cudnn.h: ${cudnn_inc:-none})"
    fi
    for f in "$ROOT"/kernels/cuda/*.cu; do
        local b extra=""
        b=$(basename "$f" .cu)
        [ "$b" = attention_cudnn ] && extra=$cudnn_flags
        # A cuDNN build that fails (this machine's cudnn.h against the carried frontend)
        # must not cost the window: that one choice is then compiled out, and said.
        # $extra first: its cudnn.h must win over one in the toolkit's include folder
        ( "$nvcc" $extra $NVFLAGS -c "$f" -o "$BUILD/cu_$b.o" >"$BUILD/cu_$b.log" 2>&1 ||
          { [ -n "$extra" ] && mv "$BUILD/cu_$b.log" "$OUT/cudnn_build_failed.log" &&
            echo "   cuDNN attention failed to build (log: cudnn_build_failed.log); compiled out" &&
            "$nvcc" $NVFLAGS -c "$f" -o "$BUILD/cu_$b.o" >"$BUILD/cu_$b.log" 2>&1; } ) &
        pids+=($!)
    done
    shopt -s nullglob
    # the CPU reference (+ data/error.c, dependency-free, in case a kernel reports errors)
    for f in "$ROOT"/kernels/*.c "$ROOT"/kernels/cpu/*.c "$ROOT"/data/error.c; do
        gcc -std=c11 -O2 -fopenmp -fno-trapping-math -fno-math-errno -DET_NO_BLAS -D_GNU_SOURCE -I"$ROOT" -c "$f" \
            -o "$BUILD/c_$(basename "$f" .c).o" >"$BUILD/c_$(basename "$f" .c).log" 2>&1 &
        pids+=($!)
    done
    gcc -std=c11 -O2 -fopenmp -D_GNU_SOURCE -I"$ROOT" -I"$cuda/include" -I"$inc" \
        -c "$ROOT/tests/gpu/parity.c" -o "$BUILD/parity.o" >"$BUILD/parity.log" 2>&1 &
    pids+=($!)
    for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
    cat "$BUILD"/*.log >"$OUT/build.log" 2>/dev/null
    grep -hE "Compiling entry|registers|spill" "$BUILD"/cu_*.log >"$OUT/ptxas.txt" 2>/dev/null
    if [ "$fails" -gt 0 ]; then
        echo "   $fails compile(s) failed; first errors:"
        grep -h -m3 -i "error" "$BUILD"/*.log | head -12
        return 1
    fi
    "$nvcc" -gencode=arch=compute_90,code=sm_90 "$BUILD"/*.o -o "$BUILD/gpu_parity" "$lt" \
        -lgomp -lm -ldl -Xlinker -rpath -Xlinker "$lib" >>"$OUT/build.log" 2>&1 || {
        echo "   link failed:"; tail -5 "$OUT/build.log"; return 1; }
    echo "   built $BUILD/gpu_parity"
}
export -f build

# ------------------------------------------------------------------ 3. parity
parity() {
    local bin=$BUILD/gpu_parity
    if [ ! -x "$bin" ]; then
        bin=$ROOT/.carry/gpu_parity
        [ -x "$bin" ] || { echo "   no gpu_parity (build failed, no .carry/gpu_parity)"; return 1; }
        echo "   using the prebuilt $bin"
    fi
    local lib
    lib=$(cat "$BUILD/cublas_lib_dir" 2>/dev/null || cublas_dir "" || true)
    echo "$bin" >"$BUILD/parity_bin"
    LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}" "$bin" --json "$OUT/parity.jsonl" \
        2>&1 | tee "$OUT/parity.txt"
    return "${PIPESTATUS[0]}"
}
export -f parity

# ---------------------------------------------------------------- 4. hf_bench
hf_bench() {
    if ! timeout --foreground 20 nvidia-smi -L >/dev/null 2>&1; then echo "   no GPU: skipped"; return 77; fi
    python3 "$ROOT/tests/gpu/bench_hf_peft.py" --batches 1,4 --seq 2048 --warmup 2 --steps 5 \
        --out "$OUT/hf_bench.jsonl" >"$OUT/hf_bench.log" 2>&1
    local rc=$?
    # the shipped non-DP recipes' LoRA dropout, at batch 4 (ehrtune's twin run in cuda_bench)
    python3 "$ROOT/tests/gpu/bench_hf_peft.py" --batches 4 --seq 2048 --warmup 2 --steps 5 \
        --lora-dropout 0.05 --out "$OUT/hf_bench.jsonl" >>"$OUT/hf_bench.log" 2>&1 || rc=1
    grep '"kind": "bench"' "$OUT/hf_bench.log" | cut -c1-300
    [ $rc -ne 0 ] && tail -5 "$OUT/hf_bench.log"
    # the attention op alone through torch's SDPA backends (the peer of the
    # perf.attention rows); informative, not part of the step's outcome
    timeout --foreground -k 5 60 python3 "$ROOT/tests/gpu/bench_sdpa.py" --batches 1,4 --out "$OUT/sdpa_bench.jsonl" \
        >>"$OUT/hf_bench.log" 2>&1 || echo "   bench_sdpa failed (see hf_bench.log)"
    return $rc
}
export -f hf_bench

# ------------------------------------------------------------ 5. build_train
# The CUDA training path as one program: the kernels and CPU reference objects of
# `build`, plus the trainer files that need none of the CLI's libraries.
TRAIN_SRCS="trainer/model.c trainer/model_acts.c trainer/lora.c trainer/model_cuda.c
    trainer/model_cuda_plan.c trainer/model_cuda_attn.c trainer/model_cuda_pass.c
    trainer/bench_cuda.c tests/gpu/bench_train.c trainer/model_cuda_dp.c trainer/dp.c
    trainer/dp_rng.c"
export TRAIN_SRCS
build_train() {
    set -u
    if [ -n "${ET_CHECK_PREBUILT:-}" ]; then echo "   ET_CHECK_PREBUILT set: not building"; return 1; fi
    local nvcc lib lt f o pids=() fails=0
    [ -e "$BUILD/cublas_lib_dir" ] && [ -x "$BUILD/gpu_parity" ] ||
        { echo "   the kernel build did not finish"; return 1; }
    nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null) || { echo "no nvcc"; return 1; }
    lib=$(cat "$BUILD/cublas_lib_dir")
    lt=$(ls "$lib"/libcublasLt.so* | head -1)
    mkdir -p "$BUILD/train"
    for f in $TRAIN_SRCS; do
        o="$BUILD/train/$(echo "$f" | tr / _ | sed 's/\.c$//')"
        gcc -std=c11 -O2 -fopenmp -D_GNU_SOURCE -DEHRTUNE_HAVE_CUDA=1 -DET_BENCH_STANDALONE \
            -I"$ROOT" -c "$ROOT/$f" -o "$o.o" >"$o.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
    cat "$BUILD"/train/*.log >"$OUT/build_train.log" 2>/dev/null
    if [ "$fails" -gt 0 ]; then
        echo "   $fails compile(s) failed; first errors:"
        grep -h -m3 -i "error" "$BUILD"/train/*.log | head -12
        return 1
    fi
    # every kernel object, the CPU reference objects (c_*), not parity.o (its own main)
    "$nvcc" -gencode=arch=compute_90,code=sm_90 "$BUILD"/cu_*.o "$BUILD"/c_*.o "$BUILD"/train/*.o \
        -o "$BUILD/bench_train" "$lt" -lgomp -lm -ldl -Xlinker -rpath -Xlinker "$lib" \
        >>"$OUT/build_train.log" 2>&1 || { echo "   link failed:"; tail -5 "$OUT/build_train.log"; return 1; }
    echo "   built $BUILD/bench_train"
}
export -f build_train

# The bench_train binary: this run's build, else the prebuilt one.
train_bin() {
    if [ -x "$BUILD/bench_train" ]; then echo "$BUILD/bench_train"; return 0; fi
    [ -x "$ROOT/.carry/bench_train" ] && { echo "$ROOT/.carry/bench_train"; return 0; }
    return 1
}
export -f train_bin

# ----------------------------------------------------------- 6. train_parity
train_parity() {
    local bin lib
    bin=$(train_bin) || { echo "   no bench_train (build failed, no .carry/bench_train)"; return 1; }
    lib=$(cat "$BUILD/cublas_lib_dir" 2>/dev/null || cublas_dir "" || true)
    LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}" "$bin" --parity --json "$OUT/train_parity.jsonl" \
        >"$OUT/train_parity.txt" 2>&1
    local rc=$?
    grep -E "^train parity|^\{" "$OUT/train_parity.txt" | cut -c1-230
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        tail -3 "$OUT/train_parity.txt"
        # Diagnosis for the one run: the same check with the fp32 attention kernel
        # tells an attention fault from a model fault (still a FAIL either way).
        echo "   again with EHRTUNE_CUDA_ATTENTION_FP32=1:"
        EHRTUNE_CUDA_ATTENTION_FP32=1 LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}" timeout --foreground -k 5 60 \
            "$bin" --parity --json "$OUT/train_parity.jsonl" >"$OUT/train_parity_fp32attn.txt" 2>&1
        grep -E "^\{" "$OUT/train_parity_fp32attn.txt" | cut -c1-230
    fi
    return $rc
}
export -f train_parity

# --------------------------------------------------------------- 6b. cli_train
# The real CLI, when tests/gpu/stage_cli.sh staged it in .carry/ (the machine lacks
# libyaml and cJSON to build it): `ehrtune demo` (synth -> ingest -> CPU training),
# then the same tiny recipe with run.device=cuda (bf16), whose loss curve must track
# the CPU one, then `ehrtune bench --device cuda --llama-1b` through the CLI.
cli_train() {
    local bin="$ROOT/.carry/ehrtune" lib d="$BUILD/cli"
    [ -x "$bin" ] || { echo "   no .carry/ehrtune (run tests/gpu/stage_cli.sh here first)"; return 77; }
    lib=$(cat "$BUILD/cublas_lib_dir" 2>/dev/null || cublas_dir "" || true)
    export LD_LIBRARY_PATH="$ROOT/.carry/lib${lib:+:$lib}:${LD_LIBRARY_PATH:-}"
    mkdir -p "$d" && cd "$ROOT" || return 1
    "$bin" demo --dir "$d/demo" >"$OUT/cli_demo.log" 2>&1 || { tail -5 "$OUT/cli_demo.log"; return 1; }
    grep -E "^trained|^PHI|^ingested" "$OUT/cli_demo.log"
    local cpu_run; cpu_run=$(ls -d "$d"/demo/train-* | head -1)
    "$bin" train recipes/tiny-cpu.yaml model.path="$d/demo/model" data.train="$d/demo/corpus.h5" \
        run.out="$d/cuda" run.device=cuda model.dtype=bf16 >"$OUT/cli_train.log" 2>&1 ||
        { tail -5 "$OUT/cli_train.log"; return 1; }
    grep -E "^trained|^adapter" "$OUT/cli_train.log"
    cp "$d/cuda/metrics.jsonl" "$OUT/cli_cuda_metrics.jsonl"
    cp "$cpu_run/metrics.jsonl" "$OUT/cli_cpu_metrics.jsonl"
    python3 - "$OUT/cli_cpu_metrics.jsonl" "$OUT/cli_cuda_metrics.jsonl" "$d/cuda/manifest.json" <<'PY' || return 1
import json, sys
cpu = [json.loads(l)["loss"] for l in open(sys.argv[1])]
gpu = [json.loads(l)["loss"] for l in open(sys.argv[2])]
dev = json.load(open(sys.argv[3]))["run"]["device"]
worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, gpu))
print(f"   ehrtune train tiny recipe: cpu {cpu[0]:.3f}->{cpu[-1]:.3f}, {dev} {gpu[0]:.3f}->{gpu[-1]:.3f}, "
      f"worst relative loss difference over {len(gpu)} steps {worst:.2e}")
sys.exit(0 if len(cpu) == len(gpu) and worst < 2e-2 and dev == "cuda" else 1)
PY
    timeout --foreground -k 5 120 "$bin" bench --device cuda --llama-1b --seq 2048 --batch 4 --warmup 2 --steps 5 \
        --dp >"$OUT/cli_bench.json" 2>&1 || { tail -3 "$OUT/cli_bench.json"; return 1; }
    cut -c1-300 "$OUT/cli_bench.json"
    # DP-SGD through the CLI on both backends: the same Poisson batches and noise
    # (privacy.secure_rng false, the same seed), so the loss curves must track.
    local dp=(recipes/tiny-cpu.yaml model.path="$d/demo/model" data.train="$d/demo/corpus.h5"
              privacy.enabled=true privacy.secure_rng=false privacy.target_epsilon=
              privacy.noise_multiplier=1.0 privacy.expected_batch_size=8
              privacy.max_sequences_per_unit=2 optim.steps=10 optim.warmup_steps=0)
    timeout --foreground -k 5 60 "$bin" train "${dp[@]}" run.out="$d/dp_cpu" run.device=cpu >"$OUT/cli_dp_cpu.log" 2>&1 &&
    timeout --foreground -k 5 60 "$bin" train "${dp[@]}" run.out="$d/dp_cuda" run.device=cuda model.dtype=bf16 \
        >"$OUT/cli_dp_cuda.log" 2>&1 || { tail -3 "$OUT"/cli_dp_*.log; return 1; }
    cp "$d/dp_cpu/metrics.jsonl" "$OUT/cli_dp_cpu_metrics.jsonl"
    cp "$d/dp_cuda/metrics.jsonl" "$OUT/cli_dp_cuda_metrics.jsonl"
    python3 - "$OUT/cli_dp_cpu_metrics.jsonl" "$OUT/cli_dp_cuda_metrics.jsonl" "$d/dp_cuda/manifest.json" <<'PY'
import json, sys
cpu = [json.loads(l) for l in open(sys.argv[1])]
gpu = [json.loads(l) for l in open(sys.argv[2])]
dev = json.load(open(sys.argv[3]))["run"]["device"]
worst = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(cpu, gpu))
same = all(a["units"] == b["units"] and a["epsilon"] == b["epsilon"] for a, b in zip(cpu, gpu))
print(f"   ehrtune train DP tiny recipe: cpu {cpu[0]['loss']:.3f}->{cpu[-1]['loss']:.3f}, {dev} "
      f"{gpu[0]['loss']:.3f}->{gpu[-1]['loss']:.3f}, worst relative loss difference {worst:.2e}, "
      f"same units and epsilon each step: {same}")
sys.exit(0 if len(cpu) == len(gpu) == 10 and worst < 2e-2 and same and dev == "cuda" else 1)
PY
}
export -f cli_train

# ------------------------------------------------------------- 7. cuda_bench
# The HF bench's shape and batch sizes, then batch 4 with activation checkpointing,
# then batch 4 with DP-SGD (plain steps, then DP steps on the same batches: the
# "dp_ratio" of their medians); each run its own process under its own limit (a
# hang costs one run, not the step).
cuda_bench() {
    local bin lib rc=0 r args spec attn
    bin=$(train_bin) || { echo "   no bench_train (build failed, no .carry/bench_train)"; return 1; }
    lib=$(cat "$BUILD/cublas_lib_dir" 2>/dev/null || cublas_dir "" || true)
    # Beside the defaults, end to end on the same card: "wide:" pins the 32-rows-a-warp
    # attention kernels (EHRTUNE_CUDA_ATTENTION=wide), "chain:" our best pair (the
    # fallback of the default's cuDNN), "cudnn:" cuDNN's fused attention by name (its
    # non-deterministic backward too, where cuDNN offers no deterministic one; the
    # default takes cuDNN only with a deterministic backward); "packed:" packed LoRA rows
    # instead of the default K-extended layout (EHRTUNE_CUDA_LORA_KEXT=0); "fused:" the
    # fused LoRA-dropout kernels (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1) beside the default's
    # masked copies and GEMMs at dropout 0.05
    for spec in "--batch 1" "--batch 4" "--batch 4 --ckpt" "--batch 4 --dp" "chain:--batch 4" \
        "wide:--batch 4" "cudnn:--batch 4" "--batch 4 --dropout 0.05" \
        "fused:--batch 4 --dropout 0.05" "packed:--batch 4"; do
        args=${spec#*:}
        attn=; kext=; fused=
        case "$spec" in chain:*) attn=chain ;; wide:*) attn=wide ;; cudnn:*) attn=cudnn ;; packed:*) kext=0 ;;
        fused:*) fused=1 ;; esac
        EHRTUNE_CUDA_ATTENTION=$attn EHRTUNE_CUDA_LORA_KEXT=$kext EHRTUNE_CUDA_LORA_DROPOUT_FUSED=$fused \
            LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}" \
            timeout --foreground -k 5 75 "$bin" --bench $args \
            --seq 2048 --warmup 2 --steps 5 --json "$OUT/cuda_bench.jsonl" >>"$OUT/cuda_bench.log" 2>&1
        r=$?
        if [ $r -eq 124 ] || [ $r -eq 137 ]; then
            echo "{\"kind\": \"bench\", \"impl\": \"ehrtune-cuda\", \"status\": \"timeout\", \"args\": \"$args\"}" \
                >>"$OUT/cuda_bench.jsonl"
        fi
        [ $r -eq 77 ] && return 77
        [ $r -ne 0 ] && rc=1
        echo "   [$spec] rc=$r: $(tail -1 "$OUT/cuda_bench.log" | cut -c1-240)"
    done
    if [ $rc -ne 0 ]; then
        # One more data point if the bf16 attention kernel is what failed: batch 4 on
        # the fp32 kernel (the row's "attention" field says so; the step stays FAIL).
        EHRTUNE_CUDA_ATTENTION_FP32=1 LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}" timeout --foreground -k 5 75 \
            "$bin" --bench --batch 4 --seq 2048 --warmup 2 --steps 5 --json "$OUT/cuda_bench.jsonl" \
            >>"$OUT/cuda_bench.log" 2>&1
        echo "   [--batch 4, fp32 attention] rc=$?: $(tail -1 "$OUT/cuda_bench.log" | cut -c1-240)"
    fi
    return $rc
}
export -f cuda_bench

# --------------------------------------------------------------- 8. sanitizer
sanitizer() {
    local bin lib
    bin=$(cat "$BUILD/parity_bin" 2>/dev/null) || { echo "   no parity binary"; return 77; }
    command -v compute-sanitizer >/dev/null || { echo "   no compute-sanitizer"; return 77; }
    timeout --foreground 10 nvidia-smi -L >/dev/null 2>&1 || { echo "   no GPU"; return 77; }
    lib=$(cat "$BUILD/cublas_lib_dir" 2>/dev/null || cublas_dir "" || true)
    LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}" compute-sanitizer --tool memcheck \
        --error-exitcode 3 "$bin" --no-perf --quick >"$OUT/sanitizer.txt" 2>&1
    local rc=$?
    tail -3 "$OUT/sanitizer.txt"
    return $rc
}
export -f sanitizer

step inventory 45 inventory
step build 200 build  # attention_cudnn.cu alone: ~1.5 min of one core (frontend headers)
step parity 150 parity
step hf_bench 170 hf_bench
step build_train 90 build_train
step train_parity 120 train_parity
step cuda_bench 330 cuda_bench
step cli_train 150 cli_train
step sanitizer 90 sanitizer

# ----------------------------------------------------------------- 9. summary
echo
echo "================================ ehrtune GPU check summary"
python3 - "$OUT" "$(($(date +%s) - START))" >"$OUT/summary.txt" 2>&1 <<'EOF'
import json, os, re, sys
out, total = sys.argv[1], int(sys.argv[2])
# C's printf writes nan/-nan/inf, which JSON lacks; a row cut short (a step killed
# mid-write) is skipped, never fatal: the summary must come out whatever happened.
NONFINITE = re.compile(r'(?<=[:\[,\s])(-?)(nan|inf(?:inity)?)(?=\s*[,\]}])', re.I)
def fix(l):
    return NONFINITE.sub(lambda m: "NaN" if m.group(2).lower() == "nan" else m.group(1) + "Infinity", l)
bad_lines = 0
def lines(path):
    global bad_lines
    rows = []
    try:
        with open(path, errors="replace") as f:
            for l in f:
                if not l.strip().startswith("{"):
                    continue
                try:
                    rows.append(json.loads(fix(l)))
                except ValueError:
                    bad_lines += 1
    except OSError:
        pass
    return rows
steps = []
with open(os.path.join(out, "steps.tsv")) as f:
    for l in f:
        name, status, secs, note = (l.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
        steps.append({"step": name, "status": status, "seconds": int(secs or 0), "note": note})
rows = lines(os.path.join(out, "parity.jsonl"))
hf = lines(os.path.join(out, "hf_bench.jsonl"))
sdpa = lines(os.path.join(out, "sdpa_bench.jsonl"))
tp = lines(os.path.join(out, "train_parity.jsonl"))
eb = [r for r in lines(os.path.join(out, "cuda_bench.jsonl")) if r.get("kind") == "bench"]
device = next((r.get("device") for r in hf if r.get("kind") == "env"), None)
if not device:
    try:
        inv = open(os.path.join(out, "inventory.txt")).read()
        device = next((l.split(",")[0] for l in inv.splitlines() if l.startswith("NVIDIA")), None)
    except OSError:
        pass
count = lambda s: sum(1 for r in rows if r.get("status") == s)
summary = {"device": device, "total_seconds": total, "steps": steps, "unparsed_lines": bad_lines,
           "parity": {"passed": count("PASS"), "failed": count("FAIL"), "timed": count("TIMED"),
                      "skipped": count("SKIP"),
                      "skipped_rows": [r for r in rows if r.get("status") == "SKIP"],
                      "failed_rows": [r for r in rows if r.get("status") == "FAIL"],
                      "timed_rows": [r for r in rows if r.get("status") == "TIMED"]},
           "hf_bench": [r for r in hf if r.get("kind") == "bench"],
           "train_parity": tp, "cuda_bench": eb, "sdpa_bench": sdpa}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
num = lambda v, spec: format(v, spec) if isinstance(v, (int, float)) else "-"
p = summary["parity"]

# ---- details first (the device tool returns only the output's last 12,000 characters)
for r in p["timed_rows"]:
    print(f"  {r.get('op', '?'):<30} {r.get('shape', ''):<30} {num(r.get('us'), '10.1f')} us "
          f"{num(r.get('metric'), '8.1f')} {r.get('unit', '')}")
for r in sdpa:  # torch's attention kernels at the perf.attention shapes (peer rows)
    if r.get("status") == "ok":
        print(f"  torch sdpa {r.get('backend', '?'):<9} b={r.get('batch')} t={r.get('seq')}: "
              f"fwd {num(r.get('fwd_us'), '8.1f')} us {num(r.get('fwd_tflops'), '6.1f')} TFLOP/s, "
              f"bwd {num(r.get('bwd_us'), '8.1f')} us {num(r.get('bwd_tflops'), '6.1f')} TFLOP/s")
    else:
        print(f"  torch sdpa {r.get('backend', '?'):<9} b={r.get('batch')}: {r.get('status')} "
              f"{str(r.get('error', ''))[:80]}")
def run_name(r):
    att = r.get("attention", "")  # which attention pair ran, by its note
    kern = ("cudnn" if att.startswith("cuDNN") else "wide" if "wide (" in att else
            "split" if "split dK" in att else "chain" if "chained dK" in att else
            "fp32" if att.startswith("fp32") else "?")
    if "batch" not in r:
        return str(r.get("args", "?")).replace("--batch ", "b=")
    return (f"b={r['batch']}" + (" ckpt" if r.get("activation_checkpointing") else "")
            + (" dp" if r.get("dp") else "") + f" {kern}"
            + (" nondet" if "not deterministic" in att else "")
            + (f" drop{r['lora_dropout']:g}" if r.get("lora_dropout") else "")
            + (" fused" if r.get("lora_dropout") and r.get("lora_dropout_fused") else "")
            + (" packed" if r.get("lora_kext") is False else ""))
# Where the b=4 step's time goes: one extra, untimed step with CUDA events between op
# classes (trainer/bench_cuda.c); each batch-4 run without checkpointing or DP.
for b4 in [r for r in eb if r.get("status") == "ok" and r.get("batch") == 4 and r.get("profile")
           and not r.get("activation_checkpointing") and not r.get("dp")]:
    tot = b4.get("profile_step_ms") or 0
    drop = f", {b4['profile_dropped']} marks DROPPED" if b4.get("profile_dropped") else ""
    print(f"{run_name(b4)} step by op class: {num(tot, '.1f')} ms on the device "
          f"({num(b4.get('profile_wall_ms', 0), '.1f')} ms host clock; timed median "
          f"{num((b4.get('step_s_median') or 0) * 1e3, '.1f')} ms{drop})")
    prof = {k: v for k, v in b4["profile"].items() if isinstance(v, (int, float))}
    cells = [f"{k:<13} {v:7.2f} ms {100 * v / tot if tot else 0:5.1f}%"
             for k, v in sorted(prof.items(), key=lambda kv: -kv[1]) if v > 0]
    for i in range(0, len(cells), 3):
        print("  " + "   ".join(cells[i:i + 3]))

# ---- the key results last: steps, parity, training parity, ehrtune beside HF+PEFT
print()
print("================================ key results")
print(f"device: {device}   total {total} s   files: {os.environ.get('FINAL', out)}"
      + (f"   ({bad_lines} unparsable result lines skipped)" if bad_lines else ""))
for s in steps:
    print(f"  {s['step']:<12} {s['status']:<8} {s['seconds']:>4} s  {s['note']}")
print(f"parity: {p['passed']} passed, {p['failed']} failed, {p['timed']} timed, {p['skipped']} skipped")
for r in p["skipped_rows"][:3]:
    print(f"  SKIP {r.get('op', '?'):<28} {r.get('shape', ''):<34} {str(r.get('why', ''))[:100]}")
for r in p["failed_rows"][:15]:
    print(f"  FAIL {r.get('op', '?'):<28} {r.get('shape', ''):<34} err={r.get('err')} rc={r.get('rc')}")
if len(p["failed_rows"]) > 15:
    print(f"  ... {len(p['failed_rows']) - 15} more FAIL rows in summary.json")
for r in tp:
    if r.get("status") in ("PASS", "FAIL"):
        print(f"train parity {r.get('case', '?'):<24} {r['status']}: worst loss diff "
              f"{num(r.get('worst_rel'), '.2e')} (step {r.get('worst_step')}, limit {r.get('limit')}), "
              f"step-1 LoRA grad {num(r.get('grad_rel_step1'), '.2e')} (limit {r.get('grad_limit')}); "
              f"{str(r.get('attention', ''))[:60]}")
    else:
        print(f"train parity {r.get('case')}: {r.get('status')} {str(r.get('error', ''))[:200]}")
for r in summary["hf_bench"]:
    if r.get("status") == "ok":
        print(f"hf+peft b={r.get('batch')} T={r.get('seq')} dropout {r.get('lora_dropout') or 0:g}: "
              f"{num(r.get('tokens_per_s'), '.0f')} tok/s, "
              f"{num((r.get('step_s_median') or 0) * 1e3, '.1f')} ms/step, {r.get('achieved_tflops')} TFLOP/s, "
              f"MFU {r.get('mfu')}, peak {r.get('peak_mem_gib')} GiB")
    else:
        print(f"hf+peft b={r.get('batch')}: {r.get('status')} {str(r.get('error', ''))[:120]}")
hf_ok = {(r.get("batch"), r.get("lora_dropout") or 0): r for r in summary["hf_bench"] if r.get("status") == "ok"}
if eb:
    print("ehrtune CUDA vs HF+PEFT (Llama-3.2-1B shape, seq 2048, LoRA r=16 on 7 projections):")
    print(f"  {'run':<26} {'tok/s':>9} {'HF tok/s':>9} {'x HF':>6}  {'MFU':>6} {'HF MFU':>6}  "
          f"{'peak GiB':>8} {'HF GiB':>7} {'x HF':>5}  attention")
ratio = lambda a, b: f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b else "-"
for r in eb:
    name = run_name(r)
    if r.get("status") != "ok":
        print(f"  {name:<26} {r.get('status')}: {str(r.get('error', r.get('args', '')))[:200]}")
        continue
    h = hf_ok.get((r.get("batch"), r.get("lora_dropout") or 0), {})
    print(f"  {name:<26} {num(r.get('tokens_per_s'), '9.0f'):>9} {num(h.get('tokens_per_s'), '9.0f'):>9} "
          f"{ratio(r.get('tokens_per_s'), h.get('tokens_per_s')):>6}  {num(r.get('mfu'), '6.3f'):>6} "
          f"{num(h.get('mfu'), '6.3f'):>6}  {num(r.get('peak_mem_gib'), '8.2f'):>8} "
          f"{num(h.get('peak_mem_gib'), '7.2f'):>7} {ratio(r.get('peak_mem_gib'), h.get('peak_mem_gib')):>5}  "
          f"{str(r.get('attention', ''))[:40]}")
    if r.get("dp"):  # the same run's DP step against its plain step (target <= 1.15)
        print(f"  {'  dp step':<26} {num((r.get('dp_step_s_median') or 0) * 1e3, '.1f')} ms vs plain "
              f"{num((r.get('step_s_median') or 0) * 1e3, '.1f')} ms: x{num(r.get('dp_ratio'), '.3f')} "
              f"(target <= 1.15), +{num(r.get('dp_extra_mib'), '.1f')} MiB device memory")
EOF
summary_rc=$?
cat "$OUT/summary.txt"
[ "$summary_rc" -eq 0 ] || { echo "(python3 failed; raw steps:)"; cat "$STEPS"; }

rm -rf "$BUILD"
status_of() { awk -F'\t' -v s="$1" '$1 == s { print $2 }' "$STEPS"; }
if [ "$(status_of parity)" = OK ] && [ "$(status_of hf_bench)" = OK ] &&
    [ "$(status_of train_parity)" = OK ] && [ "$(status_of cuda_bench)" = OK ]; then exit 0; fi
if [ "$(status_of parity)" = SKIP ]; then exit 77; fi
exit 1
