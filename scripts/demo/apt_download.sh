#!/usr/bin/env bash
# Downloads Debian packages (.deb files, no installation) from a given Debian
# release, through the Debian mirror this machine's apt already uses (read from
# /etc/apt) and a private apt state directory: the system's apt configuration
# and package lists are not changed.
#
#   apt_download.sh STATE_DIR OUT_DIR RELEASE PACKAGE...
#     RELEASE "host" uses the system's own sources (no private state), else a
#     Debian suite name (bullseye, bookworm, trixie).
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
state=$1 out=$2 release=$3; shift 3
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ "$release" = host ]; then
  (cd "$out" && apt-get download -qq "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
else
  mirror=$(grep -rhoE '^URIs: *[^ ]+/debian$' /etc/apt/sources.list.d/ 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=$(grep -rhoE '^deb +(\[[^]]*\] +)?[^ ]+/debian +' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | head -1 | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}')
  [ -n "$mirror" ] || { echo "apt_download: no Debian mirror found in /etc/apt" >&2; exit 1; }
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $release main" > "$state/sources.list"
  opts=(-o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=/nonexistent
        -o Dir::State::lists="$state/lists" -o Dir::Cache="$state/cache" -o APT::Architecture=amd64)
  if ! ls "$state/lists" | grep -q "_dists_${release}_"; then
    apt-get "${opts[@]}" update -qq >&2
  fi
  # pkg/release: that release's version, even when another is installed here.
  targets=()
  for p in "$@"; do case $p in */*) targets+=("$p");; *) targets+=("$p/$release");; esac; done
  (cd "$out" && apt-get "${opts[@]}" download -qq "${targets[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
fi
# apt-get download's exit status is lost in the pipe above: check every package arrived.
for p in "$@"; do
  name=${p%%/*}
  ls "$out/${name}"_*.deb >/dev/null 2>&1 || { echo "apt_download: $p ($release) was not downloaded" >&2; exit 1; }
done
