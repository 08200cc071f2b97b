#!/usr/bin/env bash
# Installs Quarry (cmake --install) into a temporary prefix, builds examples/ against the installed
# CMake package with find_package(quarry), and runs the three examples.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR [CXX]   (CXX: the compiler Quarry was built with)
set -euo pipefail
build=$1 source=$2 cxx=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/quarry/collection.h"
test -f "$tmp/prefix/lib/libquarry.a"
cmake -S "$source/examples" -B "$tmp/examples" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release \
  ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} >/dev/null
cmake --build "$tmp/examples" -j 2 >/dev/null
"$tmp/examples/2-ingest" "$tmp/col" "$source/tests/data/tiny_corpus.jsonl" | tee "$tmp/out"
grep -q "example-1: Second version about muscles." "$tmp/out"
grep -q "8 documents, check OK" "$tmp/out"
"$tmp/examples/1-search" "$tmp/col" "heart muscle" | tee "$tmp/out"
head -1 "$tmp/out" | grep -q "^d2 "
grep -q "4 threads agree" "$tmp/out"
"$tmp/examples/3-rerank" "$tmp/col"
echo "install test: OK"
