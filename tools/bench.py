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

Run with ``tox -e bench``. Prints one table; asserts nothing (timings
depend on the machine): the README's Performance section quotes a run.

(a) parse + plan of synthetic listings in the shape of the real
    driver listing (tests/fixtures/listing.py: DIMMs, 8 regions, devdax
    namespaces nested), 10 to 10 000 namespaces, all
    configured; with the growth per 10x (linear: about 10).
(b) peak memory (tracemalloc) of (a) at 10 000 namespaces.
(c) Discovery(...).run end to end against a fake ndctl printing a canned
    1 000-namespace listing, divided by the time of running that same
    fake bare with subprocess: our overhead on top of the tool.
(d) the CLI (cyborg-pmem-discover --ndctl-output FILE) on 10 000
    namespaces, divided by a bare ``python -c`` that imports oslo.config
    and loads the same JSON.

Every time is the median of --runs runs.
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
SIZES = (10, 100, 1000, 10000)


def parse_and_plan(listing, config):
    return planner.plan(inventory.parse_listing(listing), config, 'bench')


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
        growth = '' if previous is None else f'{seconds / previous:.1f}x'
        rows.append((count, len(listing), json_s, seconds, growth))
        previous = seconds
    _count, listing, config = cases[-1]
    tracemalloc.start()
    parse_and_plan(listing, config)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rows, peak, len(listing)


def write_fake(directory, name, listing_path, kind):
    path = os.path.join(directory, name)
    with open(path, 'w') as f:
        if kind == 'python':
            f.write(
                f'#!{sys.executable} -S\n'
                'import sys\n'
                f'with open({listing_path!r}, "rb") as listing:\n'
                '    sys.stdout.buffer.write(listing.read())\n'
            )
        else:
            f.write(f'#!/bin/sh\nexec cat {listing_path}\n')
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


def bench_discovery(directory, runs):
    from oslo_concurrency import processutils

    from cyborg_pmem import ndctl

    listing, config = synthetic_listing(REGIONS, 1000)
    listing_path = os.path.join(directory, 'listing-1000.json')
    with open(listing_path, 'w') as f:
        f.write(listing)
    rows = []
    for kind in ('python', 'cat'):
        fake = write_fake(directory, f'ndctl-{kind}', listing_path, kind)
        argv = [fake, *ndctl.LIST_ARGS]
        disc = discovery.Discovery(config, fake, 30)
        disc.run('bench')
        bare_s, execute_s, runner_s, ours_s, json_s = interleaved_medians(
            [
                lambda argv=argv: subprocess.run(
                    argv, capture_output=True, check=True
                ),
                lambda argv=argv: processutils.execute(*argv),
                lambda fake=fake: ndctl.run_list(fake, 30),
                lambda disc=disc: disc.run('bench'),
                lambda: json.loads(listing),
            ],
            runs,
        )
        rows.append((kind, bare_s, execute_s, runner_s, ours_s, json_s))
    return rows


def bench_cli(directory, runs):
    listing, config = synthetic_listing(REGIONS, 10000)
    listing_path = os.path.join(directory, 'listing-10000.json')
    with open(listing_path, 'w') as f:
        f.write(listing)
    conf_path = os.path.join(directory, 'cyborg.conf')
    with open(conf_path, 'w') as f:
        f.write(f'[pmem_devices]\npmem_namespaces = {config}\n')
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
    print('(a) parse + plan, 8 regions, every namespace configured')
    print(
        f'    {"namespaces":>10}  {"listing":>10}  {"json.loads":>10}  '
        f'{"parse+plan":>10}  {"per 10x":>8}'
    )
    for count, size, json_s, seconds, growth in core:
        print(
            f'    {count:>10}  {size / 1e6:>8.2f}MB  {json_s * 1e3:>8.2f}ms  '
            f'{seconds * 1e3:>8.2f}ms  {growth:>8}'
        )
    print(
        '    json.loads: the standard library parsing the same listing, '
        'a part of parse+plan'
    )
    print('    target at 10000: < 100 ms; growth per 10x: ~10 (linear)')
    print()
    print(
        f'(b) peak memory, parse + plan of 10000 namespaces '
        f'({big_bytes / 1e6:.1f} MB of JSON): {peak / 1e6:.1f} MB'
    )
    print()
    with tempfile.TemporaryDirectory() as directory:
        disc_rows = bench_discovery(directory, runs)
        cli_bare, cli_ours = bench_cli(directory, max(5, runs // 3))
    print('(c) Discovery.run, 1000 namespaces, vs the same fake ndctl bare')
    print(
        f'    {"fake ndctl":>14}  {"bare":>7}  {"execute":>7}  '
        f'{"run_list":>8}  {"discovery":>9}  {"ratio":>6}  {"floor":>6}'
    )
    for kind, bare_s, execute_s, runner_s, ours_s, json_s in disc_rows:
        label = 'python script' if kind == 'python' else 'sh exec cat'
        print(
            f'    {label:>14}  {bare_s * 1e3:>5.1f}ms  '
            f'{execute_s * 1e3:>5.1f}ms  {runner_s * 1e3:>6.1f}ms  '
            f'{ours_s * 1e3:>7.1f}ms  {ours_s / bare_s:>5.2f}x  '
            f'{(execute_s + json_s) / bare_s:>5.2f}x'
        )
    print(
        '    execute: processutils.execute alone (it always forks for its '
        'preexec_fn);'
    )
    print(
        '    floor: (execute + json.loads of the listing) / bare, what '
        'any discovery'
    )
    print('    that runs ndctl through processutils and parses its JSON costs')
    print('    target: < 1.10x')
    print()
    print(
        '(d) cyborg-pmem-discover --ndctl-output, 10000 namespaces, vs '
        'python -c "import oslo_config; json.load(...)"'
    )
    print(
        f'    bare {cli_bare * 1e3:.0f} ms, CLI {cli_ours * 1e3:.0f} ms, '
        f'ratio {cli_ours / cli_bare:.2f}x (target: < 1.5x)'
    )


if __name__ == '__main__':
    main()
