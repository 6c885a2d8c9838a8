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

"""Cyborg with and without the report_data patch, each in its own Python.

The patch series in ``contrib/cyborg`` ends with a patch that makes
``ConductorManager.report_data`` read a host once instead of row by row
(``REPORT_DATA_PATCH``). To show that it changes the cost and nothing
else, the same work runs on Cyborg with the whole series ("after") and
with the series without that patch ("before"). Two Cyborgs cannot share a
process, so each runs in a Python of its own:

* after: this environment's Python, where ``tools/cyborg-env.sh`` (tox's
  ``commands_pre``) installed the whole series;
* before: a virtualenv under ``<this environment>/cyborg-variants``,
  layered on this environment (a ``.pth`` file adds this environment's
  site-packages, so every other package, the driver included, is the
  same), with its own Cyborg installed by ``tools/cyborg-env.sh
  --patches`` from a directory holding the series without the patch. The
  series hash that ``cyborg-env.sh`` records keeps the two installs apart
  and makes the next run reuse this one.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig

from tests.integration import pipeline

PATCH_DIR = os.path.join(pipeline.REPO, 'contrib', 'cyborg')
CYBORG_ENV = os.path.join(pipeline.REPO, 'tools', 'cyborg-env.sh')
# The file name prefix of the patch under comparison.
REPORT_DATA_PATCH = '0007-'
# Building Cyborg from its sdist takes about half a minute on a quiet
# machine; leave room for a busy one.
INSTALL_TIMEOUT = 900


def series():
    """The file names of the patch series, in the order it applies."""
    return sorted(p for p in os.listdir(PATCH_DIR) if p.endswith('.patch'))


def series_without_report_data():
    return [p for p in series() if not p.startswith(REPORT_DATA_PATCH)]


def cyborg_series():
    """The patch names the Cyborg of this Python carries (the marker that
    tools/cyborg-env.sh installs with it)."""
    from cyborg import _pmem_series

    return list(_pmem_series.PATCHES)


def installed_series(python):
    """The patch names the Cyborg of ``python`` carries."""
    out = pipeline.run_command(
        [
            python,
            '-c',
            'import json; from cyborg import _pmem_series as s; '
            'print(json.dumps(list(s.PATCHES)))',
        ],
        f'{python}: reading the Cyborg patch series',
    )
    return json.loads(out)


def after_python():
    """This environment's Python, checked to carry the whole series."""
    found = installed_series(sys.executable)
    if found != series():
        raise pipeline.PipelineError(
            f'the Cyborg of {sys.executable} carries {len(found)} patches, '
            f'not the {len(series())} of contrib/cyborg: run '
            'tools/cyborg-env.sh on it'
        )
    return sys.executable


def _this_environment_site_dirs():
    paths = sysconfig.get_paths()
    return sorted({paths['purelib'], paths['platlib']})


def before_python(root=None):
    """A Python whose Cyborg carries the series without the report_data
    patch, everything else being this environment's (module doc)."""
    root = root or os.path.join(sys.prefix, 'cyborg-variants')
    os.makedirs(root, exist_ok=True)
    # One builder at a time (parallel test workers share the root).
    with open(os.path.join(root, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _before_python(root)


def _before_python(root):
    venv = os.path.join(root, 'without-report-data')
    python = os.path.join(venv, 'bin', 'python')
    if not os.path.exists(python):
        pipeline.run_command(
            [sys.executable, '-m', 'venv', venv],
            f'creating {venv}',
            timeout=INSTALL_TIMEOUT,
        )
    site_dir = pipeline.run_command(
        [
            python,
            '-c',
            'import sysconfig; print(sysconfig.get_paths()["purelib"])',
        ],
        f'{python}: finding its site-packages',
    ).strip()
    # addsitedir also reads that environment's own .pth files (editable
    # installs); this venv's site-packages stays first on sys.path.
    with open(os.path.join(site_dir, '_cyborg_pmem_layer.pth'), 'w') as f:
        for path in _this_environment_site_dirs():
            f.write(f'import site; site.addsitedir({path!r})\n')
    patch_dir = os.path.join(root, 'without-report-data.patches')
    shutil.rmtree(patch_dir, ignore_errors=True)
    os.makedirs(patch_dir)
    for name in series_without_report_data():
        os.symlink(
            os.path.join(PATCH_DIR, name), os.path.join(patch_dir, name)
        )
    pipeline.run_command(
        ['bash', CYBORG_ENV, '--patches', patch_dir, '--python', python],
        'tools/cyborg-env.sh (Cyborg without the report_data patch)',
        timeout=INSTALL_TIMEOUT,
    )
    found = installed_series(python)
    if found != series_without_report_data():
        raise pipeline.PipelineError(
            f'the Cyborg of {python} carries {found}, not the series '
            'without the report_data patch'
        )
    return python


def start(python, *args):
    """Start ``python args...`` in the repository; returns the Popen
    (stdout and stderr piped), for :func:`json_result`."""
    return subprocess.Popen(
        [python, *args],
        cwd=pipeline.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def json_result(process, what, timeout=600):
    """Wait for a :func:`start` process; its stdout as JSON."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise pipeline.PipelineError(
            f'{what}: timed out after {timeout} s'
        ) from None
    if process.returncode != 0:
        lines = err.strip().splitlines()
        raise pipeline.PipelineError(
            f'{what}: exit status {process.returncode}: '
            f'{lines[-1] if lines else "(no output)"}'
        )
    return json.loads(out)
