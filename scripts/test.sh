#!/usr/bin/env bash
# Builds hashsieve and runs every test: the optimised build first, then the
# AddressSanitizer/UBSan build. Each test binary is one module's unit tests;
# fuzz targets run over their seed corpora as tests too.
set -euo pipefail
cd "$(dirname "$0")/.."
presets=${HASHSIEVE_TEST_PRESETS:-"release asan"}
for preset in $presets; do
  echo "== $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
