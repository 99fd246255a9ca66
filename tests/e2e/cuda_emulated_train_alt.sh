#!/usr/bin/env bash
# cuda_emulated_train.sh's CPU-vs-CUDA training parity (four models + DP-SGD) under
# the CPU emulation of CUDA, with the non-default paths on: packed LoRA rows instead
# of the K-extended layout (EHRTUNE_CUDA_LORA_KEXT=0, docs/cuda.md), the fused
# LoRA-dropout kernels (EHRTUNE_CUDA_LORA_DROPOUT_FUSED=1), a cuDNN stand-in with only
# a non-deterministic backward (the default refuses it), and cuDNN asked for by name,
# unavailable and non-deterministic (tiny benches): a test of its own so that each
# stays well inside ctest's per-test limit and the two can run side by side.
# $1 = the ehrtune binary, $2 = the source folder; exit 77 as the default run.
EMU_TRAIN_ALT=1 exec bash "$(dirname "$0")/cuda_emulated_train.sh" "$@"
