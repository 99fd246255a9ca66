#!/usr/bin/env bash
# cuda_emulated_train.sh's CPU-vs-CUDA training parity (four models + DP-SGD) under
# the CPU emulation of CUDA, with the opt-in paths on: the K-extended LoRA layout
# (EHRTUNE_CUDA_LORA_KEXT=1, docs/cuda.md), unfused LoRA dropout
# (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=0), a cuDNN stand-in with only a non-deterministic
# backward (the default refuses it), and cuDNN asked for by name, unavailable and
# non-deterministic (tiny benches): a test of its own so that each stays well inside ctest's
# per-test limit and the two can run side by side.
# $1 = the ehrtune binary, $2 = the source folder; exit 77 as the default run.
EMU_TRAIN_KEXT=1 exec bash "$(dirname "$0")/cuda_emulated_train.sh" "$@"
