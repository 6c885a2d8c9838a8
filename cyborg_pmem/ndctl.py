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

"""Run ``ndctl list``.

One call per discovery lists DIMMs, regions and namespaces together,
including disabled ones (``--idle``, so that a disabled configured
namespace is refused as disabled rather than as missing) and NUMA nodes
(``--verbose``). Every failure becomes a typed
:class:`~cyborg_pmem.exception.NdctlError`; nothing here returns an empty
listing because the tool failed. How the process is run, killed and
reaped is cyborg_pmem/runner.py's.

At most one ndctl runs at a time per process (an in-process lock,
``lockutils.synchronized``): overlapping discoveries (the agent's periodic
task running late, or several threads) would run the same read-only
listing twice for the same answer. A caller waits at most one
``ndctl_timeout`` for the one before it. The lock is not shared between
processes: the operator CLI and the agent may still overlap, harmlessly.
"""

from oslo_concurrency import lockutils

from cyborg_pmem import exception
from cyborg_pmem import runner

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

LOCK_NAME = 'cyborg-pmem-ndctl'


def list_argv(ndctl_path, args=LIST_ARGS):
    return [ndctl_path, *args]


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
    try:
        return runner.run(argv, timeout)
    except runner.NotFound:
        raise exception.NdctlNotFound(path=ndctl_path) from None
    except runner.TimedOut:
        raise exception.NdctlTimeout(cmd=cmd, timeout=timeout) from None
    except runner.Failed as err:
        raise exception.NdctlFailed(
            cmd=cmd, status=err.status, stderr=err.stderr
        ) from None
