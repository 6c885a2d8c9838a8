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

"""Zero a namespace before it is handed to someone else: the unprivileged
half.

A PMEM namespace keeps its bytes when the instance that used it goes
away. Before its attach handle is released (the driver's
``cleanup_attach_handle``) or when the operator asks
(``cyborg-pmem-scrub NAME``), we run a fresh discovery, find the namespace
in it, and only if it is still a configured, offered device-DAX namespace
at the expected path ask the privileged helper to zero it. A namespace
that moved, was re-created or is no longer offered is refused rather than
guessed at: zeroing the wrong ``/dev/daxN.M`` would destroy the data of
whoever uses it now.
"""

import dataclasses
import json
import logging
import math
import time

from cyborg_pmem import discovery as discovery_mod
from cyborg_pmem import exception
from cyborg_pmem import privsep

LOG = logging.getLogger(__name__)
GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class ScrubTarget:
    """A namespace as its attach handle describes it."""

    name: str
    label: str | None
    dev: str | None
    devpath: str
    size: int | None
    uuid: str | None

    @classmethod
    def from_attach_info(cls, info):
        return cls(
            name=info.get('name'),
            label=info.get('label'),
            dev=info.get('dev'),
            devpath=info.get('devpath'),
            size=info.get('size'),
            uuid=info.get('uuid'),
        )

    def __str__(self):
        return f'namespace {self.name!r} ({self.devpath})'


def scrub_timeout(size, base, seconds_per_gib):
    """Seconds allowed to zero ``size`` bytes: base + per started GiB."""
    gib = math.ceil(max(size or 0, 0) / GIB)
    return base + math.ceil(seconds_per_gib * gib)


def offered_targets(plan):
    """Every namespace the plan offers, by name."""
    targets = {}
    for device in plan.devices:
        for deployable in device.deployables:
            for handle in deployable.attach_handles:
                target = ScrubTarget.from_attach_info(
                    json.loads(handle.attach_info)
                )
                targets[target.name] = target
    return targets


def _parse_attach_info(attach_info):
    try:
        info = json.loads(attach_info)
    except (TypeError, ValueError):
        info = None
    if not isinstance(info, dict):
        raise exception.ScrubRefused(
            target='attach handle',
            reason=f'attach_info is not a JSON object: {attach_info!r:.80}',
        )
    for key in ('name', 'devpath'):
        if not isinstance(info.get(key), str):
            raise exception.ScrubRefused(
                target='attach handle',
                reason=f'attach_info has no "{key}": {attach_info!r:.80}',
            )
    return info


class Scrubber:
    def __init__(self, discovery, timeout_base, seconds_per_gib):
        self.discovery = discovery
        self.timeout_base = timeout_base
        self.seconds_per_gib = seconds_per_gib

    @classmethod
    def from_conf(cls, group, discovery=None):
        """Build from a ``[pmem_devices]`` option group."""
        return cls(
            discovery or discovery_mod.Discovery.from_conf(group),
            group.scrub_timeout_base,
            group.scrub_seconds_per_gib,
        )

    def _offered(self, name, hostname):
        """The namespace ``name`` in a fresh discovery, or a refusal."""
        plan = self.discovery.run(hostname)
        target = offered_targets(plan).get(name)
        if target is not None:
            return target
        for refusal in plan.refusals:
            if refusal.name == name:
                raise exception.ScrubRefused(
                    target=f'namespace {name!r}',
                    reason=f'it is not offered: {refusal.reason}',
                )
        raise exception.ScrubRefused(
            target=f'namespace {name!r}',
            reason='it is not in [pmem_devices] pmem_namespaces',
        )

    def find_by_name(self, name, hostname):
        """The configured, offered namespace called ``name``."""
        target = self._offered(name, hostname)
        privsep.check_devpath(target.devpath)
        return target

    def find_for_attach_info(self, attach_info, hostname):
        """The namespace an attach handle describes, if it is still the
        same configured device-DAX namespace at the same path."""
        info = _parse_attach_info(attach_info)
        privsep.check_devpath(info['devpath'])
        wanted = ScrubTarget.from_attach_info(info)
        current = self._offered(wanted.name, hostname)
        if current.devpath != wanted.devpath:
            raise exception.ScrubRefused(
                target=str(wanted),
                reason=f'the namespace is now at {current.devpath}',
            )
        if current.uuid != wanted.uuid:
            raise exception.ScrubRefused(
                target=str(wanted),
                reason=f'the namespace was re-created (uuid {current.uuid}, '
                f'the attach handle has {wanted.uuid})',
            )
        # current.devpath equals wanted's, which was checked above.
        return current

    def timeout(self, target):
        return scrub_timeout(
            target.size, self.timeout_base, self.seconds_per_gib
        )

    def scrub(self, target):
        """Zero ``target`` through the privileged helper.

        :returns: the seconds it took.
        :raises ScrubError: a typed, one-line error.
        """
        timeout = self.timeout(target)
        LOG.info(
            'Zeroing PMEM %s, %s bytes, timeout %d s',
            target,
            target.size,
            timeout,
        )
        started = time.monotonic()
        privsep.zero_devdax(target.devpath, timeout)
        seconds = time.monotonic() - started
        LOG.info('Zeroed PMEM %s in %.1f s', target, seconds)
        return seconds
