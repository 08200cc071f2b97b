#!/usr/bin/env bash
# Creates (once) the project's Python virtualenv and installs pinned requirements into it, only what is
# missing; prints the virtualenv's python on stdout (progress goes to stderr).
#   scripts/venv.sh [REQUIREMENTS_FILE ...]
# The virtualenv is $QUARRY_VENV (default ~/.cache/quarry/venv). Packages come from PyPI only. Used by
# scripts/models.sh (pip itself), tools/goldens/ (the reference implementations) and the peer benchmarks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${QUARRY_VENV:-$HOME/.cache/quarry/venv}
if [ ! -x "$venv/bin/python" ]; then
  "$root/scripts/setup.sh" >&2
  echo "venv: creating $venv" >&2
  python3 -m venv "$venv" >&2
fi
for req in "$@"; do
  stamp=$venv/.installed-$(sha256sum "$req" | cut -c1-16)
  [ -f "$stamp" ] && continue
  echo "venv: installing $req into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$stamp"
done
echo "$venv/bin/python"
