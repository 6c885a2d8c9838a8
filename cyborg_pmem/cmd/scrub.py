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

"""``cyborg-pmem-scrub NAME``: zero one configured PMEM namespace.

The driver zeroes a namespace when Cyborg releases its attach handle, but
only with the contrib/cyborg patch that makes unbind call it. Without that
patch, or to clean up after a failed unbind, the operator runs this. It
takes the same path as the driver: a fresh discovery, the namespace must
be configured and offered, and the privileged helper runs daxio.

Exit status: 0 zeroed (or, with --dry-run, would be zeroed), 1 refused
(the namespace is not configured, not offered, or its path is not a
device-DAX one), 2 a usage error, a configuration that names no
namespace, or the configuration, ndctl or the zeroing failed.
"""

import os
import shlex
import socket
import sys

from oslo_config import cfg
from oslo_privsep import daemon as privsep_daemon
from oslo_privsep import priv_context

from cyborg_pmem import conf
from cyborg_pmem import exception
from cyborg_pmem import privsep
from cyborg_pmem import scrub
from cyborg_pmem.cmd import common

PROG = 'cyborg-pmem-scrub'
EXIT_REFUSED = 1
EXIT_ERROR = 2

CLI_OPTS = [
    cfg.StrOpt(
        'name',
        positional=True,
        required=True,
        metavar='NAME',
        help='The namespace name, as in [pmem_devices] pmem_namespaces.',
    ),
    cfg.BoolOpt(
        'dry-run',
        default=False,
        help='Print what would be run, and check that it may be, without '
        'zeroing anything.',
    ),
    cfg.BoolOpt(
        'debug',
        short='d',
        default=False,
        help='Log the driver\'s own messages to stderr.',
    ),
]


def _start_helper():
    """Root forks the privileged helper itself: no sudo needed. Anyone
    else gets privsep's default, ``sudo privsep-helper``, on first use."""
    if os.geteuid() == 0:
        privsep.scrub_context.start(priv_context.Method.FORK)


def run(argv, stdout, stderr, config=None):
    # The privileged helper reads the global configuration (daxio_path,
    # [cyborg_pmem_privileged]) and passes its files on to privsep-helper,
    # so the command line is parsed into it.
    config = cfg.CONF if config is None else config
    # Forget an earlier parse (a second run in one process, as in tests):
    # command-line options cannot be registered after one.
    config.clear()
    conf.register_opts(config)
    config.register_cli_opts(CLI_OPTS)
    try:
        config(argv, project='cyborg', prog=PROG)
        with common.driver_log(stderr, config.debug):
            scrubber = scrub.Scrubber.from_conf(config.pmem_devices)
            common.check_configured(config, scrubber.discovery.labels)
            # The host name only goes into deployable names, which
            # scrubbing does not use: no need for Cyborg's [DEFAULT] host.
            target = scrubber.find_by_name(config.name, socket.gethostname())
            timeout = scrubber.timeout(target)
            if config.dry_run:
                argv = privsep.daxio_argv(
                    config.pmem_devices.daxio_path, target.devpath
                )
                print(
                    f'would run: {shlex.join(argv)} (timeout {timeout} s, '
                    f'{target.size} bytes) to zero {target}',
                    file=stdout,
                )
                return 0
            _start_helper()
            seconds = scrubber.scrub(target)
    except exception.ScrubRefused as err:
        print(f'{PROG}: refused: {err}', file=stderr)
        return EXIT_REFUSED
    except (exception.PmemError, cfg.Error) as err:
        print(f'{PROG}: error: {err}', file=stderr)
        return EXIT_ERROR
    except (
        privsep_daemon.FailedToDropPrivileges,
        privsep_daemon.ProtocolError,
        OSError,
    ) as err:
        print(
            f'{PROG}: error: the privileged helper failed: {err}',
            file=stderr,
        )
        return EXIT_ERROR
    print(f'zeroed {target} in {seconds:.1f} s', file=stdout)
    return 0


def main():
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))
