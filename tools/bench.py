#!/usr/bin/env python3
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

"""What the driver costs, measured against what it cannot avoid.

Run with ``tox -e bench``. Prints one table with each target beside its
figure and whether it is met; exits 0 either way (timings depend on the
machine, and other work on it).

(a) parse + plan of synthetic listings (tests/fixtures/listing.py: the
    shape of the real driver listing, DIMMs and 8 regions with devdax
    namespaces nested), 10 to 1 000 namespaces, all configured, against
    ``json.loads`` of the same text in the same run. Targets: parse + plan
    at most 3x ``json.loads`` at every size, and at most 12x growth per
    10x namespaces. A host has tens of namespaces, a thousand at the very
    most, so that is as far as it goes.
(b) peak memory (tracemalloc) of (a) at its largest size.
(c) Discovery(...).run end to end against a fake ndctl (a Python script
    printing a canned 1 000-namespace listing), and that same fake run
    bare with subprocess; for information.
(d) the CLI (cyborg-pmem-discover --ndctl-output FILE) on 1 000
    namespaces, and a bare ``python -c`` that imports oslo.config and
    loads the same JSON; for information.

Every time is the median of --runs runs, the cases of a table timed in
turns within each round.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tox runs this file as a script: the repository root is not on the path.
sys.path.insert(0, ROOT)

from cyborg_pmem import discovery  # noqa: E402
from cyborg_pmem import inventory  # noqa: E402
from cyborg_pmem import labels  # noqa: E402
from cyborg_pmem import planner  # noqa: E402
from tests.fixtures.listing import synthetic_listing  # noqa: E402

REGIONS = 8
SIZES = (10, 100, 1000)
# parse + plan against json.loads of the same listing, at every size.
MAX_RATIO = 3.0
# Growth of parse + plan per 10x namespaces (linear would be 10x).
MAX_GROWTH = 12.0
# The size of (c) and (d).
HOST_SIZE = 1000


def parse_and_plan(listing, config):
    return planner.plan(inventory.parse_listing(listing), config, 'bench')


def met(ok):
    return 'met' if ok else 'MISSED'


def bench_core(runs):
    cases = []
    for count in SIZES:
        listing, config_text = synthetic_listing(REGIONS, count)
        config = labels.parse_pmem_namespaces(config_text)
        result = parse_and_plan(listing, config)
        if sum(result.offered().values()) != count:
            sys.exit(f'bench: listing of {count} not all offered')
        cases.append((count, listing, config))
    # Every size in each round, so that the machine's speed drifting
    # during the run does not show up as growth between sizes.
    funcs = []
    for _count, listing, config in cases:
        funcs.append(lambda listing=listing: json.loads(listing))
        funcs.append(
            lambda listing=listing, config=config: parse_and_plan(
                listing, config
            )
        )
    medians = interleaved_medians(funcs, runs)
    rows = []
    previous = None
    for (count, listing, _config), json_s, seconds in zip(
        cases, medians[0::2], medians[1::2], strict=True
    ):
        growth = None if previous is None else seconds / previous
        rows.append((count, len(listing), json_s, seconds, growth))
        previous = seconds
    _count, listing, config = cases[-1]
    tracemalloc.start()
    parse_and_plan(listing, config)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rows, peak, len(listing)


def write_fake(directory, listing_path):
    """An ndctl that prints the saved listing: a Python script, as
    cheap to start as a real tool that loads a few libraries."""
    path = os.path.join(directory, 'ndctl')
    with open(path, 'w') as f:
        f.write(
            f'#!{sys.executable} -S\n'
            'import sys\n'
            f'with open({listing_path!r}, "rb") as listing:\n'
            '    sys.stdout.buffer.write(listing.read())\n'
        )
    os.chmod(path, 0o700)
    return path


def interleaved_medians(funcs, runs):
    """Median time of each function, run in turns so that a change of
    load on the machine hits them all alike."""
    times = [[] for _ in funcs]
    for _ in range(runs):
        for func, spent in zip(funcs, times, strict=True):
            started = time.perf_counter()
            func()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def write_host(directory):
    """The (c) and (d) host: its listing file and its cyborg.conf."""
    listing, config = synthetic_listing(REGIONS, HOST_SIZE)
    listing_path = os.path.join(directory, 'listing.json')
    with open(listing_path, 'w') as f:
        f.write(listing)
    conf_path = os.path.join(directory, 'cyborg.conf')
    with open(conf_path, 'w') as f:
        f.write(f'[pmem_devices]\npmem_namespaces = {config}\n')
    return listing_path, conf_path, config


def bench_discovery(directory, listing_path, config, runs):
    from cyborg_pmem import ndctl

    fake = write_fake(directory, listing_path)
    argv = [fake, *ndctl.LIST_ARGS]
    disc = discovery.Discovery(config, fake, 30)
    disc.run('bench')
    return interleaved_medians(
        [
            lambda: subprocess.run(argv, capture_output=True, check=True),
            lambda: disc.run('bench'),
        ],
        runs,
    )


def bench_cli(listing_path, conf_path, runs):
    # The script installed beside this interpreter: tox runs us without
    # activating the venv, so PATH may not hold it.
    cli = os.path.join(os.path.dirname(sys.executable), 'cyborg-pmem-discover')
    if not os.path.exists(cli):
        cli = shutil.which('cyborg-pmem-discover') or 'cyborg-pmem-discover'
    ours_argv = [
        cli,
        '--config-file',
        conf_path,
        '--ndctl-output',
        listing_path,
    ]
    bare_argv = [
        sys.executable,
        '-c',
        'import json, sys, oslo_config.cfg\n'
        'with open(sys.argv[1]) as f:\n'
        '    json.load(f)',
        listing_path,
    ]
    subprocess.run(ours_argv, capture_output=True, check=True)

    def run(argv):
        return lambda: subprocess.run(argv, capture_output=True, check=True)

    return interleaved_medians([run(bare_argv), run(ours_argv)], runs)


def print_core(core):
    print(
        f'(a) parse + plan, {REGIONS} regions, every namespace configured, '
        'against json.loads of the same listing'
    )
    print(
        f'    {"namespaces":>10}  {"listing":>9}  {"json.loads":>10}  '
        f'{"parse+plan":>10}  {"ratio":>6}  {"per 10x":>7}'
    )
    for count, size, json_s, seconds, growth in core:
        ratio = seconds / json_s
        print(
            f'    {count:>10}  {size / 1e6:>7.2f}MB  {json_s * 1e3:>8.2f}ms  '
            f'{seconds * 1e3:>8.2f}ms  {ratio:>5.2f}x  '
            + ('' if growth is None else f'{growth:>6.1f}x')
        )
    worst_ratio = max(seconds / json_s for _c, _s, json_s, seconds, _g in core)
    worst_growth = max(g for *_rest, g in core if g is not None)
    print(
        f'    target: ratio <= {MAX_RATIO:.0f}x at every size: worst '
        f'{worst_ratio:.2f}x, {met(worst_ratio <= MAX_RATIO)}'
    )
    print(
        f'    target: growth per 10x <= {MAX_GROWTH:.0f}x: worst '
        f'{worst_growth:.1f}x, {met(worst_growth <= MAX_GROWTH)}'
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=21)
    args = parser.parse_args()
    runs = args.runs

    core, peak, big_bytes = bench_core(runs)
    print(
        f'cyborg-pmem benchmark (median of {runs} runs, Python '
        f'{sys.version.split()[0]}, {os.cpu_count()} CPUs)'
    )
    print()
    print_core(core)
    print()
    print(
        f'(b) peak memory, parse + plan of {SIZES[-1]} namespaces '
        f'({big_bytes / 1e6:.2f} MB of JSON): {peak / 1e6:.1f} MB'
    )
    print()
    with tempfile.TemporaryDirectory() as directory:
        listing_path, conf_path, config = write_host(directory)
        bare_s, ours_s = bench_discovery(directory, listing_path, config, runs)
        cli_bare, cli_ours = bench_cli(
            listing_path, conf_path, max(5, runs // 3)
        )
    print(
        f'(c) Discovery.run, {HOST_SIZE} namespaces, against a fake ndctl '
        '(a Python script) run bare'
    )
    print(
        f'    bare {bare_s * 1e3:.1f} ms, discovery {ours_s * 1e3:.1f} ms, '
        f'ratio {ours_s / bare_s:.2f}x (for information, no target)'
    )
    print()
    print(
        f'(d) cyborg-pmem-discover --ndctl-output, {HOST_SIZE} namespaces, '
        'against python -c "import oslo_config; json.load(...)"'
    )
    print(
        f'    bare {cli_bare * 1e3:.0f} ms, CLI {cli_ours * 1e3:.0f} ms, '
        f'ratio {cli_ours / cli_bare:.2f}x (for information, no target)'
    )


if __name__ == '__main__':
    main()
