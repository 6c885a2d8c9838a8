#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Whether QEMU (and libvirt) can run here: the one check for every suite
that boots a VM.

The rig's suites (tests/functional) need QEMU; the VM test (tests/vm)
needs libvirt too. Without them a suite skips with one line naming what
to install, except under ``CYBORG_PMEM_REQUIRE_QEMU=1`` (CI), where a
missing hypervisor is a failure. Shell runners use the command line::

    python -m tests.functional.hypervisor [--libvirt] SUITE

which prints nothing and exits 0 when the suite can run, prints
``SUITE: SKIPPED: ...`` and exits 3 when it should skip, and prints
``SUITE: FAILED: ...`` and exits 1 when it must fail.
"""

import glob
import os
import shutil
import sys
import unittest

# Set by .ci/run: a machine that should run the suites must not skip them.
REQUIRE_QEMU = 'CYBORG_PMEM_REQUIRE_QEMU'
QEMU_HINT = (
    "tools/qemu-pmem/build.sh --install-deps installs the rig's packages: "
    'qemu-system-x86 busybox-static ndctl daxctl pmdk-tools kmod cpio'
)
LIBVIRT_PACKAGES = (
    'libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu '
    'libxml2-utils'
)
LIBVIRT_HINT = f'apt-get install {LIBVIRT_PACKAGES}'
# (command, Debian package) for what the VM test runs.
LIBVIRT_COMMANDS = (
    ('libvirtd', 'libvirt-daemon-system'),
    ('virtlogd', 'libvirt-daemon-system'),
    ('virsh', 'libvirt-clients'),
    ('virt-xml-validate', 'libxml2-utils'),
)
# libvirtd without its QEMU driver starts, but knows no qemu:///system.
QEMU_DRIVER_GLOB = (
    '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so'
)
EXIT_SKIP = 3


class HypervisorMissing(Exception):
    """A suite that must run cannot: QEMU or libvirt is missing."""


def qemu_binary():
    return os.environ.get('QEMU_PMEM_QEMU', 'qemu-system-x86_64')


def which(command):
    """``command`` on PATH or in the sbin directories, or None."""
    path = os.environ.get('PATH', os.defpath)
    return shutil.which(command, path=f'{path}:/usr/sbin:/sbin')


def missing(libvirt=False):
    """Why a VM cannot boot here, as one line naming what to install, or
    None."""
    absent, hints = [], []
    qemu = qemu_binary()
    if which(qemu) is None:
        absent.append(qemu)
        hints.append(QEMU_HINT)
    if libvirt:
        packages = sorted(
            {p for command, p in LIBVIRT_COMMANDS if not which(command)}
        )
        if not glob.glob(QEMU_DRIVER_GLOB):
            packages.append('libvirt-daemon-driver-qemu')
        if packages:
            absent.extend(packages)
            hints.append(LIBVIRT_HINT)
    if absent:
        return f'{", ".join(absent)} not installed ({"; ".join(hints)})'
    if libvirt and os.geteuid() != 0:
        return 'libvirtd for qemu:///system runs as root only; run as root'
    return None


def check(libvirt=False):
    """Return when a VM can boot; else skip, or fail under
    ``CYBORG_PMEM_REQUIRE_QEMU=1``.

    :raises unittest.SkipTest: the reason, as one line.
    :raises HypervisorMissing: the reason, when the suite must run.
    """
    why = missing(libvirt)
    if why is None:
        return
    if os.environ.get(REQUIRE_QEMU) == '1':
        raise HypervisorMissing(f'{why}, and {REQUIRE_QEMU}=1')
    raise unittest.SkipTest(why)


def main(argv):
    libvirt = '--libvirt' in argv
    names = [a for a in argv if a != '--libvirt']
    if len(names) != 1:
        print(
            'usage: python -m tests.functional.hypervisor [--libvirt] SUITE',
            file=sys.stderr,
        )
        return 2
    (suite,) = names
    try:
        check(libvirt)
    except unittest.SkipTest as why:
        print(f'{suite}: SKIPPED: {why}')
        return EXIT_SKIP
    except HypervisorMissing as why:
        print(f'{suite}: FAILED: {why}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
