#!/bin/bash
# Boot the qemu-pmem rig once and scrub a real device-DAX namespace through
# cyborg-pmem's own code (rig-scrub-check.py beside this file, run as root in the
# guest): pattern written at both ends of the 1 GiB ns0, zeroed by
# "cyborg-pmem-scrub ns0" (privsep helper forked with CAP_DAC_OVERRIDE only,
# daxio with no_new_privs), read back as zeros. Also saves the guest's
# "ndctl list --dimms --regions --health" output.
#
# usage: tests/functional/rig-scrub-check.sh [OUTDIR] [PYTHON]
#   OUTDIR  results (default: a new temporary directory); the JSON report is
#           OUTDIR/exec.stdout
#   PYTHON  an interpreter with cyborg-pmem and its requirements installed
#           (default: .tox/py3/bin/python, made by "tox -e py3")
# exit status: 0 every check passed; otherwise the guest's or run.sh's.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUTDIR="${1:-$(mktemp -d "${TMPDIR:-/tmp}/rig-scrub.XXXXXX")}"
PYTHON="${2:-$ROOT/.tox/py3/bin/python}"
[ -x "$PYTHON" ] || { echo "rig-scrub-check: $PYTHON not found (run tox -e py3 first)" >&2; exit 2; }
cd "$ROOT"
"$ROOT/tools/qemu-pmem/run.sh" --quiet --timeout 600 \
    --exec "$PYTHON $HERE/rig-scrub-check.py" "$OUTDIR"
