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
from cyborg_pmem import labels
from cyborg_pmem import planner
from tests.unit import base

HOST = 'compute-0'


def _plan(config, listing=None, host=HOST):
    if listing is None:
        listing = base.fixture_text('driver-listing.json')
    if not isinstance(listing, str):
        listing = json.dumps(listing)
    return planner.plan(
        inventory.parse_listing(listing),
        labels.parse_pmem_namespaces(config),
        host,
    )


def _handles(result):
    return {
        json.loads(h.attach_info)['name']: (
            device.region,
            dep.label,
            json.loads(h.attach_info),
        )
        for device in result.devices
        for dep in device.deployables
        for h in dep.attach_handles
    }


def _reasons(result):
    return {r.name: r.reason for r in result.refusals}


@ddt.ddt
class DefaultScenarioTest(base.TestCase):
    def test_spec_model(self):
        result = _plan('SMALL:ns0|ns1,LARGE:ns3')
        self.assertEqual((), result.refusals)
        self.assertEqual(
            ['region0', 'region1'], [d.region for d in result.devices]
        )
        region0, region1 = result.devices
        (small,) = region0.deployables
        (large,) = region1.deployables
        self.assertEqual(2, small.num_accelerators)
        self.assertEqual(1, large.num_accelerators)
        self.assertEqual(
            (
                ('rc', 'CUSTOM_PMEM_NAMESPACE_SMALL'),
                ('trait0', 'CUSTOM_PMEM_NAMESPACE_SMALL'),
                ('trait1', 'OWNER_CYBORG'),
            ),
            small.attributes,
        )
        self.assertTrue(small.name.startswith(HOST + '_iset-'))
        self.assertTrue(small.name.endswith('_SMALL'))
        self.assertNotEqual(small.name.split('_')[1], large.name.split('_')[1])
        for device in result.devices:
            self.assertEqual(
                ('PMEM', 'PMEM', False),
                (device.type, device.cpid_type, device.stub),
            )
            self.assertEqual('0x8680', device.vendor)
            self.assertEqual('PMEM region, 1-way interleave', device.model)
        self.assertEqual({'SMALL': 2, 'LARGE': 1}, result.offered())

    def test_attach_info(self):
        handles = _handles(_plan('SMALL:ns0|ns1,LARGE:ns3'))
        region, label, info = handles['ns0']
        self.assertEqual(('region0', 'SMALL'), (region, label))
        self.assertEqual(
            {
                'align',
                'dev',
                'devpath',
                'label',
                'name',
                'numa_node',
                'size',
                'uuid',
            },
            set(info),
        )
        self.assertEqual('namespace0.0', info['dev'])
        self.assertEqual('/dev/dax0.0', info['devpath'])
        self.assertEqual(1054867456, info['size'])
        self.assertEqual(2097152, info['align'])
        self.assertEqual(0, info['numa_node'])
        self.assertEqual('/dev/dax1.0', handles['ns3'][2]['devpath'])
        self.assertEqual(1, handles['ns3'][2]['numa_node'])
        for device in _plan('SMALL:ns0').devices:
            for dep in device.deployables:
                for handle in dep.attach_handles:
                    self.assertEqual(
                        ('PMEM', False), (handle.attach_type, handle.in_use)
                    )

    # Written out, not computed: the conductor matches handles by
    # attach_info, so any change to these bytes deletes and re-creates
    # every handle on upgrade. The fields hold what the inventory
    # guarantees: str or None, int (never bool) or None.
    @ddt.data(
        (
            {},
            '{"dev":"namespace0.0","devpath":"/dev/dax0.0",'
            '"label":"L\\u00e0"}',
        ),
        (
            {'name': 'n\u00e9"\\\x01\U0001f600', 'uuid': 'u'},
            '{"dev":"namespace0.0","devpath":"/dev/dax0.0",'
            '"label":"L\\u00e0",'
            '"name":"n\\u00e9\\"\\\\\\u0001\\ud83d\\ude00",'
            '"uuid":"u"}',
        ),
        (
            {'size': 2**70, 'align': -1, 'numa_node': 0, 'name': ''},
            '{"align":-1,"dev":"namespace0.0","devpath":"/dev/dax0.0",'
            '"label":"L\\u00e0","name":"","numa_node":0,'
            '"size":1180591620717411303424}',
        ),
        (
            {'size': 0, 'align': 0, 'numa_node': 7, 'uuid': ''},
            '{"align":0,"dev":"namespace0.0","devpath":"/dev/dax0.0",'
            '"label":"L\\u00e0","numa_node":7,"size":0,"uuid":""}',
        ),
    )
    @ddt.unpack
    def test_attach_info_escapes_and_edge_values(self, fields, expected):
        ns = inventory.Namespace(
            dev='namespace0.0',
            region='region0',
            mode='devdax',
            chardev='dax0.0',
            **fields,
        )
        self.assertEqual(expected, planner.attach_info(ns, 'L\u00e0'))

    def test_board_info(self):
        (device,) = _plan('SMALL:ns0').devices
        std = json.loads(device.std_board_info)
        self.assertEqual(['nmem0'], std['dimms'])
        self.assertEqual('region0', std['region'])
        self.assertEqual(0, std['numa_node'])
        self.assertEqual(4294967296, std['size'])
        self.assertEqual(
            {'dimm_ids': ['8680-56341200']},
            json.loads(device.vendor_board_info),
        )

    def test_refusals_name_namespace_and_reason(self):
        result = _plan('SMALL:ns0|ns1|ns2,LARGE:ns3|ns4|ns5|ns6|ns9')
        self.assertEqual(
            {
                'ns2': 'namespace0.2 is disabled (ndctl enable-namespace '
                'namespace0.2)',
                'ns4': 'namespace1.1 is in fsdax mode, not devdax',
                'ns5': 'namespace1.2 is in sector mode, not devdax',
                'ns6': 'namespace1.3 is in raw mode, not devdax',
                'ns9': 'not found on this host',
            },
            _reasons(result),
        )
        self.assertEqual({'ns0', 'ns1', 'ns3'}, set(_handles(result)))
        self.assertEqual(
            "namespace 'ns4' (label 'LARGE'): namespace1.1 is in fsdax "
            'mode, not devdax',
            str(next(r for r in result.refusals if r.name == 'ns4')),
        )

    def test_region_without_offered_namespace_is_not_reported(self):
        result = _plan('LARGE:ns3|ns4')
        self.assertEqual(['region1'], [d.region for d in result.devices])

    def test_one_deployable_per_region_and_label(self):
        result = _plan('A:ns0,B:ns1|ns3')
        region0, region1 = result.devices
        self.assertEqual(['A', 'B'], [d.label for d in region0.deployables])
        self.assertEqual(['B'], [d.label for d in region1.deployables])
        self.assertEqual(
            [1, 1], [d.num_accelerators for d in region0.deployables]
        )

    def test_unconfigured_namespaces_are_ignored(self):
        self.assertEqual({'ns3'}, set(_handles(_plan('L:ns3'))))

    def test_empty_configuration_offers_nothing(self):
        self.assertEqual(planner.Plan(), _plan([]))
        self.assertEqual(planner.Plan(), _plan([], listing=''))


@ddt.ddt
class FailureRulesTest(base.TestCase):
    def test_host_name_too_long_for_placement_raises(self):
        config = 'SMALL:ns0|ns1,LARGE:ns3'
        # The longest deployable name with a one-character host.
        suffix = max(
            (
                dep.name[1:]
                for device in _plan(config, host='h').devices
                for dep in device.deployables
            ),
            key=len,
        )
        self.assertRegex(suffix, r'^_iset-[0-9a-f]{16}_(SMALL|LARGE)$')
        longest_host = 'h' * (planner.MAX_PROVIDER_NAME_LENGTH - len(suffix))

        names = [
            dep.name
            for device in _plan(config, host=longest_host).devices
            for dep in device.deployables
        ]
        self.assertEqual(200, max(map(len, names)))

        err = self.assertRaises(
            exception.HostNameTooLong,
            _plan,
            config,
            host=longest_host + 'h',
        )
        self.assertEqual(
            f'[DEFAULT] host is {len(longest_host) + 1} characters: the '
            f'PMEM provider name "<host>{suffix}" would be 201, over '
            f"Placement's 200; set a host of at most {len(longest_host)} "
            'characters. Not reporting, so the last inventory stays',
            str(err),
        )

    @ddt.data('', '[]', '{"dimms": []}', 'dimms-health.json')
    def test_no_region_while_configured_raises(self, listing):
        if listing.endswith('.json'):
            listing = base.fixture_text(listing)
        err = self.assertRaises(
            exception.NvdimmStackDown, _plan, 'L:ns0|ns1', listing
        )
        self.assertIn('names 2 namespace(s)', str(err))

    def test_stack_down_names_the_namespaces(self):
        err = self.assertRaises(
            exception.NvdimmStackDown,
            _plan,
            'SMALL:ns0|ns1,LARGE:ns3',
            base.fixture_text('ndctl61-regions-disabled.json'),
        )
        self.assertEqual(
            'ndctl shows no enabled PMEM region although [pmem_devices] '
            'pmem_namespaces names 3 namespace(s) (ns0, ns1, ns3); is the '
            'nvdimm stack loaded (modules libnvdimm, nfit, nd_pmem, '
            'dax_pmem) and are its regions enabled (ndctl enable-region '
            'all)? Not reporting, so the last inventory stays',
            str(err),
        )

    def test_stack_down_shortens_many_names(self):
        names = '|'.join(f'ns{n}' for n in range(40))
        err = self.assertRaises(
            exception.NvdimmStackDown, _plan, f'A:{names},B:big', ''
        )
        self.assertIn(
            'names 41 namespace(s) (ns0, ns1, ns2, ns3, ns4 and 36 more); ',
            str(err),
        )

    @ddt.data(
        ([], ''),
        (['a'], 'a'),
        (['a', 'b', 'c', 'd', 'e'], 'a, b, c, d, e'),
        (['a', 'b', 'c', 'd', 'e', 'f'], 'a, b, c, d, e and 1 more'),
    )
    @ddt.unpack
    def test_shortened(self, names, expected):
        self.assertEqual(expected, planner.shortened(names))

    def test_every_region_disabled_while_configured_raises(self):
        # "ndctl disable-region all": the regions still show (--idle),
        # their namespaces do not; an empty report would delete them all.
        err = self.assertRaises(
            exception.NvdimmStackDown,
            _plan,
            'L:ns0|ns1',
            base.fixture_text('regions-disabled.json'),
        )
        self.assertIn('no enabled PMEM region', str(err))

    def test_one_region_disabled_refuses_only_its_namespaces(self):
        listing = base.fixture_json('driver-listing.json')
        for region in listing['regions']:
            if region['dev'] == 'region0':
                region['state'] = 'disabled'
                region.pop('namespaces')
        result = _plan('S:ns0,L:ns3', listing)
        self.assertEqual({'ns0': 'not found on this host'}, _reasons(result))
        self.assertEqual({'ns3'}, set(_handles(result)))

    def test_regions_without_namespaces_refuse_each(self):
        result = _plan('L:ns0', base.fixture_text('regions-only.json'))
        self.assertEqual({'ns0': 'not found on this host'}, _reasons(result))
        self.assertEqual((), result.devices)

    def test_ambiguous_name(self):
        listing = base.fixture_json('driver-listing.json')
        for region in listing['regions']:
            for ns in region['namespaces']:
                if ns.get('name') == 'ns3':
                    ns['name'] = 'ns0'
        result = _plan('L:ns0|ns1', listing)
        self.assertEqual(
            {
                'ns0': 'name is ambiguous: namespace0.0, namespace1.0 all '
                'carry it'
            },
            _reasons(result),
        )
        self.assertEqual({'ns1'}, set(_handles(result)))

    def _mutate_ns0(self, **changes):
        listing = base.fixture_json('driver-listing.json')
        for region in listing['regions']:
            for ns in region['namespaces']:
                if ns.get('name') == 'ns0':
                    for key, value in changes.items():
                        if value is None:
                            ns.pop(key, None)
                        elif callable(value):
                            value(ns)
                        else:
                            ns[key] = value
        return _reasons(_plan('L:ns0', listing)).get('ns0')

    def test_system_ram(self):
        def online(ns):
            ns['daxregion']['devices'][0]['mode'] = 'system-ram'

        self.assertEqual(
            'dax0.0 is onlined as system-ram (daxctl reconfigure-device '
            '-m devdax dax0.0)',
            self._mutate_ns0(daxregion=online),
        )

    def test_devdax_without_chardev(self):
        self.assertEqual(
            'namespace0.0 has no device-DAX character device',
            self._mutate_ns0(daxregion=None),
        )

    def test_devdax_without_size(self):
        self.assertEqual(
            'ndctl shows no size for namespace0.0', self._mutate_ns0(size=None)
        )

    def test_unknown_mode(self):
        self.assertEqual(
            'namespace0.0 is in an unknown mode, not devdax',
            self._mutate_ns0(mode=None),
        )

    def test_legacy_dax_mode_is_offered(self):
        self.assertIsNone(self._mutate_ns0(mode='dax'))


class IdentityTest(base.TestCase):
    def test_two_discoveries_are_equal(self):
        config = 'SMALL:ns0|ns1,LARGE:ns3'
        self.assertEqual(_plan(config), _plan(config))

    def test_output_order_does_not_matter(self):
        listing = base.fixture_json('driver-listing.json')
        shuffled = json.loads(json.dumps(listing))
        shuffled['regions'].reverse()
        for region in shuffled['regions']:
            region['namespaces'].reverse()
        config = 'SMALL:ns0|ns1,LARGE:ns3'
        self.assertEqual(_plan(config, listing), _plan(config, shuffled))

    def test_renumbered_regions_keep_identity(self):
        config = 'SMALL:ns0|ns1,LARGE:ns3'
        text = base.fixture_text('driver-listing.json')
        renumbered = (
            text.replace('region0', 'regionX')
            .replace('region1', 'region0')
            .replace('regionX', 'region1')
        )
        before = {
            d.cpid_info: [p.name for p in d.deployables]
            for d in _plan(config, text).devices
        }
        after = {
            d.cpid_info: [p.name for p in d.deployables]
            for d in _plan(config, renumbered).devices
        }
        self.assertEqual(before, after)

    def test_region_key_fallbacks(self):
        inv = inventory.Inventory(
            dimms=(inventory.Dimm('nmem0', id='8089-a2-1837-00000fb9'),),
            regions=(
                inventory.Region('region0', iset_id=-1),
                inventory.Region('region1', dimms=('nmem0',)),
                inventory.Region('region2'),
            ),
        )
        keys = [planner.region_key(r, inv) for r in inv.regions]
        self.assertEqual('iset-ffffffffffffffff', keys[0])
        self.assertRegex(keys[1], r'^dimms-[0-9a-f]{16}$')
        self.assertEqual('region2', keys[2])

    def test_regions_sharing_a_cookie_stay_apart(self):
        # Found by tests/unit/test_properties.py: two regions with one
        # iset_id became two devices with one cpid_info, and deployables
        # with one Placement provider name.
        listing = base.fixture_json('driver-listing.json')
        for region in listing['regions']:
            region['iset_id'] = 77
        result = _plan('SMALL:ns0|ns1,LARGE:ns3', listing)
        self.assertEqual(
            [
                '{"region_key":"iset-000000000000004d-region0"}',
                '{"region_key":"iset-000000000000004d-region1"}',
            ],
            [d.cpid_info for d in result.devices],
        )
        self.assertEqual(
            [
                f'{HOST}_iset-000000000000004d-region0_SMALL',
                f'{HOST}_iset-000000000000004d-region1_LARGE',
            ],
            [p.name for d in result.devices for p in d.deployables],
        )

    def test_vendor_from_dimm_ids(self):
        self.assertEqual('0x8089', planner._vendor(['8089-a2-1837-0f']))
        self.assertEqual(
            '0x8089,0xce01', planner._vendor(['CE01-1', '8089-2', '8089-3'])
        )
        self.assertEqual('unknown', planner._vendor(['odd', '']))


def _attach_info(name, dev, uuid, size, numa_node=None):
    numa = '' if numa_node is None else f'"numa_node":{numa_node},'
    return (
        f'{{"align":2097152,"dev":"{dev}","devpath":"/dev/dax{dev[9:]}",'
        f'"label":"PIN","name":"{name}",{numa}"size":{size},'
        f'"uuid":"{uuid}"}}'
    )


NS0_UUID = 'c12e20c1-95dd-4150-99ab-910aaa63fcd5'
NS1_UUID = '5c672d63-3575-4a64-94c5-fa015ef62209'
NS3_UUID = 'aa981cfa-f1ae-493e-81d5-5115202d5d35'


def _rig_handles(numa):
    """The three devdax namespaces of the rig, in plan order."""
    return (
        _attach_info(
            'ns1', 'namespace0.1', NS1_UUID, 1054867456, 0 if numa else None
        ),
        _attach_info(
            'ns0', 'namespace0.0', NS0_UUID, 1054867456, 0 if numa else None
        ),
        _attach_info(
            'ns3', 'namespace1.0', NS3_UUID, 2111832064, 1 if numa else None
        ),
    )


@ddt.ddt
class AttachInfoPinTest(base.TestCase):
    """attach_info of every saved listing, byte for byte.

    The conductor tells an unchanged handle from a new one by its
    attach_info: a change of a single byte (key order, spacing, an
    escape) deletes every handle on upgrade and re-creates it, while an
    instance may hold it. Pinned before the serialisation was rewritten,
    so that any rewrite has to keep these bytes.
    """

    PINNED = {
        'driver-listing.json': _rig_handles(numa=True),
        'buses-all.json': _rig_handles(numa=True),
        'namespaces-idle-verbose.json': _rig_handles(numa=True),
        'namespaces.json': _rig_handles(numa=False),
        'regions-namespaces.json': _rig_handles(numa=False),
        'human.json': _rig_handles(numa=False),
        'region1-only.json': _rig_handles(numa=True)[2:],
        'single-human.json': _rig_handles(numa=False)[1:2],
        # Older ndctl, the same host: the same bytes (align from the
        # daxregion).
        'ndctl61-driver-listing.json': _rig_handles(numa=True),
        'ndctl58-region0-human.json': _rig_handles(numa=True)[:2],
    }

    @ddt.data(*PINNED)
    def test_every_listing(self, fixture):
        inv = inventory.parse_listing(base.fixture_text(fixture))
        names = tuple(ns.name for ns in inv.namespaces if ns.name)
        result = planner.plan(inv, {'PIN': names}, HOST)
        self.assertEqual(
            self.PINNED[fixture],
            tuple(
                handle.attach_info
                for device in result.devices
                for dep in device.deployables
                for handle in dep.attach_handles
            ),
        )

    def test_the_form_is_literal(self):
        # The helper above must not hide the bytes: one written out.
        self.assertEqual(
            '{"align":2097152,"dev":"namespace1.0","devpath":"/dev/dax1.0",'
            '"label":"PIN","name":"ns3","numa_node":1,"size":2111832064,'
            '"uuid":"aa981cfa-f1ae-493e-81d5-5115202d5d35"}',
            _rig_handles(numa=True)[2],
        )


class AttachInfoLengthTest(base.TestCase):
    LONGEST = dict(
        dev='namespace99.99',
        region='region99',
        mode='devdax',
        name='n' * labels.MAX_NAME_LENGTH,
        size=99999999999999,  # ~91 TiB in one namespace
        uuid='80524f32-c5cb-4c21-bf6f-7613b982fbef',
        align=1 << 30,
        chardev='dax99.99',
        numa_node=99,
    )

    def test_longest_accepted_name_and_label_fit_cyborg(self):
        ns = inventory.Namespace(**self.LONGEST)
        info = planner.attach_info(ns, 'L' * labels.MAX_LABEL_LENGTH)
        self.assertLessEqual(len(info), planner.MAX_ATTACH_INFO_LENGTH)

    def test_fields_ndctl_does_not_show_are_left_out(self):
        ns = inventory.Namespace(
            **dict(self.LONGEST, uuid=None, numa_node=None, align=None)
        )
        info = json.loads(planner.attach_info(ns, 'SMALL'))
        self.assertEqual(
            ['dev', 'devpath', 'label', 'name', 'size'], sorted(info)
        )
        self.assertNotIn(None, info.values())

    def test_overlong_attach_info_is_refused(self):
        ns = inventory.Namespace(
            **dict(
                self.LONGEST,
                dev='namespace99999.99999',
                chardev='dax99999.99999',
                size=1 << 63,
            )
        )
        inv = inventory.Inventory(
            regions=(inventory.Region('region99'),), namespaces=(ns,)
        )
        label = 'L' * labels.MAX_LABEL_LENGTH
        result = planner.plan(inv, {label: (ns.name,)}, HOST)
        (refusal,) = result.refusals
        self.assertRegex(
            refusal.reason,
            r"attach_info would be 2\d\d characters, over "
            r"Cyborg's 255",
        )
        self.assertEqual((), result.devices)

    def test_plans_are_plain_data(self):
        result = _plan('SMALL:ns0')
        self.assertEqual(result, dataclasses.replace(result))
