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

"""The sample host through the real Cyborg and Placement, then a VM
(``tox -e demo``, the main job).

    python -m tools.demo [HOST_CONFIG [NDCTL_LISTING]]

Starts Placement and Cyborg's conductor and agent in-process (see
tests/integration/pipeline.py), lets the agent discover the sample host
(etc/sample-host: real ndctl output of two emulated NVDIMMs; ndctl is not
run), then prints what Cyborg stored and what Placement offers, as an
operator would list them. Then it plays Nova once: one instance asks for
a SMALL namespace, and the demo prints what Nova receives. It ends with
the VM: the patched Nova driver's ``<memory model="nvdimm">`` for that
ARQ and, where libvirt and QEMU are installed, the guest's own view of
its PMEM region (tests/vm/pmem_guest.py boots it).

It is a program, not a test, hence here; it runs from the checkout
(``python -m``) because it drives the test harness's real services.

The database is sqlite unless ``$CYBORG_PMEM_DB_URL`` names a MariaDB.
"""

import datetime
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
import warnings

from tests.functional import hypervisor
from tests.integration import pipeline
from tests.vm import pmem_guest

HOST_CONFIG = os.path.join(pipeline.SAMPLE_HOST, 'cyborg.conf')
LISTING = os.path.join(pipeline.SAMPLE_HOST, 'ndctl-list.json')


def table(title, headers, rows):
    rows = [[('-' if c is None else str(c)) for c in row] for row in rows]
    widths = [
        max(len(c) for c in column)
        for column in zip(headers, *rows, strict=True)
    ]
    lines = [title, '']
    for i, row in enumerate([headers, *rows]):
        lines.append(
            '  '
            + '  '.join(
                c.ljust(w) for c, w in zip(row, widths, strict=True)
            ).rstrip()
        )
        if i == 0:
            lines.append('  ' + '  '.join('-' * w for w in widths))
    return '\n'.join(lines) + '\n'


def size(value):
    if value is None:
        return None
    unit = 'B'
    for bigger in ('KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024:
            break
        value /= 1024
        unit = bigger
    return f'{value:.2f}'.rstrip('0').rstrip('.') + f' {unit}'


def cyborg_tables(host):
    deployables = {d['id']: d for d in host.deployables()}
    attributes = {}
    for a in host.attributes():
        attributes.setdefault(a['deployable_id'], []).append(
            f'{a["key"]}={a["value"]}'
        )
    cpids = {c['device_id']: c for c in host.controlpath_ids()}
    out = [
        table(
            'Cyborg devices (one per PMEM region)',
            ['id', 'type', 'host', 'vendor', 'model', 'control path'],
            [
                (
                    d['id'],
                    d['type'],
                    d['hostname'],
                    d['vendor'],
                    d['model'],
                    f'{cpids[d["id"]]["cpid_type"]} '
                    f'{cpids[d["id"]]["cpid_info"]}',
                )
                for d in host.devices()
            ],
        ),
        table(
            'Cyborg deployables (one per region and label)',
            ['device', 'name', 'accelerators', 'driver', 'attributes'],
            [
                (
                    d['device_id'],
                    d['name'],
                    d['num_accelerators'],
                    d['driver_name'],
                    ', '.join(sorted(attributes.get(d['id'], []))),
                )
                for d in deployables.values()
            ],
        ),
    ]
    rows = []
    for h in host.attach_handles():
        info = json.loads(h['attach_info'])
        rows.append(
            (
                deployables[h['deployable_id']]['name'].rsplit('_', 1)[-1],
                h['attach_type'],
                'yes' if h['in_use'] else 'no',
                info['name'],
                info['dev'],
                info['devpath'],
                size(info['size']),
                size(info.get('align')),
                info.get('numa_node'),
                len(h['attach_info']),
            )
        )
    out.append(
        table(
            'Cyborg attach handles (one per namespace; attach_info fields)',
            [
                'label',
                'type',
                'in use',
                'name',
                'dev',
                'devpath',
                'size',
                'align',
                'numa',
                'chars',
            ],
            rows,
        )
    )
    return out


def placement_tables(host):
    tree = host.placement_tree()
    names = {rp['uuid']: rp['name'] for rp in tree}
    providers = table(
        'Placement resource providers (openstack resource provider list)',
        ['name', 'uuid', 'parent', 'generation'],
        [
            (rp['name'], rp['uuid'], names.get(rp['parent']), rp['generation'])
            for rp in tree
        ],
    )
    inventory_rows = []
    trait_rows = []
    for rp in tree:
        for rc, inv in sorted(rp['inventories'].items()):
            inventory_rows.append(
                (
                    rp['name'],
                    rc,
                    inv['total'],
                    inv['reserved'],
                    inv['max_unit'],
                    rp['usages'].get(rc, 0),
                )
            )
        trait_rows.append((rp['name'], ', '.join(rp['traits']) or None))
    return [
        providers,
        table(
            'Placement inventories (openstack resource provider inventory '
            'list)',
            [
                'provider',
                'resource class',
                'total',
                'reserved',
                'max_unit',
                'used',
            ],
            inventory_rows,
        ),  # fmt: skip
        table(
            'Placement traits (openstack resource provider trait list)',
            ['provider', 'traits'],
            trait_rows,
        ),
    ]


def main(argv):
    host_config = argv[0] if argv else HOST_CONFIG
    listing = pipeline.read_text(argv[1] if len(argv) > 1 else LISTING)
    # Cyborg logs every row it diffs at INFO; the tables say it better.
    logging.disable(logging.WARNING)
    # Importing Cyborg warns that eventlet is deprecated: noise here.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    backend = pipeline.backend(autodetect=False)
    print(backend.describe())
    print(
        f'Sample host: {os.path.relpath(host_config, pipeline.REPO)}, '
        'ndctl output '
        f'{os.path.relpath(argv[1] if len(argv) > 1 else LISTING)}\n'
    )
    with (
        pipeline.CyborgDatabase(backend, fresh=True) as db,
        pipeline.PlacementService() as placement,
        pipeline.CyborgHost(db, placement, host_config) as host,
    ):
        first = (
            f'upgrade --revision {pipeline.STOCK_HEAD} (stock 17.0.0)'
            if backend.is_mysql
            else 'create_schema'
        )
        print(
            f'cyborg-dbsync {first}: at {db.versions[0]}; '
            f'cyborg-dbsync upgrade: at {db.versions[1]}'
        )
        print(
            f'Compute node {host.hostname} created in Placement as Nova '
            'would; cyborg-agent runs one periodic discovery...\n'
        )
        with pipeline.ndctl_output(listing):
            host.discover()
        for text in cyborg_tables(host) + placement_tables(host):
            print(text)

        writes = len(placement.cyborg_writes())
        with pipeline.ndctl_output(listing):
            host.discover()
        print(
            'A second identical discovery: '
            f'{len(placement.cyborg_writes()) - writes} Placement writes.\n'
        )

        rc = 'CUSTOM_PMEM_NAMESPACE_SMALL'
        profile = host.create_device_profile(
            'pmem-small',
            {f'resources:{rc}': '1', f'trait:{rc}': 'required'},
        )
        instance = str(uuid.uuid4())
        arq_uuid, rp_uuid = host.bind(profile, instance)
        arq = host.arq(arq_uuid).arq
        print(
            f'Nova boots an instance with device profile {profile.name} '
            f'({rc}:1): Placement picks {placement_name(host, rp_uuid)}; '
            f'ARQ {arq.state}, attach handle {arq.attach_handle_type}, '
            'attach_info as Nova receives it:'
        )
        for key, value in sorted(arq.attach_handle_info.items()):
            print(f'  {key:<10} {value!r}')
        print()
        vm(api_view(arq))
        with pipeline.ndctl_output(listing), pipeline.scrub_boundary() as zero:
            host.unbind(instance)
        if zero is not None:
            print(
                'On unbind the agent had the driver wipe '
                f'{zero.call_args.args[0]} (its privileged daxio call is '
                'stood in for here: there is no device).'
            )
        free = sum(not h['in_use'] for h in host.attach_handles())
        print(
            f'Instance deleted: ARQ unbound, {free} of '
            f'{len(host.attach_handles())} attach handles free.'
        )
    return 0


def api_view(arq):
    """The ARQ as ``GET /accelerator_requests/UUID`` returns it: the API
    type's attributes of ``arq.as_dict()`` (cyborg.api.controllers.v2.arqs
    ARQ.convert_with_links), less the self link, which needs a request."""
    from cyborg.api.controllers.v2 import arqs
    import wsme.types

    values = arq.as_dict()
    view = {}
    for attribute in wsme.types.list_attributes(arqs.ARQ):
        if attribute.key in values:
            value = values[attribute.key]
            if isinstance(value, datetime.datetime):
                value = value.isoformat()
            view[attribute.key] = value
    return view


def vm(arq):
    """The instance's VM: Nova's nvdimm for ``arq``, then, where libvirt
    and QEMU are installed, the guest's own view of its PMEM region."""
    work = tempfile.mkdtemp(prefix='cyborg-pmem-demo-vm.')
    try:
        _boot_vm(arq, work)
    except pmem_guest.VMError as err:
        print(f'The VM step failed: {err} (its files: {work})\n')
        return
    shutil.rmtree(work)


def _boot_vm(arq, work):
    # libvirt's QEMU user must reach the files below.
    os.chmod(work, 0o755)  # noqa: S103
    domain = pmem_guest.nova_domain(arq, os.path.join(work, 'instances'), 1)
    print(
        "Nova's libvirt driver (nova 34.0.0 with contrib/nova) builds the "
        f'instance\'s domain, {domain.name}; the nvdimm for ARQ '
        f'{arq["uuid"]}:\n'
    )
    print(pmem_guest.nvdimm_text(domain.xml))
    print()
    missing = hypervisor.missing(libvirt=True)
    if missing:
        print(
            f'To boot it and see the guest\'s own view of its region: '
            f'{missing}.\n'
        )
        return
    rig = pmem_guest.build_rig()
    backing = pmem_guest.make_backing_file(
        os.path.join(work, 'namespace.img'), pmem_guest.namespace_bytes(arq)
    )
    xml, line = pmem_guest.bootable(domain, backing, rig, {}, work)
    print(line)
    with pmem_guest.Libvirt(work) as libvirt:
        print(
            f'Booting it under real libvirt and QEMU (TCG; {libvirt.note}) '
            "on the QEMU rig's kernel..."
        )
        run = pmem_guest.boot(
            libvirt, xml, domain.name, os.path.join(work, domain.name)
        )
    print(
        f"The guest's /init started {run.boot_seconds} s into its uptime; "
        f'the domain was shut off {run.wall_seconds} s after virsh start. '
        'Inside the guest, "ndctl list -R" printed:\n'
    )
    print(run.regions_text)
    label = pmem_guest.label_bytes(domain.xml)
    print(
        f'\nThe namespace is {pmem_guest.namespace_bytes(arq)} bytes; the '
        f'guest\'s region is that less the {label}-byte label area Nova '
        'gives the nvdimm.\n'
    )


def placement_name(host, rp_uuid):
    for rp in host.placement_tree():
        if rp['uuid'] == rp_uuid:
            return rp['name']
    return rp_uuid


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
