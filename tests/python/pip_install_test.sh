#!/usr/bin/env bash
# The packaging check of issue 19: a clean virtualenv, `pip install SOURCE` (the PEP 517 build from
# pyproject.toml: scikit-build-core + nanobind from PyPI, the C++ library compiled anew), then `import
# quarry` and one search outside the source tree. Exit 77 (ctest: skipped) when PyPI is unreachable.
#   tests/python/pip_install_test.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
if ! "$tmp/venv/bin/pip" download --quiet --no-deps --only-binary=:all: -d "$tmp/probe" nanobind==3.1.0 >/dev/null 2>&1; then
  echo "pip_install_test: PyPI unreachable; skipped" >&2
  exit 77
fi
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "$src" >"$tmp/pip.log" 2>&1 || {
  tail -40 "$tmp/pip.log" >&2
  exit 1
}
cd "$tmp"
version=$(sed -n 's/^project(quarry VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
"$tmp/venv/bin/python" - "$tmp/c" "$version" <<'PY'
import importlib.metadata
import sys
import quarry
assert "site-packages" in quarry.__file__, quarry.__file__
# One version, CMakeLists.txt's project(): in the wheel's metadata and in the module.
assert importlib.metadata.version("quarry") == quarry.__version__ == sys.argv[2], (
    importlib.metadata.version("quarry"), quarry.__version__, sys.argv[2])
# The type stubs of the module and of its submodule (quarry.hr) are installed beside it.
import importlib.resources
from quarry import hr
stubs = importlib.resources.files("quarry") / "_quarry"
assert (stubs / "__init__.pyi").is_file() and (stubs / "hr.pyi").is_file(), list(stubs.iterdir())
assert "def train_embeddings" in (stubs / "hr.pyi").read_text()
with quarry.Collection(sys.argv[1], create=True) as c:
    c.ingest([{"id": "a", "text": "statins lower cholesterol"}, {"id": "b", "text": "the heart is a muscle"}])
    hits = c.search("cholesterol", 2)
    assert [h.id for h in hits] == ["a"], hits
try:
    quarry.Collection(sys.argv[1] + "-absent")
    raise SystemExit("no error for a missing collection")
except quarry.NotFoundError:
    pass
print("pip_install_test: import quarry from", quarry.__file__, "ok")
PY
