#!/usr/bin/env bash
# Installs the Debian packages Quarry builds against (../shared/DESIGN.md), only those missing.
# Idempotent; safe to run on every build. Needs root (or sudo) when something is missing.
set -euo pipefail
# Only what the built modules use.
# python3 runs ../shared/tools/treceval.py in the evaluation tests; python3-venv makes the project's
# virtualenv (scripts/venv.sh: pip for scripts/models.sh, reference implementations for goldens and peer
# benchmarks); python3-dev's headers build the Python extension module (python/, `pip install .`);
# clang and its runtimes build the sanitizer suite and the libFuzzer targets (scripts/test.sh).
packages=(
  build-essential cmake pkg-config
  librocksdb-dev libtbb-dev libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libicu-dev
  libedit-dev libopenblas-dev libsentencepiece-dev libfaiss-dev libxxhash-dev python3 python3-venv python3-dev
  clang libclang-rt-dev
  wordnet-base
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
