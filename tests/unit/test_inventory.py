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

import dataclasses
import json

import ddt

from cyborg_pmem import exception
from cyborg_pmem import inventory
from tests.unit import base

# The default rig scenario (tools/qemu-pmem): what every full listing of
# it must yield, whatever its shape.
SCENARIO = {
    'namespace0.0': ('region0', 'ns0', 'devdax', True, 'dax0.0'),
    'namespace0.1': ('region0', 'ns1', 'devdax', True, 'dax0.1'),
    'namespace1.0': ('region1', 'ns3', 'devdax', True, 'dax1.0'),
    'namespace1.1': ('region1', 'ns4', 'fsdax', True, None),
    'namespace1.2': ('region1', 'ns5', 'sector', True, None),
    'namespace1.3': ('region1', 'ns6', 'raw', True, None),
}
IDLE = {
    'namespace0.2': ('region0', 'ns2', 'raw', False, None),
    'namespace0.3': ('region0', None, 'raw', False, None),
    'namespace1.4': ('region1', None, 'raw', False, None),
}


def _summary(inv):
    return {
        ns.dev: (ns.region, ns.name, ns.mode, ns.enabled, ns.chardev)
        for ns in inv.namespaces
    }


def _parse_json(document):
    return inventory.parse_listing(json.dumps(document))


class RealShapesTest(base.TestCase):
    """Every shape ndctl 76.1 printed on a real kernel (the QEMU rig)."""

    def test_driver_listing(self):
        inv = inventory.parse_listing(base.fixture_text('driver-listing.json'))
        self.assertEqual({**SCENARIO, **IDLE}, _summary(inv))
        self.assertEqual(['nmem0', 'nmem1'], sorted(d.dev for d in inv.dimms))
        region0 = inv.region('region0')
        self.assertEqual(('nmem0',), region0.dimms)
        self.assertEqual(0, region0.numa_node)
        self.assertEqual(4294967296, region0.size)
        self.assertIsInstance(region0.iset_id, int)
        self.assertEqual('8680-56341200', inv.dimm('nmem0').id)
        ns0 = next(ns for ns in inv.namespaces if ns.name == 'ns0')
        self.assertEqual(1054867456, ns0.size)
        self.assertEqual(2097152, ns0.align)
        self.assertEqual(0, ns0.numa_node)
        self.assertEqual('devdax', ns0.dax_mode)
        self.assertEqual(36, len(ns0.uuid))
        ns3 = next(ns for ns in inv.namespaces if ns.name == 'ns3')
        self.assertEqual(1, ns3.numa_node)

    def test_plain_namespace_array(self):
        inv = inventory.parse_listing(base.fixture_text('namespaces.json'))
        self.assertEqual(SCENARIO, _summary(inv))
        # Regions are derived from namespaceX.Y when ndctl lists none.
        self.assertEqual({'region0', 'region1'}, {r.dev for r in inv.regions})

    def test_namespace_array_idle_verbose(self):
        inv = inventory.parse_listing(
            base.fixture_text('namespaces-idle-verbose.json')
        )
        self.assertEqual({**SCENARIO, **IDLE}, _summary(inv))

    def test_regions_with_nested_namespaces(self):
        inv = inventory.parse_listing(
            base.fixture_text('regions-namespaces.json')
        )
        self.assertEqual(SCENARIO, _summary(inv))

    def test_bus_array(self):
        inv = inventory.parse_listing(base.fixture_text('buses-all.json'))
        self.assertEqual(SCENARIO, _summary(inv))
        self.assertEqual(2, len(inv.dimms))

    def test_human_sizes(self):
        exact = inventory.parse_listing(
            base.fixture_text('regions-namespaces.json')
        )
        human = inventory.parse_listing(base.fixture_text('human.json'))
        self.assertEqual(SCENARIO, _summary(human))
        sizes = {ns.dev: ns.size for ns in exact.namespaces}
        for ns in human.namespaces:
            # "-u" rounds to 1/100 of the unit it prints.
            self.assertAlmostEqual(
                sizes[ns.dev], ns.size, delta=sizes[ns.dev] / 10000
            )
        self.assertEqual(
            exact.region('region0').iset_id, human.region('region0').iset_id
        )

    def test_bare_object(self):
        inv = inventory.parse_listing(base.fixture_text('single-human.json'))
        (ns,) = inv.namespaces
        self.assertEqual(
            ('namespace0.0', 'ns0', 'dax0.0', 1054867456),
            (ns.dev, ns.name, ns.chardev, ns.size),
        )

    def test_regions_only(self):
        inv = inventory.parse_listing(base.fixture_text('regions-only.json'))
        self.assertEqual(2, len(inv.regions))
        self.assertEqual((), inv.namespaces)

    def test_disabled_regions_are_listed_without_namespaces(self):
        inv = inventory.parse_listing(
            base.fixture_text('regions-disabled.json')
        )
        self.assertEqual(
            [('region0', False), ('region1', False)],
            sorted((r.dev, r.enabled) for r in inv.regions),
        )
        self.assertEqual((), inv.namespaces)
        enabled = inventory.parse_listing(
            base.fixture_text('driver-listing.json')
        )
        self.assertTrue(all(r.enabled for r in enabled.regions))

    def test_dimms_only(self):
        inv = inventory.parse_listing(base.fixture_text('dimms-health.json'))
        self.assertEqual(2, len(inv.dimms))
        self.assertEqual((), inv.regions)

    def test_no_match_prints_nothing(self):
        self.assertEqual('', base.fixture_text('no-match.json'))
        self.assertEqual(inventory.Inventory(), inventory.parse_listing(''))

    def test_single_region_listing(self):
        inv = inventory.parse_listing(base.fixture_text('region1-only.json'))
        self.assertEqual(['region1'], [r.dev for r in inv.regions])
        self.assertEqual(
            {
                k: v
                for k, v in {**SCENARIO, **IDLE}.items()
                if v[0] == 'region1'
            },
            _summary(inv),
        )


class OldNdctlTest(base.TestCase):
    """The rig's scenario as older ndctl releases print it (reshaped from
    the captures by their printing code; tests/fixtures/ndctl/MANIFEST)."""

    def test_v61_listing(self):
        old = inventory.parse_listing(
            base.fixture_text('ndctl61-driver-listing.json')
        )
        new = inventory.parse_listing(base.fixture_text('driver-listing.json'))
        self.assertEqual({**SCENARIO, **IDLE}, _summary(old))
        # Only the daxregion carries align before v64; it is the same.
        ns0 = next(ns for ns in old.namespaces if ns.name == 'ns0')
        self.assertEqual(2097152, ns0.align)
        # The same devdax namespaces, but for the dax device's own mode,
        # which ndctl prints only since daxctl can online it as memory.
        self.assertEqual(
            {
                ns.dev: dataclasses.replace(ns, dax_mode=None)
                for ns in new.namespaces
                if ns.mode == 'devdax'
            },
            {ns.dev: ns for ns in old.namespaces if ns.mode == 'devdax'},
        )
        self.assertEqual(
            [(r.dev, r.iset_id, r.numa_node, r.dimms) for r in new.regions],
            [(r.dev, r.iset_id, r.numa_node, r.dimms) for r in old.regions],
        )

    def test_v58_bare_region_in_human_form(self):
        inv = inventory.parse_listing(
            base.fixture_text('ndctl58-region0-human.json')
        )
        self.assertEqual(
            {k: v for k, v in SCENARIO.items() if v[0] == 'region0'},
            _summary(inv),
        )
        (region,) = inv.regions
        self.assertEqual(0x2468AC00123456, region.iset_id)
        self.assertEqual(4294967296, region.size)
        for ns in inv.namespaces:
            self.assertEqual(
                (1054867456, 2097152, 0), (ns.size, ns.align, ns.numa_node)
            )

    def test_namespace_align_wins_over_its_daxregion(self):
        inv = _parse_json(
            {
                'dev': 'namespace0.0',
                'align': 4096,
                'daxregion': {'align': 2097152, 'devices': []},
            }
        )
        self.assertEqual(4096, inv.namespaces[0].align)

    def test_daxregion_align_is_checked(self):
        err = self.assertRaises(
            exception.NdctlOutputError,
            inventory.parse_listing,
            '{"dev": "namespace0.0", "daxregion": {"align": "2M?"}}',
        )
        self.assertEqual(
            'unexpected ndctl list output at top level.daxregion.align: '
            "not a number: '2M?'",
            str(err),
        )


@ddt.ddt
class SyntheticShapesTest(base.TestCase):
    """Shapes real hosts print and the rig's ndctl does not
    (doc/source/contributor/design.rst, "ndctl facts that bite")."""

    def setUp(self):
        super().setUp()
        self.listing = base.fixture_json('driver-listing.json')

    def _region0(self, listing):
        return next(r for r in listing['regions'] if r['dev'] == 'region0')

    def test_region_array_fallback(self):
        inv = _parse_json(self.listing['regions'])
        self.assertEqual({**SCENARIO, **IDLE}, _summary(inv))

    @ddt.data('', '\n', '  \n\t', b'', b'\n')
    def test_empty_and_whitespace(self, text):
        self.assertEqual(inventory.Inventory(), inventory.parse_listing(text))

    def test_bytes(self):
        as_bytes = base.fixture_text('namespaces.json').encode()
        self.assertEqual(SCENARIO, _summary(inventory.parse_listing(as_bytes)))

    @ddt.data(('dax', 'devdax'), ('memory', 'fsdax'), ('safe', 'sector'))
    @ddt.unpack
    def test_legacy_mode_names(self, old, new):
        inv = _parse_json({'dev': 'namespace0.0', 'mode': old})
        self.assertEqual(new, inv.namespaces[0].mode)

    def test_missing_optional_fields(self):
        inv = _parse_json([{'dev': 'namespace3.1'}])
        (ns,) = inv.namespaces
        self.assertEqual(
            inventory.Namespace(
                dev='namespace3.1', region='region3', mode=None
            ),
            ns,
        )

    def test_daxregion_without_devices(self):
        inv = _parse_json(
            {
                'dev': 'namespace0.0',
                'mode': 'devdax',
                'daxregion': {'id': 0, 'size': 0},
            }
        )
        self.assertIsNone(inv.namespaces[0].chardev)

    def test_system_ram_dax_device(self):
        ns = next(
            n
            for n in self._region0(self.listing)['namespaces']
            if 'daxregion' in n
        )
        ns['daxregion']['devices'][0]['mode'] = 'system-ram'
        inv = _parse_json(self.listing)
        found = next(n for n in inv.namespaces if n.dev == ns['dev'])
        self.assertEqual('system-ram', found.dax_mode)

    def test_namespace_level_chardev_wins(self):
        inv = _parse_json(
            {
                'dev': 'namespace0.0',
                'mode': 'devdax',
                'chardev': 'dax0.0',
                'daxregion': {
                    'devices': [
                        {'chardev': 'dax0.9', 'mode': 'x'},
                        {'chardev': 'dax0.0', 'mode': 'devdax'},
                    ]
                },
            }
        )
        self.assertEqual(
            ('dax0.0', 'devdax'),
            (inv.namespaces[0].chardev, inv.namespaces[0].dax_mode),
        )

    def test_negative_iset_id_and_float_health(self):
        self._region0(self.listing)['iset_id'] = -6504431231411523532
        self.listing['dimms'][0]['health'] = {'temperature_celsius': 255.0}
        inv = _parse_json(self.listing)
        self.assertEqual(-6504431231411523532, inv.region('region0').iset_id)
        self.assertEqual({'temperature_celsius': 255.0}, inv.dimms[0].health)

    def test_numbers_as_strings(self):
        inv = _parse_json(
            {
                'dev': 'namespace0.0',
                'size': '0x1000',
                'align': '4096',
                'numa_node': '1',
            }
        )
        ns = inv.namespaces[0]
        self.assertEqual((4096, 4096, 1), (ns.size, ns.align, ns.numa_node))

    def test_no_numa_node(self):
        inv = _parse_json({'dev': 'namespace0.0', 'numa_node': -1})
        self.assertIsNone(inv.namespaces[0].numa_node)

    def test_namespace_inherits_region_numa_node(self):
        inv = _parse_json(
            [
                {
                    'dev': 'region2',
                    'numa_node': 3,
                    'namespaces': [{'dev': 'namespace2.0'}],
                }
            ]
        )
        self.assertEqual(3, inv.namespaces[0].numa_node)

    def test_label_less_sector_without_size(self):
        inv = _parse_json(
            {'dev': 'namespace0.0', 'mode': 'sector', 'blockdev': 'pmem0s'}
        )
        ns = inv.namespaces[0]
        self.assertEqual((None, None), (ns.uuid, ns.size))

    def test_legacy_e820_bus_without_dimms(self):
        inv = _parse_json(
            [
                {
                    'provider': 'e820',
                    'dev': 'ndbus1',
                    'regions': [
                        {
                            'dev': 'region9',
                            'size': 1 << 34,
                            'type': 'pmem',
                            'map': 'mem',
                            'namespaces': [
                                {
                                    'dev': 'namespace9.0',
                                    'mode': 'fsdax',
                                    'map': 'mem',
                                }
                            ],
                        }
                    ],
                }
            ]
        )
        self.assertEqual((), inv.dimms)
        self.assertEqual((), inv.region('region9').dimms)
        self.assertIsNone(inv.region('region9').iset_id)

    def test_unicode_and_unknown_fields_pass(self):
        inv = _parse_json(
            {
                'dev': 'namespace0.0',
                'name': 'na\u00efve',
                'supported_alignments': [4096, 2097152],
                'new_field': {'x': [1]},
            }
        )
        self.assertEqual('na\u00efve', inv.namespaces[0].name)

    def test_duplicates_keep_the_first(self):
        ns = {'dev': 'namespace0.0', 'name': 'a'}
        inv = _parse_json([ns, dict(ns, name='b')])
        self.assertEqual(['a'], [n.name for n in inv.namespaces])

    def test_mappings_sorted_by_position(self):
        inv = _parse_json(
            {
                'dev': 'region0',
                'mappings': [
                    {'dimm': 'nmem3', 'position': 1},
                    {'dimm': 'nmem2', 'position': 0},
                ],
            }
        )
        self.assertEqual(('nmem2', 'nmem3'), inv.region('region0').dimms)


@ddt.ddt
class MalformedTest(base.TestCase):
    def assertRefused(self, text, where, reason):
        err = self.assertRaises(
            exception.NdctlOutputError, inventory.parse_listing, text
        )
        self.assertIn(f'at {where}', str(err))
        self.assertIn(reason, str(err))
        self.assertNotIn('\n', str(err))

    def test_not_json(self):
        self.assertRefused('garbage', 'top level', 'not JSON')
        truncated = base.fixture_text('driver-listing.json')[:700]
        self.assertRefused(truncated, 'top level', 'not JSON')

    def test_not_utf8(self):
        self.assertRefused(b'\xff\xfe[]', 'top level', 'not UTF-8')

    @ddt.data('42', '"text"', 'null', 'true', '[1]', '[[null]]')
    def test_wrong_top_level_values(self, value):
        self.assertRaises(
            exception.NdctlOutputError, inventory.parse_listing, value
        )

    def test_object_without_dev_or_lists(self):
        self.assertRefused('{"foo": 1}', 'top level', 'no "dev"')

    def test_unknown_device(self):
        self.assertRefused(
            '[{"dev": "dax0.0"}]',
            'top level[0]',
            "unrecognized device 'dax0.0'",
        )

    @ddt.data(
        (('namespaces', 0, 'size'), [], 'expected a number'),
        (('namespaces', 0, 'size'), 'big', 'not a number'),
        (('namespaces', 0, 'size'), True, 'expected a number'),
        (('namespaces', 0, 'name'), 7, 'expected a string'),
        (('namespaces', 0, 'daxregion'), [], 'expected an object'),
        (('namespaces', 0, 'daxregion', 'devices'), {}, 'expected a list'),
        (
            ('namespaces', 0, 'daxregion', 'devices', 0),
            'dax0.0',
            'expected an object',
        ),
        (
            ('namespaces', 0, 'daxregion', 'devices', 0, 'chardev'),
            5,
            'expected a string',
        ),
        (
            ('namespaces', 0, 'daxregion', 'devices', 0, 'mode'),
            ['devdax'],
            'expected a string',
        ),
        (('namespaces',), 'x', 'expected a list'),
        (('mappings', 0), 'nmem0', 'expected an object'),
        (('mappings', 0, 'dimm'), None, '"dimm" is missing'),
    )
    @ddt.unpack
    def test_wrong_types_name_the_field(self, path, value, reason):
        doc = base.fixture_json('driver-listing.json')
        target = next(
            r for r in doc['regions'] if r['namespaces'][0].get('daxregion')
        )
        index = doc['regions'].index(target)
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        where = f'top level.regions[{index}]' + ''.join(
            f'[{p}]' if isinstance(p, int) else f'.{p}' for p in path[:-1]
        )
        self.assertRefused(json.dumps(doc), where, reason)

    def test_error_names_the_whole_path(self):
        listing = base.fixture_json('driver-listing.json')
        index, region = next(
            (i, r)
            for i, r in enumerate(listing['regions'])
            if r['namespaces'][0].get('daxregion')
        )
        region['namespaces'][0]['daxregion']['devices'][0]['mode'] = 1
        err = self.assertRaises(
            exception.NdctlOutputError,
            inventory.parse_listing,
            json.dumps(listing),
        )
        self.assertEqual(
            'unexpected ndctl list output at top level.regions'
            f'[{index}].namespaces[0].daxregion.devices[0].mode: expected '
            'a string, got 1',
            str(err),
        )

    def test_dimm_health_not_an_object(self):
        self.assertRefused(
            '{"dimms": [{"dev": "nmem0"}, {"dev": "nmem1", "health": []}]}',
            'top level.dimms[1].health',
            'expected an object, got []',
        )

    def test_namespace_dev_not_kernel_name(self):
        self.assertRefused(
            '[{"dev": "namespaceX"}]',
            'top level[0].dev',
            'is not namespaceX.Y',
        )

    @ddt.data('region_A', 'region', 'regionX', 'region1 ')
    def test_region_dev_not_kernel_name(self, dev):
        # Found while writing the planner's uniqueness property: with no
        # iset_id and no DIMM ids the region's name is its identity, and
        # regions "region_A" (label "B") and "region" (label "A_B") both
        # gave the Placement provider name "<host>_region_A_B".
        self.assertRefused(
            json.dumps([{'dev': dev}]), 'top level[0].dev', 'is not regionN'
        )

    @ddt.data(
        'NaN',
        'Infinity',
        '-Infinity',
        '1e999',
        '"' + '9' * 400 + '.5 MiB"',
    )
    def test_non_finite_sizes(self, size):
        self.assertRefused(
            '{"dev": "namespace0.0", "size": ' + size + '}',
            'top level.size',
            'not a finite number',
        )

    def test_finite_float_size(self):
        inv = inventory.parse_listing(
            '{"dev": "namespace0.0", "size": 1054867456.0}'
        )
        self.assertEqual(1054867456, inv.namespaces[0].size)

    def test_digit_string_too_long_for_int(self):
        # Found by tests/unit/test_properties.py: int() refuses over 4300
        # digits, and the fallback float overflows to inf.
        self.assertRefused(
            json.dumps({'dev': 'namespace0.0', 'size': '9' * 5000}),
            'top level.size',
            'not a finite number',
        )

    def test_lone_surrogate_in_a_string(self):
        # Found by property-based testing: a namespace dev of
        # "namespace0.0\ud800" reached the CLI's table, whose write to a
        # UTF-8 stdout raised UnicodeEncodeError (a traceback).
        self.assertRefused(
            '{"dev": "region0", "namespaces": [{"dev": "namespace0.0\\ud800",'
            ' "name": "ns0"}]}',
            'top level.namespaces[0].dev',
            'not valid Unicode',
        )
        inv = inventory.parse_listing(
            '[{"dev": "namespace0.0", "name": "n\\u00e9\\ud83d\\ude00"}]'
        )
        self.assertEqual('n\u00e9\U0001f600', inv.namespaces[0].name)

    def test_nesting_too_deep(self):
        self.assertRefused(
            '[' * 100000 + ']' * 100000, 'top level', 'nested too deeply'
        )


class DeviceOrderTest(base.TestCase):
    def test_numbers_sort_as_numbers(self):
        regions = [
            inventory.Region(dev)
            for dev in ('region10', 'region2', 'region0', 'region1')
        ]
        self.assertEqual(
            ['region0', 'region1', 'region2', 'region10'],
            [r.dev for r in sorted(regions, key=inventory.device_order)],
        )
