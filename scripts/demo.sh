#!/usr/bin/env bash
# The end-to-end demo: builds hashsieve, then, all on this machine and in a
# temporary directory that is removed on exit:
#   1. starts a private container registry (Debian's docker-registry) on 127.0.0.1;
#   2. builds a three-layer image from real Debian packages and pushes it
#      (layers numbered from 0, as the report numbers them):
#        layer 0  base: files of coreutils, bash, libc6, ... as Debian ships them
#        layer 1  app:  a script and a config, plus two network tools disguised
#                 under innocent names (nc.openbsd as a systemd helper, socat as
#                 a health check) and a third copy of nc that layer 2 deletes
#        layer 2  a tampered /bin/ls (16 bytes patched) and the whiteout that
#                 hides the dropped nc from the final file system;
#   3. makes reference sets: known-good from the base packages' .deb files,
#      known-bad from the tools (nc from the same build, socat from the previous
#      Debian release, i.e. another build) and a ClamAV .hdb made with sigtool;
#   4. scans the image in the registry and prints the report; a YARA rule
#      (--yara-rules) also runs on every file the hashes do not know, and
#      flags the start script that hands a listener a shell.
# Packages are fetched with apt-get download through this machine's apt
# configuration; nothing is installed and the system's apt state is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cmake --preset release >/dev/null
cmake --build --preset release --target hashsieve >/dev/null
bin=$repo/build/release/hashsieve
demo=$repo/scripts/demo

work=$(mktemp -d -t hashsieve-demo.XXXXXX)
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# Every hashsieve command below uses this data directory, never the user's own.
export HASHSIEVE_DATA_DIR=$work/data
reports=$repo/build/demo
mkdir -p "$reports"

echo "== 1. a private registry on 127.0.0.1"
read -r port registry_pid < <("$demo/registry.sh" "$work/registry") || true
[ -n "${registry_pid:-}" ] || { echo "demo: the registry did not start" >&2; exit 1; }
registry=127.0.0.1:$port
echo "docker-registry serving http://$registry/v2/ (storage in $work/registry)"

echo
echo "== 2. an image from real Debian packages"
base_pkgs=(base-files bash coreutils dash grep sed libc6 libacl1 libattr1 libselinux1 libpcre2-8-0 libgmp10 libtinfo6)
"$demo/apt_download.sh" "$work/apt" "$work/debs/base" host "${base_pkgs[@]}"
"$demo/apt_download.sh" "$work/apt" "$work/debs/tools" host netcat-openbsd socat
# The known-bad socat comes from the previous release: a different build of
# the same program, so only similarity can tie the image's socat to it.
other_socat=yes
if ! "$demo/apt_download.sh" "$work/apt" "$work/debs/bad" bullseye socat 2>/dev/null; then
  echo "(the previous Debian release is not reachable: the known-bad socat is this release's build)"
  other_socat=no
fi
echo "downloaded $(ls "$work"/debs/*/*.deb | wc -l) .deb files: ${base_pkgs[*]}, netcat-openbsd, socat"

l1=$work/layers/0-base l2=$work/layers/1-app l3=$work/layers/2-patch
mkdir -p "$l1" "$l2" "$l3" "$work/x"
for deb in "$work"/debs/base/*.deb; do dpkg-deb -x "$deb" "$l1"; done
dpkg-deb -x "$work"/debs/tools/netcat-openbsd_*.deb "$work/x/nc"
dpkg-deb -x "$work"/debs/tools/socat_*.deb "$work/x/socat"

mkdir -p "$l2/app" "$l2/etc/app" "$l2/usr/lib/systemd" "$l2/usr/local/bin" "$l2/var/tmp/.font-unix"
printf '#!/bin/sh\nexec /usr/lib/systemd/systemd-netlogd -lk 8080 -e /bin/sh\n' > "$l2/app/start.sh"
chmod 755 "$l2/app/start.sh"
printf 'listen: 0.0.0.0:8080\nlog_level: info\n' > "$l2/etc/app/config.yaml"
install -m 755 "$work/x/nc/bin/nc.openbsd" "$l2/usr/lib/systemd/systemd-netlogd"
install -m 755 "$work/x/socat/usr/bin/socat" "$l2/usr/local/bin/healthcheck"
install -m 755 "$work/x/nc/bin/nc.openbsd" "$l2/var/tmp/.font-unix/Xsession"

mkdir -p "$l3/bin" "$l3/var/tmp/.font-unix"
cp -p "$l1/bin/ls" "$l3/bin/ls"
# Tamper: 16 bytes in the code, as a patched binary would differ.
printf '\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90' \
  | dd of="$l3/bin/ls" bs=1 seek=$((0x6000)) conv=notrunc status=none
: > "$l3/var/tmp/.font-unix/.wh.Xsession"   # OCI whiteout: deletes layer 1's copy

read -r manifest_digest bytes < <(python3 "$demo/oci_image.py" --entrypoint /app/start.sh \
  "$work/oci" 1.0 "$l1" "$l2" "$l3")
echo "OCI layout written: $manifest_digest, $bytes bytes of uncompressed layers"
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:1.0" "docker://$registry/demo/app:1.0"
echo "pushed $registry/demo/app:1.0"

echo
echo "== 3. reference sets (data directory $HASHSIEVE_DATA_DIR)"
"$bin" refset build --name debian-base --class known "$work"/debs/base/*.deb
# Known-bad: only the tools' programs, not their documentation.
mkdir -p "$work/bad/bin" "$work/bad/usr/bin"
cp "$work/x/nc/bin/nc.openbsd" "$work/bad/bin/"
if [ "$other_socat" = yes ]; then
  dpkg-deb -x "$work"/debs/bad/socat_*.deb "$work/x/socat-old"
  cp "$work/x/socat-old/usr/bin/socat" "$work/bad/usr/bin/"
else
  cp "$work/x/socat/usr/bin/socat" "$work/bad/usr/bin/"
fi
"$bin" refset build --name hacking-tools --class malicious "$work/bad"
# The same nc as a ClamAV hash signature (md5:size:name), the format of ClamAV's .hdb files.
sigtool --md5 "$work/bad/bin/nc.openbsd" | sed 's/:nc.openbsd$/:Demo.Tool.Netcat-1/' > "$work/demo.hdb"
"$bin" refset import --name clamav-demo --format clamav "$work/demo.hdb"
# A YARA rule for the scan's third-party scanner pass (non-known files only).
mkdir -p "$work/rules"
cat > "$work/rules/demo.yar" <<'YAR'
rule demo_listener_execs_shell : demo {
  strings:
    $exec_shell = "-e /bin/sh"
  condition:
    $exec_shell and filesize < 4KB
}
YAR

echo
echo "== 4. hashsieve scan --insecure --yara-rules $work/rules $registry/demo/app:1.0"
"$bin" scan --insecure --yara-rules "$work/rules" --format table "$registry/demo/app:1.0"
echo
set +e
"$bin" scan --insecure --yara-rules "$work/rules" --format json --output "$reports/report.json" --fail-on malicious \
  "$registry/demo/app:1.0"
rc=$?
set -e
if [ "$rc" -ne 4 ]; then
  echo "demo: expected exit status 4 (--fail-on malicious) from the JSON scan, got $rc" >&2
  exit 1
fi
"$bin" scan --insecure --format sarif --output "$reports/report.sarif" "$registry/demo/app:1.0"
python3 - "$reports/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
print("summary: {files} files: {known} known, {malicious} malicious, {suspicious} suspicious, "
      "{modified} modified, {unknown} unknown; reduction ratio {reduction_ratio}".format(**s))
PY
echo "exit status with --fail-on malicious: $rc (a CI gate fails the build)"
echo "reports: $reports/report.json (JSON), $reports/report.sarif (SARIF 2.1.0)"
