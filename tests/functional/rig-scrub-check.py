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

"""Scrub a real device-DAX namespace through our code, inside the rig.

Run by rig-scrub-check.sh (beside it) inside the qemu-pmem guest (as root, the
host's filesystem read-only, the guest's NVDIMMs and /dev/dax*). It writes
a pattern at both ends of ns0 (/dev/dax0.0, 1 GiB), zeroes the namespace
with ``cyborg-pmem-scrub ns0`` (run in-process: a fresh discovery, then
the privsep helper forked as root with only CAP_DAC_OVERRIDE, then daxio)
and reads both ends back. daxio_path points at a wrapper that records the
capabilities daxio really runs with. One process, because every Python
start-up costs seconds under emulation. Prints one JSON document; exits
non-zero when a check fails.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import time

# Set by the rig for --exec: what is written there comes back to the host.
OUT = os.environ['QEMU_PMEM_OUT']
WORK = tempfile.mkdtemp(prefix='scrub-check.')
MIB = 1 << 20


def sh(*argv, **kwargs):
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def read_dax(devpath, offset, length):
    dump = os.path.join(WORK, 'readback.bin')
    done = sh(
        'daxio',
        '-i',
        devpath,
        '-o',
        dump,
        '-k',
        str(offset),
        '-l',
        str(length),
    )
    if done.returncode:
        raise SystemExit(f'reading {devpath}@{offset}: {done.stderr}')
    with open(dump, 'rb') as f:
        return f.read()


def write_dax(devpath, offset, data):
    source = os.path.join(WORK, 'pattern.bin')
    with open(source, 'wb') as f:
        f.write(data)
    done = sh('daxio', '-i', source, '-o', devpath, '-s', str(offset))
    if done.returncode:
        raise SystemExit(f'writing {devpath}@{offset}: {done.stderr}')


def main():
    results = {'checks': {}}
    checks = results['checks']
    # The rig's chroot may come without a usable /proc: mount one of our
    # own for the capability check.
    proc = os.path.join(WORK, 'proc')
    os.mkdir(proc)
    mounted = sh('mount', '-t', 'proc', 'proc', proc)
    results['proc_mount'] = mounted.returncode
    wrapper = os.path.join(WORK, 'daxio')
    with open(wrapper, 'w') as f:
        f.write(
            '#!/bin/sh\n'
            # $$: this shell, which daxio replaces (exec) with the same
            # credentials.
            f"{{ grep -E '^(Uid|Cap|NoNewPrivs)' {proc}/$$/status; "
            'echo "grep exit $?"; } '
            f'> {OUT}/daxio-status.txt 2>&1\n'
            'exec daxio "$@"\n'
        )
    os.chmod(wrapper, 0o700)
    config = os.path.join(WORK, 'cyborg.conf')
    with open(config, 'w') as f:
        f.write(
            '[pmem_devices]\n'
            'pmem_namespaces = 1GB:ns0|ns1,FS:ns4\n'
            f'daxio_path = {wrapper}\n'
        )

    health = sh('ndctl', 'list', '--dimms', '--regions', '--health')
    with open(os.path.join(OUT, 'dimms-regions-health.json'), 'w') as f:
        f.write(health.stdout)
    results['health_listing_rc'] = health.returncode

    devpath = '/dev/dax0.0'
    size = int(open('/sys/bus/dax/devices/dax0.0/size').read())
    results['size'] = size
    pattern = bytes([0xA5]) * MIB
    write_dax(devpath, 0, pattern)
    write_dax(devpath, size - MIB, pattern)
    checks['pattern_at_start'] = read_dax(devpath, 0, 4096) == pattern[:4096]
    checks['pattern_at_end'] = (
        read_dax(devpath, size - 4096, 4096) == pattern[:4096]
    )

    from cyborg_pmem.cmd import discover
    from cyborg_pmem.cmd import scrub

    stdout, stderr = io.StringIO(), io.StringIO()
    rc = scrub.run(['--config-file', config, 'ns4'], stdout, stderr)
    checks['fsdax_refused'] = rc == scrub.EXIT_REFUSED
    results['fsdax_refusal'] = stderr.getvalue().strip()

    stdout, stderr = io.StringIO(), io.StringIO()
    rc = scrub.run(
        ['--config-file', config, '--dry-run', 'ns0'], stdout, stderr
    )
    checks['dry_run_ok'] = rc == 0
    results['dry_run'] = stdout.getvalue().strip()

    stdout, stderr = io.StringIO(), io.StringIO()
    started = time.monotonic()
    rc = scrub.run(['--config-file', config, 'ns0'], stdout, stderr)
    results['scrub_cli_seconds'] = round(time.monotonic() - started, 2)
    results['scrub'] = (stdout.getvalue() + stderr.getvalue()).strip()
    checks['scrub_ok'] = rc == 0
    checks['zero_at_start'] = read_dax(devpath, 0, 4096) == bytes(4096)
    checks['zero_at_end'] = read_dax(devpath, size - 4096, 4096) == bytes(4096)
    try:
        with open(os.path.join(OUT, 'daxio-status.txt')) as f:
            status = f.read()
    except OSError:
        status = ''
    results['daxio_status'] = status.split('\n')
    # CAP_DAC_OVERRIDE alone is bit 1: 0x2.
    checks['daxio_caps_only_dac_override'] = (
        'CapEff:\t0000000000000002' in status and 'NoNewPrivs:\t1' in status
    )

    stdout, stderr = io.StringIO(), io.StringIO()
    rc = discover.run(['--config-file', config, '--health'], stdout, stderr)
    results['discover_health_rc'] = rc
    results['discover_health'] = stdout.getvalue().split('\n')
    results['discover_health_stderr'] = stderr.getvalue().split('\n')

    print(json.dumps(results, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
