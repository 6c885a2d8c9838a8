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

"""A Nova-built guest with a PMEM namespace, booted under real libvirt.

The one implementation of "build the domain XML, boot it, read the guest's
view", shared by the VM test (tests/vm/test_boot.py, ``tox -e vm``) and the
demo (tools/demo.py, ``tox -e demo``):

1. :func:`nova_domain`: the patched Nova libvirt driver builds the domain
   XML for an instance with one bound PMEM ARQ (tests/nova/guest_xml.py, in a
   process of its own).
2. :func:`stand_in`: the nvdimm's source, ``/dev/daxX.Y``, becomes a
   regular file of the namespace's size. This machine has no device DAX;
   nothing else Nova wrote changes.
3. :func:`add_scaffolding` and :func:`prepare_instance_dir`: only what a
   test boot needs. The rig's kernel and initramfs
   (tools/qemu-pmem/build.sh) go where Nova's XML points for an image with
   a kernel and a ramdisk, with the guest script appended to the
   initramfs as tools/qemu-pmem/run.sh does; an empty raw root disk
   stands where Nova's XML expects the image's copy (the guest never reads
   it); a second serial port, a file, brings the guest's results back.
4. :class:`Libvirt` and :func:`boot`: virtlogd and libvirtd started here
   (there is no systemd) and stopped by pid; ``virt-xml-validate``,
   ``virsh define`` and ``start``, a bounded wait for the guest to power
   off, then ``destroy`` and ``undefine`` whatever happened. TCG only:
   ``/dev/kvm`` does not work on these machines.
"""

import base64
import dataclasses
import gzip
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET

from tests import commands
from tests.functional import hypervisor
from tests.nova import guest_xml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD_SH = os.path.join(ROOT, 'tools', 'qemu-pmem', 'build.sh')
GUEST_SCRIPT = os.path.join(HERE, 'guest-pmem.sh')
URI = 'qemu:///system'
NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'
NVDIMM = "./devices/memory[@model='nvdimm']"
DEVDAX = re.compile(r'/dev/dax[0-9]+\.[0-9]+')
VIRTLOGD_SOCKET = '/run/libvirt/virtlogd-sock'
QEMU_CONF = '/etc/libvirt/qemu.conf'
QEMU_LOG_DIR = '/var/log/libvirt/qemu'
KIB = 1024
GIB = 1 << 30
# Bounded waits, generous: other work shares the two cores, and a TCG
# guest is slow.
COMMAND_TIMEOUT = 120
DAEMON_TIMEOUT = 120
BOOT_TIMEOUT = 900


class VMError(Exception):
    """A step of the VM boot failed; the message is one line."""


@dataclasses.dataclass
class NovaDomain:
    xml: str
    name: str
    uuid: str
    instance_dir: str


@dataclasses.dataclass
class GuestRun:
    """What one boot of a domain brought back."""

    name: str
    out_dir: str
    rc: int
    # The guest's "ndctl list -R" as it printed it, and parsed.
    regions_text: str
    regions: list
    namespaces: list
    reads: dict
    # Guest uptime when /init started and when it was done.
    boot_seconds: float
    done_seconds: float
    # virsh start until the domain was shut off.
    wall_seconds: float


def _run(argv, what, timeout=COMMAND_TIMEOUT, **kwargs):
    return commands.run(argv, what, VMError, timeout, **kwargs)


# ---------------------------------------------------------------- Nova


def parse(xml):
    """A domain XML that Nova (or this module) wrote."""
    return ET.fromstring(xml)  # noqa: S314 (our own, not untrusted, input)


def _serialize(root):
    # Keep Nova's prefix for its metadata rather than ElementTree's ns0.
    ET.register_namespace('nova', NOVA_NS)
    return ET.tostring(root, encoding='unicode')


def nova_domain(arq, instances_path, instance_id):
    """The patched Nova driver's domain XML for an instance with ``arq``,
    the bound PMEM ARQ as the Cyborg API returns it (this environment's
    Nova must carry contrib/nova: tools/nova-env.sh)."""
    try:
        built = guest_xml.build([arq], instances_path, instance_id)
    except guest_xml.GuestXMLError as err:
        raise VMError(str(err)) from None
    domain = NovaDomain(**built)
    if parse(domain.xml).find(NVDIMM) is None:
        raise VMError(
            f'Nova built no nvdimm for ARQ {arq.get("uuid")}: is Nova '
            'patched (tools/nova-env.sh)?'
        )
    return domain


def nvdimm_text(xml):
    """The ``<memory model="nvdimm">`` element as Nova wrote it."""
    match = re.search(
        r'^( *)<memory model="nvdimm".*?</memory>', xml, re.M | re.S
    )
    if match is None:
        raise VMError('the domain XML has no <memory model="nvdimm">')
    indent = match.group(1)
    return '\n'.join(
        line.removeprefix(indent) for line in match.group(0).split('\n')
    )


def label_bytes(xml):
    """The nvdimm label area Nova asked for, in bytes."""
    size = parse(xml).find(f'{NVDIMM}/target/label/size')
    return int(size.text) * KIB


def namespace_bytes(arq):
    return int(arq['attach_handle_info']['size'])


# ---------------------------------------------------------- the test boot


def stand_in(xml, backing_file):
    """Swap the nvdimm's ``/dev/daxX.Y`` for ``backing_file``.

    :returns: (the new XML, one line saying so)
    """
    root = parse(xml)
    path = root.find(f'{NVDIMM}/source/path')
    if path is None or not DEVDAX.fullmatch(path.text or ''):
        raise VMError(
            'the nvdimm has no /dev/daxX.Y source path to stand in for'
        )
    size = os.path.getsize(backing_file)
    line = (
        f'There is no {path.text} here (no device DAX on this machine): '
        f'the nvdimm is backed by {backing_file}, a regular file of the '
        f"namespace's {size} bytes."
    )
    path.text = backing_file
    return _serialize(root), line


def add_scaffolding(xml, xfer_log):
    """A second serial port, a file: the rig's /init sends its results
    there (/dev/ttyS1); Nova's own serial port stays the console."""
    root = parse(xml)
    serial = ET.SubElement(root.find('devices'), 'serial', type='file')
    ET.SubElement(serial, 'source', path=xfer_log)
    ET.SubElement(serial, 'target', port='1')
    return _serialize(root)


def make_backing_file(path, size):
    """A sparse regular file of ``size`` bytes for the nvdimm."""
    with open(path, 'wb') as f:
        f.truncate(size)
    return path


def scrub_stand_in(path):
    """Zero the stand-in as our scrub zeroes a namespace.

    The scrub runs ``daxio -z -o /dev/daxX.Y`` (cyborg_pmem.privsep):
    every byte of the device, in place, its size unchanged. daxio refuses
    a regular file ("neither input nor output is device dax"), so the
    same is done here with writes.
    """
    size = os.path.getsize(path)
    chunk = bytes(8 << 20)
    with open(path, 'r+b') as f:
        done = 0
        while done < size:
            done += f.write(chunk[: min(len(chunk), size - done)])
        f.flush()
        os.fsync(f.fileno())
    return size


def nonzero_offset(path):
    """The offset of the first byte that is not zero, or None."""
    chunk_size = 8 << 20
    zeros = bytes(chunk_size)
    offset = 0
    with open(path, 'rb') as f:
        while chunk := f.read(chunk_size):
            if chunk != zeros[: len(chunk)]:
                return offset + next(i for i, b in enumerate(chunk) if b)
            offset += len(chunk)
    return None


def build_rig():
    """The rig's kernel and initramfs, built once into the cache."""
    _run(['bash', BUILD_SH], 'tools/qemu-pmem/build.sh', timeout=1200)
    cache = os.environ.get(
        'QEMU_PMEM_CACHE', os.path.expanduser('~/.cache/qemu-pmem')
    )
    kernel = os.path.join(cache, 'vmlinuz')
    initramfs = os.path.join(cache, 'initramfs.cpio.gz')
    for path in (kernel, initramfs):
        if not os.path.isfile(path):
            raise VMError(f'tools/qemu-pmem/build.sh left no {path}')
    return kernel, initramfs


def _overlay(guest_env):
    """A gzipped cpio archive of /guest: config, script.sh, pmem.env."""
    with tempfile.TemporaryDirectory() as tmp:
        guest = os.path.join(tmp, 'guest')
        os.mkdir(guest)
        with open(os.path.join(guest, 'config'), 'w') as f:
            # Leave the namespace as the host hands it over.
            f.write('QP_SCENARIO=none\n')
        with open(os.path.join(guest, 'pmem.env'), 'w') as f:
            for key, value in sorted(guest_env.items()):
                if "'" in str(value):
                    raise VMError(f'{key} for the guest holds a quote')
                f.write(f"{key}='{value}'\n")
        shutil.copy(GUEST_SCRIPT, os.path.join(guest, 'script.sh'))
        names = ['guest'] + [f'guest/{n}' for n in sorted(os.listdir(guest))]
        return gzip.compress(_cpio(names, tmp))


def _cpio(names, cwd):
    try:
        done = subprocess.run(
            ['cpio', '-o', '-H', 'newc', '--quiet', '-R', '0:0'],
            input=('\n'.join(names) + '\n').encode(),
            capture_output=True,
            cwd=cwd,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise VMError('cpio not found (apt-get install cpio)') from None
    if done.returncode != 0:
        raise VMError(f'cpio failed: {done.stderr.decode().strip()}')
    return done.stdout


def prepare_instance_dir(domain, rig, guest_env):
    """Put the rig's kernel and initramfs (with the guest script) where
    Nova's XML boots them, and the empty root disk it expects."""
    kernel, initramfs = rig
    os.makedirs(domain.instance_dir, exist_ok=True)
    shutil.copy(kernel, os.path.join(domain.instance_dir, 'kernel'))
    with open(os.path.join(domain.instance_dir, 'ramdisk'), 'wb') as out:
        with open(initramfs, 'rb') as f:
            shutil.copyfileobj(f, out)
        # The kernel unpacks concatenated archives in order.
        out.write(_overlay(guest_env))
    with open(os.path.join(domain.instance_dir, 'disk'), 'wb') as f:
        f.truncate(guest_xml.ROOT_GB * GIB)


def bootable(domain, backing_file, rig, guest_env, work_dir):
    """Nova's domain made bootable here: the stand-in for its namespace
    and the boot scaffolding.

    :returns: (the XML to boot, the stand-in's one line)
    """
    xml, line = stand_in(domain.xml, backing_file)
    xml = add_scaffolding(
        xml, os.path.join(work_dir, f'{domain.name}.xfer.log')
    )
    prepare_instance_dir(domain, rig, guest_env)
    return xml, line


def files_of(xml):
    """The host files a domain's QEMU opens."""
    root = parse(xml)
    paths = [root.findtext('./os/kernel'), root.findtext('./os/initrd')]
    paths += [e.get('file') for e in root.findall('./devices/disk/source')]
    paths += [e.text for e in root.findall(f'{NVDIMM}/source/path')]
    return [p for p in paths if p]


def check_reachable(path):
    """Where QEMU runs as libvirt's unprivileged user, every directory
    above ``path`` must let it through."""
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(directory).st_mode & 0o001:
            raise VMError(
                f'{directory} is not searchable by others (chmod o+x), so '
                f"libvirt's QEMU user cannot reach {path}"
            )
        if directory == '/':
            return
        directory = os.path.dirname(directory)


# --------------------------------------------------------------- libvirt


class Libvirt:
    """virtlogd and libvirtd for qemu:///system.

    Started here and stopped by their pid; a libvirtd that already answers
    is used and left running. Every domain defined through :meth:`define`
    is destroyed and undefined by :meth:`stop`, if :func:`boot` has not
    already done so.
    """

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.started = []
        self.domains = []
        self.note = ''
        # Whether QEMU runs as root (our libvirtd) or as libvirt's user.
        self.qemu_as_root = False

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def answers(self):
        try:
            done = subprocess.run(
                ['virsh', '-c', URI, 'version'],
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def start(self):
        if self.answers():
            self.note = f'libvirtd already running for {URI}; used as is'
            return
        if not _socket_answers(VIRTLOGD_SOCKET):
            self._spawn('virtlogd')
            self._wait('virtlogd', lambda: _socket_answers(VIRTLOGD_SOCKET))
        argv = self._libvirtd_argv()
        self._spawn('libvirtd', argv)
        self.qemu_as_root = bool(argv)
        self._wait('libvirtd', self.answers)
        self.note = 'started ' + ', '.join(
            f'{name} (pid {p.pid})' for name, p, _ in self.started
        )

    def _spawn(self, name, argv=None):
        binary = hypervisor.which(name)
        if binary is None:
            raise VMError(f'{name} not found ({hypervisor.LIBVIRT_HINT})')
        log_path = os.path.join(self.log_dir, f'{name}.log')
        log = open(log_path, 'wb')  # noqa: SIM115 (closed in stop())
        # In the foreground, so that its pid is the daemon's own, to stop
        # exactly it.
        process = subprocess.Popen(
            (argv or []) + [binary],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append((name, process, log))

    def _libvirtd_argv(self):
        """Start libvirtd in a mount namespace of its own, whose qemu.conf
        runs QEMU as root; the machine's qemu.conf is left alone.

        /dev/kvm here is root's only (and does not work). libvirt probes
        QEMU's capabilities with CAP_DAC_OVERRIDE, which opens it, but
        checks /dev/kvm as its QEMU user (libvirt-qemu), who cannot: the
        probe says KVM, the check says no, so libvirt never trusts its
        capabilities cache and probes QEMU again at every lookup, a dozen
        times per define. With QEMU run as root both agree. The guests
        are TCG whatever libvirt thinks of KVM: Nova writes
        <domain type="qemu">.
        """
        unshare = hypervisor.which('unshare')
        if unshare is None:
            return []
        conf = os.path.join(self.log_dir, 'qemu.conf')
        try:
            shutil.copy(QEMU_CONF, conf)
        except FileNotFoundError:
            open(conf, 'w').close()
        with open(conf, 'a') as f:
            f.write('\n# Added for the VM test: QEMU runs as root.\n')
            f.write('user = "root"\ngroup = "root"\n')
        return [
            unshare,
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-c',
            f'mount --bind {shlex.quote(conf)} {QEMU_CONF} && exec "$0"',
        ]

    def _wait(self, name, ready):
        _name, process, log = self.started[-1]
        deadline = time.monotonic() + DAEMON_TIMEOUT
        while not ready():
            if process.poll() is not None:
                raise VMError(
                    f'{name} exited {process.returncode}: '
                    f'{_last_line(log.name)}'
                )
            if time.monotonic() > deadline:
                raise VMError(
                    f'{name} not ready after {DAEMON_TIMEOUT} s; see '
                    f'{log.name}'
                )
            time.sleep(0.5)

    def virsh(self, *args, what=None, timeout=COMMAND_TIMEOUT):
        return _run(
            ['virsh', '-c', URI, *args],
            what or f'virsh {args[0]}',
            timeout=timeout,
        )

    def define(self, xml_path, name):
        self.virsh('define', xml_path)
        self.domains.append(name)

    def forget(self, name):
        """Destroy (if running) and undefine ``name``."""
        if name not in self.domains:
            return
        state = subprocess.run(
            ['virsh', '-c', URI, 'domstate', name],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if state.returncode == 0 and state.stdout.strip() != 'shut off':
            self.virsh('destroy', name)
        self.virsh('undefine', name)
        self.domains.remove(name)

    def stop(self):
        errors = []
        for name in list(self.domains):
            try:
                self.forget(name)
            except VMError as err:
                errors.append(str(err))
        # libvirtd before virtlogd, which it writes to.
        for _name, process, log in reversed(self.started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=60)
            log.close()
        self.started = []
        if errors:
            raise VMError('; '.join(errors))


def _socket_answers(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def _last_line(path):
    try:
        with open(path, errors='replace') as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return 'no log'
    return lines[-1] if lines else 'no output'


def validate(xml_path):
    """``virt-xml-validate``: the XML against libvirt's domain schema."""
    _run(['virt-xml-validate', xml_path, 'domain'], 'virt-xml-validate')


def boot(libvirt, xml, name, out_dir, timeout=BOOT_TIMEOUT):
    """Define and start ``xml``, wait until the guest powers off, read what
    it sent back, and destroy and undefine the domain whatever happened.
    """
    os.makedirs(out_dir, exist_ok=True)
    xml_path = os.path.join(out_dir, 'domain.xml')
    with open(xml_path, 'w') as f:
        f.write(xml)
    validate(xml_path)
    if not libvirt.qemu_as_root:
        for path in files_of(xml):
            check_reachable(path)
    libvirt.define(xml_path, name)
    try:
        started = time.monotonic()
        libvirt.virsh('start', name)
        state = _wait_shut_off(libvirt, name, started + timeout)
        wall = time.monotonic() - started
    finally:
        libvirt.forget(name)
        # libvirt's log of the domain: QEMU's command line and messages.
        qemu_log = os.path.join(QEMU_LOG_DIR, f'{name}.log')
        if os.path.isfile(qemu_log):
            shutil.copy(qemu_log, os.path.join(out_dir, 'qemu.log'))
    if state != 'shut off':
        raise VMError(
            f'{name} did not power off within {timeout} s (state '
            f'{state!r}); see {out_dir}'
        )
    return read_results(name, _xfer_log(xml), out_dir, wall)


def _wait_shut_off(libvirt, name, deadline):
    while True:
        state = libvirt.virsh('domstate', name).stdout.strip()
        if state in ('shut off', 'crashed') or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def _xfer_log(xml):
    root = parse(xml)
    for serial in root.findall("./devices/serial[@type='file']"):
        if serial.find("target[@port='1']") is not None:
            return serial.find('source').get('path')
    raise VMError('the domain has no results serial port')


def _extract(tar, directory, name):
    """Unpack the guest's results into ``directory``: regular files and
    directories only, and nothing outside it. Written out rather than
    ``extractall(filter='data')``, which Debian 12's Python 3.11.2 lacks."""
    for member in tar.getmembers():
        path = os.path.normpath(member.name)
        if path.startswith(('/', '..')) or not (
            member.isfile() or member.isdir()
        ):
            raise VMError(f'{name} sent back an unexpected {member.name!r}')
        target = os.path.join(directory, path)
        if member.isdir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with tar.extractfile(member) as source, open(target, 'wb') as copy:
            shutil.copyfileobj(source, copy)


def read_results(name, xfer_log, out_dir, wall_seconds):
    """Decode what the rig's /init sent over its second serial port:
    base64(tar.gz) of its /out between two marker lines."""
    try:
        with open(xfer_log, 'rb') as f:
            text = f.read().decode('ascii', 'replace').replace('\r', '')
    except OSError as err:
        raise VMError(f'{name} sent nothing back: {err}') from None
    match = re.search(
        r'^===QEMU-PMEM-BEGIN===\n(.*?)^===QEMU-PMEM-END rc=(\d+)===$',
        text,
        re.M | re.S,
    )
    if match is None:
        raise VMError(f'{name} sent no results; see {xfer_log}')
    results = os.path.join(out_dir, 'guest')
    with tarfile.open(
        fileobj=io.BytesIO(base64.b64decode(match.group(1))), mode='r:gz'
    ) as tar:
        _extract(tar, results, name)
    files = os.path.join(results, 'files')
    init_log = _read(os.path.join(results, 'init.log'))
    run = GuestRun(
        name=name,
        out_dir=out_dir,
        rc=int(match.group(2)),
        regions_text=_read(os.path.join(files, 'regions.json')).strip(),
        regions=_json(os.path.join(files, 'regions.json')),
        namespaces=_json(os.path.join(files, 'namespaces.json')),
        reads={},
        boot_seconds=_uptime(init_log, 'guest init start'),
        done_seconds=_uptime(init_log, 'done rc='),
        wall_seconds=round(wall_seconds, 1),
    )
    for entry in sorted(os.listdir(files)):
        found = re.fullmatch(r'read-(\d+)\.bin', entry)
        if found:
            with open(os.path.join(files, entry), 'rb') as f:
                run.reads[int(found.group(1))] = f.read()
    if run.rc != 0:
        raise VMError(
            f'{name}: the guest reported rc={run.rc}: '
            f'{_last_line(os.path.join(results, "script.stderr"))}; see '
            f'{results}/init.log'
        )
    return run


def _read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def _json(path):
    text = _read(path).strip()
    try:
        return json.loads(text) if text else []
    except ValueError:
        raise VMError(f'{path} is not JSON: {text[:80]!r}') from None


def _uptime(init_log, event):
    for line in init_log.splitlines():
        found = re.match(r'\[([0-9.]+)\] (.*)', line)
        if found and found.group(2).startswith(event):
            return float(found.group(1))
    return None


# ------------------------------------------------------- the demo's view


def describe_regions(run):
    """The regions the guest listed, in a few words."""
    if not run.regions:
        return 'no PMEM region'
    return ', '.join(
        f'{r.get("dev")} ({r.get("type")}, {r.get("size")} bytes)'
        for r in run.regions
    )
