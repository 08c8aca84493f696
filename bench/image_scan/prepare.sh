#!/usr/bin/env bash
# Prepares one benchmark image and its reference sets (bench/image_scan/run.sh
# calls it; it can also be run alone). Everything lands in OUT_DIR:
#
#   prepare.sh OUT_DIR SIZE_MB [LAYERS]
#
#   layers/1..LAYERS  real files of this machine's /usr, in sorted path order
#                     until SIZE_MB (10^6 bytes) of file data, cut into LAYERS
#                     (default 4) layers of about equal size; the last one also
#                     holds the planted files: nc.openbsd and socat (Debian 12
#                     packages) under innocent names and a tampered /usr/bin/ls
#   rootfs/           the image's final file system (the layers copied in order),
#                     for clamscan and `hashsieve scan dir:`
#   oci/              the image as an OCI layout, tag "bench" (gzip level 6)
#   image.tar         the same image as a docker-archive (bench/image:bench)
#   bytes             total uncompressed layer bytes (tar streams)
#   data-template/    a hashsieve data directory with the reference sets:
#                       dpkg-known  known-good: hashlist of every installed
#                                   package's md5sums (/var/lib/dpkg/info)
#                       tools       known-bad: refset build of nc and socat
#                       tools-clam  known-bad: the same two as a ClamAV .hdb
#   bad.hdb           that .hdb, for clamscan (sigtool --md5)
# An OUT_DIR that already holds a finished preparation (OUT_DIR/done) is kept.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,23p' "$0" >&2; exit 2; }
out=$1 size_mb=$2 nlayers=${3:-4}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${HASHSIEVE_BIN:-$repo/build/release/hashsieve}
[ -x "$bin" ] || { echo "prepare.sh: $bin not built" >&2; exit 1; }
if [ -f "$out/done" ]; then echo "prepare.sh: $out is ready" >&2; exit 0; fi
rm -rf "$out"; mkdir -p "$out"
out=$(cd "$out" && pwd)

# The file list: regular files and symlinks of /usr in sorted path order.
limit=$((size_mb * 1000000))
find /usr -xdev \( -type f -o -type l \) -printf '%s\t%P\n' | LC_ALL=C sort -t$'\t' -k2 \
  | awk -F'\t' -v limit="$limit" -v n="$nlayers" -v dir="$out" '
      last { next }   # read to the end: an early exit would break the pipe under pipefail
      { sz = ($1 ~ /^[0-9]+$/) ? $1 : 0; rows[NR] = $2; sizes[NR] = sz; total += sz; if (total >= limit) last = NR }
      END { if (!last) last = NR; t = 0
            for (i = 1; i <= last; i++) { k = int(t * n / total) + 1; if (k > n) k = n
              print "usr/" rows[i] > (dir "/list." k); t += sizes[i] } }'
for k in $(seq 1 "$nlayers"); do
  mkdir -p "$out/layers/$k"
  tar -C / --no-recursion -cf - -T "$out/list.$k" | tar -C "$out/layers/$k" -xf -
done

# Planted files in the last layer.
"$repo/scripts/demo/apt_download.sh" "$out/apt" "$out/debs" host netcat-openbsd socat
mkdir -p "$out/x" "$out/bad/bin" "$out/bad/usr/bin"
dpkg-deb -x "$out"/debs/netcat-openbsd_*.deb "$out/x"
dpkg-deb -x "$out"/debs/socat_*.deb "$out/x"
cp "$out/x/bin/nc.openbsd" "$out/bad/bin/"; cp "$out/x/usr/bin/socat" "$out/bad/usr/bin/"
top=$out/layers/$nlayers
mkdir -p "$top/usr/lib/systemd" "$top/usr/local/bin" "$top/usr/bin"
install -m 755 "$out/x/bin/nc.openbsd" "$top/usr/lib/systemd/systemd-netlogd"
install -m 755 "$out/x/usr/bin/socat" "$top/usr/local/bin/healthcheck"
rm -f "$top/usr/bin/ls"; cp /usr/bin/ls "$top/usr/bin/ls"
printf '\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90\x90' \
  | dd of="$top/usr/bin/ls" bs=1 seek=$((0x6000)) conv=notrunc status=none

layer_dirs=()
for k in $(seq 1 "$nlayers"); do layer_dirs+=("$out/layers/$k"); done
read -r _ bytes < <(python3 "$repo/scripts/demo/oci_image.py" "$out/oci" bench "${layer_dirs[@]}")
echo "$bytes" > "$out/bytes"
mkdir -p "$out/rootfs"
for d in "${layer_dirs[@]}"; do cp -a "$d/." "$out/rootfs/"; done
skopeo copy -q "oci:$out/oci:bench" "docker-archive:$out/image.tar:bench/image:bench"

# Reference sets.
export HASHSIEVE_DATA_DIR=$out/data-template
cat /var/lib/dpkg/info/*.md5sums > "$out/dpkg.md5"
"$bin" refset import --name dpkg-known --format hashlist --class known "$out/dpkg.md5"
"$bin" refset build --name tools --class malicious "$out/bad"
(cd "$out/bad" && sigtool --md5 bin/nc.openbsd usr/bin/socat) > "$out/bad.hdb"
"$bin" refset import --name tools-clam --format clamav "$out/bad.hdb"
rm -rf "$out/x" "$out/apt" "$out"/list.*
touch "$out/done"
echo "prepare.sh: $out: $bytes bytes of uncompressed layers in $nlayers layers" >&2
