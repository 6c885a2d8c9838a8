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

"""The patched Nova driver's domain for a PMEM ARQ, on a real hypervisor.

Two tenants, one namespace, under real libvirt and QEMU (TCG), with the
rig's real kernel as the guest (see tests/vm/pmem_guest.py for what is
real and what stands in):

1. Nova builds the domain of an instance with one bound PMEM ARQ; the
   nvdimm is backed by a regular file of the namespace's size. The guest
   lists its PMEM region and writes a marker to it; the marker is found
   in the host's file.
2. The file is zeroed as our scrub zeroes a released namespace. Nova
   builds a second instance's domain for the same namespace; that guest
   reads zeros where the marker was.

Skipped without QEMU or libvirt, except under CYBORG_PMEM_REQUIRE_QEMU=1.
"""

import mmap
import os
import sys
import tempfile
import unittest
import uuid
import xml.etree.ElementTree as ET

from tests.functional import hypervisor
from tests.vm import pmem_guest

# Where the test leaves its domains' XML and the guests' output.
OUT = 'CYBORG_PMEM_VM_OUT'
# A bound ARQ exactly as the real Cyborg API returns it (GET
# /accelerator_requests/UUID): attach_handle_info is a dict of strings.
# The namespace is the rig's 1 GiB devdax ns0.
ARQ = {
    'uuid': 'b6a3e0f2-51c4-4f0e-9f3d-7c2e1a4b5d60',
    'state': 'Bound',
    'device_profile_name': 'pmem-small',
    'device_profile_group_id': 0,
    'hostname': 'compute-0',
    'device_rp_uuid': '9d3f6b1e-2a4c-4e8d-b7f0-5c1a2e3d4f60',
    'instance_uuid': None,
    'project_id': 'd6b0a2c4e8f14a3b9c7d5e1f0a2b4c6d',
    'attach_handle_type': 'PMEM',
    'attach_handle_uuid': '3e1c5a7b-9d2f-4b6e-8a0c-1f3e5d7b9a20',
    'attach_handle_info': {
        'align': '2097152',
        'dev': 'namespace0.0',
        'devpath': '/dev/dax0.0',
        'label': 'SMALL',
        'name': 'ns0',
        'numa_node': '0',
        'size': '1054867456',
        'uuid': '7f2b4d6e-8a1c-4e3f-b5d7-9c0e2a4b6d80',
    },
    'links': [
        {
            'href': 'http://cyborg.example/accelerator/v2/'
            'accelerator_requests/b6a3e0f2-51c4-4f0e-9f3d-7c2e1a4b5d60',
            'rel': 'self',
        }
    ],
}


def bound_to(instance_uuid):
    arq = dict(ARQ, instance_uuid=instance_uuid)
    arq['attach_handle_info'] = dict(ARQ['attach_handle_info'])
    return arq


class NovaPmemGuestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hypervisor.check(libvirt=True)
        base = os.environ.get(OUT)
        if base:
            os.makedirs(base, exist_ok=True)
        cls.work = tempfile.mkdtemp(prefix='vm.', dir=base)
        # libvirt's QEMU user must reach the files below.
        os.chmod(cls.work, 0o755)  # noqa: S103
        rig = pmem_guest.build_rig()
        cls.size = pmem_guest.namespace_bytes(ARQ)
        cls.backing = pmem_guest.make_backing_file(
            os.path.join(cls.work, 'ns0.img'), cls.size
        )
        # Zeroed, it fills its whole size on disk; the logs stay.
        cls.addClassCleanup(os.remove, cls.backing)
        instances = os.path.join(cls.work, 'instances')

        cls.first = pmem_guest.nova_domain(
            bound_to(str(uuid.uuid4())), instances, 0x100
        )
        cls.label = pmem_guest.label_bytes(cls.first.xml)
        cls.region = cls.size - cls.label
        cls.marker = f'cyborg-pmem-tenant-1-{uuid.uuid4()}'
        # The last page of the region: the far end of the namespace.
        cls.marker_offset = cls.region - 4096
        cls.canary_offset = 0
        cls.canary = f'cyborg-pmem-canary-{uuid.uuid4()}'

        log_dir = os.path.join(cls.work, 'libvirt')
        os.makedirs(log_dir)
        cls.libvirt = pmem_guest.Libvirt(log_dir)
        cls.addClassCleanup(cls.libvirt.stop)
        cls.libvirt.start()
        summary(f'{cls.libvirt.note}; output in {cls.work}')

        cls.first_xml, cls.first_line = cls.domain_for_boot(
            cls.first,
            rig,
            {
                'PMEM_WRITE_OFFSET': cls.marker_offset,
                'PMEM_WRITE_TEXT': cls.marker,
                'PMEM_READ_OFFSETS': cls.marker_offset,
                'PMEM_READ_LENGTH': len(cls.marker),
            },
        )
        summary(cls.first_line)
        cls.first_run = pmem_guest.boot(
            cls.libvirt,
            cls.first_xml,
            cls.first.name,
            os.path.join(cls.work, cls.first.name),
        )
        cls.marker_found_at = find_in_file(cls.backing, cls.marker)

        cls.scrubbed = pmem_guest.scrub_stand_in(cls.backing)
        cls.nonzero_after_scrub = pmem_guest.nonzero_offset(cls.backing)
        # Written by the host after the scrub, where the marker was not:
        # the second guest reading it proves it reads this very file.
        write_at(cls.backing, cls.canary_offset, cls.canary)

        cls.second = pmem_guest.nova_domain(
            bound_to(str(uuid.uuid4())), instances, 0x101
        )
        cls.second_xml, _line = cls.domain_for_boot(
            cls.second,
            rig,
            {
                'PMEM_READ_OFFSETS': f'{cls.canary_offset} '
                f'{cls.marker_offset}',
                'PMEM_READ_LENGTH': len(cls.marker),
            },
        )
        cls.second_run = pmem_guest.boot(
            cls.libvirt,
            cls.second_xml,
            cls.second.name,
            os.path.join(cls.work, cls.second.name),
        )
        for run in (cls.first_run, cls.second_run):
            summary(
                f'{run.name}: /init at guest uptime {run.boot_seconds} s, '
                f'done at {run.done_seconds} s; virsh start to shut off '
                f'{run.wall_seconds} s'
            )
        summary(
            f'the guest saw {pmem_guest.describe_regions(cls.first_run)} '
            f'for a namespace of {cls.size} bytes (Nova\'s label area: '
            f'{cls.label} bytes)'
        )

    @classmethod
    def domain_for_boot(cls, domain, rig, guest_env):
        return pmem_guest.bootable(
            domain, cls.backing, rig, guest_env, cls.work
        )

    # ------------------------------------------------ what Nova built

    def test_nova_built_the_nvdimm_from_the_arq(self):
        nvdimm = pmem_guest.parse(self.first.xml).find(pmem_guest.NVDIMM)
        info = ARQ['attach_handle_info']
        self.assertEqual('shared', nvdimm.get('access'))
        self.assertEqual(info['devpath'], nvdimm.findtext('source/path'))
        self.assertEqual(
            int(info['align']) // 1024,
            int(nvdimm.findtext('source/alignsize')),
        )
        self.assertIsNotNone(nvdimm.find('source/pmem'))
        # Nova sizes the nvdimm as the whole namespace; QEMU carves the
        # label area off its end.
        self.assertEqual(
            int(info['size']) // 1024, int(nvdimm.findtext('target/size'))
        )
        self.assertEqual(
            self.label // 1024, int(nvdimm.findtext('target/label/size'))
        )
        # The guest NUMA cell libvirt needs for an nvdimm.
        self.assertIsNotNone(
            pmem_guest.parse(self.first.xml).find('./cpu/numa/cell')
        )

    def test_only_the_source_path_and_the_scaffolding_changed(self):
        for domain, booted in (
            (self.first, self.first_xml),
            (self.second, self.second_xml),
        ):
            root = pmem_guest.parse(booted)
            devices = root.find('devices')
            (added,) = devices.findall("serial[@type='file']")
            devices.remove(added)
            path = root.find(f'{pmem_guest.NVDIMM}/source/path')
            self.assertEqual(self.backing, path.text)
            path.text = ARQ['attach_handle_info']['devpath']
            self.assertEqual(
                ET.canonicalize(domain.xml, strip_text=True),
                ET.canonicalize(
                    ET.tostring(root, encoding='unicode'), strip_text=True
                ),
            )
        self.assertIn('There is no /dev/dax0.0 here', self.first_line)

    # ------------------------------------------------ the first tenant

    def test_guest_sees_one_region_of_the_namespace_size(self):
        regions = self.first_run.regions
        self.assertEqual(1, len(regions), regions)
        self.assertEqual('pmem', regions[0]['type'])
        # The namespace less the label area Nova gives the nvdimm.
        self.assertEqual(self.size - self.label, regions[0]['size'])

    def test_guest_wrote_its_marker_and_read_it_back(self):
        self.assertEqual(
            self.marker.encode(), self.first_run.reads[self.marker_offset]
        )

    def test_marker_is_in_the_hosts_backing_file(self):
        # The label area is carved off the end of the backing file, so
        # the region starts at its first byte.
        self.assertEqual(self.marker_offset, self.marker_found_at)

    # ------------------------------------------------ the next tenant

    def test_scrub_zeroed_the_whole_stand_in(self):
        self.assertEqual(self.size, self.scrubbed)
        self.assertEqual(self.size, os.path.getsize(self.backing))
        self.assertIsNone(self.nonzero_after_scrub)

    def test_next_guest_reads_zeros_where_the_marker_was(self):
        self.assertEqual(
            bytes(len(self.marker)),
            self.second_run.reads[self.marker_offset],
        )

    def test_next_guest_reads_the_same_file(self):
        self.assertEqual(
            self.canary.encode(),
            self.second_run.reads[self.canary_offset][: len(self.canary)],
        )
        self.assertEqual(self.first_run.regions, self.second_run.regions)


def summary(line):
    """A line tools/run-functional.sh prints after the tests."""
    out = os.environ.get(OUT)
    if out and os.path.isdir(out):
        with open(os.path.join(out, 'summary.txt'), 'a') as f:
            f.write(f'vm: {line}\n')


def find_in_file(path, text):
    with open(path, 'rb') as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            offset = m.find(text.encode())
    return None if offset < 0 else offset


def write_at(path, offset, text):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(text.encode())
        f.flush()
        os.fsync(f.fileno())


if __name__ == '__main__':
    sys.exit(unittest.main())
