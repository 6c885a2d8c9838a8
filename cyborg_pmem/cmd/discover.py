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

"""``cyborg-pmem-discover``: show what intel_pmem_driver would report.

It runs the driver's own discovery (minus the Cyborg object step, so it
works where Cyborg is not installed) and is strict where the driver is
lenient: any configured namespace that cannot be offered makes it exit 1,
so a dry run before enabling the driver shows every problem.

Exit status: 0 all configured namespaces offered, 1 some refused,
2 a usage error, a configuration that names no namespace, or the
configuration or ndctl failed; each error is one stderr line. ``--health``
adds DIMM and region health; unavailable health is one stderr line and
never changes the exit status. With a saved listing (``--ndctl-output``)
health must come from a saved health listing too (``--health-output``):
this host's health next to another listing would describe another host.
"""

import json
import socket
import sys

from oslo_config import cfg

from cyborg_pmem import conf
from cyborg_pmem import discovery
from cyborg_pmem import exception
from cyborg_pmem.cmd import common

PROG = 'cyborg-pmem-discover'
EXIT_REFUSED = 1
EXIT_ERROR = 2
FORMATS = ('table', 'json')

CLI_OPTS = [
    cfg.StrOpt(
        'ndctl-output',
        metavar='FILE',
        help='Read a saved "ndctl list" output from FILE ("-" for stdin) '
        'instead of running ndctl.',
    ),
    # Checked by run(), not by oslo.config's choices: a bad value must be
    # a usage error like any other (exit 2, one line).
    cfg.StrOpt(
        'format',
        default='table',
        help='Output format: table or json.',
    ),
    cfg.BoolOpt(
        'health',
        default=False,
        help='Also show DIMM and region health (one "ndctl list --dimms '
        '--regions --health" call; it needs root). With --ndctl-output, '
        'give --health-output too.',
    ),
    cfg.StrOpt(
        'health-output',
        metavar='FILE',
        help='Read a saved "ndctl list --dimms --regions --health" output '
        'from FILE instead of running ndctl; implies --health.',
    ),
    cfg.BoolOpt(
        'debug',
        short='d',
        default=False,
        help='Log the driver\'s own messages (ndctl argv and timing, '
        'warnings, the discovery summary) to stderr.',
    ),
]

TABLE_COLUMNS = (
    'Region',
    'Resource class',
    'Namespace',
    'Device',
    'Path',
    'Size',
    'Align',
    'NUMA',
)


def plan_as_dict(plan):
    """The ``--format json`` document: the DriverDevice fields the driver
    builds its Cyborg objects from, and the refusals."""
    return {
        'devices': [device.driver_fields() for device in plan.devices],
        'refused': [
            {'name': r.name, 'label': r.label, 'reason': r.reason}
            for r in plan.refusals
        ],
    }


def _human_bytes(value):
    if value is None:
        return '-'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return (
                f'{value:.0f} {unit}'
                if unit == 'B'
                else (f'{value:.2f}'.rstrip('0').rstrip('.') + f' {unit}')
            )
        value /= 1024
    raise AssertionError('unreachable')  # pragma: no cover


def format_table(plan):
    rows = []
    for device in plan.devices:
        for deployable in device.deployables:
            for handle in deployable.attach_handles:
                info = json.loads(handle.attach_info)
                rows.append(
                    (
                        device.region,
                        deployable.resource_class,
                        info['name'],
                        info['dev'],
                        info['devpath'],
                        _human_bytes(info['size']),
                        _human_bytes(info.get('align')),
                        _cell(info.get('numa_node')),
                    )
                )
    lines = _columns(TABLE_COLUMNS, rows)
    deployables = sum(len(d.deployables) for d in plan.devices)
    lines.append('')
    lines.append(
        f'{len(plan.devices)} device(s), {deployables} deployable(s), '
        f'{len(rows)} namespace(s) offered, {len(plan.refusals)} refused'
    )
    for device in plan.devices:
        for deployable in device.deployables:
            lines.append(
                f'  {deployable.name}: {deployable.resource_class} x '
                f'{deployable.num_accelerators}'
            )
    return '\n'.join(lines)


HEALTH_COLUMNS = (
    'DIMM',
    'Region',
    'Health',
    'Temp C',
    'Spares %',
    'Life used %',
    'Shutdown',
    'Shutdowns',
)


def _cell(value):
    return '-' if value is None else str(value)


def format_health(stats):
    rows = [
        (
            dev,
            _cell(dimm['region']),
            _cell(dimm.get('health_state')),
            _cell(dimm.get('temperature_celsius')),
            _cell(dimm.get('spares_percentage')),
            _cell(dimm.get('life_used_percentage')),
            _cell(dimm.get('shutdown_state')),
            _cell(dimm.get('shutdown_count')),
        )
        for dev, dimm in stats['dimms'].items()
    ]
    lines = _columns(HEALTH_COLUMNS, rows)
    for dev, region in stats['regions'].items():
        lines.append(
            f'  {dev}: {region["health_state"]} '
            f'({", ".join(region["dimms"]) or "no DIMMs"})'
        )
    return '\n'.join(lines)


def _columns(header, rows):
    """Lines of left-aligned columns; every cell is a str."""
    widths = [
        max(map(len, column)) for column in zip(header, *rows, strict=True)
    ]
    return [
        '  '.join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in [header, *rows]
    ]


def _health(config, stderr):
    # Imported here: health loads the ndctl runner (oslo.concurrency),
    # which a run on a saved listing without --health never uses.
    from cyborg_pmem import health

    with common.driver_log(stderr, config.debug):
        if config.health_output is not None:
            try:
                listing = _read_listing(config.health_output)
            except exception.PmemError as err:
                return health.unavailable(str(err))
        else:
            listing = None
        return health.collect(
            config.pmem_devices.ndctl_path,
            config.pmem_devices.ndctl_timeout,
            listing=listing,
        )


def _read_listing(path):
    if path is None:
        return None
    if path == '-':
        return sys.stdin.buffer.read()
    try:
        with open(path, 'rb') as listing:
            return listing.read()
    except OSError as err:
        raise exception.ListingUnreadable(
            path=path, reason=err.strerror
        ) from None


def _check_usage(config):
    if config.format not in FORMATS:
        raise common.UsageError(
            f'argument --format: invalid choice {config.format!r} (choose '
            f'from {", ".join(FORMATS)})'
        )
    if (
        config.health
        and config.ndctl_output is not None
        and config.health_output is None
    ):
        raise common.UsageError(
            '--health with --ndctl-output would show the health of this '
            'host next to a saved listing; give the saved health listing '
            'with --health-output FILE ("ndctl list --dimms --regions '
            '--health"), or leave out --ndctl-output'
        )


def _discover(config, stderr):
    with common.driver_log(stderr, config.debug):
        pmem = discovery.Discovery.from_conf(config.pmem_devices)
        common.check_configured(config, pmem.labels)
        listing = _read_listing(config.ndctl_output)
        return pmem.run(config.host, listing=listing)


def run(argv, stdout, stderr):
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config.register_cli_opts(CLI_OPTS)
    # Cyborg's own option: deployable names start with it.
    config.register_opt(
        cfg.StrOpt(
            'host',
            default=socket.gethostname(),
            sample_default='<current hostname>',
        )
    )
    # Read cyborg.conf as the agent does; only our options matter here.
    # argparse's own usage errors (an unknown flag, a missing value) exit
    # 2 with its usage text and a "cyborg-pmem-discover: error:" line.
    try:
        config(argv, project='cyborg', prog=PROG)
        _check_usage(config)
        result = _discover(config, stderr)
    except (common.UsageError, exception.PmemError, cfg.Error) as err:
        print(f'{PROG}: error: {err}', file=stderr)
        return EXIT_ERROR
    # Discovery has succeeded by now: health comes after and cannot fail it.
    stats = None
    if config.health or config.health_output is not None:
        stats = _health(config, stderr)
    if config.format == 'json':
        document = plan_as_dict(result)
        if stats is not None:
            document['health'] = stats
        json.dump(document, stdout, indent=2, sort_keys=True)
        stdout.write('\n')
    else:
        stdout.write(format_table(result) + '\n')
        if stats is not None:
            stdout.write('\n' + format_health(stats) + '\n')
    if stats is not None and stats['message']:
        print(f'{PROG}: health: {stats["message"]}', file=stderr)
    for refusal in result.refusals:
        print(f'{PROG}: refused {refusal}', file=stderr)
    return EXIT_REFUSED if result.refusals else 0


def main():
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))
