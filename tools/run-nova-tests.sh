#!/usr/bin/env bash
# The tests of `tox -e nova`, run with stestr into one repository:
#
#   tools/run-nova-tests.sh SITE_PACKAGES WORK_DIR
#
# 1. Nova's own unit tests for what contrib/nova changes (the series'
#    tests and Nova's existing vPMEM, accelerator and ARQ tests), from the
#    installed, patched nova in SITE_PACKAGES;
# 2. Nova's functional tests for the same: the series' PMEM accelerator
#    tests on the libvirt driver and Nova's existing vPMEM and accelerator
#    server tests;
# 3. tests/nova: Nova's Cyborg client against the real patched Cyborg.
#
# Nova's unit and functional trees cannot be discovered in one process
# (each sets up its own concurrency mode), nor the whole unit tree (some of
# its modules refuse to import after others), so each run names a directory
# and a filter. Prints "nova: N passed, N failed, N skipped" for all of
# them and fails when a test failed or none ran.

set -uo pipefail

[ $# -eq 2 ] || {
    echo "usage: $0 SITE_PACKAGES WORK_DIR" >&2
    exit 2
}
site=$1
work=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$site/nova/tests" ] || {
    echo "$0: no nova tests in $site (run tools/nova-env.sh first)" >&2
    exit 2
}

rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 2

status=0
combine=()
run() {
    local top=$1 path=$2 filter=$3
    echo "nova tests: $path ${filter:+(filter $filter)}"
    stestr --test-path "$top/$path" --top-dir "$top" run "${combine[@]}" \
        ${filter:+"$filter"} || status=1
    combine=(--combine)
}

# As Nova's own py3 and functional environments run them.
export OS_NOVA_DISABLE_EVENTLET_PATCHING=False
# eventlet's nine-line deprecation banner, which it warns in every test
# process when nova/monkey_patch.py imports it; nothing else is filtered.
export PYTHONWARNINGS=ignore::Warning:nova.monkey_patch
run "$site" nova/tests/unit/virt \
    '(?i)(vpmem|pmem|accel|arq|cyborg|resume_state_on_host_boot)'
run "$site" nova/tests/unit/compute '(?i)(accel|arq|cyborg|resume)'
run "$site" nova/tests/unit/conductor '(?i)(accel|arq|cyborg)'
run "$site" nova/tests/unit/accelerator ''
run "$site" nova/tests/functional \
    '(test_pmem_accelerators|test_vpmem|test_servers\.\w*Accelerator)'
unset OS_NOVA_DISABLE_EVENTLET_PATCHING PYTHONWARNINGS
run "$repo" tests/nova ''

stestr slowest || true
bash "$repo/tools/assert-tests-ran.sh" nova || status=1
exit $status
