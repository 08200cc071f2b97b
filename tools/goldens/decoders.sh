#!/usr/bin/env bash
# Makes tests/data/golden/decoder_<model>.json for every real decoder scripts/models.sh fetches, with
# llama.cpp (the llama-cpp-python sdist, compiled here) and gguf-py from PyPI at the versions pinned in
# requirements-decoders.txt, in their own virtualenv ($QUARRY_VENV_LLAMA, default
# ~/.cache/quarry/venv-llama; the first run compiles llama.cpp, ~15 minutes on 2 cores).
# Run by hand (never by CI); commit the goldens it writes together with any change to this directory.
#   tools/goldens/decoders.sh [MODEL ...]    (default: every model scripts/models.sh --list decoders names)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=$(QUARRY_VENV=${QUARRY_VENV_LLAMA:-$HOME/.cache/quarry/venv-llama} CMAKE_ARGS="-DLLAVA_BUILD=OFF" \
  "$root/scripts/venv.sh" "$root/tools/goldens/requirements-decoders.txt")
models=("$@")
[ ${#models[@]} -gt 0 ] || mapfile -t models < <("$root/scripts/models.sh" --list decoders)
"$root/scripts/models.sh" "${models[@]}"
files=()
for m in "${models[@]}"; do files+=("${QUARRY_MODELS:-$HOME/.cache/quarry/models}/$m/model.gguf"); done
"$python" "$root/tools/goldens/decoders.py" "${files[@]}" --dataset "$root/../shared/datasets/scifact" \
  --out "$root/tests/data/golden"
