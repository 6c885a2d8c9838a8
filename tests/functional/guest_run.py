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

"""Runs inside the qemu-pmem VM, once per functional test run.

``tools/qemu-pmem/run.sh --exec`` starts it with the test venv's Python
(the host root is mounted read-only over 9p), after the rig has created
its default scenario. It exercises our real code against the guest's real
kernel and ndctl -- the operator CLI as a subprocess and the driver
loaded through its stevedore entry point, as cyborg-agent loads it --
then changes the host step by step and discovers again after each step.
It asserts nothing: it records what happened (outputs, exit codes, log
records, sysfs facts from the same boot) as JSON in
``$QEMU_PMEM_OUT/results.json``, and the host-side tests in this package
judge it. Every phase records its own error instead of stopping the
run, so one broken phase fails its tests, not all of them.
"""

import json
import logging
import os
import statistics
import subprocess
import sys
import time
import traceback

# Every external command here is bounded; a TCG guest is slow, so be
# generous.
COMMAND_TIMEOUT = 300
HOST = 'functional-host'
# The rig's guest has no host name ("(none)"), which stock Cyborg cannot
# even import with (its [DEFAULT] host default must be a valid address).
GUEST_HOSTNAME = b'functional-guest'
BENCHMARK_ROUNDS = 20

# The default scenario (tools/qemu-pmem/README.md): ns0, ns1 devdax in
# region0, ns2 devdax but disabled, ns3 devdax in region1, ns4 fsdax,
# ns5 sector, ns6 raw.
OFFERABLE = 'SMALL:ns0|ns1,LARGE:ns3'
WITH_REFUSALS = 'SMALL:ns0|ns1|ns2,LARGE:ns3|ns4|ns5|ns6,GONE:nosuchns'
# For the mutation scenario: ns2 starts disabled, ns7 does not exist yet.
MUTATING = 'SMALL:ns0|ns1|ns2,LARGE:ns3|ns7'

OUT = os.environ.get('QEMU_PMEM_OUT', '.')
WORK = '/tmp/cyborg-pmem-functional'
BIN = os.path.dirname(sys.executable)
CLI = os.path.join(BIN, 'cyborg-pmem-discover')


class Recorder(logging.Handler):
    """Keeps the driver's log records (level, logger, message)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(
            {
                'level': record.levelname,
                'logger': record.name,
                'message': record.getMessage(),
            }
        )

    def take(self):
        records, self.records = self.records, []
        return records


RECORDER = Recorder()


def run(argv, timeout=COMMAND_TIMEOUT):
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {'argv': argv, 'rc': None, 'stdout': '', 'stderr': 'timeout'}
    return {
        'argv': argv,
        'rc': done.returncode,
        'stdout': done.stdout,
        'stderr': done.stderr,
        'seconds': round(time.monotonic() - started, 3),
    }


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def sysfs():
    """What the kernel itself says, to compare the driver's report to."""
    facts = {'regions': {}, 'namespaces': {}, 'dax': {}, 'devnodes': {}}
    nd = '/sys/bus/nd/devices'
    for dev in sorted(os.listdir(nd)) if os.path.isdir(nd) else []:
        path = os.path.join(nd, dev)
        if dev.startswith('region'):
            facts['regions'][dev] = {
                'size': read(f'{path}/size'),
                'numa_node': read(f'{path}/numa_node'),
                'set_cookie': read(f'{path}/set_cookie'),
                'mappings': read(f'{path}/mappings'),
                'enabled': os.path.exists(f'{path}/driver'),
            }
        elif dev.startswith('namespace'):
            holder = read(f'{path}/holder')
            facts['namespaces'][dev] = {
                'alt_name': read(f'{path}/alt_name'),
                'uuid': read(f'{path}/uuid'),
                'size': read(f'{path}/size'),
                'numa_node': read(f'{path}/numa_node'),
                # The device that claims it (daxX.Y, pfnX.Y, bttX.Y)
                # and that device's own uuid.
                'holder': holder,
                'holder_uuid': read(f'{nd}/{holder}/uuid') if holder else None,
            }
    dax = '/sys/bus/dax/devices'
    for dev in sorted(os.listdir(dax)) if os.path.isdir(dax) else []:
        path = os.path.join(dax, dev)
        # .../regionX/daxX.Y/daxX.Y: the character device's parent is
        # the nd dax device that claims the namespace (its "holder").
        parent = os.path.basename(os.path.dirname(os.path.realpath(path)))
        facts['dax'][dev] = {
            'size': read(f'{path}/size'),
            'numa_node': read(f'{path}/numa_node'),
            'target_node': read(f'{path}/target_node'),
            'align': read(f'{path}/align'),
            'dev': read(f'{path}/dev'),
            'parent': parent,
        }
        node = f'/dev/{dev}'
        try:
            st = os.stat(node)
        except OSError:
            facts['devnodes'][node] = None
        else:
            facts['devnodes'][node] = {
                'char': (st.st_mode & 0o170000) == 0o020000,
                'dev': f'{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}',
            }
    return facts


def write_conf(name, pmem_namespaces):
    path = os.path.join(WORK, name + '.conf')
    with open(path, 'w') as f:
        f.write(
            f'[DEFAULT]\nhost = {HOST}\n\n'
            '[agent]\nenabled_drivers = intel_pmem_driver\n\n'
            f'[pmem_devices]\npmem_namespaces = {pmem_namespaces}\n'
        )
    return path


def cli(conf_path):
    result = run([CLI, '--config-file', conf_path, '--format', 'json'])
    try:
        result['json'] = json.loads(result['stdout'])
    except ValueError:
        result['json'] = None
    return result


def device_dict(device):
    """A DriverDevice as the CLI's ``--format json`` prints one."""
    return {
        'vendor': device.vendor,
        'model': device.model,
        'type': device.type,
        'std_board_info': device.std_board_info,
        'vendor_board_info': device.vendor_board_info,
        'stub': device.stub,
        'controlpath_id': {
            'cpid_type': device.controlpath_id.cpid_type,
            'cpid_info': device.controlpath_id.cpid_info,
        },
        'deployable_list': [
            {
                'name': dep.name,
                'driver_name': dep.driver_name,
                'num_accelerators': dep.num_accelerators,
                'attribute_list': [
                    {'key': a.key, 'value': a.value}
                    for a in dep.attribute_list
                ],
                'attach_handle_list': [
                    {
                        'attach_type': h.attach_type,
                        'in_use': h.in_use,
                        'attach_info': h.attach_info,
                    }
                    for h in dep.attach_handle_list
                ],
            }
            for dep in device.deployable_list
        ],
    }


def load_driver(conf_path):
    """Load intel_pmem_driver the way cyborg-agent does."""
    # cyborg-agent has imported cyborg.conf, and so registered [DEFAULT]
    # host, long before it loads a driver.
    import cyborg.conf  # noqa: F401
    from oslo_config import cfg
    import stevedore.driver

    cfg.CONF(['--config-file', conf_path], project='cyborg')
    manager = stevedore.driver.DriverManager(
        'cyborg.accelerator.driver', 'intel_pmem_driver', invoke_on_load=True
    )
    return manager.driver


def discover(driver):
    """One discover(): the devices, or the error it raised, and the log."""
    RECORDER.take()
    result = {}
    started = time.monotonic()
    try:
        result['devices'] = [device_dict(d) for d in driver.discover()]
    except Exception as err:
        result['error'] = {
            'type': type(err).__name__,
            'message': str(err),
            'traceback': traceback.format_exc(),
        }
    result['seconds'] = round(time.monotonic() - started, 3)
    result['log'] = RECORDER.take()
    return result


def listing():
    from cyborg_pmem import ndctl

    return run(ndctl.list_argv('ndctl'))


def phase(results, name, func):
    started = time.monotonic()
    try:
        results[name] = func()
    except Exception:
        results[name] = {'error': traceback.format_exc()}
    results.setdefault('timings', {})[name] = round(
        time.monotonic() - started, 1
    )
    save(results)


def save(results):
    with open(os.path.join(OUT, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, sort_keys=True)


def default_scenario():
    ok_conf = write_conf('offerable', OFFERABLE)
    refusals_conf = write_conf('refusals', WITH_REFUSALS)
    result = {
        'sysfs': sysfs(),
        'listing': listing(),
        # Other shapes of our own call: one region, as an agent would
        # never ask for, but ndctl then prints a different container.
        'listing_region1': run(
            ['ndctl', 'list', '--dimms', '--regions', '--namespaces']
            + ['--idle', '--verbose', '--region=region1']
        ),
        'cli_offerable': cli(ok_conf),
        'cli_refusals': cli(refusals_conf),
    }
    driver = load_driver(ok_conf)
    result['driver_class'] = '.'.join(
        (type(driver).__module__, type(driver).__name__)
    )
    result['driver_first'] = discover(driver)
    result['driver_second'] = discover(driver)
    result['driver_refusals'] = discover(load_driver(refusals_conf))
    return result


def benchmark():
    """discover() against the bare ndctl call it makes, interleaved.

    Also times the parts, to say where any overhead goes: the same argv
    through oslo.concurrency's processutils (what the runner uses), and
    the in-process work (parse, plan, Cyborg objects) on a saved listing.
    """
    from oslo_concurrency import processutils

    from cyborg_pmem import driver as driver_mod
    from cyborg_pmem import ndctl

    driver = load_driver(write_conf('benchmark', OFFERABLE))
    argv = ndctl.list_argv('ndctl')
    saved = subprocess.run(
        argv, capture_output=True, timeout=60, check=True
    ).stdout

    def in_process():
        plan = driver._discovery.run('bench', listing=saved)
        return [
            driver_mod._driver_device(d.driver_fields()) for d in plan.devices
        ]

    timed = {
        'discover': driver.discover,
        'ndctl': lambda: subprocess.run(
            argv, capture_output=True, timeout=60, check=True
        ),
        'processutils': lambda: processutils.execute(*argv, timeout=60),
        # What processutils does differently: a preexec_fn, which makes
        # Python fork() the whole process instead of using vfork().
        'ndctl_preexec_fn': lambda: subprocess.run(
            argv,
            capture_output=True,
            timeout=60,
            check=True,
            preexec_fn=lambda: None,
        ),
        'in_process': in_process,
    }
    # Warm every path (page cache, lazy imports) before measuring.
    for func in timed.values():
        func()
    seconds = {name: [] for name in timed}
    for _ in range(BENCHMARK_ROUNDS):
        for name, func in timed.items():
            started = time.perf_counter()
            func()
            seconds[name].append(time.perf_counter() - started)
    RECORDER.take()
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    return {
        'rounds': BENCHMARK_ROUNDS,
        'seconds': seconds,
        'medians': medians,
        'discover_median': medians['discover'],
        'ndctl_median': medians['ndctl'],
        'ratio': medians['discover'] / medians['ndctl'],
    }


def ns_dev(name):
    """The kernel device of the namespace called ``name``."""
    nd = '/sys/bus/nd/devices'
    for dev in sorted(os.listdir(nd)):
        if read(f'{nd}/{dev}/alt_name') == name:
            return dev
    raise LookupError(f'no namespace named {name}')


def acpi_nfit_device():
    drv = '/sys/bus/acpi/drivers/nfit'
    found = [d for d in os.listdir(drv) if d.startswith('ACPI0012')]
    if not found:
        raise LookupError('nfit is bound to no ACPI0012 device')
    return found[0]


def write_sysfs(path, value):
    with open(path, 'w') as f:
        f.write(value)


def mutations():
    """Change the host between discoveries, one step at a time."""
    conf_path = write_conf('mutating', MUTATING)
    driver = load_driver(conf_path)
    nfit = {}

    def enable_ns2():
        return [run(['ndctl', 'enable-namespace', ns_dev('ns2')])]

    def create_ns7():
        return [
            run(
                ['ndctl', 'create-namespace', '-r', 'region1', '-m', 'devdax']
                + ['-s', '512M', '-a', '2M', '-n', 'ns7']
            )
        ]

    def destroy_ns1():
        dev = ns_dev('ns1')
        return [
            run(['ndctl', 'disable-namespace', dev]),
            run(['ndctl', 'destroy-namespace', '-f', dev]),
        ]

    def rename_ns0():
        # Reconfiguring in place keeps namespace0.0 and dax0.0 but writes
        # a new label: new name, new uuid.
        return [
            run(
                ['ndctl', 'create-namespace', '-e', ns_dev('ns0'), '-f']
                + ['-m', 'devdax', '-a', '2M', '-n', 'ns0old']
            )
        ]

    def disable_ns7():
        return [run(['ndctl', 'disable-namespace', ns_dev('ns7')])]

    def stack_down():
        # What a host looks like when the nvdimm stack is not up: the
        # NFIT driver unbound, so ndctl sees no bus at all.
        nfit['device'] = acpi_nfit_device()
        nfit['dax_devices'] = len(sysfs()['dax'])
        write_sysfs('/sys/bus/acpi/drivers/nfit/unbind', nfit['device'])
        return [{'argv': ['unbind', 'nfit', nfit['device']], 'rc': 0}]

    def stack_up():
        write_sysfs('/sys/bus/acpi/drivers/nfit/bind', nfit['device'])
        # Regions and namespaces are probed asynchronously: wait until
        # at least the dax devices from before are back (the kernel also
        # re-enables namespaces that were disabled, so there may be more).
        deadline = time.monotonic() + 120
        while len(sysfs()['dax']) < nfit['dax_devices']:
            if time.monotonic() > deadline:
                raise TimeoutError('dax devices did not come back')
            time.sleep(0.5)
        return [{'argv': ['bind', 'nfit', nfit['device']], 'rc': 0}]

    def regions_disabled():
        return [run(['ndctl', 'disable-region', 'all'])]

    # (name, change, run the CLI too): the CLI costs seconds of Python
    # start-up over 9p, so it runs where its exit status changes.
    steps = [
        ('baseline', None, True),
        ('enable_ns2', enable_ns2, False),
        ('create_ns7', create_ns7, True),
        ('destroy_ns1', destroy_ns1, True),
        ('rename_ns0', rename_ns0, False),
        ('disable_ns7', disable_ns7, False),
        ('stack_down', stack_down, True),
        ('stack_up', stack_up, False),
        ('regions_disabled', regions_disabled, True),
    ]
    recorded = []
    for name, change, with_cli in steps:
        step = {'name': name}
        recorded.append(step)
        try:
            step['commands'] = change() if change else []
            step['sysfs'] = sysfs()
            step['listing'] = listing()
            step['driver'] = discover(driver)
            if with_cli:
                step['cli'] = cli(conf_path)
        except Exception:
            step['error'] = traceback.format_exc()
            break
    return {'config': MUTATING, 'steps': recorded}


def set_hostname(name):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.sethostname(name, len(name)) != 0:
        raise OSError(ctypes.get_errno(), 'sethostname failed')


def main():
    os.makedirs(WORK, exist_ok=True)
    set_hostname(GUEST_HOSTNAME)
    logger = logging.getLogger('cyborg_pmem')
    logger.setLevel(logging.DEBUG)
    logger.addHandler(RECORDER)
    logger.propagate = False
    results = {
        'python': sys.executable,
        'ndctl_version': run(['ndctl', '--version'])['stdout'].strip(),
        'kernel': os.uname().release,
        'host': HOST,
        'configs': {
            'offerable': OFFERABLE,
            'refusals': WITH_REFUSALS,
            'mutating': MUTATING,
        },
    }
    # Order matters: the first two phases need the untouched default
    # scenario; the mutations change it for good.
    phase(results, 'default', default_scenario)
    phase(results, 'benchmark', benchmark)
    phase(results, 'mutations', mutations)
    results['complete'] = True
    save(results)
    print(json.dumps(results['timings']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
