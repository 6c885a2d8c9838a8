#!/bin/bash
# Regenerate tests/fixtures/ndctl/ from a real kernel: boot the QEMU
# rig (tools/qemu-pmem, no PMEM hardware or KVM needed), create the default
# scenario of namespaces and save what ndctl prints for each listing shape
# the unit tests use. Needs the rig's packages: tools/qemu-pmem/build.sh
# --install-deps.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEST="$HERE/../tests/fixtures/ndctl"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

"$HERE/qemu-pmem/build.sh"
"$HERE/qemu-pmem/run.sh" --quiet "$OUT/run" "$HERE/qemu-pmem/guest/capture-fixtures.sh"
mkdir -p "$DEST"
# Replace only what the rig captures; the hand-written fixtures (their
# MANIFEST lines say "NOT captured": real hardware or ndctl releases the
# rig cannot run) stay.
for f in "$OUT"/run/files/*.json; do
    cp "$f" "$DEST"/
done
cp "$OUT"/run/files/ndctl-version "$DEST"/
{
    cat "$OUT"/run/files/MANIFEST
    grep -h ': NOT captured' "$DEST"/MANIFEST || true
} > "$OUT"/MANIFEST
cp "$OUT"/MANIFEST "$DEST"/MANIFEST
echo "captured $(ls "$DEST"/*.json | wc -l) listings from ndctl $(cat "$DEST/ndctl-version") into $DEST"
