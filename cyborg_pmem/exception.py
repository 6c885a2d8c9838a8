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

"""Typed errors of the PMEM driver.

Every error carries a one-line, operator-readable message that names the
item at fault. The driver raises them from ``discover()`` so that the agent
keeps the last reported inventory; the CLI prints them as one stderr line.
"""

import logging

LOG = logging.getLogger(__name__)


class PmemError(Exception):
    """Base class: ``msg_fmt`` is filled from the keyword arguments.

    Building the error never fails, as with NovaException: keyword
    arguments that do not fit ``msg_fmt`` (a bug at the raising end) are
    logged and the bare ``msg_fmt`` becomes the message, so the error
    that was being reported is still raised, not a KeyError in its place.
    """

    msg_fmt = 'An unknown PMEM driver error occurred.'

    def __init__(self, message=None, **kwargs):
        # A ready message is accepted too: oslo.privsep rebuilds an error
        # raised in its daemon as ``cls(*err.args)``, i.e. from the
        # formatted message alone.
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except Exception:  # any failure of formatting, whatever its type
                LOG.exception(
                    'Cannot fill in the message of %s from %r',
                    type(self).__name__,
                    kwargs,
                )
                message = self.msg_fmt
        super().__init__(message)


class InvalidConfig(PmemError):
    msg_fmt = '[pmem_devices] %(option)s: %(reason)s'


class NdctlError(PmemError):
    """ndctl could not give us a listing; discovery must not report."""


class NdctlNotFound(NdctlError):
    msg_fmt = (
        'ndctl executable %(path)r not found; install the ndctl package '
        'or set [pmem_devices] ndctl_path'
    )


class NdctlFailed(NdctlError):
    msg_fmt = '%(cmd)s failed (%(status)s): %(stderr)s'


class NdctlTimeout(NdctlError):
    msg_fmt = (
        '%(cmd)s did not finish within %(timeout)s s and was killed '
        '([pmem_devices] ndctl_timeout)'
    )


class NdctlOutputError(NdctlError):
    msg_fmt = 'unexpected ndctl list output at %(where)s: %(reason)s'


class NvdimmStackDown(PmemError):
    msg_fmt = (
        'ndctl shows no enabled PMEM region although [pmem_devices] '
        'pmem_namespaces names %(count)d namespace(s) (%(names)s); is the '
        'nvdimm stack loaded (modules libnvdimm, nfit, nd_pmem, dax_pmem) '
        'and are its regions enabled (ndctl enable-region all)? Not '
        'reporting, so the last inventory stays'
    )


class HostNameTooLong(PmemError):
    msg_fmt = (
        '[DEFAULT] host is %(host_length)d characters: the PMEM provider '
        'name "<host>%(suffix)s" would be %(length)d, over Placement\'s '
        '%(limit)d; set a host of at most %(host_limit)d characters. Not '
        'reporting, so the last inventory stays'
    )


class CyborgLacksPmem(PmemError):
    msg_fmt = (
        'the installed Cyborg does not know the PMEM type (%(missing)s); '
        'apply the contrib/cyborg patch series "Add PMEM device, attach '
        'handle and control path types" before enabling intel_pmem_driver'
    )


class ListingUnreadable(PmemError):
    msg_fmt = 'cannot read ndctl output %(path)s: %(reason)s'


class ScrubError(PmemError):
    """A namespace could not be zeroed; its attach handle stays in use."""


class ScrubRefused(ScrubError):
    msg_fmt = 'refusing to scrub %(target)s: %(reason)s'


class DaxioNotFound(ScrubError):
    msg_fmt = (
        'daxio executable %(path)r not found; install the pmdk-tools '
        'package (Debian/Ubuntu) or daxio (RHEL), or set [pmem_devices] '
        'daxio_path'
    )


class ScrubFailed(ScrubError):
    msg_fmt = 'zeroing %(devpath)s failed: %(cmd)s %(status)s: %(stderr)s'


class ScrubTimeout(ScrubError):
    msg_fmt = (
        'zeroing %(devpath)s did not finish within %(timeout)s s and was '
        'killed ([pmem_devices] scrub_timeout_base, scrub_seconds_per_gib)'
    )
