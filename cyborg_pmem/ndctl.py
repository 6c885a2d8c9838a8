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

"""Run ``ndctl list``: the only place this driver starts a process.

One call per discovery lists DIMMs, regions and namespaces together,
including disabled ones (``--idle``, so that a disabled configured
namespace is refused as disabled rather than as missing) and NUMA nodes
(``--verbose``). Every failure becomes a typed
:class:`~cyborg_pmem.exception.NdctlError`; nothing here returns an empty
listing because the tool failed.
"""

import errno
import signal
import subprocess

from oslo_concurrency import processutils

from cyborg_pmem import exception

LIST_ARGS = (
    'list',
    '--dimms',
    '--regions',
    '--namespaces',
    '--idle',
    '--verbose',
)


# The health listing (DIMMs with their SMART data, and the regions that
# say which DIMMs each interleave set uses) for get_stats(). Reading
# health opens /dev/nmemN, which needs root.
HEALTH_ARGS = ('list', '--dimms', '--regions', '--health')


def list_argv(ndctl_path, args=LIST_ARGS):
    return [ndctl_path, *args]


def first_line(text):
    """The first non-blank line of a command's error output, bounded."""
    for line in (text or '').splitlines():
        if line.strip():
            return line.strip()[:200]
    return '(no error output)'


def status_text(exit_code):
    """'exit status N' or 'killed by SIGNAME'."""
    if exit_code is not None and exit_code < 0:
        try:
            return f'killed by {signal.Signals(-exit_code).name}'
        except ValueError:
            return f'killed by signal {-exit_code}'
    return f'exit status {exit_code}'


def run_list(ndctl_path, timeout, args=LIST_ARGS):
    """Run ``ndctl list`` (``args``) and return its standard output.

    :raises NdctlNotFound: the executable does not exist.
    :raises NdctlTimeout: it ran longer than ``timeout`` seconds; it has
        been killed and reaped.
    :raises NdctlFailed: it could not be started or exited non-zero.
    """
    argv = list_argv(ndctl_path, args)
    cmd = ' '.join(argv)
    started = []
    try:
        stdout, _stderr = processutils.execute(
            *argv,
            timeout=timeout,
            on_execute=started.append,
        )
    except subprocess.TimeoutExpired:
        # processutils re-raises without killing the child: do it here so
        # that a hung ndctl does not outlive the discovery.
        for process in started:
            process.kill()
            process.communicate()
        raise exception.NdctlTimeout(cmd=cmd, timeout=timeout) from None
    except processutils.ProcessExecutionError as err:
        raise exception.NdctlFailed(
            cmd=cmd,
            status=status_text(err.exit_code),
            stderr=first_line(err.stderr),
        ) from None
    except OSError as err:
        if err.errno == errno.ENOENT:
            raise exception.NdctlNotFound(path=ndctl_path) from None
        raise exception.NdctlFailed(
            cmd=cmd, status='not started', stderr=str(err)
        ) from None
    return stdout
