#!/bin/bash
# Run the functional suite (tests/functional): one boot of the QEMU rig
# (tools/qemu-pmem; no PMEM hardware, no KVM needed) runs our CLI and
# driver against a real kernel and ndctl, and the tests judge the result.
# Called by "tox -e functional"; arguments go to "stestr run".
#
# Without qemu-system-x86_64 it prints one "functional: SKIPPED: ..." line
# and succeeds, unless CYBORG_PMEM_REQUIRE_QEMU=1 (set by .ci/run), where
# a missing QEMU is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# tests/functional/hypervisor.py decides, as the tests do.
status=0
python -m tests.functional.hypervisor functional || status=$?
case "$status" in
    0) ;;
    3) exit 0 ;;
    *) exit 1 ;;
esac

# Kernel and initramfs: built once into ~/.cache/qemu-pmem, then reused.
tools/qemu-pmem/build.sh

out="${CYBORG_PMEM_FUNCTIONAL_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cyborg-pmem-fn.XXXXXX")}"
rm -rf "$out"
mkdir -p "$out"
export CYBORG_PMEM_FUNCTIONAL_OUT="$out"
echo "functional: booting the rig once; its output goes to $out"
# --serial: one test process, so one boot shared by every test.
rc=0
stestr --test-path ./tests/functional --top-dir ./ run --serial "$@" || rc=$?
[ -f "$out/summary.txt" ] && cat "$out/summary.txt"
bash tools/assert-tests-ran.sh functional || rc=1
exit "$rc"
