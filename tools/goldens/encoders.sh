#!/usr/bin/env bash
# Makes tests/data/golden/<model>.json for every real encoder scripts/models.sh fetches, with
# sentence-transformers on PyTorch (CPU) from PyPI at the versions pinned in requirements.txt.
# Run by hand (never by CI); commit the goldens it writes together with any change to this directory.
#   tools/goldens/encoders.sh [MODEL ...]    (default: every model scripts/models.sh --list encoders names)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=$("$root/scripts/venv.sh" "$root/tools/goldens/requirements.txt")
models=("$@")
[ ${#models[@]} -gt 0 ] || mapfile -t models < <("$root/scripts/models.sh" --list encoders)
"$root/scripts/models.sh" "${models[@]}"
dirs=()
for m in "${models[@]}"; do dirs+=("${QUARRY_MODELS:-$HOME/.cache/quarry/models}/$m"); done
"$python" "$root/tools/goldens/encoders.py" "${dirs[@]}" --dataset "$root/../shared/datasets/scifact" \
  --out "$root/tests/data/golden"
