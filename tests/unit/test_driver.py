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
from unittest import mock

from cyborg.accelerator.drivers import driver as cyborg_generic
from cyborg.common import constants
import cyborg.conf  # noqa: F401 - registers [DEFAULT] host, as in the agent
import ddt
import fixtures
from oslo_concurrency import processutils
from stevedore import driver as stevedore_driver

from cyborg_pmem import discovery
from cyborg_pmem import driver
from cyborg_pmem import exception
from cyborg_pmem import runner
from cyborg_pmem.cmd import discover
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

    def test_cli_json_is_what_the_driver_reports(self):
        # One mapping from the plan: the CLI prints the fields the driver
        # builds its Cyborg objects from.
        plan = discovery.Discovery.from_conf(driver.CONF.pmem_devices).run(
            'compute-0'
        )
        self.assertEqual(
            discover.plan_as_dict(plan)['devices'],
            [_as_fields(device) for device in _load().discover()],
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


def _as_fields(obj):
    """A Cyborg driver object's set fields, nested, as plain data."""
    if isinstance(obj, list):
        return [_as_fields(item) for item in obj]
    if not hasattr(obj, 'obj_attr_is_set'):
        return obj
    return {
        name: _as_fields(getattr(obj, name))
        for name in obj.fields
        if obj.obj_attr_is_set(name)
    }


class _PmemCyborgTestCase(base.TestCase):
    """The driver on whatever Cyborg is installed, its PMEM check passed:
    these tests are about our methods, not about the check."""

    def setUp(self):
        super().setUp()
        self.useFixture(
            fixtures.MockPatchObject(
                driver, 'missing_pmem_support', return_value=[]
            )
        )
        self.config.config(
            pmem_namespaces=['SMALL:ns0|ns1', 'LARGE:ns3', 'FS:ns4'],
            group='pmem_devices',
        )
        self.execute = self.mock_execute(
            return_value=(base.fixture_text('driver-listing.json'), '')
        )


class LoadTest(_PmemCyborgTestCase):
    def test_nothing_configured_loads_with_a_warning(self):
        # An empty option offers nothing, by design; it is most likely
        # forgotten, so the agent's log says so once, at load.
        self.config.config(pmem_namespaces=[], group='pmem_devices')
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        pmem_driver = _load()
        self.assertEqual(
            '[pmem_devices] pmem_namespaces is not set: intel_pmem_driver '
            'offers no PMEM namespace\n',
            log.output,
        )
        self.execute.return_value = ('', '')
        self.assertEqual([], pmem_driver.discover())

    def test_configured_loads_without_a_warning(self):
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        _load()
        self.assertEqual('', log.output)


@ddt.ddt
class CleanupAttachHandleTest(_PmemCyborgTestCase):
    """The contract with the contrib/cyborg patch: the agent calls
    ``cleanup_attach_handle(attach_type, attach_info)`` on unbind and marks
    the handle free only if it returns."""

    def setUp(self):
        super().setUp()
        self.driver = _load()
        self.handles = {
            json.loads(h.attach_info)['name']: h.attach_info
            for h in _plan_handles(self.driver)
        }
        self.execute.reset_mock()
        self.device = self.scrub_in_process()

    def test_signature_matches_cyborg_patch(self):
        import inspect

        self.assertEqual(
            ['self', 'attach_type', 'attach_info'],
            list(
                inspect.signature(
                    driver.IntelPMEMDriver.cleanup_attach_handle
                ).parameters
            ),
        )

    def test_zeroes_the_namespace_of_a_reported_handle(self):
        listing = base.fixture_text('driver-listing.json')
        self.execute.side_effect = [(listing, ''), ('', '')]
        self.assertIsNone(
            self.driver.cleanup_attach_handle('PMEM', self.handles['ns3'])
        )
        ndctl_call, daxio_call = self.execute.call_args_list
        self.assertEqual('ndctl', ndctl_call.args[0])
        self.assertEqual(('daxio', '-z', '-o', '/dev/dax1.0'), daxio_call.args)
        # 2111832064 bytes: 2 started GiB at the default 10 s, plus 60 s.
        self.assertEqual(80, daxio_call.kwargs['timeout'])
        self.device.assert_called_once_with('/dev/dax1.0')

    @ddt.data('PCI', 'MDEV', 'TEST_PCI')
    def test_ignores_other_attach_types(self, attach_type):
        self.assertIsNone(self.driver.cleanup_attach_handle(attach_type, '{}'))
        self.execute.assert_not_called()

    def test_refusal_raises_so_the_handle_stays_in_use(self):
        info = json.loads(self.handles['ns0'])
        info['devpath'] = '/dev/dax0.1'
        err = self.assertRaises(
            exception.ScrubRefused,
            self.driver.cleanup_attach_handle,
            'PMEM',
            json.dumps(info),
        )
        self.assertIn('is now at /dev/dax0.0', str(err))
        self.assertEqual(1, self.execute.call_count)  # ndctl, no daxio

    def test_daxio_failure_raises(self):
        listing = base.fixture_text('driver-listing.json')
        self.execute.side_effect = [
            (listing, ''),
            processutils.ProcessExecutionError(exit_code=1, stderr='boom'),
        ]
        self.assertRaises(
            exception.ScrubFailed,
            self.driver.cleanup_attach_handle,
            'PMEM',
            self.handles['ns0'],
        )


def _plan_handles(pmem_driver):
    """The attach handles discover() reports, as plain data (a stock
    Cyborg cannot build PMEM objects)."""
    plan = pmem_driver._discovery.run('compute-0')
    return [
        handle
        for device in plan.devices
        for deployable in device.deployables
        for handle in deployable.attach_handles
    ]


class GetStatsTest(_PmemCyborgTestCase):
    def test_health_from_one_ndctl_call(self):
        self.execute.return_value = (
            base.fixture_text('optane-dimms-regions-health.json'),
            '',
        )
        stats = _load().get_stats()
        self.execute.assert_called_once_with(
            'ndctl',
            'list',
            '--dimms',
            '--regions',
            '--health',
            timeout=30,
            on_execute=mock.ANY,
            preexec_fn=runner.own_process_group,
        )
        self.assertTrue(stats['health_available'])
        self.assertEqual('ok', stats['dimms']['nmem0']['health_state'])

    def test_never_raises(self):
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1, stderr='Permission denied'
        )
        stats = _load().get_stats()
        self.assertFalse(stats['health_available'])
        self.assertIn('Permission denied', stats['message'])
        self.assertEqual(1, log.output.count('PMEM health not available'))


AGENT_CALLS_CLEANUP = hasattr(
    cyborg_generic.GenericDriver, 'cleanup_attach_handle'
)


@unittest.skipUnless(
    CYBORG_KNOWS_PMEM and AGENT_CALLS_CLEANUP,
    'the installed Cyborg lacks the contrib/cyborg patch "Clean PMEM attach '
    'handles up before releasing them"',
)
class AgentCleanupContractTest(_PmemCyborgTestCase):
    """The patched Cyborg agent's RPC handler reaches our driver through
    stevedore, and our failure reaches it back."""

    def setUp(self):
        super().setUp()
        from cyborg.agent import manager

        # Only the RPC handler is exercised; it uses nothing __init__ sets.
        self.agent = manager.AgentManager.__new__(manager.AgentManager)
        self.scrub_in_process()
        plan = driver.discovery.Discovery.from_conf(
            driver.CONF.pmem_devices
        ).run('compute-0')
        self.attach_info = (
            plan.devices[0].deployables[0].attach_handles[0].attach_info
        )

    def test_unbind_rpc_zeroes_the_namespace(self):
        listing = self.execute.return_value
        self.execute.side_effect = [listing, ('', '')]
        self.agent.cleanup_attach_handle(
            None, 'intel_pmem_driver', 'PMEM', self.attach_info
        )
        self.assertEqual(
            ('daxio', '-z', '-o', '/dev/dax0.0'),
            self.execute.call_args.args,
        )

    def test_failure_propagates_to_the_rpc_caller(self):
        listing = self.execute.return_value
        self.execute.side_effect = [listing, FileNotFoundError(2, 'no')]
        self.assertRaises(
            exception.DaxioNotFound,
            self.agent.cleanup_attach_handle,
            None,
            'intel_pmem_driver',
            'PMEM',
            self.attach_info,
        )
