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

"""Nova's libvirt domain XML for a new instance with bound ARQs.

    python -m tests.nova.guest_xml ARQS_JSON INSTANCES_PATH INSTANCE_ID

reads a JSON list of ARQs as the Cyborg API returned them and prints
``{"xml": ..., "name": ..., "uuid": ..., "instance_dir": ...}``; on
failure it prints one line, what Nova raised, and exits 1. The contract
test (tests/nova) and the VM boot (tests/vm) both build their guest here,
through :func:`build`.

It runs in a process of its own, as nova-compute does: importing Nova
registers its configuration options (which clash with Cyborg's in one
process) and its concurrency mode; the callers stay free of both.

The XML comes from Nova 34.0.0 with the contrib/nova series
(``tools/nova-env.sh``): ``LibvirtDriver._get_guest_xml(...,
accel_info=arqs)``, exactly where nova-compute's spawn hands the driver
the instance's bound ARQs. The instance is what a user boots:

* a flavor with ``hw:numa_nodes=1``, the guest NUMA cell the series asks
  for (libvirt refuses an nvdimm without one), and the ``accel:`` device
  profile that produced the ARQs;
* an image with a kernel and a ramdisk, so that Nova's own XML boots
  ``INSTANCE_DIR/kernel`` and ``INSTANCE_DIR/ramdisk``, where the VM boot
  puts the rig's;
* ``[libvirt] virt_type = qemu`` (TCG: /dev/kvm does not work here) and
  ``images_type = raw``.

Nova reads the host's capabilities through the libvirt Python binding,
which is not installed here; its own fakelibvirt stands in for that
binding and describes this machine's CPUs and memory, as in Nova's own
tests. The real libvirt (tests/vm) is what then validates, defines and
starts the XML.
"""

import json
import os
import sys

from tests import commands

MEMORY_MB = 512
VCPUS = 1
ROOT_GB = 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# Generous: importing Nova and building the domain shares two busy cores.
BUILD_TIMEOUT = 600


class GuestXMLError(Exception):
    """Nova could not build the domain: one line, in Nova's words."""


def build(arqs, instances_path, instance_id):
    """Run this module in a process of its own for ``arqs`` and return
    what it prints, ``{"xml", "name", "uuid", "instance_dir"}``.

    :raises GuestXMLError: it failed or did not answer in time (one
        line).
    """
    os.makedirs(instances_path, exist_ok=True)
    arqs_json = os.path.join(instances_path, f'arqs-{instance_id}.json')
    with open(arqs_json, 'w') as f:
        json.dump(arqs, f)
    done = commands.run(
        [
            sys.executable,
            '-m',
            __name__,
            arqs_json,
            instances_path,
            str(instance_id),
        ],
        'Nova building the domain XML',
        GuestXMLError,
        BUILD_TIMEOUT,
        cwd=ROOT,
    )
    return json.loads(done.stdout)


def _this_host():
    from nova.tests.fixtures import libvirt as fakelibvirt

    with open('/proc/meminfo') as f:
        total_kb = int(f.readline().split()[1])
    info = fakelibvirt.HostInfo(
        cpu_nodes=1,
        cpu_sockets=1,
        cpu_cores=os.cpu_count() or 1,
        cpu_threads=1,
        kB_mem=total_kb,
    )
    return fakelibvirt.Connection('qemu:///system', host_info=info)


def domain_xml(arqs, instances_path, instance_id):
    """Nova's domain XML for an instance whose bound ARQs are ``arqs``.

    :param arqs: the ARQs as the Cyborg API returns them (dicts).
    :returns: (xml, instance name, instance uuid, instance directory)
    """
    from unittest import mock
    import uuid

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
    conf.set_override('images_type', 'raw', group='libvirt')
    conf.set_override('instances_path', instances_path)

    arq = arqs[0]
    profile = arq.get('device_profile_name') or 'pmem'
    flavor = objects.Flavor(
        id=1,
        flavorid='pmem.small',
        name='pmem.small',
        memory_mb=MEMORY_MB,
        vcpus=VCPUS,
        root_gb=ROOT_GB,
        ephemeral_gb=0,
        swap=0,
        vcpu_weight=None,
        rxtx_factor=1.0,
        extra_specs={
            'accel:device_profile': profile,
            'hw:numa_nodes': '1',
        },
    )
    image_meta = objects.ImageMeta.from_dict(
        {'id': str(uuid.uuid4()), 'disk_format': 'raw', 'properties': {}}
    )
    instance = objects.Instance(
        id=instance_id,
        uuid=arq.get('instance_uuid') or str(uuid.uuid4()),
        display_name='pmem-guest',
        project_id=arq.get('project_id') or 'demo',
        user_id='demo',
        host=arq.get('hostname') or 'compute-0',
        node=arq.get('hostname') or 'compute-0',
        image_ref=image_meta.id,
        kernel_id=str(uuid.uuid4()),
        ramdisk_id=str(uuid.uuid4()),
        os_type='linux',
        vm_mode=None,
        vm_state='building',
        task_state='spawning',
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
        cleaned=False,
    )
    with (
        fakelibvirt.LibvirtFixture(),
        mock.patch(
            'nova.virt.libvirt.host.Host._get_new_connection',
            return_value=_this_host(),
        ),
    ):
        driver = libvirt_driver.LibvirtDriver(fake_virt.FakeVirtAPI(), False)
        disk_info = blockinfo.get_disk_info('qemu', instance, image_meta)
        xml = driver._get_guest_xml(
            None, instance, [], disk_info, image_meta, accel_info=arqs
        )
    instance_dir = os.path.join(instances_path, instance.uuid)
    return xml, instance.name, instance.uuid, instance_dir


def main(argv):
    if len(argv) != 3:
        print(
            'usage: python -m tests.nova.guest_xml ARQS_JSON '
            'INSTANCES_PATH INSTANCE_ID',
            file=sys.stderr,
        )
        return 2
    arqs_json, instances_path, instance_id = argv
    try:
        with open(arqs_json) as f:
            arqs = json.load(f)
        xml, name, uuid, instance_dir = domain_xml(
            arqs, instances_path, int(instance_id)
        )
    except Exception as err:
        # One line for the caller to show: what failed, in Nova's words.
        print(f'guest_xml: {type(err).__name__}: {err}', file=sys.stderr)
        return 1
    json.dump(
        {'xml': xml, 'name': name, 'uuid': uuid, 'instance_dir': instance_dir},
        sys.stdout,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
