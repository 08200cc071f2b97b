#!/usr/bin/env bash
# Installs missing dependencies, builds everything and runs every test suite (ctest).
# Tests that need ../shared skip with a message naming what is missing when it is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" -DQUARRY_BUILD_TESTS=ON
cd "${QUARRY_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" --timeout 900
