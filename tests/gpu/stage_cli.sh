#!/usr/bin/env bash
# Stages the full `ehrtune` CLI (CMake build, CUDA for sm_90) into .carry/ for the GPU
# machine, with the shared libraries that machine lacks (libyaml and cJSON: see the
# inventory in docs/perf.md) in .carry/lib. check.sh's `cli_train` step then runs the
# real `ehrtune demo` / `ehrtune train ... run.device=cuda` / `ehrtune bench` there.
# Run here (any machine with nvcc 13 and the Debian -dev packages), then pass
# `carry: [".carry"]` to the device run.
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B="$ROOT/build-gpu-stage"
make -s -C "$ROOT" cudnn-frontend BUILD="$B"  # cuDNN attention's headers (optional)
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build "$B" -j "$(nproc)" --target ehrtune >/dev/null
mkdir -p "$ROOT/.carry/lib"
cp "$B/ehrtune" "$ROOT/.carry/ehrtune"
for lib in libyaml-0.so.2 libcjson.so.1; do
    path=$(ldd "$B/ehrtune" | awk -v l="$lib" '$1 == l { print $3 }')
    [ -n "$path" ] || { echo "ehrtune does not link $lib?"; exit 1; }
    cp -L "$path" "$ROOT/.carry/lib/$lib"
done
echo "staged $ROOT/.carry/ehrtune ($(du -h "$ROOT/.carry/ehrtune" | cut -f1)) and .carry/lib:"
ls -la "$ROOT/.carry/lib"
# The device tool carries at most 64 MiB with the working tree (~5 MB): say so early.
carry_kib=$(du -sk "$ROOT/.carry" | cut -f1)
echo ".carry holds $((carry_kib / 1024)) MiB (the device run takes at most 64 MiB with the working tree)"
[ "$carry_kib" -lt $((58 * 1024)) ] || echo "WARNING: .carry is near the 64 MiB limit: drop what this run does not need"
