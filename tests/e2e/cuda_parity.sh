#!/usr/bin/env bash
# ctest wrapper for the GPU parity harness (tests/gpu/parity.c): runs the
# gpu_parity binary CMake built beside the ehrtune binary ($1). Exit 77
# (skipped) when CUDA was off at build time or no GPU is visible; never "passed"
# without running every parity row.
set -u
bin_dir=$(dirname "$1")
parity="$bin_dir/tests/gpu_parity"
if [ ! -x "$parity" ]; then
    echo "skipped: gpu_parity not built (CUDA backend off)"
    exit 77
fi
exec "$parity" --no-perf
