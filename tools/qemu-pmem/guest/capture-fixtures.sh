#!/bin/sh
# Guest script (busybox sh, run by run.sh after the default scenario):
# save the output of every "ndctl list" shape the unit tests read.
# FILE NAME  ARGS...; the first one is exactly the driver's own call
# (cyborg_pmem.ndctl.LIST_ARGS).
set -u
cap() {
    name="$1"; shift
    ndctl "$@" > "$name.json" 2> "$name.stderr"
    echo "$name: ndctl $* (exit $?)" >> MANIFEST
}
ndctl --version > ndctl-version
cap driver-listing list --dimms --regions --namespaces --idle --verbose
cap namespaces list --namespaces
cap namespaces-idle-verbose list --namespaces --idle --verbose
cap regions-namespaces list --regions --namespaces
cap buses-all list --buses --dimms --regions --namespaces --verbose
cap human list --regions --namespaces --human
cap single-human list --namespaces --namespace=namespace0.0 --human
cap regions-only list --regions
cap dimms-health list --dimms --health
cap dimms-regions-health list --dimms --regions --health
cap no-match list --namespaces --region=region99
cap region1-only list --dimms --regions --namespaces --idle --verbose --region=region1
# Last, as it changes the host: every region disabled. With --idle ndctl
# still lists the regions (state "disabled"), but none of their namespaces.
ndctl disable-region all >/dev/null 2>&1
cap regions-disabled list --dimms --regions --namespaces --idle --verbose
