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

"""Plan what the driver reports: inventory + labels -> devices.

Pure, and the one place where every refusal is decided. The result is
plain data; ``driver.py`` turns it into Cyborg objects and the CLI prints
it. Everything the conductor matches on (``cpid_info``, deployable
``name``, ``attach_info``) is derived only from stable facts, serialized
with sorted keys, so that two discoveries of an unchanged host are equal
byte for byte.
"""

import collections
import dataclasses
import hashlib
import json
import re

import os_traits

from cyborg_pmem import exception
from cyborg_pmem import inventory as inventory_mod
from cyborg_pmem import labels as labels_mod

ATTACH_TYPE = 'PMEM'
CPID_TYPE = 'PMEM'
DEVICE_TYPE = 'PMEM'
# The stevedore entry point name: Cyborg records it as each deployable's
# driver_name, and the agent loads the driver by it to clean up a
# released attach handle.
DRIVER_NAME = 'intel_pmem_driver'
# Cyborg's attach_handles.attach_info column is a String(255).
MAX_ATTACH_INFO_LENGTH = 255
# A deployable's name is its Placement resource provider's name, which
# Placement limits to 200 characters (Cyborg's own column allows 255).
MAX_PROVIDER_NAME_LENGTH = 200
PREFIX = labels_mod.RESOURCE_CLASS_PREFIX
# How many configured names an error lists before "and N more".
SHOWN_NAMES = 5
_VENDOR_IN_DIMM_ID = re.compile(r'^([0-9a-fA-F]{4})-')


@dataclasses.dataclass(frozen=True)
class AttachHandlePlan:
    namespace: str
    attach_info: str
    attach_type: str = ATTACH_TYPE
    in_use: bool = False

    def driver_fields(self):
        """The fields of Cyborg's DriverAttachHandle."""
        return {
            'attach_type': self.attach_type,
            'attach_info': self.attach_info,
            'in_use': self.in_use,
        }


@dataclasses.dataclass(frozen=True)
class DeployablePlan:
    name: str
    label: str
    resource_class: str
    traits: tuple
    attach_handles: tuple

    @property
    def num_accelerators(self):
        return len(self.attach_handles)

    @property
    def attributes(self):
        """Cyborg's attribute list: ``rc`` and ``trait0..N``."""
        pairs = [('rc', self.resource_class)]
        pairs += [(f'trait{i}', t) for i, t in enumerate(self.traits)]
        return tuple(pairs)

    def driver_fields(self):
        """The fields of Cyborg's DriverDeployable, nested."""
        return {
            'name': self.name,
            'driver_name': DRIVER_NAME,
            'num_accelerators': self.num_accelerators,
            'attribute_list': [
                {'key': key, 'value': value} for key, value in self.attributes
            ],
            'attach_handle_list': [
                handle.driver_fields() for handle in self.attach_handles
            ],
        }


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    region: str
    vendor: str
    model: str
    std_board_info: str
    vendor_board_info: str
    cpid_info: str
    deployables: tuple
    type: str = DEVICE_TYPE
    cpid_type: str = CPID_TYPE
    stub: bool = False

    def driver_fields(self):
        """The fields of Cyborg's DriverDevice, nested: the one mapping
        from a plan to what Cyborg receives. The driver builds its
        objects from it and ``cyborg-pmem-discover --format json``
        prints it.
        """
        return {
            'vendor': self.vendor,
            'model': self.model,
            'type': self.type,
            'std_board_info': self.std_board_info,
            'vendor_board_info': self.vendor_board_info,
            # Always set: Cyborg does not apply the field's default, and
            # report_data fails on an unset stub.
            'stub': self.stub,
            'controlpath_id': {
                'cpid_type': self.cpid_type,
                'cpid_info': self.cpid_info,
            },
            'deployable_list': [
                deployable.driver_fields() for deployable in self.deployables
            ],
        }


@dataclasses.dataclass(frozen=True)
class Refusal:
    name: str
    label: str
    reason: str

    def __str__(self):
        return f'namespace {self.name!r} (label {self.label!r}): {self.reason}'


@dataclasses.dataclass(frozen=True)
class Plan:
    devices: tuple = ()
    refusals: tuple = ()

    def offered(self):
        """Namespaces offered per label, for the log and the CLI."""
        counts = {}
        for device in self.devices:
            for deployable in device.deployables:
                counts[deployable.label] = (
                    counts.get(deployable.label, 0)
                    + deployable.num_accelerators
                )
        return counts


# What json.dumps(value, sort_keys=True, separators=(',', ':')) writes,
# with one encoder for the whole module instead of a new one per call.
_dumps = json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode


def region_key(region, inventory):
    """A name for the region that survives reboots and renumbering.

    The interleave-set cookie identifies the set of DIMMs and their
    positions; label-less or legacy regions may lack it, then the DIMM ids
    serve; a region with neither (e820 memmap=) only has its name.
    """
    if region.iset_id is not None:
        return 'iset-%016x' % (region.iset_id & 0xFFFFFFFFFFFFFFFF)
    dimm_ids = _dimm_ids(region, inventory)
    if dimm_ids:
        digest = hashlib.sha256(_dumps(dimm_ids).encode()).hexdigest()
        return 'dimms-' + digest[:16]
    return region.dev


def _dimm_ids(region, inventory):
    ids = []
    for dev in region.dimms:
        dimm = inventory.dimm(dev)
        if dimm is not None and dimm.id:
            ids.append(dimm.id)
    return ids


def _vendor(dimm_ids):
    # ndctl prints a DIMM id as VVVV-...: VVVV is the JEDEC vendor id.
    vendors = sorted(
        {
            m.group(1).lower()
            for m in map(_VENDOR_IN_DIMM_ID.match, dimm_ids)
            if m
        }
    )
    return ','.join('0x' + v for v in vendors) or 'unknown'


def _refusal_reason(ns):
    """Why one namespace cannot be offered, or None."""
    if not ns.enabled:
        return f'{ns.dev} is disabled (ndctl enable-namespace {ns.dev})'
    if ns.mode != 'devdax':
        return f'{ns.dev} is in {ns.mode or "an unknown"} mode, not devdax'
    if ns.dax_mode not in (None, 'devdax'):
        return (
            f'{ns.chardev} is onlined as {ns.dax_mode} (daxctl '
            f'reconfigure-device -m devdax {ns.chardev})'
        )
    if not ns.chardev:
        return f'{ns.dev} has no device-DAX character device'
    if ns.size is None:
        return f'ndctl shows no size for {ns.dev}'
    return None


def attach_info(namespace, label):
    """The attach handle's JSON: what a consumer needs for libvirt's
    ``<memory model='nvdimm'>`` (the fields of Nova's LibvirtVPMEMDevice)
    plus the kernel device name, uuid and NUMA node.

    Fields ndctl does not show are left out, not null: Cyborg hands
    attach_info to Nova as a dict of strings (the ARQ's
    attach_handle_info), and a null there makes every read of the bound
    ARQ fail.
    """
    ns = namespace
    fields = {
        'align': ns.align,
        'dev': ns.dev,
        'devpath': '/dev/' + ns.chardev,
        'label': label,
        'name': ns.name,
        'numa_node': ns.numa_node,
        'size': ns.size,
        'uuid': ns.uuid,
    }
    return _dumps({k: v for k, v in fields.items() if v is not None})


def plan(inventory, labels, hostname):
    """Decide the devices to report and the namespaces to refuse.

    :param inventory: an :class:`cyborg_pmem.inventory.Inventory`.
    :param labels: ``{label: (name, ...)}`` from
        :func:`cyborg_pmem.labels.parse_pmem_namespaces`.
    :param hostname: the compute host; deployable names (the Placement
        provider names) must be unique in the whole cloud.
    :raises NvdimmStackDown: namespaces are configured but ndctl shows no
        enabled region; reporting nothing would delete every device.
    :raises HostNameTooLong: a deployable's name, which starts with the
        host name, would be longer than Placement allows.
    """
    _check_some_region_enabled(inventory, labels)
    handles, refusals = _offer(inventory, labels)
    devices = _devices(inventory, labels, handles, hostname)
    _check_provider_names(devices, hostname)
    return Plan(devices=tuple(devices), refusals=tuple(refusals))


def _check_some_region_enabled(inventory, labels):
    """Refuse to plan a host whose nvdimm stack is down.

    A disabled region shows (with --idle) but hides its namespaces: if no
    region is enabled, each configured namespace would look gone, and an
    empty report would delete every device.
    """
    configured = [name for names in labels.values() for name in names]
    if configured and not any(r.enabled for r in inventory.regions):
        raise exception.NvdimmStackDown(
            count=len(configured), names=shortened(configured)
        )


def shortened(names, shown=SHOWN_NAMES):
    """``a, b, c`` or, past ``shown`` names, ``a, b, c and 9 more``: a
    host may configure hundreds, and an error stays one readable line."""
    if len(names) <= shown:
        return ', '.join(names)
    return f'{", ".join(names[:shown])} and {len(names) - shown} more'


def _offer(inventory, labels):
    """Decide each configured namespace, in configuration order.

    :returns: ``({(region dev, label): [AttachHandlePlan]}, [Refusal])``.
    """
    by_name = {}
    for ns in inventory.namespaces:
        if ns.name is not None:
            by_name.setdefault(ns.name, []).append(ns)
    handles = {}
    refusals = []
    for label, names in labels.items():
        for name in names:
            carriers = by_name.get(name, [])
            reason = _name_refusal_reason(carriers)
            if reason is not None:
                refusals.append(Refusal(name, label, reason))
                continue
            (ns,) = carriers
            info = attach_info(ns, label)
            reason = _attach_info_refusal_reason(info)
            if reason is not None:
                refusals.append(Refusal(name, label, reason))
                continue
            handles.setdefault((ns.region, label), []).append(
                AttachHandlePlan(name, info)
            )
    return handles, refusals


def _name_refusal_reason(carriers):
    """Why the namespaces carrying a configured name cannot be offered,
    or None when exactly one carries it and it can be."""
    if not carriers:
        return 'not found on this host'
    if len(carriers) > 1:
        devs = ', '.join(sorted(ns.dev for ns in carriers))
        return f'name is ambiguous: {devs} all carry it'
    return _refusal_reason(carriers[0])


def _attach_info_refusal_reason(info):
    if len(info) > MAX_ATTACH_INFO_LENGTH:
        return (
            f'its attach_info would be {len(info)} characters, over '
            f"Cyborg's {MAX_ATTACH_INFO_LENGTH}"
        )
    return None


def _devices(inventory, labels, handles, hostname):
    """One device per region offering something, in region order, with
    one deployable per label it offers, in configuration order."""
    keys = _unique_region_keys(inventory)
    devices = []
    for region in sorted(inventory.regions, key=inventory_mod.device_order):
        key = keys[region.dev]
        deployables = [
            _deployable(hostname, key, label, handles[region.dev, label])
            for label in labels
            if (region.dev, label) in handles
        ]
        if deployables:
            devices.append(_device(region, key, inventory, deployables))
    return devices


def _deployable(hostname, region_key, label, attach_handles):
    rc = labels_mod.resource_class(label)
    return DeployablePlan(
        name=f'{hostname}_{region_key}_{rc.removeprefix(PREFIX)}',
        label=label,
        resource_class=rc,
        traits=(rc, os_traits.OWNER_CYBORG),
        attach_handles=tuple(attach_handles),
    )


def _check_provider_names(devices, hostname):
    """Refuse a host name that makes a provider name too long.

    The host is configuration: refuse to report at all, as for any
    configuration error, rather than have Placement reject a provider
    half-way through the conductor's update.
    """
    longest = max(
        (dep.name for device in devices for dep in device.deployables),
        key=len,
        default='',
    )
    if len(longest) > MAX_PROVIDER_NAME_LENGTH:
        suffix = longest[len(hostname) :]
        raise exception.HostNameTooLong(
            host_length=len(hostname),
            suffix=suffix,
            length=len(longest),
            limit=MAX_PROVIDER_NAME_LENGTH,
            host_limit=MAX_PROVIDER_NAME_LENGTH - len(suffix),
        )


def _unique_region_keys(inventory):
    """``{region dev: key}``, with no key shared by two regions.

    Two regions sharing an interleave-set cookie (or, without cookies,
    the same DIMM ids) would give two devices one ``cpid_info`` and two
    deployables one Placement provider name, which the conductor cannot
    tell apart. Only for those regions, the region's name is added to
    the key: unique, at the cost of not surviving renumbering.
    """
    keys = {r.dev: region_key(r, inventory) for r in inventory.regions}
    shared = collections.Counter(keys.values())
    return {
        dev: f'{key}-{dev}' if shared[key] > 1 else key
        for dev, key in keys.items()
    }


def _device(region, key, inventory, deployables):
    dimm_ids = _dimm_ids(region, inventory)
    iset_id = (
        None
        if region.iset_id is None
        else '0x%016x' % (region.iset_id & 0xFFFFFFFFFFFFFFFF)
    )
    return DevicePlan(
        region=region.dev,
        vendor=_vendor(dimm_ids),
        model=(
            f'PMEM region, {len(region.dimms)}-way interleave'
            if region.dimms
            else 'PMEM region'
        ),
        std_board_info=_dumps(
            {
                'dimms': list(region.dimms),
                'iset_id': iset_id,
                'numa_node': region.numa_node,
                'region': region.dev,
                'size': region.size,
            }
        ),
        vendor_board_info=_dumps({'dimm_ids': dimm_ids}),
        cpid_info=_dumps({'region_key': key}),
        deployables=tuple(deployables),
    )
