#!/usr/bin/env bash
# Builds hashsieve and runs every test: the optimised build runs all of them,
# unit and integration (real registry, dockerd, clamd, PostgreSQL, RabbitMQ);
# the AddressSanitizer/UBSan build then runs the unit tests and the fuzz
# smoke tests again. (Integration tests mostly exercise the servers; running
# them a second time under ASan doubles CI time for little extra coverage.)
set -euo pipefail
cd "$(dirname "$0")/.."
presets=${HASHSIEVE_TEST_PRESETS:-"release asan"}
for preset in $presets; do
  echo "== $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  if [ "$preset" = asan ]; then
    ctest --preset "$preset" -LE integration
  else
    ctest --preset "$preset"
  fi
done
