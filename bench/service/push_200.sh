#!/usr/bin/env bash
# End-to-end service load: a Debian docker-registry notifying `hashsieve serve`,
# COUNT (default 200) small distinct images pushed with skopeo (PARALLEL at a
# time), and the time until every one has a report in GET /v1/images.
#   bench/service/push_200.sh [BUILD_DIR=build/release] [COUNT=200] [PARALLEL=4]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build/release}
count=${2:-200}
parallel=${3:-4}
hashsieve=$(realpath "$build/hashsieve")
for tool in docker-registry skopeo curl python3; do
  command -v "$tool" >/dev/null || { echo "push_200: $tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d /tmp/hashsieve-push200-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
reg_port=$(free_port)
svc_port=$(free_port)
token=push200-hook
api=push200-api

cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:$reg_port, secret: push200}
notifications:
  endpoints:
    - name: hashsieve
      url: http://127.0.0.1:$svc_port/v1/registry/events
      headers: {Authorization: ["Bearer $token"]}
      timeout: 2s
      threshold: 3
      backoff: 200ms
      ignore: {mediatypes: [application/octet-stream], actions: [pull]}
YAML
cat > "$work/hashsieve.yaml" <<YAML
data_dir: $work/data
listen: {address: 127.0.0.1, port: $svc_port, threads: 8}
webhook: {token: "Bearer $token"}
api: {tokens: [$api]}
registry: {host: "127.0.0.1:$reg_port", insecure: true}
crawler: {enabled: true, interval_seconds: 3600}
workers: {count: 2}
YAML
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$work/policy.json"

python3 "$here/make_layouts.py" "$work/layouts" "$count"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
pids+=($!)
"$hashsieve" serve --config "$work/hashsieve.yaml" > "$work/serve.log" 2>&1 &
svc_pid=$!
pids+=($svc_pid)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$reg_port/v2/" >/dev/null && curl -fs "http://127.0.0.1:$svc_port/readyz" >/dev/null && break
  sleep 0.1
done

start=$(date +%s.%N)
seq 0 $((count - 1)) | xargs -P "$parallel" -I{} skopeo --policy "$work/policy.json" copy -q --preserve-digests \
  --dest-tls-verify=false --dest-no-creds "oci:$work/layouts/img{}:v1" "docker://127.0.0.1:$reg_port/bench/img{}:v1"
pushed=$(date +%s.%N)
reports=0
for _ in $(seq 1200); do
  reports=$(curl -fs -H "Authorization: Bearer $api" "http://127.0.0.1:$svc_port/v1/images?limit=500" |
            python3 -c 'import json,sys; print(len(json.load(sys.stdin)["images"]))')
  [ "$reports" -ge "$count" ] && break
  sleep 0.25
done
done_at=$(date +%s.%N)
kill -TERM "$svc_pid"
wait "$svc_pid" && rc=0 || rc=$?
python3 - "$start" "$pushed" "$done_at" "$count" "$reports" "$parallel" <<'PY'
import sys
start, pushed, done, count, reports, par = map(float, sys.argv[1:])
print(f"pushed {int(count)} images ({int(par)} skopeo at a time) in {pushed-start:.1f} s; "
      f"{int(reports)} reports after {done-start:.1f} s ({reports/(done-start):.1f} images/s end to end)")
PY
echo "serve exit status after SIGTERM: $rc"
[ "$reports" -ge "$count" ] && [ "$rc" -eq 0 ]
