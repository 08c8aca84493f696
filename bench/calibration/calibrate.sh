#!/usr/bin/env bash
# Similarity-threshold calibration (docs/detection.md), end to end:
#
#   bench/calibration/calibrate.sh CACHE_DIR [BUILD_DIR]
#
# 1. fetches the bullseye, bookworm and trixie builds of 15 security tools
#    into CACHE_DIR/debian-releases (kept between runs; nothing lands in the repo),
# 2. builds bench/similarity_scores (release preset, unless BUILD_DIR names an
#    existing build tree that has it),
# 3. lists the tools' ELF files (references and positive queries) and the
#    distinct ELF files under $NEGATIVE_ROOTS (default /usr/bin /usr/sbin
#    /usr/lib) as negatives,
# 4. scores every tool file against every tool file and every negative file,
#    twice: whole files and the .rodata
#    section alone (the scanner applies both rules),
# 5. prints the Markdown tables of analyze.py for both (also saved as
#    CACHE_DIR/run/report-whole.md and report-rodata.md),
# 6. runs the scanner itself (bench/calibration_scan: refset build, layer
#    hasher, matcher with the default thresholds, i.e. the whole-file rule OR
#    the .rodata rule) on the same corpus: each release's tool files against
#    each other release's, and every negative against all tool files; prints
#    combined.py's figures (CACHE_DIR/run/report-scan.md).
#
# Fetching runs apt-get download against the machine's configured Debian
# mirror (see debian-releases.sh): run as root. The scoring runs under
# nice -n 10 on one core.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then sed -n '2,26p' "$0"; exit 2; fi
cache=$(mkdir -p "$1" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${2:-$repo/build/release}

packages=(socat netcat-openbsd pdfcrack crunch arp-scan nbtscan onesixtyone sslscan dirb chntpw
          macchanger proxychains4 iodine dns2tcp ophcrack-cli)
corpus=$cache/debian-releases
run=$cache/run
mkdir -p "$corpus" "$run"

echo "== corpus: $corpus" >&2
DEBIAN_RELEASES_STATE=${DEBIAN_RELEASES_STATE:-$cache/apt-state} \
  "$here/debian-releases.sh" "$corpus" bullseye,bookworm,trixie "${packages[@]}" >&2

tool=$build/bench/similarity_scores
scan_tool=$build/bench/calibration_scan
if [ -z "${2:-}" ]; then
  echo "== building similarity_scores and calibration_scan in $build" >&2
  (cd "$repo" && { [ -f "$build/CMakeCache.txt" ] || cmake --preset release >&2; } &&
     cmake --build "$build" --target similarity_scores calibration_scan -j2 >&2)
fi
for t in "$tool" "$scan_tool"; do
  [ -x "$t" ] || { echo "calibrate: $t not found (build the similarity_scores and calibration_scan targets)" >&2; exit 1; }
done

echo "== file lists" >&2
# shellcheck disable=SC2086  # NEGATIVE_ROOTS is a list of directories
python3 "$here/make_lists.py" "$corpus" "$run" ${NEGATIVE_ROOTS:-/usr/bin /usr/sbin /usr/lib}

for mode in whole rodata; do
  args=()
  [ "$mode" = rodata ] && args=(--sections .rodata)
  echo "== scores ($mode): tools x tools, tools x negatives" >&2
  nice -n 10 "$tool" "${args[@]}" "$run/tools.list" "$run/tools.list" "$run/pos-$mode.tsv"
  nice -n 10 "$tool" "${args[@]}" "$run/tools.list" "$run/negatives.list" "$run/neg-$mode.tsv"
  python3 "$here/analyze.py" "$corpus" "$run/pos-$mode.tsv" "$run/neg-$mode.tsv" > "$run/report-$mode.md"
  echo "# Digests of: $mode"
  echo
  cat "$run/report-$mode.md"
done
# The scanner's own verdicts. A query byte-identical to a reference is an
# exact hit, and the scanner then skips similarity for that file against
# every set, so positives are scanned one reference release at a time
# (a file has at most one counterpart per release).
echo "== scanner: tools x tools (per release pair), tools x negatives" >&2
releases=$(sed "s|^$corpus/||" "$run/tools.list" | cut -d/ -f1 | sort -u)
: > "$run/pos-scan.tsv"
for ref in $releases; do
  grep "^$corpus/$ref/" "$run/tools.list" > "$run/tools-$ref.list"
  for query in $releases; do
    [ "$ref" = "$query" ] && continue
    grep "^$corpus/$query/" "$run/tools.list" > "$run/tools-$query.list"
    nice -n 10 "$scan_tool" "$run/tools-$ref.list" "$run/tools-$query.list" "$run/scan-sets" "$run/pos-scan-part.tsv"
    cat "$run/pos-scan-part.tsv" >> "$run/pos-scan.tsv"
  done
done
nice -n 10 "$scan_tool" "$run/tools.list" "$run/negatives.list" "$run/scan-sets" "$run/neg-scan.tsv"
python3 "$here/combined.py" "$corpus" "$run/tools.list" "$run/negatives.list" "$run/pos-scan.tsv" \
  "$run/neg-scan.tsv" > "$run/report-scan.md"
echo "# The scanner's verdicts (both rules, default thresholds)"
echo
cat "$run/report-scan.md"
echo "== done $(date -u +%Y-%m-%dT%H:%MZ); reports in $run" >&2
