#!/usr/bin/env bash
# Runs every digest-engine benchmark over the same mix and prints the figures
# docs/performance.md quotes (medians of 5 repetitions).
#   bench/run_digest_benchmarks.sh [BUILD_DIR]     (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
work=${HASHSIEVE_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
export HASHSIEVE_MIX_LIST=$work/mix.list
bench/make_mix.sh > "$HASHSIEVE_MIX_LIST"
echo "mix: $(wc -l < "$HASHSIEVE_MIX_LIST") files, $(tr '\n' '\0' < "$HASHSIEVE_MIX_LIST" | du -cb --files0-from=- | tail -1 | cut -f1) bytes"

# 2,000 stream digests of the mix for the all-pairs comparison benchmark.
"$build/hashsieve" digest -p 2 -f "$HASHSIEVE_MIX_LIST" -o "$work/mix" 2>/dev/null || true
head -n 2000 "$work/mix.sdbf" > "$work/mix2000.sdbf"
export HASHSIEVE_SDBF_SET=$work/mix2000.sdbf

common=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_display_aggregates_only=true)
for b in sdbf_generate_bench sdbf_compare_bench crypto_bench tlsh_bench; do
  echo "== $b"
  "$build/bench/$b" "${common[@]}" 2>&1 | grep -E '_median|^Benchmark|^---' || true
done
