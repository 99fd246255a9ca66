#!/usr/bin/env bash
# Every CUDA op against its CPU twin (tests/gpu/parity.c, fwd + bwd, fp32 and bf16,
# every attention kernel variant, DP clipping and noise) — run under the CPU
# emulation of CUDA (tests/gpu/emu/, docs/cuda.md), so that a machine without a GPU
# (CI) still checks the kernels' arithmetic, indexing, barriers and cp.async waits
# on every change. It cannot see timing, occupancy, or a fragment layout that the
# kernel and the emulation get wrong the same way: tests/gpu/check.sh on a GPU
# remains the real check (e2e_cuda_parity runs the same rows on a device).
# $1 = the ehrtune binary (its folder is the build folder), $2 = the source folder.
# Exit 77 (skipped) when g++ or python3, which the emulation needs, is missing.
set -u
build=$(cd "$(dirname "$1")" && pwd)
src=$2
for tool in g++ python3; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool is missing (the CUDA emulation needs it)"; exit 77; }
done
out=$build/emu-parity
mkdir -p "$out"
EMU_OBJ=$out/obj bash "$src/tests/gpu/emu/build.sh" "$out/parity_emu" "$src/tests/gpu/parity.c" \
    >"$out/build.log" 2>&1 || { cat "$out/build.log"; echo "FAIL: the emulated parity harness did not build"; exit 1; }
# --quick: the rows without the Llama-sized shapes (minutes under emulation)
exec "$out/parity_emu" --no-perf --quick
