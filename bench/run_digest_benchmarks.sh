#!/usr/bin/env bash
# Runs every digest-engine benchmark over the same mix, side by side in one
# run, and prints the medians docs/performance.md quotes.
#   bench/run_digest_benchmarks.sh [BUILD_DIR]        (default build/release)
# Needs a release build: cmake --preset release && cmake --build --preset release
set -eu
cd "$(dirname "$0")/.."
build=${1:-build/release}
work=${HASHSIEVE_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
export HASHSIEVE_MIX_LIST=$work/mix.list
bench/make_mix.sh > "$HASHSIEVE_MIX_LIST"
bytes=$(tr '\n' '\0' < "$HASHSIEVE_MIX_LIST" | du -cb --files0-from=- | tail -1 | cut -f1)
echo "mix: $(wc -l < "$HASHSIEVE_MIX_LIST") files, $bytes bytes"

common=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_display_aggregates_only=true)
run() { "$@" "${common[@]}" 2>/dev/null | grep -E '_median' || true; }

echo "== SDBF generation (stream, block) and OpenSSL SHA-1 over the same bytes, one core"
run taskset -c 1 "$build/bench/sdbf_generate_bench" --benchmark_filter='-.*2Threads'
echo "== SDBF generation, stream mode, files split over 2 threads (both cores)"
run "$build/bench/sdbf_generate_bench" --benchmark_filter='2Threads'
echo "== whole command, hashsieve digest over the mix (wall seconds, 3 runs each)"
for p in 1 2; do
  for i in 1 2 3; do
    /usr/bin/time -f "-p $p: %e s wall, %U s user, %M KB peak" \
      "$build/hashsieve" digest -p "$p" -f "$HASHSIEVE_MIX_LIST" -o "$work/mix.p$p" 2>&1 | grep wall
  done
done
cmp "$work/mix.p1.sdbf" "$work/mix.p2.sdbf" && echo "-p 1 and -p 2 outputs are identical"

# Digest sets for the all-pairs comparison: the first 2,000 digests of the
# mix, a seeded random 2,000, and the 2,000 with the most filters (whose
# totals are closest to sdhash's own benchmark set: 18,333 filters, 161 M
# filter comparisons).
sdbf=$work/mix.p1.sdbf
head -n 2000 "$sdbf" > "$work/first2000.sdbf"
shuf -n 2000 --random-source=<(yes) "$sdbf" > "$work/random2000.sdbf"
awk -F: '{print $11"\t"NR}' "$sdbf" | sort -rn | head -2000 | sort -t$'\t' -k2n | cut -f2 |
  awk 'NR==FNR{k[$1];next} FNR in k' - "$sdbf" > "$work/heavy2000.sdbf"
for set in first2000 random2000 heavy2000; do
  echo "== SDBF all-pairs compare, $set ($(awk -F: '{s+=$11} END {print s}' "$work/$set.sdbf") filters), one core"
  HASHSIEVE_SDBF_SET=$work/$set.sdbf run taskset -c 1 "$build/bench/sdbf_compare_bench" --benchmark_filter='AllPairs'
done
echo "== crypto, one core"
run taskset -c 1 "$build/bench/crypto_bench"
echo "== TLSH (ours vs Debian's libtlsh) and ssdeep, one core"
run taskset -c 1 "$build/bench/tlsh_bench"
run taskset -c 1 "$build/bench/ssdeep_bench"
