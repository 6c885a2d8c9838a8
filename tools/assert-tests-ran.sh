#!/bin/bash
# Fail when the last stestr run executed no test, and print its counts as
# one "N passed, N failed, N skipped" line.
# Usage: assert-tests-ran.sh [LABEL]
set -euo pipefail
label="${1:-tests}"
totals="$(stestr last --subunit | subunit-stats 2>/dev/null || true)"
passed=$(awk '/^Passed tests:/ {print $3}' <<<"$totals")
failed=$(awk '/^Failed tests:/ {print $3}' <<<"$totals")
skipped=$(awk '/^Skipped tests:/ {print $3}' <<<"$totals")
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
echo "$label: $passed passed, $failed failed, $skipped skipped"
if [ "$passed" -eq 0 ]; then
    echo "$label: no test ran; that is a failure, not a pass" >&2
    exit 1
fi
[ "$failed" -eq 0 ]
