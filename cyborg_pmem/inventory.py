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

"""Read any ``ndctl list`` JSON into one normalized inventory.

Pure. ndctl's output shape depends on its flags, its version and on what
exists (doc/source/contributor/design.rst): a bare object, an array of
one kind, an object of arrays, regions nesting namespaces, buses nesting
everything, or nothing at all. We never branch on the flags we passed,
only on what came back: every object with a ``dev`` is classified by its
device name.
"""

import dataclasses
import json
import math
import re

from cyborg_pmem import exception

# Releases up to v58 used other names for the modes.
_LEGACY_MODES = {'dax': 'devdax', 'memory': 'fsdax', 'safe': 'sector'}
_NAMESPACE_DEV = re.compile(r'^namespace(\d+)\.\d+$')
_REGION_DEV = re.compile(r'^region\d+$')
_CONTAINER_KEYS = ('buses', 'dimms', 'regions', 'namespaces')
# How an error names the whole listing, the start of every item's path.
_TOP_LEVEL = 'top level'
# "-u" sizes: "1006.00 MiB (1054.87 MB)"; the binary figure comes first.
_HUMAN_SIZE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]iB|B)?\b')
_BINARY_UNITS = {
    None: 1,
    'B': 1,
    'KiB': 1 << 10,
    'MiB': 1 << 20,
    'GiB': 1 << 30,
    'TiB': 1 << 40,
    'PiB': 1 << 50,
    'EiB': 1 << 60,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Dimm:
    dev: str
    id: str | None = None
    health: dict | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Region:
    dev: str
    size: int | None = None
    iset_id: int | None = None
    numa_node: int | None = None
    # DIMM device names (nmemN) from the region's mappings, in position
    # order.
    dimms: tuple = ()
    # ndctl --idle lists a disabled region too, with no namespaces.
    enabled: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Namespace:
    dev: str
    region: str
    mode: str | None
    name: str | None = None
    enabled: bool = True
    size: int | None = None
    uuid: str | None = None
    align: int | None = None
    chardev: str | None = None
    # The dax device's own mode: "devdax", or "system-ram" once daxctl
    # has onlined it as memory.
    dax_mode: str | None = None
    numa_node: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Inventory:
    dimms: tuple = ()
    regions: tuple = ()
    namespaces: tuple = ()

    def dimm(self, dev):
        return next((d for d in self.dimms if d.dev == dev), None)

    def region(self, dev):
        return next((r for r in self.regions if r.dev == dev), None)


def device_order(record):
    """Sort key of a Dimm or Region: region2 before region10."""
    head = record.dev.rstrip('0123456789')
    tail = record.dev[len(head) :]
    return (head, int(tail) if tail else -1)


class _Malformed(Exception):
    """An item that is not what ndctl prints.

    Raised where the problem is found. Each enclosing level adds its step
    to the path as the exception passes through, so walking good output
    builds no path at all; :func:`parse_listing` turns it into the typed
    error.
    """

    def __init__(self, reason, key=None):
        super().__init__(reason)
        self.reason = reason
        # Innermost first.
        self.steps = [] if key is None else [f'.{key}']

    def under(self, key=None, index=None):
        """Add the step from the enclosing item: ``.key``, ``[index]``."""
        self.steps.append(
            (f'.{key}' if key else '')
            + ('' if index is None else f'[{index}]')
        )

    def path(self):
        return _TOP_LEVEL + ''.join(reversed(self.steps))


def _str(obj, key, required=False):
    value = obj.get(key)
    if value is None:
        if required:
            raise _Malformed(f'"{key}" is missing')
        return None
    if not isinstance(value, str):
        raise _Malformed(f'expected a string, got {value!r:.40}', key)
    # A JSON escape like "\ud800" decodes to a lone surrogate, which is not
    # text: printing it (the CLI's table) would raise UnicodeEncodeError.
    # ndctl prints UTF-8, so refuse it here (ASCII text cannot hold one).
    if not value.isascii():
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise _Malformed(
                f'not valid Unicode: {value!r:.40}', key
            ) from None
    return value


def _int(obj, key):
    """An integer field; ``-u`` prints numbers as hex or human strings."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Malformed(f'expected a number, got {value!r:.40}', key)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _finite(value, key)
    text = value.strip()
    try:
        return int(text, 0)
    except ValueError:
        pass
    match = _HUMAN_SIZE.match(text)
    if not match:
        raise _Malformed(f'not a number: {value!r:.40}', key)
    number = float(match.group(1)) * _BINARY_UNITS[match.group(2)]
    return _finite(number, key)


def _finite(number, key):
    if not math.isfinite(number):
        raise _Malformed(f'not a finite number: {number}', key)
    return round(number)


def _numa_node(obj):
    """The NUMA node, or None where the kernel reports none (-1)."""
    node = _int(obj, 'numa_node')
    return node if node is not None and node >= 0 else None


def _list(obj, key):
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f'expected a list, got {value!r:.40}', key)
    return value


def _dict(value):
    if not isinstance(value, dict):
        raise _Malformed(f'expected an object, got {value!r:.40}')
    return value


class _Reader:
    def __init__(self):
        self.dimms = {}
        self.regions = {}
        self.namespaces = {}

    def walk(self, value, region=None):
        if isinstance(value, list):
            for index, item in enumerate(value):
                try:
                    self.walk(item, region)
                except _Malformed as err:
                    err.under(index=index)
                    raise
            return
        obj = _dict(value)
        dev = _str(obj, 'dev')
        if dev is None:
            if not any(key in obj for key in _CONTAINER_KEYS):
                raise _Malformed(
                    'an object with no "dev" and none of '
                    + ', '.join(f'"{k}"' for k in _CONTAINER_KEYS)
                )
            self._walk_children(obj, region)
        elif dev.startswith('namespace'):
            self._namespace(obj, dev, region)
        elif dev.startswith('region'):
            # The kernel names regions "region%d". Anything else may not
            # be trusted as a region's identity: the planner falls back to
            # the name in Placement provider names, where a "_" in it
            # could make two regions' names collide.
            if not _REGION_DEV.match(dev):
                raise _Malformed(f'{dev!r:.40} is not regionN', 'dev')
            self._region(obj, dev)
        elif dev.startswith('nmem'):
            self._dimm(obj, dev)
        elif dev.startswith('ndbus'):
            self._walk_children(obj, region)
        else:
            raise _Malformed(f'unrecognized device {dev!r:.40}')

    def _walk_children(self, obj, region):
        for key in _CONTAINER_KEYS:
            for index, item in enumerate(_list(obj, key)):
                try:
                    self.walk(item, region)
                except _Malformed as err:
                    err.under(key, index)
                    raise

    def _dimm(self, obj, dev):
        health = obj.get('health')
        if health is not None:
            try:
                health = _dict(health)
            except _Malformed as err:
                err.under('health')
                raise
        self.dimms.setdefault(
            dev, Dimm(dev=dev, id=_str(obj, 'id'), health=health)
        )

    def _region(self, obj, dev):
        mappings = []
        for index, item in enumerate(_list(obj, 'mappings')):
            try:
                mapping = _dict(item)
                mappings.append(
                    (
                        _int(mapping, 'position'),
                        _str(mapping, 'dimm', required=True),
                    )
                )
            except _Malformed as err:
                err.under('mappings', index)
                raise
        mappings.sort(key=lambda m: (m[0] is None, m[0] or 0, m[1]))
        self.regions.setdefault(
            dev,
            Region(
                dev=dev,
                size=_int(obj, 'size'),
                iset_id=_int(obj, 'iset_id'),
                numa_node=_numa_node(obj),
                dimms=tuple(m[1] for m in mappings),
                enabled=_str(obj, 'state') != 'disabled',
            ),
        )
        for index, item in enumerate(_list(obj, 'namespaces')):
            try:
                self.walk(item, dev)
            except _Malformed as err:
                err.under('namespaces', index)
                raise

    def _namespace(self, obj, dev, region):
        if region is None:
            match = _NAMESPACE_DEV.match(dev)
            if not match:
                raise _Malformed(f'{dev!r:.40} is not namespaceX.Y', 'dev')
            region = f'region{match.group(1)}'
        mode = _str(obj, 'mode')
        chardev = _str(obj, 'chardev')
        align = _int(obj, 'align')
        dax_mode = None
        daxregion = obj.get('daxregion')
        if daxregion is not None:
            try:
                daxregion = _dict(daxregion)
                chardev, dax_mode = _dax_device(daxregion, chardev)
                if align is None:
                    # ndctl before v64 prints a devdax namespace's
                    # alignment only in its daxregion.
                    align = _int(daxregion, 'align')
            except _Malformed as err:
                err.under('daxregion')
                raise
        if 'numa_node' in obj or region not in self.regions:
            numa_node = _numa_node(obj)
        else:
            numa_node = self.regions[region].numa_node
        self.namespaces.setdefault(
            dev,
            Namespace(
                dev=dev,
                region=region,
                mode=_LEGACY_MODES.get(mode, mode),
                name=_str(obj, 'name'),
                enabled=_str(obj, 'state') != 'disabled',
                size=_int(obj, 'size'),
                uuid=_str(obj, 'uuid'),
                align=align,
                chardev=chardev,
                dax_mode=dax_mode,
                numa_node=numa_node,
            ),
        )


def _dax_device(daxregion, chardev):
    """``(chardev, mode)`` of the namespace's dax device: the one named
    ``chardev`` if the namespace names one, else the first."""
    for index, item in enumerate(_list(daxregion, 'devices')):
        try:
            device = _dict(item)
            device_chardev = _str(device, 'chardev')
            if chardev in (None, device_chardev):
                return device_chardev, _str(device, 'mode')
        except _Malformed as err:
            err.under('devices', index)
            raise
    return chardev, None


def _malformed_at_top(reason):
    return exception.NdctlOutputError(where=_TOP_LEVEL, reason=reason)


def parse_listing(text):
    """Turn ``ndctl list`` output (str or bytes) into an :class:`Inventory`.

    Empty output is ndctl's way of saying "nothing matched": an empty
    inventory, not an error.

    :raises NdctlOutputError: naming where the output is not what ndctl
        prints.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError as err:
            raise _malformed_at_top(f'not UTF-8 ({err.reason})') from None
    # isspace() stops at the first character; strip() would copy it all.
    if not text or text.isspace():
        return Inventory()
    reader = _Reader()
    try:
        reader.walk(json.loads(text))
    except _Malformed as err:
        raise exception.NdctlOutputError(
            where=err.path(), reason=err.reason
        ) from None
    except RecursionError:
        raise _malformed_at_top('nested too deeply') from None
    except ValueError as err:
        raise _malformed_at_top(f'not JSON ({err})') from None
    regions = dict(reader.regions)
    for namespace in reader.namespaces.values():
        # A plain "-N" listing names no regions; namespaceX.Y is regionX.
        regions.setdefault(namespace.region, Region(dev=namespace.region))
    return Inventory(
        dimms=tuple(reader.dimms.values()),
        regions=tuple(regions.values()),
        namespaces=tuple(reader.namespaces.values()),
    )
