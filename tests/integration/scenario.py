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

"""A host's life in steps, dumped after each one, for comparing two Cyborgs.

    python -m tests.integration.scenario

runs the sample host (``etc/sample-host``) through the pipeline of
``pipeline.py`` (the real agent, conductor, database and Placement):
discovery, an unchanged report, a namespace gone, ndctl failing, the
namespace back, binds, namespaces and a whole region gone while bound,
unbinds. After every step it dumps every Cyborg table (timestamps aside)
and Placement's providers, inventories, usages and traits, and prints them
as one JSON document. ``test_report_data_patch`` runs this once with each
of two Cyborg installs and compares the dumps step by step.

Row ids and uuids are random or depend on the order rows were created in,
so a dump names each row by what identifies it to Cyborg (a device by its
control path's ``cpid_info``, a deployable by its name, an attach handle by
its ``attach_info``...) and a generation: ``#2`` is the second row that
ever had that name, i.e. the first was deleted and a new one created.
"""

import json
import logging
import os
import sys
import uuid

import fixtures

from tests.integration import pipeline
from tests.integration import variants

HOSTNAME = 'compute-0'
LISTING = pipeline.read_text(
    os.path.join(pipeline.SAMPLE_HOST, 'ndctl-list.json')
)
# SMALL:ns0|ns1 in one region, LARGE:ns3 alone in the other.
HOST_CONFIG = os.path.join(pipeline.SAMPLE_HOST, 'cyborg.conf')
SMALL = 'CUSTOM_PMEM_NAMESPACE_SMALL'
LARGE = 'CUSTOM_PMEM_NAMESPACE_LARGE'
# Instances get the same uuids in every run, so that dumps compare.
INSTANCE_A = str(uuid.UUID(int=0xA))
INSTANCE_B = str(uuid.UUID(int=0xB))
without = pipeline.without_namespaces

_TIMESTAMPS = ('created_at', 'updated_at')
# Foreign keys: column -> the table it points into.
_REFERENCES = {
    'device_id': 'devices',
    'deployable_id': 'deployables',
    'cpid_id': 'controlpath_ids',
    'attach_handle_id': 'attach_handles',
    'device_profile_id': 'device_profiles',
    'parent_id': 'deployables',
    'root_id': 'deployables',
}


class _Names:
    """Stable names for rows across the dumps of one run."""

    def __init__(self):
        self._by_uuid = {}
        self._generations = {}

    def name(self, table, natural, row_uuid):
        key = (table, row_uuid)
        if key not in self._by_uuid:
            generation = self._generations.get((table, natural), 0) + 1
            self._generations[(table, natural)] = generation
            self._by_uuid[key] = f'{natural}#{generation}'
        return self._by_uuid[key]


def _natural_names(tables):
    """(table, id) -> what identifies the row, for every row."""
    natural = {}
    cpid_of_device = {}
    for row in tables['controlpath_ids']:
        natural[('controlpath_ids', row['id'])] = row['cpid_info']
        cpid_of_device.setdefault(row['device_id'], row['cpid_info'])
    for row in tables['devices']:
        natural[('devices', row['id'])] = cpid_of_device.get(
            row['id'], f'{row["hostname"]} {row["std_board_info"]}'
        )
    for row in tables['deployables']:
        natural[('deployables', row['id'])] = row['name']
    for row in tables['attributes']:
        owner = natural[('deployables', row['deployable_id'])]
        natural[('attributes', row['id'])] = f'{owner} {row["key"]}'
    for row in tables['attach_handles']:
        natural[('attach_handles', row['id'])] = row['attach_info']
    for row in tables['device_profiles']:
        natural[('device_profiles', row['id'])] = row['name']
    # Requests have nothing stabler than the order they were made in.
    for number, row in enumerate(tables['extended_accelerator_requests']):
        natural[('extended_accelerator_requests', row['id'])] = (
            f'request {number}'
        )
    return natural


def dump_tables(host, names):
    """Every row Cyborg keeps, each named as the module doc says, without
    timestamps, ids or uuids; foreign keys name the row they point to."""
    tables = host.snapshot()
    natural = _natural_names(tables)
    label = {
        (table, row['id']): names.name(
            table, natural[(table, row['id'])], row['uuid']
        )
        for table, rows in tables.items()
        for row in rows
    }
    dump = {}
    for table, rows in tables.items():
        dumped = []
        for row in rows:
            entry = {'row': label[(table, row['id'])]}
            for column, value in row.items():
                if column in _TIMESTAMPS or column in ('id', 'uuid'):
                    continue
                if column in _REFERENCES and value is not None:
                    value = label.get((_REFERENCES[column], value), value)
                if column == 'in_use':
                    value = bool(value)
                entry[column] = value
            dumped.append(entry)
        dump[table] = sorted(dumped, key=lambda entry: entry['row'])
    return dump


def dump_placement(host):
    """The host's providers (the compute node's random uuid replaced)
    with their inventories, usages and traits, and the custom classes."""
    root = host.compute_node
    tree = json.loads(
        json.dumps(host.placement_tree()).replace(root, 'compute-node')
    )
    return {
        'providers': tree,
        'resource_classes': host.placement.resource_classes(),
    }


def _discover(listing=LISTING):
    def step(run):
        with pipeline.ndctl_output(listing):
            run.host.discover()

    return step


def _ndctl_failing(run):
    with pipeline.ndctl_output(error=pipeline.ndctl_failure()):
        run.host.discover()


def _bind(label, instance):
    def step(run):
        rc = {'SMALL': SMALL, 'LARGE': LARGE}[label]
        profile = run.host.create_device_profile(
            f'pmem-{label.lower()}',
            {f'resources:{rc}': '1', f'trait:{rc}': 'required'},
        )
        arq_uuid, _ = run.host.bind(profile, instance)
        run.arqs[instance] = arq_uuid

    return step


def _bound_names(host):
    return sorted(
        json.loads(h['attach_info'])['name']
        for h in host.attach_handles()
        if h['in_use']
    )


def _discover_without_bound(run):
    _discover(without(LISTING, *_bound_names(run.host)))(run)


def _unbind(instance, listing):
    def step(run):
        with pipeline.ndctl_output(listing), pipeline.scrub_boundary():
            run.host.unbind(instance)

    return step


def _delete_request(instance):
    def step(run):
        with pipeline.ndctl_output(LISTING), pipeline.scrub_boundary():
            run.host.delete_arqs([run.arqs[instance]])

    return step


def _unbind_a_while_gone(run):
    # The namespace A holds is gone: the driver refuses to wipe it, and
    # the request is left UnbindFailed, still holding the handle.
    run.gone_while_bound = _bound_names(run.host)
    _unbind(INSTANCE_A, without(LISTING, *run.gone_while_bound))(run)


def _region_of_b_gone(run):
    # ns3 is the only LARGE namespace and alone in its region: the whole
    # device leaves the report. A's namespace is still gone.
    _discover(without(LISTING, 'ns3', *run.gone_while_bound))(run)


# (what happens, how). A step that raises is part of the scenario: the
# dump records the error's class.
STEPS = (
    ('discover', _discover()),
    ('repeat', _discover()),
    ('ns1 gone', _discover(without(LISTING, 'ns1'))),
    ('ndctl failing', _ndctl_failing),
    ('ns1 back', _discover()),
    ('bind SMALL for A', _bind('SMALL', INSTANCE_A)),
    ('repeat while bound', _discover()),
    ('bound namespace gone', _discover_without_bound),
    ('repeat while it is gone', _discover_without_bound),
    ('unbind A while it is gone', _unbind_a_while_gone),
    ('bind LARGE for B', _bind('LARGE', INSTANCE_B)),
    ('region of B gone while bound', _region_of_b_gone),
    ('all back', _discover()),
    ('delete the request of A', _delete_request(INSTANCE_A)),
    ('unbind B', _unbind(INSTANCE_B, LISTING)),
    ('repeat after unbind', _discover()),
    ('ns0 and ns3 gone', _discover(without(LISTING, 'ns0', 'ns3'))),
    ('repeat without them', _discover(without(LISTING, 'ns0', 'ns3'))),
    ('all back again', _discover()),
)


class Run:
    """One run of STEPS on one host; ``dumps`` holds a dump per step."""

    def __init__(self, host):
        self.host = host
        self.arqs = {}
        self.gone_while_bound = []
        self.names = _Names()
        self.dumps = []

    def run(self, steps=STEPS):
        for name, step in steps:
            logs = fixtures.FakeLogger(name='cyborg', level='WARNING')
            requests = len(self.host.placement.requests)
            with logs, pipeline.counting(self.host) as cost:
                try:
                    step(self)
                    outcome = 'ok'
                except Exception as err:  # noqa: BLE001 (recorded, compared)
                    outcome = type(err).__name__
            self.dumps.append(
                {
                    'step': name,
                    'outcome': outcome,
                    'warnings': len(logs.output.splitlines()),
                    'tables': dump_tables(self.host, self.names),
                    'placement': dump_placement(self.host),
                    'placement_requests': self._cyborg_requests(requests),
                    'cost': cost.as_dict(),
                }
            )
        return self.dumps

    def _cyborg_requests(self, start):
        """Cyborg's Placement requests since ``start``, sorted (the order
        of a set may differ)."""
        root = self.host.compute_node
        return sorted(
            f'{method} {path.replace(root, "compute-node")}'
            for agent, method, path in self.host.placement.requests[start:]
            if agent != pipeline.OPERATOR_AGENT
        )


def main():
    # Cyborg logs every row it diffs at INFO; its warnings are counted.
    logging.disable(logging.INFO)
    backend = pipeline.backend()
    with (
        pipeline.CyborgDatabase(backend, fresh=True) as db,
        pipeline.PlacementService() as placement,
        pipeline.CyborgHost(db, placement, HOST_CONFIG, HOSTNAME) as host,
    ):
        dumps = Run(host).run()
    json.dump(
        {
            'backend': backend.describe(),
            'cyborg_patches': variants.cyborg_series(),
            'steps': dumps,
        },
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
