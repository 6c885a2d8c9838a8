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

"""What one agent cycle costs Cyborg's conductor, without and with 0007.

    tox -e bench-cycle [-- --sizes 1x3,2x30,8x256 --repeat 3]

One agent cycle is the real agent's discover() (ndctl replaced at its
process boundary by a synthetic listing) and report_data over RPC to the
real conductor, Cyborg's database (MariaDB when one answers, see
tests/integration/pipeline.py, else sqlite) and the real Placement. For
each host size (regions x namespaces, one label per region) it counts, on
Cyborg without the report_data patch (0001-0006) and with it (0001-0007):

* first: the cycle that creates everything;
* unchanged: a cycle that reports what the previous one did (the counts of
  one, the median time of --repeat);
* changed: a cycle with one namespace gone.

Counted: SQL statements by kind (SQLAlchemy's before_cursor_execute on
Cyborg's engine), transactions (engine begin and commit events: read ones
end without a commit), Cyborg's Placement requests by method (the
Placement fixture's request log). The counts do not depend on the
machine; the times (ms) do and are secondary. Then the arithmetic for
10 000 hosts reporting every 60 s. Each Cyborg runs in its own Python
(tests/integration/variants.py), this script's --measure half.

Every cycle is checked (handles and providers stored, no Placement write
in an unchanged cycle, the counts of every unchanged cycle equal): a
count of a pipeline that did the wrong thing is no count.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The pipeline and the variants live with the integration tests.
sys.path.insert(0, REPO)

from tests.integration import pipeline  # noqa: E402
from tests.integration import variants  # noqa: E402

SIZES = '1x3,2x30,8x256'
HOSTS = 10_000
PERIOD_S = 60
SERIES = {'0001-0006': 'before', '0001-0007': 'after'}
KINDS = pipeline.STATEMENT_KINDS
METHODS = ('GET', 'PUT', 'POST', 'DELETE')


def unchanged_before_formula(regions, namespaces):
    """Statements of an unchanged cycle before 0007, as measured and
    explained in doc/source/contributor/performance.rst: D devices and P
    deployables (one per region here), H attach handles."""
    d = p = regions
    h = namespaces
    return 1 + 4 * d + 7 * p + d * (d + 1) // 2 + 2 * h


def _sizes(text):
    sizes = []
    for item in text.split(','):
        try:
            regions, namespaces = (int(n) for n in item.lower().split('x'))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'{item!r} is not REGIONSxNAMESPACES (e.g. 2x30)'
            ) from None
        if regions < 1 or namespaces < regions:
            raise argparse.ArgumentTypeError(
                f'{item!r}: need 1 <= regions <= namespaces'
            )
        sizes.append((regions, namespaces))
    return sizes


def _cycle(host, listing):
    with pipeline.ndctl_output(listing), pipeline.counting(host) as cost:
        host.discover()
    return cost


def _check(what, condition):
    if not condition:
        raise pipeline.PipelineError(what)


def measure_size(backend, regions, namespaces, repeat, directory):
    listing, pmem_namespaces = pipeline.synthetic_listing(regions, namespaces)
    host_config = os.path.join(directory, f'pmem-{regions}x{namespaces}.conf')
    with open(host_config, 'w') as f:
        f.write(f'[pmem_devices]\npmem_namespaces = {pmem_namespaces}\n')
    size = f'{regions}x{namespaces}'
    with (
        pipeline.CyborgDatabase(backend) as db,
        pipeline.PlacementService() as placement,
        pipeline.CyborgHost(db, placement, host_config) as host,
    ):
        first = _cycle(host, listing)
        _check(
            f'{size}: the first cycle stored '
            f'{len(host.attach_handles())} handles',
            len(host.attach_handles()) == namespaces,
        )
        _check(
            f'{size}: the first cycle made {len(host.placement_tree()) - 1} '
            'providers',
            len(host.placement_tree()) - 1 == regions,
        )
        unchanged = [_cycle(host, listing) for _ in range(repeat)]
        counts = {json.dumps(c.as_dict() | {'seconds': 0}) for c in unchanged}
        _check(f'{size}: unchanged cycles differ: {counts}', len(counts) == 1)
        _check(
            f'{size}: an unchanged cycle wrote to Placement',
            set(unchanged[0].placement) <= {'GET'},
        )
        changed = _cycle(
            host,
            pipeline.without_namespaces(listing, f'ns{namespaces - 1}'),
        )
        _check(
            f'{size}: one namespace gone left '
            f'{len(host.attach_handles())} handles',
            len(host.attach_handles()) == namespaces - 1,
        )
    steady = unchanged[0].as_dict()
    steady['seconds'] = statistics.median(c.seconds for c in unchanged)
    return {
        'first': first.as_dict(),
        'unchanged': steady,
        'changed': changed.as_dict(),
    }


def measure(sizes, repeat):
    """The --measure half: this Python's Cyborg, every size, as JSON."""
    # Cyborg logs every row it diffs, the driver every namespace it skips.
    logging.disable(logging.WARNING)
    backend = pipeline.backend()
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for regions, namespaces in sizes:
            results[f'{regions}x{namespaces}'] = measure_size(
                backend, regions, namespaces, repeat, directory
            )
    json.dump(
        {
            'backend': backend.describe(),
            'cyborg_patches': variants.cyborg_series(),
            'sizes': results,
        },
        sys.stdout,
    )
    return 0


def _row(size, cycle, series, cost, formula=''):
    statements = [cost['statements'].get(k, 0) for k in KINDS]
    requests = [cost['placement'].get(m, 0) for m in METHODS]
    return (
        f'{size:<7} {cycle:<9} {series:<9} '
        + ' '.join(f'{n:>7}' for n in statements)
        + f' {sum(statements):>6} {formula!s:>7}  '
        + f'{cost["transactions"]["read"]:>5} '
        + f'{cost["transactions"]["writer"]:>6}  '
        + ' '.join(f'{n:>4}' for n in requests)
        + f' {cost["seconds"] * 1000:>7.0f}'
    )


def print_table(results, sizes):
    print(
        'One agent cycle: discover() + report_data over RPC. SQL statements '
        "on Cyborg's engine,\ntransactions, Cyborg's Placement requests; "
        'formula: 1 + 4D + 7P + D(D+1)/2 + 2H before 0007, 5 after.'
    )
    print(
        f'{"host":<7} {"cycle":<9} {"Cyborg":<9} '
        + ' '.join(
            f'{k.replace("SELECT FOR UPDATE", "FOR UPD"):>7}' for k in KINDS
        )
        + f' {"total":>6} {"formula":>7}  {"read":>5} {"writer":>6}  '
        + ' '.join(f'{m:>4}' for m in ('GET', 'PUT', 'POST', 'DEL'))
        + f' {"ms":>7}'
    )
    for regions, namespaces in sizes:
        size = f'{regions}x{namespaces}'
        for cycle in ('first', 'unchanged', 'changed'):
            for series in SERIES:
                cost = results[series]['sizes'][size][cycle]
                formula = ''
                if cycle == 'unchanged':
                    formula = (
                        unchanged_before_formula(regions, namespaces)
                        if SERIES[series] == 'before'
                        else 5
                    )
                print(_row(size, cycle, series, cost, formula))
    print()
    print(
        f'{HOSTS} hosts, one unchanged report each every {PERIOD_S} s '
        '(per second):'
    )
    print(
        f'{"host":<7} {"Cyborg":<9} {"statements":>10} {"FOR UPD":>8} '
        f'{"transactions":>12} {"writer":>7} {"Placement":>9}'
    )
    rate = HOSTS / PERIOD_S
    for regions, namespaces in sizes:
        size = f'{regions}x{namespaces}'
        for series in SERIES:
            cost = results[series]['sizes'][size]['unchanged']
            statements = sum(cost['statements'].values())
            locked = cost['statements']['SELECT FOR UPDATE']
            transactions = sum(cost['transactions'].values())
            writer = cost['transactions']['writer']
            requests = sum(cost['placement'].values())
            print(
                f'{size:<7} {series:<9} {statements * rate:>10.0f} '
                f'{locked * rate:>8.0f} {transactions * rate:>12.0f} '
                f'{writer * rate:>7.0f} {requests * rate:>9.0f}'
            )
    (small_r, small_n), (big_r, big_n) = sizes[0], sizes[-1]
    if (small_r, small_n) != (big_r, big_n):
        ratios = []
        for series in SERIES:
            by_size = results[series]['sizes']
            big = by_size[f'{big_r}x{big_n}']['unchanged']['seconds']
            small = by_size[f'{small_r}x{small_n}']['unchanged']['seconds']
            ratios.append(f'{series} {big / small:.1f}x')
        print()
        print(
            f'Unchanged cycle time, {big_r}x{big_n} / {small_r}x{small_n}: '
            + ', '.join(ratios)
            + f' (for {big_n / small_n:.0f}x the namespaces; times depend '
            'on the machine)'
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--sizes',
        type=_sizes,
        default=_sizes(SIZES),
        help=f'host sizes, REGIONSxNAMESPACES,... (default {SIZES})',
    )
    parser.add_argument(
        '--repeat',
        type=int,
        default=3,
        help='unchanged cycles timed per size (default 3)',
    )
    parser.add_argument(
        '--measure',
        action='store_true',
        help='measure with this Python\'s Cyborg and print JSON (the half '
        'that runs in each Cyborg\'s Python)',
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error('--repeat must be at least 1')
    sizes_arg = ','.join(f'{r}x{n}' for r, n in args.sizes)
    try:
        if args.measure:
            return measure(args.sizes, args.repeat)
        print(pipeline.backend().describe())
        pythons = {
            '0001-0006': variants.before_python(),
            '0001-0007': variants.after_python(),
        }
        results = {}
        # One at a time: the times of two at once would be each other's.
        for series, python in pythons.items():
            process = variants.start(
                python,
                os.path.join('tools', 'bench-cycle.py'),
                '--measure',
                '--sizes',
                sizes_arg,
                '--repeat',
                str(args.repeat),
            )
            results[series] = variants.json_result(
                process, f'bench-cycle on Cyborg {series}', timeout=1800
            )
    except pipeline.PipelineError as err:
        print(f'bench-cycle: error: {err}', file=sys.stderr)
        return 1
    print_table(results, args.sizes)
    return 0


if __name__ == '__main__':
    sys.exit(main())
