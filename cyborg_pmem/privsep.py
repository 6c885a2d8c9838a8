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

"""The one privileged operation of the driver: zero a device-DAX namespace.

It runs in an oslo.privsep daemon of its own (``[cyborg_pmem_privileged]``),
started with ``sudo privsep-helper`` (or the section's ``helper_command``)
by an unprivileged agent, or forked directly when the caller is root. No
rootwrap filter is involved.

The daemon keeps only ``CAP_DAC_OVERRIDE``: the device node is root's
(``crw------- root root`` from udev) until libvirt's DAC driver hands it to
the QEMU user for the life of an instance and possibly leaves it that way,
and zeroing has to open it for writing whoever owns it. Nothing else is
needed: daxio maps the device and reads world-readable sysfs. daxio is
started with ``no_new_privs``, so that, although it runs as uid 0, it
gets only the daemon's capability and not root's full set back at
``execve`` (capabilities(7)).

The caller validates its request against a fresh discovery; this function
trusts nothing it is given and checks again: the path must be exactly
``/dev/daxN.M`` and a character device of the dax subsystem. The daxio
executable comes from the daemon's own configuration, never from the
caller, so the daemon cannot be used to run anything else.
"""

import copy
import ctypes
import os
import re
import stat

from oslo_config import cfg
from oslo_privsep import capabilities
from oslo_privsep import priv_context

from cyborg_pmem import conf
from cyborg_pmem import exception
from cyborg_pmem import runner

DEVDAX_PATH = re.compile(r'/dev/dax[0-9]{1,6}\.[0-9]{1,6}')
# Where the kernel links every character device to its subsystem.
SYSFS_CHAR = '/sys/dev/char'
_PR_SET_NO_NEW_PRIVS = 38
CAPABILITY_NAMES = ('CAP_DAC_OVERRIDE',)

# Built at import, as every privsep user does: privsep-helper finds the
# context again by this module path (``pypath``). Building it registers the
# [cyborg_pmem_privileged] options and does nothing else.
scrub_context = priv_context.PrivContext(
    'cyborg_pmem',
    cfg_section='cyborg_pmem_privileged',
    pypath=__name__ + '.scrub_context',
    capabilities=[capabilities.CAPS_BYNAME[n] for n in CAPABILITY_NAMES],
)


PRIVILEGED_GROUP = cfg.OptGroup(
    'cyborg_pmem_privileged',
    title='Privileged helper of the Intel PMEM driver',
    help='oslo.privsep options of the helper that zeroes a namespace '
    '(daxio) when its attach handle is released. By default the agent '
    'starts it with ``sudo privsep-helper``; set ``helper_command`` to '
    'start it another way. Keep ``user`` unset: the helper must stay uid '
    '0, with only the capability listed here.',
)


def list_opts():
    """The helper's options, for oslo-config-generator and the docs."""
    opts = copy.deepcopy(priv_context.OPTS)
    for opt in opts:
        if opt.name == 'capabilities':
            # What the context sets at run time, by name.
            opt.default = list(CAPABILITY_NAMES)
    return [(PRIVILEGED_GROUP, opts)]


def check_devpath(devpath):
    """Refuse anything but a path of the form ``/dev/daxN.M``.

    :raises ScrubRefused: naming the path.
    """
    if not isinstance(devpath, str) or not DEVDAX_PATH.fullmatch(devpath):
        raise exception.ScrubRefused(
            target=repr(devpath)[:80],
            reason='not a device-DAX path of the form /dev/daxN.M',
        )


def daxio_argv(daxio_path, devpath):
    """``daxio --zero --output DEVPATH``: zero the whole device."""
    return [daxio_path, '-z', '-o', devpath]


def _check_dax_device(devpath):
    try:
        st = os.lstat(devpath)
    except FileNotFoundError:
        raise exception.ScrubRefused(
            target=devpath, reason='no such device'
        ) from None
    if not stat.S_ISCHR(st.st_mode):
        raise exception.ScrubRefused(
            target=devpath, reason='not a character device'
        )
    numbers = f'{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}'
    try:
        subsystem = os.readlink(os.path.join(SYSFS_CHAR, numbers, 'subsystem'))
    except OSError:
        subsystem = ''
    if os.path.basename(subsystem) != 'dax':
        raise exception.ScrubRefused(
            target=devpath,
            reason=f'character device {numbers} is not a dax device',
        )


def _no_new_privileges_hook():
    """A pre-exec hook that sets no_new_privs in the child (the runner
    also gives daxio a process group of its own).

    Resolved before the fork: the child must not load libraries.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook():
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_NO_NEW_PRIVS)')

    return hook


@scrub_context.entrypoint
def zero_devdax(devpath, timeout):
    """Zero the device-DAX namespace at ``devpath`` with daxio.

    :param devpath: ``/dev/daxN.M``; anything else is refused.
    :param timeout: seconds before daxio is killed.
    :raises ScrubRefused: the path or the timeout is not acceptable.
    :raises DaxioNotFound: the configured daxio does not exist.
    :raises ScrubTimeout: daxio ran out of time; it was killed.
    :raises ScrubFailed: daxio could not start or failed.
    """
    check_devpath(devpath)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < float('inf')
    ):
        raise exception.ScrubRefused(
            target=devpath, reason=f'invalid timeout {timeout!r:.40}'
        )
    _check_dax_device(devpath)
    # The daemon's own configuration names the executable.
    conf.register_opts(cfg.CONF)
    daxio_path = cfg.CONF.pmem_devices.daxio_path
    argv = daxio_argv(daxio_path, devpath)
    try:
        runner.run(argv, timeout, preexec_fn=_no_new_privileges_hook())
    except runner.NotFound:
        raise exception.DaxioNotFound(path=daxio_path) from None
    except runner.TimedOut:
        # Killed and reaped: the namespace is not written to after the
        # failure is reported.
        raise exception.ScrubTimeout(
            devpath=devpath, timeout=timeout
        ) from None
    except runner.Failed as err:
        raise exception.ScrubFailed(
            devpath=devpath,
            cmd=' '.join(argv),
            status=err.status,
            stderr=err.stderr,
        ) from None
