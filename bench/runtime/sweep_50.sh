#!/usr/bin/env bash
# Runtime scanning cost: a private dockerd, 50 busybox containers each writing
# a small file, then
#   1. `hashsieve runtime --once` over all of them, wall time (median of RUNS);
#   2. the scheduler (`hashsieve runtime`, no --once) idle for IDLE seconds
#      after its first sweep: CPU from /proc/<pid>/stat (utime + stime).
# Needs root, dockerd, the docker CLI and a static /bin/busybox.
# Usage: bench/runtime/sweep_50.sh [path/to/hashsieve]   (default build/release/hashsieve)
# RUNTIME_ARGS adds options to the --once runs (RUNTIME_ARGS=--full: full
# scans from /export); IDLE=0 skips the idle measurement.
set -euo pipefail
HASHSIEVE=${1:-build/release/hashsieve}
HASHSIEVE=$(readlink -f "$HASHSIEVE")
N=${N:-50}
RUNS=${RUNS:-5}
IDLE=${IDLE:-60}
RUNTIME_ARGS=${RUNTIME_ARGS:-}
[ "$(id -u)" -eq 0 ] || { echo "sweep_50: needs root (it starts dockerd)" >&2; exit 2; }
command -v dockerd >/dev/null && command -v docker >/dev/null || { echo "sweep_50: dockerd/docker missing" >&2; exit 2; }

WORK=$(mktemp -d /tmp/hs-sweep50-XXXXXX)
SOCK=$WORK/docker.sock
D="docker -H unix://$SOCK"
DOCKERD_PID=""
RUNTIME_PID=""
cleanup() {
  [ -n "$RUNTIME_PID" ] && kill "$RUNTIME_PID" 2>/dev/null && wait "$RUNTIME_PID" 2>/dev/null || true
  if [ -n "$DOCKERD_PID" ]; then
    $D rm -f $($D ps -aq) >/dev/null 2>&1 || true
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

dockerd --storage-driver=vfs --iptables=false --bridge=none --data-root "$WORK/data" --host "unix://$SOCK" \
  --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 300); do $D version >/dev/null 2>&1 && break; sleep 0.1; done

mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/tmp"
cp /bin/busybox "$WORK/rootfs/bin/"
for t in sh echo sleep cat; do ln -s busybox "$WORK/rootfs/bin/$t"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
$D import "$WORK/rootfs.tar" hsbox:bench >/dev/null
for i in $(seq 1 "$N"); do
  $D run -d --network none --name "c$i" hsbox:bench /bin/sh -c "echo container $i > /tmp/drift.txt; sleep 100000" >/dev/null
done
sleep 2
echo "containers running: $($D ps -q | wc -l)"

times=()
for r in $(seq 1 "$RUNS"); do
  rm -rf "$WORK/hs"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086 # RUNTIME_ARGS is a list of options
  "$HASHSIEVE" runtime --once $RUNTIME_ARGS --docker-host "unix://$SOCK" --data-dir "$WORK/hs" --format json \
    --output "$WORK/report.json"
  end=$(date +%s.%N)
  times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')")
done
scanned=$(grep -c '"/tmp/drift.txt"' "$WORK/report.json" || true)
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "sweep of $N containers (--once $RUNTIME_ARGS): median ${median}s over $RUNS runs (${times[*]}); drifted files reported: $scanned"

[ "$IDLE" -gt 0 ] || exit 0
# Idle scheduler: after its first sweep nothing is due for an hour. A fresh
# data dir, so the first sweep scans everything (the --once runs stored a
# schedule that says every container was just scanned).
"$HASHSIEVE" runtime --docker-host "unix://$SOCK" --data-dir "$WORK/hs-daemon" 2>"$WORK/runtime.log" &
RUNTIME_PID=$!
sleep 15
clk=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$RUNTIME_PID/stat"; }
t0=$(ticks)
sleep "$IDLE"
t1=$(ticks)
echo "idle scheduler: $((t1 - t0)) ticks in ${IDLE}s = $(awk -v d=$((t1 - t0)) -v c="$clk" -v s="$IDLE" 'BEGIN {printf "%.3f", d * 100 / c / s}')% CPU"
echo "first sweep logged $(grep -c 'drifted files' "$WORK/runtime.log") container scans"
