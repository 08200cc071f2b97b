#!/usr/bin/env bash
# Makes tests/data/golden/bpe/<style>/{tokenizer.json,ids.json} with Hugging Face's tokenizers from PyPI
# (tools/goldens/requirements-tokenizers.txt, in its own small virtualenv). Run by hand, never by CI;
# commit what it writes together with any change to tools/goldens/bpe_tokenizers.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=$(QUARRY_VENV=${QUARRY_VENV_TOKENIZERS:-$HOME/.cache/quarry/venv-tokenizers} \
  "$root/scripts/venv.sh" "$root/tools/goldens/requirements-tokenizers.txt")
"$python" "$root/tools/goldens/bpe_tokenizers.py" --dataset "$root/../shared/datasets/scifact" \
  --out "$root/tests/data/golden"
