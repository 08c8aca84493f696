#!/usr/bin/env bash
# Builds hashsieve and shows its digest engine on real files of this machine:
# SDBF digests (sdhash 3.4 format), a similarity comparison, and every digest
# of a file as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
bin=build/release/hashsieve
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Two builds of "the same program" and an unrelated one.
cp /usr/bin/ls "$work/ls"; cp /usr/bin/dir "$work/dir"; cp /usr/bin/cat "$work/cat"
# A tampered copy of ls: 4 KiB in the middle overwritten.
cp /usr/bin/ls "$work/ls-tampered"
dd if=/dev/urandom of="$work/ls-tampered" bs=1 seek=60000 count=4096 conv=notrunc status=none

echo "== hashsieve digest: SDBF digests, one line per file (first 100 chars shown)"
(cd "$work" && "$OLDPWD/$bin" digest ls dir cat ls-tampered -o digests)
cut -c1-100 "$work/digests.sdbf"
echo
echo "== hashsieve digest -c: pairwise similarity (0-100), scores >= 1"
(cd "$work" && "$OLDPWD/$bin" digest -c digests.sdbf)
echo
echo "== hashsieve hash: every digest of one file as JSON (the SDBF digest shortened here)"
(cd "$work" && "$OLDPWD/$bin" hash ls-tampered) | sed -E 's/("sdbf":\["[^"]{60})[^"]*/\1.../'
echo
echo "== hashsieve refset build + lookup: a known-good set of ls, dir and cat;"
echo "   the tampered ls has no exact hit, but its similarity to /ls gives it away"
mkdir -p "$work/root" && cp "$work/ls" "$work/dir" "$work/cat" "$work/root/"
"$bin" refset --data-dir "$work/data" build --name demo-distro --class known "$work/root"
"$bin" refset --data-dir "$work/data" lookup --min-score 50 "$work/ls-tampered"
