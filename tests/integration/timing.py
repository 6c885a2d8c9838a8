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

"""Time one agent cycle (discover + report_data) on synthetic hosts.

    python -m tests.integration.timing

Runs the pipeline of tests/integration/pipeline.py for a small host (2
regions, 10 namespaces) and a large one (16 regions, 256 namespaces) and
prints, for each, the first cycle (which creates every row and provider)
and a steady cycle (nothing changed), and the ratio between the two hosts.
"""

import os
import sys
import tempfile

from tests.integration import pipeline

SIZES = ((2, 10), (16, 256))


def measure(backend, regions, namespaces, directory):
    listing, pmem_namespaces = pipeline.synthetic_listing(regions, namespaces)
    host_config = os.path.join(directory, f'pmem-{regions}.conf')
    with open(host_config, 'w') as f:
        f.write(f'[pmem_devices]\npmem_namespaces = {pmem_namespaces}\n')
    with (
        pipeline.CyborgDatabase(backend) as db,
        pipeline.PlacementService() as placement,
        pipeline.CyborgHost(db, placement, host_config) as host,
    ):
        first, steady, writes = pipeline.time_cycles(host, listing)
        handles = len(host.attach_handles())
        providers = len(host.placement_tree()) - 1
    # A timing of a pipeline that did the wrong thing is no timing.
    if handles != namespaces or providers != regions or writes:
        raise pipeline.PipelineError(
            f'{regions}/{namespaces}: stored {handles} handles and '
            f'{providers} providers; unchanged cycles wrote {writes} times '
            'to Placement'
        )
    return first, steady


def main():
    import logging

    # The pipeline logs every row it diffs at INFO; keep the table legible.
    logging.disable(logging.WARNING)
    backend = pipeline.backend()
    print(backend.describe())
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for regions, namespaces in SIZES:
            results[(regions, namespaces)] = measure(
                backend, regions, namespaces, directory
            )
    print('One agent cycle: discover() + report_data over RPC, DB, Placement')
    print(f'{"host":<28} {"first cycle":>12} {"steady cycle":>13}')
    for (regions, namespaces), (first, steady) in results.items():
        label = f'{regions} regions, {namespaces} namespaces'
        print(f'{label:<28} {first * 1000:>10.0f}ms {steady * 1000:>11.0f}ms')
    (small_first, small_steady), (big_first, big_steady) = results.values()
    print(
        f'ratio large/small: first {big_first / small_first:.1f}x, '
        f'steady {big_steady / small_steady:.1f}x '
        f'(for {SIZES[1][1] / SIZES[0][1]:.1f}x the namespaces)'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
