#!/usr/bin/env bash
# Builds the benchmark "mix": real files from /usr/lib, each < 16 MiB, until at
# least 200 MB (default) are listed. Prints one path per line, in a stable
# (sorted) order, so every benchmark reads the same bytes.
#   bench/make_mix.sh [MIN_BYTES] > mix.list
set -eu  # no pipefail: awk stops reading early on purpose, which SIGPIPEs find
min_bytes=${1:-200000000}
find /usr/lib -type f -size +0 -size -16M -printf '%s\t%p\n' 2>/dev/null | LC_ALL=C sort -t$'\t' -k2 |
  awk -F'\t' -v min="$min_bytes" '{ print $2; total += $1; if (total >= min) exit }
       END { if (total < min) { printf "only %d bytes of files under /usr/lib\n", total > "/dev/stderr"; exit 1 } }'
