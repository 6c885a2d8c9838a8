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

"""The unprivileged half of scrubbing: which namespace, how long."""

import json
from unittest import mock

import ddt
from oslo_config import cfg

from cyborg_pmem import discovery
from cyborg_pmem import exception
from cyborg_pmem import privsep
from cyborg_pmem import scrub
from tests.unit import base

GIB = 1 << 30
# ns0 in the captured listing (tests/fixtures/ndctl/driver-listing.json)
NS0 = {
    'align': 2097152,
    'dev': 'namespace0.0',
    'devpath': '/dev/dax0.0',
    'label': 'SMALL',
    'name': 'ns0',
    'numa_node': 0,
    'size': 1054867456,
    'uuid': 'c12e20c1-95dd-4150-99ab-910aaa63fcd5',
}


def attach_info(**changes):
    info = dict(NS0, **changes)
    return json.dumps(info, sort_keys=True, separators=(',', ':'))


@ddt.ddt
class TimeoutTest(base.TestCase):
    @ddt.data(
        (0, 60),
        (None, 60),
        (1, 70),
        (GIB, 70),
        (GIB + 1, 80),
        (1054867456, 70),  # the rig's "1G" devdax namespace
        (100 * GIB, 1060),
        (3 * 1024 * GIB, 60 + 30720),
    )
    @ddt.unpack
    def test_scales_with_started_gib(self, size, expected):
        self.assertEqual(expected, scrub.scrub_timeout(size, 60, 10))

    def test_fractional_rate_rounds_up(self):
        self.assertEqual(5 + 2, scrub.scrub_timeout(3 * GIB, 5, 0.5))
        self.assertEqual(1, scrub.scrub_timeout(GIB, 1, 0))


@ddt.ddt
class ScrubberTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.execute = self.mock_execute(
            return_value=(base.fixture_text('driver-listing.json'), '')
        )
        self.zero = mock.patch.object(
            privsep, 'zero_devdax', autospec=True
        ).start()
        self.addCleanup(mock.patch.stopall)
        self.scrubber = scrub.Scrubber(
            discovery.Discovery(
                ['SMALL:ns0|ns1', 'LARGE:ns3', 'FS:ns4', 'GONE:ns9'],
                'ndctl',
                30,
            ),
            timeout_base=60,
            seconds_per_gib=10,
        )

    def test_find_by_name(self):
        target = self.scrubber.find_by_name('ns3', 'compute-0')
        self.assertEqual(
            ('ns3', '/dev/dax1.0', 2111832064),
            (target.name, target.devpath, target.size),
        )
        self.assertEqual(60 + 20, self.scrubber.timeout(target))
        # A fresh discovery: ndctl ran.
        self.execute.assert_called_once()

    @ddt.data(
        ('ns4', "it is not offered: namespace1.1 is in fsdax mode"),
        ('ns9', 'it is not offered: not found on this host'),
        ('ns5', 'it is not in [pmem_devices] pmem_namespaces'),
        ('../ns0', 'it is not in [pmem_devices] pmem_namespaces'),
    )
    @ddt.unpack
    def test_find_by_name_refusals(self, name, reason):
        err = self.assertRaises(
            exception.ScrubRefused,
            self.scrubber.find_by_name,
            name,
            'compute-0',
        )
        self.assertIn(f'refusing to scrub namespace {name!r}: ', str(err))
        self.assertIn(reason, str(err))

    def test_find_for_attach_info(self):
        target = self.scrubber.find_for_attach_info(attach_info(), 'compute-0')
        self.assertEqual(scrub.ScrubTarget.from_attach_info(NS0), target)

    @ddt.data(
        ('not json', 'attach_info is not a JSON object'),
        ('[1]', 'attach_info is not a JSON object'),
        (None, 'attach_info is not a JSON object'),
        (json.dumps({'devpath': '/dev/dax0.0'}), 'has no "name"'),
        (json.dumps({'name': 'ns0'}), 'has no "devpath"'),
        (attach_info(devpath='/dev/pmem0'), 'not a device-DAX path'),
        (attach_info(devpath='/dev/dax0.0x'), 'not a device-DAX path'),
        (
            attach_info(devpath='/dev/../dev/dax0.0'),
            'not a device-DAX path',
        ),
        # the namespace moved: dax0.1 is now someone else's
        (attach_info(devpath='/dev/dax0.1'), 'is now at /dev/dax0.0'),
        (attach_info(uuid='0' * 8), 'the namespace was re-created'),
        (attach_info(name='ns4'), 'not offered: namespace1.1 is in'),
        (attach_info(name='ns7'), 'not in [pmem_devices]'),
    )
    @ddt.unpack
    def test_attach_info_refusals(self, info, reason):
        err = self.assertRaises(
            exception.ScrubRefused,
            self.scrubber.find_for_attach_info,
            info,
            'compute-0',
        )
        self.assertIn(reason, str(err))
        self.assertNotIn('\n', str(err))
        self.zero.assert_not_called()

    def test_a_devpath_ndctl_reports_oddly_is_refused(self):
        listing = base.fixture_json('driver-listing.json')
        for region in listing['regions']:
            for namespace in region.get('namespaces', []):
                if namespace.get('name') == 'ns0':
                    namespace['daxregion']['devices'][0]['chardev'] = (
                        'dax0.0/../../etc'
                    )
        self.execute.return_value = (json.dumps(listing), '')
        err = self.assertRaises(
            exception.ScrubRefused,
            self.scrubber.find_by_name,
            'ns0',
            'compute-0',
        )
        self.assertIn('not a device-DAX path', str(err))

    def test_scrub_calls_the_privileged_function_with_scaled_timeout(self):
        target = self.scrubber.find_by_name('ns3', 'compute-0')
        seconds = self.scrubber.scrub(target)
        self.zero.assert_called_once_with('/dev/dax1.0', 80)
        self.assertGreaterEqual(seconds, 0)

    def test_scrub_failure_propagates(self):
        self.zero.side_effect = exception.ScrubTimeout(
            devpath='/dev/dax1.0', timeout=80
        )
        target = self.scrubber.find_by_name('ns3', 'compute-0')
        self.assertRaises(exception.ScrubTimeout, self.scrubber.scrub, target)

    def test_discovery_failure_propagates(self):
        self.execute.side_effect = FileNotFoundError(2, 'no ndctl')
        self.assertRaises(
            exception.NdctlNotFound,
            self.scrubber.find_for_attach_info,
            attach_info(),
            'compute-0',
        )

    def test_from_conf(self):
        self.config.config(
            pmem_namespaces=['SMALL:ns0'],
            scrub_timeout_base=5,
            scrub_seconds_per_gib=1.5,
            group='pmem_devices',
        )
        scrubber = scrub.Scrubber.from_conf(cfg.CONF.pmem_devices)
        self.assertEqual(
            (5, 1.5), (scrubber.timeout_base, scrubber.seconds_per_gib)
        )
        self.assertEqual({'SMALL': ('ns0',)}, scrubber.discovery.labels)
