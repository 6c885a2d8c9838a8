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

"""The Cyborg adapter: ``intel_pmem_driver`` for cyborg-agent.

Thin on purpose: it checks that the installed Cyborg knows the PMEM
types, reads ``[pmem_devices]`` from the global configuration, runs the
shared discovery and turns the plan into Cyborg driver objects.
"""

import socket

from cyborg.accelerator.drivers import driver as cyborg_driver
from oslo_config import cfg
from oslo_log import log as logging

from cyborg_pmem import conf
from cyborg_pmem import discovery
from cyborg_pmem import exception
from cyborg_pmem import health
from cyborg_pmem import planner
from cyborg_pmem import scrub

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def missing_pmem_support():
    """Which PMEM types the installed Cyborg lacks (empty when none).

    A Cyborg without them creates the Placement provider and then fails
    on the attach handle, leaving an orphan provider (see
    doc/source/contributor/cyborg.rst), so the driver must not report
    anything there.
    """
    from cyborg.common import constants

    missing = []
    if planner.DEVICE_TYPE not in constants.DEVICE_TYPE:
        missing.append('device type')
    if planner.ATTACH_TYPE not in constants.ATTACH_HANDLE_TYPES:
        missing.append('attach handle type')
    # Stock Cyborg's CPID_TYPE is the bare string "PCI": a substring test
    # there would pass for "CI", so require a real collection.
    cpid_types = constants.CPID_TYPE
    if isinstance(cpid_types, str) or planner.CPID_TYPE not in cpid_types:
        missing.append('control path type')
    return missing


def _hostname():
    try:
        return CONF.host
    except cfg.NoSuchOptError:
        return socket.gethostname()


class IntelPMEMDriver(cyborg_driver.GenericDriver):
    """Reports device-DAX namespaces of Intel PMEM regions."""

    NAME = planner.DRIVER_NAME

    def __init__(self):
        missing = missing_pmem_support()
        if missing:
            raise exception.CyborgLacksPmem(missing=', '.join(missing))
        conf.register_opts(CONF)
        self._discovery = discovery.Discovery.from_conf(CONF.pmem_devices)
        if not self._discovery.labels:
            # Valid (an empty option offers nothing), but most likely the
            # option was forgotten or is in another file.
            LOG.warning(
                '[pmem_devices] pmem_namespaces is not set: '
                'intel_pmem_driver offers no PMEM namespace'
            )

    def discover(self):
        plan = self._discovery.run(_hostname())
        return [
            _driver_device(device.driver_fields()) for device in plan.devices
        ]

    def update(self, control_path, image_path):
        LOG.warning(
            'intel_pmem_driver cannot update firmware (asked for '
            '%s); use ipmctl on the host',
            image_path,
        )
        return False

    def get_stats(self):
        """Per-DIMM and per-region health; never raises (see health)."""
        group = CONF.pmem_devices
        return health.collect(group.ndctl_path, group.ndctl_timeout)

    def cleanup_attach_handle(self, attach_type, attach_info):
        """Zero a PMEM namespace before its attach handle is released.

        Called by cyborg-agent on unbind (contrib/cyborg patch "Clean PMEM
        attach handles up before releasing them"). The handle is marked
        free only if this returns, so every doubt raises: a namespace that
        is no longer configured, offered, at the same path or the same one
        (uuid) is refused, and a failed zeroing is an error.

        :raises ScrubError: a typed, one-line error.
        """
        if attach_type != planner.ATTACH_TYPE:
            LOG.debug(
                'Not cleaning up a %s attach handle: not PMEM', attach_type
            )
            return
        scrubber = scrub.Scrubber.from_conf(CONF.pmem_devices, self._discovery)
        target = scrubber.find_for_attach_info(attach_info, _hostname())
        scrubber.scrub(target)


def _driver_device(fields):
    """A DriverDevice built from its fields, as
    :meth:`cyborg_pmem.planner.DevicePlan.driver_fields` gives them."""
    from cyborg.objects.driver_objects import driver_controlpath_id
    from cyborg.objects.driver_objects import driver_device

    fields = dict(fields)
    controlpath_id = fields.pop('controlpath_id')
    deployables = fields.pop('deployable_list')
    return driver_device.DriverDevice(
        controlpath_id=driver_controlpath_id.DriverControlPathID(
            **controlpath_id
        ),
        deployable_list=[_driver_deployable(d) for d in deployables],
        **fields,
    )


def _driver_deployable(fields):
    from cyborg.objects.driver_objects import driver_attach_handle
    from cyborg.objects.driver_objects import driver_attribute
    from cyborg.objects.driver_objects import driver_deployable

    fields = dict(fields)
    attributes = fields.pop('attribute_list')
    handles = fields.pop('attach_handle_list')
    return driver_deployable.DriverDeployable(
        attribute_list=[
            driver_attribute.DriverAttribute(**attribute)
            for attribute in attributes
        ],
        attach_handle_list=[
            driver_attach_handle.DriverAttachHandle(**handle)
            for handle in handles
        ],
        **fields,
    )
