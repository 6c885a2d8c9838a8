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

"""The Cyborg adapter, against the real openstack-cyborg objects."""

import json
import logging
import unittest

from cyborg.common import constants
import cyborg.conf  # noqa: F401 - registers [DEFAULT] host, as in the agent
import fixtures
from stevedore import driver as stevedore_driver

from cyborg_pmem import driver
from cyborg_pmem import exception
from tests.unit import base

CYBORG_KNOWS_PMEM = not driver.missing_pmem_support()
NEEDS_PMEM_CYBORG = unittest.skipUnless(
    CYBORG_KNOWS_PMEM,
    'the installed Cyborg lacks the PMEM types (contrib/cyborg patches)',
)


def _load():
    """Load the driver exactly as cyborg-agent's ResourceTracker does."""
    return stevedore_driver.DriverManager(
        namespace='cyborg.accelerator.driver',
        name='intel_pmem_driver',
        invoke_on_load=True,
    ).driver


class SupportCheckTest(base.TestCase):
    def _patch_constants(self, **values):
        for name, value in values.items():
            self.useFixture(
                fixtures.MonkeyPatch(f'cyborg.common.constants.{name}', value)
            )

    def test_stock_cyborg_is_refused(self):
        self._patch_constants(
            DEVICE_TYPE=('GPU', 'FPGA'),
            ATTACH_HANDLE_TYPES=('PCI', 'MDEV'),
            CPID_TYPE='PCI',
        )
        self.assertEqual(
            ['device type', 'attach handle type', 'control path type'],
            driver.missing_pmem_support(),
        )
        err = self.assertRaises(exception.CyborgLacksPmem, _load)
        self.assertIn(
            'does not know the PMEM type (device type, attach '
            'handle type, control path type)',
            str(err),
        )
        self.assertNotIn('\n', str(err))

    def test_cpid_substring_bug_is_not_mistaken_for_support(self):
        self._patch_constants(
            DEVICE_TYPE=('PMEM',),
            ATTACH_HANDLE_TYPES=('PMEM',),
            CPID_TYPE='PCI,PMEM',
        )
        self.assertEqual(['control path type'], driver.missing_pmem_support())

    def test_patched_constants_are_accepted(self):
        self._patch_constants(
            DEVICE_TYPE=('GPU', 'PMEM'),
            ATTACH_HANDLE_TYPES=('PCI', 'PMEM'),
            CPID_TYPE=('PCI', 'PMEM'),
        )
        self.assertEqual([], driver.missing_pmem_support())

    def test_installed_cyborg_matches_its_constants(self):
        self.assertEqual(CYBORG_KNOWS_PMEM, 'PMEM' in constants.DEVICE_TYPE)


@NEEDS_PMEM_CYBORG
class DriverTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.config.config(host='compute-0')
        self.config.config(
            pmem_namespaces=['SMALL:ns0|ns1', 'LARGE:ns3'],
            group='pmem_devices',
        )
        self.execute = self.mock_execute(
            return_value=(base.fixture_text('driver-listing.json'), '')
        )

    def test_loads_through_the_entry_point(self):
        self.assertIsInstance(_load(), driver.IntelPMEMDriver)

    def test_bad_configuration_refuses_to_load(self):
        self.config.config(pmem_namespaces=['SMALL'], group='pmem_devices')
        self.assertRaises(exception.InvalidConfig, _load)

    def test_discover_builds_cyborg_objects(self):
        devices = _load().discover()
        self.assertEqual(2, len(devices))
        device = devices[0]
        self.assertEqual(
            ('PMEM', '0x8680', False),
            (device.type, device.vendor, device.stub),
        )
        self.assertEqual('PMEM', device.controlpath_id.cpid_type)
        (deployable,) = device.deployable_list
        self.assertEqual('intel_pmem_driver', deployable.driver_name)
        self.assertEqual(2, deployable.num_accelerators)
        self.assertTrue(deployable.name.startswith('compute-0_iset-'))
        self.assertEqual(
            [
                ('rc', 'CUSTOM_PMEM_NAMESPACE_SMALL'),
                ('trait0', 'CUSTOM_PMEM_NAMESPACE_SMALL'),
                ('trait1', 'OWNER_CYBORG'),
            ],
            [(a.key, a.value) for a in deployable.attribute_list],
        )
        handles = deployable.attach_handle_list
        self.assertEqual(
            [('PMEM', False)] * 2, [(h.attach_type, h.in_use) for h in handles]
        )
        self.assertEqual(
            ['/dev/dax0.0', '/dev/dax0.1'],
            [json.loads(h.attach_info)['devpath'] for h in handles],
        )
        # Every field the conductor reads is set (no lazy-load failure).
        for obj in [
            device,
            device.controlpath_id,
            deployable,
            *handles,
            *deployable.attribute_list,
        ]:
            self.assertEqual(
                [],
                [
                    f
                    for f in obj.fields
                    if not obj.obj_attr_is_set(f)
                    and not obj.fields[f].nullable
                ],
            )

    def test_discover_is_deterministic(self):
        first = [d.obj_to_primitive() for d in _load().discover()]
        second = [d.obj_to_primitive() for d in _load().discover()]
        self.assertEqual(first, second)

    def test_discover_raises_on_tool_failure(self):
        self.execute.side_effect = FileNotFoundError(2, 'no ndctl')
        self.assertRaises(exception.NdctlNotFound, _load().discover)

    def test_update_is_not_supported(self):
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        self.assertFalse(_load().update('cpid', '/tmp/fw.bin'))
        self.assertIn('cannot update firmware', log.output)

    def test_get_stats(self):
        self.assertEqual({}, _load().get_stats())
