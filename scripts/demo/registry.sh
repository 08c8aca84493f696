#!/usr/bin/env bash
# Starts Debian's docker-registry (distribution 2.x) on 127.0.0.1 with its
# storage in a given directory, waits until /v2/ answers, and prints
# "PORT PID". The caller stops it with `kill PID`.
#
#   registry.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
dir=$1
mkdir -p "$dir/storage"
command -v docker-registry >/dev/null || { echo "registry.sh: docker-registry not installed (scripts/setup.sh)" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then echo "$port $pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
echo "registry.sh: docker-registry did not answer on 127.0.0.1:$port; its log:" >&2
cat "$dir/registry.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
