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

"""The host changes between discoveries (the failure rules in
doc/source/contributor/design.rst).

One driver instance, configured ``SMALL:ns0|ns1|ns2,LARGE:ns3|ns7``,
discovers after each step of guest_run.mutations(): ns2 enabled, ns7
created, ns1 destroyed, ns0 renamed, ns7 disabled, the nvdimm stack taken
down (NFIT unbound) and brought back, every region disabled. A namespace
that goes away is dropped with a WARNING naming it, and everything else
stays exactly as it was; a host with no usable region makes discover()
raise instead of reporting nothing.
"""

from cyborg_pmem import inventory
from tests.functional import base

SMALL = 'CUSTOM_PMEM_NAMESPACE_SMALL'
LARGE = 'CUSTOM_PMEM_NAMESPACE_LARGE'


class HostChangesTest(base.TestCase):
    def setUp(self):
        super().setUp()
        mutations = self.results['mutations']
        self.assertNoError(mutations, 'the host changes phase')
        self.steps = {step['name']: step for step in mutations['steps']}
        for step in mutations['steps']:
            self.assertNoError(step, f'step {step["name"]}')

    def step(self, name):
        step = self.steps[name]
        for command in step['commands']:
            self.assertEqual(0, command['rc'], command)
        return step

    def offered(self, name):
        step = self.step(name)
        self.assertNoError(step['driver'], f'discover() after {name}')
        return base.handles(step['driver']['devices'])

    def assertDropped(self, before, after, dropped, reason):
        """``dropped`` left the report with a WARNING naming it; every
        other namespace and every device is reported exactly as before."""
        old, new = self.offered(before), self.offered(after)
        self.assertEqual(set(old) - {dropped}, set(new))
        self.assertIn(dropped, old)
        for name, found in new.items():
            self.assertEqual(old[name], found, name)
        warning = [
            r['message']
            for r in self.step(after)['driver']['log']
            if r['level'] == 'WARNING' and f"'{dropped}'" in r['message']
        ]
        self.assertEqual(1, len(warning), warning)
        self.assertIn(reason, warning[0])
        self.assertSameDevices(before, after)

    def assertSameDevices(self, before, after):
        """Devices still reported keep cpid_info and deployable names."""
        old = base.by_cpid(self.step(before)['driver']['devices'])
        new = base.by_cpid(self.step(after)['driver']['devices'])
        self.assertTrue(set(new) <= set(old), (set(old), set(new)))
        for cpid, device in new.items():
            self.assertEqual(
                [d['name'] for d in old[cpid]['deployable_list']],
                [d['name'] for d in device['deployable_list']],
            )

    def test_every_step_matches_the_kernel(self):
        for name, step in self.steps.items():
            listing = step['listing']
            self.assertEqual(0, listing['rc'], (name, listing['stderr']))
            # ndctl's real output at each step parses.
            parsed = inventory.parse_listing(listing['stdout'])
            self.assertEqual(
                set(step['sysfs']['regions']),
                {r.dev for r in parsed.regions},
                name,
            )
            if 'error' in step['driver']:
                continue
            for ns_name, (_, _, info) in self.offered(name).items():
                kernel = step['sysfs']['namespaces'][info['dev']]
                dax = step['sysfs']['dax'][info['devpath'][len('/dev/') :]]
                self.assertEqual(
                    (ns_name, kernel['holder_uuid'], kernel['holder'])
                    + (int(dax['size']),),
                    (kernel['alt_name'], info['uuid'], dax['parent'])
                    + (info['size'],),
                    name,
                )

    def test_baseline_refuses_the_disabled_and_the_missing(self):
        self.assertEqual(
            {'ns0': ('region0', SMALL), 'ns1': ('region0', SMALL)}
            | {'ns3': ('region1', LARGE)},
            {n: found[:2] for n, found in self.offered('baseline').items()},
        )
        self.assertEqual(
            ['ns2', 'ns7'],
            base.warned_names(self.step('baseline')['driver']['log']),
        )
        self.assertEqual(1, self.step('baseline')['cli']['rc'])

    def test_enabling_a_namespace_adds_it_and_changes_nothing_else(self):
        old, new = self.offered('baseline'), self.offered('enable_ns2')
        self.assertEqual(('region0', SMALL), new.pop('ns2')[:2])
        self.assertEqual(old, new)
        self.assertSameDevices('baseline', 'enable_ns2')

    def test_creating_a_namespace_adds_it_and_changes_nothing_else(self):
        old, new = self.offered('enable_ns2'), self.offered('create_ns7')
        self.assertEqual(('region1', LARGE), new.pop('ns7')[:2])
        self.assertEqual(old, new)
        self.assertSameDevices('enable_ns2', 'create_ns7')
        step = self.step('create_ns7')
        self.assertEqual([], base.warned_names(step['driver']['log']))
        self.assertEqual((0, ''), (step['cli']['rc'], step['cli']['stderr']))

    def test_destroyed_namespace_is_dropped_with_a_warning(self):
        self.assertDropped(
            'create_ns7', 'destroy_ns1', 'ns1', 'not found on this host'
        )
        cli = self.step('destroy_ns1')['cli']
        self.assertEqual(1, cli['rc'])
        self.assertEqual(
            [
                'cyborg-pmem-discover: refused namespace '
                "'ns1' (label 'SMALL'): not found on this host"
            ],
            cli['stderr'].splitlines(),
        )

    def test_renamed_namespace_is_dropped_with_a_warning(self):
        self.assertDropped(
            'destroy_ns1', 'rename_ns0', 'ns0', 'not found on this host'
        )
        # The rename really happened in place: same device, new name.
        dev = self.offered('destroy_ns1')['ns0'][2]['dev']
        kernel = self.step('rename_ns0')['sysfs']['namespaces'][dev]
        self.assertEqual('ns0old', kernel['alt_name'])

    def test_disabled_namespace_is_dropped_with_a_warning(self):
        self.assertDropped('rename_ns0', 'disable_ns7', 'ns7', 'is disabled')

    def test_nvdimm_stack_down_raises_instead_of_reporting_nothing(self):
        step = self.step('stack_down')
        self.assertEqual('', step['listing']['stdout'])
        self.assertEqual('NvdimmStackDown', step['driver']['error']['type'])
        self.assertNotIn('devices', step['driver'])
        cli = step['cli']
        self.assertEqual(2, cli['rc'])
        self.assertEqual(1, len(cli['stderr'].splitlines()), cli['stderr'])
        self.assertRegex(cli['stderr'], 'shows no (enabled )?PMEM region')

    def test_devices_keep_their_identity_when_the_stack_comes_back(self):
        # Re-probing the bus may renumber namespaces (and so change dev
        # and devpath), but a device stays the same region.
        self.assertEqual(
            set(base.by_cpid(self.step('disable_ns7')['driver']['devices'])),
            set(base.by_cpid(self.step('stack_up')['driver']['devices'])),
        )
        self.assertSameDevices('create_ns7', 'stack_up')

    def test_all_regions_disabled_raises_instead_of_reporting_nothing(self):
        step = self.step('regions_disabled')
        # ndctl still lists the regions (--idle), without namespaces.
        parsed = inventory.parse_listing(step['listing']['stdout'])
        self.assertEqual(2, len(parsed.regions))
        self.assertEqual(0, len(parsed.namespaces))
        self.assertEqual(
            'NvdimmStackDown',
            step['driver'].get('error', {}).get('type'),
            step['driver'].get('log'),
        )
        self.assertEqual(2, step['cli']['rc'], step['cli']['stderr'])
