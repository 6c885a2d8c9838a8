# The guest's side of the VM test (busybox sh), run by the rig's /init
# (tools/qemu-pmem/guest-init.sh, with QP_SCENARIO=none: the namespace is
# left as the host hands it over) in a domain Nova built for a PMEM ARQ.
# Its working directory is $OUT, whose files come back to the host.
#
# /guest/pmem.env sets:
#   PMEM_WRITE_OFFSET, PMEM_WRITE_TEXT  write TEXT at OFFSET of the guest's
#                                       pmem block device (optional)
#   PMEM_READ_OFFSETS, PMEM_READ_LENGTH read LENGTH bytes at each OFFSET
#                                       into read-OFFSET.bin
# and it writes regions.json (ndctl list -R), namespaces.json
# (ndctl list -N) and blockdev (the pmem block device it used).
set -u
. /guest/pmem.env

# A label-less nvdimm region shows one raw namespace, /dev/pmem0; it is
# probed asynchronously after the modules load.
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
ndctl list -R > regions.json || exit 1
ndctl list -N > namespaces.json || exit 1
[ -b /dev/pmem0 ] || { echo "no /dev/pmem0 after 30 s" >&2; exit 1; }
echo /dev/pmem0 > blockdev

if [ -n "${PMEM_WRITE_TEXT:-}" ]; then
    printf '%s' "$PMEM_WRITE_TEXT" \
        | dd of=/dev/pmem0 bs=1 seek="$PMEM_WRITE_OFFSET" conv=notrunc,fsync \
        || exit 1
    # Read back from the device, not from the page cache.
    sync
    echo 3 > /proc/sys/vm/drop_caches
fi
for offset in ${PMEM_READ_OFFSETS:-}; do
    dd if=/dev/pmem0 of="read-$offset.bin" bs=1 skip="$offset" \
        count="$PMEM_READ_LENGTH" || exit 1
done
