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

"""DIMM and region health, for ``get_stats()`` and the CLI's ``--health``.

One ``ndctl list --dimms --regions --health`` call: the DIMMs carry their
SMART health, the regions say which DIMMs each interleave set is made of.
Health is an extra: it needs root (ndctl opens ``/dev/nmemN``), emulated
NVDIMMs have none, and platforms report different subsets of fields. So
nothing here raises: :func:`collect` returns what it could and says in one
line why the rest is missing, and discovery never depends on it.
"""

import logging

from cyborg_pmem import exception
from cyborg_pmem import inventory as inventory_mod
from cyborg_pmem import ndctl

LOG = logging.getLogger(__name__)

# The fields we report, where ndctl prints them (it prints each only when
# the DIMM's SMART data marks it valid).
FIELDS = (
    'health_state',
    'temperature_celsius',
    'spares_percentage',
    'life_used_percentage',
    'shutdown_state',
    'shutdown_count',
)
# ndctl's health_state values, best first. "unknown" (ndctl could not read
# SMART data, e.g. without root) ranks above the harmless states, so that
# a region is never called "ok" while one of its DIMMs is unread.
_SEVERITY = ('ok', 'non-critical', 'unknown', 'critical', 'fatal')
NO_HEALTH = (
    'ndctl shows no DIMM health: reading it needs root (/dev/nmemN), and '
    'emulated NVDIMMs have none'
)
UNREADABLE = (
    'ndctl reports health "unknown" for every DIMM: reading it needs root '
    '(/dev/nmemN)'
)


def _value(value):
    """Keep JSON scalars (ndctl prints floats such as 255.0); drop the
    rest."""
    if isinstance(value, str | int | float | bool):
        return value
    return None


def _worst(states):
    ranked = [s if s in _SEVERITY else 'unknown' for s in states]
    return max(ranked, key=_SEVERITY.index) if ranked else 'unknown'


def stats_from_listing(listing):
    """Turn the health listing into the ``get_stats()`` document.

    :raises NdctlOutputError: the output is not ndctl JSON.
    """
    inventory = inventory_mod.parse_listing(listing)
    region_of = {}
    for region in inventory.regions:
        for dimm in region.dimms:
            region_of.setdefault(dimm, region.dev)
    dimms = {}
    for dimm in sorted(inventory.dimms, key=inventory_mod.device_order):
        entry = {'id': dimm.id, 'region': region_of.get(dimm.dev)}
        for field in FIELDS:
            value = _value((dimm.health or {}).get(field))
            if value is not None:
                entry[field] = value
        entry['has_health'] = dimm.health is not None
        dimms[dimm.dev] = entry
    regions = {}
    for region in sorted(inventory.regions, key=inventory_mod.device_order):
        states = [
            dimms.get(dev, {}).get('health_state', 'unknown')
            for dev in region.dimms
        ]
        regions[region.dev] = {
            'dimms': list(region.dimms),
            'health_state': _worst(states),
        }
    message = None
    if not dimms:
        message = 'ndctl shows no DIMMs'
    elif not any(entry['has_health'] for entry in dimms.values()):
        message = NO_HEALTH
    elif all(
        entry.get('health_state', 'unknown') == 'unknown'
        and not any(f in entry for f in FIELDS[1:])
        for entry in dimms.values()
    ):
        message = UNREADABLE
    for entry in dimms.values():
        del entry['has_health']
    return {
        'health_available': message is None,
        'message': message,
        'dimms': dimms,
        'regions': regions,
    }


def unavailable(message):
    return {
        'health_available': False,
        'message': message,
        'dimms': {},
        'regions': {},
    }


def collect(ndctl_path, timeout, listing=None):
    """Health stats of this host; never raises for a tool failure.

    :param listing: a saved health listing instead of running ndctl.
    :returns: the document of :func:`stats_from_listing`; when health
        cannot be read its ``message`` says why in one line, which is also
        logged once as a WARNING.
    """
    try:
        if listing is None:
            listing = ndctl.run_list(ndctl_path, timeout, ndctl.HEALTH_ARGS)
        stats = stats_from_listing(listing)
    except exception.PmemError as err:
        stats = unavailable(str(err))
    if stats['message']:
        LOG.warning('PMEM health not available: %s', stats['message'])
    return stats
