#!/bin/bash
# Run a suite that boots VMs (no PMEM hardware, no KVM needed):
#
#   tools/run-functional.sh functional [STESTR ARGS]
#       tests/functional: one boot of the QEMU rig (tools/qemu-pmem) runs
#       our CLI and driver against a real kernel and ndctl, and the tests
#       judge the result. Called by "tox -e functional".
#   tools/run-functional.sh vm [STESTR ARGS]
#       tests/vm: the patched Nova driver's domain for a PMEM ARQ, booted
#       under real libvirt on the rig's kernel. Called by "tox -e vm".
#
# Without QEMU (or, for vm, libvirt) it prints one "SUITE: SKIPPED: ..."
# line and succeeds, unless CYBORG_PMEM_REQUIRE_QEMU=1 (set by .ci/run),
# where that is a failure (tests/functional/hypervisor.py decides).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suite="${1:-}"
# What the suite needs, and where it leaves its output (the tests write
# summary.txt there, printed after them).
case "$suite" in
    functional) need=(); out_var=CYBORG_PMEM_FUNCTIONAL_OUT ;;
    vm) need=(--libvirt); out_var=CYBORG_PMEM_VM_OUT ;;
    *) echo "usage: $0 functional|vm [STESTR ARGS]" >&2; exit 2 ;;
esac
shift

status=0
python -m tests.functional.hypervisor "${need[@]}" "$suite" || status=$?
case "$status" in
    0) ;;
    3) exit 0 ;;
    *) exit 1 ;;
esac

# Kernel and initramfs: built once into ~/.cache/qemu-pmem, then reused.
tools/qemu-pmem/build.sh

out="${!out_var:-$(mktemp -d "${TMPDIR:-/tmp}/cyborg-pmem-$suite.XXXXXX")}"
rm -rf "$out"
mkdir -p "$out"
export "$out_var=$out"
if [ "$suite" = functional ]; then
    echo "functional: booting the rig once; its output goes to $out"
else
    echo "vm: two domains under libvirt; their output goes to $out"
fi
# --serial: one test process, so one boot (functional) or one pair of
# domains (vm) shared by every test.
rc=0
stestr --test-path "./tests/$suite" --top-dir ./ run --serial "$@" || rc=$?
[ -f "$out/summary.txt" ] && cat "$out/summary.txt"
bash tools/assert-tests-ran.sh "$suite" || rc=1
exit "$rc"
