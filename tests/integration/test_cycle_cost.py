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

"""What one agent cycle costs Cyborg's conductor, counted at two host sizes.

The counts (``pipeline.counting``: SQL statements and transactions on
Cyborg's engine, Cyborg's Placement requests) do not depend on the
machine, so these are assertions, not timings. With the whole patch
series (its report_data patch) a report that changes nothing costs the
same at any size, and a changed one costs that plus the change.
"""

import json
import os

import fixtures
from oslotest import base

from tests.integration import pipeline

# (regions, namespaces): one label per region, namespaces spread evenly.
SIZES = ((1, 3), (4, 40))
MAX_UNCHANGED_STATEMENTS = 8


class CycleCostTest(base.BaseTestCase):
    def setUp(self):
        super().setUp()
        self.backend = pipeline.shared_backend()
        self.directory = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.FakeLogger(name='cyborg', level='WARNING'))
        self.useFixture(
            fixtures.FakeLogger(name='cyborg_pmem', level='WARNING')
        )

    def _cycles(self, regions, namespaces, *listings):
        """Discover the synthetic host, then count one cycle per listing
        given (None: the same listing again). Returns the costs and what
        Cyborg and Placement held after the last one."""
        listing, pmem_namespaces = pipeline.synthetic_listing(
            regions, namespaces
        )
        host_config = os.path.join(self.directory, f'{regions}.conf')
        with open(host_config, 'w') as f:
            f.write(f'[pmem_devices]\npmem_namespaces = {pmem_namespaces}\n')
        with (
            pipeline.CyborgDatabase(self.backend) as db,
            pipeline.PlacementService() as placement,
            pipeline.CyborgHost(db, placement, host_config) as host,
        ):
            with pipeline.ndctl_output(listing):
                host.discover()
            self.assertEqual(namespaces, len(host.attach_handles()))
            costs = []
            for cycle_listing in listings:
                with (
                    pipeline.ndctl_output(cycle_listing or listing),
                    pipeline.counting(host) as cost,
                ):
                    host.discover()
                costs.append(cost)
            return costs, host.attach_handles(), host.placement_tree()

    def test_unchanged_cycle_costs_a_constant(self):
        costs = {}
        for regions, namespaces in SIZES:
            (cost,), _, _ = self._cycles(regions, namespaces, None)
            costs[(regions, namespaces)] = cost

        small, large = costs.values()
        self.assertEqual(small.statements, large.statements)
        self.assertEqual(small.transactions, large.transactions)
        self.assertEqual(small.placement, large.placement)
        self.assertLessEqual(large.total_statements, MAX_UNCHANGED_STATEMENTS)
        self.assertEqual(
            large.total_statements,
            large.statements['SELECT'],
            large.statements,
        )
        self.assertEqual({'read': 1, 'writer': 0}, large.transactions)
        # The compute node's provider: how the conductor notices that
        # Placement is down.
        self.assertEqual({'GET': 1}, large.placement)

    def test_namespace_gone_costs_the_change(self):
        results = {}
        for regions, namespaces in SIZES:
            listing, _ = pipeline.synthetic_listing(regions, namespaces)
            gone = f'ns{namespaces - 1}'
            results[(regions, namespaces)] = self._cycles(
                regions, namespaces, pipeline.without_namespaces(listing, gone)
            )

        costs = [cost for (cost,), _, _ in results.values()]
        small, large = costs
        # The host's read, one DELETE (the handle) and one locked read and
        # UPDATE (the deployable's count), at either size.
        self.assertEqual(small.statements, large.statements)
        self.assertEqual(
            {
                'SELECT': 5,
                'SELECT FOR UPDATE': 1,
                'INSERT': 0,
                'UPDATE': 1,
                'DELETE': 1,
            },
            large.statements,
        )
        self.assertEqual({'read': 1, 'writer': 2}, large.transactions)
        # The compute node, then the inventory's GET and PUT.
        self.assertEqual({'GET': 2, 'PUT': 1}, large.placement)

        for (regions, namespaces), (_, handles, tree) in results.items():
            names = {json.loads(h['attach_info'])['name'] for h in handles}
            self.assertEqual({f'ns{n}' for n in range(namespaces - 1)}, names)
            last = sorted(rp['name'] for rp in tree[1:])[-1]
            (provider,) = [rp for rp in tree if rp['name'] == last]
            (inventory,) = provider['inventories'].values()
            per_region = namespaces // regions
            self.assertEqual(per_region - 1, inventory['total'])
