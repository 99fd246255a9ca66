#!/usr/bin/env bash
# CUDA emulation on the CPU (docs/cuda.md, "CPU emulation"): builds kernels/cuda/*.cu as
# host C++ against the emulator, the CPU reference, and the given C sources into
# one program.
#   bash tests/gpu/emu/build.sh OUT_BINARY [extra .c files...] [-- extra gcc flags]
# Example: bash tests/gpu/emu/build.sh /tmp/parity_emu tests/gpu/parity.c
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
EMU=$ROOT/tests/gpu/emu
OUTBIN=$1; shift
SRCS=(); FLAGS=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; FLAGS=("$@"); break; fi
    SRCS+=("$1"); shift
done
OBJ=${EMU_OBJ:-/tmp/ehrtune-emu-obj}
mkdir -p "$OBJ"
CXX="g++ -std=c++17 -O2 -g -fno-strict-aliasing -Wno-unused-result -I$OBJ -I$EMU/include -I$EMU -I$ROOT"
# Headers of kernels/cuda rewritten too (context.h launches kernels), then the
# emulator's own versions of the PTX wrappers (shadow/) over them.
mkdir -p "$OBJ/kernels/cuda"
for h in "$ROOT"/kernels/cuda/*.h; do
    python3 "$EMU/launch_rewrite.py" "$h" "$OBJ/kernels/cuda/$(basename "$h").new"
    cmp -s "$OBJ/kernels/cuda/$(basename "$h").new" "$OBJ/kernels/cuda/$(basename "$h")" ||
        mv "$OBJ/kernels/cuda/$(basename "$h").new" "$OBJ/kernels/cuda/$(basename "$h")"
    rm -f "$OBJ/kernels/cuda/$(basename "$h").new"
done
for h in "$EMU"/shadow/kernels/cuda/*.h; do
    [ -e "$h" ] && { cmp -s "$h" "$OBJ/kernels/cuda/$(basename "$h")" || cp "$h" "$OBJ/kernels/cuda/"; }
done
pids=()
# Kernels: rewritten, recompiled only when the source or the emulator changed. A file
# with a stand-in under mock/ (cuDNN's attention: no cuDNN here) is built from that.
for f in "$ROOT"/kernels/cuda/*.cu; do
    b=$(basename "$f" .cu)
    [ -e "$EMU/mock/$b.cu" ] && f=$EMU/mock/$b.cu
    if [ ! -e "$OBJ/cu_$b.o" ] || [ "$f" -nt "$OBJ/cu_$b.o" ] || [ "$EMU/emu_device.h" -nt "$OBJ/cu_$b.o" ] ||
        [ -n "$(find "$OBJ/kernels/cuda" -name '*.h' -newer "$OBJ/cu_$b.o")" ]; then
        ( python3 "$EMU/launch_rewrite.py" "$f" "$OBJ/cu_$b.cc" &&
          $CXX -include emu_device.h -c "$OBJ/cu_$b.cc" -o "$OBJ/cu_$b.o" ) &
        pids+=($!)
    fi
done
for f in "$EMU"/emu.cc "$EMU"/emu_cublaslt.cc; do
    b=$(basename "$f" .cc)
    if [ ! -e "$OBJ/emu_$b.o" ] || [ "$f" -nt "$OBJ/emu_$b.o" ] || [ "$EMU/emu_device.h" -nt "$OBJ/emu_$b.o" ]; then
        $CXX -c "$f" -o "$OBJ/emu_$b.o" & pids+=($!)
    fi
done
for p in "${pids[@]}"; do wait "$p"; done
rm -rf "$OBJ/c"; mkdir -p "$OBJ/c"
pids=()
for f in "$ROOT"/kernels/*.c "$ROOT"/kernels/cpu/*.c "$ROOT"/data/error.c "${SRCS[@]}"; do
    [ -e "$f" ] || continue
    gcc -std=c11 -O2 -g -fopenmp -fno-trapping-math -fno-math-errno -DET_NO_BLAS -D_GNU_SOURCE \
        -I"$EMU/include" -I"$ROOT" "${FLAGS[@]}" -c "$f" -o "$OBJ/c/$(echo "${f#$ROOT/}" | tr / _ | sed 's/\.c$//').o" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
g++ -o "$OUTBIN" "$OBJ"/c/*.o "$OBJ"/cu_*.o "$OBJ"/emu_*.o -fopenmp -lm ${EMU_LIBS:-}
echo "built $OUTBIN"
