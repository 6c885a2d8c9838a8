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

import json
import logging

import ddt
import fixtures
from oslo_concurrency import processutils

from cyborg_pmem import health
from tests.unit import base

OPTANE = 'optane-dimms-regions-health.json'


@ddt.ddt
class StatsFromListingTest(base.TestCase):
    def test_real_hardware_shapes(self):
        stats = health.stats_from_listing(base.fixture_text(OPTANE))
        self.assertTrue(stats['health_available'])
        self.assertIsNone(stats['message'])
        self.assertEqual(
            ['nmem0', 'nmem1', 'nmem2', 'nmem3', 'nmem4'],
            list(stats['dimms']),
        )
        self.assertEqual(
            {
                'id': '8089-a2-1836-0000214e',
                'region': 'region0',
                'health_state': 'ok',
                'temperature_celsius': 31.0,
                'spares_percentage': 100,
                'shutdown_state': 'clean',
                'shutdown_count': 4,
            },
            stats['dimms']['nmem0'],
        )
        self.assertEqual(
            {
                'id': '8089-a2-1836-0000214f',
                'region': 'region0',
                'health_state': 'non-critical',
                'temperature_celsius': 48.0,
                'spares_percentage': 42,
                'life_used_percentage': 7,
                'shutdown_state': 'dirty',
                'shutdown_count': 9,
            },
            stats['dimms']['nmem1'],
        )
        # NVDIMM-N reports 255.0 degrees; it is passed on, not judged.
        self.assertEqual(255.0, stats['dimms']['nmem2']['temperature_celsius'])
        self.assertNotIn('shutdown_count', stats['dimms']['nmem2'])
        self.assertEqual(
            {
                'id': '8089-a2-1836-00002150',
                'region': 'region1',
                'health_state': 'unknown',
            },
            stats['dimms']['nmem3'],
        )
        # No health interface at all: only identity.
        self.assertEqual(
            {'id': '8680-58341200', 'region': 'region2'},
            stats['dimms']['nmem4'],
        )

    def test_region_is_its_worst_dimm(self):
        stats = health.stats_from_listing(base.fixture_text(OPTANE))
        self.assertEqual(
            {
                'region0': {
                    'dimms': ['nmem0', 'nmem1'],
                    'health_state': 'non-critical',
                },
                # one DIMM ok, one unread: never "ok"
                'region1': {
                    'dimms': ['nmem2', 'nmem3'],
                    'health_state': 'unknown',
                },
                'region2': {'dimms': ['nmem4'], 'health_state': 'unknown'},
            },
            stats['regions'],
        )

    @ddt.data(
        (['ok', 'ok'], 'ok'),
        (['ok', 'non-critical'], 'non-critical'),
        (['non-critical', 'unknown'], 'unknown'),
        (['unknown', 'critical'], 'critical'),
        (['critical', 'fatal', 'ok'], 'fatal'),
        (['ok', 'something-new'], 'unknown'),
        ([], 'unknown'),
    )
    @ddt.unpack
    def test_severity_order(self, states, worst):
        self.assertEqual(worst, health._worst(states))

    def test_qemu_nvdimm_has_no_health(self):
        stats = health.stats_from_listing(
            base.fixture_text('dimms-regions-health.json')
        )
        self.assertFalse(stats['health_available'])
        self.assertEqual(health.NO_HEALTH, stats['message'])
        self.assertEqual(
            {
                'nmem0': {'id': '8680-56341200', 'region': 'region0'},
                'nmem1': {'id': '8680-57341200', 'region': 'region1'},
            },
            stats['dimms'],
        )

    def test_dimms_only_listing(self):
        # The shape of "ndctl list -D -H": no regions to map to.
        stats = health.stats_from_listing(
            base.fixture_text('dimms-health.json')
        )
        self.assertEqual({}, stats['regions'])
        self.assertIsNone(stats['dimms']['nmem0']['region'])

    def test_without_root_every_dimm_is_unknown(self):
        listing = base.fixture_json(OPTANE)
        for dimm in listing['dimms']:
            dimm['health'] = {'health_state': 'unknown'}
        stats = health.stats_from_listing(json.dumps(listing))
        self.assertFalse(stats['health_available'])
        self.assertEqual(health.UNREADABLE, stats['message'])

    def test_odd_values_are_dropped(self):
        listing = {
            'dimms': [
                {
                    'dev': 'nmem0',
                    'health': {
                        'health_state': 'ok',
                        'temperature_celsius': {'nested': 1},
                        'spares_percentage': [1],
                        'shutdown_count': None,
                    },
                }
            ]
        }
        stats = health.stats_from_listing(json.dumps(listing))
        self.assertEqual(
            {'id': None, 'region': None, 'health_state': 'ok'},
            stats['dimms']['nmem0'],
        )

    def test_no_dimms(self):
        stats = health.stats_from_listing('')
        self.assertEqual('ndctl shows no DIMMs', stats['message'])


@ddt.ddt
class CollectTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.execute = self.mock_execute()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))

    def test_one_call(self):
        self.execute.return_value = (base.fixture_text(OPTANE), '')
        stats = health.collect('/usr/bin/ndctl', 9)
        self.assertEqual(
            ('/usr/bin/ndctl', 'list', '--dimms', '--regions', '--health'),
            self.execute.call_args.args,
        )
        self.assertEqual(9, self.execute.call_args.kwargs['timeout'])
        self.assertTrue(stats['health_available'])
        self.assertEqual('', self.log.output)

    @ddt.data(
        (FileNotFoundError(2, 'no'), "ndctl executable 'ndctl' not found"),
        (
            processutils.ProcessExecutionError(
                exit_code=1, stderr='Permission denied\n'
            ),
            'failed (exit status 1): Permission denied',
        ),
        (None, 'unexpected ndctl list output'),
    )
    @ddt.unpack
    def test_failures_never_raise(self, side_effect, message):
        self.execute.side_effect = side_effect
        self.execute.return_value = ('{not json', '')
        stats = health.collect('ndctl', 30)
        self.assertFalse(stats['health_available'])
        self.assertIn(message, stats['message'])
        self.assertEqual({}, stats['dimms'])

    def test_unavailable_health_warns_once(self):
        self.execute.return_value = (
            base.fixture_text('dimms-regions-health.json'),
            '',
        )
        health.collect('ndctl', 30)
        self.assertEqual(1, self.log.output.count('PMEM health not available'))

    def test_saved_listing_runs_nothing(self):
        stats = health.collect('ndctl', 30, listing=base.fixture_text(OPTANE))
        self.execute.assert_not_called()
        self.assertTrue(stats['health_available'])
