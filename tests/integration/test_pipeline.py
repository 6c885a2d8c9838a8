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

"""The driver through the real Cyborg agent, conductor, DB and Placement.

See tests/integration/pipeline.py for what is real (everything but ndctl,
Placement's authentication and Nova). The database is MariaDB when one is
reachable (``$CYBORG_PMEM_DB_URL`` or a local server), else sqlite;
``tox -e integration`` prints which.
"""

import json
import os
from unittest import mock
import uuid

import fixtures
from oslotest import base

from cyborg_pmem import exception
from cyborg_pmem import labels
from cyborg_pmem import planner
from tests import fixtures as ndctl_fixtures
from tests.integration import pipeline

HOSTNAME = 'compute-0'
SMALL = 'CUSTOM_PMEM_NAMESPACE_SMALL'
LARGE = 'CUSTOM_PMEM_NAMESPACE_LARGE'
LISTING = ndctl_fixtures.ndctl_text('driver-listing.json')
# SMALL:ns0|ns1,LARGE:ns3 on the host above.
HOST_CONFIG = os.path.join(pipeline.SAMPLE_HOST, 'cyborg.conf')


without = pipeline.without_namespaces


def handle_names(handles):
    return sorted(json.loads(h['attach_info'])['name'] for h in handles)


class PipelineTestCase(base.BaseTestCase):
    host_config = HOST_CONFIG
    fresh_db = False

    def setUp(self):
        super().setUp()
        self.backend = pipeline.shared_backend()
        self.db = self.useFixture(
            pipeline.CyborgDatabase(self.backend, fresh=self.fresh_db)
        )
        self.placement = self.useFixture(pipeline.PlacementService())
        self.host = self.useFixture(
            pipeline.CyborgHost(
                self.db, self.placement, self.host_config, HOSTNAME
            )
        )
        self.logs = self.useFixture(
            fixtures.FakeLogger(name='cyborg', level='WARNING')
        )
        self.pmem_logs = self.useFixture(
            fixtures.FakeLogger(name='cyborg_pmem', level='WARNING')
        )

    def discover(self, listing=LISTING):
        with pipeline.ndctl_output(listing) as execute:
            self.host.discover()
        # One ndctl run per discovery, never through a shell.
        execute.assert_called_once()
        self.assertEqual('ndctl', execute.call_args.args[0])
        self.assertNotIn('shell', execute.call_args.kwargs)
        return execute

    def deployable(self, label):
        (dep,) = [
            d
            for d in self.host.deployables()
            if d['name'].endswith('_' + label)
        ]
        return dep

    def handles_of(self, label):
        dep = self.deployable(label)
        return [
            h
            for h in self.host.attach_handles()
            if h['deployable_id'] == dep['id']
        ]

    def provider(self, name):
        (rp,) = [p for p in self.host.placement_tree() if p['name'] == name]
        return rp


class FirstDiscoveryTest(PipelineTestCase):
    def test_cyborg_stores_devices_deployables_and_handles(self):
        self.discover()

        devices = self.host.devices()
        self.assertEqual(['PMEM', 'PMEM'], [d['type'] for d in devices])
        self.assertEqual({HOSTNAME}, {d['hostname'] for d in devices})
        self.assertEqual(
            ['PMEM', 'PMEM'],
            [c['cpid_type'] for c in self.host.controlpath_ids()],
        )
        deployables = self.host.deployables()
        # One deployable per (region, label), named after the host.
        self.assertEqual(
            [
                (f'{HOSTNAME}_iset-002468ac00123456_SMALL', 2),
                (f'{HOSTNAME}_iset-002468ae00123457_LARGE', 1),
            ],
            sorted((d['name'], d['num_accelerators']) for d in deployables),
        )
        self.assertEqual(
            {'intel_pmem_driver'}, {d['driver_name'] for d in deployables}
        )
        handles = self.host.attach_handles()
        self.assertEqual({'PMEM'}, {h['attach_type'] for h in handles})
        self.assertEqual({0}, {int(h['in_use']) for h in handles})
        self.assertEqual(
            ['ns0', 'ns1'], handle_names(self.handles_of('SMALL'))
        )
        (large,) = self.handles_of('LARGE')
        self.assertEqual(
            {
                'align': 2097152,
                'dev': 'namespace1.0',
                'devpath': '/dev/dax1.0',
                'label': 'LARGE',
                'name': 'ns3',
                'numa_node': 1,
                'size': 2111832064,
                'uuid': 'aa981cfa-f1ae-493e-81d5-5115202d5d35',
            },
            json.loads(large['attach_info']),
        )
        attributes = {
            (a['deployable_id'], a['key']): a['value']
            for a in self.host.attributes()
        }
        small = self.deployable('SMALL')
        self.assertEqual(SMALL, attributes[(small['id'], 'rc')])

    def test_placement_holds_child_providers_with_inventory_and_traits(self):
        self.discover()

        self.assertEqual([LARGE, SMALL], self.placement.resource_classes())
        tree = self.host.placement_tree()
        root, *children = tree
        self.assertEqual(HOSTNAME, root['name'])
        self.assertEqual(self.host.compute_node, root['uuid'])
        by_name = {d['name']: d for d in self.host.deployables()}
        self.assertEqual(sorted(by_name), [c['name'] for c in children])
        for child in children:
            dep = by_name[child['name']]
            # Cyborg records the provider it created on the deployable.
            self.assertEqual(dep['rp_uuid'], child['uuid'])
            self.assertEqual(root['uuid'], child['parent'])
            (rc,) = child['inventories']
            self.assertEqual(
                dep['num_accelerators'], child['inventories'][rc]['total']
            )
            self.assertEqual(
                dep['num_accelerators'], child['inventories'][rc]['max_unit']
            )
            self.assertEqual(sorted([rc, 'OWNER_CYBORG']), child['traits'])
        small = self.provider(self.deployable('SMALL')['name'])
        self.assertEqual(2, small['inventories'][SMALL]['total'])

    def test_second_identical_discovery_writes_nothing(self):
        self.discover()
        rows = self.host.snapshot()
        tree = self.host.placement_tree()
        writes = len(self.placement.cyborg_writes())

        self.discover()

        self.assertEqual([], self.placement.cyborg_writes()[writes:])
        self.assertEqual(tree, self.host.placement_tree())
        self.assertEqual(rows, self.host.snapshot())


class ChangesTest(PipelineTestCase):
    def test_removed_namespace_removes_only_its_handle(self):
        self.discover()
        before = {
            json.loads(h['attach_info'])['name']: h
            for h in self.host.attach_handles()
        }
        devices = self.host.devices()

        self.discover(without(LISTING, 'ns1'))

        after = {
            json.loads(h['attach_info'])['name']: h
            for h in self.host.attach_handles()
        }
        # The same rows for the namespaces still there, ns1's gone.
        self.assertEqual({'ns0': before['ns0'], 'ns3': before['ns3']}, after)
        self.assertEqual(devices, self.host.devices())
        small = self.deployable('SMALL')
        self.assertEqual(1, small['num_accelerators'])
        rp = self.provider(small['name'])
        self.assertEqual(1, rp['inventories'][SMALL]['total'])
        self.assertIn(
            "Not offering PMEM namespace 'ns1' (label 'SMALL'): not found "
            'on this host',
            self.pmem_logs.output,
        )

    def test_ndctl_failing_changes_nothing(self):
        self.discover()
        rows = self.host.snapshot()
        tree = self.host.placement_tree()
        writes = len(self.placement.cyborg_writes())
        calls = list(self.host.rpc_calls)

        with pipeline.ndctl_output(error=pipeline.ndctl_failure()):
            self.assertRaises(exception.NdctlFailed, self.host.discover)

        # Nothing reported, so nothing changed anywhere.
        self.assertEqual(calls, self.host.rpc_calls)
        self.assertEqual([], self.placement.cyborg_writes()[writes:])
        self.assertEqual(rows, self.host.snapshot())
        self.assertEqual(tree, self.host.placement_tree())

    def test_no_region_at_all_changes_nothing(self):
        # The nvdimm modules are not loaded: ndctl prints nothing.
        self.discover()
        rows = self.host.snapshot()
        with pipeline.ndctl_output(''):
            self.assertRaises(exception.NvdimmStackDown, self.host.discover)
        self.assertEqual(rows, self.host.snapshot())
        self.assertEqual(2, len(self.host.placement_tree()) - 1)


class BindTest(PipelineTestCase):
    def setUp(self):
        super().setUp()
        self.discover()
        self.profile = self.host.create_device_profile(
            'pmem-small',
            {
                f'resources:{SMALL}': '1',
                f'trait:{SMALL}': 'required',
            },
        )

    def test_bind_picks_a_pmem_handle_and_unbind_frees_it(self):
        instance = str(uuid.uuid4())
        small = self.deployable('SMALL')

        arq_uuid, rp_uuid = self.host.bind(self.profile, instance)

        # Placement offered the SMALL deployable's provider.
        self.assertEqual(small['rp_uuid'], rp_uuid)
        arq = self.host.arq(arq_uuid)
        self.assertEqual('Bound', arq.arq.state)
        self.assertEqual('PMEM', arq.arq.attach_handle_type)
        (bound,) = [h for h in self.host.attach_handles() if h['in_use']]
        # What Nova receives: attach_info as a dict of strings.
        self.assertEqual(
            {k: str(v) for k, v in json.loads(bound['attach_info']).items()},
            arq.arq.attach_handle_info,
        )
        self.assertEqual(small['id'], bound['deployable_id'])
        self.assertIn(json.loads(bound['attach_info'])['name'], ('ns0', 'ns1'))
        self.assertEqual(
            [(instance, [(arq_uuid, 'completed')])],
            self.host.nova_notifications,
        )
        self.assertEqual(1, self.provider(small['name'])['usages'][SMALL])

        with (
            pipeline.ndctl_output(LISTING),
            pipeline.scrub_boundary() as zero,
        ):
            self.host.unbind(instance)

        self.assertEqual(
            [], [h for h in self.host.attach_handles() if h['in_use']]
        )
        # The unbind went through the agent on the ARQ's host, which
        # loaded intel_pmem_driver to clean the namespace up.
        self.assertEqual(1, self.host.rpc_calls.count('cleanup_attach_handle'))
        # The driver wiped exactly the namespace that was released.
        zero.assert_called_once_with(
            json.loads(bound['attach_info'])['devpath'], mock.ANY
        )
        self.assertEqual(0, self.provider(small['name'])['usages'][SMALL])

    def test_in_use_handle_is_never_deleted(self):
        from cyborg.common import exception as cyborg_exception

        instance = str(uuid.uuid4())
        arq_uuid, _ = self.host.bind(self.profile, instance)
        (bound,) = [h for h in self.host.attach_handles() if h['in_use']]
        name = json.loads(bound['attach_info'])['name']

        # The operator removes the namespace the instance uses.
        self.discover(without(LISTING, name))

        handles = self.host.attach_handles()
        self.assertIn(bound, handles)
        self.assertEqual(2, len(self.handles_of('SMALL')))
        self.assertEqual('Bound', self.host.arq(arq_uuid).arq.state)
        self.assertTrue(
            any('is in use; not deleting it' in line
                for line in self.logs.output.splitlines()),
            self.logs.output,
        )  # fmt: skip
        small = self.deployable('SMALL')
        self.assertEqual(1, small['num_accelerators'])

        # The instance goes while its namespace is still gone. The driver
        # cannot wipe a namespace that is not there: the unbind fails, and
        # the handle stays in use rather than go back unwiped.
        with (
            pipeline.ndctl_output(without(LISTING, name)),
            pipeline.scrub_boundary() as zero,
        ):
            # The caller gets the driver's refusal, naming the namespace
            # (the fake RPC transport hands the exception over as is; a
            # real one wraps it in a RemoteError with the same message).
            err = self.assertRaises(
                exception.ScrubRefused, self.host.unbind, instance
            )
        zero.assert_not_called()
        self.assertIn(f'namespace {name!r}', str(err))
        arq = self.host.arq(arq_uuid).arq
        self.assertEqual('UnbindFailed', arq.state)
        # Detached from the instance (so the operator can delete it), but
        # still holding the handle on this host, where a retry wipes.
        self.assertIsNone(arq.instance_uuid)
        self.assertEqual(HOSTNAME, arq.hostname)
        in_use = [h for h in self.host.attach_handles() if h['in_use']]
        self.assertEqual([bound['uuid']], [h['uuid'] for h in in_use])

        # Reports while the namespace stays gone keep the handle.
        self.discover(without(LISTING, name))
        self.assertIn(bound, self.host.attach_handles())

        # The operator puts the namespace back and deletes the request
        # again: the namespace is wiped, and only then is the handle free.
        self.discover()
        with (
            pipeline.ndctl_output(LISTING),
            pipeline.scrub_boundary() as zero,
        ):
            self.host.delete_arqs([arq_uuid])
        zero.assert_called_once_with(
            json.loads(bound['attach_info'])['devpath'], mock.ANY
        )
        self.assertEqual(
            [], [h for h in self.host.attach_handles() if h['in_use']]
        )
        self.assertRaises(
            cyborg_exception.ResourceNotFound, self.host.arq, arq_uuid
        )

    def test_last_namespace_of_a_region_in_use_is_kept(self):
        # ns3 is the only LARGE namespace, and the only one offered in
        # its region: without it the whole device leaves the report.
        profile = self.host.create_device_profile(
            'pmem-large',
            {f'resources:{LARGE}': '1', f'trait:{LARGE}': 'required'},
        )
        instance = str(uuid.uuid4())
        arq_uuid, _ = self.host.bind(profile, instance)
        (bound,) = [h for h in self.host.attach_handles() if h['in_use']]
        self.assertEqual('ns3', json.loads(bound['attach_info'])['name'])
        large = self.deployable('LARGE')

        def kept():
            self.assertIn(bound, self.host.attach_handles())
            self.assertIn(large, self.host.deployables())
            self.assertEqual(2, len(self.host.devices()))
            self.provider(large['name'])

        # The operator removes ns3, and ns1 (not in use) with it. The
        # device holding ns3 is kept with its provider (0006); the rest
        # of the report goes through.
        self.discover(without(LISTING, 'ns3', 'ns1'))
        kept()
        self.assertEqual(
            ['ns0'],
            [
                json.loads(h['attach_info'])['name']
                for h in self.handles_of('SMALL')
            ],
        )
        self.assertIn('are in use; keeping the device', self.logs.output)
        self.assertEqual('Bound', self.host.arq(arq_uuid).arq.state)

        # The instance goes while ns3 is still missing: the wipe is
        # refused, the request is left UnbindFailed, and Nova drops the
        # instance's allocation all the same. Reports still keep it all.
        with (
            pipeline.ndctl_output(without(LISTING, 'ns3', 'ns1')),
            pipeline.scrub_boundary(),
        ):
            self.assertRaises(
                exception.ScrubRefused, self.host.unbind, instance
            )
        self.assertEqual('UnbindFailed', self.host.arq(arq_uuid).arq.state)
        self.placement._call('DELETE', f'/allocations/{instance}')
        self.discover(without(LISTING, 'ns3', 'ns1'))
        kept()

        # ns3 back, the request deleted again: the namespace is wiped
        # and only then freed.
        self.discover()
        with (
            pipeline.ndctl_output(LISTING),
            pipeline.scrub_boundary() as zero,
        ):
            self.host.delete_arqs([arq_uuid])
        zero.assert_called_once_with('/dev/dax1.0', mock.ANY)
        self.assertEqual(
            [], [h for h in self.host.attach_handles() if h['in_use']]
        )


class TwoHostsTest(PipelineTestCase):
    def test_same_hardware_on_two_hosts_gives_distinct_providers(self):
        # Two hosts built alike (same emulated NVDIMMs, so the same
        # interleave-set cookies) in one cloud.
        self.discover()
        other = self.host.add_agent('compute-1')
        with pipeline.ndctl_output(LISTING):
            other.discover()

        names = [d['name'] for d in self.host.deployables()]
        self.assertEqual(4, len(names))
        self.assertEqual(len(names), len(set(names)))
        tree_1 = self.placement.tree(self.host.compute_nodes['compute-1'])
        self.assertEqual(
            ['compute-1'] + sorted(n for n in names if 'compute-1' in n),
            [rp['name'] for rp in tree_1],
        )
        self.assertEqual(3, len(self.host.placement_tree()))


def _host_name(length):
    """A valid host name of ``length`` characters: Cyborg's [DEFAULT] host
    is a host address, so no label may exceed 63 characters."""
    name = ('h' * 62 + '.') * (length // 63 + 1)
    return name[: length - 1] + 'h'


class LongHostNameTest(PipelineTestCase):
    def test_longest_host_name_fits_placement_and_one_more_is_refused(self):
        self.discover()
        # The longest deployable name's part after the host name.
        suffix = max(
            (d['name'][len(HOSTNAME) :] for d in self.host.deployables()),
            key=len,
        )
        longest = _host_name(planner.MAX_PROVIDER_NAME_LENGTH - len(suffix))
        # Placement itself refuses a longer provider name: the limit is
        # real, not ours.
        self.assertRaisesRegex(
            pipeline.PipelineError,
            'HTTP 400',
            self.placement.create_compute_node,
            'p' * (planner.MAX_PROVIDER_NAME_LENGTH + 1),
        )

        host = self.host.add_agent(longest)
        with pipeline.ndctl_output(LISTING):
            host.discover()
        tree = self.placement.tree(self.host.compute_nodes[longest])
        # SMALL and LARGE have suffixes of one length: both are at the
        # limit.
        self.assertIn(longest + suffix, [rp['name'] for rp in tree])
        self.assertEqual(
            planner.MAX_PROVIDER_NAME_LENGTH,
            max(len(rp['name']) for rp in tree),
        )

        # One character more: the driver refuses before Cyborg or
        # Placement sees anything from that host.
        rows = self.host.snapshot()
        writes = len(self.placement.cyborg_writes())
        host = self.host.add_agent(_host_name(len(longest) + 1))
        with pipeline.ndctl_output(LISTING):
            err = self.assertRaises(exception.HostNameTooLong, host.discover)
        self.assertIn(
            f'set a host of at most {len(longest)} characters', str(err)
        )
        self.assertEqual(rows, self.host.snapshot())
        self.assertEqual([], self.placement.cyborg_writes()[writes:])


class LongestAttachInfoTest(PipelineTestCase):
    LABEL = 'L' * labels.MAX_LABEL_LENGTH
    NAME = 'n' * labels.MAX_NAME_LENGTH

    def setUp(self):
        directory = self.useFixture(fixtures.TempDir()).path
        self.host_config = os.path.join(directory, 'pmem.conf')
        with open(self.host_config, 'w') as f:
            f.write(
                f'[pmem_devices]\npmem_namespaces = {self.LABEL}:{self.NAME}\n'
            )
        super().setUp()

    def listing(self):
        # The largest realistic values, as in tests/unit/test_planner.py.
        return json.dumps(
            {
                'dimms': [{'dev': 'nmem99', 'id': '8089-a2-1837-0f'}],
                'regions': [
                    {
                        'dev': 'region99',
                        'iset_id': -1,
                        'numa_node': 99,
                        'mappings': [{'dimm': 'nmem99'}],
                        'namespaces': [
                            {
                                'dev': 'namespace99.99',
                                'mode': 'devdax',
                                'size': 99999999999999,
                                'uuid': '80524f32-c5cb-4c21-bf6f-7613b982fbef',
                                'align': 1 << 30,
                                'name': self.NAME,
                                'numa_node': 99,
                                'daxregion': {
                                    'devices': [{'chardev': 'dax99.99'}]
                                },
                            }
                        ],
                    }
                ],
            }
        )

    def test_longest_attach_info_is_stored_whole(self):
        with pipeline.ndctl_output(self.listing()) as execute:
            self.host.discover()
        execute.assert_called_once()
        (handle,) = self.host.attach_handles()
        info = json.loads(handle['attach_info'])
        self.assertEqual(self.NAME, info['name'])
        self.assertEqual(self.LABEL, info['label'])
        self.assertLessEqual(len(handle['attach_info']), 255)
        if self.backend.is_mysql:
            # The column really is bounded there (sqlite bounds nothing).
            column = self.db.column_type('attach_handles', 'attach_info')
            self.assertEqual(255, column.length)


class MigrationTest(base.BaseTestCase):
    def test_cyborg_dbsync_upgrade_applies_the_series(self):
        # The database every test of this process uses was migrated by
        # cyborg-dbsync when it was created; its versions were read then.
        backend = pipeline.shared_backend()
        db = self.useFixture(pipeline.CyborgDatabase(backend))
        if backend.is_mysql:
            # The stock 17.0.0 schema first, then the series' migrations.
            self.assertEqual(
                [pipeline.STOCK_HEAD, pipeline.SERIES_HEAD], db.versions
            )
            for table, column in (
                ('devices', 'type'),
                ('attach_handles', 'attach_type'),
                ('controlpath_ids', 'cpid_type'),
            ):
                self.assertIn('PMEM', db.column_type(table, column).enums)
            self.assertIn(
                'UnbindFailed',
                db.column_type('extended_accelerator_requests', 'state').enums,
            )
        else:
            # create_schema builds the patched models at the new head.
            self.assertEqual(
                [pipeline.SERIES_HEAD, pipeline.SERIES_HEAD], db.versions
            )


class SparseNamespaceTest(PipelineTestCase):
    """A namespace ndctl shows without the optional fields (no NUMA node
    on a single-node host, no uuid on a label-less namespace) can still
    be bound: Cyborg hands attach_info to Nova as a dict of strings, and
    a null in it makes every read of the bound ARQ fail."""

    def listing(self):
        data = json.loads(LISTING)
        for region in data['regions']:
            region.pop('numa_node', None)
            for ns in region['namespaces']:
                for key in ('numa_node', 'uuid', 'raw_uuid'):
                    ns.pop(key, None)
        return json.dumps(data)

    def test_bind_a_namespace_without_optional_fields(self):
        self.discover(self.listing())
        profile = self.host.create_device_profile(
            'pmem-small', {f'resources:{SMALL}': '1'}
        )
        instance = str(uuid.uuid4())

        arq_uuid, _ = self.host.bind(profile, instance)

        arq = self.host.arq(arq_uuid).arq
        self.assertEqual('Bound', arq.state)
        self.assertIn(arq.attach_handle_info['name'], ('ns0', 'ns1'))
        self.assertNotIn('None', arq.attach_handle_info.values())
