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

import logging

import ddt
import fixtures

from cyborg_pmem import discovery
from cyborg_pmem import exception
from tests.unit import base


@ddt.ddt
class DiscoveryTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.execute = self.mock_execute()
        self.log = self.useFixture(
            fixtures.FakeLogger(name='cyborg_pmem', level=logging.DEBUG)
        )

    def _discovery(self, config='SMALL:ns0|ns1|ns2,LARGE:ns3|ns9'):
        return discovery.Discovery(config, 'ndctl', 30)

    def test_runs_ndctl_once_and_plans(self):
        self.execute.return_value = (
            base.fixture_text('driver-listing.json'),
            '',
        )
        result = self._discovery().run('compute-0')
        self.assertEqual(1, self.execute.call_count)
        self.assertEqual({'SMALL': 2, 'LARGE': 1}, result.offered())
        self.assertEqual(['ns2', 'ns9'], [r.name for r in result.refusals])

    def test_logs_for_3am(self):
        self.execute.return_value = (
            base.fixture_text('driver-listing.json'),
            '',
        )
        self._discovery().run('compute-0')
        lines = self.log.output.splitlines()
        self.assertIn(
            "Not offering PMEM namespace 'ns2' (label 'SMALL'): "
            'namespace0.2 is disabled (ndctl enable-namespace namespace0.2)',
            lines,
        )
        self.assertIn(
            'PMEM discovery: 2 region(s), 2 reported, SMALL=2, LARGE=1 '
            'offered, 2 refused',
            lines,
        )
        self.assertTrue(
            any(line.startswith("Ran ['ndctl', 'list'") for line in lines),
            lines,
        )

    def test_ndctl_failure_is_raised_and_timed_in_the_log(self):
        self.execute.side_effect = FileNotFoundError(2, 'nope')
        self.assertRaises(exception.NdctlNotFound, self._discovery().run, 'h')
        self.assertRegex(
            self.log.output,
            r"Running \['ndctl', 'list', .*\] failed after \d+\.\d{3} s",
        )
        # Nothing is reported as discovered.
        self.assertNotIn('PMEM discovery:', self.log.output)

    def test_saved_listing_skips_ndctl(self):
        result = self._discovery().run(
            'h', listing=base.fixture_text('driver-listing.json')
        )
        self.execute.assert_not_called()
        self.assertEqual(2, len(result.devices))

    def test_configuration_is_checked_when_built(self):
        self.assertRaises(exception.InvalidConfig, self._discovery, 'bad')
        self.execute.assert_not_called()

    @ddt.data('{"truncated": [', 'garbage', '')
    def test_tool_failure_raises_never_empty(self, stdout):
        self.execute.return_value = (stdout, '')
        self.assertRaises(exception.PmemError, self._discovery().run, 'h')

    def test_nothing_configured_reports_nothing_without_error(self):
        self.execute.return_value = ('', '')
        result = self._discovery([]).run('h')
        self.assertEqual((), result.devices)
        self.assertIn('none offered', self.log.output)
