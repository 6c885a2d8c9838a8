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

"""Run one external command: the only place the driver starts a process.

Both commands go through :func:`run`: ``ndctl list`` for every discovery
(cyborg_pmem/ndctl.py) and ``daxio`` in the privileged helper
(cyborg_pmem/privsep.py). Each caller turns the failures below into its
own typed, one-line :class:`~cyborg_pmem.exception.PmemError`.

Robustness decisions (tests/fault proves them on real processes):

* The command runs in a process group of its own, and on timeout (or any
  interruption of the wait) the whole group is killed with SIGKILL, then
  reaped: a wrapper script or ``sudo`` in the configured path cannot
  leave a grandchild behind that keeps running, holds our pipes open or,
  for daxio, goes on writing to a namespace after the failure was
  reported. A descendant that leaves the group itself (setsid) is not
  followed; we then stop reading after :data:`REAP_TIMEOUT` seconds.
* Output is read whole, as processutils does; the timeout bounds a
  runaway writer.
"""

import errno
import os
import signal
import subprocess

from oslo_concurrency import processutils

# Seconds to wait for the pipes to close once the group is killed.
REAP_TIMEOUT = 5


class NotFound(Exception):
    """The executable does not exist."""


class TimedOut(Exception):
    """It ran out of time; it has been killed and reaped."""


class Failed(Exception):
    """It exited non-zero or could not be started.

    :ivar status: ``exit status N``, ``killed by SIGNAME`` or
        ``not started``.
    :ivar stderr: the first line of its error output (or why it could not
        start), bounded.
    """

    def __init__(self, status, stderr):
        super().__init__(f'{status}: {stderr}')
        self.status = status
        self.stderr = stderr


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


def own_process_group():
    """Runs in the child between fork and exec: one killpg() then reaches
    the command and anything it started."""
    os.setpgrp()


def _child_setup(preexec_fn):
    if preexec_fn is None:
        return own_process_group

    def setup():
        own_process_group()
        preexec_fn()

    return setup


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
        # The command itself, the group's leader, is dead by now.
        process.wait()


def run(argv, timeout, preexec_fn=None):
    """Run ``argv`` and return its standard output.

    :param timeout: seconds before the command's process group is killed.
    :param preexec_fn: also run in the child before exec, after it has
        made its own process group (privsep's no_new_privs).
    :raises NotFound: the executable does not exist.
    :raises TimedOut: it ran longer than ``timeout``.
    :raises Failed: it could not be started or exited non-zero.
    """
    started = []
    try:
        stdout, _stderr = processutils.execute(
            *argv,
            timeout=timeout,
            on_execute=started.append,
            preexec_fn=_child_setup(preexec_fn),
        )
    except subprocess.TimeoutExpired:
        # processutils re-raises without killing the child: do it here so
        # that a hung command does not outlive its caller's failure.
        for process in started:
            _kill_and_reap(process)
        raise TimedOut() from None
    except processutils.ProcessExecutionError as err:
        raise Failed(
            status_text(err.exit_code), first_line(err.stderr)
        ) from None
    except subprocess.SubprocessError as err:
        # The pre-exec function failed in the child.
        raise Failed('not started', str(err)) from None
    except OSError as err:
        if err.errno == errno.ENOENT:
            raise NotFound() from None
        raise Failed('not started', str(err)) from None
    except BaseException:
        # Interrupted while waiting (e.g. KeyboardInterrupt in the CLI, or
        # a green thread killed): do not leave the command running.
        for process in started:
            _kill_and_reap(process)
        raise
    return stdout
