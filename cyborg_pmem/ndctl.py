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

Robustness decisions (tests/fault proves them with a fake ndctl):

* ndctl runs in a process group of its own, and on timeout (or any
  interruption of the wait) the whole group is killed with SIGKILL, then
  reaped: a wrapper script or ``sudo`` in ``ndctl_path`` cannot leave a
  grandchild behind that keeps running or holds our pipes open. A
  descendant that leaves the group itself (setsid) is not followed; we
  then stop reading after :data:`REAP_TIMEOUT` seconds.
* At most one ndctl runs at a time per process (an in-process lock,
  ``lockutils.synchronized``): overlapping discoveries (the agent's
  periodic task running late, or several threads) would run the same
  read-only listing twice for the same answer. A caller waits at most one
  ``ndctl_timeout`` for the one before it. The lock is not shared between
  processes: the operator CLI and the agent may still overlap, harmlessly.
* Output is read whole, as processutils does; ndctl's JSON is bounded by
  the host's namespaces (about 1 KiB each), and the timeout bounds a
  runaway writer.
"""

import errno
import os
import signal
import subprocess

from oslo_concurrency import lockutils
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


# Seconds to wait for the pipes to close once the group is killed.
REAP_TIMEOUT = 5
LOCK_NAME = 'cyborg-pmem-ndctl'


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


def _own_process_group():
    # Runs in the child between fork and exec: one killpg() then reaches
    # ndctl and anything it started.
    os.setpgrp()


def _kill_and_reap(process):
    """Kill the process group of ``process`` and collect its status."""
    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.communicate(timeout=REAP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # A descendant left the group and holds the pipes: stop reading.
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()


@lockutils.synchronized(LOCK_NAME)
def run_list(ndctl_path, timeout, args=LIST_ARGS):
    """Run ``ndctl list`` (``args``) and return its standard output.

    Serialized: at most one call runs at a time in this process.

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
            preexec_fn=_own_process_group,
        )
    except subprocess.TimeoutExpired:
        # processutils re-raises without killing the child: do it here so
        # that a hung ndctl does not outlive the discovery.
        for process in started:
            _kill_and_reap(process)
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
    except BaseException:
        # Interrupted while waiting (e.g. KeyboardInterrupt in the CLI, or
        # a green thread killed): do not leave ndctl running.
        for process in started:
            _kill_and_reap(process)
        raise
    return stdout
