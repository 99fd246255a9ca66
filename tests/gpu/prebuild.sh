#!/usr/bin/env bash
# Builds the parity harness here (any machine with nvcc 13, no GPU needed) for
# sm_90 into .carry/gpu_parity, and the CUDA training program (tests/gpu/
# bench_train.c) into .carry/bench_train: the fallbacks check.sh uses when the GPU
# machine cannot build. Pass `carry: [".carry"]` to the device run (.carry/ is git-ignored).
# CUDA runtime, libstdc++, libgcc and libgomp are linked statically; cuBLASLt has no
# static library in the toolkit, so the binary needs libcublasLt.so.13 there (CUDA
# 13's, or torch's nvidia wheels: check.sh puts whichever it finds on
# LD_LIBRARY_PATH). Prints the size and the shared libraries it still needs.
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
ARCH="-gencode=arch=compute_90,code=sm_90"
# cuDNN's attention needs the frontend headers: fetched (PyPI) by the Makefile into
# build/deps, and copied into .carry/ so that check.sh's own build there finds them.
make -s -C "$ROOT" cudnn-frontend BUILD="$ROOT/build"
FE="$ROOT/build/deps/cudnn_frontend/include"
CUDNN_FLAGS=""
if [ -e "$FE/cudnn_frontend.h" ]; then
    CUDNN_FLAGS="-DETC_HAVE_CUDNN_FRONTEND -I$FE -diag-suppress=128,2810"
    mkdir -p "$ROOT/.carry/cudnn_frontend"
    rm -rf "$ROOT/.carry/cudnn_frontend/include"
    cp -r "$FE" "$ROOT/.carry/cudnn_frontend/include"
fi
pids=()
for f in "$ROOT"/kernels/cuda/*.cu; do
    extra=""
    [ "$(basename "$f")" = attention_cudnn.cu ] && extra=$CUDNN_FLAGS
    "$NVCC" $ARCH -O3 --use_fast_math -lineinfo -std=c++17 -I"$ROOT" $extra -c "$f" \
        -o "$OBJ/cu_$(basename "$f" .cu).o" &
    pids+=($!)
done
shopt -s nullglob
for f in "$ROOT"/kernels/*.c "$ROOT"/kernels/cpu/*.c "$ROOT"/data/error.c; do
    gcc -std=c11 -O2 -fopenmp -fno-trapping-math -fno-math-errno -DET_NO_BLAS -D_GNU_SOURCE -I"$ROOT" -c "$f" -o "$OBJ/c_$(basename "$f" .c).o" &
    pids+=($!)
done
gcc -std=c11 -O2 -fopenmp -D_GNU_SOURCE -I"$ROOT" -I"$CUDA/include" -c "$ROOT/tests/gpu/parity.c" \
    -o "$OBJ/parity.o" &
pids+=($!)
mkdir -p "$OBJ/train"
for f in trainer/model.c trainer/model_acts.c trainer/lora.c trainer/model_cuda.c \
    trainer/model_cuda_plan.c trainer/model_cuda_attn.c trainer/model_cuda_pass.c \
    trainer/bench_cuda.c tests/gpu/bench_train.c trainer/model_cuda_dp.c trainer/dp.c \
    trainer/dp_rng.c; do
    gcc -std=c11 -O2 -fopenmp -D_GNU_SOURCE -DEHRTUNE_HAVE_CUDA=1 -DET_BENCH_STANDALONE -I"$ROOT" \
        -c "$ROOT/$f" -o "$OBJ/train/$(echo "$f" | tr / _ | sed 's/\.c$//').o" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
mkdir -p "$ROOT/.carry"
# the commit these binaries come from (+ uncommitted files), for check.sh's inventory
(cd "$ROOT" && echo "$(git rev-parse HEAD) ($(git status --short | wc -l) files changed)") \
    >"$ROOT/.carry/source_commit" 2>/dev/null || true
GOMP=$(gcc -print-file-name=libgomp.a)
LINK=(-cudart static -Xcompiler -static-libgcc -Xcompiler -static-libstdc++ "$GOMP" -lpthread -ldl
      -lrt -lm -L"$CUDA/lib64" -lcublasLt)
"$NVCC" $ARCH "$OBJ"/*.o -o "$ROOT/.carry/gpu_parity" "${LINK[@]}"
"$NVCC" $ARCH "$OBJ"/cu_*.o "$OBJ"/c_*.o "$OBJ"/train/*.o -o "$ROOT/.carry/bench_train" "${LINK[@]}"
for b in gpu_parity bench_train; do
    echo "built $ROOT/.carry/$b ($(du -h "$ROOT/.carry/$b" | cut -f1))"
    echo "shared libraries beyond glibc and the loader:"
    ldd "$ROOT/.carry/$b" | grep -vE "linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so" || true
done
# The device tool carries at most 64 MiB with the working tree (~5 MB): say so early.
carry_kib=$(du -sk "$ROOT/.carry" | cut -f1)
echo ".carry holds $((carry_kib / 1024)) MiB (the device run takes at most 64 MiB with the working tree)"
[ "$carry_kib" -lt $((58 * 1024)) ] || echo "WARNING: .carry is near the 64 MiB limit: drop what this run does not need"
