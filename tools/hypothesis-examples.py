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

"""Print how many examples the property-based tests ran.

Usage: hypothesis-examples.py LOG

LOG holds one "TEST_ID COUNT" line per property test run (written by
tests/unit/test_properties.py when CYBORG_PMEM_EXAMPLES_LOG names it).
Fails when a property test ran no example, which would make it a test
that cannot fail. A missing log means no property test was selected.
"""

import os
import sys


def main(path):
    profile = os.environ.get('HYPOTHESIS_PROFILE', 'ci')
    if not os.path.exists(path):
        print('hypothesis: no property test ran')
        return 0
    counts = {}
    with open(path) as log:
        for line in log:
            test_id, _sep, count = line.strip().rpartition(' ')
            counts[test_id] = int(count)
    total = sum(counts.values())
    print(
        f'hypothesis: {total} examples in {len(counts)} property tests '
        f'(profile {profile})'
    )
    empty = sorted(t for t, n in counts.items() if n == 0)
    for test_id in empty:
        print(f'hypothesis: {test_id} ran no example', file=sys.stderr)
    return 1 if empty else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
