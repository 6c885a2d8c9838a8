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

"""Boot the qemu-pmem rig once per test process and share what it saw.

One boot runs ``guest_run.py`` in the VM (default scenario, benchmark,
host changes); every test reads the one ``results.json`` it wrote. The
suite runs with ``stestr run --serial`` so that a test run is one process
and so one boot. A failed boot is remembered too: every test then fails
with the same message instead of booting again.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

from tests.functional import hypervisor

ROOT = os.path.abspath(
    os.path.join(os.path.dirname(__file__), os.pardir, os.pardir)
)
RUN_SH = os.path.join(ROOT, 'tools', 'qemu-pmem', 'run.sh')
GUEST_RUN = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'guest_run.py'
)
# Where the rig leaves its output (init.log, console.log, files/).
OUT = 'CYBORG_PMEM_FUNCTIONAL_OUT'
# A directory holding a results.json from an earlier boot: reuse it
# instead of booting (for working on the assertions only).
REUSE = 'CYBORG_PMEM_FUNCTIONAL_RESULTS'
# The whole guest run takes 3-4 minutes under TCG on 2 cores; leave room
# for a slower CI machine, but never hang.
VM_TIMEOUT = 1200

_cache = {}


class RigFailed(Exception):
    pass


def results():
    """The guest's results; boots the rig on the first call."""
    if 'results' not in _cache and 'error' not in _cache:
        try:
            _cache['results'] = _load()
        except unittest.SkipTest:
            raise
        except Exception as err:
            _cache['error'] = err
    if 'error' in _cache:
        raise _cache['error']
    return _cache['results']


def _load():
    reuse = os.environ.get(REUSE)
    if reuse:
        return _read(reuse, f'reused from ${REUSE}')
    hypervisor.check()
    out = os.environ.get(OUT) or tempfile.mkdtemp(prefix='cyborg-pmem-fn.')
    # The guest runs this very interpreter (the test venv, with our
    # package and the patched Cyborg) from the host root over 9p.
    command = shlex.join([sys.executable, GUEST_RUN])
    argv = ['bash', RUN_SH, '--quiet', '--timeout', str(VM_TIMEOUT)]
    argv += ['--exec', command, out]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=VM_TIMEOUT + 120,
            check=False,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        raise RigFailed(f'run.sh did not return; see {out}') from None
    if done.returncode != 0:
        tail = '\n'.join(done.stderr.strip().splitlines()[-15:])
        raise RigFailed(
            f'run.sh exited {done.returncode}; see {out}/init.log and '
            f'{out}/exec.stderr:\n{tail}'
        )
    return _read(os.path.join(out, 'files'), out)


def _read(directory, where):
    path = os.path.join(directory, 'results.json')
    try:
        with open(path) as f:
            found = json.load(f)
    except (OSError, ValueError) as err:
        raise RigFailed(f'no readable {path}: {err}') from None
    if not found.get('complete'):
        raise RigFailed(f'the guest run stopped early; see {where}')
    found['where'] = where
    _write_summary(found)
    return found


def _write_summary(found):
    """The lines tools/run-functional.sh prints after the tests."""
    out = os.environ.get(OUT)
    if not out or not os.path.isdir(out):
        return
    lines = [
        f'functional: guest ran kernel {found["kernel"]}, ndctl '
        f'{found["ndctl_version"]}; phases (s): '
        + ', '.join(f'{k} {v}' for k, v in sorted(found['timings'].items()))
    ]
    bench = found.get('benchmark', {})
    if 'ratio' in bench:
        lines.append(
            'functional: benchmark: discover() median '
            f'{bench["discover_median"] * 1000:.1f} ms, bare "ndctl list" '
            f'median {bench["ndctl_median"] * 1000:.1f} ms over '
            f'{bench["rounds"]} runs each, ratio {bench["ratio"]:.3f} '
            '(goal <= 1.10)'
        )
    with open(os.path.join(out, 'summary.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
