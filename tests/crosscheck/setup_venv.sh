#!/usr/bin/env bash
# Creates the Python environment the cross-check scripts use (CPU torch, HF
# transformers, PEFT, tokenizers, h5py + hdf5plugin), from PyPI. Not needed by
# `make test`: the C tests read committed fixtures. Usage:
#   bash tests/crosscheck/setup_venv.sh [VENV_DIR]    (default /opt/xc)
set -euo pipefail
venv=${1:-/opt/xc}
python3 -m venv "$venv"
# Versions that produced the committed fixtures (tests/fixtures/versions.json; the
# tokenizer fixtures and data/unicode_tables.c were probed from tokenizers 0.23.3).
"$venv/bin/pip" install -q torch==2.15.0 transformers==5.24.0 peft==0.21.2 safetensors==0.8.0 \
  numpy==2.4.6 tokenizers==0.23.3 h5py hdf5plugin
echo "ready: $venv/bin/python tests/crosscheck/make_model_fixtures.py"
