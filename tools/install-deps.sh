#!/bin/bash
# Install, as root, the Debian/Ubuntu packages the whole test run uses, as
# CI does (.ci/run calls this):
#
#   python3-venv git patch   needed: tox in a venv, pbr's version, the
#                            contrib/ series
#   mariadb-server           optional: tox -e integration stores into a
#                            real MariaDB (else sqlite); started here
#   the QEMU rig's packages  optional: tox -e functional boots a real kernel
#                            (tools/qemu-pmem/build.sh --install-deps; else
#                            the suite says SKIPPED)
#   libvirt                  optional: tox -e vm and the demo boot the
#                            patched Nova driver's guest under real libvirt
#                            (virsh, virt-xml-validate; else SKIPPED)
#
# Usage: sudo tools/install-deps.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: error: run as root (apt-get install)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3-venv git patch mariadb-server \
    libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu \
    libxml2-utils
tools/qemu-pmem/build.sh --install-deps
# No systemd on a bare machine or in a container: the init script works.
service mariadb start
