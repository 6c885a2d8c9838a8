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

"""The guest XML Nova's libvirt driver builds for a server's ARQs.

    python -m tests.nova.guest_xml ARQS_JSON

reads a JSON list of ARQs as the Cyborg API returned them and prints the
domain XML of ``LibvirtDriver._get_guest_config(..., accel_info=ARQS)``,
the call nova-compute's spawn makes, for a 1 vCPU, 512 MiB flavor with
``accel:device_profile`` and ``hw:numa_nodes=1``. On failure it prints
one line, what Nova raised, and exits 1.

It runs in a process of its own, as nova-compute does: Nova's test
fixtures set Nova's concurrency mode when imported, and Nova's options
would clash with Cyborg's in the caller's process. The libvirt Python
binding is not needed: Nova's fakelibvirt stands in for the host's
libvirt (capabilities, one NUMA cell), as in Nova's own tests.
"""

import json
import sys
import tempfile
import uuid

MEMORY_MB = 512
VCPUS = 1


def guest_xml(arqs, instances_path):
    from unittest import mock

    from nova import objects
    import nova.conf
    from nova.tests.fixtures import libvirt as fakelibvirt
    from nova.virt import fake as fake_virt
    from nova.virt import hardware
    from nova.virt.libvirt import blockinfo
    from nova.virt.libvirt import driver as libvirt_driver

    conf = nova.conf.CONF
    objects.register_all()
    conf([], project='nova', default_config_files=[])
    # What nova-compute registers once its configuration is loaded.
    nova.conf.neutron.register_dynamic_opts(conf)
    nova.conf.devices.register_dynamic_opts(conf)
    conf.set_override('virt_type', 'qemu', group='libvirt')
    # Not under Nova's state_path, which is the installed package's.
    conf.set_override('instances_path', instances_path)

    flavor = objects.Flavor(
        id=1,
        flavorid='pmem.small',
        name='pmem.small',
        memory_mb=MEMORY_MB,
        vcpus=VCPUS,
        root_gb=1,
        ephemeral_gb=0,
        swap=0,
        vcpu_weight=None,
        rxtx_factor=1.0,
        extra_specs={
            'accel:device_profile': arqs[0]['device_profile_name'],
            'hw:numa_nodes': '1',
        },
    )
    image_meta = objects.ImageMeta.from_dict(
        {'id': str(uuid.uuid4()), 'disk_format': 'raw', 'properties': {}}
    )
    instance = objects.Instance(
        id=1,
        uuid=arqs[0]['instance_uuid'],
        display_name='pmem-guest',
        project_id='demo',
        user_id='demo',
        host=arqs[0]['hostname'],
        node=arqs[0]['hostname'],
        image_ref=image_meta.id,
        kernel_id='',
        ramdisk_id='',
        os_type='linux',
        vm_mode=None,
        flavor=flavor,
        old_flavor=None,
        new_flavor=None,
        instance_type_id=flavor.id,
        memory_mb=flavor.memory_mb,
        vcpus=flavor.vcpus,
        root_gb=flavor.root_gb,
        ephemeral_gb=flavor.ephemeral_gb,
        numa_topology=hardware.numa_get_constraints(flavor, image_meta),
        pci_devices=objects.PciDeviceList(),
        resources=None,
        system_metadata={},
        config_drive=None,
        ephemeral_key_uuid=None,
        vcpu_model=None,
        trusted_certs=None,
        migration_context=None,
        info_cache=None,
    )
    host = fakelibvirt.Connection(
        'qemu:///system',
        host_info=fakelibvirt.HostInfo(
            cpu_nodes=1, cpu_sockets=1, cpu_cores=2, cpu_threads=1
        ),
    )
    with (
        fakelibvirt.LibvirtFixture(),
        mock.patch(
            'nova.virt.libvirt.host.Host._get_new_connection',
            return_value=host,
        ),
    ):
        driver = libvirt_driver.LibvirtDriver(fake_virt.FakeVirtAPI(), False)
        disk_info = blockinfo.get_disk_info('qemu', instance, image_meta)
        return driver._get_guest_config(
            instance, [], image_meta, disk_info, accel_info=arqs
        ).to_xml()


def main(argv):
    if len(argv) != 1:
        print(
            'usage: python -m tests.nova.guest_xml ARQS_JSON', file=sys.stderr
        )
        return 2
    try:
        with open(argv[0]) as f:
            arqs = json.load(f)
        with tempfile.TemporaryDirectory() as instances_path:
            xml = guest_xml(arqs, instances_path)
    except Exception as err:  # noqa: BLE001 (one line, in Nova's words)
        print(f'guest_xml: {type(err).__name__}: {err}', file=sys.stderr)
        return 1
    sys.stdout.write(xml)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
