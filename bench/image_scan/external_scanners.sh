#!/usr/bin/env bash
# External scanners on image scans (ADR 0023): the first scan (empty layer
# cache) and the cached rescan of one prepared image, without and with
# `--yara-rules` (the four rules of bench/scanners_bench.cpp), medians of RUNS
# runs, 2 cores (--threads 2, taskset -c 0,1). Prints a Markdown table.
#
#   bench/image_scan/external_scanners.sh [IMAGE_DIR]
#     IMAGE_DIR   made by bench/image_scan/prepare.sh (default
#                 build/bench-image-scan/img-500); its oci/ layout is scanned
#     RUNS=3
#     SETS="tools tools-clam"   match against only these sets (default: every
#                 set of the image's data-template). Without the known-good
#                 set every file is non-known, so every byte is scanned.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
img=${1:-$repo/build/bench-image-scan/img-500}
RUNS=${RUNS:-3}
set_args=()
for s in ${SETS:-}; do set_args+=(--set "$s"); done
bin=${HASHSIEVE_BIN:-$repo/build/release/hashsieve}
[ -f "$img/done" ] || { echo "external_scanners.sh: $img is not prepared (bench/image_scan/prepare.sh)" >&2; exit 1; }
[ -x "$bin" ] || { echo "external_scanners.sh: $bin not built" >&2; exit 1; }

tmp=$(mktemp -d -t hashsieve-extbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rules"
cat > "$tmp/rules/bench.yar" <<'YAR'
rule text_marker { strings: $a = "HASHSIEVE-BENCH-MARKER" nocase condition: $a }
rule hex_jump { strings: $h = { 4D 5A [4-16] 50 45 00 00 } condition: $h }
rule shell_download {
  strings:
    $c = "curl" ascii wide
    $r = /wget +https?:\/\/[a-z0-9.]{4,40}\/[a-z]{3,12}\.sh/
  condition: $c and $r
}
rule big_elf { condition: filesize > 5MB and uint32(0) == 0x464c457f }
YAR

results=$tmp/results.tsv   # mode run phase wall_s
: > "$results"
for run in $(seq 1 "$RUNS"); do
  for mode in none yara; do
    extra=()
    [ "$mode" = yara ] && extra=(--yara-rules "$tmp/rules")
    d=$tmp/run
    rm -rf "$d"; mkdir -p "$d"
    cp -a "$img/data-template" "$d/data"
    for phase in first cached; do
      start=$(date +%s.%N)
      HASHSIEVE_DATA_DIR=$d/data taskset -c 0,1 "$bin" scan --threads 2 --format json \
        --output "$d/$phase.json" "${set_args[@]}" "${extra[@]}" "oci:$img/oci:bench" 2>"$d/log" \
        || { echo "external_scanners.sh: scan failed:" >&2; cat "$d/log" >&2; exit 1; }
      end=$(date +%s.%N)
      wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
      printf '%s\t%s\t%s\t%s\n' "$mode" "$run" "$phase" "$wall" >> "$results"
      echo "  $mode run $run $phase: $wall s" >&2
    done
    # The cached rescan must agree with the first scan.
    python3 - "$d/first.json" "$d/cached.json" <<'PY' || exit 1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a["summary"] != b["summary"] or a["files"] != b["files"]:
    sys.exit("external_scanners.sh: first and cached scan disagree")
PY
    [ "$run" = 1 ] && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sys.argv[2], "summary:", json.dumps(j["summary"]), "scanners:", [s["name"] for s in j["scanners"]])' "$d/first.json" "$mode" >&2
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
med = lambda mode, phase: statistics.median(float(r[3]) for r in rows if r[0] == mode and r[2] == phase)
print("| scan | without scanners | with --yara-rules (4 rules) | extra |")
print("|---|---|---|---|")
for phase, name in (("first", "first scan (empty cache)"), ("cached", "cached rescan")):
    a, b = med("none", phase), med("yara", phase)
    print(f"| {name} | {a:.2f} s | {b:.2f} s | {b - a:+.2f} s ({(b / a - 1) * 100:+.0f} %) |")
PY
